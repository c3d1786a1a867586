//! CPU kernels of the vision path (model-spec.md §4–5): LayerNorm, gelu_tanh, row softmax, 2-D rotary,
//! bidirectional per-segment attention, PyTorch bicubic resize of the position table, and the one
//! product whose weight is not laid out [n, k] (probabilities · VTE). All f32 on bf16 weights.
use half::bf16;
use rayon::prelude::*;

/// LayerNorm over the last dim of x [rows, dim] in place (population variance; stats in f64 so the
/// 65 532-wide head LayerNorm is as exact as the f32 reference's Welford pass).
pub fn layer_norm(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f64) {
    x.par_chunks_mut(dim).for_each(|row| {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / dim as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / dim as f64;
        let rstd = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = ((*v as f64 - mean) * rstd) as f32 * g + b;
        }
    });
}

/// gelu_pytorch_tanh: 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))), in place.
pub fn gelu_tanh(x: &mut [f32]) {
    const C: f32 = 0.797_884_6; // √(2/π)
    x.par_chunks_mut(4096).for_each(|c| {
        for z in c {
            let v = *z;
            *z = 0.5 * v * (1.0 + (C * (v + 0.044715 * v * v * v)).tanh());
        }
    });
}

/// Softmax over each row of x [rows, dim] in place (max-subtracted, f32).
pub fn softmax_rows(x: &mut [f32], dim: usize) {
    x.par_chunks_mut(dim).for_each(|row| {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    });
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

/// [tokens, heads·hd] → [heads, tokens, hd] so that one head's keys/values are contiguous.
fn by_head(x: &[f32], tokens: usize, heads: usize, hd: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(tokens * hd).enumerate().for_each(|(h, o)| {
        for t in 0..tokens {
            o[t * hd..(t + 1) * hd].copy_from_slice(&x[t * heads * hd + h * hd..t * heads * hd + (h + 1) * hd]);
        }
    });
    out
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
}

/// Bidirectional softmax attention restricted to segments (start, len) that tile 0..tokens (§4.5):
/// q, k, v, out are [tokens, heads·hd]; scale hd^−0.5. Parallel over heads × segments × query blocks.
pub fn segment_attention(q: &[f32], k: &[f32], v: &[f32], tokens: usize, heads: usize, hd: usize, segments: &[(usize, usize)], out: &mut [f32]) {
    const BQ: usize = 16;
    let scale = 1.0 / (hd as f32).sqrt();
    let (qh, kh, vh) = (by_head(q, tokens, heads, hd), by_head(k, tokens, heads, hd), by_head(v, tokens, heads, hd));
    let mut oh = vec![0f32; tokens * heads * hd];
    oh.par_chunks_mut(tokens * hd).enumerate().for_each(|(h, ohead)| {
        let base = h * tokens * hd;
        for &(start, len) in segments {
            let ks = &kh[base + start * hd..base + (start + len) * hd];
            let vs = &vh[base + start * hd..base + (start + len) * hd];
            let qs = &qh[base + start * hd..base + (start + len) * hd];
            let os = &mut ohead[start * hd..(start + len) * hd];
            os.par_chunks_mut(BQ * hd).zip(qs.par_chunks(BQ * hd)).for_each(|(ob, qb)| {
                let mut p = vec![0f32; len];
                for (o, qi) in ob.chunks_mut(hd).zip(qb.chunks(hd)) {
                    let mut max = f32::NEG_INFINITY;
                    for (pj, kj) in p.iter_mut().zip(ks.chunks_exact(hd)) {
                        *pj = dot(qi, kj) * scale;
                        max = max.max(*pj);
                    }
                    let mut sum = 0f32;
                    for pj in p.iter_mut() {
                        *pj = (*pj - max).exp();
                        sum += *pj;
                    }
                    o.fill(0.0);
                    for (&pj, vj) in p.iter().zip(vs.chunks_exact(hd)) {
                        for (oi, &vv) in o.iter_mut().zip(vj) {
                            *oi += pj * vv;
                        }
                    }
                    let inv = 1.0 / sum;
                    o.iter_mut().for_each(|x| *x *= inv);
                }
            });
        }
    });
    out.par_chunks_mut(heads * hd).enumerate().for_each(|(t, row)| {
        for h in 0..heads {
            row[h * hd..(h + 1) * hd].copy_from_slice(&oh[h * tokens * hd + t * hd..h * tokens * hd + (t + 1) * hd]);
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

/// y[m, n] = x[m, k] · W[k, n] for a weight stored [k, n] (probabilities · VTE, §5), f32 accumulation.
/// Blocked so that a widened W tile (KB rows × NB columns) is reused by every row of x.
pub fn matmul_nn_bf16(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, y: &mut [f32]) {
    assert_eq!(x.len(), m * k, "x must be [m, k]");
    assert_eq!(w.len(), k * n, "w must be [k, n]");
    assert_eq!(y.len(), m * n, "y must be [m, n]");
    const NB: usize = 64;
    const KB: usize = 256;
    let tiles = n.div_ceil(NB);
    // Column tiles in parallel; each is written into its own [m, nb] buffer, then scattered.
    let parts: Vec<Vec<f32>> = (0..tiles)
        .into_par_iter()
        .map(|t| {
            let (n0, nb) = (t * NB, NB.min(n - t * NB));
            let mut acc = vec![0f32; m * nb];
            let mut wt = vec![0f32; KB * nb];
            for k0 in (0..k).step_by(KB) {
                let kb = KB.min(k - k0);
                for r in 0..kb {
                    let src = &w[(k0 + r) * n + n0..(k0 + r) * n + n0 + nb];
                    wt[r * nb..(r + 1) * nb].iter_mut().zip(src).for_each(|(d, s)| *d = s.to_f32());
                }
                for i in 0..m {
                    let xr = &x[i * k + k0..i * k + k0 + kb];
                    let a = &mut acc[i * nb..(i + 1) * nb];
                    for (r, &xv) in xr.iter().enumerate() {
                        a.iter_mut().zip(&wt[r * nb..(r + 1) * nb]).for_each(|(o, &wv)| *o += xv * wv);
                    }
                }
            }
            acc
        })
        .collect();
    for (t, acc) in parts.iter().enumerate() {
        let (n0, nb) = (t * NB, NB.min(n - t * NB));
        for i in 0..m {
            y[i * n + n0..i * n + n0 + nb].copy_from_slice(&acc[i * nb..(i + 1) * nb]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_identity_when_same_size() {
        let table: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let out = bicubic_resize(&table, 4, 1, 4, 4);
        for (a, b) in out.iter().zip(&table) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn nn_matmul_matches_naive() {
        let (m, k, n) = (3, 300, 70);
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
        let w: Vec<bf16> = (0..k * n).map(|i| bf16::from_f32(((i * 5 % 11) as f32 - 5.0) / 9.0)).collect();
        let mut y = vec![0f32; m * n];
        matmul_nn_bf16(&x, m, k, &w, n, &mut y);
        for i in 0..m {
            for j in 0..n {
                let r: f32 = (0..k).map(|l| x[i * k + l] * w[l * n + j].to_f32()).sum();
                assert!((y[i * n + j] - r).abs() < 1e-3, "{i},{j}");
            }
        }
    }

    #[test]
    fn attention_single_key_returns_value() {
        let (q, k, v) = (vec![1.0, 2.0], vec![0.5, -1.0], vec![3.0, 4.0]);
        let mut o = vec![0f32; 2];
        segment_attention(&q, &k, &v, 1, 1, 2, &[(0, 1)], &mut o);
        assert_eq!(o, vec![3.0, 4.0]);
    }
}
