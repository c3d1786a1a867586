//! CPU kernels of the vision path (model-spec.md §4–5): LayerNorm, gelu_tanh, row softmax, 2-D rotary,
//! bidirectional per-segment attention, PyTorch bicubic resize of the position table, and the one
//! product whose weight is not laid out [n, k] (probabilities · VTE). All f32 on bf16 weights.
mod attention;
#[cfg(target_arch = "x86_64")]
mod attention_flash;
mod simd;

pub use attention::segment_attention;
use half::bf16;
use rayon::prelude::*;
use simd::{madd, multiversion};

/// LayerNorm over the last dim of x [rows, dim] in place (population variance; stats in f64 so the
/// 65 532-wide head LayerNorm is as exact as the f32 reference's Welford pass).
pub fn layer_norm(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f64) {
    x.par_chunks_mut(dim).for_each(|row| layer_norm_row(row, gamma, beta, eps));
}

multiversion! {
    fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f64) = layer_norm_row_impl;
}

/// One row: the same f64 statistics and per-element formula as a sequential loop, summed in 8 f64
/// lanes so it vectorises (the scalar f64 loop took most of the ViT's elementwise time: two norms a
/// layer over 784 × 1152 values at 448²).
#[inline(always)]
fn layer_norm_row_impl<const FMA: bool>(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f64) {
    const L: usize = 8;
    #[inline(always)]
    fn lanes_sum(row: &[f32], f: impl Fn(f32) -> f64) -> f64 {
        let mut acc = [0f64; L];
        let chunks = row.chunks_exact(L);
        let rest: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
        for c in chunks {
            for l in 0..L {
                acc[l] += f(c[l]);
            }
        }
        acc.iter().sum::<f64>() + rest
    }
    let dim = row.len();
    let mean = lanes_sum(row, |v| v as f64) / dim as f64;
    let var = lanes_sum(row, |v| (v as f64 - mean) * (v as f64 - mean)) / dim as f64;
    let rstd = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = ((*v as f64 - mean) * rstd) as f32 * g + b;
    }
}

/// The ViT's residual step and the next LayerNorm in one parallel pass over rows of [rows, dim]
/// (x += y when given, out = LayerNorm(x)): the same arithmetic as `+=`, a copy and `layer_norm`,
/// which were three passes, the first two on one thread (~4 ms each over 3,136 × 1152 at 896²).
pub fn residual_then_norm(x: &mut [f32], y: Option<&[f32]>, out: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f64) {
    x.par_chunks_mut(dim).zip(out.par_chunks_mut(dim)).enumerate().for_each(|(r, (xr, or))| {
        if let Some(y) = y {
            xr.iter_mut().zip(&y[r * dim..(r + 1) * dim]).for_each(|(a, b)| *a += b);
        }
        or.copy_from_slice(xr);
        layer_norm_row(or, gamma, beta, eps);
    });
}

/// x += y over rows of [rows, dim], in parallel.
pub fn add_rows(x: &mut [f32], y: &[f32], dim: usize) {
    x.par_chunks_mut(dim).zip(y.par_chunks(dim)).for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
}

/// gelu_pytorch_tanh: 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))), in place.
pub fn gelu_tanh(x: &mut [f32]) {
    x.par_chunks_mut(4096).for_each(simd::gelu);
}

/// gelu_tanh on one stretch, on the calling thread (the fused epilogue of fc1's GEMM, gemm.rs).
pub fn gelu_tanh_serial(x: &mut [f32]) {
    simd::gelu(x);
}

/// Softmax over each row of x [rows, dim] in place (max-subtracted, f32).
pub fn softmax_rows(x: &mut [f32], dim: usize) {
    x.par_chunks_mut(dim).for_each(simd::softmax);
}

/// cos/sin tables [tokens, head_dim/2] of the ViT 2-D rotary (§4.3): with r = head_dim/2 rotary dims,
/// ω_j = 1/10000^(2j/r) for j < r/2; angles θ = [y·ω, x·ω] per token (the table is then used twice).
pub fn rope2d_tables(pos: &[(usize, usize)], head_dim: usize) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let nf = half / 2;
    let omega: Vec<f32> = (0..nf).map(|j| 1.0 / 10000f32.powf((2 * j) as f32 / half as f32)).collect();
    let mut cos = vec![0f32; pos.len() * half];
    let mut sin = vec![0f32; pos.len() * half];
    for (t, &(y, x)) in pos.iter().enumerate() {
        for j in 0..nf {
            let (ay, ax) = (y as f32 * omega[j], x as f32 * omega[j]);
            cos[t * half + j] = ay.cos();
            sin[t * half + j] = ay.sin();
            cos[t * half + nf + j] = ax.cos();
            sin[t * half + nf + j] = ax.sin();
        }
    }
    (cos, sin)
}

/// Rotate-half rotary on x [tokens, heads·head_dim] in place with tables [tokens, head_dim/2]:
/// x'[i] = x[i]·cos_i − x[i+h/2]·sin_i, x'[i+h/2] = x[i+h/2]·cos_i + x[i]·sin_i.
pub fn apply_rope(x: &mut [f32], heads: usize, head_dim: usize, cos: &[f32], sin: &[f32]) {
    let half = head_dim / 2;
    x.par_chunks_mut(heads * head_dim).enumerate().for_each(|(t, row)| {
        let (c, s) = (&cos[t * half..(t + 1) * half], &sin[t * half..(t + 1) * half]);
        for h in row.chunks_mut(head_dim) {
            let (a, b) = h.split_at_mut(half);
            for i in 0..half {
                let (u, v) = (a[i], b[i]);
                a[i] = u * c[i] - v * s[i];
                b[i] = v * c[i] + u * s[i];
            }
        }
    });
}

/// PyTorch bicubic (A = −0.75, align_corners=False) taps of one axis: source index not clamped,
/// the 4 taps clamped to the border (§4.2, trap 6).
fn cubic_taps(out: usize, inp: usize) -> Vec<([usize; 4], [f32; 4])> {
    const A: f32 = -0.75;
    let cc1 = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let cc2 = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let scale = inp as f32 / out as f32;
    (0..out)
        .map(|o| {
            let src = scale * (o as f32 + 0.5) - 0.5;
            let i0 = src.floor();
            let t = src - i0;
            let w = [cc2(t + 1.0), cc1(t), cc1(1.0 - t), cc2(2.0 - t)];
            let idx = [0, 1, 2, 3].map(|k| (i0 as i64 - 1 + k as i64).clamp(0, inp as i64 - 1) as usize);
            (idx, w)
        })
        .collect()
}

/// Resize a side×side table of dim-vectors (row i·side + j) to h×w (row y·w + x), PyTorch bicubic:
/// for each output, the x-direction interpolation of the 4 source rows, then the y-direction one.
pub fn bicubic_resize(table: &[f32], side: usize, dim: usize, h: usize, w: usize) -> Vec<f32> {
    let (ty, tx) = (cubic_taps(h, side), cubic_taps(w, side));
    let mut out = vec![0f32; h * w * dim];
    out.par_chunks_mut(w * dim).enumerate().for_each(|(y, orow)| {
        let (iy, wy) = ty[y];
        for (x, o) in orow.chunks_mut(dim).enumerate() {
            let (ix, wx) = tx[x];
            for d in 0..dim {
                let mut acc = 0f32;
                for a in 0..4 {
                    let r = iy[a] * side;
                    let row = (0..4).fold(0f32, |s, b| s + table[(r + ix[b]) * dim + d] * wx[b]);
                    acc += row * wy[a];
                }
                o[d] = acc;
            }
        }
    });
    out
}

const NB: usize = 64;
const KB: usize = 256;
const MB: usize = 4;

/// acc[R rows, NB] += x rows (each [kb], from column k0) · wt [kb, NB], accumulators in registers.
#[inline(always)]
fn nn_rows<const FMA: bool, const R: usize>(xr: [&[f32]; R], wt: &[f32], acc: &mut [f32]) {
    let mut a = [[0f32; NB]; R];
    for (r, w) in wt.chunks_exact(NB).enumerate() {
        let w: &[f32; NB] = w.try_into().unwrap();
        for ii in 0..R {
            let xv = xr[ii][r];
            for c in 0..NB {
                a[ii][c] = madd::<FMA>(xv, w[c], a[ii][c]);
            }
        }
    }
    for (o, v) in acc.chunks_exact_mut(NB).zip(&a) {
        o.iter_mut().zip(v).for_each(|(o, v)| *o += v);
    }
}

/// acc [m, NB] += x[:, k0..k0+kb] · wt [kb, NB]: 4 rows × 64 columns of accumulators per pass.
#[inline(always)]
fn nn_tile_impl<const FMA: bool>(x: &[f32], k: usize, k0: usize, wt: &[f32], acc: &mut [f32]) {
    let (m, kb) = (acc.len() / NB, wt.len() / NB);
    let row = |i: usize| &x[i * k + k0..i * k + k0 + kb];
    let full = m / MB * MB;
    for i0 in (0..full).step_by(MB) {
        nn_rows::<FMA, MB>([row(i0), row(i0 + 1), row(i0 + 2), row(i0 + 3)], wt, &mut acc[i0 * NB..(i0 + MB) * NB]);
    }
    for i in full..m {
        nn_rows::<FMA, 1>([row(i)], wt, &mut acc[i * NB..(i + 1) * NB]);
    }
}

multiversion! {
    fn nn_tile(x: &[f32], k: usize, k0: usize, wt: &[f32], acc: &mut [f32]) = nn_tile_impl;
}

/// y[m, n] = x[m, k] · W[k, n] for a weight stored [k, n] (probabilities · VTE, §5), f32 accumulation.
/// With AVX-512 (or in bf16 precision) the packed GEMM of gemm.rs runs it; otherwise column tiles of
/// 64 in parallel, each widening a [256, 64] block of W once and reusing it for every row.
pub fn matmul_nn_bf16(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, y: &mut [f32]) {
    assert_eq!(x.len(), m * k, "x must be [m, k]");
    assert_eq!(w.len(), k * n, "w must be [k, n]");
    assert_eq!(y.len(), m * n, "y must be [m, n]");
    if m > 0 && n > 0 && k > 0 && super::gemm::gemm_bf16_kn(x, m, k, w, n, y) {
        return;
    }
    nn_tiled(x, m, k, w, n, y);
}

/// The loop without the packed GEMM: 64-column tiles in parallel.
fn nn_tiled(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, y: &mut [f32]) {
    let parts: Vec<Vec<f32>> = (0..n.div_ceil(NB))
        .into_par_iter()
        .map(|t| {
            let (n0, nb) = (t * NB, NB.min(n - t * NB));
            let mut acc = vec![0f32; m * NB];
            let mut wt = vec![0f32; KB * NB];
            for k0 in (0..k).step_by(KB) {
                let kb = KB.min(k - k0);
                for r in 0..kb {
                    let src = &w[(k0 + r) * n + n0..(k0 + r) * n + n0 + nb];
                    wt[r * NB..r * NB + nb].iter_mut().zip(src).for_each(|(d, s)| *d = s.to_f32());
                }
                nn_tile(x, k, k0, &wt[..kb * NB], &mut acc);
            }
            acc
        })
        .collect();
    for (t, acc) in parts.iter().enumerate() {
        let (n0, nb) = (t * NB, NB.min(n - t * NB));
        for i in 0..m {
            y[i * n + n0..i * n + n0 + nb].copy_from_slice(&acc[i * NB..i * NB + nb]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorised LayerNorm against the sequential f64 loop it replaced: equal to within one f32
    /// rounding (only the f64 summation order differs), on a ViT row (1152), a ragged width and the
    /// visual head's 65 532.
    #[test]
    fn layer_norm_matches_sequential() {
        for &(rows, dim) in &[(3usize, 1152usize), (2, 37), (1, 65_532)] {
            let x: Vec<f32> = (0..rows * dim).map(|i| ((i * 7919 % 1013) as f32 - 500.0) / 97.0 + 3.0).collect();
            let g: Vec<f32> = (0..dim).map(|i| 0.5 + (i % 7) as f32 * 0.1).collect();
            let b: Vec<f32> = (0..dim).map(|i| (i % 5) as f32 * 0.01 - 0.02).collect();
            let mut got = x.clone();
            layer_norm(&mut got, dim, &g, &b, 1e-6);
            for (r, row) in x.chunks(dim).enumerate() {
                let mean = row.iter().map(|&v| v as f64).sum::<f64>() / dim as f64;
                let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / dim as f64;
                let rstd = 1.0 / (var + 1e-6).sqrt();
                for (i, &v) in row.iter().enumerate() {
                    let want = ((v as f64 - mean) * rstd) as f32 * g[i] + b[i];
                    let have = got[r * dim + i];
                    assert!((have - want).abs() <= f32::EPSILON * (1.0 + want.abs()), "dim={dim} row {r} [{i}]: {have} vs {want}");
                }
            }
        }
    }

    #[test]
    fn bicubic_identity_when_same_size() {
        let table: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let out = bicubic_resize(&table, 4, 1, 4, 4);
        for (a, b) in out.iter().zip(&table) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    /// Both the dispatched product (the packed AVX-512 GEMM with [k, n] packing where the CPU has it)
    /// and the tiled fallback loop against an f64 reference, on edge shapes: partial 12-row and
    /// 32-column tiles, k across the 256 block, m across the 480-row task block.
    /// Bound: |error| ≤ 1e-5 · Σ|terms| + 1e-6 (f32 sums of ≤ 600 products).
    #[test]
    fn nn_matmul_matches_naive() {
        for &(m, k, n) in &[(3, 300, 70), (13, 257, 33), (500, 300, 64)] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
            let w: Vec<bf16> = (0..k * n).map(|i| bf16::from_f32(((i * 5 % 11) as f32 - 5.0) / 9.0)).collect();
            let (mut y, mut t) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            matmul_nn_bf16(&x, m, k, &w, n, &mut y);
            nn_tiled(&x, m, k, &w, n, &mut t);
            for i in 0..m {
                for j in 0..n {
                    let r: f64 = (0..k).map(|l| x[i * k + l] as f64 * w[l * n + j].to_f64()).sum();
                    let mag: f64 = (0..k).map(|l| (x[i * k + l] as f64 * w[l * n + j].to_f64()).abs()).sum();
                    for (name, v) in [("dispatched", y[i * n + j]), ("tiled", t[i * n + j])] {
                        assert!((v as f64 - r).abs() <= 1e-5 * mag + 1e-6, "{name} m={m} k={k} n={n}: y[{i},{j}] = {v}, want {r}");
                    }
                }
            }
        }
    }
}
