#!/usr/bin/env python3
"""Runs every CUDA kernel of native/kernels/ on the CPU emulator (cuda_emu.h, emubuild.py) with the launch
shapes of backend/cuda/ops.rs and sampling.rs, and compares the results with independent numpy references.

Each check runs the launch under four schedules (forward, reverse, shuffled with drifting warps,
warp-serial; see README.md); the outputs must be bit-identical across them (a difference means a race:
a missing barrier or an order-dependent read) and within tolerance of the reference. One line per check:
    PASS|FAIL  group/check  <output>: maxerr=… (x of tol) …
Needs numpy and g++ >= 12: without them it prints one SKIPPED line and exits 0, or fails when
OVIS_REQUIRE_TEST_TOOLS=1 (prereq.py).
Sanitizers: the libraries are built with AddressSanitizer + UBSan (out-of-bounds global/heap accesses,
misaligned vector loads, out-of-bounds indexing of fixed-size arrays incl. shared memory); a sanitizer
report fails the group. Exit status 1 if anything failed.

usage: run.py [-j N] [--quick] [group ...]     groups: see GROUPS below
"""
import argparse
import ctypes
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prereq  # noqa: E402

# numpy and g++ first: without them the suite is a visible skip (or a CI failure), not a traceback.
if __name__ == "__main__" and "--child" not in sys.argv:
    prereq.require("test:kernels (native/tests/emu/run.py)", [(prereq.numpy_missing(), None), (prereq.gxx_missing(), None)])

import numpy as np  # noqa: E402

import emubuild  # noqa: E402

# ---------------------------------------------------------------------------------------------------------
# bf16 helpers (bf16 = uint16 bit patterns, the top half of an f32)


def f2bf(x):
    """float → bf16 bits, round to nearest even (as cvt.rn.bf16.f32 / torch)."""
    x = np.ascontiguousarray(np.asarray(x, np.float32))
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), r)


def bf2f(b):
    return (np.asarray(b).astype(np.uint32) << 16).view(np.float32)


def rbf(x):
    return bf2f(f2bf(x))


F32 = np.float32


def I32(v):
    return ctypes.c_int(int(v))


def Fl(v):
    return ctypes.c_float(float(v))


def U64(v):
    return ctypes.c_uint64(int(v))


NULL = ctypes.c_void_p(0)

# ---------------------------------------------------------------------------------------------------------
# device buffers and checks


class Buf:
    """A host allocation standing in for device memory (posix_memalign 256 in the instrumented library, so
    AddressSanitizer knows its exact size); `fill` initialises it (default 0xFF bytes: NaN)."""

    def __init__(self, mod, arr=None, shape=None, dtype=None, fill=0xFF):
        if arr is not None:
            arr = np.ascontiguousarray(arr)
            shape, dtype = arr.shape, arr.dtype
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.mod = mod
        self.ptr = mod.lib.emu_alloc(self.nbytes)
        if arr is not None:
            ctypes.memmove(self.ptr, arr.ctypes.data, self.nbytes)
        else:
            ctypes.memset(self.ptr, fill, self.nbytes)

    def get(self, dtype=None, shape=None):
        a = np.empty(self.nbytes, np.uint8)
        ctypes.memmove(a.ctypes.data, self.ptr, self.nbytes)
        return a.view(dtype or self.dtype).reshape(shape if shape is not None else self.shape).copy()

    def _as_ctype(self):
        return ctypes.c_void_p(self.ptr)

    def __del__(self):
        try:
            self.mod.lib.emu_free(self.ptr)
        except Exception:
            pass


SCHEDULES = [(0, "forward"), (1, "reverse"), (2, "shuffled"), (3, "warp-serial")]
# Test-only kernels compiled with a kernel file (emubuild.build's `probe`).
PROBES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probes")


class Ctx:
    def __init__(self, group, quick=False):
        self.group = group
        self.quick = quick
        self.failed = 0
        self.mods = {}

    def mod(self, cu, probe=None):
        """The emulation library of kernels/<cu> (with the test-only kernels of probes/<probe>, if given)."""
        key = (cu, probe)
        if key not in self.mods:
            self.mods[key] = emubuild.Module(cu, probe=os.path.join(PROBES, probe) if probe else None)
        return self.mods[key]

    def report(self, name, ok, msg):
        self.failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {self.group}/{name}  {msg}", flush=True)

    def check(self, name, run, refs, schedules=None):
        """run(mod_launcher) → dict of output arrays; refs: dict name → (ref, kind, atol, rtol) where kind is
        'bf16' (output bf16 bits, compared as f32), 'f32', or 'exact' (bitwise). Runs under each schedule,
        requires identical outputs, compares the first with the references. A schedule is (mode, name) or
        (mode, name, seed): the seed of the shuffled schedule (default 12345)."""
        t0 = time.time()
        print(f"EMU-CHECK {self.group}/{name}", file=sys.stderr, flush=True)
        outs = []
        scheds = schedules or ([SCHEDULES[0], SCHEDULES[2], SCHEDULES[3]] if self.quick else SCHEDULES)
        try:
            for sched in scheds:
                for m in self.mods.values():
                    m.schedule(sched[0], sched[2] if len(sched) > 2 else 12345)
                outs.append(run())
        except Exception as e:
            self.report(name, False, f"launch error: {e}")
            return False
        # schedule invariance
        for (mode, sname, *_), o in zip(scheds[1:], outs[1:]):
            for k in outs[0]:
                a, b = outs[0][k], o[k]
                if a.tobytes() != b.tobytes():
                    diff = np.flatnonzero(a.view(np.uint8) != b.view(np.uint8))
                    self.report(name, False, f"output '{k}' differs between schedules forward and {sname} (race?) at byte {diff[0]} ({len(diff)} bytes)")
                    return False
        worst, msgs, ok = 0.0, [], True
        for k, spec in refs.items():
            ref, kind = spec[0], spec[1]
            out = outs[0][k]
            if kind == "exact":
                if out.shape != ref.shape or out.tobytes() != ref.tobytes():
                    bad = np.flatnonzero(out.reshape(-1).view(np.uint8) != np.ascontiguousarray(ref).reshape(-1).view(np.uint8)) if out.shape == ref.shape else []
                    idx = np.unravel_index(bad[0] // out.dtype.itemsize, out.shape) if len(bad) else "?"
                    msgs.append(f"{k}: not bit-identical (first at {idx}: got {out[idx] if len(bad) else '?'} want {ref[idx] if len(bad) else '?'}; {len(bad)} bytes)")
                    ok = False
                else:
                    msgs.append(f"{k}: bit-exact")
                continue
            atol, rtol = spec[2], spec[3]
            o = bf2f(out).astype(np.float64) if kind == "bf16" else out.astype(np.float64)
            r = np.asarray(ref, np.float64)
            if o.shape != r.shape:
                msgs.append(f"{k}: shape {o.shape} vs ref {r.shape}")
                ok = False
                continue
            nan_bad = np.isnan(o) != np.isnan(r)
            inf_bad = (np.isinf(o) | np.isinf(r)) & ~((o == r) | np.isnan(r))
            fin = np.isfinite(o) & np.isfinite(r)
            err = np.where(fin, np.abs(o - r), 0.0)
            tol = atol + rtol * np.abs(np.where(fin, r, 0.0))
            bad = (err > tol) | nan_bad | inf_bad
            me = float(err.max()) if err.size else 0.0
            ratio = float((err / tol).max()) if err.size else 0.0
            worst = max(worst, ratio)
            if bad.any():
                i = np.unravel_index(np.flatnonzero(bad)[0], o.shape)
                msgs.append(f"{k}: {int(bad.sum())}/{bad.size} outside tol, maxerr={me:.3g}; first at {tuple(int(x) for x in i)}: got {o[i]:.6g} want {r[i]:.6g}")
                ok = False
            else:
                msgs.append(f"{k}: maxerr={me:.3g} ({ratio:.2f} of tol)")
        msgs.append(f"[{len(scheds)} schedules identical, {time.time() - t0:.1f}s]")
        self.report(name, ok, "  ".join(msgs))
        return ok


def rng_for(name):
    import zlib

    return np.random.default_rng(zlib.crc32(name.encode()))


def rand_bf(rng, shape, scale=1.0, mean=0.0):
    return f2bf(rng.standard_normal(shape).astype(np.float32) * F32(scale) + F32(mean))


BF_TOL = (1e-6, 2.0**-7)  # ≈ 1–2 bf16 ulps: references mirror the kernels' f32 steps but sum in another order

# ---------------------------------------------------------------------------------------------------------
# norm.cu


def group_norm(c):
    m = c.mod("norm.cu")
    eps = 1e-6

    def rms_ref(xf, w):
        ss = (xf.astype(np.float64) ** 2).sum(1)
        inv = (1.0 / np.sqrt(ss / xf.shape[1] + eps)).astype(F32)
        return rbf(bf2f(w)[None, :] * rbf(xf * inv[:, None]))

    for rows, dim in [(3, 1024), (1, 64), (4, 1032), (2, 2048), (2, 16384)]:
        rng = rng_for(f"rms{rows}{dim}")
        x = rand_bf(rng, (rows, dim), 2.0, 0.3)
        w = rand_bf(rng, (dim,), 0.5, 1.0)

        def run(x=x, w=w, rows=rows, dim=dim):
            X, W, Y = Buf(m, x), Buf(m, w), Buf(m, shape=(rows, dim), dtype=np.uint16)
            m.launch("rmsnorm_bf16", (rows,), 256, 0, [X, W, Y, I32(dim), Fl(eps)])
            return {"y": Y.get(), "x": X.get()}

        c.check(f"rmsnorm rows={rows} dim={dim}", run, {"y": (rms_ref(bf2f(x), w), "bf16", *BF_TOL), "x": (x, "exact")})

    for rows, dim in [(3, 2048), (2, 1032), (1, 16384)]:
        rng = rng_for(f"rmsr{rows}{dim}")
        h = rand_bf(rng, (rows, dim), 2.0)
        d = rand_bf(rng, (rows, dim), 1.0)
        w = rand_bf(rng, (dim,), 0.5, 1.0)
        hn = f2bf(bf2f(h) + bf2f(d))

        def run(h=h, d=d, w=w, rows=rows, dim=dim):
            H, D, W, Y = Buf(m, h), Buf(m, d), Buf(m, w), Buf(m, shape=(rows, dim), dtype=np.uint16)
            m.launch("rmsnorm_residual_bf16", (rows,), 256, 0, [H, D, W, Y, I32(dim), Fl(eps)])
            return {"y": Y.get(), "h": H.get()}

        c.check(f"rmsnorm_residual rows={rows} dim={dim}", run, {"h": (hn, "exact"), "y": (rms_ref(bf2f(hn), w), "bf16", *BF_TOL)})

    def ln_ref(x, g, b, e):
        xf = bf2f(x).astype(np.float64)
        mean = xf.mean(1, keepdims=True)
        var = ((xf - mean) ** 2).mean(1, keepdims=True)
        return rbf(((xf - mean) / np.sqrt(var + e) * bf2f(g) + bf2f(b)).astype(F32))

    for rows, dim, inplace, e in [(3, 1020, False, 1e-6), (2, 1020, True, 1e-6), (2, 1152, False, 1e-6), (3, 2, False, 1e-5), (2, 65532, True, 1e-5), (2, 3006, False, 1e-5)]:
        rng = rng_for(f"ln{rows}{dim}{inplace}")
        x = rand_bf(rng, (rows, dim), 3.0, 5.0)
        g = rand_bf(rng, (dim,), 0.5, 1.0)
        b = rand_bf(rng, (dim,), 0.3)

        def run(x=x, g=g, b=b, rows=rows, dim=dim, inplace=inplace, e=e):
            X, G, B = Buf(m, x), Buf(m, g), Buf(m, b)
            Y = X if inplace else Buf(m, shape=(rows, dim), dtype=np.uint16)
            m.launch("layernorm_bf16", (rows,), 1024, 0, [X, G, B, Y, I32(dim), Fl(e)])
            return {"y": Y.get()}

        c.check(f"layernorm rows={rows} dim={dim}{' in-place' if inplace else ''} eps={e}", run, {"y": (ln_ref(x, g, b, e), "bf16", 1e-5, 2.0**-7)})


# ---------------------------------------------------------------------------------------------------------
# rope.cu


def group_rope(c):
    m = c.mod("rope.cu")
    eps = 1e-6
    hds = [16, 128] if c.quick else [16, 32, 64, 128]
    for hd in hds:
        for L, nH, nKV, pos0, max_ctx in [(5, 4, 2, 37, 48), (3, 3, 1, 0, 4), (2, 16, 8, 1000, 1003)]:
            if hd == 128 and nH == 16 and c.quick:
                continue
            rng = rng_for(f"rope{hd}{L}{nH}")
            heads = nH + 2 * nKV
            qkv = rand_bf(rng, (L, heads * hd), 2.0)
            qn = rand_bf(rng, (hd,), 0.3, 1.0)
            kn = rand_bf(rng, (hd,), 0.3, 1.0)
            inv_freq = (1.0 / (1e6 ** (np.arange(0, hd, 2, dtype=np.float64) / hd))).astype(F32)
            kc0 = rand_bf(rng, (nKV, max_ctx, hd), 9.0)
            vc0 = rand_bf(rng, (nKV, max_ctx, hd), 9.0)
            # reference
            x = bf2f(qkv).reshape(L, heads, hd)
            ss = (x[:, : nH + nKV].astype(np.float64) ** 2).sum(-1)
            inv = (1.0 / np.sqrt(ss / hd + eps)).astype(F32)
            wts = np.concatenate([np.repeat(bf2f(qn)[None], nH, 0), np.repeat(bf2f(kn)[None], nKV, 0)])
            xn = rbf(wts[None] * rbf(x[:, : nH + nKV] * inv[..., None]))
            pos = (pos0 + np.arange(L)).astype(F32)
            a = pos[:, None] * inv_freq[None, :]  # f32
            cs = rbf(np.cos(a.astype(np.float64)).astype(F32))[:, None, :]
            sn = rbf(np.sin(a.astype(np.float64)).astype(F32))[:, None, :]
            x1, x2 = xn[..., : hd // 2], xn[..., hd // 2 :]
            o1 = rbf(rbf(x1 * cs) - rbf(x2 * sn))
            o2 = rbf(rbf(x2 * cs) + rbf(x1 * sn))
            o = np.concatenate([o1, o2], -1)
            q_ref = o[:, :nH]
            k_ref = bf2f(kc0).copy()
            v_ref = bf2f(vc0).copy()
            for i in range(L):
                k_ref[:, pos0 + i] = o[i, nH:]
                v_ref[:, pos0 + i] = x[i, nH + nKV :]

            def run(qkv=qkv, qn=qn, kn=kn, inv_freq=inv_freq, kc0=kc0, vc0=vc0, L=L, nH=nH, nKV=nKV, pos0=pos0, max_ctx=max_ctx, hd=hd, heads=heads):
                Q = Buf(m, shape=(L, nH, hd), dtype=np.uint16)
                K, V = Buf(m, kc0), Buf(m, vc0)
                P = Buf(m, np.array([pos0], np.int32))
                grid = (L, -(-heads // 4))
                m.launch(f"qk_norm_rope_bf16_hd{hd}", grid, 128, 0,
                         [Buf(m, qkv), Buf(m, qn), Buf(m, kn), Buf(m, inv_freq), P, Q, K, V, I32(L), I32(nH), I32(nKV), I32(max_ctx), Fl(eps)])
                return {"q": Q.get(), "k": K.get(), "v": V.get()}

            c.check(f"qk_norm_rope hd={hd} L={L} nH={nH} nKV={nKV} pos0={pos0}", run,
                    {"q": (q_ref, "bf16", 1e-6, 2.0**-6), "k": (k_ref, "bf16", 1e-6, 2.0**-6), "v": (f2bf(v_ref), "exact")})


# ---------------------------------------------------------------------------------------------------------
# activation.cu


def blocks(n, per):
    return max(1, -(-n // per))


def group_activation(c):
    m = c.mod("activation.cu")
    for L, I in [(3, 1024), (2, 8), (5, 1160)]:
        rng = rng_for(f"swiglu{L}{I}")
        gu = rand_bf(rng, (L, 2 * I), 3.0)
        g, u = bf2f(gu[:, :I]), bf2f(gu[:, I:])
        ref = rbf(rbf(g / (F32(1) + np.exp(-g))) * u)

        def run(gu=gu, L=L, I=I):
            O = Buf(m, shape=(L, I), dtype=np.uint16)
            m.launch("swiglu_bf16", (blocks(L * I // 8, 256),), 256, 0, [Buf(m, gu), O, I32(L), I32(I)])
            return {"out": O.get()}

        c.check(f"swiglu L={L} I={I}", run, {"out": (ref, "bf16", 1e-6, 2.0**-7)})
    for n in [8, 2048, 8 * 300]:
        rng = rng_for(f"gelu{n}")
        x = rand_bf(rng, (n,), 3.0)
        z = bf2f(x).astype(np.float64)
        ref = rbf((0.5 * z * (1 + np.tanh(0.7978845608028654 * (z + 0.044715 * z**3)))).astype(F32))

        def run(x=x, n=n):
            X = Buf(m, x)
            m.launch("gelu_tanh_bf16", (blocks(n // 8, 256),), 256, 0, [X, U64(n)])
            return {"x": X.get()}

        c.check(f"gelu_tanh n={n}", run, {"x": (ref, "bf16", 1e-6, 2.0**-7)})
    for n in [8, 4096 + 8]:
        rng = rng_for(f"add{n}")
        x, d = rand_bf(rng, (n,), 3.0), rand_bf(rng, (n,), 1.0)

        def run(x=x, d=d, n=n):
            X = Buf(m, x)
            m.launch("add_bf16", (blocks(n // 8, 256),), 256, 0, [X, Buf(m, d), U64(n)])
            return {"x": X.get()}

        c.check(f"add n={n}", run, {"x": (f2bf(bf2f(x) + bf2f(d)), "exact")})
    for rows, cols in [(5, 72), (3, 1152), (1, 8)]:
        rng = rng_for(f"bias{rows}{cols}")
        x, b = rand_bf(rng, (rows, cols), 3.0), rand_bf(rng, (cols,), 1.0)

        def run(x=x, b=b, rows=rows, cols=cols):
            X = Buf(m, x)
            m.launch("add_bias_bf16", (blocks(rows * cols // 8, 256),), 256, 0, [X, Buf(m, b), I32(rows), I32(cols)])
            return {"x": X.get()}

        c.check(f"add_bias rows={rows} cols={cols}", run, {"x": (f2bf(bf2f(x) + bf2f(b)[None]), "exact")})


# ---------------------------------------------------------------------------------------------------------
# embedding.cu


def group_embedding(c):
    m = c.mod("embedding.cu")
    for H, vocab in [(64, 50), (1040, 37), (8, 5)]:
        rng = rng_for(f"emb{H}")
        table = rand_bf(rng, (vocab, H))
        ids = np.array([3, -1, vocab - 1, vocab, 0, 7 % vocab, -300], np.int32)
        n = len(ids)
        ref = np.zeros((n, H), np.uint16)
        for r, i in enumerate(ids):
            if 0 <= i < vocab:
                ref[r] = table[i]

        def run(table=table, ids=ids, H=H, vocab=vocab, n=n):
            O = Buf(m, shape=(n, H), dtype=np.uint16)
            m.launch("embedding_gather_bf16", (n,), 128, 0, [Buf(m, ids), Buf(m, table), O, I32(n), I32(H), I32(vocab)])
            return {"out": O.get()}

        c.check(f"embedding_gather H={H} vocab={vocab}", run, {"out": (ref, "exact")})

        V, nvis = 20, 6
        embed, vte, vis = rand_bf(rng, (vocab, H)), rand_bf(rng, (V, H)), rand_bf(rng, (nvis, H))
        src = np.array([[0, 1], [1, V - 4], [1, V - 1], [2, 0], [2, nvis - 1], [0, vocab - 1], [2, 3]], np.int32)
        tabs = [embed, vte, vis]
        ref = np.stack([tabs[s][r] for s, r in src])

        def run(embed=embed, vte=vte, vis=vis, src=src, H=H):
            n = len(src)
            O = Buf(m, shape=(n, H), dtype=np.uint16)
            m.launch("merge_rows_bf16", (n,), 128, 0, [Buf(m, src), Buf(m, embed), Buf(m, vte), Buf(m, vis), O, I32(n), I32(H)])
            return {"out": O.get()}

        c.check(f"merge_rows H={H}", run, {"out": (ref, "exact")})

    def run():
        P = Buf(m, np.array([41], np.int32))
        m.launch("advance_position_i32", (1,), 32, 0, [P, I32(5)])
        m.launch("advance_position_i32", (1,), 32, 0, [P, I32(1)])
        return {"pos": P.get()}

    c.check("advance_position", run, {"pos": (np.array([47], np.int32), "exact")})


# ---------------------------------------------------------------------------------------------------------
# vision.cu


def group_vision(c):
    m = c.mod("vision.cu")
    for n, heads, hd in [(7, 2, 24), (5, 2, 72), (3, 16, 72), (4, 2, 80), (3, 1, 32)]:
        rng = rng_for(f"vr{n}{heads}{hd}")
        stride = 3 * heads * hd
        qkv = rand_bf(rng, (n, stride), 2.0)
        pos = np.stack([rng.integers(0, 30, n), rng.integers(0, 40, n), np.full(n, 30), np.full(n, 40)], 1).astype(np.int32)
        r, nf = hd // 2, hd // 4
        x = bf2f(qkv).reshape(n, 3 * heads, hd).copy()
        ref = x.copy()
        for t in range(n):
            for i in range(r):
                j = i if i < nf else i - nf
                coord = F32(pos[t, 0] if i < nf else pos[t, 1])
                omega = F32(1.0) / np.power(F32(10000.0), F32(2 * j) / F32(r))
                a = coord * omega
                cs, sn = F32(np.cos(np.float64(a))), F32(np.sin(np.float64(a)))
                for part in range(2 * heads):
                    u, v = x[t, part, i], x[t, part, i + r]
                    ref[t, part, i] = u * cs - v * sn
                    ref[t, part, i + r] = v * cs + u * sn
        ref = ref.reshape(n, stride)
        # the v third is untouched (exact)
        def run(qkv=qkv, pos=pos, n=n, heads=heads, hd=hd, stride=stride):
            X = Buf(m, qkv)
            m.launch("vision_rope2d_bf16", (n,), 256, 0, [X, Buf(m, pos), I32(n), I32(heads), I32(hd), I32(stride)])
            o = X.get()
            return {"qk": o[:, : 2 * heads * hd], "v": o[:, 2 * heads * hd :]}

        c.check(f"vision_rope2d n={n} heads={heads} hd={hd}", run,
                {"qk": (rbf(ref[:, : 2 * heads * hd]), "bf16", 1e-6, 2.0**-7), "v": (qkv[:, 2 * heads * hd :], "exact")})

    # pos_embed_bicubic: reference = PyTorch bicubic (Keys kernel, A = −0.75), align_corners=False, source
    # index not clamped, taps clamped to the border; computed independently in f64 from the kernel W(d).
    A = -0.75

    def W(d):
        d = abs(d)
        if d <= 1:
            return (A + 2) * d**3 - (A + 3) * d**2 + 1
        if d < 2:
            return A * d**3 - 5 * A * d**2 + 8 * A * d - 4 * A
        return 0.0

    def axis(o, out, inn):
        src = (inn / out) * (o + 0.5) - 0.5
        i0 = int(np.floor(src))
        return [(min(max(i0 - 1 + k, 0), inn - 1), W(src - (i0 - 1 + k))) for k in range(4)]

    for side, D, grids in [(6, 40, [(4, 5), (6, 6), (8, 10)]), (4, 200, [(3, 7), (1, 1)]), (8, 16, [(16, 2)])]:
        rng = rng_for(f"bic{side}{D}")
        table = rand_bf(rng, (side * side, D))
        pos = np.array([(y, x, h, w) for h, w in grids for y in range(h) for x in range(w)], np.int32)
        n = len(pos)
        x = rand_bf(rng, (n, D), 2.0)
        T = bf2f(table).astype(np.float64).reshape(side, side, D)
        pe = np.zeros((n, D))
        for t, (yy, xx, h, w) in enumerate(pos):
            for iy, wy in axis(yy, h, side):
                for ix, wx in axis(xx, w, side):
                    pe[t] += wy * wx * T[iy, ix]
        ref = rbf(bf2f(x) + rbf(pe.astype(F32)))

        def run(x=x, table=table, pos=pos, n=n, D=D, side=side):
            X = Buf(m, x)
            m.launch("pos_embed_bicubic_bf16", (n,), 128, 0, [X, Buf(m, table), Buf(m, pos), I32(n), I32(D), I32(side)])
            return {"x": X.get()}

        c.check(f"pos_embed_bicubic side={side} D={D} grids={grids}", run, {"x": (ref, "bf16", 1e-6, 2.0**-6)})


# ---------------------------------------------------------------------------------------------------------
# softmax.cu


def group_softmax(c):
    m = c.mod("softmax.cu")
    for rows, cols, ys in [(3, 100, 104), (2, 65532, 65536), (2, 1, 8), (1, 4100, 4100)]:
        rng = rng_for(f"sm{rows}{cols}")
        x = rand_bf(rng, (rows, cols), 4.0)
        xf = bf2f(x).astype(np.float64)
        e = np.exp(xf - xf.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        ref = np.zeros((rows, ys))
        ref[:, :cols] = rbf(p.astype(F32))

        def run(x=x, rows=rows, cols=cols, ys=ys):
            Y = Buf(m, shape=(rows, ys), dtype=np.uint16)
            m.launch("softmax_rows_bf16", (rows,), 1024, 0, [Buf(m, x), Y, I32(cols), I32(ys)])
            return {"y": Y.get()}

        c.check(f"softmax_rows rows={rows} cols={cols} y_stride={ys}", run, {"y": (ref, "bf16", 1e-7, 2.0**-7)})


# ---------------------------------------------------------------------------------------------------------
# attention references


def attn_ref(q, k, v, mask):
    """q [Lq, HD], k/v [Lk, HD] (f64), mask [Lq, Lk] bool (True = visible) → [Lq, HD]."""
    hd = q.shape[1]
    s = (q @ k.T) * (1.0 / np.sqrt(hd))
    s = np.where(mask, s, -np.inf)
    s = s - s.max(1, keepdims=True)
    p = np.where(mask, np.exp(s), 0.0)
    return (p @ v) / p.sum(1, keepdims=True)


def attn_tol(v):
    """Output tolerance: 1–2 bf16 ulps relative, plus 2^-8 of the largest |V| (the mma kernels round P to
    bf16); an indexing or masking error is orders of magnitude above this."""
    return (2.0**-8 * float(np.abs(bf2f(v)).max()), 2.0**-7)


NAN_BF = np.uint16(0x7FC0)


def make_cache(rng, nKV, max_ctx, hd, ctx):
    """K/V caches with rows ≥ ctx set to NaN: a kernel that reads past the context produces NaN."""
    k = rand_bf(rng, (nKV, max_ctx, hd), 1.5)
    v = rand_bf(rng, (nKV, max_ctx, hd), 1.5)
    k[:, ctx:] = NAN_BF
    v[:, ctx:] = NAN_BF
    return k, v


def group_decode(c):
    m = c.mod("decode_attention.cu")
    cases = [
        (16, 8, 2, 100, 4, 128),  # hd, nH, nKV, pos, S, max_ctx
        (16, 8, 1, 4, 8, 16),  # ctx 5 < S: splits 5..7 empty; G = 8
        (16, 2, 2, 0, 4, 8),  # ctx 1, G = 1
        (128, 8, 2, 130, 3, 160),
        (128, 4, 4, 6, 16, 8),  # empty splits
        (128, 16, 2, 63, 1, 64),  # G = 8, one split, ctx exactly a tile
        (32, 6, 2, 200, 5, 256),  # G = 3
        (64, 4, 1, 64, 2, 70),
    ]
    if c.quick:
        cases = cases[:5]
    for hd, nH, nKV, pos, S, max_ctx in cases:
        rng = rng_for(f"dec{hd}{nH}{nKV}{pos}{S}")
        ctx = pos + 1
        q = rand_bf(rng, (nH, hd), 1.5)
        kc, vc = make_cache(rng, nKV, max_ctx, hd, ctx)
        G = nH // nKV
        ref = np.stack([attn_ref(bf2f(q[h : h + 1]).astype(np.float64), bf2f(kc[h // G, :ctx]).astype(np.float64),
                                 bf2f(vc[h // G, :ctx]).astype(np.float64), np.ones((1, ctx), bool))[0] for h in range(nH)])
        chunk = -(-ctx // S)
        empty = [s for s in range(S) if s * chunk >= ctx]

        def run(q=q, kc=kc, vc=vc, hd=hd, nH=nH, nKV=nKV, pos=pos, S=S, max_ctx=max_ctx):
            PO = Buf(m, shape=(nH, S, hd), dtype=np.float32)
            PML = Buf(m, shape=(nH, S, 2), dtype=np.float32)
            O = Buf(m, shape=(nH, hd), dtype=np.uint16)
            P = Buf(m, np.array([pos], np.int32))
            scale = F32(1.0) / np.sqrt(F32(hd))
            m.launch(f"decode_attention_bf16_hd{hd}", (nKV, S), 128, 0,
                     [Buf(m, q), Buf(m, kc), Buf(m, vc), P, PO, PML, I32(nH), I32(nKV), I32(max_ctx), I32(S), Fl(scale)])
            m.launch(f"decode_attention_combine_bf16_hd{hd}", (nH,), hd, 0, [PO, PML, O, I32(S)])
            ml = PML.get()
            return {"out": O.get(), "empty_ml": ml[:, empty].copy()}

        empty_ml = np.zeros((nH, len(empty), 2), np.float32)
        empty_ml[..., 0] = -np.inf
        c.check(f"decode_attention hd={hd} nH={nH} nKV={nKV} ctx={ctx} S={S}{' (empty splits ' + str(empty) + ')' if empty else ''}", run,
                {"out": (ref, "bf16", *attn_tol(vc[:, :ctx])), "empty_ml": (empty_ml, "exact")})


def group_prefill(c, mma):
    cu = "attention_mma.cu" if mma else "attention.cu"
    m = c.mod(cu)
    rows = 64 if mma else 32
    cases = [
        (16, 40, 13, 4, 2),  # hd, L, start, nH, nKV
        (128, 70, 5, 2, 1),
        (32, 1, 0, 2, 2),
        (64, 33, 64, 2, 1),
        (16, 130, 30, 2, 2),
        (128, 65, 0, 1, 1),
    ]
    if c.quick:
        cases = [cases[0], cases[1], cases[4]]
    for hd, L, start, nH, nKV in cases:
        rng = rng_for(f"pf{hd}{L}{start}{mma}")
        ctx = start + L
        max_ctx = ctx + 7
        q = rand_bf(rng, (L, nH, hd), 1.5)
        kc, vc = make_cache(rng, nKV, max_ctx, hd, ctx)
        G = nH // nKV
        mask = np.arange(ctx)[None, :] <= (start + np.arange(L))[:, None]
        ref = np.stack([attn_ref(bf2f(q[:, h]).astype(np.float64), bf2f(kc[h // G, :ctx]).astype(np.float64),
                                 bf2f(vc[h // G, :ctx]).astype(np.float64), mask) for h in range(nH)], 1).reshape(L, nH * hd)
        name = f"prefill_attention{'_mma' if mma else ''}_bf16_hd{hd}"

        def run(q=q, kc=kc, vc=vc, hd=hd, L=L, start=start, nH=nH, nKV=nKV, max_ctx=max_ctx, name=name):
            O = Buf(m, shape=(L, nH * hd), dtype=np.uint16)
            P = Buf(m, np.array([start], np.int32))
            scale = F32(1.0) / np.sqrt(F32(hd))
            m.launch(name, (blocks(L, rows), nH), 128, 0, [Buf(m, q), Buf(m, kc), Buf(m, vc), O, P, I32(L), I32(nH), I32(nKV), I32(max_ctx), Fl(scale)])
            return {"out": O.get()}

        c.check(f"{name} L={L} start={start} nH={nH} nKV={nKV}", run, {"out": (ref, "bf16", *attn_tol(vc[:, :ctx]))})


def segment_tiles_of(segments, rows):
    tiles = []
    for start, ln in segments:
        for q in range(start, start + ln, rows):
            tiles.append([q, min(start + ln - q, rows), start, ln])
    return np.array(tiles, np.int32)


def group_segment(c, mma):
    cu = "attention_mma.cu" if mma else "attention.cu"
    m = c.mod(cu)
    rows = 64 if mma else 32
    if mma:
        segs = [(0, 63), (63, 65), (128, 128), (256, 1), (257, 70)]
    else:
        segs = [(0, 31), (31, 33), (64, 64), (128, 1), (129, 40)]
    hds = [(24, 2), (72, 2)] if c.quick else [(24, 2), (72, 2), (32, 1), (64, 1), (80, 1)]
    for hd, heads in hds:
        rng = rng_for(f"seg{hd}{mma}")
        N = segs[-1][0] + segs[-1][1]
        D = heads * hd
        qkv = rand_bf(rng, (N, 3 * D), 1.5)
        x = bf2f(qkv).astype(np.float64).reshape(N, 3, heads, hd)
        ref = np.zeros((N, heads, hd))
        for s0, ln in segs:
            for h in range(heads):
                ref[s0 : s0 + ln, h] = attn_ref(x[s0 : s0 + ln, 0, h], x[s0 : s0 + ln, 1, h], x[s0 : s0 + ln, 2, h], np.ones((ln, ln), bool))
        tiles = segment_tiles_of(segs, rows)
        name = f"segment_attention{'_mma' if mma else ''}_bf16_hd{hd}"

        def run(qkv=qkv, tiles=tiles, heads=heads, hd=hd, N=N, D=D, name=name):
            O = Buf(m, shape=(N, D), dtype=np.uint16)
            scale = F32(1.0) / np.sqrt(F32(hd))
            m.launch(name, (len(tiles), heads), 128, 0, [Buf(m, qkv), O, Buf(m, tiles), I32(heads), Fl(scale)])
            return {"out": O.get()}

        c.check(f"{name} heads={heads} segments={segs}", run, {"out": (ref.reshape(N, D), "bf16", *attn_tol(qkv[:, 2 * D :]))})



# ---------------------------------------------------------------------------------------------------------
# gemv.cu (launch for all: grid ceil(n / 8), block 256, dynamic shared memory 2·k bytes)


def dot_tol(w, x):
    """f32 accumulation vs the f64 reference: a few ulps of Σ|w·x| per row."""
    return 2e-6 * (np.abs(bf2f(w).astype(np.float64)) @ np.abs(bf2f(x).astype(np.float64)))


def group_gemv(c):
    m = c.mod("gemv.cu")
    mn = c.mod("norm.cu")
    ma = c.mod("activation.cu")
    eps = 1e-6

    def gemv(W, X, R, Y, n, k):
        m.launch("gemv_bf16", (blocks(n, 8),), 256, 2 * k, [W, X, R if R is not None else NULL, Y, I32(n), I32(k)])

    for n, k, res in [(37, 64, "none"), (8, 2056, "separate"), (20, 4104, "alias y"), (1, 2048, "none"), (9, 16, "alias y")]:
        rng = rng_for(f"gemv{n}{k}{res}")
        w, x, r = rand_bf(rng, (n, k), 0.5), rand_bf(rng, (k,)), rand_bf(rng, (n,), 4.0)
        dot = bf2f(w).astype(np.float64) @ bf2f(x).astype(np.float64)
        ref = rbf(dot.astype(F32)) if res == "none" else rbf(bf2f(r) + rbf(dot.astype(F32)))

        def run(w=w, x=x, r=r, n=n, k=k, res=res):
            Y = Buf(m, r) if res == "alias y" else Buf(m, shape=(n,), dtype=np.uint16)
            R = None if res == "none" else (Y if res == "alias y" else Buf(m, r))
            gemv(Buf(m, w), Buf(m, x), R, Y, n, k)
            return {"y": Y.get()}

        # |error| ≤ the f32 accumulation error of the dot product (before its rounding) + 1–2 bf16 ulps
        c.check(f"gemv_bf16 n={n} k={k} residual={res}", run, {"y": (ref, "bf16", float(dot_tol(w, x).max()) + 1e-6, 2.0**-7)})

    for n, k in [(37, 2056), (5, 64)]:
        rng = rng_for(f"gemvl{n}{k}")
        w, x = rand_bf(rng, (n, k), 0.5), rand_bf(rng, (k,))
        dot = bf2f(w).astype(np.float64) @ bf2f(x).astype(np.float64)

        def run(w=w, x=x, n=n, k=k):
            Y = Buf(m, shape=(n,), dtype=np.float32)
            m.launch("gemv_logits_f32", (blocks(n, 8),), 256, 2 * k, [Buf(m, w), Buf(m, x), Y, I32(n), I32(k)])
            return {"y": Y.get()}

        c.check(f"gemv_logits_f32 n={n} k={k}", run, {"y": (dot, "f32", float(dot_tol(w, x).max()), 0.0)})

    # Fused RMSNorm + GEMV: against numpy, and bit-for-bit against the unfused chain (rmsnorm[_residual]_bf16
    # then gemv_bf16) run on the same emulator.
    for n, k, with_delta, with_hout in [(37, 2048, True, True), (17, 1032, False, False), (9, 64, True, False)]:
        rng = rng_for(f"gemvrms{n}{k}{with_delta}{with_hout}False")
        w, h, d, g = rand_bf(rng, (n, k), 0.5), rand_bf(rng, (k,), 2.0), rand_bf(rng, (k,), 1.0), rand_bf(rng, (k,), 0.3, 1.0)
        s = f2bf(bf2f(h) + bf2f(d)) if with_delta else h
        sf = bf2f(s).astype(np.float64)
        inv = F32(1.0 / np.sqrt((sf**2).sum() / k + eps))
        xn = f2bf(bf2f(g) * rbf(bf2f(s) * inv))
        dot = bf2f(w).astype(np.float64) @ bf2f(xn).astype(np.float64)

        def run(w=w, h=h, d=d, g=g, n=n, k=k, with_delta=with_delta, with_hout=with_hout):
            W, H, G = Buf(m, w), Buf(m, h), Buf(m, g)
            D = Buf(m, d) if with_delta else NULL
            Y = Buf(m, shape=(n,), dtype=np.uint16)
            HO = Buf(m, shape=(k,), dtype=np.uint16) if with_hout else None
            args = [W, H, D, G, HO if HO is not None else NULL, Y, I32(n), I32(k), Fl(eps)]
            m.launch("gemv_rmsnorm_bf16", (blocks(n, 8),), 256, 2 * k, args)
            out = {"y": Y.get()}
            if HO is not None:
                out["h_out"] = HO.get()
            # the unfused chain
            H2 = Buf(mn, h)
            XN = Buf(mn, shape=(k,), dtype=np.uint16)
            if with_delta:
                mn.launch("rmsnorm_residual_bf16", (1,), 256, 0, [H2, Buf(mn, d), Buf(mn, g), XN, I32(k), Fl(eps)])
            else:
                mn.launch("rmsnorm_bf16", (1,), 256, 0, [H2, Buf(mn, g), XN, I32(k), Fl(eps)])
            Y2 = Buf(m, shape=(n,), dtype=np.uint16)
            gemv(Buf(m, w), XN, None, Y2, n, k)
            out["y_unfused"] = Y2.get()
            out["h_unfused"] = H2.get()
            out["x_unfused"] = XN.get()
            return out

        refs = {"x_unfused": (bf2f(xn), "bf16", 1e-6, 2.0**-7)}
        refs["y"] = (rbf(dot.astype(F32)), "bf16", float(dot_tol(w, xn).max()) + 1e-6, 2.0**-7)
        if with_hout:
            refs["h_out"] = (s, "exact")

        def run_cmp(run=run):
            o = run()
            # bit-equality with the unfused kernels is part of the contract (gemv.cu header)
            o["fused_eq_unfused"] = np.array([o["y"].tobytes() == o["y_unfused"].tobytes()])
            return o

        refs["fused_eq_unfused"] = (np.array([True]), "exact")
        c.check(f"gemv_rmsnorm_bf16 n={n} k={k} delta={with_delta} h_out={with_hout}", run_cmp, refs)

    for n, k in [(37, 1024), (9, 64), (16, 4104)]:
        rng = rng_for(f"gemvsw{n}{k}")
        w, gu = rand_bf(rng, (n, k), 0.5), rand_bf(rng, (2 * k,), 2.0)
        gg, uu = bf2f(gu[:k]), bf2f(gu[k:])
        xa = f2bf(rbf(gg / (F32(1) + np.exp(-gg))) * uu)
        dot = bf2f(w).astype(np.float64) @ bf2f(xa).astype(np.float64)

        def run(w=w, gu=gu, n=n, k=k):
            Y = Buf(m, shape=(n,), dtype=np.uint16)
            m.launch("gemv_swiglu_bf16", (blocks(n, 8),), 256, 2 * k, [Buf(m, w), Buf(m, gu), Y, I32(n), I32(k)])
            XA = Buf(ma, shape=(k,), dtype=np.uint16)
            ma.launch("swiglu_bf16", (blocks(k // 8, 256),), 256, 0, [Buf(ma, gu), XA, I32(1), I32(k)])
            Y2 = Buf(m, shape=(n,), dtype=np.uint16)
            gemv(Buf(m, w), XA, None, Y2, n, k)
            y = Y.get()
            return {"y": y, "fused_eq_unfused": np.array([y.tobytes() == Y2.get().tobytes()])}

        c.check(f"gemv_swiglu_bf16 n={n} k={k}", run,
                {"y": (rbf(dot.astype(F32)), "bf16", float(dot_tol(w, xa).max()) + 1e-6, 2.0**-7), "fused_eq_unfused": (np.array([True]), "exact")})


# ---------------------------------------------------------------------------------------------------------
# sampling.cu: reference = a numpy port of native/src/generate/sampler.rs (the CPU sampler)

SAMPLE_PARAMS = np.dtype({"names": ["temperature", "top_k", "top_p", "rep_penalty", "u", "top_n", "vocab"],
                          "formats": ["<f4", "<i4", "<f4", "<f4", "<f8", "<i4", "<i4"], "offsets": [0, 4, 8, 12, 16, 24, 28], "itemsize": 32})
SAMPLE_RESULT = np.dtype({"names": ["id", "logprob", "n", "pad", "top_ids", "top_logprobs"],
                          "formats": ["<i4", "<f4", "<i4", "<i4", ("<i4", 20), ("<f4", 20)], "offsets": [0, 4, 8, 12, 16, 96], "itemsize": 176})


def cpu_sample(z, temperature, top_k, top_p, u, top_n):
    """sampler.rs Sampler::sample after the repetition penalty; z f32 (penalised). Returns (id, logprob,
    [(id, logprob)], margin) where margin is the multinomial target's distance to the nearest boundary
    (relative to the total; tiny = the f64 rounding of either side may legitimately flip the choice)."""
    z = z.astype(F32).copy()
    nn = ~np.isnan(z)
    mx = z[nn].max() if nn.any() else F32(-np.inf)
    total = float(np.exp((z[nn] - mx).astype(np.float64)).sum()) if mx != -np.inf else 1.0
    log_total = np.log(total)
    lp = lambda v: F32(np.float64(F32(v) - mx) - log_total)  # noqa: E731
    order = sorted([i for i in range(len(z)) if nn[i]], key=lambda i: (-z[i], i))[:top_n]
    top = [(i, lp(z[i])) for i in order]
    margin = np.inf
    if temperature <= 0:
        cand = np.where(nn, z, -np.inf)
        i = int(np.argmax(cand)) if nn.any() else 0
        return i, lp(z[i]), top, margin
    pen = z.copy()
    w = z if temperature == 1.0 else (z / F32(temperature)).astype(F32)
    w = w.copy()
    if 0 < top_k < len(w):
        s = np.sort(np.where(np.isnan(w), -np.inf, w))[::-1]
        kth = s[top_k - 1]
        w[np.isnan(w) | (w < kth)] = -np.inf
    if top_p < 1.0:
        idx = [i for i in range(len(w)) if np.isfinite(w[i])]
        if len(idx) > 1:
            idx.sort(key=lambda i: w[i])
            wm = w[idx[-1]]
            tot = sum(np.exp(np.float64(w[i] - wm)) for i in idx)
            cut = 1.0 - np.float64(F32(top_p))
            cum, thr = 0.0, wm
            for i in idx:
                cum += np.exp(np.float64(w[i] - wm)) / tot
                if cum > cut:
                    thr = w[i]
                    break
            w[w < thr] = -np.inf
    fin = np.isfinite(w)
    wmx = w[~np.isnan(w)].max()
    if wmx == -np.inf:
        i = int(np.argmax(np.where(np.isnan(w), -np.inf, w)))
        return i, lp(pen[i]), top, margin
    e = np.where(fin, np.exp((w - wmx).astype(np.float64)), 0.0)
    tot = e.sum()
    target = u * tot
    cum = np.cumsum(e)
    pick = int(np.searchsorted(cum, target, side="right"))
    ids = np.flatnonzero(fin)
    if pick >= len(w) or not fin[pick]:
        pick = int(ids[ids >= pick][0]) if (ids >= pick).any() else int(ids[-1])
    margin = float(np.min(np.abs(cum[fin] - target)) / tot)
    return pick, lp(pen[pick]), top, margin


def group_sampling(c):
    m = c.mod("sampling.cu")
    V = 5000
    rng = rng_for("sampling")
    # logits_penalty_f32
    logits = (rng.standard_normal(V) * 3).astype(F32)
    seen = (rng.random(V) < 0.05).astype(np.uint8)
    for rho in [1.3, 1.0, 0.8]:
        p = np.zeros(1, SAMPLE_PARAMS)
        p["rep_penalty"] = rho
        ref = logits.copy()
        if rho != 1.0:
            s = seen.astype(bool)
            ref[s] = np.where(ref[s] > 0, ref[s] / F32(rho), ref[s] * F32(rho))

        def run(p=p):
            Z = Buf(m, shape=(V,), dtype=np.float32)
            m.launch("logits_penalty_f32", (-(-V // 256),), 256, 0, [Buf(m, logits), Buf(m, seen), Z, Buf(m, p), I32(V)])
            return {"z": Z.get()}

        c.check(f"logits_penalty_f32 V={V} rho={rho}", run, {"z": (ref, "exact")})

    base = (rng.standard_normal(V) * 3).astype(F32)
    tied = rbf(base * F32(0.5))  # bf16-rounded: many exact ties
    nan_z = base.copy()
    nan_z[[0, 17, 4000]] = np.nan
    maxtie = base.copy()
    j = int(np.argmax(base))
    maxtie[j + 5 if j + 5 < V else j - 5] = base[j]
    small = np.array([1.0, np.nan, 3.0, 3.0, -2.0, np.nan, 0.5], F32)
    cases = [
        # name, z, temperature, top_k, top_p, u, top_n
        ("greedy top_n=5", base, 0.0, 0, 1.0, 0.5, 5),
        ("greedy tie at max, top_n=20", maxtie, 0.0, 0, 1.0, 0.5, 20),
        ("greedy with NaN", nan_z, 0.0, 0, 1.0, 0.5, 3),
        ("greedy top_n=0", base, -1.0, 0, 1.0, 0.5, 0),
        ("T=0.7 top_k=50", base, 0.7, 50, 1.0, 0.3, 4),
        ("T=1 top_k=1 u=0.999", base, 1.0, 1, 1.0, 0.999, 1),
        ("T=0.6 top_k=2 u=0.999", base, 0.6, 2, 1.0, 0.999, 2),
        ("T=1 top_k=5 u=0.999", base, 1.0, 5, 1.0, 0.999, 5),
        ("T=1 top_p=0.9", base, 1.0, 0, 0.9, 0.77, 2),
        ("T=0.8 top_k=40 top_p=0.5", base, 0.8, 40, 0.5, 0.999, 1),
        ("T=1.3 ties top_k=10", tied, 1.3, 10, 1.0, 0.61, 20),
        ("T=1 ties top_p=0.3", tied, 1.0, 0, 0.3, 0.42, 5),
        ("T=0.9 top_p=0 (max only)", tied, 0.9, 0, 0.0, 0.9, 3),
        ("T=1 u=0 (first survivor)", base, 1.0, 100, 1.0, 0.0, 1),
        ("T=2 full multinomial", base, 2.0, 0, 1.0, 0.123456, 7),
        ("T=1 top_k>=V (off)", base, 1.0, V, 1.0, 0.55, 2),
        ("T=0.5 NaN logits top_k=3", nan_z, 0.5, 3, 1.0, 0.8, 3),
        ("small V=7 with NaN, top_n=20", small, 1.0, 0, 1.0, 0.95, 20),
        ("small V=7 greedy tie", small, 0.0, 0, 1.0, 0.1, 20),
    ]
    for name, z, T, k, tp, u, tn in cases:
        Vz = len(z)
        pid, plp, ptop, margin = cpu_sample(z, T, k, tp, u, tn)
        p = np.zeros(1, SAMPLE_PARAMS)
        p["temperature"], p["top_k"], p["top_p"], p["rep_penalty"], p["u"], p["top_n"], p["vocab"] = T, k, tp, 1.0, u, tn, Vz
        seen0 = np.zeros(Vz, np.uint8)
        seen0[::97] = 1
        seen_ref = seen0.copy()
        seen_ref[pid] = 1
        nr = min(tn, 20)
        top_ids = np.full(nr, -1, np.int32)
        top_lps = np.zeros(nr, F32)
        for r, (i, l) in enumerate(ptop):
            top_ids[r], top_lps[r] = i, l
        found = len(ptop)

        def run(z=z, p=p, seen0=seen0, nr=nr, found=found):
            res = np.zeros(1, SAMPLE_RESULT)
            res["top_ids"] = 12345  # stale values from a previous step
            R, S, N = Buf(m, res), Buf(m, seen0), Buf(m, np.array([-7], np.int32))
            m.launch("sample_f32", (1,), 1024, 0, [Buf(m, z), Buf(m, p), R, S, N])
            r = R.get()[0]
            return {"id": np.array([r["id"]], np.int32), "next_id": N.get(), "logprob": np.array([r["logprob"]], F32), "n": np.array([r["n"]], np.int32),
                    "top_ids": r["top_ids"][:nr].copy(), "top_logprobs": r["top_logprobs"][:found].copy(), "seen": S.get()}

        refs = {"id": (np.array([pid], np.int32), "exact"), "next_id": (np.array([pid], np.int32), "exact"),
                "logprob": (np.array([plp], F32), "f32", 2e-6, 1e-6), "n": (np.array([tn], np.int32), "exact"),
                "top_ids": (top_ids, "exact"), "top_logprobs": (top_lps[:found], "f32", 2e-6, 1e-6), "seen": (seen_ref, "exact")}
        note = f" (multinomial margin {margin:.1e})" if np.isfinite(margin) else ""
        if margin < 1e-9:
            refs.pop("id"), refs.pop("next_id"), refs.pop("logprob"), refs.pop("seen")
            note += " [choice too close to a boundary to compare]"
        c.check(f"sample_f32 {name}{note}", run, refs)

    group_top_p_determinism(c, m)


# ---------------------------------------------------------------------------------------------------------
# The batched decode step (continuous batching): gemv_rows (gemv.cu), qk_norm_rope_rows (rope.cu),
# decode_attention_rows (decode_attention.cu), logits_penalty_rows / sample_rows (sampling.cu). Each is
# checked against numpy and, row by row, bit for bit against the single-request kernel on that row (the
# contract that makes a request's tokens independent of the rows beside it).


def ptr_table(bufs):
    return np.array([b.ptr for b in bufs], np.uint64)


def group_batched(c):
    mg, mr, md, ms = c.mod("gemv.cu"), c.mod("rope.cu"), c.mod("decode_attention.cu"), c.mod("sampling.cu")
    eps = 1e-6
    # gemv_rows_bf16 / gemv_rows_logits_f32
    for n, k, R in [(37, 64, 1), (20, 2056, 3), (9, 1024, 16), (64, 4104, 8)] if not c.quick else [(37, 64, 1), (20, 2056, 3), (9, 1024, 16)]:
        rng = rng_for(f"gemvrows{n}{k}{R}")
        w, x = rand_bf(rng, (n, k), 0.5), rand_bf(rng, (R, k))
        dot = bf2f(x).astype(np.float64) @ bf2f(w).astype(np.float64).T  # [R, n]
        tol = max(float(dot_tol(w, x[r]).max()) for r in range(R))

        def run(w=w, x=x, n=n, k=k, R=R):
            W, X = Buf(mg, w), Buf(mg, x)
            Y = Buf(mg, shape=(R, n), dtype=np.uint16)
            YL = Buf(mg, shape=(R, n), dtype=np.float32)
            mg.launch("gemv_rows_bf16", (blocks(n, 8),), 256, 0, [W, X, Y, I32(n), I32(k), I32(R)])
            mg.launch("gemv_rows_logits_f32", (blocks(n, 8),), 256, 0, [W, X, YL, I32(n), I32(k), I32(R)])
            y, yl = Y.get(), YL.get()
            same, same_l = True, True
            for r in range(R):
                Y1, YL1 = Buf(mg, shape=(n,), dtype=np.uint16), Buf(mg, shape=(n,), dtype=np.float32)
                Xr = Buf(mg, x[r])
                mg.launch("gemv_bf16", (blocks(n, 8),), 256, 2 * k, [W, Xr, NULL, Y1, I32(n), I32(k)])
                mg.launch("gemv_logits_f32", (blocks(n, 8),), 256, 2 * k, [W, Xr, YL1, I32(n), I32(k)])
                same &= Y1.get().tobytes() == y[r].tobytes()
                same_l &= YL1.get().tobytes() == yl[r].tobytes()
            return {"y": y, "logits": yl, "rows_eq_single": np.array([same, same_l])}

        c.check(f"gemv_rows n={n} k={k} rows={R}", run,
                {"y": (rbf(dot.astype(F32)), "bf16", tol + 1e-6, 2.0**-7), "logits": (dot, "f32", tol, 0.0), "rows_eq_single": (np.array([True, True]), "exact")})

    # qk_norm_rope_rows: each row at its own position into its own cache (different capacities)
    for hd in ([16, 128] if c.quick else [16, 32, 64, 128]):
        nH, nKV = 4, 2
        heads = nH + 2 * nKV
        poss, caps = [5, 0, 40], [8, 4, 48]
        R = len(poss)
        rng = rng_for(f"roperows{hd}")
        qkv = rand_bf(rng, (R, heads * hd), 2.0)
        qn, kn = rand_bf(rng, (hd,), 0.3, 1.0), rand_bf(rng, (hd,), 0.3, 1.0)
        inv_freq = (1.0 / (1e6 ** (np.arange(0, hd, 2, dtype=np.float64) / hd))).astype(F32)
        caches = [(rand_bf(rng, (nKV, mc, hd), 9.0), rand_bf(rng, (nKV, mc, hd), 9.0)) for mc in caps]
        # numpy reference (as group_rope)
        x = bf2f(qkv).reshape(R, heads, hd)
        ss = (x[:, : nH + nKV].astype(np.float64) ** 2).sum(-1)
        inv = (1.0 / np.sqrt(ss / hd + eps)).astype(F32)
        wts = np.concatenate([np.repeat(bf2f(qn)[None], nH, 0), np.repeat(bf2f(kn)[None], nKV, 0)])
        xn = rbf(wts[None] * rbf(x[:, : nH + nKV] * inv[..., None]))
        a = np.array(poss, F32)[:, None] * inv_freq[None, :]
        cs = rbf(np.cos(a.astype(np.float64)).astype(F32))[:, None, :]
        sn = rbf(np.sin(a.astype(np.float64)).astype(F32))[:, None, :]
        x1, x2 = xn[..., : hd // 2], xn[..., hd // 2 :]
        o = np.concatenate([rbf(rbf(x1 * cs) - rbf(x2 * sn)), rbf(rbf(x2 * cs) + rbf(x1 * sn))], -1)
        refs = {"q": (o[:, :nH], "bf16", 1e-6, 2.0**-6)}
        for r in range(R):
            kr, vr = bf2f(caches[r][0]).copy(), bf2f(caches[r][1]).copy()
            kr[:, poss[r]] = o[r, nH:]
            vr[:, poss[r]] = x[r, nH + nKV :]
            refs[f"k{r}"] = (kr, "bf16", 1e-6, 2.0**-6)
            refs[f"v{r}"] = (f2bf(vr), "exact")
        refs["rows_eq_single"] = (np.ones(R, bool), "exact")

        def run(qkv=qkv, qn=qn, kn=kn, inv_freq=inv_freq, caches=caches, hd=hd):
            Q = Buf(mr, shape=(R, nH, hd), dtype=np.uint16)
            Ks = [Buf(mr, kc) for kc, _ in caches]
            Vs = [Buf(mr, vc) for _, vc in caches]
            args = [Buf(mr, qkv), Buf(mr, qn), Buf(mr, kn), Buf(mr, inv_freq), Buf(mr, np.array(poss, np.int32)), Q,
                    Buf(mr, ptr_table(Ks)), Buf(mr, ptr_table(Vs)), Buf(mr, np.array(caps, np.int32)), I32(nH), I32(nKV), Fl(eps)]
            mr.launch(f"qk_norm_rope_rows_bf16_hd{hd}", (R, -(-heads // 4)), 128, 0, args)
            out = {"q": Q.get()}
            same = []
            for r in range(R):
                out[f"k{r}"], out[f"v{r}"] = Ks[r].get(), Vs[r].get()
                Q1, K1, V1 = Buf(mr, shape=(1, nH, hd), dtype=np.uint16), Buf(mr, caches[r][0]), Buf(mr, caches[r][1])
                mr.launch(f"qk_norm_rope_bf16_hd{hd}", (1, -(-heads // 4)), 128, 0,
                          [Buf(mr, qkv[r : r + 1]), Buf(mr, qn), Buf(mr, kn), Buf(mr, inv_freq), Buf(mr, np.array([poss[r]], np.int32)), Q1, K1, V1,
                           I32(1), I32(nH), I32(nKV), I32(caps[r]), Fl(eps)])
                same.append(Q1.get().tobytes() == out["q"][r].tobytes() and K1.get().tobytes() == out[f"k{r}"].tobytes() and V1.get().tobytes() == out[f"v{r}"].tobytes())
            out["rows_eq_single"] = np.array(same)
            return out

        c.check(f"qk_norm_rope_rows hd={hd} rows={R} positions={poss}", run, refs)

    # decode_attention_rows: rows with different contexts and capacities (NaN past each context)
    for hd, nH, nKV, S, ctxs in [(16, 8, 2, 4, [101, 1, 5]), (128, 8, 2, 3, [131, 7]), (64, 4, 1, 2, [65, 64, 3, 200])][: 2 if c.quick else 3]:
        rng = rng_for(f"decrows{hd}{nH}{nKV}{S}")
        R, G = len(ctxs), nH // nKV
        caps = [cx + 3 * r for r, cx in enumerate(ctxs)]
        q = rand_bf(rng, (R, nH, hd), 1.5)
        caches = [make_cache(rng, nKV, mc, hd, cx) for mc, cx in zip(caps, ctxs)]
        ref = np.stack([np.stack([attn_ref(bf2f(q[r, h : h + 1]).astype(np.float64), bf2f(caches[r][0][h // G, : ctxs[r]]).astype(np.float64),
                                           bf2f(caches[r][1][h // G, : ctxs[r]]).astype(np.float64), np.ones((1, ctxs[r]), bool))[0] for h in range(nH)])
                        for r in range(R)])
        tol = max(attn_tol(caches[r][1][:, : ctxs[r]]) for r in range(R))

        def run(q=q, caches=caches, hd=hd, nH=nH, nKV=nKV, S=S, R=R, ctxs=ctxs, caps=caps):
            Ks, Vs = [Buf(md, kc) for kc, _ in caches], [Buf(md, vc) for _, vc in caches]
            PO, PML = Buf(md, shape=(R, nH, S, hd), dtype=np.float32), Buf(md, shape=(R, nH, S, 2), dtype=np.float32)
            O = Buf(md, shape=(R, nH, hd), dtype=np.uint16)
            scale = F32(1.0) / np.sqrt(F32(hd))
            pos = Buf(md, np.array([cx - 1 for cx in ctxs], np.int32))
            md.launch(f"decode_attention_rows_bf16_hd{hd}", (nKV, S, R), 128, 0,
                      [Buf(md, q), Buf(md, ptr_table(Ks)), Buf(md, ptr_table(Vs)), pos, Buf(md, np.array(caps, np.int32)), PO, PML,
                       I32(nH), I32(nKV), I32(S), Fl(scale)])
            md.launch(f"decode_attention_rows_combine_bf16_hd{hd}", (nH, R), hd, 0, [PO, PML, O, I32(nH), I32(S)])
            out = O.get()
            same = []
            for r in range(R):
                PO1, PML1 = Buf(md, shape=(nH, S, hd), dtype=np.float32), Buf(md, shape=(nH, S, 2), dtype=np.float32)
                O1 = Buf(md, shape=(nH, hd), dtype=np.uint16)
                md.launch(f"decode_attention_bf16_hd{hd}", (nKV, S), 128, 0,
                          [Buf(md, q[r]), Ks[r], Vs[r], Buf(md, np.array([ctxs[r] - 1], np.int32)), PO1, PML1, I32(nH), I32(nKV), I32(caps[r]), I32(S), Fl(scale)])
                md.launch(f"decode_attention_combine_bf16_hd{hd}", (nH,), hd, 0, [PO1, PML1, O1, I32(S)])
                same.append(O1.get().tobytes() == out[r].tobytes())
            return {"out": out, "rows_eq_single": np.array(same)}

        c.check(f"decode_attention_rows hd={hd} nH={nH} nKV={nKV} S={S} contexts={ctxs}", run,
                {"out": (ref, "bf16", *tol), "rows_eq_single": (np.ones(R, bool), "exact")})

    # logits_penalty_rows + sample_rows: each row its own parameters and history
    V = 3000
    rng = rng_for("samplerows")
    rows = [  # temperature, top_k, top_p, rep_penalty, u, top_n
        (0.0, 0, 1.0, 1.3, 0.5, 5),
        (0.7, 50, 1.0, 1.0, 0.3, 4),
        (1.0, 0, 0.9, 1.1, 0.77, 2),
        (2.0, 0, 1.0, 1.0, 0.123456, 7),
    ]
    R = len(rows)
    logits = (rng.standard_normal((R, V)) * 3).astype(F32)
    seens = [(rng.random(V) < 0.05).astype(np.uint8) for _ in range(R)]
    p = np.zeros(R, SAMPLE_PARAMS)
    for r, (T, k, tp, rho, u, tn) in enumerate(rows):
        p[r]["temperature"], p[r]["top_k"], p[r]["top_p"], p[r]["rep_penalty"], p[r]["u"], p[r]["top_n"], p[r]["vocab"] = T, k, tp, rho, u, tn, V
    refs = {}
    for r, (T, k, tp, rho, u, tn) in enumerate(rows):
        z = logits[r].copy()
        if rho != 1.0:
            sb = seens[r].astype(bool)
            z[sb] = np.where(z[sb] > 0, z[sb] / F32(rho), z[sb] * F32(rho))
        pid, plp, ptop, margin = cpu_sample(z, T, k, tp, u, tn)
        refs[f"z{r}"] = (z, "exact")
        if margin >= 1e-9:
            refs[f"id{r}"] = (np.array([pid, pid], np.int32), "exact")
            refs[f"logprob{r}"] = (np.array([plp], F32), "f32", 2e-6, 1e-6)
    refs["rows_eq_single"] = (np.ones(R, bool), "exact")

    def run_sample():
        S_ = [Buf(ms, sn) for sn in seens]
        Z, P = Buf(ms, shape=(R, V), dtype=np.float32), Buf(ms, p)
        RES, N = Buf(ms, np.zeros(R, SAMPLE_RESULT)), Buf(ms, np.full(R, -7, np.int32))
        tab = Buf(ms, ptr_table(S_))
        ms.launch("logits_penalty_rows_f32", (-(-V // 256), R), 256, 0, [Buf(ms, logits), tab, Z, P, I32(V)])
        ms.launch("sample_rows_f32", (R,), 1024, 0, [Z, P, RES, tab, N, I32(V)])
        res, nid, z = RES.get(), N.get(), Z.get()
        out = {"rows_eq_single": []}
        for r in range(R):
            out[f"z{r}"] = z[r]
            out[f"id{r}"] = np.array([res[r]["id"], nid[r]], np.int32)
            out[f"logprob{r}"] = np.array([res[r]["logprob"]], F32)
            # the single-request kernels on row r, from the same starting history
            S1, Z1, P1 = Buf(ms, seens[r]), Buf(ms, shape=(V,), dtype=np.float32), Buf(ms, p[r : r + 1])
            RES1, N1 = Buf(ms, np.zeros(1, SAMPLE_RESULT)), Buf(ms, np.array([-7], np.int32))
            ms.launch("logits_penalty_f32", (-(-V // 256),), 256, 0, [Buf(ms, logits[r]), S1, Z1, P1, I32(V)])
            ms.launch("sample_f32", (1,), 1024, 0, [Z1, P1, RES1, S1, N1])
            out["rows_eq_single"].append(RES1.get().tobytes() == res[r : r + 1].tobytes() and S1.get().tobytes() == S_[r].get().tobytes()
                                         and int(N1.get()[0]) == int(nid[r]))
        out["rows_eq_single"] = np.array(out["rows_eq_single"])
        return out

    c.check(f"logits_penalty_rows + sample_rows V={V} rows={R} (greedy, top-k, top-p, multinomial)", run_sample, refs)


def order_keys(w):
    """sampling.cu order_key: a larger float gives a larger unsigned key."""
    u = np.ascontiguousarray(w, F32).view(np.uint32)
    return np.where(u & np.uint32(0x80000000), ~u, u | np.uint32(0x80000000)).astype(np.uint32)


def top_p_hist_ref(z, temp, floor_key, wmax, prefix, mask, shift):
    """sampling.cu top_p_mass_hist, exactly: w = z / T (f32, NaN removed), weight = exp(f64(w − wmax)) (the
    host libm's exp, as the emulation's), summed per digit in 128-bit fixed point with 64 fraction bits,
    returned as hi + lo·2⁻⁶⁴ in f64."""
    import math

    w = (np.asarray(z, F32) / F32(temp)).astype(F32)
    w = np.where(np.isnan(w), F32(-np.inf), w)
    key = order_keys(w)
    sel = np.flatnonzero((w > -np.inf) & (key >= np.uint32(floor_key)) & ((key & np.uint32(mask)) == np.uint32(prefix)))
    total = [0] * 256
    for i in sel:
        weight = math.exp(float(F32(w[i] - F32(wmax))))
        total[int(key[i] >> np.uint32(shift)) & 255] += (1 << 64) if weight >= 1.0 else int(weight * 2.0**64)
    return np.array([float(t >> 64) + float(t & ((1 << 64) - 1)) * 5.421010862427522e-20 for t in total], np.float64)


def group_top_p_determinism(c, m):
    """The top-p cut must not depend on the order in which threads add probability mass (a seeded run
    gives the same tokens every time): the mass histogram of one radix pass (probes/sampling_probe.cu),
    on a vocabulary-sized input, has the same bits under every schedule, shuffled ones with several seeds
    included, and equals the fixed-point sum computed here. Summed with f64 atomics (the kernel before),
    the buckets of thousands of weights differ in their last bits from one schedule to the next."""
    p = c.mod("sampling.cu", probe="sampling_probe.cu")
    V = 151_936
    rng = rng_for("top_p_determinism")
    z = (rng.standard_normal(V) * 3).astype(F32)
    z[[5, 77, 1000]] = np.nan
    scheds = [SCHEDULES[0], SCHEDULES[1], (2, "shuffled seed 1", 1), (2, "shuffled seed 2", 2), SCHEDULES[3]]
    if c.quick:
        scheds = scheds[:3]
    for temp in [1.0, 0.7]:
        w = (z / F32(temp)).astype(F32)
        wmax = F32(np.nanmax(w))
        kth = np.sort(w[~np.isnan(w)])[::-1][999]  # a top-k floor of 1000
        keys = order_keys(np.where(np.isnan(w), F32(-np.inf), w))
        busiest = int(np.bincount(keys[~np.isnan(w)] >> np.uint32(24), minlength=256).argmax())
        for floor_key, prefix, mask, shift, what in [(0, 0, 0, 24, "pass 1"), (int(order_keys(np.array([kth], F32))[0]), 0, 0, 24, "pass 1, top_k floor"),
                                                     (0, busiest << 24, 0xFF000000, 16, "pass 2")]:
            ref = top_p_hist_ref(z, temp, floor_key, wmax, prefix, mask, shift)

            def run(temp=temp, floor_key=floor_key, wmax=wmax, prefix=prefix, mask=mask, shift=shift):
                out = Buf(p, shape=(256,), dtype=np.float64)
                p.launch("probe_top_p_mass_hist", (1,), 1024, 0,
                         [Buf(p, z), I32(V), Fl(temp), ctypes.c_uint(floor_key), Fl(wmax), ctypes.c_uint(prefix), ctypes.c_uint(mask), I32(shift), out])
                return {"hist": out.get()}

            c.check(f"top_p_mass_hist T={temp} {what} V={V} ({int((ref > 0).sum())} buckets)", run, {"hist": (ref, "exact")}, schedules=scheds)


GROUPS = {
    "norm": group_norm,
    "rope": group_rope,
    "activation": group_activation,
    "embedding": group_embedding,
    "vision": group_vision,
    "softmax": group_softmax,
    "decode_attention": group_decode,
    "prefill_fma": lambda c: group_prefill(c, False),
    "segment_fma": lambda c: group_segment(c, False),
    "prefill_mma": lambda c: group_prefill(c, True),
    "segment_mma": lambda c: group_segment(c, True),
    "gemv": group_gemv,
    "sampling": group_sampling,
    "batched": group_batched,
}


def run_group(name, quick):
    c = Ctx(name, quick)
    try:
        GROUPS[name](c)
    except Exception:
        traceback.print_exc()
        print(f"FAIL  {name}  exception in the test driver", flush=True)
        return 1
    return 1 if c.failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("groups", nargs="*")
    ap.add_argument("-j", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="fewer cases, three schedules")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    groups = args.groups or list(GROUPS)
    for g in groups:
        if g not in GROUPS:
            sys.exit(f"unknown group {g}; groups: {' '.join(GROUPS)}")
    if args.child:
        sys.exit(run_group(groups[0], args.quick))
    # Build first (serially: g++ is the slow part), then run each group in an ASan-preloaded child.
    need = sorted({cu for g in groups for cu in GROUP_FILES.get(g, [])})
    for cu in need:
        try:
            emubuild.build(cu)
        except emubuild.BuildError as e:
            print(f"FAIL  build/{cu}  {e}")
            sys.exit(1)
    asan = subprocess.run(["g++", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    env = dict(os.environ)
    env["LD_PRELOAD"] = asan + ((" " + env["LD_PRELOAD"]) if env.get("LD_PRELOAD") else "")
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=0"
    procs, failed, t0 = {}, 0, time.time()
    pending = list(groups)
    while pending or procs:
        while pending and len(procs) < args.j:
            g = pending.pop(0)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", g] + (["--quick"] if args.quick else [])
            procs[g] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.2)
        for g, p in list(procs.items()):
            if p.poll() is None:
                continue
            out, err = p.communicate()
            sys.stdout.write(out)
            lines = [ln for ln in err.splitlines() if "doesn't fully support makecontext" not in ln]
            san = [ln for ln in lines if "runtime error:" in ln or "AddressSanitizer" in ln]
            if p.returncode != 0 or san:
                failed += 1
                if san or "FAIL" not in out:
                    # the check that was running when the sanitizer fired (or the child died)
                    at = ""
                    for ln in lines:
                        if ln.startswith("EMU-CHECK "):
                            at = ln[10:]
                        elif "runtime error:" in ln or "ERROR: AddressSanitizer" in ln:
                            break
                    body = [ln for ln in lines if not ln.startswith("EMU-CHECK ") and not ln.startswith("    0x")]
                    print(f"FAIL  {at or g}  sanitizer report / exit {p.returncode}:\n" + "\n".join("    " + ln for ln in body[:40]))
            del procs[g]
    print(f"{'FAILED' if failed else 'ALL PASSED'}: {len(groups) - failed}/{len(groups)} groups passed ({time.time() - t0:.0f}s)")
    sys.exit(1 if failed else 0)


GROUP_FILES = {
    "norm": ["norm.cu"],
    "rope": ["rope.cu"],
    "activation": ["activation.cu"],
    "embedding": ["embedding.cu"],
    "vision": ["vision.cu"],
    "softmax": ["softmax.cu"],
    "decode_attention": ["decode_attention.cu"],
    "prefill_fma": ["attention.cu"],
    "segment_fma": ["attention.cu"],
    "prefill_mma": ["attention_mma.cu"],
    "segment_mma": ["attention_mma.cu"],
    "gemv": ["gemv.cu", "norm.cu", "activation.cu"],
    "sampling": ["sampling.cu"],
    "batched": ["gemv.cu", "rope.cu", "decode_attention.cu", "sampling.cu"],
}

if __name__ == "__main__":
    main()
