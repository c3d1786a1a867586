"""Builds native/kernels/<file>.cu into a shared library that runs the kernels on the CPU (cuda_emu.h).

The kernel sources are not edited. The only rewrites, done here on a copy, are mechanical:
  * every inline-asm statement is replaced by a call to the emulation function of its instruction
    (ASM below; an asm template not listed there is a build error, so a new instruction is never
    silently mis-emulated);
  * `extern __shared__ T name[];` becomes `T* name = (T*)emu::dyn_smem();` (the launch's dynamic
    shared memory buffer).
`#line` directives keep the original file names and line numbers in compiler and sanitizer messages.
"""
import ctypes
import hashlib
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
# EMU_KERNELS overrides the kernel directory (selftest.py points it at mutated copies).
KDIR = os.environ.get("EMU_KERNELS") or os.path.normpath(os.path.join(HERE, "..", "..", "kernels"))
BUILD = os.path.join(HERE, ".build")

# Whitespace-free asm template → emulation function (operands passed in %-number order).
ASM = {
    "cvt.rn.bf16.f32%0,%1;": ("emu_cvt_rn_bf16_f32", 2),
    "ld.global.nc.L1::no_allocate.v4.u32{%0,%1,%2,%3},[%4];": ("emu_ld_global_nc_v4_u32", 5),
    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32{%0,%1,%2,%3},{%4,%5,%6,%7},{%8,%9},{%0,%1,%2,%3};": (
        "emu_mma_m16n8k16_row_col_f32_bf16_bf16_f32",
        10,
    ),
}


class BuildError(Exception):
    pass


def _match_paren(s, i):
    """Index of the ')' closing the '(' at s[i], skipping string and char literals."""
    depth = 0
    j = i
    while j < len(s):
        ch = s[j]
        if ch in "\"'":
            q = ch
            j += 1
            while s[j] != q:
                j += 2 if s[j] == "\\" else 1
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise BuildError("unbalanced parentheses in asm statement")


def _split_top(s, sep):
    """Splits s at `sep` characters outside brackets and string literals."""
    parts, depth, cur, j = [], 0, "", 0
    while j < len(s):
        ch = s[j]
        if ch == '"':
            k = j + 1
            while s[k] != '"':
                k += 2 if s[k] == "\\" else 1
            cur += s[j : k + 1]
            j = k + 1
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        j += 1
    parts.append(cur)
    return parts


def _operands(part):
    ops = []
    for op in _split_top(part, ","):
        op = op.strip()
        if not op:
            continue
        m = re.fullmatch(r'(?:\[\w+\]\s*)?"([^"]*)"\s*\((.*)\)', op, re.S)
        if not m:
            raise BuildError(f"cannot parse asm operand {op!r}")
        ops.append((m.group(1), m.group(2).strip()))
    return ops


def rewrite_asm(text, fname):
    out, pos = [], 0
    for m in re.finditer(r"\basm\b\s*(?:volatile\b\s*|__volatile__\b\s*)?\(", text):
        if m.start() < pos:
            continue
        open_i = m.end() - 1
        close_i = _match_paren(text, open_i)
        body = text[open_i + 1 : close_i]
        sections = _split_top(body, ":")
        strings = re.findall(r'"((?:[^"\\]|\\.)*)"', sections[0])
        template = re.sub(r"\s+", "", "".join(strings).replace("\\n", " ").replace("\\t", " "))
        if template not in ASM:
            line = text.count("\n", 0, m.start()) + 1
            raise BuildError(f"{fname}:{line}: no emulation for inline asm {template!r} (add it to emubuild.ASM and cuda_emu.h)")
        fn, nops = ASM[template]
        outs = _operands(sections[1]) if len(sections) > 1 else []
        ins = _operands(sections[2]) if len(sections) > 2 else []
        ops = outs + ins
        if len(ops) != nops:
            raise BuildError(f"{fname}: asm {template!r} has {len(ops)} operands, expected {nops}")
        for c, e in outs:
            if not (c.startswith("=") or c.startswith("+")):
                raise BuildError(f"{fname}: output operand {e} has constraint {c!r}")
        call = f"{fn}({', '.join(e for _, e in ops)})"
        out.append(text[pos : m.start()])
        out.append(call + "\n" * text.count("\n", m.start(), close_i + 1))
        pos = close_i + 1
    out.append(text[pos:])
    return "".join(out)


def rewrite_extern_shared(text):
    return re.sub(
        r"extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s+)?([\w:]+)\s+(\w+)\s*\[\s*\]\s*;",
        r"\1* \2 = reinterpret_cast<\1*>(emu::dyn_smem());",
        text,
    )


def transform(path):
    text = open(path).read()
    text = rewrite_extern_shared(rewrite_asm(text, os.path.basename(path)))
    return f'#line 1 "{path}"\n' + text


def kernels(path):
    """[(name, max threads per block from __launch_bounds__ or None)] of the extern "C" kernels."""
    text = open(path).read()
    out = []
    for m in re.finditer(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\(([^)]*)\)\s*)?(\w+)\s*\(', text):
        bound = _split_top(m.group(1), ",")[0].strip() if m.group(1) else None
        out.append((m.group(2), bound))
    return out


def kernel_names(path):
    return [n for n, _ in kernels(path)]


def build(cu, sanitize=True, opt="-O1", probe=None):
    """Returns the path of the emulation library of kernels/<cu> (cached by content hash).

    `probe`: the path of a test-only .cu file compiled after <cu> in the same translation unit, whose
    extern "C" kernels call <cu>'s device functions (e.g. probes/sampling_probe.cu: the top-p mass
    histogram on its own); its kernels are exported beside <cu>'s. NVRTC never sees it."""
    src = os.path.join(KDIR, cu)
    headers = sorted(f for f in os.listdir(KDIR) if f.endswith(".cuh"))
    h = hashlib.sha256()
    for f in [os.path.join(KDIR, x) for x in headers] + [src, os.path.join(HERE, "cuda_emu.h"), os.path.abspath(__file__)] + ([probe] if probe else []):
        h.update(open(f, "rb").read())
    h.update(f"{sanitize}{opt}".encode())
    tag = h.hexdigest()[:16]
    d = os.path.join(BUILD, f"{cu[:-3]}{'-' + os.path.basename(probe)[:-3] if probe else ''}-{tag}")
    lib = os.path.join(d, "lib.so")
    if os.path.exists(lib):
        return lib
    os.makedirs(d, exist_ok=True)
    for f in headers:
        with open(os.path.join(d, f), "w") as o:
            o.write(transform(os.path.join(KDIR, f)))
    with open(os.path.join(d, cu), "w") as o:
        o.write(transform(src))
    ks = kernels(src)
    if not ks:
        raise BuildError(f"{cu}: no extern \"C\" __global__ kernels found")
    if probe:
        with open(os.path.join(d, os.path.basename(probe)), "w") as o:
            o.write(transform(probe))
        ks += kernels(probe)
    gen = os.path.join(d, "gen.cpp")
    with open(gen, "w") as o:
        o.write('#include "cuda_emu.h"\n')
        o.write(f'#include "{cu}"\n')
        if probe:
            o.write(f'#include "{os.path.basename(probe)}"\n')
        o.write('#line 1 "gen.cpp"\n')
        for n, bound in ks:
            o.write(f"EMU_EXPORT({n}, {bound if bound else 1024})\n")
        o.write("EMU_COMMON_EXPORTS\n")
    flags = ["-std=c++20", opt, "-g", "-fPIC", "-shared", "-pthread", "-Wno-unknown-pragmas", "-fno-strict-aliasing"]
    if sanitize:
        flags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize=vptr"]
    cmd = ["g++", *flags, "-I", d, "-I", HERE, gen, "-o", lib + ".tmp"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"g++ failed for {cu}:\n{r.stderr[-6000:]}")
    os.replace(lib + ".tmp", lib)
    return lib


class Module:
    """One kernel file's emulation library; launch() takes arguments like cuLaunchKernel."""

    def __init__(self, cu, sanitize=True, probe=None):
        self.cu = cu
        self.lib = ctypes.CDLL(build(cu, sanitize, probe=probe))
        self.names = kernel_names(os.path.join(KDIR, cu)) + (kernel_names(probe) if probe else [])
        self.lib.emu_last_error.restype = ctypes.c_char_p
        self.lib.emu_alloc.restype = ctypes.c_void_p
        self.lib.emu_alloc.argtypes = [ctypes.c_size_t]
        self.lib.emu_free.argtypes = [ctypes.c_void_p]
        self.lib.emu_schedule.argtypes = [ctypes.c_int, ctypes.c_ulonglong]

    def schedule(self, mode, seed=1):
        self.lib.emu_schedule(mode, seed)

    def launch(self, name, grid, block, smem, args):
        if name not in self.names:
            raise KeyError(f"{self.cu} has no kernel {name}")
        grid = tuple(grid) + (1,) * (3 - len(grid))
        g = (ctypes.c_uint * 3)(*grid)
        b = (ctypes.c_uint * 3)(block, 1, 1)
        keep = [a._as_ctype() if hasattr(a, "_as_ctype") else a for a in args]
        arr = (ctypes.c_void_p * len(keep))(*[ctypes.cast(ctypes.pointer(k), ctypes.c_void_p) for k in keep])
        fn = getattr(self.lib, "emu_launch_" + name)
        fn.restype = ctypes.c_int
        rc = fn(g, b, ctypes.c_size_t(smem), arr)
        if rc != 0:
            raise RuntimeError(f"{name}: {self.lib.emu_last_error().decode()}")
