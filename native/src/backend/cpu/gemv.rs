//! y[r, n] = x[r, k] · W[n, k]ᵀ (+ bias) for r ≤ 16 rows of x (decode, one row per running request):
//! memory-bound, so W (bf16, [n, k]) is streamed from memory exactly once per call for all rows, split
//! over n across threads, and widened to f32 in registers. Rows of x are taken in tiles of 4 for each
//! small group of W rows, which stays in L1 while the tiles pass over it.
//!
//! Kernel chosen at run time: AVX-512F (below), else AVX2 + FMA (`gemv_avx2`), else the caller's
//! portable loop (`matmul::portable`, which also widens each W row once for all rows).
//!
//! Widening trick (AVX-512): 32 bf16 loaded as 16 u32 lanes hold element 2i in the low half and 2i+1
//! in the high half of lane i; `lane << 16` is element 2i as f32 and `lane & 0xFFFF0000` is 2i+1.
//! x is deinterleaved once per call into the same even/odd order, so each 64 bytes of W cost one
//! load, one shift, one and, and two FMAs.
use half::bf16;

/// The most rows of x handled here (the default batch of 8 decoding streams plus a small prefill
/// chunk); more go to the GEMM.
pub const MAX_ROWS: usize = 16;

/// Which kernel `gemv_bf16` runs on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    Avx512,
    Avx2,
    Portable,
}

/// Whether this CPU can run `kernel`.
pub fn available(kernel: Kernel) -> bool {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => super::gemv_avx2::available(),
        Kernel::Portable => true,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// The fastest kernel this CPU can run.
pub fn kernel() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Kernel::Avx512;
        }
        if super::gemv_avx2::available() {
            return Kernel::Avx2;
        }
    }
    Kernel::Portable
}

/// Returns false when the CPU has neither AVX-512F nor AVX2 + FMA (the caller then uses the portable loop).
pub(super) fn gemv_bf16(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) -> bool {
    gemv_with(kernel(), x, m, k, w, n, bias, y)
}

/// `gemv_bf16` with a given kernel (tests run each one the CPU has); false for `Portable`, and for a
/// kernel this CPU cannot run (`available`).
#[allow(clippy::too_many_arguments)]
pub fn gemv_with(kernel: Kernel, x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) -> bool {
    assert!((1..=MAX_ROWS).contains(&m) && k > 0, "gemv: 1..={MAX_ROWS} rows and k ≥ 1, got m = {m}, k = {k}");
    assert!(x.len() == m * k && w.len() == n * k && y.len() == m * n && bias.is_none_or(|b| b.len() == n), "gemv: shapes do not match m = {m}, k = {k}, n = {n}");
    if !available(kernel) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        match kernel {
            Kernel::Avx512 => {
                avx512::gemv(x, m, k, w, n, bias, y);
                return true;
            }
            Kernel::Avx2 => {
                super::gemv_avx2::gemv(x, m, k, w, n, bias, y);
                return true;
            }
            Kernel::Portable => {}
        }
    }
    let _ = (kernel, x, m, k, w, n, bias, y);
    false
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use crate::backend::cpu::matmul::SharedOut;
    use half::bf16;
    use rayon::prelude::*;
    use std::arch::x86_64::*;

    /// W rows per task: about 16 tasks per thread so rayon can balance, in multiples of 4 rows.
    fn rows_per_task(n: usize) -> usize {
        let tasks = 16 * rayon::current_num_threads().max(1);
        (n.div_ceil(tasks).div_ceil(4) * 4).max(16)
    }

    /// Deinterleaves each row of x [m, k] per 32-element chunk: [x0 x2 … x30 | x1 x3 … x31].
    /// Returns [m, k32] with k32 = k rounded down to 32 (the tail is handled with the original x).
    fn deinterleave(x: &[f32], m: usize, k: usize) -> Vec<f32> {
        let k32 = k / 32 * 32;
        let mut out = vec![0f32; m * k32];
        for r in 0..m {
            for c in 0..k32 / 32 {
                let src = &x[r * k + c * 32..r * k + c * 32 + 32];
                let dst = &mut out[r * k32 + c * 32..r * k32 + c * 32 + 32];
                for i in 0..16 {
                    dst[i] = src[2 * i];
                    dst[16 + i] = src[2 * i + 1];
                }
            }
        }
        out
    }

    pub(super) fn gemv(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
        let xd = deinterleave(x, m, k);
        let per = rows_per_task(n);
        let out = SharedOut(y.as_mut_ptr());
        (0..n.div_ceil(per)).into_par_iter().for_each(|t| {
            let (j0, j1) = (t * per, n.min((t + 1) * per));
            // SAFETY: AVX-512F was detected by the caller; the task writes y[.., j0..j1] only.
            unsafe { rows(&xd, x, m, k, w, j0, j1, bias, out, n) };
        });
    }

    /// Output columns j0..j1 for all m rows: 4 W rows at a time (4 × 4 independent FMA chains per
    /// tile of x), then singles.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows(xd: &[f32], x: &[f32], m: usize, k: usize, w: &[bf16], j0: usize, j1: usize, bias: Option<&[f32]>, out: SharedOut, n: usize) {
        let mut j = j0;
        while j + 4 <= j1 {
            tiles::<4>(xd, x, m, k, w, j, bias, out, n);
            j += 4;
        }
        while j < j1 {
            tiles::<1>(xd, x, m, k, w, j, bias, out, n);
            j += 1;
        }
    }

    /// W rows j..j+WR against each tile of 4 rows of x (the last may be shorter); the WR W rows stay
    /// in L1 between tiles (4 · k · 2 bytes: 16 KiB at k = 2048).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tiles<const WR: usize>(xd: &[f32], x: &[f32], m: usize, k: usize, w: &[bf16], j: usize, bias: Option<&[f32]>, out: SharedOut, n: usize) {
        let k32 = k / 32 * 32;
        let mut r0 = 0;
        while r0 < m {
            let (xdt, xt, ot) = (&xd[r0 * k32..], &x[r0 * k..], SharedOut(out.at(r0 * n)));
            match (m - r0).min(4) {
                1 => store::<WR, 1>(&block::<WR, 1>(xdt, xt, k, w, j), j, bias, ot, n),
                2 => store::<WR, 2>(&block::<WR, 2>(xdt, xt, k, w, j), j, bias, ot, n),
                3 => store::<WR, 3>(&block::<WR, 3>(xdt, xt, k, w, j), j, bias, ot, n),
                _ => store::<WR, 4>(&block::<WR, 4>(xdt, xt, k, w, j), j, bias, ot, n),
            }
            r0 += 4;
        }
    }

    #[inline(always)]
    unsafe fn store<const WR: usize, const R: usize>(s: &[[f32; R]; WR], j: usize, bias: Option<&[f32]>, out: SharedOut, n: usize) {
        for (q, row) in s.iter().enumerate() {
            let b = bias.map_or(0.0, |b| b[j + q]);
            for (r, v) in row.iter().enumerate() {
                *out.at(r * n + j + q) = v + b;
            }
        }
    }

    /// Dot products of W rows j..j+WR with the R rows of x: [WR][R] sums.
    #[inline(always)]
    unsafe fn block<const WR: usize, const R: usize>(xd: &[f32], x: &[f32], k: usize, w: &[bf16], j: usize) -> [[f32; R]; WR] {
        let k32 = k / 32 * 32;
        let hi_mask = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
        let mut acc = [[_mm512_setzero_ps(); R]; WR];
        let wp = w.as_ptr().add(j * k);
        let mut c = 0;
        while c < k32 {
            let mut xe = [_mm512_setzero_ps(); R];
            let mut xo = [_mm512_setzero_ps(); R];
            for r in 0..R {
                xe[r] = _mm512_loadu_ps(xd.as_ptr().add(r * k32 + c));
                xo[r] = _mm512_loadu_ps(xd.as_ptr().add(r * k32 + c + 16));
            }
            for (q, aq) in acc.iter_mut().enumerate() {
                let v = _mm512_loadu_si512(wp.add(q * k + c) as *const __m512i);
                let we = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v));
                let wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi_mask));
                for r in 0..R {
                    aq[r] = _mm512_fmadd_ps(we, xe[r], aq[r]);
                    aq[r] = _mm512_fmadd_ps(wo, xo[r], aq[r]);
                }
            }
            c += 32;
        }
        let mut s = [[0f32; R]; WR];
        for (q, (sq, aq)) in s.iter_mut().zip(&acc).enumerate() {
            for (r, (v, a)) in sq.iter_mut().zip(aq).enumerate() {
                *v = _mm512_reduce_add_ps(*a);
                for i in k32..k {
                    *v += x[r * k + i] * (*wp.add(q * k + i)).to_f32();
                }
            }
        }
        s
    }
}
