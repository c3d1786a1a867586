//! Bidirectional softmax attention restricted to segments (model-spec.md §4.5: one image or video frame,
//! or one window of §4.4), f32. Per head, keys and values are transposed to [hd, tokens] so that both
//! products run over contiguous key ranges: a tile of 4 queries × 32 keys for the scores (8 vector
//! accumulators), then 4 queries × 16 keys per head dim for P·V.
use super::simd::{self, madd, multiversion};
use rayon::prelude::*;

const QB: usize = 4;
const JS: usize = 32;
const JV: usize = 16;

/// [tokens, heads·hd] → [heads, hd, tokens] (transposed per head), optionally scaled.
fn by_head_t(x: &[f32], tokens: usize, heads: usize, hd: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(hd * tokens).enumerate().for_each(|(h, o)| {
        for t in 0..tokens {
            for d in 0..hd {
                o[d * tokens + t] = x[t * heads * hd + h * hd + d];
            }
        }
    });
    out
}

/// One head, one segment, up to QB queries. q: [QB, hd] (pre-scaled, zero rows past nq), kt/vt: this
/// head's [hd, stride] tables, keys start..start+len; s: scratch [QB, len]; o: [nq, hd] output rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block_impl<const FMA: bool>(q: &[f32], nq: usize, kt: &[f32], vt: &[f32], stride: usize, start: usize, len: usize, s: &mut [f32], o: &mut [f32]) {
    let hd = q.len() / QB;
    let full = len / JS * JS;
    for j0 in (0..full).step_by(JS) {
        let mut acc = [[0f32; JS]; QB];
        for d in 0..hd {
            let k: &[f32; JS] = kt[d * stride + start + j0..][..JS].try_into().unwrap();
            for qi in 0..QB {
                let a = q[qi * hd + d];
                for jj in 0..JS {
                    acc[qi][jj] = madd::<FMA>(a, k[jj], acc[qi][jj]);
                }
            }
        }
        for qi in 0..QB {
            s[qi * len + j0..qi * len + j0 + JS].copy_from_slice(&acc[qi]);
        }
    }
    for j in full..len {
        for qi in 0..QB {
            s[qi * len + j] = (0..hd).fold(0f32, |a, d| a + q[qi * hd + d] * kt[d * stride + start + j]);
        }
    }
    let mut inv = [0f32; QB];
    for qi in 0..QB {
        let row = &mut s[qi * len..(qi + 1) * len];
        let m = simd::max(row);
        row.iter_mut().for_each(|v| *v = simd::exp(*v - m));
        inv[qi] = 1.0 / simd::sum(row);
    }
    let full = len / JV * JV;
    for d in 0..hd {
        let v = &vt[d * stride + start..d * stride + start + len];
        let mut acc = [[0f32; JV]; QB];
        for j0 in (0..full).step_by(JV) {
            let vv: &[f32; JV] = v[j0..j0 + JV].try_into().unwrap();
            for qi in 0..QB {
                let p: &[f32; JV] = s[qi * len + j0..qi * len + j0 + JV].try_into().unwrap();
                for jj in 0..JV {
                    acc[qi][jj] = madd::<FMA>(p[jj], vv[jj], acc[qi][jj]);
                }
            }
        }
        for qi in 0..nq {
            let tail = (full..len).fold(0f32, |a, j| a + s[qi * len + j] * v[j]);
            o[qi * hd + d] = (acc[qi].iter().sum::<f32>() + tail) * inv[qi];
        }
    }
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn block(q: &[f32], nq: usize, kt: &[f32], vt: &[f32], stride: usize, start: usize, len: usize, s: &mut [f32], o: &mut [f32]) = block_impl;
}

/// q, k, v, out: [tokens, heads·hd]; segments (start, len) tile 0..tokens; scale hd^−0.5. Parallel over
/// heads × segments × blocks of 4 queries.
#[allow(clippy::too_many_arguments)]
pub fn segment_attention(q: &[f32], k: &[f32], v: &[f32], tokens: usize, heads: usize, hd: usize, segments: &[(usize, usize)], out: &mut [f32]) {
    assert_eq!(q.len(), tokens * heads * hd, "q must be [tokens, heads·hd]");
    assert_eq!(segments.iter().map(|s| s.1).sum::<usize>(), tokens, "segments must tile the tokens");
    let scale = 1.0 / (hd as f32).sqrt();
    let (kt, vt) = (by_head_t(k, tokens, heads, hd), by_head_t(v, tokens, heads, hd));
    // Work items: (head, segment start, segment len, first query); each writes QB query rows of one head.
    let items: Vec<(usize, usize, usize, usize)> = (0..heads)
        .flat_map(|h| segments.iter().flat_map(move |&(st, len)| (st..st + len).step_by(QB).map(move |q0| (h, st, len, q0))))
        .collect();
    let results: Vec<Vec<f32>> = items
        .par_iter()
        .map_init(
            || (vec![0f32; QB * hd], Vec::new()),
            |(qb, s), &(h, st, len, q0)| {
                let nq = QB.min(st + len - q0);
                qb.fill(0.0);
                for i in 0..nq {
                    let src = &q[(q0 + i) * heads * hd + h * hd..][..hd];
                    qb[i * hd..(i + 1) * hd].iter_mut().zip(src).for_each(|(d, &x)| *d = x * scale);
                }
                s.resize(QB * len, 0.0);
                let mut o = vec![0f32; nq * hd];
                let (kh, vh) = (&kt[h * hd * tokens..(h + 1) * hd * tokens], &vt[h * hd * tokens..(h + 1) * hd * tokens]);
                block(qb, nq, kh, vh, tokens, st, len, s, &mut o);
                o
            },
        )
        .collect();
    for (&(h, _, _, q0), o) in items.iter().zip(&results) {
        for (i, row) in o.chunks(hd).enumerate() {
            out[(q0 + i) * heads * hd + h * hd..][..hd].copy_from_slice(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain two-pass attention for comparison.
    fn naive(q: &[f32], k: &[f32], v: &[f32], heads: usize, hd: usize, segs: &[(usize, usize)]) -> Vec<f32> {
        let w = heads * hd;
        let mut out = vec![0f32; q.len()];
        for &(st, len) in segs {
            for h in 0..heads {
                for i in st..st + len {
                    let sc: Vec<f64> = (st..st + len).map(|j| (0..hd).map(|d| (q[i * w + h * hd + d] * k[j * w + h * hd + d]) as f64).sum::<f64>() / (hd as f64).sqrt()).collect();
                    let m = sc.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = sc.iter().map(|x| (x - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for d in 0..hd {
                        out[i * w + h * hd + d] = ((st..st + len).map(|j| e[j - st] * v[j * w + h * hd + d] as f64).sum::<f64>() / z) as f32;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_naive_on_ragged_segments() {
        let (heads, hd, segs) = (3, 24, [(0, 37), (37, 5), (42, 70)]);
        let n = 112;
        let gen = |s: usize| (0..n * heads * hd).map(|i| (((i * 7919 + s) % 1000) as f32 / 500.0 - 1.0) * 2.0).collect::<Vec<f32>>();
        let (q, k, v) = (gen(1), gen(2), gen(3));
        let mut o = vec![0f32; q.len()];
        segment_attention(&q, &k, &v, n, heads, hd, &segs, &mut o);
        let want = naive(&q, &k, &v, heads, hd, &segs);
        let e = o.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(e < 2e-6, "max error {e}");
    }
}
