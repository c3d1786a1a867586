#!/usr/bin/env python3
"""Runs a command with the fake GPU: the engine's whole CUDA path on the CPU.

    python3 native/tests/emu/fakegpu/run.py -- cargo test --release --test cuda_model_parity -- --include-ignored --test-threads=1

Builds (cached) the emulation library of every kernel file (no sanitizers: they must be loaded first in
the process) and the stand-ins libcuda.so and libcublasLt.so of this folder, then runs the command with
LD_LIBRARY_PATH pointing at them, OVIS_EMU_KERNEL_LIBS listing the kernel libraries, OVIS_NVRTC_LIB at
the pip NVRTC (the engine still compiles every kernel with the real NVRTC), OVIS_CUDA_EMULATED=1
(tests shrink what the emulation is too slow for: released-size models) and OVIS_REQUIRE_GPU=1 (a GPU
test that finds no GPU fails). The GPU tests are #[ignore]d in a plain `cargo test`; the default set
runs them with --include-ignored. Needs g++ and NVRTC (`pip install nvidia-cuda-nvrtc`): without them
it prints one SKIPPED line and exits 0, or fails when OVIS_REQUIRE_TEST_TOOLS=1 (prereq.py).

With no command it runs the default set: every kernel against its CPU twin (tests/cuda_parity.rs),
the CUDA model parity tests and the engine's CUDA serving tests (about 13 minutes on 2 cores);
`--quick` runs the kernel parity, the serving tests, the kept-session, grown-cache and reduced
synthetic-2B tests, and the batched-decode and batched-serving tests on the text-only fixture cases
(OVIS_CUDA_BATCH_CASES; in `npm test`). Both first check that OVIS_REQUIRE_GPU=1 works
(a GPU test with an unloadable libcuda.so must fail), and fail any test command that ran no test or
recorded a skip. The fault-injection tests (out of memory, a sticky device fault) use the stand-in's
FAKECUDA_* controls (libcuda.cpp).
"""
import glob
import hashlib
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EMU = os.path.dirname(HERE)
sys.path.insert(0, EMU)
import emubuild  # noqa: E402
import prereq  # noqa: E402

NATIVE = os.path.abspath(os.path.join(EMU, "..", ".."))
BUILD = os.path.join(EMU, ".build", "fakegpu")


def build_fake(name):
    src = os.path.join(HERE, f"{name}.cpp")
    tag = hashlib.sha256(open(src, "rb").read() + open(os.path.join(HERE, "bf16.h"), "rb").read()).hexdigest()[:16]
    out_dir = os.path.join(BUILD, tag)
    lib = os.path.join(out_dir, f"{name}.so")
    if not os.path.exists(lib):
        os.makedirs(out_dir, exist_ok=True)
        r = subprocess.run(["g++", "-std=c++20", "-O2", "-g", "-fPIC", "-shared", src, "-o", lib + ".tmp", "-ldl"], capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"g++ failed for {src}:\n{r.stderr[-4000:]}")
        os.replace(lib + ".tmp", lib)
    return lib


def main():
    # g++ builds the stand-ins and the kernels; the engine compiles every kernel with the real NVRTC.
    prereq.require("test:fakegpu (native/tests/emu/fakegpu/run.py)", [(prereq.gxx_missing(), None), (prereq.nvrtc_missing(), "OVIS_REQUIRE_NVRTC")])
    args = sys.argv[1:]
    quick = bool(args) and args[0] == "--quick"
    if quick:
        args = args[1:]
    if args and args[0] == "--":
        args = args[1:]
    kernels = sorted(os.path.basename(p) for p in glob.glob(os.path.join(emubuild.KDIR, "*.cu")))
    libs = [emubuild.build(k, sanitize=False, opt="-O2") for k in kernels]
    # One folder holding both stand-ins under the names cudarc tries first. Not libcuda.so.1: NVRTC
    # opens that one itself and expects the real driver's internals (it crashes on the stand-in).
    lib_dir = os.path.join(BUILD, "lib")
    os.makedirs(lib_dir, exist_ok=True)
    for name, links in [("libcuda", ["libcuda.so"]), ("libcublasLt", ["libcublasLt.so", "libcublasLt.so.13"])]:
        target = build_fake(name)
        for link in links:
            path = os.path.join(lib_dir, link)
            if os.path.lexists(path):
                os.remove(path)
            os.symlink(target, path)
    stale = os.path.join(lib_dir, "libcuda.so.1")
    if os.path.lexists(stale):
        os.remove(stale)
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = lib_dir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env["OVIS_EMU_KERNEL_LIBS"] = ":".join(libs)
    env["OVIS_CUDA_EMULATED"] = "1"
    # The GPU tests find the fake GPU or fail: a broken stand-in must not turn them into skips.
    env["OVIS_REQUIRE_GPU"] = "1"
    env.setdefault("OVIS_KERNEL_CACHE", os.path.join(BUILD, "kernel-cache"))
    lib = prereq.nvrtc_path()
    if lib:
        env.setdefault("OVIS_NVRTC_LIB", lib)
    if not args:
        test = ["cargo", "test", "--release", "--manifest-path", os.path.join(NATIVE, "Cargo.toml"), "--test"]
        # The GPU tests are #[ignore]d for a plain `cargo test` (they need a GPU): include them here.
        run = ["--", "--include-ignored", "--test-threads=1"]
        require_gpu_switch_works(test + ["cuda_parity"] + run, env)
        cmds = [
            test + ["cuda_parity"] + run,
            test + ["engine_server"] + run + ["--nocapture", "cuda_"],
            test + ["cuda_model_parity"] + run + ["--nocapture"] + (["kept_session", "grown", "synthetic"] if quick else []),
            test + ["cuda_batch_parity"] + run + ["--nocapture"] + (["fixture_cases"] if quick else []),
            test + ["cuda_batch_serving"] + run + ["--nocapture"],
        ]
        # The quick run batches the text-only fixture cases (the media cases' vision encodes are what
        # makes the fake GPU slow); the full run all six.
        batch_env = dict(env, OVIS_CUDA_BATCH_CASES="text,think") if quick else env
        for cmd in cmds:
            run_counted(cmd, batch_env if "cuda_batch_parity" in cmd or "cuda_batch_serving" in cmd else env)
        return
    print("fakegpu:", " ".join(args), flush=True)
    sys.exit(subprocess.run(args, env=env).returncode)


def run_counted(cmd, env):
    """Runs one test command on the fake GPU; fails unless it passed, ran at least one test, and skipped
    none (with OVIS_REQUIRE_GPU=1 a GPU test cannot skip for want of a GPU; a filter that matches
    nothing, or a test that returned early, would otherwise read as a pass having run no CUDA code)."""
    print("fakegpu:", " ".join(cmd), flush=True)
    skip_log = os.path.join(BUILD, "skipped.txt")
    if os.path.exists(skip_log):
        os.remove(skip_log)
    p = subprocess.Popen(cmd, env=dict(env, OVIS_SKIP_LOG=skip_log), stdout=subprocess.PIPE, text=True, errors="replace")
    passed = 0
    for line in p.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        m = re.match(r"test result: \w+\. (\d+) passed", line)
        if m:
            passed += int(m.group(1))
    if p.wait():
        sys.exit(p.returncode)
    skipped = open(skip_log).read().splitlines() if os.path.exists(skip_log) else []
    if skipped:
        sys.exit("fakegpu: tests skipped on the fake GPU (each must run here):\n  " + "\n  ".join(skipped))
    if passed == 0:
        sys.exit(f"fakegpu: {' '.join(cmd)} ran no test")


def require_gpu_switch_works(cmd, env):
    """Self-check of OVIS_REQUIRE_GPU=1: one GPU test run with a libcuda.so that cannot be loaded (what a
    broken stand-in looks like: "no GPU") must fail with the switch, and skip without it. Otherwise this
    runner could pass having run no CUDA code."""
    broken = os.path.join(BUILD, "broken-lib")
    os.makedirs(broken, exist_ok=True)
    with open(os.path.join(broken, "libcuda.so"), "w") as f:
        f.write("not a shared library: the fake GPU's self-check of OVIS_REQUIRE_GPU\n")
    one = cmd + ["--exact", "unsupported_head_widths_fail_before_launching"]
    base = dict(env, LD_LIBRARY_PATH=broken)
    outs = {}
    for require in ["1", "0"]:
        r = subprocess.run(one, env=dict(base, OVIS_REQUIRE_GPU=require), capture_output=True, text=True, errors="replace")
        outs[require] = (r.returncode, r.stdout + r.stderr)
    (rc1, out1), (rc0, out0) = outs["1"], outs["0"]
    if rc1 == 0 or "OVIS_REQUIRE_GPU=1 but there is no CUDA GPU" not in out1:
        sys.exit(f"fakegpu: self-check failed: with libcuda.so unloadable and OVIS_REQUIRE_GPU=1, a GPU test did not fail (status {rc1}):\n{out1[-3000:]}")
    if rc0 != 0 or "1 passed" not in out0:
        sys.exit(f"fakegpu: self-check failed: with libcuda.so unloadable and OVIS_REQUIRE_GPU=0, a GPU test did not skip (status {rc0}):\n{out0[-3000:]}")
    print("fakegpu: self-check: without a loadable libcuda a GPU test fails under OVIS_REQUIRE_GPU=1 (and skips without it)", flush=True)


if __name__ == "__main__":
    main()
