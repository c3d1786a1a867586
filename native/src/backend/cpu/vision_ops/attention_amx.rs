//! ViT segment attention in `--precision bf16` on AMX tiles (model-spec.md §4.5): flash-style, scores
//! and P·V as `tdpbf16ps` products of bf16 operands with f32 sums, the softmax in f32 (AVX-512), P
//! rounded to bf16 before P·V. Dispatched from attention.rs only when precision() is Bf16, the bf16
//! path is Amx and hd ≤ MAX_HD (the f32 flash kernel of attention_flash.rs otherwise).
//!
//! Everything is computed transposed, queries along the 16 f32 lanes of a vector (measured on Sapphire
//! Rapids, 2026-12-03: a `tdpbf16ps` costs ~16 cycles whatever its k or n, so the tile work was ~15 %
//! of the old row-major kernel's time; the rest was softmax with horizontal reductions, a libm exp per
//! row and the per-block rescale of the output in memory). Per task (head, segment, 16 queries) the
//! keys go by in steps of KS = 32:
//! * Sᵀ [32 keys × 16 q] f32 = K [keys × hdp] · Qᵀ: two 16-key products into tmm5 (A = K tile in tmm6,
//!   B = Qᵀ tile in tmm7, hdp/32 of each), stored to scratch.
//! * softmax per query lane without horizontal work: the step's max is a vertical max of 32 vectors;
//!   P = 2^(S·log2e − m·log2e) (degree-4 polynomial, `exp2`), converted to bf16 pairs of keys, which
//!   is exactly one row of the Pᵀ B tile. The reference max m is raised lazily: only when a score
//!   exceeds it by more than TAU (so P ≤ e^TAU), which after the first steps almost never happens.
//! * Oᵀ [hd + 1 rows × 16 q] f32 += Vᵀ · Pᵀ, accumulated in tmm0..nd−1 for the whole key loop (nd =
//!   (hd + 1)/16 rounded up ≤ 5): no output traffic per step. Row hd of Vᵀ is ones, so row hd of Oᵀ is
//!   l = Σ P as rounded to bf16 (what P·V multiplied), summed by the tiles for free. When m is raised,
//!   the tiles are stored, scaled by exp(m_old − m_new) per lane and loaded back.
//!
//! Packed once per call (bf16, round to nearest even), per (head, segment), each from a 64-byte boundary:
//! * Qᵀ: [len/16 query tiles][hdp/32 d steps][16 d pairs][16 q][2] (B tiles), pre-scaled by hd^−½.
//! * K: [lk/16 key tiles][hdp/32 d steps][16 keys][32 d] (A tiles, rows as stored).
//! * Vᵀ: [lk/32 key steps][nd d tiles][16 d][16 key pairs][2] (A tiles), row hd ones.
//!   lk = segment length rounded up to KS; hdp = hd rounded up to 32; padding is zero.
use crate::backend::cpu::gemm_amx::config;
use crate::backend::cpu::gemm_pack::transpose16;
use crate::backend::cpu::matmul::SharedOut;
use rayon::prelude::*;
use std::arch::asm;
use std::arch::x86_64::*;

/// Queries per task: the n of every tile product (16 f32 lanes).
const QT: usize = 16;
/// Keys per step: the k of one P·V product (16 bf16 pairs).
const KS: usize = 32;
/// Largest head_dim: hd d rows plus the row of ones in at most 5 output tiles (tmm0–4; tmm5–7 are
/// the score accumulator and the two operands).
pub(super) const MAX_HD: usize = 79;
/// The lazily raised max may trail a query's true running max by up to TAU (natural-log units), so
/// P ≤ e^TAU ≈ 256: far from f32 or bf16 overflow, and rescales stay rare.
const TAU: f32 = 8.0 * std::f32::consts::LN_2;
/// Score of a key past the segment's end (finite, so exp2's arithmetic stays free of NaN; gives 0).
const FILL: f32 = -1.0e30;

/// The three packs in one buffer, each from a 64-byte boundary (`*_at`, in u16): a tile row that
/// straddles two cache lines costs two line reads.
struct Packed {
    buf: Vec<u16>,
    q_at: usize,
    k_at: usize,
    v_at: usize,
    /// (Qᵀ, K, Vᵀ offsets) per head·segments + segment, in u16.
    off: Vec<(usize, usize, usize)>,
    steps: usize,
    nd: usize,
}

/// Caller: the AMX permission was granted (precision::bf16_support chose Amx, which implies
/// AVX-512F/BW/DQ and AVX512_BF16); 1 ≤ hd ≤ MAX_HD; shapes consistent.
#[allow(clippy::too_many_arguments)]
pub(super) fn segment_attention(q: &[f32], k: &[f32], v: &[f32], tokens: usize, heads: usize, hd: usize, segs: &[(usize, usize)], out: &mut [f32]) {
    assert!((1..=MAX_HD).contains(&hd) && q.len() >= tokens * heads * hd);
    // SAFETY: features as stated by the caller.
    let mut p = unsafe { pack(q, k, v, heads, hd, segs, PACK_BUF.take()) };
    let ns = segs.len();
    let items: Vec<(usize, usize, usize)> = (0..heads).flat_map(|h| (0..ns).flat_map(move |s| (0..segs[s].1).step_by(QT).map(move |i0| (h, s, i0)))).collect();
    let o = SharedOut(out.as_mut_ptr());
    let pr = &p;
    items.par_chunks(8).for_each(|chunk| {
        let mut scratch = Scratch { s: Aligned([0f32; 2 * KS * QT]), pt: Aligned([0u16; KS * QT]), ob: Aligned([0f32; 80 * QT]) };
        let cfg = config();
        // SAFETY: permission granted (caller); config loaded before any tile use on this thread and
        // released after; each task writes its own output rows of one head; loads stay in the packs.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
            for &(h, si, i0) in chunk {
                tile(pr, heads, hd, segs[si], p.off[h * ns + si], h, i0, o, &mut scratch);
            }
            asm!("tilerelease", options(nostack, nomem));
        }
    });
    if p.buf.len() <= KEEP_MAX {
        PACK_BUF.set(std::mem::take(&mut p.buf));
    }
}

thread_local! {
    /// The pack buffer, kept between calls: a fresh one costs a page fault and a zeroed page per 4 KiB
    /// (~27 MB at 896², measured ~20 % of the attention at 3,136 tokens in one thread).
    static PACK_BUF: std::cell::Cell<Vec<u16>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Largest pack buffer kept between calls (in u16: 32 MiB, enough for 896²'s 27 MB); a larger one is
/// freed rather than pinned for the thread's life.
const KEEP_MAX: usize = 16 << 20;

#[repr(C, align(64))]
struct Aligned<T>(T);

struct Scratch {
    /// Sᵀ of two steps (double buffer) [2][32 keys][16 q] f32.
    s: Aligned<[f32; 2 * KS * QT]>,
    /// Pᵀ of one step as a B tile [16 key pairs][16 q][2] bf16.
    pt: Aligned<[u16; KS * QT]>,
    /// Oᵀ [up to 80 rows][16 q] f32 when the tiles are rescaled or read out.
    ob: Aligned<[f32; 80 * QT]>,
}

/// Packs into `buf` (reused: stale contents are all overwritten, padding included).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack(q: &[f32], k: &[f32], v: &[f32], heads: usize, hd: usize, segs: &[(usize, usize)], mut buf: Vec<u16>) -> Packed {
    let w = heads * hd;
    let hdp = hd.div_ceil(32) * 32;
    let nd = (hd + 1).div_ceil(16);
    let scale = 1.0 / (hd as f32).sqrt();
    let mut off = Vec::with_capacity(heads * segs.len());
    let (mut qo, mut ko, mut vo) = (0, 0, 0);
    for _ in 0..heads {
        for &(_, len) in segs {
            off.push((qo, ko, vo));
            let lk = len.div_ceil(KS) * KS;
            qo += len.div_ceil(QT) * QT * hdp;
            ko += lk * hdp;
            vo += lk * nd * 16;
        }
    }
    // Each section's length is a multiple of 32 u16, so all three start on 64-byte boundaries.
    if buf.len() < qo + ko + vo + 32 {
        buf = Vec::new();
        buf.resize(qo + ko + vo + 32, 0);
    }
    let q_at = (64 - buf.as_ptr() as usize % 64) % 64 / 2;
    let (k_at, v_at) = (q_at + qo, q_at + qo + ko);
    let ns = segs.len();
    // One disjoint (Qᵀ, K, Vᵀ) slice triple per (head, segment), packed in parallel.
    let mut parts = Vec::with_capacity(off.len());
    let (qs, rest) = buf[q_at..].split_at_mut(qo);
    let (ks, rest) = rest.split_at_mut(ko);
    let (mut qrest, mut krest, mut vrest) = (qs, ks, &mut rest[..vo]);
    for t in 0..off.len() {
        let len = segs[t % ns].1;
        let lk = len.div_ceil(KS) * KS;
        let (a, rest) = std::mem::take(&mut qrest).split_at_mut(len.div_ceil(QT) * QT * hdp);
        qrest = rest;
        let (b, rest) = std::mem::take(&mut krest).split_at_mut(lk * hdp);
        krest = rest;
        let (c, rest) = std::mem::take(&mut vrest).split_at_mut(lk * nd * 16);
        vrest = rest;
        parts.push((a, b, c));
    }
    parts.into_par_iter().enumerate().for_each(|(t, (qd, kd, vd))| {
        let (h, (st, len)) = (t / ns, segs[t % ns]);
        // SAFETY: features of the enclosing function.
        unsafe {
            pack_t(q, w, h * hd, hd, hdp, st, len, scale, qd);
            pack_rows(k, w, h * hd, hd, hdp, st, len, kd);
            pack_vt(v, w, h * hd, hd, nd, st, len, vd);
        }
    });
    Packed { buf, q_at, k_at, v_at, off, steps: hdp / 32, nd }
}

/// dst[..] = bf16(src · scale), zero past src.len() (dst.len() a multiple of 32).
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn row_bf16(src: &[f32], scale: f32, dst: &mut [u16]) {
    let sc = _mm512_set1_ps(scale);
    let mut c = 0;
    while c < dst.len() {
        let lo_n = src.len().saturating_sub(c).min(16);
        let hi_n = src.len().saturating_sub(c + 16).min(16);
        let lo = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(mask16(lo_n), src.as_ptr().wrapping_add(c)));
        let hi = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(mask16(hi_n), src.as_ptr().wrapping_add(c + 16)));
        let b = _mm512_cvtne2ps_pbh(hi, lo);
        _mm512_storeu_si512(dst.as_mut_ptr().add(c) as *mut _, std::mem::transmute::<__m512bh, __m512i>(b));
        c += 32;
    }
}

#[inline(always)]
fn mask16(v: usize) -> u16 {
    if v >= 16 {
        0xFFFF
    } else {
        ((1u32 << v) - 1) as u16
    }
}

/// Rows st..st+len (scaled) of head column c0 → B tiles [dst.len()/(16·hdp)][hdp/32][16 d pairs][16 rows][2]:
/// for each tile of 16 rows and 32 d, row i as 16 d pairs = one 32-bit lane per pair, transposed 16 × 16.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_t(x: &[f32], w: usize, c0: usize, hd: usize, hdp: usize, st: usize, len: usize, scale: f32, dst: &mut [u16]) {
    let steps = hdp / 32;
    let mut rows = Aligned([0u16; 16 * 32]);
    for rt in 0..dst.len() / (16 * hdp) {
        for s in 0..steps {
            for i in 0..16 {
                let row = rt * 16 + i;
                let r = &mut rows.0[i * 32..i * 32 + 32];
                if row < len {
                    let d0 = s * 32;
                    row_bf16(&x[(st + row) * w + c0 + d0..][..(hd - d0).min(32)], scale, r);
                } else {
                    r.fill(0);
                }
            }
            let mut r = [_mm512_setzero_si512(); 16];
            for (i, y) in r.iter_mut().enumerate() {
                *y = _mm512_load_si512(rows.0.as_ptr().add(i * 32) as *const _);
            }
            let t = transpose16(r);
            let d = dst.as_mut_ptr().add((rt * steps + s) * 512);
            for (p, y) in t.iter().enumerate() {
                _mm512_storeu_si512(d.add(p * 32) as *mut _, *y);
            }
        }
    }
}

/// Rows st..st+len of head column c0 → A tiles [dst.len()/(16·hdp)][hdp/32][16 rows][32 d], zero past len.
/// Each row as a whole 32 d step (row_bf16 zero-fills past hd).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_rows(x: &[f32], w: usize, c0: usize, hd: usize, hdp: usize, st: usize, len: usize, dst: &mut [u16]) {
    let steps = hdp / 32;
    for rt in 0..dst.len() / (16 * hdp) {
        for s in 0..steps {
            for i in 0..16 {
                let d0 = s * 32;
                let r = &mut dst[((rt * steps + s) * 16 + i) * 32..][..32];
                if rt * 16 + i < len {
                    row_bf16(&x[(st + rt * 16 + i) * w + c0 + d0..][..(hd - d0).min(32)], 1.0, r);
                } else {
                    r.fill(0);
                }
            }
        }
    }
}

/// V rows st..st+len of head column c0 → Vᵀ A tiles [dst.len()/(32·nd·16)][nd][16 d][16 key pairs][2]:
/// per tile, 16 vectors of (key 2p, key 2p+1) pairs over 16 d, transposed 16 × 16 so that a row is
/// one d over 32 keys. Row hd is 1.0 for keys < len (it sums P).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_vt(v: &[f32], w: usize, c0: usize, hd: usize, nd: usize, st: usize, len: usize, dst: &mut [u16]) {
    // Lane 2j ← element j of the low half (key 2p), lane 2j+1 ← element j of the high half (key 2p+1).
    let idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    let load = |key: usize, d0: usize| -> __m512 {
        if key < len {
            let x = _mm512_maskz_loadu_ps(mask16(hd.saturating_sub(d0).min(16)), v.as_ptr().add((st + key) * w + c0 + d0));
            if (d0..d0 + 16).contains(&hd) {
                return _mm512_mask_mov_ps(x, 1 << (hd - d0), _mm512_set1_ps(1.0));
            }
            x
        } else {
            _mm512_setzero_ps()
        }
    };
    for ks in 0..dst.len() / (KS * nd * 16) {
        for c in 0..nd {
            let mut r = [_mm512_setzero_si512(); 16];
            for (p, y) in r.iter_mut().enumerate() {
                let key = ks * KS + 2 * p;
                let both = _mm512_cvtne2ps_pbh(load(key + 1, c * 16), load(key, c * 16));
                *y = _mm512_permutexvar_epi16(idx, std::mem::transmute::<__m512bh, __m512i>(both));
            }
            let t = transpose16(r);
            let d = dst.as_mut_ptr().add((ks * nd + c) * 512);
            for (row, y) in t.iter().enumerate() {
                _mm512_storeu_si512(d.add(row * 32) as *mut _, *y);
            }
        }
    }
}

// Tile instructions with the register number chosen at run time (a tile register is part of the
// opcode): one match arm per register, the asm operands given once by a local macro. Roles (one tile
// config, all 16 rows × 64 bytes): tmm0–4 Oᵀ, tmm5 Sᵀ, tmm6 the A operand (K or Vᵀ), tmm7 the B
// operand (Qᵀ or Pᵀ).

#[inline(always)]
unsafe fn zero_o(t: usize) {
    macro_rules! z {
        ($s:literal) => {
            asm!($s, options(nostack, nomem))
        };
    }
    match t {
        0 => z!("tilezero tmm0"),
        1 => z!("tilezero tmm1"),
        2 => z!("tilezero tmm2"),
        3 => z!("tilezero tmm3"),
        _ => z!("tilezero tmm4"),
    }
}

#[inline(always)]
unsafe fn store_o(t: usize, p: *mut f32) {
    macro_rules! st {
        ($s:literal) => {
            asm!($s, p = in(reg) p, ld = in(reg) 64usize, options(nostack))
        };
    }
    match t {
        0 => st!("tilestored [{p} + {ld}*1], tmm0"),
        1 => st!("tilestored [{p} + {ld}*1], tmm1"),
        2 => st!("tilestored [{p} + {ld}*1], tmm2"),
        3 => st!("tilestored [{p} + {ld}*1], tmm3"),
        _ => st!("tilestored [{p} + {ld}*1], tmm4"),
    }
}

#[inline(always)]
unsafe fn load_o(t: usize, p: *const f32) {
    macro_rules! ld {
        ($s:literal) => {
            asm!($s, p = in(reg) p, ld = in(reg) 64usize, options(nostack, readonly))
        };
    }
    match t {
        0 => ld!("tileloadd tmm0, [{p} + {ld}*1]"),
        1 => ld!("tileloadd tmm1, [{p} + {ld}*1]"),
        2 => ld!("tileloadd tmm2, [{p} + {ld}*1]"),
        3 => ld!("tileloadd tmm3, [{p} + {ld}*1]"),
        _ => ld!("tileloadd tmm4, [{p} + {ld}*1]"),
    }
}

/// Sᵀ (tmm5) += K tile at `a` (tmm6) · Qᵀ tile at `b` (tmm7).
#[inline(always)]
unsafe fn score_step(a: *const u16, b: *const u16) {
    asm!(
        "tileloadd tmm6, [{a} + {ld}*1]",
        "tileloadd tmm7, [{b} + {ld}*1]",
        "tdpbf16ps tmm5, tmm6, tmm7",
        a = in(reg) a,
        b = in(reg) b,
        ld = in(reg) 64usize,
        options(nostack, readonly)
    );
}

/// Oᵀ tile c (tmm c) += Vᵀ tile at `a` (loaded into tmm6) · Pᵀ (tmm7, loaded by the caller).
#[inline(always)]
unsafe fn pv(c: usize, a: *const u16) {
    asm!("tileloadd tmm6, [{a} + {ld}*1]", a = in(reg) a, ld = in(reg) 64usize, options(nostack, readonly));
    macro_rules! dp {
        ($s:literal) => {
            asm!($s, options(nostack, nomem))
        };
    }
    match c {
        0 => dp!("tdpbf16ps tmm0, tmm6, tmm7"),
        1 => dp!("tdpbf16ps tmm1, tmm6, tmm7"),
        2 => dp!("tdpbf16ps tmm2, tmm6, tmm7"),
        3 => dp!("tdpbf16ps tmm3, tmm6, tmm7"),
        _ => dp!("tdpbf16ps tmm4, tmm6, tmm7"),
    }
}

/// One task: queries i0..i0+16 of segment (st, len), head h. Tile config loaded by the caller.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512bf16")]
unsafe fn tile(p: &Packed, heads: usize, hd: usize, (st, len): (usize, usize), (qo, ko, vo): (usize, usize, usize), h: usize, i0: usize, out: SharedOut, sc: &mut Scratch) {
    let (steps, nd) = (p.steps, p.nd);
    let qt = p.buf.as_ptr().add(p.q_at + qo + (i0 / QT) * steps * 512);
    let (kp, vp) = (p.buf.as_ptr().add(p.k_at + ko), p.buf.as_ptr().add(p.v_at + vo));
    let log2e = _mm512_set1_ps(std::f32::consts::LOG2_E);
    // Pair-interleave of a cvtne2ps result (keys 2p | 2p+1 halves → one 32-bit lane per query).
    let idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for c in 0..nd {
        zero_o(c);
    }
    let mut m = _mm512_set1_ps(FILL);
    let mut first = true;
    // Software-pipelined: the scores of step j + 1 are issued before the softmax of step j, into the
    // other half of the double buffer, so the AMX unit works on them while the vector units do the
    // softmax (one after the other, the chain tile store → vector loads → P store → tile load left
    // both idle most of the time).
    scores(kp, qt, steps, len, 0, sc.s.0.as_mut_ptr());
    let mut j0 = 0;
    let mut cur = 0;
    while j0 < len {
        let s = sc.s.0.as_mut_ptr().add(cur * KS * QT);
        if j0 + KS < len {
            scores(kp, qt, steps, len, j0 + KS, sc.s.0.as_mut_ptr().add((cur ^ 1) * KS * QT));
        }
        // The step's max per query (4 independent chains over 8 rows each).
        let mut mx = [_mm512_set1_ps(FILL); 4];
        for r in 0..KS {
            mx[r % 4] = _mm512_max_ps(mx[r % 4], _mm512_load_ps(s.add(r * QT)));
        }
        let mx = _mm512_max_ps(_mm512_max_ps(mx[0], mx[1]), _mm512_max_ps(mx[2], mx[3]));
        if first {
            m = mx;
            first = false;
        } else if _mm512_cmp_ps_mask::<_CMP_GT_OQ>(mx, _mm512_add_ps(m, _mm512_set1_ps(TAU))) != 0 {
            let m_new = _mm512_max_ps(m, mx);
            rescale(nd, exp2(_mm512_mul_ps(_mm512_sub_ps(m, m_new), log2e)), sc.ob.0.as_mut_ptr());
            m = m_new;
        }
        // Pᵀ rows: keys 2p and 2p+1, rounded to bf16 and pair-interleaved.
        let ml = _mm512_mul_ps(m, log2e);
        for pr in 0..KS / 2 {
            let e0 = exp2(_mm512_fmsub_ps(_mm512_load_ps(s.add(2 * pr * QT)), log2e, ml));
            let e1 = exp2(_mm512_fmsub_ps(_mm512_load_ps(s.add((2 * pr + 1) * QT)), log2e, ml));
            let b = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(e1, e0));
            _mm512_store_si512(sc.pt.0.as_mut_ptr().add(pr * 32) as *mut _, _mm512_permutexvar_epi16(idx, b));
        }
        // Oᵀ += Vᵀ · Pᵀ.
        asm!("tileloadd tmm7, [{p} + {ld}*1]", p = in(reg) sc.pt.0.as_ptr(), ld = in(reg) 64usize, options(nostack, readonly));
        let vt = vp.add((j0 / KS) * nd * 512);
        for c in 0..nd {
            pv(c, vt.add(c * 512));
        }
        j0 += KS;
        cur ^= 1;
    }
    // out[q][d] = Oᵀ[d][q] / Oᵀ[hd][q], 16 × 16 blocks transposed back.
    let ob = sc.ob.0.as_mut_ptr();
    for c in 0..nd {
        store_o(c, ob.add(c * 16 * QT));
    }
    let inv = _mm512_div_ps(_mm512_set1_ps(1.0), _mm512_load_ps(ob.add(hd * QT)));
    let w = heads * hd;
    let rows = QT.min(len - i0);
    for c in 0..hd.div_ceil(16) {
        let mut r = [_mm512_setzero_si512(); 16];
        for (d, y) in r.iter_mut().enumerate() {
            *y = _mm512_castps_si512(_mm512_mul_ps(inv, _mm512_load_ps(ob.add((c * 16 + d) * QT))));
        }
        let t = transpose16(r);
        for (qi, y) in t.iter().enumerate().take(rows) {
            _mm512_mask_storeu_ps(out.at((st + i0 + qi) * w + h * hd + 16 * c), mask16(hd - 16 * c), _mm512_castsi512_ps(*y));
        }
    }
}

/// Sᵀ of keys j0..j0+32 into s [32][16] f32: two 16-key products in tmm5 (the second skipped past the
/// segment's end), rows of keys past the end set to FILL.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn scores(kp: *const u16, qt: *const u16, steps: usize, len: usize, j0: usize, s: *mut f32) {
    let valid = (len - j0).min(KS);
    for half in 0..valid.div_ceil(16) {
        asm!("tilezero tmm5", options(nostack, nomem));
        let kt = kp.add((j0 / 16 + half) * steps * 512);
        for d in 0..steps {
            score_step(kt.add(d * 512), qt.add(d * 512));
        }
        asm!("tilestored [{p} + {ld}*1], tmm5", p = in(reg) s.add(half * 16 * QT), ld = in(reg) 64usize, options(nostack));
    }
    for r in valid..KS {
        _mm512_store_ps(s.add(r * QT), _mm512_set1_ps(FILL));
    }
}

/// Oᵀ tiles tmm0..nd−1 scaled per query lane by alpha (through memory at `ob`, [nd·16][16] f32).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn rescale(nd: usize, alpha: __m512, ob: *mut f32) {
    for c in 0..nd {
        store_o(c, ob.add(c * 16 * QT));
    }
    for r in 0..nd * 16 {
        _mm512_store_ps(ob.add(r * QT), _mm512_mul_ps(alpha, _mm512_load_ps(ob.add(r * QT))));
    }
    for c in 0..nd {
        load_o(c, ob.add(c * 16 * QT));
    }
}

/// 2^t on 16 lanes for finite t (−∞ is never passed: keys past the end score FILL), relative error
/// ≤ 2.7e-6 (test below), far under bf16's 2⁻⁹ that P is rounded to next: t = n + f, n = ⌊t⌋ and
/// f ∈ [0, 1) by `vreduceps`, 2^f a degree-4 polynomial (minimax-fitted for relative error), times 2^n
/// by `vscalefps` (0 below the f32 range). 7 instructions with the caller's fmsub.
#[inline(always)]
unsafe fn exp2(t: __m512) -> __m512 {
    let f = _mm512_reduce_ps::<{ _MM_FROUND_TO_NEG_INF }>(t);
    let mut p = _mm512_set1_ps(0.013_534_121);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.052_011_482));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.241_442_8));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.693_003_83));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.000_002_6));
    _mm512_scalef_ps(p, t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::precision::{bf16_support, Bf16Path};
    use half::bf16;

    /// Two-pass attention in f64 on the operands the kernel multiplies: bf16(q·hd^−½), bf16(k), bf16(v).
    fn reference(q: &[f32], k: &[f32], v: &[f32], heads: usize, hd: usize, segs: &[(usize, usize)]) -> Vec<f64> {
        let r = |x: f32| bf16::from_f32(x).to_f64();
        let (w, scale) = (heads * hd, 1.0 / (hd as f32).sqrt());
        let mut out = vec![0f64; q.len()];
        for &(st, len) in segs {
            for h in 0..heads {
                for i in st..st + len {
                    let sc: Vec<f64> = (st..st + len).map(|j| (0..hd).map(|d| r(q[i * w + h * hd + d] * scale) * r(k[j * w + h * hd + d])).sum::<f64>()).collect();
                    let m = sc.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = sc.iter().map(|x| (x - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for d in 0..hd {
                        out[i * w + h * hd + d] = (st..st + len).map(|j| e[j - st] * r(v[j * w + h * hd + d])).sum::<f64>() / z;
                    }
                }
            }
        }
        out
    }

    fn max_error(q: &[f32], k: &[f32], v: &[f32], heads: usize, hd: usize, segs: &[(usize, usize)]) -> f64 {
        let n: usize = segs.iter().map(|s| s.1).sum();
        let want = reference(q, k, v, heads, hd, segs);
        let mut o = vec![f32::NAN; q.len()];
        segment_attention(q, k, v, n, heads, hd, segs, &mut o);
        o.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0f64, |e, x| if x.is_nan() { f64::INFINITY } else { e.max(x) })
    }

    /// Against the f64 reference on bf16-rounded operands, on segments shorter than, equal to and
    /// longer than the 32-key step, head dims 16/24/64/72 (the released ViT's)/79 (the largest; 64
    /// and 79 fill all 5 output tiles with the row of ones), |q|,|k|,|v| ≤ 2.
    /// What remains is P rounded to bf16 (relative ≤ 2⁻⁹ per weight, and l sums the same rounded
    /// weights) and f32 sums: |error| ≤ 2⁻⁹ · max|v − o| ≤ 2⁻⁹ · 4 ≈ 7.8e-3 at worst; checked at
    /// 4e-3. Measured 1.3–3.2e-3 (printed); the row-max kernel before gave 1.3–1.8e-3, because its
    /// largest weight was exactly 1, where the lazily raised max leaves every weight rounded.
    #[test]
    fn matches_reference_on_ragged_segments() {
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP attention_amx::matches_reference_on_ragged_segments: {}", bf16_support().why);
            return;
        }
        for (heads, hd, segs) in [(3, 24, vec![(0, 37), (37, 5), (42, 70)]), (2, 72, vec![(0, 128), (128, 1), (129, 300)]), (1, 16, vec![(0, 12), (12, 33)]), (2, 64, vec![(0, 200)]), (1, 79, vec![(0, 31), (31, 97)])] {
            let n: usize = segs.iter().map(|s| s.1).sum();
            let gen = |s: usize| (0..n * heads * hd).map(|i| (((i * 7919 + s) % 1000) as f32 / 500.0 - 1.0) * 2.0).collect::<Vec<f32>>();
            let (q, k, v) = (gen(1), gen(2), gen(3));
            let e = max_error(&q, &k, &v, heads, hd, &segs);
            eprintln!("attention_amx heads={heads} hd={hd} segments={segs:?}: max |error| {e:.2e}");
            assert!(e <= 4e-3, "heads={heads} hd={hd}: max error {e}");
        }
    }

    /// Scores that keep rising along the keys (k grows with the key index, up to |s| ~ 70), so the
    /// lazily raised max must be raised in many steps and the output tiles rescaled; plus a key set
    /// where one key dominates (softmax near one-hot). Same bound as above.
    #[test]
    fn rescales_when_later_keys_score_higher() {
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP attention_amx::rescales_when_later_keys_score_higher: {}", bf16_support().why);
            return;
        }
        let (heads, hd, n) = (2, 72, 700);
        let w = heads * hd;
        let q: Vec<f32> = (0..n * w).map(|i| 0.5 + ((i * 31) % 17) as f32 / 17.0).collect();
        let k: Vec<f32> = (0..n * w).map(|i| (i / w) as f32 / n as f32 * 2.0 * (0.5 + ((i * 13) % 11) as f32 / 11.0)).collect();
        let v: Vec<f32> = (0..n * w).map(|i| (((i * 7919) % 1000) as f32 / 500.0 - 1.0) * 2.0).collect();
        let e = max_error(&q, &k, &v, heads, hd, &[(0, n)]);
        eprintln!("attention_amx rising scores: max |error| {e:.2e}");
        assert!(e <= 4e-3, "rising scores: max error {e}");
        let mut k2 = vec![0.1f32; n * w];
        k2[333 * w..334 * w].iter_mut().for_each(|x| *x = 3.0);
        let e = max_error(&q, &k2, &v, heads, hd, &[(0, 400), (400, 300)]);
        eprintln!("attention_amx one dominant key: max |error| {e:.2e}");
        assert!(e <= 4e-3, "one dominant key: max error {e}");
    }

    /// exp2 against f64 over the range the softmax feeds it (t ≤ TAU·log2e = 8, down to underflow):
    /// relative error ≤ 3e-6 where the result is a normal f32, and exactly 0 for the fill score.
    #[test]
    fn exp2_is_accurate() {
        if !(std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq")) {
            eprintln!("SKIP attention_amx::exp2_is_accurate: no AVX-512F/DQ");
            return;
        }
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn run(t: &[f32; 16]) -> [f32; 16] {
            let mut o = [0f32; 16];
            _mm512_storeu_ps(o.as_mut_ptr(), exp2(_mm512_loadu_ps(t.as_ptr())));
            o
        }
        let mut worst = 0f64;
        for c in 0..(12_600 / 16) {
            let t: [f32; 16] = std::array::from_fn(|l| 8.0 - (c * 16 + l) as f32 * 0.01);
            // SAFETY: AVX-512F/DQ checked above.
            let o = unsafe { run(&t) };
            for l in 0..16 {
                let want = (t[l] as f64).exp2();
                worst = worst.max((o[l] as f64 - want).abs() / want);
            }
        }
        assert!(worst <= 3e-6, "exp2 relative error {worst}");
        // SAFETY: as above.
        let o = unsafe { run(&[FILL * std::f32::consts::LOG2_E; 16]) };
        assert!(o.iter().all(|&x| x == 0.0), "fill score gives {o:?}");
    }

    /// Speed against the f32 flash kernel at the 2B ViT's shapes (16 heads × 72, one segment of 784 =
    /// 448² or 3136 = 896² tokens), one thread, thread CPU time of a second call (`--ignored --nocapture`).
    #[test]
    #[ignore]
    fn speed() {
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP attention_amx::speed: {}", bf16_support().why);
            return;
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for n in [784usize, 3136] {
            let (heads, hd) = (16, 72);
            let gen = |s: usize| (0..n * heads * hd).map(|i| ((i * 7919 + s) % 1000) as f32 / 500.0 - 1.0).collect::<Vec<f32>>();
            let (q, k, v) = (gen(1), gen(2), gen(3));
            let mut o = vec![0f32; q.len()];
            let segs = [(0, n)];
            let flop = 4.0 * (n * n * heads * hd) as f64;
            // The second call of each kernel is timed: the ViT calls it once per layer, so buffers
            // kept between calls are warm as they are in an encode.
            let t_amx = pool.install(|| {
                segment_attention(&q, &k, &v, n, heads, hd, &segs, &mut o);
                let s = thread_cpu_s();
                segment_attention(&q, &k, &v, n, heads, hd, &segs, &mut o);
                thread_cpu_s() - s
            });
            let t_f32 = pool.install(|| {
                crate::backend::cpu::vision_ops::attention_flash::segment_attention(&q, &k, &v, heads, hd, &segs, &mut o);
                let s = thread_cpu_s();
                crate::backend::cpu::vision_ops::attention_flash::segment_attention(&q, &k, &v, heads, hd, &segs, &mut o);
                thread_cpu_s() - s
            });
            eprintln!("attention {n} tokens, 16 × 72: amx bf16 {:.1} ms ({:.0} GFLOP/s), f32 flash {:.1} ms ({:.0} GFLOP/s)", t_amx * 1e3, flop / t_amx / 1e9, t_f32 * 1e3, flop / t_f32 / 1e9);
        }
    }

    use crate::backend::cpu::profile::thread_cpu_s;
}
