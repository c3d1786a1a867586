//! y[m, n] = x[m, k] · W[n, k]ᵀ (+ bias[n]): f32 activations, bf16 weights widened to f32 in registers.
//! The one matrix product of the CPU backend (LLM projections, ViT, visual head, VTE).
//!
//! Dispatch: m ≤ 16 rows (decode, one row per running request) → `gemv` (memory-bound: stream W once
//! for all rows; AVX-512F or AVX2 + FMA); more rows (prefill, vision) → `gemm` (compute-bound: packed
//! register-tiled kernels, AVX-512F or AVX2 + FMA); `many_rows_avx2` (the multi-row GEMV in blocks of
//! 64 rows) only if the GEMM declines. Without those a portable blocked loop below gives the same
//! results up to summation order.
use super::{gemm, gemv};
use half::bf16;
use rayon::prelude::*;

/// Multi-threaded, f32 accumulation. x: [m, k] row-major, w: [n, k] row-major, bias: [n], y: [m, n].
pub fn matmul_bf16(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    assert_eq!(x.len(), m * k, "x must be [m, k]");
    assert_eq!(w.len(), n * k, "w must be [n, k]");
    assert_eq!(y.len(), m * n, "y must be [m, n]");
    if let Some(b) = bias {
        assert_eq!(b.len(), n, "bias must be [n]");
    }
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for row in y.chunks_mut(n) {
            match bias {
                Some(b) => row.copy_from_slice(b),
                None => row.fill(0.0),
            }
        }
        return;
    }
    let done = if m <= gemv::MAX_ROWS { gemv::gemv_bf16(x, m, k, w, n, bias, y) } else { gemm::gemm_bf16(x, m, k, w, n, bias, y) || many_rows_avx2(x, m, k, w, n, bias, y) };
    if !done {
        portable(x, m, k, w, n, bias, y);
    }
}

/// Without the AVX-512 GEMM but with AVX2 + FMA: the multi-row kernel over blocks of rows (each
/// block reads W once). False when the CPU lacks AVX2 or FMA.
fn many_rows_avx2(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use super::gemv_avx2::{available, gemv, BLOCK_ROWS};
        if available() {
            let rows = BLOCK_ROWS.min(m);
            for (xb, yb) in x.chunks(rows * k).zip(y.chunks_mut(rows * n)) {
                gemv(xb, xb.len() / k, k, w, n, bias, yb);
            }
            return true;
        }
    }
    let _ = (x, m, k, w, n, bias, y);
    false
}

/// A raw output pointer shared by tasks that write disjoint elements of y.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub *mut f32);
// SAFETY: every user writes a disjoint set of indices and the borrow of y outlives the parallel loop.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// Pointer to element i (callers keep i in bounds and disjoint between tasks).
    pub(crate) fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

/// Without AVX-512: columns in chunks of 64 per task; each W row is widened once into a buffer of
/// [k] f32 and dotted with all m rows of x.
fn portable(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    const COLS: usize = 64;
    let out = SharedOut(y.as_mut_ptr());
    (0..n.div_ceil(COLS)).into_par_iter().for_each_init(
        || vec![0f32; k],
        |wrow, c| {
            for j in c * COLS..n.min((c + 1) * COLS) {
                for (d, s) in wrow.iter_mut().zip(&w[j * k..(j + 1) * k]) {
                    *d = s.to_f32();
                }
                let b = bias.map_or(0.0, |b| b[j]);
                for i in 0..m {
                    let v = dot(&x[i * k..(i + 1) * k], wrow) + b;
                    // SAFETY: (i, j) is written by this task only; i < m, j < n.
                    unsafe { *out.at(i * n + j) = v };
                }
            }
        },
    );
}

/// f32 dot product; 8 independent accumulators let the compiler vectorise without reassociation flags.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The portable loop (used without AVX-512) agrees with the dispatched kernels.
    #[test]
    fn portable_matches_dispatch() {
        for &(m, k, n) in &[(1, 33, 7), (3, 64, 65), (13, 300, 70)] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
            let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32(((i * 104_729) % 97) as f32 / 48.0 - 1.0)).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.1).collect();
            let (mut a, mut b) = (vec![0f32; m * n], vec![0f32; m * n]);
            matmul_bf16(&x, m, k, &w, n, Some(&bias), &mut a);
            portable(&x, m, k, &w, n, Some(&bias), &mut b);
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() <= 1e-4 * (1.0 + q.abs()), "m={m} k={k} n={n}: {p} vs {q}");
            }
        }
    }
}
