//! ViT segment attention in `--precision bf16` on AMX tiles (model-spec.md §4.5): flash-style, Q·Kᵀ
//! and P·V as `tdpbf16ps` products of bf16 operands with f32 sums, the online softmax in f32 (AVX-512),
//! P rounded to bf16 before P·V. Dispatched from attention.rs only when precision() is Bf16 and the
//! bf16 path is Amx (the f32 flash kernel of attention_flash.rs otherwise).
//!
//! Per task (head, segment, 16 queries) the keys go by in blocks of KB = 64:
//! * S [16 × 64] f32 = Q [16 × hdp] · Kᵀ: 4 accumulator tiles (tmm0–3, 16 keys each), Q's hdp/32
//!   A tiles in tmm5–7 (hdp = hd rounded up to 32, ≤ 96), one K B tile at a time in tmm4.
//! * online softmax on S (row max m, sum l; earlier output rescaled by exp(m_old − m_new)), P = exp(S − m)
//!   rounded to bf16 into [16][64] (2 A tiles of 32 keys), l summing the rounded values.
//! * O_blk [16 × dcols·16] f32 = P · V: dcols = hd/16 rounded up (≤ 6) accumulators tmm0–5, P in tmm6,
//!   one V B tile at a time in tmm7; then O = alpha·O + O_blk in f32 registers.
//!
//! Packed once per call (bf16, round to nearest even):
//! * Q per head: [tokens + 16][hdp], pre-scaled by hd^−½ (an A tile = 16 rows from any query).
//! * K per (head, segment): [lp/16 key tiles][hdp/32 d steps][16 d pairs][16 keys][2] (B tiles).
//! * V per (head, segment): [lp/32 key steps][dcols][16 key pairs][16 d][2] (B tiles).
//!   lp = segment length rounded up to KB; keys past the segment are zero and their scores −∞.
use crate::backend::cpu::gemm_amx::config;
use crate::backend::cpu::gemm_pack::transpose16;
use crate::backend::cpu::matmul::SharedOut;
use rayon::prelude::*;
use std::arch::asm;
use std::arch::x86_64::*;

const QT: usize = 16;
const KB: usize = 64;
/// Largest head_dim: 3 A tiles of Q (32 d each) and 6 output tiles (16 d each).
pub(super) const MAX_HD: usize = 96;

/// The three packs, each from a 64-byte boundary of its Vec (`*_at`, in u16): a tile row that straddles
/// two cache lines costs two line reads.
struct Packed {
    q: Vec<u16>,
    k: Vec<u16>,
    v: Vec<u16>,
    q_at: usize,
    k_at: usize,
    v_at: usize,
    /// (k offset, v offset) per head·segments + segment, in u16.
    off: Vec<(usize, usize)>,
    hdp: usize,
    dcols: usize,
    qrows: usize,
}

/// Caller: the AMX permission was granted (precision::bf16_support chose Amx, which implies
/// AVX-512F/BW and AVX512_BF16); 1 ≤ hd ≤ MAX_HD; shapes consistent.
pub(super) fn segment_attention(q: &[f32], k: &[f32], v: &[f32], tokens: usize, heads: usize, hd: usize, segs: &[(usize, usize)], out: &mut [f32]) {
    // SAFETY: features as stated by the caller.
    let p = unsafe { pack(q, k, v, tokens, heads, hd, segs) };
    let ns = segs.len();
    let items: Vec<(usize, usize, usize)> = (0..heads).flat_map(|h| (0..ns).flat_map(move |s| (0..segs[s].1).step_by(QT).map(move |i0| (h, s, i0)))).collect();
    let o = SharedOut(out.as_mut_ptr());
    let p = &p;
    items.par_chunks(8).for_each(|chunk| {
        let mut scratch = Scratch { s: Aligned([0f32; QT * KB]), pb: Aligned([0u16; QT * KB]), ob: Aligned([0f32; QT * 96]), acc: [0f32; QT * 96] };
        let cfg = config();
        // SAFETY: permission granted (caller); config loaded before any tile use on this thread and
        // released after; each task writes its own output rows of one head; loads stay in the packs.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
            for &(h, si, i0) in chunk {
                tile(p, heads, hd, segs[si], p.off[h * ns + si], h, i0, o, &mut scratch);
            }
            asm!("tilerelease", options(nostack, nomem));
        }
    });
}

#[repr(C, align(64))]
struct Aligned<T>(T);

struct Scratch {
    /// Scores of one key block [16][64] f32.
    s: Aligned<[f32; QT * KB]>,
    /// P rounded to bf16 [16][64].
    pb: Aligned<[u16; QT * KB]>,
    /// P·V of one key block [16][96] f32.
    ob: Aligned<[f32; QT * 96]>,
    /// The running output [16][96] f32.
    acc: [f32; QT * 96],
}

#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn pack(q: &[f32], k: &[f32], v: &[f32], tokens: usize, heads: usize, hd: usize, segs: &[(usize, usize)]) -> Packed {
    let w = heads * hd;
    let hdp = hd.div_ceil(32) * 32;
    let dcols = hd.div_ceil(16);
    let qrows = tokens + QT;
    let scale = 1.0 / (hd as f32).sqrt();
    let (mut qb, q_at) = aligned_vec(heads * qrows * hdp);
    qb[q_at..q_at + heads * qrows * hdp].par_chunks_mut(qrows * hdp).enumerate().for_each(|(h, dst)| {
        for t in 0..tokens {
            // SAFETY: features of the enclosing function.
            unsafe { row_bf16(&q[t * w + h * hd..][..hd], scale, &mut dst[t * hdp..(t + 1) * hdp]) };
        }
    });
    let mut off = Vec::with_capacity(heads * segs.len());
    let (mut ko, mut vo) = (0, 0);
    for _ in 0..heads {
        for &(_, len) in segs {
            off.push((ko, vo));
            let lp = len.div_ceil(KB) * KB;
            ko += lp * hdp;
            vo += lp * dcols * 16;
        }
    }
    let ((mut kb, k_at), (mut vb, v_at)) = (aligned_vec(ko), aligned_vec(vo));
    let ns = segs.len();
    let mut parts = Vec::with_capacity(off.len());
    let (mut krest, mut vrest) = (&mut kb[k_at..k_at + ko], &mut vb[v_at..v_at + vo]);
    for t in 0..off.len() {
        let lp = segs[t % ns].1.div_ceil(KB) * KB;
        let (a, b) = std::mem::take(&mut krest).split_at_mut(lp * hdp);
        krest = b;
        let (c, d) = std::mem::take(&mut vrest).split_at_mut(lp * dcols * 16);
        vrest = d;
        parts.push((a, c));
    }
    parts.into_par_iter().enumerate().for_each(|(t, (kd, vd))| {
        let (h, (st, len)) = (t / ns, segs[t % ns]);
        // SAFETY: features of the enclosing function.
        unsafe {
            pack_k(k, w, h * hd, hd, hdp, st, len, kd);
            pack_v(v, w, h * hd, hd, dcols, st, len, vd);
        }
    });
    Packed { q: qb, k: kb, v: vb, q_at, k_at, v_at, off, hdp, dcols, qrows }
}

/// A zeroed Vec of len + 32 u16 and the index of its first element on a 64-byte boundary.
fn aligned_vec(len: usize) -> (Vec<u16>, usize) {
    let v = vec![0u16; len + 32];
    let at = (64 - v.as_ptr() as usize % 64) % 64 / 2;
    (v, at)
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

/// K rows st..st+len of head column c0 → B tiles [lp/16][hdp/32][16 pairs][16 keys][2]: for each tile of
/// 16 keys and 32 d, row i (a key) as 16 d pairs = one 32-bit lane per pair, transposed 16 × 16.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_k(k: &[f32], w: usize, c0: usize, hd: usize, hdp: usize, st: usize, len: usize, dst: &mut [u16]) {
    let steps = hdp / 32;
    let mut rows = [0u16; 16 * 32];
    for kt in 0..dst.len() / (16 * hdp) {
        for s in 0..steps {
            for i in 0..16 {
                let key = kt * 16 + i;
                let r = &mut rows[i * 32..i * 32 + 32];
                if key < len {
                    let d0 = s * 32;
                    row_bf16(&k[(st + key) * w + c0 + d0..][..hd.saturating_sub(d0).min(32)], 1.0, r);
                } else {
                    r.fill(0);
                }
            }
            let mut r = [_mm512_setzero_si512(); 16];
            for (i, x) in r.iter_mut().enumerate() {
                *x = _mm512_loadu_si512(rows.as_ptr().add(i * 32) as *const _);
            }
            let t = transpose16(r);
            let d = dst.as_mut_ptr().add((kt * steps + s) * 512);
            for (p, x) in t.iter().enumerate() {
                _mm512_storeu_si512(d.add(p * 32) as *mut _, *x);
            }
        }
    }
}

/// V rows st..st+len of head column c0 → B tiles [lp/32][dcols][16 key pairs][16 d][2]: pair row p of
/// a tile interleaves 16 d of keys 2p and 2p+1.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_v(v: &[f32], w: usize, c0: usize, hd: usize, dcols: usize, st: usize, len: usize, dst: &mut [u16]) {
    // Lane 2j ← element j of the low half (key 2p), lane 2j+1 ← element j of the high half (key 2p+1).
    let idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    let load = |key: usize, d0: usize| -> __m512 {
        if key < len {
            _mm512_maskz_loadu_ps(mask16(hd.saturating_sub(d0).min(16)), v.as_ptr().add((st + key) * w + c0 + d0))
        } else {
            _mm512_setzero_ps()
        }
    };
    for ks in 0..dst.len() / (32 * dcols * 16) {
        for c in 0..dcols {
            let d = dst.as_mut_ptr().add((ks * dcols + c) * 512);
            for p in 0..16 {
                let key = ks * 32 + 2 * p;
                let both = _mm512_cvtne2ps_pbh(load(key + 1, c * 16), load(key, c * 16));
                let x = _mm512_permutexvar_epi16(idx, std::mem::transmute::<__m512bh, __m512i>(both));
                _mm512_storeu_si512(d.add(p * 32) as *mut _, x);
            }
        }
    }
}

// Tile instructions with the register number chosen at run time (a tile register is part of the
// opcode): one match arm per register, the asm operands given once by a local macro.

#[inline(always)]
unsafe fn zero(t: usize) {
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
        4 => z!("tilezero tmm4"),
        _ => z!("tilezero tmm5"),
    }
}

#[inline(always)]
unsafe fn store(t: usize, p: *mut f32, ld: usize) {
    macro_rules! st {
        ($s:literal) => {
            asm!($s, p = in(reg) p, ld = in(reg) ld, options(nostack))
        };
    }
    match t {
        0 => st!("tilestored [{p} + {ld}*1], tmm0"),
        1 => st!("tilestored [{p} + {ld}*1], tmm1"),
        2 => st!("tilestored [{p} + {ld}*1], tmm2"),
        3 => st!("tilestored [{p} + {ld}*1], tmm3"),
        4 => st!("tilestored [{p} + {ld}*1], tmm4"),
        _ => st!("tilestored [{p} + {ld}*1], tmm5"),
    }
}

/// Q A tile of d step s into tmm5 + s.
#[inline(always)]
unsafe fn load_q(s: usize, p: *const u16, ld: usize) {
    macro_rules! ld {
        ($s:literal) => {
            asm!($s, p = in(reg) p, ld = in(reg) ld, options(nostack, readonly))
        };
    }
    match s {
        0 => ld!("tileloadd tmm5, [{p} + {ld}*1]"),
        1 => ld!("tileloadd tmm6, [{p} + {ld}*1]"),
        _ => ld!("tileloadd tmm7, [{p} + {ld}*1]"),
    }
}

macro_rules! dp {
    ($s:literal) => {
        asm!($s, options(nostack, nomem))
    };
}

/// S tile j (tmm j) += Q step s (tmm 5+s) · K tile (loaded into tmm4 from p).
#[inline(always)]
unsafe fn qk(j: usize, s: usize, p: *const u16) {
    asm!("tileloadd tmm4, [{p} + {ld}*1]", p = in(reg) p, ld = in(reg) 64usize, options(nostack, readonly));
    match j * 3 + s {
        0 => dp!("tdpbf16ps tmm0, tmm5, tmm4"),
        1 => dp!("tdpbf16ps tmm0, tmm6, tmm4"),
        2 => dp!("tdpbf16ps tmm0, tmm7, tmm4"),
        3 => dp!("tdpbf16ps tmm1, tmm5, tmm4"),
        4 => dp!("tdpbf16ps tmm1, tmm6, tmm4"),
        5 => dp!("tdpbf16ps tmm1, tmm7, tmm4"),
        6 => dp!("tdpbf16ps tmm2, tmm5, tmm4"),
        7 => dp!("tdpbf16ps tmm2, tmm6, tmm4"),
        8 => dp!("tdpbf16ps tmm2, tmm7, tmm4"),
        9 => dp!("tdpbf16ps tmm3, tmm5, tmm4"),
        10 => dp!("tdpbf16ps tmm3, tmm6, tmm4"),
        _ => dp!("tdpbf16ps tmm3, tmm7, tmm4"),
    }
}

/// O tile c (tmm c) += P (tmm6) · V tile (loaded into tmm7 from p).
#[inline(always)]
unsafe fn pv(c: usize, p: *const u16) {
    asm!("tileloadd tmm7, [{p} + {ld}*1]", p = in(reg) p, ld = in(reg) 64usize, options(nostack, readonly));
    match c {
        0 => dp!("tdpbf16ps tmm0, tmm6, tmm7"),
        1 => dp!("tdpbf16ps tmm1, tmm6, tmm7"),
        2 => dp!("tdpbf16ps tmm2, tmm6, tmm7"),
        3 => dp!("tdpbf16ps tmm3, tmm6, tmm7"),
        4 => dp!("tdpbf16ps tmm4, tmm6, tmm7"),
        _ => dp!("tdpbf16ps tmm5, tmm6, tmm7"),
    }
}

/// One task: queries i0..i0+16 of segment (st, len), head h. Tile config loaded by the caller.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn tile(p: &Packed, heads: usize, hd: usize, (st, len): (usize, usize), (ko, vo): (usize, usize), h: usize, i0: usize, out: SharedOut, sc: &mut Scratch) {
    let (hdp, dcols) = (p.hdp, p.dcols);
    let steps = hdp / 32;
    let rows = QT.min(len - i0);
    let qa = p.q.as_ptr().add(p.q_at + (h * p.qrows + st + i0) * hdp);
    let (kp, vp) = (p.k.as_ptr().add(p.k_at + ko), p.v.as_ptr().add(p.v_at + vo));
    let (mut m, mut l) = ([f32::NEG_INFINITY; QT], [0f32; QT]);
    sc.acc[..QT * dcols * 16].fill(0.0);
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut j0 = 0;
    while j0 < len {
        let valid = (len - j0).min(KB);
        // S = Q · Kᵀ for keys j0..j0+64 (4 tiles of 16 keys).
        for s in 0..steps {
            load_q(s, qa.add(s * 32), hdp * 2);
        }
        for j in 0..4 {
            zero(j);
        }
        for j in 0..4 {
            let kt = kp.add(((j0 / 16 + j) * steps) * 512);
            for s in 0..steps {
                qk(j, s, kt.add(s * 512));
            }
        }
        for j in 0..4 {
            store(j, sc.s.0.as_mut_ptr().add(16 * j), KB * 4);
        }
        // Online softmax per row; P (bf16) into pb; alpha rescales the running output.
        let mut alpha = [0f32; QT];
        for r in 0..QT {
            let row = sc.s.0.as_ptr().add(r * KB);
            let mut x = [_mm512_setzero_ps(); 4];
            let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
            for (c, xc) in x.iter_mut().enumerate() {
                let ok = _mm512_cmplt_epi32_mask(_mm512_add_epi32(lanes, _mm512_set1_epi32(16 * c as i32)), _mm512_set1_epi32(valid as i32));
                *xc = _mm512_mask_blend_ps(ok, _mm512_set1_ps(f32::NEG_INFINITY), _mm512_load_ps(row.add(16 * c)));
                mx = _mm512_max_ps(mx, *xc);
            }
            let m_new = m[r].max(_mm512_reduce_max_ps(mx));
            alpha[r] = if m[r] == f32::NEG_INFINITY { 0.0 } else { (m[r] - m_new).exp() };
            let mv = _mm512_set1_ps(m_new);
            let mut sum = _mm512_setzero_ps();
            for c in 0..2 {
                let e0 = exp16(_mm512_sub_ps(x[2 * c], mv));
                let e1 = exp16(_mm512_sub_ps(x[2 * c + 1], mv));
                let b = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(e1, e0));
                _mm512_store_si512(sc.pb.0.as_mut_ptr().add(r * KB + 32 * c) as *mut _, b);
                // The rounded values, back to f32 (bf16 → f32 is a 16-bit shift), so l sums what P·V multiplies.
                let lo = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(b))));
                let hi = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64::<1>(b))));
                sum = _mm512_add_ps(sum, _mm512_add_ps(lo, hi));
            }
            l[r] = l[r] * alpha[r] + _mm512_reduce_add_ps(sum);
            m[r] = m_new;
        }
        // O_blk = P · V (2 steps of 32 keys), then acc = alpha·acc + O_blk.
        for c in 0..dcols {
            zero(c);
        }
        for t in 0..KB / 32 {
            asm!("tileloadd tmm6, [{p} + {ld}*1]", p = in(reg) sc.pb.0.as_ptr().add(32 * t), ld = in(reg) KB * 2, options(nostack, readonly));
            let vt = vp.add(((j0 / 32 + t) * dcols) * 512);
            for c in 0..dcols {
                pv(c, vt.add(c * 512));
            }
        }
        for c in 0..dcols {
            store(c, sc.ob.0.as_mut_ptr().add(16 * c), dcols * 64);
        }
        for r in 0..QT {
            let al = _mm512_set1_ps(alpha[r]);
            for c in 0..dcols {
                let a = sc.acc.as_mut_ptr().add(r * dcols * 16 + 16 * c);
                _mm512_storeu_ps(a, _mm512_fmadd_ps(al, _mm512_loadu_ps(a), _mm512_load_ps(sc.ob.0.as_ptr().add(r * dcols * 16 + 16 * c))));
            }
        }
        j0 += KB;
    }
    let w = heads * hd;
    for r in 0..rows {
        let inv = _mm512_set1_ps(1.0 / l[r]);
        let dst = out.at((st + i0 + r) * w + h * hd);
        for c in 0..dcols {
            let x = _mm512_mul_ps(inv, _mm512_loadu_ps(sc.acc.as_ptr().add(r * dcols * 16 + 16 * c)));
            _mm512_mask_storeu_ps(dst.add(16 * c), mask16(hd - 16 * c), x);
        }
    }
}

/// exp(x) on 16 lanes (Cephes expf, as attention_flash.rs): x ≤ −88 (and −∞) gives 0.
#[inline(always)]
unsafe fn exp16(x: __m512) -> __m512 {
    let x = _mm512_max_ps(x, _mm512_set1_ps(-88.0));
    let x = _mm512_min_ps(x, _mm512_set1_ps(88.0));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_2e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_452e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_6e-2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666_666_5e-1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0)));
    let e = _mm512_scalef_ps(p, n);
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LE_OQ>(x, _mm512_set1_ps(-88.0)), e, _mm512_setzero_ps())
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

    /// Against the f64 reference on bf16-rounded operands, on segments shorter than, equal to and
    /// longer than the 64-key block, head dims 16/24/72 (the released ViT's)/96, |q|,|k|,|v| ≤ 2.
    /// What remains is P rounded to bf16 (relative 2⁻⁹ per weight) and f32 sums:
    /// bound max |error| ≤ 4e-3 (2⁻⁸ of |v| ≤ 2); measured 1.3–1.8e-3 (printed).
    #[test]
    fn matches_reference_on_ragged_segments() {
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP attention_amx::matches_reference_on_ragged_segments: {}", bf16_support().why);
            return;
        }
        for (heads, hd, segs) in [(3, 24, vec![(0, 37), (37, 5), (42, 70)]), (2, 72, vec![(0, 128), (128, 1), (129, 300)]), (1, 16, vec![(0, 12), (12, 33)]), (2, 96, vec![(0, 200)])] {
            let n: usize = segs.iter().map(|s| s.1).sum();
            let gen = |s: usize| (0..n * heads * hd).map(|i| (((i * 7919 + s) % 1000) as f32 / 500.0 - 1.0) * 2.0).collect::<Vec<f32>>();
            let (q, k, v) = (gen(1), gen(2), gen(3));
            let want = reference(&q, &k, &v, heads, hd, &segs);
            let mut o = vec![f32::NAN; q.len()];
            segment_attention(&q, &k, &v, n, heads, hd, &segs, &mut o);
            let e = o.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0f64, f64::max);
            eprintln!("attention_amx heads={heads} hd={hd} segments={segs:?}: max |error| {e:.2e}");
            assert!(e <= 4e-3, "heads={heads} hd={hd}: max error {e}");
        }
    }

    /// Speed against the f32 flash kernel at the 2B ViT's shapes (16 heads × 72, one segment of 784 =
    /// 448² or 3136 = 896² tokens), one thread, thread CPU time (`--ignored --nocapture`).
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
            let t_amx = pool.install(|| {
                let s = thread_cpu_s();
                segment_attention(&q, &k, &v, n, heads, hd, &segs, &mut o);
                thread_cpu_s() - s
            });
            let t_f32 = pool.install(|| {
                let s = thread_cpu_s();
                crate::backend::cpu::vision_ops::attention_flash::segment_attention(&q, &k, &v, heads, hd, &segs, &mut o);
                thread_cpu_s() - s
            });
            eprintln!("attention {n} tokens, 16 × 72: amx bf16 {:.1} ms ({:.0} GFLOP/s), f32 flash {:.1} ms ({:.0} GFLOP/s)", t_amx * 1e3, flop / t_amx / 1e9, t_f32 * 1e3, flop / t_f32 / 1e9);
        }
    }

    use crate::backend::cpu::profile::thread_cpu_s;
}
