//! RMSNorm and SwiGLU, float32 (the fixture reference ran the whole Qwen3 decoder in f32).
use rayon::prelude::*;

/// y[r] = x[r] · rsqrt(mean(x[r]²) + eps) ⊙ w for each row r of x [rows, dim]; w: [dim].
/// The mean of squares is summed in f64 (exact enough that the summation order does not matter).
pub fn rms_norm(x: &[f32], w: &[f32], eps: f64, y: &mut [f32]) {
    let dim = w.len();
    assert!(dim > 0 && x.len().is_multiple_of(dim) && y.len() == x.len(), "rms_norm: x, y must be [rows, {dim}]");
    // Small rows (q/k heads of 128, decode) are too cheap to split finely across threads.
    let per_task = (4096 / dim).max(1);
    y.par_chunks_mut(dim * per_task).zip(x.par_chunks(dim * per_task)).for_each(|(yc, xc)| {
        for (yr, xr) in yc.chunks_mut(dim).zip(xc.chunks(dim)) {
            let ss: f64 = xr.iter().map(|&v| v as f64 * v as f64).sum();
            let inv = 1.0 / ((ss / dim as f64) as f32 + eps as f32).sqrt();
            for ((o, &v), &g) in yr.iter_mut().zip(xr).zip(w) {
                *o = g * (v * inv);
            }
        }
    });
}

/// RMSNorm in place (q/k norms over each head of [rows, heads·dim]).
pub fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f64) {
    let dim = w.len();
    assert!(dim > 0 && x.len().is_multiple_of(dim), "rms_norm_inplace: x must be [rows, {dim}]");
    let per_task = (4096 / dim).max(1);
    x.par_chunks_mut(dim * per_task).for_each(|xc| {
        for xr in xc.chunks_mut(dim) {
            let ss: f64 = xr.iter().map(|&v| v as f64 * v as f64).sum();
            let inv = 1.0 / ((ss / dim as f64) as f32 + eps as f32).sqrt();
            for (v, &g) in xr.iter_mut().zip(w) {
                *v = g * (*v * inv);
            }
        }
    });
}

/// gate ← silu(gate) ⊙ up, elementwise over [rows, I]; silu(z) = z·sigmoid(z).
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "swiglu: gate and up must have the same shape");
    gate.par_chunks_mut(8192).zip(up.par_chunks(8192)).for_each(|(g, u)| {
        for (g, &u) in g.iter_mut().zip(u) {
            let z = *g;
            *g = z / (1.0 + (-z).exp()) * u;
        }
    });
}

/// x += d, elementwise (residual connections, [L, H]).
pub fn add_inplace(x: &mut [f32], d: &[f32]) {
    assert_eq!(x.len(), d.len(), "add_inplace: shapes differ");
    for (a, b) in x.iter_mut().zip(d) {
        *a += b;
    }
}
