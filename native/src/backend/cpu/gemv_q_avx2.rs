//! Quantized decode GEMV on AVX2 (CPUs without AVX-512 VNNI; quant.rs explains the storage): each
//! 64-value block of a W row is widened once to 4 × 16 int16 with the offset removed (int4 unpacked
//! from nibbles first), then multiplied with each row's int8 activations widened to int16 by
//! `vpmaddwd` (pairs summed into int32, exact: |q| ≤ 128 · 127 · 2 per lane). No saturation, unlike
//! `vpmaddubsw` with full-range unsigned bytes. Per group the int32 lanes become f32 and are scaled
//! into f32 accumulators, so the sums equal the scalar reference's up to f32 addition order.
//! Parallel over n; one W row at a time, its widened block reused for every row of x (≤ 16).
use super::quant::{QuantMatrix, QuantX, WeightMode, BLOCK};
use crate::backend::cpu::gemv::MAX_ROWS;
use crate::backend::cpu::matmul::SharedOut;
use rayon::prelude::*;
use std::arch::x86_64::*;

pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Caller: `available()`; x has at most MAX_ROWS rows; y [m, n]; bias [n].
pub fn gemv(w: &QuantMatrix, x: &QuantX, bias: Option<&[f32]>, y: &mut [f32]) {
    assert!(available(), "gemv_q_avx2 needs AVX2 and FMA");
    assert!(x.m <= MAX_ROWS, "gemv_q_avx2: at most {MAX_ROWS} rows, got {}", x.m);
    let n = w.n;
    assert_eq!(y.len(), x.m * n, "gemv_q_avx2: y must be [m, n]");
    let tasks = 16 * rayon::current_num_threads().max(1);
    let per = n.div_ceil(tasks).max(8);
    let out = SharedOut(y.as_mut_ptr());
    (0..n.div_ceil(per)).into_par_iter().for_each(|t| {
        for j in t * per..n.min((t + 1) * per) {
            // SAFETY: the features were checked above; the task writes y[.., j0..j1] only.
            unsafe { row(w, x, j, bias, out) };
        }
    });
}

#[target_feature(enable = "avx2,fma")]
unsafe fn row(w: &QuantMatrix, x: &QuantX, j: usize, bias: Option<&[f32]>, out: SharedOut) {
    let (kp, m) = (x.kp, x.m);
    let int8 = w.mode == WeightMode::Int8;
    let data = w.data.as_ptr();
    let mut acc = [_mm256_setzero_ps(); MAX_ROWS];
    for b in 0..kp / BLOCK {
        // the block's 64 weights as int16, in order: values 16i..16i+15 in wv[i]
        let mut wv = [_mm256_setzero_si256(); 4];
        if int8 {
            let off = _mm256_set1_epi16(128);
            for (i, v) in wv.iter_mut().enumerate() {
                let bytes = _mm_loadu_si128(data.add(w.block_at(j, b) + 16 * i) as *const __m128i);
                *v = _mm256_sub_epi16(_mm256_cvtepu8_epi16(bytes), off);
            }
        } else {
            let (off, low) = (_mm256_set1_epi16(8), _mm256_set1_epi16(0x0F));
            for h in 0..2 {
                let wide = _mm256_cvtepu8_epi16(_mm_loadu_si128(data.add(w.block_at(j, b) + 16 * h) as *const __m128i));
                wv[h] = _mm256_sub_epi16(_mm256_and_si256(wide, low), off);
                wv[2 + h] = _mm256_sub_epi16(_mm256_srli_epi16::<4>(wide), off);
            }
        }
        // weight scales of the block's two groups (int8: one); int4 positions 4l..4l+3 are in group
        // l % 2, so the madd lanes (2 positions each) alternate groups in pairs: A A B B A A B B
        let (swa, swb) = if int8 { (w.scale(j, b), w.scale(j, b)) } else { (w.scale(j, 2 * b), w.scale(j, 2 * b + 1)) };
        for (r, a) in acc.iter_mut().enumerate().take(m) {
            let xp = x.q.as_ptr().add(r * kp + b * BLOCK);
            let mut sum = _mm256_setzero_si256();
            for (i, wvi) in wv.iter().enumerate() {
                let xi = _mm256_cvtepi8_epi16(_mm_loadu_si128(xp.add(16 * i) as *const __m128i));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(*wvi, xi));
            }
            let xs = x.scales.as_ptr().add(r * (kp / w.mode.group()));
            let (sxa, sxb) = if int8 { (*xs.add(b), *xs.add(b)) } else { (*xs.add(2 * b), *xs.add(2 * b + 1)) };
            let scale = _mm256_blend_ps::<0b1100_1100>(_mm256_set1_ps(swa * sxa), _mm256_set1_ps(swb * sxb));
            *a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, *a);
        }
    }
    let bj = bias.map_or(0.0, |b| b[j]);
    for (r, a) in acc.iter().enumerate().take(m) {
        *out.at(r * w.n + j) = hsum(*a) + bj;
    }
}

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}
