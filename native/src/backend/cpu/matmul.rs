//! y[m, n] = x[m, k] · W[n, k]ᵀ (+ bias[n]): f32 activations, bf16 weights widened to f32 in registers.
//! The one matrix product of the CPU backend (LLM projections, ViT, visual head, VTE).
use half::bf16;
use rayon::prelude::*;

/// Multi-threaded over output columns (n); f32 accumulation. x: [m, k] row-major, w: [n, k] row-major.
pub fn matmul_bf16(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    assert_eq!(x.len(), m * k, "x must be [m, k]");
    assert_eq!(w.len(), n * k, "w must be [n, k]");
    assert_eq!(y.len(), m * n, "y must be [m, n]");
    // Split output columns in chunks so each thread streams its own weight rows once for all m rows.
    const COLS: usize = 16;
    let mut cols_major = vec![0f32; m * n];
    cols_major.par_chunks_mut(COLS * m).enumerate().for_each(|(ci, out)| {
        let n0 = ci * COLS;
        let nc = out.len() / m;
        let mut wrow = vec![0f32; k];
        for j in 0..nc {
            let wr = &w[(n0 + j) * k..(n0 + j + 1) * k];
            for (d, s) in wrow.iter_mut().zip(wr) {
                *d = s.to_f32();
            }
            let b = bias.map_or(0.0, |b| b[n0 + j]);
            for i in 0..m {
                let xr = &x[i * k..(i + 1) * k];
                out[j * m + i] = dot(xr, &wrow) + b;
            }
        }
    });
    for j in 0..n {
        for i in 0..m {
            y[i * n + j] = cols_major[j * m + i];
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // 8 independent accumulators let the compiler vectorise without reassociation flags.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}
