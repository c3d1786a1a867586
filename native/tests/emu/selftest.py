#!/usr/bin/env python3
"""Mutation test of the emulation harness: each entry plants one typical kernel bug (fragment layout,
missing barrier, early exit before a shuffle, off-by-one, out-of-bounds read, …) in a temporary copy of
native/kernels/, runs the affected group of run.py against it (EMU_KERNELS), and requires the group to
FAIL. Prints DETECTED/MISSED per mutation; exits 1 if any bug went unnoticed or a mutation no longer
applies (the kernel changed: update the entry).

usage: selftest.py [-j N] [name-substring ...]
"""
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
KDIR = os.path.normpath(os.path.join(HERE, "..", "..", "kernels"))

# (name, group, file, old text (must occur exactly once), new text)
MUTATIONS = [
    ("mma A fragment: a1 loads row g instead of g+8", "prefill_mma", "attention_mma.cu",
     "qa[s][1] = ld32(qw + (g + 8) * LD + s * 16 + 2 * c);", "qa[s][1] = ld32(qw + g * LD + s * 16 + 2 * c);"),
    ("mma A fragment: a1/a2 swapped", "segment_mma", "attention_mma.cu",
     "qa[s][2] = ld32(qw + g * LD + s * 16 + 8 + 2 * c);", "qa[s][2] = ld32(qw + (g + 8) * LD + s * 16 + 2 * c);"),
    ("mma B fragment of V: b1 rows 2c+2 instead of 2c+8", "prefill_mma", "attention_mma.cu",
     "(unsigned)vr[8 * LD] | ((unsigned)vr[9 * LD] << 16)", "(unsigned)vr[2 * LD] | ((unsigned)vr[3 * LD] << 16)"),
    ("mma B fragment of K: b0/b1 halves swapped", "segment_mma", "attention_mma.cu",
     "const unsigned b[2] = {ld32(kr), ld32(kr + 8)};", "const unsigned b[2] = {ld32(kr + 8), ld32(kr)};"),
    ("mma C fragment store: rows r0/r1 swapped", "prefill_mma", "attention_mma.cu",
     "if (r0 < q_rows) *reinterpret_cast<unsigned*>(o + (size_t)r0 * o_stride", "if (r0 < q_rows) *reinterpret_cast<unsigned*>(o + (size_t)r1 * o_stride"),
    ("mma: missing __syncthreads before reloading the K/V tile", "segment_mma", "attention_mma.cu",
     "__syncthreads();  // every warp is done with the previous tile", "// (barrier removed)"),
    ("mma causal mask off by one", "prefill_mma", "attention_mma.cu",
     "(CAUSAL && k0 + key > q_pos0 + row)", "(CAUSAL && k0 + key >= q_pos0 + row)"),
    ("FMA attention: missing __syncthreads after the K/V tile load", "segment_fma", "attention.cu",
     "        __syncthreads();\n        float s[FA_BC / 4];", "        float s[FA_BC / 4];"),
    ("FMA attention: shuffle partner 2 → 4 (crosses query rows)", "prefill_fma", "attention.cu",
     "sum += __shfl_xor_sync(0xffffffffu, sum, 2);", "sum += __shfl_xor_sync(0xffffffffu, sum, 4);"),
    ("decode attention: missing __syncthreads between scores and softmax", "decode_attention", "decode_attention.cu",
     "        __syncthreads();\n        // Online softmax", "        // Online softmax"),
    ("decode attention: split end off by one", "decode_attention", "decode_attention.cu",
     "k1 = min(ctx, k0 + chunk);", "k1 = min(ctx, k0 + chunk + 1);"),
    ("decode attention: early return on empty split after a barrier (uniformity)", "decode_attention", "decode_attention.cu",
     "    if (k0 >= k1) {  // uniform over the block, before any barrier", "    if (k0 >= k1 && tid >= 64) {"),
    ("rope: idle lanes return before the shuffle reduction", "rope", "rope.cu",
     "    const bool is_q = head < nH;", "    if (!active) return;\n    const bool is_q = head < nH;"),
    ("rope: rotation partner offset HD/2 → HD/2 - 2", "rope", "rope.cu",
     "hi = active ? src[W + lane] : 0u;", "hi = active ? src[W - 1 + lane] : 0u;"),
    ("layernorm: first pass reads one pair past the row", "norm", "norm.cu",
     "    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {\n        const unsigned p = xr[i];\n        s += ",
     "    for (int i = threadIdx.x; i <= pairs; i += blockDim.x) {\n        const unsigned p = xr[i];\n        s += "),
    ("block_sum: missing __syncthreads before the scratch write", "softmax", "common.cuh",
     "    v = warp_sum(v);\n    __syncthreads();\n    if (lane == 0) scratch[warp] = v;\n    __syncthreads();\n    v = lane < warps ? scratch[lane] : 0.f;",
     "    v = warp_sum(v);\n    if (lane == 0) scratch[warp] = v;\n    __syncthreads();\n    v = lane < warps ? scratch[lane] : 0.f;"),
    ("f2bf truncates instead of rounding (asm replaced)", "activation", "common.cuh",
     'asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(f));', "r = (unsigned short)(__float_as_uint(f) >> 16);"),
    ("swiglu: 16-byte gate load 8 bytes off alignment (UBSan)", "activation", "activation.cu",
     "unpack8(*reinterpret_cast<const uint4*>(gu + r * 2 * I + c), g);", "unpack8(*reinterpret_cast<const uint4*>(gu + r * 2 * I + c + 4), g);"),
    ("vision rope: y and x coordinates swapped", "vision", "vision.cu",
     "(float)(i < nf ? p.x : p.y)", "(float)(i < nf ? p.y : p.x)"),
    ("bicubic: taps not clamped at the low border", "vision", "vision.cu",
     "idx[k] = min(max((int)i0 - 1 + k, 0), in - 1);", "idx[k] = min((int)i0 - 1 + k, in - 1);"),
    ("gemv: staged x read before the barrier", "gemv", "gemv.cu",
     "reinterpret_cast<const uint4*>(x)[i];\n    __syncthreads();\n    const int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);\n    if (row >= n) return;\n    const float acc = gemv_row(W, xs, row, k);\n    if ((threadIdx.x & 31) == 0) {",
     "reinterpret_cast<const uint4*>(x)[i];\n    const int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);\n    if (row >= n) return;\n    const float acc = gemv_row(W, xs, row, k);\n    if ((threadIdx.x & 31) == 0) {"),
    ("gemv fused rmsnorm: h_out never written", "gemv", "gemv.cu",
     "if (h_out && blockIdx.x == 0)", "if (h_out && false)"),
    ("sampling: inclusive scan drops lane o", "sampling", "sampling.cu",
     "        const double n = __shfl_up_sync(0xffffffffu, inc, o);\n        if (lane >= o) inc += n;",
     "        const double n = __shfl_up_sync(0xffffffffu, inc, o);\n        if (lane > o) inc += n;"),
    ("sampling: top-k radix select keeps one bucket too few", "sampling", "sampling.cu",
     "for (; d > 0 && above + (int)hist[d] < remaining; d--)", "for (; d > 0 && above + (int)hist[d] <= remaining; d--)"),
    ("sampling: ties on value broken by higher id", "sampling", "sampling.cu",
     "(a.v == b.v && a.i < b.i)", "(a.v == b.v && a.i > b.i)"),
    ("sampling: top-p mass carry out of the low word dropped", "sampling", "sampling.cu",
     "if (h + carry) atomicAdd(hi, h + carry);", "if (h) atomicAdd(hi, h);"),
    # The kernel before the fixed-point histogram: f64 atomics, whose sums depend on the thread order.
    ("sampling: top-p mass summed with f64 atomics", "sampling", "sampling.cu",
     "    const unsigned long long old = atomicAdd(lo, l);\n    const unsigned long long carry = old + l < old ? 1ull : 0ull;\n    if (h + carry) atomicAdd(hi, h + carry);\n}\n\n"
     "__device__ __forceinline__ double mass_value(unsigned long long hi, unsigned long long lo) {\n    return (double)hi + (double)lo * 5.421010862427522e-20;  // 2⁻⁶⁴\n}",
     "    atomicAdd(reinterpret_cast<double*>(lo), weight);\n}\n\n"
     "__device__ __forceinline__ double mass_value(unsigned long long hi, unsigned long long lo) {\n    double d;\n    memcpy(&d, &lo, 8);\n    return d;\n}"),
]


def run_one(mut, tmp_root):
    name, group, fname, old, new = mut
    d = tempfile.mkdtemp(prefix="mut-", dir=tmp_root)
    for f in os.listdir(KDIR):
        shutil.copy(os.path.join(KDIR, f), d)
    path = os.path.join(d, fname)
    text = open(path).read()
    n = text.count(old)
    if n != 1:
        return name, "STALE", f"pattern occurs {n} times in {fname} (kernel changed?)"
    open(path, "w").write(text.replace(old, new))
    env = dict(os.environ, EMU_KERNELS=d)
    r = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), "-j", "1", "--quick", group], env=env, capture_output=True, text=True)
    fails = [ln for ln in r.stdout.splitlines() if ln.startswith("FAIL")]
    if r.returncode != 0:
        first = fails[0] if fails else (r.stdout + r.stderr).strip().splitlines()[-1]
        return name, "DETECTED", first[:300]
    return name, "MISSED", f"group {group} passed"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-j")]
    jobs = 2
    for i, a in enumerate(sys.argv[1:]):
        if a.startswith("-j"):
            jobs = int(a[2:] or sys.argv[i + 2])
            args = [x for x in args if x != sys.argv[i + 2]]
    muts = [m for m in MUTATIONS if not args or any(a in m[0] for a in args)]
    bad = 0
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as ex:
        for name, status, detail in ex.map(lambda m: run_one(m, tmp), muts):
            bad += status != "DETECTED"
            print(f"{status:8}  {name}\n          {detail}", flush=True)
    print(f"{len(muts) - bad}/{len(muts)} planted bugs detected")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
