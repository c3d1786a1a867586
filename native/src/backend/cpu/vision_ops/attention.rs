//! Bidirectional softmax attention restricted to segments (model-spec.md §4.5: one image or video frame,
//! or one window of §4.4), f32. Per head, keys and values are transposed to [hd, tokens] so that both
//! products run over contiguous key ranges: a tile of 4 queries × 32 keys for the scores (8 vector
//! accumulators), then 4 queries × 16 keys per head dim for P·V. That loop is the fallback (AVX2+FMA or
//! scalar, via `multiversion!`). The flash-style AVX-512 kernel of attention_flash.rs is the default on
//! a CPU with AVX-512F (checked on a Sapphire Rapids class Xeon, 2026-12-02: its test below and the
//! vision parity fixtures pass; 448² ViT attention ~2× faster than the blocked loop there);
//! OVIS_CPU_ATTENTION=blocked forces the blocked loop (to compare or bisect).
use super::simd::{self, madd, multiversion};

/// The `--precision bf16` kernel on AMX tiles (a child of this module: vision_ops.rs is not touched).
#[cfg(target_arch = "x86_64")]
#[path = "attention_amx.rs"]
mod attention_amx;
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

/// q, k, v, out: [tokens, heads·hd]; segments (start, len) tile 0..tokens; scale hd^−0.5.
#[allow(clippy::too_many_arguments)]
pub fn segment_attention(q: &[f32], k: &[f32], v: &[f32], tokens: usize, heads: usize, hd: usize, segments: &[(usize, usize)], out: &mut [f32]) {
    assert_eq!(q.len(), tokens * heads * hd, "q must be [tokens, heads·hd]");
    assert!(k.len() == q.len() && v.len() == q.len() && out.len() == q.len(), "q, k, v and out must have the same shape");
    assert_eq!(segments.iter().map(|s| s.1).sum::<usize>(), tokens, "segments must tile the tokens");
    #[cfg(target_arch = "x86_64")]
    {
        if amx_applies(hd) {
            attention_amx::segment_attention(q, k, v, tokens, heads, hd, segments, out);
            return;
        }
        if !blocked_requested() && flash_fits(hd) {
            super::attention_flash::segment_attention(q, k, v, heads, hd, segments, out);
            return;
        }
    }
    blocked(q, k, v, tokens, heads, hd, segments, out);
}

#[cfg(target_arch = "x86_64")]
fn blocked_requested() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("OVIS_CPU_ATTENTION").is_ok_and(|v| v == "blocked"))
}

/// `--precision bf16` with the AMX path (precision.rs), unless OVIS_CPU_ATTENTION=blocked, and a head
/// dim the AMX kernel's tiles hold.
#[cfg(target_arch = "x86_64")]
fn amx_applies(hd: usize) -> bool {
    use crate::backend::cpu::precision::{bf16_support, precision, Bf16Path, Precision};
    precision() == Precision::Bf16 && bf16_support().path == Some(Bf16Path::Amx) && !blocked_requested() && hd <= attention_amx::MAX_HD
}

/// The flash kernel runs here: AVX-512F present and the padded head dim fits its register tile.
#[cfg(target_arch = "x86_64")]
fn flash_fits(hd: usize) -> bool {
    hd.div_ceil(16) * 16 <= super::attention_flash::MAX_HDP && std::arch::is_x86_feature_detected!("avx512f")
}

/// The blocked loop: parallel over heads × segments × blocks of 4 queries, whole score rows per block.
#[allow(clippy::too_many_arguments)]
fn blocked(q: &[f32], k: &[f32], v: &[f32], tokens: usize, heads: usize, hd: usize, segments: &[(usize, usize)], out: &mut [f32]) {
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

    /// Both kernels (the flash one where AVX-512F exists, the blocked loop everywhere) against f64
    /// two-pass attention, on segments shorter than, equal to and longer than the flash key block
    /// (128), head dims that are and are not multiples of 16 (72 is the released ViT's).
    /// Bound: max abs error ≤ 5e-6 with |v| ≤ 2 (f32 sums over ≤ 300 keys, exp to ~1 ulp).
    #[test]
    fn matches_naive_on_ragged_segments() {
        for (heads, hd, segs) in [(3, 24, vec![(0, 37), (37, 5), (42, 70)]), (2, 72, vec![(0, 128), (128, 1), (129, 300)]), (1, 16, vec![(0, 12), (12, 33)]), (2, 96, vec![(0, 200)])] {
            let n: usize = segs.iter().map(|s| s.1).sum();
            let gen = |s: usize| (0..n * heads * hd).map(|i| (((i * 7919 + s) % 1000) as f32 / 500.0 - 1.0) * 2.0).collect::<Vec<f32>>();
            let (q, k, v) = (gen(1), gen(2), gen(3));
            let want = naive(&q, &k, &v, heads, hd, &segs);
            let mut b = vec![0f32; q.len()];
            blocked(&q, &k, &v, n, heads, hd, &segs, &mut b);
            let mut outs = vec![("blocked", b)];
            #[cfg(target_arch = "x86_64")]
            if flash_fits(hd) {
                let mut a = vec![0f32; q.len()];
                super::super::attention_flash::segment_attention(&q, &k, &v, heads, hd, &segs, &mut a);
                outs.push(("flash", a));
            } else {
                eprintln!("SKIP attention flash kernel (hd {hd}): this CPU has no AVX-512F");
            }
            for (name, o) in &outs {
                let e = o.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(e < 5e-6, "{name} heads={heads} hd={hd}: max error {e}");
            }
        }
    }
}
