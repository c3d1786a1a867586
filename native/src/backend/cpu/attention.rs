//! Causal grouped-query attention of new positions over a KV cache, float32 (model-spec.md §7).
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
    let kv_dim = s.kv_heads * d;
    assert!(s.heads.is_multiple_of(s.kv_heads) && q.len().is_multiple_of(s.heads * d) && out.len() == q.len(), "attention: bad shapes");
    let len = q.len() / (s.heads * d);
    assert!(k.len() >= (start + len) * kv_dim && v.len() == k.len(), "attention: the cache is shorter than start + len");
    let group = s.heads / s.kv_heads;
    let scale = 1.0 / (d as f32).sqrt();
    out.par_chunks_mut(d).enumerate().for_each_init(Vec::new, |scores, (t, o)| {
        let (i, h) = (t / s.heads, t % s.heads);
        let ctx = start + i + 1;
        let g = h / group;
        let qh = &q[t * d..(t + 1) * d];
        scores.clear();
        scores.extend((0..ctx).map(|j| dot(qh, &k[j * kv_dim + g * d..j * kv_dim + (g + 1) * d]) * scale));
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

fn dot(a: &[f32], b: &[f32]) -> f32 {
    super::matmul::dot(a, b)
}
