//! RMSNorm and SwiGLU, float32 (the fixture reference ran the whole Qwen3 decoder in f32).
//!
//! A decode step's tensors are small (8 rows: [8, 2048] norms, [8, 6144] SwiGLU: 16–49 K floats,
//! 5–30 µs of work), so below `PARALLEL_MIN` floats these run on the calling thread: a fork-join
//! costs about as much as the work, and on a loaded machine a stolen piece whose thread is
//! descheduled holds the whole step for a time slice. Prefill-sized tensors still split over threads.
//! Every row is computed the same way either way (a row's result does not depend on the others).
use rayon::prelude::*;

/// Floats below which an elementwise pass stays on the calling thread (16 rows of 4096).
const PARALLEL_MIN: usize = 64 * 1024;

/// Σ v² of one row in f64, in 8 interleaved partial sums (lane i takes elements i, i+8, …; then
/// the lanes and the tail in a fixed order). Each product of two f32 is exact in f64 and the sum's
/// rounding error (~len · 2⁻⁵³ relative) is far below an f32 ulp, so the order barely matters; it
/// is fixed per row length only, never by what else is in the batch. Eight chains instead of one:
/// one f64 chain is bound by the add latency (4 cycles per element).
#[inline]
fn sum_squares(xr: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = xr.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i] as f64 * c[i] as f64;
        }
    }
    let mut ss = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &v in tail {
        ss += v as f64 * v as f64;
    }
    ss
}

/// 1 / sqrt(mean(x²) + eps) in f32, as the reference rounds it.
#[inline]
fn inv_rms(xr: &[f32], eps: f64) -> f32 {
    1.0 / ((sum_squares(xr) / xr.len() as f64) as f32 + eps as f32).sqrt()
}

/// y[r] = x[r] · rsqrt(mean(x[r]²) + eps) ⊙ w for each row r of x [rows, dim]; w: [dim].
/// The mean of squares is summed in f64 (exact enough that the summation order does not matter).
pub fn rms_norm(x: &[f32], w: &[f32], eps: f64, y: &mut [f32]) {
    let dim = w.len();
    assert!(dim > 0 && x.len().is_multiple_of(dim) && y.len() == x.len(), "rms_norm: x, y must be [rows, {dim}]");
    let rows = |yc: &mut [f32], xc: &[f32]| {
        for (yr, xr) in yc.chunks_mut(dim).zip(xc.chunks(dim)) {
            let inv = inv_rms(xr, eps);
            for ((o, &v), &g) in yr.iter_mut().zip(xr).zip(w) {
                *o = g * (v * inv);
            }
        }
    };
    if x.len() < PARALLEL_MIN {
        return rows(y, x);
    }
    // Small rows (q/k heads of 128) are too cheap to split finely across threads.
    let per_task = (4096 / dim).max(1);
    y.par_chunks_mut(dim * per_task).zip(x.par_chunks(dim * per_task)).for_each(|(yc, xc)| rows(yc, xc));
}

/// RMSNorm in place (q/k norms over each head of [rows, heads·dim]).
pub fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f64) {
    let dim = w.len();
    assert!(dim > 0 && x.len().is_multiple_of(dim), "rms_norm_inplace: x must be [rows, {dim}]");
    let rows = |xc: &mut [f32]| {
        for xr in xc.chunks_mut(dim) {
            let inv = inv_rms(xr, eps);
            for (v, &g) in xr.iter_mut().zip(w) {
                *v = g * (*v * inv);
            }
        }
    };
    if x.len() < PARALLEL_MIN {
        return rows(x);
    }
    let per_task = (4096 / dim).max(1);
    x.par_chunks_mut(dim * per_task).for_each(rows);
}

/// gate ← silu(gate) ⊙ up, elementwise over [rows, I]; silu(z) = z·sigmoid(z) = z / (1 + e⁻ᶻ).
/// With AVX-512F, e⁻ᶻ comes from a vector exp (≈ 1 ulp, as libm's); each element's result depends
/// on that element only, in any position of a vector.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "swiglu: gate and up must have the same shape");
    let run = |g: &mut [f32], u: &[f32]| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F detected; g and u have the same length.
                unsafe { swiglu_avx512(g, u) };
                return;
            }
        }
        for (g, &u) in g.iter_mut().zip(u) {
            let z = *g;
            *g = z / (1.0 + (-z).exp()) * u;
        }
    };
    if gate.len() < PARALLEL_MIN {
        return run(gate, up);
    }
    gate.par_chunks_mut(8192).zip(up.par_chunks(8192)).for_each(|(g, u)| run(g, u));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn swiglu_avx512(g: &mut [f32], u: &[f32]) {
    use std::arch::x86_64::*;
    let n = g.len();
    let one = _mm512_set1_ps(1.0);
    let mut i = 0;
    while i < n {
        let m: __mmask16 = if n - i >= 16 { 0xFFFF } else { ((1u32 << (n - i)) - 1) as __mmask16 };
        let z = _mm512_maskz_loadu_ps(m, g.as_ptr().add(i));
        let uv = _mm512_maskz_loadu_ps(m, u.as_ptr().add(i));
        let e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), z));
        let s = _mm512_mul_ps(_mm512_div_ps(z, _mm512_add_ps(one, e)), uv);
        _mm512_mask_storeu_ps(g.as_mut_ptr().add(i), m, s);
        i += 16;
    }
}

/// e^x in f32 (≈ 1 ulp) for any x: x = n·ln2 + r with |r| ≤ ln2/2 (two-part ln2), e^r by its Taylor
/// series to r⁷ (truncation < 1e-8 relative), times 2ⁿ by scalef (below −104: 0; above ~88.7: +∞,
/// as libm). Shared by SwiGLU and the decode attention's softmax (attention_avx512.rs). Caller:
/// AVX-512F present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn exp512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    // Clamped so n stays a small integer (scalef saturates to 0 / ∞ from there).
    let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0)), _mm512_set1_ps(100.0));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
    let mut p = _mm512_set1_ps(1.0 / 5040.0);
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, n)
}

/// x += d, elementwise (residual connections, [L, H]).
pub fn add_inplace(x: &mut [f32], d: &[f32]) {
    assert_eq!(x.len(), d.len(), "add_inplace: shapes differ");
    for (a, b) in x.iter_mut().zip(d) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector SwiGLU agrees with the scalar f32 formula (libm exp) within a few ulp, over the
    /// range an MLP sees and the extremes (overflowing e⁻ᶻ, tiny z), for every position in a vector.
    #[test]
    fn swiglu_matches_the_scalar_formula() {
        let mut z: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) * 0.013).collect();
        z.extend([-150.0, -89.0, -88.5, -87.0, 87.0, 88.9, 120.0, 1e-30, -1e-30, 0.0, -0.0]);
        let up: Vec<f32> = (0..z.len()).map(|i| 0.5 + (i % 7) as f32 * 0.25).collect();
        let mut got = z.clone();
        swiglu(&mut got, &up);
        for ((&zi, &ui), &gi) in z.iter().zip(&up).zip(&got) {
            let want = zi / (1.0 + (-zi).exp()) * ui;
            let tol = 4.0 * f32::EPSILON * want.abs() + 1e-35;
            assert!((gi - want).abs() <= tol, "swiglu({zi}) · {ui} = {gi}, want {want}");
        }
    }

    /// Serial and parallel paths give the same rows, and match an f64 reference closely.
    #[test]
    fn rms_norm_rows_are_the_same_in_any_batch() {
        let dim = 2048;
        let x: Vec<f32> = (0..40 * dim).map(|i| ((i * 37 % 1013) as f32 - 506.0) * 0.01).collect();
        let w: Vec<f32> = (0..dim).map(|i| 1.0 + (i % 5) as f32 * 0.05).collect();
        let mut all = vec![0f32; x.len()];
        rms_norm(&x, &w, 1e-6, &mut all); // 80 K floats: the parallel path
        for r in [0, 17, 39] {
            let xr = &x[r * dim..(r + 1) * dim];
            let mut one = vec![0f32; dim];
            rms_norm(xr, &w, 1e-6, &mut one); // one row: the serial path
            assert_eq!(one, all[r * dim..(r + 1) * dim], "row {r}");
            let ms: f64 = xr.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / dim as f64;
            for (i, &o) in one.iter().enumerate() {
                let want = w[i] as f64 * xr[i] as f64 / (ms + 1e-6).sqrt();
                assert!((o as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()), "row {r}[{i}]: {o} vs {want}");
            }
        }
        let mut inplace = x.clone();
        rms_norm_inplace(&mut inplace, &w, 1e-6);
        assert_eq!(inplace, all);
    }
}
