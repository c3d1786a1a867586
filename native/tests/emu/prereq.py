"""What the CPU-emulation suites need (run.py: numpy and g++; fakegpu/run.py: g++ and NVRTC), checked
before anything runs. A missing tool makes the whole suite a visible skip: one `SKIPPED <suite>: …`
line with the install command, exit status 0, and the line appended to $OVIS_SKIP_LOG (npm test repeats
it at the end: scripts/run-tests.js). When OVIS_REQUIRE_TEST_TOOLS=1 (CI: .ci/run), or for NVRTC
OVIS_REQUIRE_NVRTC=1, a missing tool fails the suite instead.
"""
import ctypes
import importlib.util
import os
import shutil
import site
import subprocess
import sys

# The oldest g++ the emulation is known to build with (C++20, AddressSanitizer); the README asks for it.
GXX_MIN = 12


def numpy_missing():
    if importlib.util.find_spec("numpy") is None:
        return f"numpy is not installed for {sys.executable} (install: {sys.executable} -m pip install numpy)"
    return None


def gxx_missing():
    if not shutil.which("g++"):
        return "g++ was not found on PATH (install: apt-get install g++)"
    out = subprocess.run(["g++", "-dumpfullversion", "-dumpversion"], capture_output=True, text=True).stdout.strip()
    try:
        major = int(out.split(".")[0])
    except ValueError:
        return None  # an unusual version string: let the build speak for itself
    if major < GXX_MIN:
        return f"g++ {out} is older than {GXX_MIN} (install a newer g++, e.g. apt-get install g++-{GXX_MIN})"
    return None


def nvrtc_path():
    """A file to point OVIS_NVRTC_LIB at, "" when the loader finds NVRTC by itself, None when absent."""
    given = os.environ.get("OVIS_NVRTC_LIB")
    if given and os.path.isfile(given):
        return given
    for d in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
        for sub in ["nvidia/cu13/lib/libnvrtc.so.13", "nvidia/cuda_nvrtc/lib/libnvrtc.so.13"]:
            p = os.path.join(d, sub)
            if os.path.isfile(p):
                return p
    try:
        ctypes.CDLL("libnvrtc.so.13")
        return ""
    except OSError:
        return None


def nvrtc_missing():
    if nvrtc_path() is None:
        return f"NVRTC (libnvrtc.so.13) was not found (install: {sys.executable} -m pip install nvidia-cuda-nvrtc, or set OVIS_NVRTC_LIB)"
    return None


def require(suite, problems):
    """Returns when nothing is missing; otherwise skips (exit 0) or fails (exit 1) the whole suite.
    problems: (message or None, the variable besides OVIS_REQUIRE_TEST_TOOLS that makes it fatal, or None)."""
    problems = [(p, var) for p, var in problems if p]
    if not problems:
        return
    why = "; ".join(p for p, _ in problems)
    required = [v for v in ["OVIS_REQUIRE_TEST_TOOLS"] + [var for _, var in problems if var] if os.environ.get(v) == "1"]
    if required:
        print(f"FAIL  {suite}: {required[0]}=1 but {why}", flush=True)
        sys.exit(1)
    line = f"SKIPPED {suite}: {why}"
    print(line, flush=True)
    log = os.environ.get("OVIS_SKIP_LOG")
    if log:
        with open(log, "a") as f:
            f.write(line + "\n")
    sys.exit(0)


if __name__ == "__main__":
    # `prereq.py numpy gxx nvrtc`: exit status 1 (with the reasons on stderr) if any is missing (.ci/run).
    checks = {"numpy": numpy_missing, "gxx": gxx_missing, "nvrtc": nvrtc_missing}
    found = [checks[name]() for name in sys.argv[1:]]
    for why in filter(None, found):
        print(why, file=sys.stderr)
    sys.exit(1 if any(found) else 0)
