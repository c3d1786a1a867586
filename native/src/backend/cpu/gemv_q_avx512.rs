//! Quantized decode GEMV on AVX-512 with VNNI (quant.rs explains the storage and the arithmetic):
//! per 64-value block, one `vpdpbusd` multiplies the 64 stored weight bytes (unsigned: q + offset)
//! by 64 int8 activations and sums each 4 adjacent products into 16 int32 lanes, starting from the
//! activation row's −offset·Σ4 correction so the lanes hold the exact signed dot products. The lanes
//! are converted to f32 and multiplied by (weight scale × activation scale) per lane into f32
//! accumulators. int4 blocks are unpacked in registers (AND 0x0F, shift by 4) to the same 64 bytes.
//!
//! Tiles: WR = 4 W rows × up to 4 rows of x, 16 zmm accumulators; W streamed from memory once per
//! call for all rows (split over n across threads), the 4 W rows reused from L1 across x tiles.
use super::quant::{QuantMatrix, QuantX, WeightMode, BLOCK};
use crate::backend::cpu::matmul::SharedOut;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// AVX-512F/BW and VNNI present.
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vnni")
}

const WR: usize = 4;

/// Caller: `available()`; y [m, n]; bias [n].
pub fn gemv(w: &QuantMatrix, x: &QuantX, bias: Option<&[f32]>, y: &mut [f32]) {
    assert!(available(), "gemv_q_avx512 needs AVX-512 VNNI");
    let n = w.n;
    assert_eq!(y.len(), x.m * n, "gemv_q_avx512: y must be [m, n]");
    let tasks = 16 * rayon::current_num_threads().max(1);
    let per = (n.div_ceil(tasks).div_ceil(WR) * WR).max(4 * WR);
    let out = SharedOut(y.as_mut_ptr());
    (0..n.div_ceil(per)).into_par_iter().for_each(|t| {
        let (j0, j1) = (t * per, n.min((t + 1) * per));
        // SAFETY: the features were checked above; the task writes y[.., j0..j1] only.
        unsafe {
            let mut j = j0;
            while j + WR <= j1 {
                match w.mode {
                    WeightMode::Int8 => tiles::<WR, 8>(w, x, j, bias, out),
                    _ => tiles::<WR, 4>(w, x, j, bias, out),
                }
                j += WR;
            }
            while j < j1 {
                match w.mode {
                    WeightMode::Int8 => tiles::<1, 8>(w, x, j, bias, out),
                    _ => tiles::<1, 4>(w, x, j, bias, out),
                }
                j += 1;
            }
        }
    });
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tiles<const G: usize, const BITS: usize>(w: &QuantMatrix, x: &QuantX, j: usize, bias: Option<&[f32]>, out: SharedOut) {
    let mut r0 = 0;
    while r0 < x.m {
        match (x.m - r0).min(4) {
            1 => block::<G, 1, BITS>(w, x, j, r0, bias, out),
            2 => block::<G, 2, BITS>(w, x, j, r0, bias, out),
            3 => block::<G, 3, BITS>(w, x, j, r0, bias, out),
            _ => block::<G, 4, BITS>(w, x, j, r0, bias, out),
        }
        r0 += 4;
    }
}

/// W rows j..j+G against x rows r0..r0+R: writes the G × R outputs.
#[inline(always)]
unsafe fn block<const G: usize, const R: usize, const BITS: usize>(w: &QuantMatrix, x: &QuantX, j: usize, r0: usize, bias: Option<&[f32]>, out: SharedOut) {
    let kp = x.kp;
    let blocks = kp / BLOCK;
    let rb = w.row_bytes();
    let gs = kp / w.mode.group(); // scales per W row
    let low = _mm256_set1_epi8(0x0F);
    let mut acc = [[_mm512_setzero_ps(); R]; G];
    for b in 0..blocks {
        let mut wv = [_mm512_setzero_si512(); G];
        let mut ws = [_mm512_setzero_ps(); G];
        for q in 0..G {
            let row = w.data.as_ptr().add((j + q) * rb);
            let sc = w.scales.as_ptr().add((j + q) * gs);
            if BITS == 8 {
                wv[q] = _mm512_loadu_si512(row.add(b * BLOCK) as *const __m512i);
                ws[q] = _mm512_set1_ps(*sc.add(b));
            } else {
                let v = _mm256_loadu_si256(row.add(b * 32) as *const __m256i);
                let lo = _mm256_and_si256(v, low);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low);
                wv[q] = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
                ws[q] = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(*sc.add(2 * b)), _mm512_set1_ps(*sc.add(2 * b + 1)));
            }
        }
        for r in 0..R {
            let row = r0 + r;
            let xv = _mm512_loadu_si512(x.q.as_ptr().add(row * kp + b * BLOCK) as *const __m512i);
            let corr = _mm512_loadu_si512(x.neg_corr.as_ptr().add(row * kp / 4 + b * 16) as *const __m512i);
            let xs = _mm512_loadu_ps(x.lane_scales.as_ptr().add(row * kp / 4 + b * 16));
            for q in 0..G {
                let dot = _mm512_dpbusd_epi32(corr, wv[q], xv);
                acc[q][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(ws[q], xs), acc[q][r]);
            }
        }
    }
    for (q, aq) in acc.iter().enumerate() {
        let bj = bias.map_or(0.0, |b| b[j + q]);
        for (r, a) in aq.iter().enumerate() {
            *out.at((r0 + r) * w.n + j + q) = _mm512_reduce_add_ps(*a) + bj;
        }
    }
}
