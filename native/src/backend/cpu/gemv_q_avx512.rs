//! Quantized decode GEMV on AVX-512 with VNNI (quant.rs explains the storage and the arithmetic).
//! Memory: W is stored in tiles of TILE = 4 rows whose blocks interleave (block b of rows 0..3, then
//! block b + 1, …) with their scales in the same order, so each task streams one contiguous stretch
//! of bytes, and a tile is read from memory once for all rows of x (≤ 16, 4 at a time from L1).
//! Arithmetic per 64-value block, W row and x row: one `vpdpbusd` (stored unsigned weight bytes ×
//! int8 activations, each 4 adjacent products summed into 16 int32 lanes, starting from the
//! activation's −offset·Σ4 correction so the lanes hold exact signed sums), one int32 → f32
//! conversion and one FMA whose scale operand is a broadcast from memory: the combined scales
//! (weight × activation) of the whole tile are computed up front, 16 per instruction. int8: the 16
//! lanes share one group. int4: the 32 packed bytes are broadcast to both halves of a zmm and
//! masked with 0x0F (low half) / 0xF0 (high half, giving 16·(q + 8): the final sum divides those
//! lanes by 16); the position order puts group 0 in even lanes and group 1 in odd ones, so the scale
//! operand is one broadcast 64-bit pair. No shifts, no permutes, no horizontal sums inside the loop.
use super::quant::{QuantMatrix, QuantX, WeightMode, BLOCK, TILE};
use crate::backend::cpu::matmul::SharedOut;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// AVX-512F/BW and VNNI present.
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vnni")
}

/// Caller: `available()`; y [m, n]; bias [n].
pub fn gemv(w: &QuantMatrix, x: &QuantX, bias: Option<&[f32]>, y: &mut [f32]) {
    assert!(available(), "gemv_q_avx512 needs AVX-512 VNNI");
    assert!(x.kp == w.kp && x.mode == w.mode, "gemv_q_avx512: x quantized for another matrix");
    let n = w.n;
    assert_eq!(y.len(), x.m * n, "gemv_q_avx512: y must be [m, n]");
    let tiles = n.div_ceil(TILE);
    // a few tasks per thread balance uneven progress; each is a contiguous run of tiles
    let per = tiles.div_ceil(4 * rayon::current_num_threads().max(1)).max(1);
    let per_x = (w.kp / BLOCK) * TILE * (BLOCK / w.mode.group()); // combined scales per tile and x row
    let out = SharedOut(y.as_mut_ptr());
    (0..tiles.div_ceil(per)).into_par_iter().for_each_init(
        || vec![0f32; 4 * per_x],
        |c, ti| {
            for t in ti * per..tiles.min((ti + 1) * per) {
                // SAFETY: the features were checked above; the task writes y[.., tile t's rows] only.
                unsafe {
                    match w.mode {
                        WeightMode::Int8 => tile::<false>(w, x, t, bias, out, c),
                        _ => tile::<true>(w, x, t, bias, out, c),
                    }
                }
            }
        },
    );
}

/// Tiles ahead whose scales are prefetched.
const PF_TILES: usize = 2;

/// Prefetch distance in bytes of W: 1 KiB (8 int4 blocks of a tile, 4 for int8). Measured on the
/// Xeon (one thread, tests/quant_gemv_speed.rs, CPU time per decode step's products against a plain
/// read of the same bytes): 512 B 1.43, 1 KiB 1.02–1.07, 2 KiB 1.02–1.06, 4 KiB 1.22–1.27, none 1.27–1.37.
const PF_BYTES: usize = 1024;

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile<const INT4: bool>(w: &QuantMatrix, x: &QuantX, t: usize, bias: Option<&[f32]>, out: SharedOut, c: &mut [f32]) {
    let mut r0 = 0;
    while r0 < x.m {
        match (x.m - r0).min(4) {
            1 => block::<1, INT4>(w, x, t, r0, bias, out, c),
            2 => block::<2, INT4>(w, x, t, r0, bias, out, c),
            3 => block::<3, INT4>(w, x, t, r0, bias, out, c),
            _ => block::<4, INT4>(w, x, t, r0, bias, out, c),
        }
        r0 += 4;
    }
}

/// Tile t (W rows 4t..4t+3) against x rows r0..r0+R: writes the outputs of the tile's real rows.
#[inline(always)]
unsafe fn block<const R: usize, const INT4: bool>(w: &QuantMatrix, x: &QuantX, t: usize, r0: usize, bias: Option<&[f32]>, out: SharedOut, c: &mut [f32]) {
    let kp = x.kp;
    let blocks = kp / BLOCK;
    let spb = if INT4 { 2 } else { 1 };
    let per_x = blocks * TILE * spb;
    // combined scales c[r][b][q][s] = weight scale (tile row q, group s of block b) × x row's
    // (weights' f16 scales widened 16 at a time)
    let ws = &w.scales[t * per_x..(t + 1) * per_x];
    for r in 0..R {
        let xs = &x.tile_scales[(r0 + r) * per_x..(r0 + r + 1) * per_x];
        let d = &mut c[r * per_x..(r + 1) * per_x];
        let mut i = 0;
        while i + 16 <= per_x {
            let wf = _mm512_cvtph_ps(_mm256_loadu_si256(ws.as_ptr().add(i) as *const __m256i));
            _mm512_storeu_ps(d.as_mut_ptr().add(i), _mm512_mul_ps(wf, _mm512_loadu_ps(xs.as_ptr().add(i))));
            i += 16;
        }
        for i in i..per_x {
            d[i] = ws[i].to_f32() * xs[i];
        }
    }
    let bb = if INT4 { BLOCK / 2 } else { BLOCK };
    let data = w.data.as_ptr().add(t * blocks * TILE * bb);
    // Software prefetch PF bytes ahead of the tile's stream (into the next tiles, which this task
    // reads next), only on the first pass over the tile (r0 = 0; later row groups find it in L1/L2).
    // The hardware prefetcher alone stops at each 4 KiB page: a tile at k = 2048 is one page (int4).
    let pf = r0 == 0;
    if pf {
        // the scales of the tile PF_TILES ahead (per_x · 2 bytes: 256 B for int8, 512 B for int4 at k = 2048)
        let sp = w.scales.as_ptr().wrapping_add((t + PF_TILES) * per_x) as *const i8;
        for l in 0..(per_x * 2).div_ceil(64) {
            _mm_prefetch::<_MM_HINT_T0>(sp.wrapping_add(64 * l));
        }
    }
    let nibbles = _mm512_inserti64x4::<1>(_mm512_set1_epi8(0x0F), _mm256_set1_epi8(0xF0u8 as i8));
    let mut acc = [[_mm512_setzero_ps(); R]; TILE];
    for b in 0..blocks {
        if pf {
            let p = data.wrapping_add(b * TILE * bb + PF_BYTES) as *const i8;
            for l in 0..TILE * bb / 64 {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * l));
            }
        }
        let mut wv = [_mm512_setzero_si512(); TILE];
        for (q, v) in wv.iter_mut().enumerate() {
            let p = data.add((b * TILE + q) * bb);
            *v = if INT4 {
                _mm512_and_si512(_mm512_broadcast_i64x4(_mm256_loadu_si256(p as *const __m256i)), nibbles)
            } else {
                _mm512_loadu_si512(p as *const __m512i)
            };
        }
        for r in 0..R {
            let row = r0 + r;
            let xv = _mm512_loadu_si512(x.q.as_ptr().add(row * kp + b * BLOCK) as *const __m512i);
            let corr = _mm512_loadu_si512(x.neg_corr.as_ptr().add(row * kp / 4 + b * 16) as *const __m512i);
            let cs = c.as_ptr().add(r * per_x + b * TILE * spb);
            for q in 0..TILE {
                let dot = _mm512_dpbusd_epi32(corr, wv[q], xv);
                let s = if INT4 {
                    _mm512_castpd_ps(_mm512_set1_pd(std::ptr::read_unaligned(cs.add(2 * q) as *const f64)))
                } else {
                    _mm512_set1_ps(*cs.add(q))
                };
                acc[q][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, acc[q][r]);
            }
        }
    }
    // int4: lanes 8–15 summed 16·q
    let fix = if INT4 { _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(1.0), _mm512_set1_ps(1.0 / 16.0)) } else { _mm512_set1_ps(1.0) };
    for (q, aq) in acc.iter().enumerate() {
        let j = t * TILE + q;
        if j >= w.n {
            break;
        }
        let bj = bias.map_or(0.0, |b| b[j]);
        for (r, a) in aq.iter().enumerate() {
            let a = if INT4 { _mm512_mul_ps(*a, fix) } else { *a };
            *out.at((r0 + r) * w.n + j) = _mm512_reduce_add_ps(a) + bj;
        }
    }
}
