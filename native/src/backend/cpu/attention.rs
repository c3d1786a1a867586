//! Causal grouped-query attention of new positions over a KV cache, float32 (model-spec.md §7).
//! AVX-512 kernels in `attention_avx512` (tiled for prefill, per row for decode); a portable loop here.
use rayon::prelude::*;

/// Shapes of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// out[i, h] = softmax(q[i, h]·K[0..=p, g]ᵀ / √d) · V[0..=p, g] with p = start + i (the absolute
/// position of query row i) and g = h / (heads / kv_heads).
/// q, out: [len, heads, d]; k, v: [start + len (or more), kv_heads, d] (the cache after appending).
pub fn causal_attention(q: &[f32], start: usize, k: &[f32], v: &[f32], s: AttnShape, out: &mut [f32]) {
    let d = s.head_dim;
    assert!(s.kv_heads > 0 && s.heads.is_multiple_of(s.kv_heads) && q.len().is_multiple_of(s.heads * d) && out.len() == q.len(), "attention: bad shapes");
    let len = q.len() / (s.heads * d);
    assert!(k.len() >= (start + len) * s.kv_heads * d && v.len() == k.len(), "attention: the cache is shorter than start + len");
    if len == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if d.is_multiple_of(16) && std::arch::is_x86_feature_detected!("avx512f") {
            super::attention_avx512::causal_attention(q, len, start, k, v, s, out);
            return;
        }
    }
    portable(q, start, k, v, s, out);
}

/// One sequence's attention call within a batched step: its new rows' q and out [len, heads, d],
/// the absolute position of its first new row, and its cache's k, v (after appending them).
pub struct AttnRow<'a> {
    pub q: &'a [f32],
    pub start: usize,
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub out: &'a mut [f32],
}

/// `causal_attention` for each sequence of a batched step, each exactly as alone. The decode-sized
/// ones (fewer than 12 new rows) run together in one parallel pass over (sequence, row, kv group)
/// (with AVX-512F); longer ones (a prefill chunk) one after another, each parallel inside.
pub fn causal_attention_rows(rows: Vec<AttnRow<'_>>, s: AttnShape) {
    let d = s.head_dim;
    assert!(s.kv_heads > 0 && s.heads.is_multiple_of(s.kv_heads), "attention: bad shapes");
    #[cfg(target_arch = "x86_64")]
    {
        if d.is_multiple_of(16) && std::arch::is_x86_feature_detected!("avx512f") {
            let mut short = Vec::with_capacity(rows.len());
            for r in rows {
                assert!(r.q.len().is_multiple_of(s.heads * d) && r.out.len() == r.q.len(), "attention: bad shapes");
                let len = r.q.len() / (s.heads * d);
                assert!(r.k.len() >= (r.start + len) * s.kv_heads * d && r.v.len() == r.k.len(), "attention: the cache is shorter than start + len");
                if len >= super::attention_avx512::MR {
                    causal_attention(r.q, r.start, r.k, r.v, s, r.out);
                } else {
                    short.push(r);
                }
            }
            super::attention_avx512::decode_rows(short, s);
            return;
        }
    }
    for r in rows {
        causal_attention(r.q, r.start, r.k, r.v, s, r.out);
    }
}

/// One task per (query row, head): scores, softmax, weighted sum of V.
fn portable(q: &[f32], start: usize, k: &[f32], v: &[f32], s: AttnShape, out: &mut [f32]) {
    let d = s.head_dim;
    let kv_dim = s.kv_heads * d;
    let group = s.heads / s.kv_heads;
    let scale = 1.0 / (d as f32).sqrt();
    out.par_chunks_mut(d).enumerate().for_each_init(Vec::new, |scores, (t, o)| {
        let (i, h) = (t / s.heads, t % s.heads);
        let ctx = start + i + 1;
        let g = h / group;
        let qh = &q[t * d..(t + 1) * d];
        scores.clear();
        scores.extend((0..ctx).map(|j| super::matmul::dot(qh, &k[j * kv_dim + g * d..j * kv_dim + (g + 1) * d]) * scale));
        let max = scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0f32;
        for e in scores.iter_mut() {
            *e = (*e - max).exp();
            sum += *e;
        }
        o.fill(0.0);
        let inv = 1.0 / sum;
        for (j, &e) in scores.iter().enumerate() {
            let p = e * inv;
            for (a, &b) in o.iter_mut().zip(&v[j * kv_dim + g * d..j * kv_dim + (g + 1) * d]) {
                *a += p * b;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of sequences (decode rows, short and long chunks, different contexts) gives each
    /// sequence bit for bit what its own call gives.
    #[test]
    fn rows_together_equal_each_alone() {
        let s = AttnShape { heads: 16, kv_heads: 8, head_dim: 128 };
        let seqs = [(31usize, 1usize), (0, 1), (5, 3), (40, 20), (200, 1), (7, 11), (64, 1)];
        let data: Vec<_> = seqs
            .iter()
            .enumerate()
            .map(|(n, &(start, len))| {
                let q: Vec<f32> = (0..len * s.heads * s.head_dim).map(|i| (((i + n) * 37 % 101) as f32 - 50.0) * 0.05).collect();
                let k: Vec<f32> = (0..(start + len) * s.kv_heads * s.head_dim).map(|i| (((i + 3 * n) * 53 % 89) as f32 - 44.0) * 0.05).collect();
                let v: Vec<f32> = (0..k.len()).map(|i| (((i + n) * 29 % 83) as f32 - 41.0) * 0.02).collect();
                (start, q, k, v)
            })
            .collect();
        let mut together: Vec<Vec<f32>> = data.iter().map(|d| vec![0f32; d.1.len()]).collect();
        let rows = data.iter().zip(together.iter_mut()).map(|((start, q, k, v), out)| AttnRow { q, start: *start, k, v, out }).collect();
        causal_attention_rows(rows, s);
        for ((start, q, k, v), got) in data.iter().zip(&together) {
            let mut alone = vec![0f32; q.len()];
            causal_attention(q, *start, k, v, s, &mut alone);
            assert_eq!(&alone, got, "start {start}, {} rows", q.len() / (s.heads * s.head_dim));
        }
    }

    /// The AVX-512 paths (tiled for ≥ 12 rows, per row below) agree with the portable loop.
    #[test]
    fn kernels_match_portable() {
        for &(start, len, heads, kv_heads, d) in &[(0, 1, 4, 2, 16), (5, 3, 4, 2, 16), (0, 13, 4, 2, 16), (7, 30, 16, 8, 128), (40, 25, 32, 8, 128), (3, 12, 2, 2, 48)] {
            let s = AttnShape { heads, kv_heads, head_dim: d };
            let q: Vec<f32> = (0..len * heads * d).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.05).collect();
            let k: Vec<f32> = (0..(start + len) * kv_heads * d).map(|i| ((i * 53 % 89) as f32 - 44.0) * 0.05).collect();
            let v: Vec<f32> = (0..k.len()).map(|i| ((i * 29 % 83) as f32 - 41.0) * 0.02).collect();
            let (mut a, mut b) = (vec![0f32; q.len()], vec![0f32; q.len()]);
            causal_attention(&q, start, &k, &v, s, &mut a);
            portable(&q, start, &k, &v, s, &mut b);
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!((x - y).abs() <= 2e-5 * (1.0 + y.abs()), "start={start} len={len} d={d}: out[{i}] = {x} vs {y}");
            }
        }
    }
}
