//! The multi-row GEMV (`gemv`, 1–16 rows of x) on CPUs with AVX2 and FMA but no AVX-512F (e.g. AMD
//! Zen 1–3): y[r, n] = x[r, k] · W[n, k]ᵀ (+ bias), W bf16 [n, k] streamed from memory once per call
//! for all rows, split over n across threads. Such CPUs have no AVX-512 GEMM either, so `matmul`
//! also sends larger products (prefill chunks, vision) here, in blocks of `BLOCK_ROWS` rows, each
//! reading W once: several times the portable loop's speed, and a cost linear in the rows (which
//! the step budget of chunked prefill relies on).
//!
//! Widening: 8 bf16 (16 bytes) zero-extended to 8 u32 lanes and shifted left by 16 are those 8 values
//! as f32, in order, so x needs no repacking.
//!
//! Register blocking (16 ymm registers): a group of WR = 3 W rows is widened into 3 registers and
//! multiplied with a tile of up to 4 rows of x (one register, reloaded per row): 12 accumulators,
//! 12 FMAs per 3 W loads and 4 x loads. The tiles of x are taken in turn for the same 3 W rows, which
//! then come from L1 (3 · k · 2 bytes: 12 KiB at k = 2048), so DRAM sees each W row once.
use crate::backend::cpu::matmul::SharedOut;
use half::bf16;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// W rows per group (register blocking), rows of x per tile (the `match` in `group` assumes 4),
/// tiles per call at most, and the k chunk (x of 16 rows over 256 columns: 16 KiB, L1; of 64 rows,
/// L2).
const WR: usize = 3;
const XR: usize = 4;
const MAX_TILES: usize = 16;
const KC: usize = 256;
/// Rows of x per call of `gemv` at most: the accumulators of one W group for all of them live on the
/// stack between k chunks (3 · 64 · 32 bytes).
pub(super) const BLOCK_ROWS: usize = MAX_TILES * XR;

/// Whether this CPU can run `gemv` (checked once by the caller per call; the check is cached by std).
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// W rows per task: about 16 tasks per thread so rayon can balance, in multiples of WR rows.
fn rows_per_task(n: usize) -> usize {
    let tasks = 16 * rayon::current_num_threads().max(1);
    (n.div_ceil(tasks).div_ceil(WR) * WR).max(4 * WR)
}

/// Caller: `available()` is true, x is [m, k] with m ≤ BLOCK_ROWS, w is [n, k], y is [m, n], bias
/// [n]; k ≥ 1.
pub(super) fn gemv(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    assert!(m <= BLOCK_ROWS, "gemv_avx2: {m} rows, at most {BLOCK_ROWS}");
    debug_assert!(available());
    let per = rows_per_task(n);
    let out = SharedOut(y.as_mut_ptr());
    (0..n.div_ceil(per)).into_par_iter().for_each(|t| {
        let (j0, j1) = (t * per, n.min((t + 1) * per));
        // SAFETY: AVX2 and FMA are present (caller); the task writes y[.., j0..j1] only.
        unsafe { columns(x, m, k, w, j0, j1, bias, out, n) };
    });
}

/// Output columns j0..j1 for all m rows: WR W rows at a time, then single rows.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn columns(x: &[f32], m: usize, k: usize, w: &[bf16], j0: usize, j1: usize, bias: Option<&[f32]>, out: SharedOut, n: usize) {
    let mut j = j0;
    while j + WR <= j1 {
        group::<WR>(x, m, k, w, j, bias, out, n);
        j += WR;
    }
    while j < j1 {
        group::<1>(x, m, k, w, j, bias, out, n);
        j += 1;
    }
}

/// W rows j..j+G against all m rows of x. k is walked in chunks of KC; within a chunk each tile of
/// ≤ XR rows of x runs with its G × XR accumulators in registers (spilled to `acc` between chunks),
/// so W is read from memory steadily, one chunk at a time, while the tiles reuse it from L1.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn group<const G: usize>(x: &[f32], m: usize, k: usize, w: &[bf16], j: usize, bias: Option<&[f32]>, out: SharedOut, n: usize) {
    let mut acc = [[_mm256_setzero_ps(); MAX_TILES * XR]; G];
    let k8 = k / 8 * 8;
    let wp = w.as_ptr().add(j * k);
    let mut c0 = 0;
    while c0 < k8 {
        let c1 = k8.min(c0 + KC);
        let mut r0 = 0;
        while r0 < m {
            match m - r0 {
                1 => chunk::<G, 1>(x.as_ptr().add(r0 * k), k, wp, c0, c1, &mut acc, r0),
                2 => chunk::<G, 2>(x.as_ptr().add(r0 * k), k, wp, c0, c1, &mut acc, r0),
                3 => chunk::<G, 3>(x.as_ptr().add(r0 * k), k, wp, c0, c1, &mut acc, r0),
                _ => chunk::<G, XR>(x.as_ptr().add(r0 * k), k, wp, c0, c1, &mut acc, r0),
            }
            r0 += XR;
        }
        c0 = c1;
    }
    for (q, aq) in acc.iter().enumerate() {
        let b = bias.map_or(0.0, |b| b[j + q]);
        for (r, a) in aq.iter().enumerate().take(m) {
            let mut v = hsum(*a);
            for i in k8..k {
                v += x[r * k + i] * (*wp.add(q * k + i)).to_f32();
            }
            *out.at(r * n + j + q) = v + b;
        }
    }
}

/// k range c0..c1 (multiples of 8) of W rows wp[0..G] against R rows of x at xp: adds to acc[q][r0 + r].
#[inline(always)]
unsafe fn chunk<const G: usize, const R: usize>(xp: *const f32, k: usize, wp: *const bf16, c0: usize, c1: usize, acc: &mut [[__m256; MAX_TILES * XR]; G], r0: usize) {
    let mut a = [[_mm256_setzero_ps(); R]; G];
    for q in 0..G {
        for r in 0..R {
            a[q][r] = acc[q][r0 + r];
        }
    }
    let mut c = c0;
    while c < c1 {
        let mut wv = [_mm256_setzero_ps(); G];
        for (q, v) in wv.iter_mut().enumerate() {
            *v = widen8(wp.add(q * k + c));
        }
        for r in 0..R {
            let xv = _mm256_loadu_ps(xp.add(r * k + c));
            for q in 0..G {
                a[q][r] = _mm256_fmadd_ps(wv[q], xv, a[q][r]);
            }
        }
        c += 8;
    }
    for q in 0..G {
        for r in 0..R {
            acc[q][r0 + r] = a[q][r];
        }
    }
}

/// 8 bf16 at p widened to 8 f32.
#[inline(always)]
unsafe fn widen8(p: *const bf16) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i))))
}

/// Sum of the 8 lanes.
#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}
