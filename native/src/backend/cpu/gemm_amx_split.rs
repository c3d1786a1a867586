//! f32 arithmetic on the AMX tile unit (the default precision when the kernel grants AMX): each f32
//! activation is split exactly into three bf16 terms, x = hi + mid + lo (bf16_split.rs), so
//! W·x = W·hi + W·mid + W·lo. `tdpbf16ps` forms every bf16 × bf16 product exactly in f32 (8 × 8
//! significant bits) and adds it to the f32 accumulator with round-to-nearest-even (Intel SDM,
//! TDPBF16PS: "RNE ... each accumulation of the FMA"; MXCSR not consulted). So the result is f32
//! arithmetic on the same exact products as the FMA GEMM (gemm.rs); only the roundings differ: three
//! accumulations per product instead of one, in another order. Caveat of the unit: it treats
//! denormal inputs as zero and flushes denormal results, so terms under 2^-126 (~1.2e-38) are lost
//! (an absolute error of that order per product; the FMA GEMM keeps them).
//!
//! Tile use (palette 1, gemm_amx::config: 8 tiles of 16 rows × 64 bytes): tmm0–3 four f32 16 × 16
//! accumulators, tmm4–6 the three terms of one operand (kept for one 32-k step), tmm7 the streamed
//! tile of the other operand, loaded once for its three `tdpbf16ps`. Per 32 k: 3 + 4 tile loads and
//! 12 `tdpbf16ps` (the 2 × 2 block of gemm_amx.rs would take 8 loads for the same 12).
//! * W [n, k] ("direct" form of gemm_amx.rs, yᵀ = W·xᵀ): A = 4 groups of 16 W rows read in place,
//!   B = the 3 term tiles of 16 x rows (VNNI pairs), C[W row][x row], transposed on the way out.
//! * W [k, n] (the VTE table; packed VNNI panels of gemm_bf16dot.rs): A = the 3 term tiles of 16
//!   x rows (plain rows), B = 4 W panels of 16 columns, C[x row][column].
use super::gemm_amx::config;
use super::gemm_pack::{for_each_pair16, transpose16};
use super::matmul::SharedOut;
use std::arch::asm;
use std::arch::x86_64::*;

/// Splits f32 lanes into their three bf16 terms (bit patterns, the same as bf16_split::split3 gives,
/// tested below), as three 16 × u16 vectors.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn split16(v: __m512) -> (__m256i, __m256i, __m256i) {
    let [hi, mid, lo] = super::bf16_split::split3_x16(v);
    (_mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(hi)), _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(mid)), _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(lo)))
}

/// One row of x (`src`, may be shorter than the planes' kp = dst width) → its three term rows at
/// `dst[0..3]` (each kp u16, zero past src).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn split_row(src: &[f32], kp: usize, dst: [*mut u16; 3]) {
    let mut c = 0;
    while c < kp {
        let valid = src.len().saturating_sub(c).min(16);
        let m = if valid >= 16 { 0xFFFF } else { ((1u32 << valid) - 1) as u16 };
        let (h, md, l) = split16(_mm512_maskz_loadu_ps(m, src.as_ptr().wrapping_add(c)));
        _mm256_storeu_si256(dst[0].add(c) as *mut _, h);
        _mm256_storeu_si256(dst[1].add(c) as *mut _, md);
        _mm256_storeu_si256(dst[2].add(c) as *mut _, l);
        c += 16;
    }
}

/// x [m, k] → the A tiles of the [k, n] form: [m_rows/16 blocks][kp/32][3 terms][16 rows][32 k],
/// each tile 1 KiB contiguous (a tile load of 16 rows 64 bytes apart costs ~1.5× one of 1 KiB in a
/// row, speed test), rows m..m_rows and k..kp zero. m_rows: a multiple of 16 ≥ m.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn pack_a_tiles(x: &[f32], m: usize, k: usize, kp: usize, m_rows: usize, dst: &mut [u16]) {
    use rayon::prelude::*;
    assert!(dst.len() >= m_rows * 3 * kp && kp >= k && m_rows % 16 == 0);
    dst[..m_rows * 3 * kp].par_chunks_mut(block_len(kp)).enumerate().for_each(|(blk, d)| {
        let mut row = vec![0u16; 3 * kp];
        let t = row.as_mut_ptr();
        for i in 0..16 {
            let r = 16 * blk + i;
            let src = if r < m { &x[r * k..(r + 1) * k] } else { &[][..] };
            // SAFETY: AVX-512F/BW as the enclosing function; `row` holds 3 × kp.
            unsafe { split_row(src, kp, [t, t.add(kp), t.add(2 * kp)]) };
            for kb in 0..kp / 32 {
                for term in 0..3 {
                    let o = (kb * 3 + term) * 512 + i * 32;
                    d[o..o + 32].copy_from_slice(&row[term * kp + kb * 32..term * kp + kb * 32 + 32]);
                }
            }
        }
    });
}

/// u16 per 16-row block of the direct form's packed x: [kp/32][3 terms][16 pairs][16 rows][2].
pub(super) fn block_len(kp: usize) -> usize {
    3 * 16 * kp
}

/// Rows r0..r0+16 of x (those < m; zero past m and k) → the B tiles of one block (`dst`, block_len
/// u16): tile (kb, t) = 1 KiB at (3·kb + t)·512, lane (p, i, e) = term t of x[r0 + i][32·kb + 2p + e].
/// `tmp`: 3 × 16 × kp u16 of scratch (the rows split, before the pair transposes).
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn pack_block(x: &[f32], m: usize, k: usize, kp: usize, r0: usize, tmp: &mut [u16], dst: &mut [u16]) {
    assert!(tmp.len() >= 3 * 16 * kp && dst.len() >= block_len(kp));
    let t = tmp.as_mut_ptr();
    for i in 0..16 {
        let r = r0 + i;
        let src = if r < m { &x[r * k..(r + 1) * k] } else { &[][..] };
        split_row(src, kp, [t.add(i * kp), t.add(16 * kp + i * kp), t.add(32 * kp + i * kp)]);
    }
    let d = dst.as_mut_ptr();
    for term in 0..3 {
        let plane: &[half::bf16] = std::slice::from_raw_parts(t.add(term * 16 * kp) as *const half::bf16, 16 * kp);
        // Pair p of the 16 rows = pair-row p % 16 of tile (p / 16, term).
        for_each_pair16(plane, kp, 0, 16, 0, kp / 2, |p, v| _mm512_storeu_si512(d.add((p / 16 * 3 + term) * 512 + (p % 16) * 32) as *mut _, v));
    }
}

#[repr(C, align(64))]
pub(super) struct Quad(pub(super) [f32; 4 * 256]);

/// u16 of `pack_w_tiles` for `rows` W rows: whole quads of groups.
pub(super) fn w_tiles_len(rows: usize, kp: usize) -> usize {
    rows.div_ceil(64) * 4 * 16 * kp
}

/// W rows r0..r0+rows ([n, k] bf16) → the A tiles of the direct form: [⌈rows/64⌉ quads][kp/32][4
/// groups][16 rows][32 k], each tile 1 KiB contiguous (see pack_a_tiles) and the 4 tiles of one
/// 32-k step side by side; zero past the rows and past k. A plain copy (the A operand takes W rows
/// as they are): n·k reads per call, 1/(2m) of the product's flops.
pub(super) fn pack_w_tiles(w: &[half::bf16], k: usize, r0: usize, rows: usize, kp: usize, dst: &mut [u16]) {
    let nkb = kp / 32;
    let ng = rows.div_ceil(64) * 4;
    assert!(dst.len() >= w_tiles_len(rows, kp));
    let full = k / 32;
    for g in 0..ng {
        for i in 0..16 {
            // Group g's tile kb at ((g/4)·nkb + kb)·4 + g%4 tiles: stride 2048 u16 over kb.
            let tiles = &mut dst[(g / 4 * nkb * 4 + g % 4) * 512..];
            let at = |kb: usize| kb * 2048 + i * 32;
            if 16 * g + i >= rows {
                for kb in 0..nkb {
                    tiles[at(kb)..at(kb) + 32].fill(0);
                }
                continue;
            }
            let src = &w[(r0 + 16 * g + i) * k..(r0 + 16 * g + i + 1) * k];
            // SAFETY: bf16 and u16 have one layout; the slice covers the row.
            let src: &[u16] = unsafe { std::slice::from_raw_parts(src.as_ptr() as *const u16, k) };
            for kb in 0..full {
                tiles[at(kb)..at(kb) + 32].copy_from_slice(&src[kb * 32..kb * 32 + 32]);
            }
            if full < nkb {
                let d = &mut tiles[at(full)..at(full) + 32];
                d[..k - full * 32].copy_from_slice(&src[full * 32..]);
                d[k - full * 32..].fill(0);
            }
        }
    }
}

/// Direct form, 2 W groups × 2 blocks of 16 x rows, the 32-k steps `steps` of k. `x`: the two blocks'
/// packed tiles (`pack_block`, the second at +block_len); `a`: the first group's tiles in its quad
/// (`pack_w_tiles`: tile kb at 2048·kb, the second group's at +512). `acc`: 4 f32 tiles (4 KiB,
/// 64-byte aligned), the partial sums of the earlier steps unless `first`, on return those plus these
/// steps'. Tiles: 0 = (group 0, block 0), 1 = (group 1, block 0),
/// 2 = (group 0, block 1), 3 = (group 1, block 1), each [W row][x row].
///
/// Per 32 k: the 2 W tiles stay in tmm4/5 and the 6 x term tiles stream through tmm6/7 alternately
/// (8 loads, 12 `tdpbf16ps`). Measured (speed test, operands in L1, one thread): a tile load costs
/// ~20 ns here and a load into a tile register still being read waits for those reads, so the
/// single-stream 4 × 1 arrangement (7 loads per 12, all into tmm7) ran at ~330 f32-exact GFLOP/s,
/// this one at ~380 (and 3 × 1 with A double-buffered, 6 loads per 9, the same ~380).
/// Caller: the tile config is loaded on this thread.
pub(super) unsafe fn direct_pair(x: *const u16, kp: usize, a: *const u16, steps: std::ops::Range<usize>, acc: *mut f32, first: bool) {
    if first {
        asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
    } else {
        asm!(
            "tileloadd tmm0, [{p0} + {ld}*1]",
            "tileloadd tmm1, [{p1} + {ld}*1]",
            "tileloadd tmm2, [{p2} + {ld}*1]",
            "tileloadd tmm3, [{p3} + {ld}*1]",
            p0 = in(reg) acc,
            p1 = in(reg) acc.add(256),
            p2 = in(reg) acc.add(512),
            p3 = in(reg) acc.add(768),
            ld = in(reg) 64usize,
            options(nostack, readonly),
        );
    }
    let x1 = x.add(block_len(kp));
    for kb in steps {
        let (b0, b1, at) = (x.add(kb * 1536), x1.add(kb * 1536), a.add(kb * 2048));
        asm!(
            "tileloadd tmm4, [{a0} + {ld}*1]",
            "tileloadd tmm5, [{a1} + {ld}*1]",
            "tileloadd tmm6, [{p0} + {ld}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm5, tmm6",
            "tileloadd tmm7, [{q0} + {ld}*1]",
            "tdpbf16ps tmm2, tmm4, tmm7",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "tileloadd tmm6, [{p1} + {ld}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm5, tmm6",
            "tileloadd tmm7, [{q1} + {ld}*1]",
            "tdpbf16ps tmm2, tmm4, tmm7",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "tileloadd tmm6, [{p2} + {ld}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm5, tmm6",
            "tileloadd tmm7, [{q2} + {ld}*1]",
            "tdpbf16ps tmm2, tmm4, tmm7",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a0 = in(reg) at,
            a1 = in(reg) at.add(512),
            p0 = in(reg) b0,
            p1 = in(reg) b0.add(512),
            p2 = in(reg) b0.add(1024),
            q0 = in(reg) b1,
            q1 = in(reg) b1.add(512),
            q2 = in(reg) b1.add(1024),
            ld = in(reg) 64usize,
            options(nostack, readonly),
        );
    }
    store_tiles(acc, 64);
}

/// tmm0–3 → buf as 4 consecutive 16 × 16 tiles (`ld` = 64 bytes) or side by side ([16][64], ld 256).
#[inline(always)]
unsafe fn store_quad(buf: &mut Quad, ld: usize) {
    store_tiles(buf.0.as_mut_ptr(), ld)
}

#[inline(always)]
unsafe fn store_tiles(p: *mut f32, ld: usize) {
    let step = if ld == 64 { 256 } else { 16 };
    asm!(
        "tilestored [{p0} + {ld}*1], tmm0",
        "tilestored [{p1} + {ld}*1], tmm1",
        "tilestored [{p2} + {ld}*1], tmm2",
        "tilestored [{p3} + {ld}*1], tmm3",
        p0 = in(reg) p,
        p1 = in(reg) p.add(step),
        p2 = in(reg) p.add(2 * step),
        p3 = in(reg) p.add(3 * step),
        ld = in(reg) ld,
        options(nostack),
    );
}

/// Direct form's output: y[r0 + j][c + 16g + i] = buf tile (tile0 + g)[i][j] + bias for j < mv, 16g + i < nv,
/// then `post` on each of the mv row stretches y[r0 + j][c..c + nv] (all final: k is complete).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn write_direct(buf: &Quad, tile0: usize, r0: usize, mv: usize, c: usize, nv: usize, n: usize, bias: Option<&[f32]>, out: SharedOut, post: Option<fn(&mut [f32])>) {
    for g in 0..nv.div_ceil(16) {
        let nvg = (nv - 16 * g).min(16);
        let mk = if nvg >= 16 { 0xFFFF } else { ((1u32 << nvg) - 1) as u16 };
        let b = match bias {
            Some(b) => _mm512_maskz_loadu_ps(mk, b.as_ptr().add(c + 16 * g)),
            None => _mm512_setzero_ps(),
        };
        let mut r = [_mm512_setzero_si512(); 16];
        for (i, v) in r.iter_mut().enumerate() {
            *v = _mm512_load_si512(buf.0.as_ptr().add((tile0 + g) * 256 + i * 16) as *const _);
        }
        let t = transpose16(r);
        for (j, v) in t.iter().enumerate().take(mv) {
            _mm512_mask_storeu_ps(out.at((r0 + j) * n + c + 16 * g), mk, _mm512_add_ps(b, _mm512_castsi512_ps(*v)));
        }
    }
    if let Some(f) = post {
        for j in 0..mv {
            f(std::slice::from_raw_parts_mut(out.at((r0 + j) * n + c), nv));
        }
    }
}

/// [k, n] form: columns c0..c0+cols of y for every row. `xa`: x's A tiles (`pack_a_tiles`); `wp`: this task's VNNI panels [cols/16][kp/2][32]
/// from index 0 (gemm_bf16dot.rs). Caller: the AMX permission was granted.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_cols(xa: &[u16], m: usize, kp: usize, wp: &[u16], c0: usize, cols: usize, n: usize, bias: Option<&[f32]>, out: SharedOut) {
    let cfg = config();
    let mut buf = Quad([0f32; 1024]);
    let np_all = cols.div_ceil(16);
    // SAFETY: permission granted (caller); config loaded first and released last on this thread; A
    // loads read blocks < ⌈m/16⌉ of xa; B loads read panels < np_all.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        for r0 in (0..m).step_by(16) {
            for c in (c0..c0 + cols).step_by(64) {
                let p0 = (c - c0) / 16;
                let np = (np_all - p0).min(4);
                let a = xa.as_ptr().add(r0 / 16 * block_len(kp));
                let b = wp.as_ptr().add(p0 * kp * 16);
                cols_block(a, b, kp, np);
                store_quad(&mut buf, 256);
                write_rows(&buf, r0, (m - r0).min(16), c, (n - c).min(64).min(c0 + cols - c), n, bias, out);
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

/// One W panel's step of the [k, n] form: B = 16 pair-rows × 16 columns into tmm7, C_j += A_t · B for
/// the three x term tiles in tmm4–6.
macro_rules! panel_step {
    ($c:literal, $b:expr) => {
        asm!(
            "tileloadd tmm7, [{b} + {ld}*1]",
            concat!("tdpbf16ps ", $c, ", tmm4, tmm7"),
            concat!("tdpbf16ps ", $c, ", tmm5, tmm7"),
            concat!("tdpbf16ps ", $c, ", tmm6, tmm7"),
            b = in(reg) $b,
            ld = in(reg) 64usize,
            options(nostack, readonly),
        )
    };
}

/// C_j (tmm0..np) = Σ_k x rows (16: their tiles at `a`, (kb, term) at (3·kb + term)·512) × panel j
/// (at `b` + j·kp·16).
unsafe fn cols_block(a: *const u16, b: *const u16, kp: usize, np: usize) {
    asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
    for kb in 0..kp / 32 {
        asm!(
            "tileloadd tmm4, [{a0} + {ld}*1]",
            "tileloadd tmm5, [{a1} + {ld}*1]",
            "tileloadd tmm6, [{a2} + {ld}*1]",
            a0 = in(reg) a.add(kb * 1536),
            a1 = in(reg) a.add(kb * 1536 + 512),
            a2 = in(reg) a.add(kb * 1536 + 1024),
            ld = in(reg) 64usize,
            options(nostack, readonly),
        );
        let bk = b.add(kb * 512);
        for j in 0..np {
            let bj = bk.add(j * kp * 16);
            match j {
                0 => panel_step!("tmm0", bj),
                1 => panel_step!("tmm1", bj),
                2 => panel_step!("tmm2", bj),
                _ => panel_step!("tmm3", bj),
            }
        }
    }
}

/// [k, n] form's output: y[r0 + i][c + j] = buf[i][j] (buf [16][64]) + bias, i < mv, j < nv.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn write_rows(buf: &Quad, r0: usize, mv: usize, c: usize, nv: usize, n: usize, bias: Option<&[f32]>, out: SharedOut) {
    for q in 0..nv.div_ceil(16) {
        let nvq = (nv - 16 * q).min(16);
        let mk = if nvq >= 16 { 0xFFFF } else { ((1u32 << nvq) - 1) as u16 };
        let b = match bias {
            Some(b) => _mm512_maskz_loadu_ps(mk, b.as_ptr().add(c + 16 * q)),
            None => _mm512_setzero_ps(),
        };
        for i in 0..mv {
            let v = _mm512_load_ps(buf.0.as_ptr().add(i * 64 + 16 * q));
            _mm512_mask_storeu_ps(out.at((r0 + i) * n + c + 16 * q), mk, _mm512_add_ps(b, v));
        }
    }
}

/// `reps` passes of 8 direct 32-k steps (2 W groups × 2 blocks of x's 3 terms) over L1-resident
/// operands (speed test). Mode 0: the kernel; 1: 8 tile loads a step alone, W tiles' rows 512 bytes
/// apart (as W read in place would be); 2: the same loads, every tile 1 KiB in a row; 3: the 12
/// `tdpbf16ps` a step alone.
#[cfg(test)]
pub(super) fn l1_probe(reps: usize, mode: u32) {
    let cfg = config();
    // 64-byte aligned, as the products' buffers are: tile rows that straddle two lines load at about
    // half speed (a Vec's own alignment made this probe read ~2× slow).
    let (av, bv) = (vec![0u16; 8 * 2048 + 4096 + 32], vec![0u16; 2 * block_len(256) + 32]);
    let (a, b) = (&av[av.as_ptr().align_offset(64)..], &bv[bv.as_ptr().align_offset(64)..]);
    let mut buf = Quad([0f32; 1024]);
    // SAFETY: caller checked the AMX permission; all loads inside a / b.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        for _ in 0..reps {
            match mode {
                0 => direct_pair(b.as_ptr(), 256, a.as_ptr(), 0..8, buf.0.as_mut_ptr(), true),
                1 | 2 => {
                    for kb in 0..8 {
                        let bt = b.as_ptr().add(kb * 1536);
                        let (ap, lda) = if mode == 1 { (a.as_ptr().add(kb * 32), 512usize) } else { (a.as_ptr().add(kb * 2048), 64) };
                        asm!("tileloadd tmm4, [{a0} + {lda}*1]", "tileloadd tmm5, [{a1} + {lda}*1]",
                            "tileloadd tmm6, [{b0} + {ld}*1]", "tileloadd tmm7, [{b1} + {ld}*1]", "tileloadd tmm0, [{b2} + {ld}*1]",
                            "tileloadd tmm1, [{c0} + {ld}*1]", "tileloadd tmm2, [{c1} + {ld}*1]", "tileloadd tmm3, [{c2} + {ld}*1]",
                            b0 = in(reg) bt, b1 = in(reg) bt.add(512), b2 = in(reg) bt.add(1024), ld = in(reg) 64usize,
                            c0 = in(reg) bt.add(block_len(256)), c1 = in(reg) bt.add(block_len(256) + 512), c2 = in(reg) bt.add(block_len(256) + 1024),
                            a0 = in(reg) ap, a1 = in(reg) ap.add(if mode == 1 { 16 * 256 } else { 512 }), lda = in(reg) lda,
                            options(nostack, readonly));
                    }
                }
                _ => {
                    for _ in 0..8 {
                        asm!("tdpbf16ps tmm0, tmm4, tmm6", "tdpbf16ps tmm1, tmm5, tmm6", "tdpbf16ps tmm2, tmm4, tmm7", "tdpbf16ps tmm3, tmm5, tmm7",
                            "tdpbf16ps tmm0, tmm4, tmm6", "tdpbf16ps tmm1, tmm5, tmm6", "tdpbf16ps tmm2, tmm4, tmm7", "tdpbf16ps tmm3, tmm5, tmm7",
                            "tdpbf16ps tmm0, tmm4, tmm6", "tdpbf16ps tmm1, tmm5, tmm6", "tdpbf16ps tmm2, tmm4, tmm7", "tdpbf16ps tmm3, tmm5, tmm7", options(nostack, nomem));
                    }
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector split gives bf16_split::split3's terms bit for bit: random bit patterns over every
    /// exponent, denormals, ±0, ±∞, NaNs.
    #[test]
    fn split16_matches_split3() {
        if !(std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw")) {
            eprintln!("SKIP gemm_amx_split::split16_matches_split3: this CPU has no AVX-512F/BW");
            return;
        }
        let mut s = 0x1234_5678u32;
        let mut v: Vec<f32> = vec![0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN, f32::from_bits(0x7f80_0001), f32::from_bits(0xffc1_2345), f32::MIN_POSITIVE, 1e-40, -3e-39, f32::MAX, 1.0 / 3.0];
        for _ in 0..100_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            v.push(f32::from_bits(s));
        }
        while v.len() % 16 != 0 {
            v.push(0.5);
        }
        for chunk in v.chunks(16) {
            let mut out = [[0u16; 16]; 3];
            // SAFETY: features checked above.
            unsafe {
                let (h, m, l) = split16(_mm512_loadu_ps(chunk.as_ptr()));
                _mm256_storeu_si256(out[0].as_mut_ptr() as *mut _, h);
                _mm256_storeu_si256(out[1].as_mut_ptr() as *mut _, m);
                _mm256_storeu_si256(out[2].as_mut_ptr() as *mut _, l);
            }
            for (i, &x) in chunk.iter().enumerate() {
                let want = crate::backend::cpu::bf16_split::split3(x);
                assert_eq!([out[0][i], out[1][i], out[2][i]], want, "{x:e} ({:08x})", x.to_bits());
            }
        }
    }

    use crate::backend::cpu::gemm::{gemm_fma_for_test, WLayout};
    use crate::backend::cpu::gemm_bf16dot::{gemm_f32_amx, gemm_layout};
    use crate::backend::cpu::precision::{bf16_support, Bf16Path};
    use half::bf16;

    fn lcg(s: &mut u64) -> f32 {
        *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// max over y of |y − exact| / (Σ|terms| + |bias|): the exact value in f64 on the f32 x and bf16 W.
    #[allow(clippy::too_many_arguments)]
    fn rel_err(y: &[f32], x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, layout: WLayout) -> f64 {
        let mut worst = 0f64;
        for i in 0..m {
            for j in 0..n {
                let (mut s, mut mag) = (bias.map_or(0.0, |b| b[j] as f64), bias.map_or(0.0, |b| b[j].abs() as f64));
                for t in 0..k {
                    let wv = match layout {
                        WLayout::NK => w[j * k + t].to_f64(),
                        WLayout::KN => w[t * n + j].to_f64(),
                    };
                    let p = x[i * k + t] as f64 * wv;
                    s += p;
                    mag += p.abs();
                }
                let e = (y[i * n + j] as f64 - s).abs() / mag.max(1e-30);
                assert!(y[i * n + j].is_finite(), "y[{i},{j}] = {}", y[i * n + j]);
                worst = worst.max(e);
            }
        }
        worst
    }

    /// The split product against f64 on shapes off every tile edge (m, k, n not multiples of 16/32;
    /// one and several W tasks, of 64 and of 128 W rows (n = 2100: two quads of groups a task); k in
    /// blocks with partial sums kept between them, over 2 × 2 tasks (420 × 1090 × 300); k past
    /// the KN form's 8192 k passes), bias, both W layouts, W at a 64-byte boundary and 2 bytes past
    /// one. Bound: the split path's worst relative error (per element, over Σ|terms|) within 4× the f32
    /// FMA GEMM's on the same inputs (measured 0.4–3.4×) and ≤ 1e-5, and ≥ 100× below the bf16-rounded
    /// AMX path's (measured ~1000×).
    #[test]
    fn split_product_matches_f64_like_the_fma_gemm() {
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP gemm_amx_split::split_product_matches_f64_like_the_fma_gemm: {}", bf16_support().why);
            return;
        }
        let mut seed = 7u64;
        for &(m, k, n) in &[(1, 1, 1), (17, 33, 17), (33, 70, 48), (50, 257, 100), (100, 1152, 40), (20, 2048, 200), (17, 6145, 20), (20, 9000, 40), (300, 64, 130), (40, 96, 2100), (420, 1090, 300)] {
            // x spread over 2^±8 so the three terms all matter; W in (−1, 1).
            let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed) * 2f32.powi((lcg(&mut seed) * 8.0) as i32)).collect();
            let w: Vec<bf16> = (0..n * k).map(|_| bf16::from_f32(lcg(&mut seed))).collect();
            let bias: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
            let mut wa = vec![bf16::ZERO; n * k + 64];
            let base = (64 - wa.as_ptr() as usize % 64) % 64 / 2;
            for layout in [WLayout::NK, WLayout::KN] {
                let wl: Vec<bf16> = match layout {
                    WLayout::NK => w.clone(),
                    WLayout::KN => (0..k * n).map(|i| w[(i % n) * k + i / n]).collect(),
                };
                let b = Some(&bias[..]).filter(|_| layout == WLayout::NK);
                let mut y = vec![f32::NAN; m * n];
                gemm_fma_for_test(&x, m, k, &wl, n, b, &mut y, layout);
                let e_fma = rel_err(&y, &x, m, k, &wl, n, b, layout);
                gemm_layout(Bf16Path::Amx, &x, m, k, &wl, n, b, &mut y, layout);
                let e_bf16 = rel_err(&y, &x, m, k, &wl, n, b, layout);
                for shift in [0, 1] {
                    wa[base + shift..base + shift + n * k].copy_from_slice(&wl);
                    y.fill(f32::NAN);
                    gemm_f32_amx(&x, m, k, &wa[base + shift..base + shift + n * k], n, b, &mut y, layout, None);
                    let e = rel_err(&y, &x, m, k, &wl, n, b, layout);
                    eprintln!("{layout:?} m={m} k={k} n={n} W +{shift}: split {e:.2e}, fma {e_fma:.2e}, bf16 {e_bf16:.2e}");
                    assert!(e <= 4.0 * e_fma + 1e-7 && e <= 1e-5, "{layout:?} m={m} k={k} n={n} W +{shift}: split error {e:.3e} vs FMA GEMM {e_fma:.3e}");
                    assert!(k < 8 || e * 100.0 <= e_bf16, "{layout:?} m={m} k={k} n={n}: split error {e:.3e} not far below bf16's {e_bf16:.3e}");
                }
            }
        }
    }

    /// Exact f32 sums where the FMA GEMM's are exact too: small integers (every partial sum an integer
    /// below 2^24) must come out exactly, which a dropped or doubled term would break.
    #[test]
    fn integer_products_are_exact() {
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP gemm_amx_split::integer_products_are_exact: {}", bf16_support().why);
            return;
        }
        let (m, k, n) = (37, 301, 70);
        // x needs all three terms: 24-bit integers (hi: top 8 bits, mid: next 8, lo: last 8).
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 2654435761usize) % (1 << 24)) as f32 * if i % 3 == 0 { -1.0 } else { 1.0 }).collect();
        let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32(((i * 40503) % 5) as f32 - 2.0)).collect();
        let mut y = vec![f32::NAN; m * n];
        gemm_f32_amx(&x, m, k, &w, n, None, &mut y, WLayout::NK, None);
        for i in 0..m {
            for j in 0..n {
                let s: i64 = (0..k).map(|t| x[i * k + t] as i64 * w[j * k + t].to_f32() as i64).sum();
                // Partial sums exceed 2^24 here, so compare in f64 with the FMA GEMM's own tolerance.
                let want = s as f64;
                let mag: f64 = (0..k).map(|t| (x[i * k + t] as f64 * w[j * k + t].to_f64()).abs()).sum();
                assert!((y[i * n + j] as f64 - want).abs() <= 4.0 * 6e-8 * mag, "y[{i},{j}] = {} want {want}", y[i * n + j]);
            }
        }
        // Small integers: every partial sum exact in f32, so the result is exact.
        let xs: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 9) as f32 - 4.0 + 1.0 / 256.0 * ((i % 5) as f32)).collect();
        gemm_f32_amx(&xs, m, k, &w, n, None, &mut y, WLayout::NK, None);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|t| xs[i * k + t] as f64 * w[j * k + t].to_f64()).sum();
                assert_eq!(y[i * n + j] as f64, want, "y[{i},{j}]");
            }
        }
    }

    /// The x-resident order (tasks keep x pairs in L2 and walk all of W, gemm_amx.rs X_RESIDENT) gives
    /// the W-resident order's results bit for bit: the same steps into the same accumulators in the
    /// same order (the W-resident order's k blocks only park the partial sums in memory), with bias,
    /// `post`, partial blocks and partial groups, and k from one step to the order's limit (2048).
    #[test]
    fn x_resident_order_matches_w_resident_order() {
        use crate::backend::cpu::gemm_amx::X_RESIDENT;
        use std::sync::atomic::Ordering;
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP gemm_amx_split::x_resident_order_matches_w_resident_order: {}", bf16_support().why);
            return;
        }
        fn halve(v: &mut [f32]) {
            v.iter_mut().for_each(|x| *x *= 0.5);
        }
        let mut seed = 11u64;
        for &(m, k, n, post) in &[(256, 32, 64, false), (300, 200, 1000, true), (513, 1152, 200, false), (270, 2048, 70, true), (400, 1090, 33, false)] {
            let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed) * 2f32.powi((lcg(&mut seed) * 8.0) as i32)).collect();
            let w: Vec<bf16> = (0..n * k).map(|_| bf16::from_f32(lcg(&mut seed))).collect();
            let bias: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
            let post = if post { Some(halve as fn(&mut [f32])) } else { None };
            let (mut a, mut b) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            X_RESIDENT.store(false, Ordering::Relaxed);
            gemm_f32_amx(&x, m, k, &w, n, Some(&bias), &mut a, WLayout::NK, post);
            X_RESIDENT.store(true, Ordering::Relaxed);
            gemm_f32_amx(&x, m, k, &w, n, Some(&bias), &mut b, WLayout::NK, post);
            for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                assert_eq!(p.to_bits(), q.to_bits(), "m={m} k={k} n={n}: element {i}: {p} vs {q}");
            }
        }
    }

    /// The same for `--precision bf16`'s direct form (gemm_amx.rs direct_x_resident): bit for bit the
    /// W-resident order's results, W copied whole (k = 2048: a 4 KiB row, padded), partial blocks.
    #[test]
    fn bf16_x_resident_order_matches_w_resident_order() {
        use crate::backend::cpu::gemm_amx::X_RESIDENT;
        use std::sync::atomic::Ordering;
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP gemm_amx_split::bf16_x_resident_order_matches_w_resident_order: {}", bf16_support().why);
            return;
        }
        let mut seed = 5u64;
        for &(m, k, n) in &[(256, 32, 64), (300, 200, 1000), (513, 1152, 200), (270, 2048, 70), (400, 4304, 33)] {
            let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
            let w: Vec<bf16> = (0..n * k).map(|_| bf16::from_f32(lcg(&mut seed))).collect();
            let bias: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
            let (mut a, mut b) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            X_RESIDENT.store(false, Ordering::Relaxed);
            gemm_layout(Bf16Path::Amx, &x, m, k, &w, n, Some(&bias), &mut a, WLayout::NK);
            X_RESIDENT.store(true, Ordering::Relaxed);
            gemm_layout(Bf16Path::Amx, &x, m, k, &w, n, Some(&bias), &mut b, WLayout::NK);
            for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                assert_eq!(p.to_bits(), q.to_bits(), "m={m} k={k} n={n}: element {i}: {p} vs {q}");
            }
        }
    }

    /// The fused route (fc1 + GELU): `post` on each block as it is written gives exactly the product
    /// followed by the function, over several tasks, row chunks and partial blocks.
    #[test]
    fn post_matches_separate_pass() {
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP gemm_amx_split::post_matches_separate_pass: {}", bf16_support().why);
            return;
        }
        fn square_plus_one(v: &mut [f32]) {
            v.iter_mut().for_each(|x| *x = *x * *x + 1.0);
        }
        let (m, k, n) = (77, 300, 1000);
        let mut seed = 3u64;
        let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
        let w: Vec<bf16> = (0..n * k).map(|_| bf16::from_f32(lcg(&mut seed))).collect();
        let bias: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
        let (mut a, mut b) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
        gemm_f32_amx(&x, m, k, &w, n, Some(&bias), &mut a, WLayout::NK, None);
        square_plus_one(&mut a);
        gemm_f32_amx(&x, m, k, &w, n, Some(&bias), &mut b, WLayout::NK, Some(square_plus_one));
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert_eq!(p.to_bits(), q.to_bits(), "element {i}: {p} vs {q}");
        }
    }
}

/// Speed of the split product against the f32 FMA GEMM on the 2B model's shapes, single thread,
/// GFLOP per thread-CPU-second (f32-exact flops: 2·m·k·n, not the 3× tile work), rounds alternating
/// the two, medians (`cargo test --release --lib gemm_amx_split::speed -- --ignored --nocapture`).
#[cfg(test)]
mod speed {
    use crate::backend::cpu::gemm::{gemm_fma_for_test, WLayout};
    use crate::backend::cpu::gemm_bf16dot::gemm_f32_amx;
    use crate::backend::cpu::precision::{bf16_support, Bf16Path};
    use crate::backend::cpu::profile::thread_cpu_s;
    use half::bf16;

    #[test]
    #[ignore]
    fn speed() {
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP gemm_amx_split::speed: {}", bf16_support().why);
            return;
        }
        for mode in 0..4 {
            let s = thread_cpu_s();
            super::l1_probe(1 << 14, mode);
            let t = thread_cpu_s() - s;
            // 8 steps × 12 tdpbf16ps × 16 384 flops per pass; a third is f32-exact work.
            let dps = 96.0;
            eprintln!("split kernel mode {mode}, operands in L1: {:.0} GFLOP/s of tiles = {:.0} f32-exact", (1u64 << 14) as f64 * dps * 16384.0 / t / 1e9, (1u64 << 14) as f64 * dps / 3.0 * 16384.0 / t / 1e9);
        }
        let shapes: &[(&str, usize, usize, usize)] = &[
            ("vit qkv", 784, 1152, 3456),
            ("vit fc1", 784, 1152, 4304),
            ("vit fc2", 784, 4304, 1152),
            ("vit fc2 896²", 3136, 4304, 1152),
            ("vit qkv 896²", 3136, 1152, 1152),
            ("prefill q", 128, 2048, 2048),
            ("prefill gate_up", 128, 2048, 12288),
            ("prefill down", 128, 6144, 2048),
            ("head", 196, 4608, 8192),
            ("vte (KN)", 196, 65536, 2048),
        ];
        let only = std::env::var("SPEED_SHAPES").ok();
        // SPEED_THREADS=2: the whole pool as the engine runs it, timed in wall time (noisier).
        let threads: usize = std::env::var("SPEED_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
        let t0 = std::time::Instant::now();
        let clock = || if threads > 1 { t0.elapsed().as_secs_f64() } else { thread_cpu_s() };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for &(name, m, k, n) in shapes {
            if only.as_ref().is_some_and(|o| !o.split(',').any(|s| name.starts_with(s))) {
                continue;
            }
            let layout = if name.contains("KN") { WLayout::KN } else { WLayout::NK };
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 47.0).collect();
            // W at a 64-byte boundary (as a mapped safetensors file's 2B weights mostly are).
            let wv: Vec<bf16> = (0..n * k + 32).map(|i| bf16::from_f32(((i * 53 % 89) as f32 - 44.0) / 440.0)).collect();
            let shift = (64 - wv.as_ptr() as usize % 64) % 64 / 2;
            let w = &wv[shift..shift + n * k];
            let mut y = vec![0f32; m * n];
            let flop = 2.0 * (m * k * n) as f64;
            let (mut a, mut f) = (Vec::new(), Vec::new());
            // SPEED_AB=order: the second column is the split product in the W-resident order
            // (X_RESIDENT off) instead of the FMA GEMM.
            let ab = std::env::var("SPEED_AB").is_ok_and(|v| v == "order");
            for _ in 0..if ab { 9 } else { 3 } {
                pool.install(|| {
                    let s = clock();
                    gemm_f32_amx(&x, m, k, w, n, None, &mut y, layout, None);
                    a.push(flop / (clock() - s) / 1e9);
                    let s = clock();
                    if ab {
                        crate::backend::cpu::gemm_amx::X_RESIDENT.store(false, std::sync::atomic::Ordering::Relaxed);
                        gemm_f32_amx(&x, m, k, w, n, None, &mut y, layout, None);
                        crate::backend::cpu::gemm_amx::X_RESIDENT.store(true, std::sync::atomic::Ordering::Relaxed);
                    } else {
                        gemm_fma_for_test(&x, m, k, w, n, None, &mut y, layout);
                    }
                    f.push(flop / (clock() - s) / 1e9);
                });
            }
            a.sort_by(|p, q| p.partial_cmp(q).unwrap());
            f.sort_by(|p, q| p.partial_cmp(q).unwrap());
            let mid = a.len() / 2;
            eprintln!("{name:16} m={m:4} k={k:5} n={n:5}: split {:5.0} GFLOP/s, {} {:4.0} ({:.2}×)", a[mid], if ab { "W-resident" } else { "fma" }, f[mid], a[mid] / f[mid]);
        }
    }
}
