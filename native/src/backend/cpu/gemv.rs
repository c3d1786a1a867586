//! y[r, n] = x[r, k] · W[n, k]ᵀ (+ bias) for r ≤ 4 rows of x (decode): memory-bound, so W (bf16,
//! [n, k]) is streamed exactly once, split over n across threads, and widened to f32 in registers.
//!
//! Widening trick (AVX-512): 32 bf16 loaded as 16 u32 lanes hold element 2i in the low half and 2i+1
//! in the high half of lane i; `lane << 16` is element 2i as f32 and `lane & 0xFFFF0000` is 2i+1.
//! x is deinterleaved once per call into the same even/odd order, so each 64 bytes of W cost one
//! load, one shift, one and, and two FMAs.
use half::bf16;

/// The most rows of x handled here; more go to the GEMM.
pub(super) const MAX_ROWS: usize = 4;

/// Returns false when the CPU lacks AVX-512F (the caller then uses the portable loop).
pub(super) fn gemv_bf16(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            avx512::gemv(x, m, k, w, n, bias, y);
            return true;
        }
    }
    let _ = (x, m, k, w, n, bias, y);
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
            // SAFETY: AVX-512F was detected by the caller; the task writes y[r, j0..j1] only.
            unsafe {
                match m {
                    1 => rows::<1>(&xd, x, k, w, j0, j1, bias, out, n),
                    2 => rows::<2>(&xd, x, k, w, j0, j1, bias, out, n),
                    3 => rows::<3>(&xd, x, k, w, j0, j1, bias, out, n),
                    _ => rows::<4>(&xd, x, k, w, j0, j1, bias, out, n),
                }
            }
        });
    }

    /// Output columns j0..j1 for all R rows: 4 W rows at a time (4·R independent FMA chains), then singles.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows<const R: usize>(xd: &[f32], x: &[f32], k: usize, w: &[bf16], j0: usize, j1: usize, bias: Option<&[f32]>, out: SharedOut, n: usize) {
        let mut j = j0;
        while j + 4 <= j1 {
            let s = block::<4, R>(xd, x, k, w, j);
            store::<4, R>(&s, j, bias, out, n);
            j += 4;
        }
        while j < j1 {
            let s = block::<1, R>(xd, x, k, w, j);
            store::<1, R>(&s, j, bias, out, n);
            j += 1;
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
