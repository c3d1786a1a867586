//! AVX-512 flash-style bidirectional segment attention (model-spec.md §4.5), f32, any head_dim ≤ 96.
//! Per (head, segment, tile of 32 queries) the keys are visited in blocks of KB = 48 with an online
//! softmax (running max m and sum l per query; earlier partial outputs rescaled by exp(m_old − m_new)),
//! so no score row longer than KB is ever stored: memory per task is KB·32 scores + hd·32 outputs,
//! whatever the segment length (a 1792² image is one 12 544-token segment).
//!
//! Transposed tiles: the 32 queries run along the vector lanes (two zmm), keys and head dims along
//! the broadcast side. Every per-query quantity (scores of one key, row max, sum, rescale factor) is
//! then a pair of vectors, so the softmax needs no horizontal reductions and no scalar exp, and
//! the row max is folded into the score tile's epilogue.
//! * Scores Sᵀ[12 keys × 32 queries] = K[12 × hd] · Qᵀ[hd × 32]: per d 2 loads of Qᵀ, 12 broadcasts
//!   of K, 24 FMAs (the GEMM's 12 × 32 register tile).
//! * Oᵀ[hdv × 32] += Vᵀ · Pᵀ[kb × 32] in chunks of 12 head dims: per key 2 loads of Pᵀ, 12 broadcasts
//!   of V, 24 FMAs. V needs padding only to 12 columns (72 stays 72; the row-major tile padded 72 to
//!   80 columns, 11 % extra FMAs).
//!
//! Layout, packed once per call in one front-to-back pass over q, k and v (into per-thread scratch
//! reused across calls): Qᵀ per (head, segment) [⌈len/32⌉ tiles][hd][32], scaled by hd^−½, zero
//! queries past len; K [len padded to 12][hd]; V [len padded to 12][hdv] with hdv = hd rounded up to
//! 12; padding rows and columns are zero. Scores past the segment end are −∞ (their probability is
//! exactly 0). While one 12-key score tile runs, the next tile's K rows and this tile's V rows are
//! prefetched into L1 (at 3,136 keys a head's K and V, 1.8 MB, live in L2, not L1).
//!
//! Single-thread rate (the `rate` harness below, thread CPU time, Sapphire Rapids class): 784 tokens
//! 48 → 57 % of the FMA peak, 3,136 tokens 44 → 66 % (docs/performance.md, branch flash32); the two
//! FMA loops run at ~85 % of the peak (the GEMM micro-kernel's L1 ceiling on this CPU), the softmax
//! takes ~10 % of the time.
use crate::backend::cpu::gemm_pack::transpose16;
use crate::backend::cpu::matmul::SharedOut;
use crate::backend::cpu::scratch::with_scratch;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::cell::RefCell;

/// Queries per task: the lanes of two zmm.
const QT: usize = 32;
/// Keys per score micro-tile and head dims per P·V micro-tile (12 × 2 zmm accumulators each).
const KR: usize = 12;
/// Keys per online-softmax block (a multiple of KR): Sᵀ/Pᵀ 6 KiB, the V block 13.5 KiB at hd 72, both
/// re-read from L1 by the six P·V chunks, next to Qᵀ (9 KiB) and Oᵀ (9 KiB): fits a 32 KiB L1D too.
/// The Oᵀ rescale (2·hdv multiplies) is paid once per block (~1 % at 48; 96 and 144 measured the same
/// on the 48 KiB-L1 Xeon, within noise).
const KB: usize = 48;
/// Largest padded head_dim the kernel takes (the dispatch in attention.rs checks hd rounded up to 16
/// against it; the bound keeps the per-task scratch small).
pub(super) const MAX_HDP: usize = 96;

/// exp(x) for x ≤ 0 (scores minus their running max) on 16 lanes (the Cephes expf of simd::exp:
/// x = n·ln2 + r, degree-6 polynomial, scale by 2^n); x ≤ −88 (and −∞, whose NaN intermediate the
/// final masked scale replaces) gives 0. Every 512-bit operation here takes a slot of the two FMA
/// ports (it costs ~10 % of the kernel), so: no clamps (inputs are ≤ 0); n by the 1.5·2^23 trick
/// (one FMA and one subtraction; vrndscaleps is two µops); the polynomial's last two steps as
/// Horner steps (p·r + 1)·r + 1 instead of p·r² + (r + 1) (two operations, not three; the test
/// below bounds the error); the flush to 0 rides on the scale (maskz) instead of a separate blend.
#[inline(always)]
unsafe fn exp16(x: __m512) -> __m512 {
    // 1.5·2^23: adding it rounds x·log2(e) to an integer held in the low mantissa bits
    // (|x·log2 e| < 2^22 for every x that is not flushed below).
    let magic = _mm512_set1_ps(12_582_912.0);
    let n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E), magic), magic);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_2e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_452e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_6e-2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666_666_5e-1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
    let one = _mm512_set1_ps(1.0);
    p = _mm512_fmadd_ps(_mm512_fmadd_ps(p, r, one), r, one);
    // Below −87.3 the true value is under f32's normal range: flush to 0 (also −∞ scores). NLE_UQ is
    // the exact complement of LE_OQ (NaN stays NaN).
    _mm512_maskz_scalef_ps(_mm512_cmp_ps_mask::<_CMP_NLE_UQ>(x, _mm512_set1_ps(-88.0)), p, n)
}

/// Per (head, segment): offsets of its packed Qᵀ, K and V (in per-thread scratch buffers, reused).
struct Packed<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    off: Vec<Off>,
    hdv: usize,
}

/// Offsets (in f32) of one (head, segment)'s packed Qᵀ, K and V; indexed head·segments + segment.
#[derive(Clone, Copy)]
struct Off {
    q: usize,
    k: usize,
    v: usize,
}

thread_local! {
    static Q_PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static K_PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static V_PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

#[inline(always)]
fn mask16(v: usize) -> __mmask16 {
    if v >= 16 {
        0xFFFF
    } else {
        ((1u32 << v) - 1) as __mmask16
    }
}

/// Offsets of each (head, segment) in the packed Qᵀ, K and V, and their total lengths.
fn layout(heads: usize, hd: usize, segs: &[(usize, usize)]) -> (Vec<Off>, [usize; 3]) {
    let hdv = hd.div_ceil(KR) * KR;
    let mut off = Vec::with_capacity(heads * segs.len());
    let mut o = Off { q: 0, k: 0, v: 0 };
    for _ in 0..heads {
        for &(_, len) in segs {
            off.push(o);
            let lp = len.div_ceil(KR) * KR;
            o.q += len.div_ceil(QT) * QT * hd;
            o.k += lp * hd;
            o.v += lp * hdv;
        }
    }
    (off, [o.q, o.k, o.v])
}

/// Fills the packed buffers (every element, padding included: the scratch buffers hold stale data)
/// in one pass over the rows of q, k and v, one task per tile of 32 tokens of a segment, so each
/// [tokens, heads·hd] input is read front to back (per head, its 72-float pieces 4.6 KB apart would
/// be read as scattered lines). The segment's last tile also writes K's and V's zero rows.
fn pack(q: &[f32], k: &[f32], v: &[f32], heads: usize, hd: usize, segs: &[(usize, usize)], off: &[Off], bufs: [SharedOut; 3]) {
    let items: Vec<(usize, usize)> = (0..segs.len()).flat_map(|s| (0..segs[s].1.div_ceil(QT)).map(move |t| (s, t))).collect();
    items.par_iter().for_each(|&(si, t)| {
        // SAFETY: AVX-512F checked by segment_attention's caller; each task writes the packed rows of
        // its own tokens (and its segment's padding) only.
        unsafe { pack_tile(q, k, v, heads, hd, segs, si, t, off, bufs) };
    });
}

#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_tile(q: &[f32], k: &[f32], v: &[f32], heads: usize, hd: usize, segs: &[(usize, usize)], si: usize, t: usize, off: &[Off], [qp, kp, vp]: [SharedOut; 3]) {
    let (ns, w, hdv) = (segs.len(), heads * hd, hd.div_ceil(KR) * KR);
    let (st, len) = segs[si];
    let j0 = t * QT;
    let rows = QT.min(len - j0);
    // Qᵀ tile [hd][32] of every head, scaled by hd^−½, zero queries past the segment: 16 tokens ×
    // 16 columns of the full row per register transpose; column c is (head c / hd, dim c % hd).
    let scale = _mm512_set1_ps(1.0 / (hd as f32).sqrt());
    for half in 0..2 {
        let qrows = rows.saturating_sub(half * 16).min(16);
        for c0 in (0..w).step_by(16) {
            let m = mask16(w - c0);
            let mut r = [_mm512_setzero_si512(); 16];
            for (i, x) in r.iter_mut().enumerate().take(qrows) {
                *x = _mm512_maskz_loadu_epi32(m, q.as_ptr().add((st + j0 + half * 16 + i) * w + c0) as *const i32);
            }
            let tr = transpose16(r);
            let (mut h, mut d) = (c0 / hd, c0 % hd);
            for x in tr.iter().take((w - c0).min(16)) {
                let dst = qp.at(off[h * ns + si].q + t * QT * hd + d * QT + half * 16);
                _mm512_storeu_ps(dst, _mm512_mul_ps(scale, _mm512_castsi512_ps(*x)));
                d += 1;
                if d == hd {
                    (h, d) = (h + 1, 0);
                }
            }
        }
    }
    // K [lp][hd] and V [lp][hdv] rows of every head; zero rows from len to lp (last tile) and V
    // columns past hd.
    let lp = len.div_ceil(KR) * KR;
    let end = if j0 + QT >= len { lp } else { j0 + rows };
    for j in j0..end {
        for h in 0..heads {
            let o = off[h * ns + si];
            let (kd, vd) = (kp.at(o.k + j * hd), vp.at(o.v + j * hdv));
            for c in (0..hdv).step_by(16) {
                let m = mask16(hd.saturating_sub(c));
                let (kx, vx) = if j < len {
                    let src = (st + j) * w + h * hd + c;
                    (_mm512_maskz_loadu_ps(m, k.as_ptr().add(src)), _mm512_maskz_loadu_ps(m, v.as_ptr().add(src)))
                } else {
                    (_mm512_setzero_ps(), _mm512_setzero_ps())
                };
                _mm512_mask_storeu_ps(kd.add(c), m, kx);
                _mm512_mask_storeu_ps(vd.add(c), mask16(hdv - c), vx);
            }
        }
    }
}

/// Caller checked: AVX-512F present, hd.div_ceil(16)·16 ≤ MAX_HDP, shapes consistent.
#[allow(clippy::too_many_arguments)]
pub(super) fn segment_attention(q: &[f32], k: &[f32], v: &[f32], heads: usize, hd: usize, segs: &[(usize, usize)], out: &mut [f32]) {
    let (off, [qo, ko, vo]) = layout(heads, hd, segs);
    with_scratch(&Q_PACK, qo, |qp| {
        with_scratch(&K_PACK, ko, |kp| {
            with_scratch(&V_PACK, vo, |vp| {
                pack(q, k, v, heads, hd, segs, &off, [SharedOut(qp.as_mut_ptr()), SharedOut(kp.as_mut_ptr()), SharedOut(vp.as_mut_ptr())]);
                let p = Packed { q: qp, k: kp, v: vp, off, hdv: hd.div_ceil(KR) * KR };
                run(heads, hd, segs, &p, out);
            })
        })
    });
}

fn run(heads: usize, hd: usize, segs: &[(usize, usize)], p: &Packed, out: &mut [f32]) {
    let ns = segs.len();
    // (head, segment, first query) per task; head-major so consecutive tasks share packed K/V in cache.
    let items: Vec<(usize, usize, usize)> = (0..heads).flat_map(|h| (0..ns).flat_map(move |s| (0..segs[s].1).step_by(QT).map(move |i0| (h, s, i0)))).collect();
    let o = SharedOut(out.as_mut_ptr());
    items.par_iter().for_each_init(
        || (vec![0f32; KB * QT], vec![0f32; p.hdv * QT]),
        |(s, acc), &(h, si, i0)| {
            // SAFETY: AVX-512F checked by the caller; each task writes its own rows of one head.
            unsafe {
                if hd == 72 {
                    tile::<72>(heads, hd, segs[si], p, p.off[h * ns + si], h, i0, o, s, acc)
                } else {
                    tile::<0>(heads, hd, segs[si], p, p.off[h * ns + si], h, i0, o, s, acc)
                }
            };
        },
    );
}

#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const HD: usize>(heads: usize, hd: usize, (st, len): (usize, usize), p: &Packed, o: Off, h: usize, i0: usize, out: SharedOut, s: &mut [f32], acc: &mut [f32]) {
    let (w, hdv) = (heads * hd, p.hdv);
    let rows = QT.min(len - i0);
    // This tile's Qᵀ [hd][32], packed and scaled by pack().
    let qt = &p.q[o.q + i0 * hd..o.q + (i0 + QT) * hd];
    acc.fill(0.0);
    let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
    // Running max and sum per query (lanes), two vectors for the 32 queries.
    let (mut m, mut l) = ([ninf; 2], [_mm512_setzero_ps(); 2]);
    let (kp, vp) = (p.k.as_ptr().add(o.k), p.v.as_ptr().add(o.v));
    let sp = s.as_mut_ptr();
    let mut j0 = 0;
    while j0 < len {
        let kb = KB.min(len - j0);
        let nk = kb.div_ceil(KR) * KR;
        let mut bm = [ninf; 2];
        for t in (0..nk).step_by(KR) {
            // While this tile's K rows are used, pull the next tile's K rows and this tile's V rows
            // (read by P·V after the softmax) from L2 into L1: 12·hd resp. 12·hdv floats each.
            let pf = [kp.wrapping_add((j0 + t + KR) * hd), vp.wrapping_add((j0 + t) * hdv)];
            let tm = scores::<HD>(hd, qt.as_ptr(), kp.add((j0 + t) * hd), sp.add(t * QT), kb - t, pf, [KR * hd / 16, KR * hdv / 16]);
            bm = [_mm512_max_ps(bm[0], tm[0]), _mm512_max_ps(bm[1], tm[1])];
        }
        // Online softmax, per query lane: new max, alpha = exp(m_old − m_new) (0 on the first block:
        // −∞ − finite), P = exp(S − m_new) in place, l = l·alpha + Σ P.
        let mn = [_mm512_max_ps(m[0], bm[0]), _mm512_max_ps(m[1], bm[1])];
        let alpha = [exp16(_mm512_sub_ps(m[0], mn[0])), exp16(_mm512_sub_ps(m[1], mn[1]))];
        let mut sum = [_mm512_setzero_ps(); 2];
        for j in 0..nk {
            for c in 0..2 {
                let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(sp.add(j * QT + c * 16)), mn[c]));
                _mm512_storeu_ps(sp.add(j * QT + c * 16), e);
                sum[c] = _mm512_add_ps(sum[c], e);
            }
        }
        for c in 0..2 {
            l[c] = _mm512_fmadd_ps(l[c], alpha[c], sum[c]);
        }
        m = mn;
        // Oᵀ[hdv × 32] = Oᵀ·alpha + Vᵀ[hdv × nk] · Pᵀ[nk × 32], 12 head dims per pass: the V block
        // (nk × hdv) and Pᵀ stay in L1 across the passes.
        let v = vp.add(j0 * hdv);
        for c in (0..hdv).step_by(KR) {
            pv(nk, sp, v.add(c), hdv, acc.as_mut_ptr().add(c * QT), &alpha);
        }
        j0 += kb;
    }
    // out[query][d] = Oᵀ[d][query] / l[query]: 16 dims × 16 queries per register transpose.
    for half in 0..2 {
        let qrows = rows.saturating_sub(half * 16).min(16);
        if qrows == 0 {
            continue;
        }
        let inv = _mm512_div_ps(_mm512_set1_ps(1.0), l[half]);
        for d0 in (0..hd).step_by(16) {
            let mut r = [_mm512_setzero_si512(); 16];
            for (dd, x) in r.iter_mut().enumerate().take((hdv - d0).min(16)) {
                *x = _mm512_castps_si512(_mm512_mul_ps(_mm512_loadu_ps(acc.as_ptr().add((d0 + dd) * QT + half * 16)), inv));
            }
            let t = transpose16(r);
            let m = mask16(hd - d0);
            for (i, x) in t.iter().enumerate().take(qrows) {
                _mm512_mask_storeu_epi32(out.at((st + i0 + half * 16 + i) * w + h * hd + d0) as *mut i32, m, *x);
            }
        }
    }
}

/// s[12][32] (row stride 32) = kb[12][hd] · qt[hd][32]; key rows ≥ valid are −∞. Returns the tile's
/// max per query lane.
#[inline(always)]
unsafe fn scores<const HD: usize>(hd: usize, qt: *const f32, kb: *const f32, s: *mut f32, valid: usize, pf: [*const f32; 2], pf_lines: [usize; 2]) -> [__m512; 2] {
    // A compile-time head dim (HD > 0; 72 for the released ViT) makes the 12 K rows' offsets
    // constants: with a run-time stride the row addresses cost ~1 integer op per broadcast, and those
    // compete with the FMAs for ports 0 and 5.
    let hd = if HD > 0 { HD } else { hd };
    let mut a = [[_mm512_setzero_ps(); 2]; KR];
    for d in 0..hd {
        // One 64-byte line of each prefetch stream per d step (a spare load-port slot: the step is
        // 2 loads, 12 broadcasts and 24 FMAs, ~12 cycles).
        for (ptr, &n) in pf.iter().zip(&pf_lines) {
            if d < n {
                _mm_prefetch::<_MM_HINT_T0>(ptr.wrapping_add(d * 16) as *const i8);
            }
        }
        let q0 = _mm512_loadu_ps(qt.add(d * QT));
        let q1 = _mm512_loadu_ps(qt.add(d * QT + 16));
        for (r, row) in a.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*kb.add(r * hd + d));
            row[0] = _mm512_fmadd_ps(x, q0, row[0]);
            row[1] = _mm512_fmadd_ps(x, q1, row[1]);
        }
    }
    let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
    for row in a.iter_mut().skip(valid.min(KR)) {
        *row = [ninf; 2];
    }
    for (r, row) in a.iter().enumerate() {
        _mm512_storeu_ps(s.add(r * QT), row[0]);
        _mm512_storeu_ps(s.add(r * QT + 16), row[1]);
    }
    // Max over the 12 rows as a tree (short dependency chains).
    let mut mx = [[ninf; 2]; 4];
    for (r, row) in a.iter().enumerate() {
        for c in 0..2 {
            mx[r % 4][c] = _mm512_max_ps(mx[r % 4][c], row[c]);
        }
    }
    let m0 = [_mm512_max_ps(mx[0][0], mx[1][0]), _mm512_max_ps(mx[0][1], mx[1][1])];
    let m1 = [_mm512_max_ps(mx[2][0], mx[3][0]), _mm512_max_ps(mx[2][1], mx[3][1])];
    [_mm512_max_ps(m0[0], m1[0]), _mm512_max_ps(m0[1], m1[1])]
}

/// acc[12][32] (row stride 32) = acc·alpha (per query lane) + v[nk][12]ᵀ (row stride hdv) ·
/// p[nk][32] (row stride 32).
#[inline(always)]
unsafe fn pv(nk: usize, p: *const f32, v: *const f32, hdv: usize, acc: *mut f32, alpha: &[__m512; 2]) {
    let mut a = [[_mm512_setzero_ps(); 2]; KR];
    for (r, row) in a.iter_mut().enumerate() {
        for (c, x) in row.iter_mut().enumerate() {
            *x = _mm512_mul_ps(alpha[c], _mm512_loadu_ps(acc.add(r * QT + c * 16)));
        }
    }
    for j in 0..nk {
        let p0 = _mm512_loadu_ps(p.add(j * QT));
        let p1 = _mm512_loadu_ps(p.add(j * QT + 16));
        for (r, row) in a.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*v.add(j * hdv + r));
            row[0] = _mm512_fmadd_ps(x, p0, row[0]);
            row[1] = _mm512_fmadd_ps(x, p1, row[1]);
        }
    }
    for (r, row) in a.iter().enumerate() {
        for (c, x) in row.iter().enumerate() {
            _mm512_storeu_ps(acc.add(r * QT + c * 16), *x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest relative error of exp16 against f64 exp over [−87.3, 0] (every 2^−12 plus the
    /// polynomial's ±ln2/2 reduction edges), and the flush to 0 below −88 and at −∞. Bound: 3e-7
    /// relative (~2.5 ulp), the bound simd::exp's test uses for the same Cephes polynomial.
    #[test]
    fn exp16_is_accurate() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("SKIP attention_flash::tests::exp16_is_accurate: this CPU has no AVX-512F");
            return;
        }
        #[target_feature(enable = "avx512f")]
        unsafe fn eval(x: &[f32; 16]) -> [f32; 16] {
            let mut y = [0f32; 16];
            _mm512_storeu_ps(y.as_mut_ptr(), exp16(_mm512_loadu_ps(x.as_ptr())));
            y
        }
        let mut xs: Vec<f32> = (0..=(87.3 * 4096.0) as i32).map(|i| -(i as f32) / 4096.0).collect();
        for k in 0..=125 {
            let edge = -(k as f32 + 0.5) * std::f32::consts::LN_2;
            xs.extend([edge, f32::from_bits(edge.to_bits() + 1), f32::from_bits(edge.to_bits() - 1)]);
        }
        let mut worst = 0f64;
        for c in xs.chunks(16) {
            let mut x = [0f32; 16];
            x[..c.len()].copy_from_slice(c);
            // SAFETY: AVX-512F detected.
            let y = unsafe { eval(&x) };
            for (a, b) in x.iter().zip(&y).take(c.len()) {
                let want = (*a as f64).exp();
                worst = worst.max(((*b as f64 - want) / want).abs());
            }
        }
        eprintln!("exp16 worst relative error {worst:.3e}");
        assert!(worst < 3e-7, "exp16 relative error {worst}");
        // SAFETY: AVX-512F detected.
        let y = unsafe { eval(&[-88.0, -100.0, -1e30, f32::NEG_INFINITY, 0.0, -87.0, -1e-30, -0.5, -88.0, -88.0, -88.0, -88.0, -88.0, -88.0, -88.0, -88.0]) };
        assert_eq!(&y[..4], &[0.0; 4], "flush to 0");
        assert_eq!(y[4], 1.0);
        assert!(y[5] > 0.0 && y[6] == 1.0);
    }
}

/// Timing harness (ignored; `cargo test --release --lib attention_flash::rate -- --ignored
/// --nocapture`): the 448² ViT attention shape (784 tokens, 16 heads of 72) on one thread, GFLOP
/// (4 · len² · heads · hd) per CPU-second, interleaved with a short FMA-peak measurement.
#[cfg(test)]
mod rate {
    use super::*;

    use crate::backend::cpu::profile::thread_cpu_s;

    #[target_feature(enable = "avx512f")]
    unsafe fn fma_loop(iters: usize) -> f32 {
        let mut a = [_mm512_set1_ps(1.0); 12];
        let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        for _ in 0..iters {
            for v in a.iter_mut() {
                *v = _mm512_fmadd_ps(*v, x, y);
            }
        }
        a.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
    }

    #[test]
    #[ignore]
    fn rates() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("SKIP attention_flash::rate::rates: this CPU has no AVX-512F");
            return;
        }
        let len: usize = std::env::var("OVIS_ATT_LEN").ok().and_then(|v| v.parse().ok()).unwrap_or(784);
        let (heads, hd) = (16, 72);
        let w = heads * hd;
        let gen = |s: usize| -> Vec<f32> { (0..len * w).map(|i| (((i * s) % 97) as f32 - 48.0) / 48.0).collect() };
        let (q, k, v) = (gen(7), gen(13), gen(29));
        let mut out = vec![0f32; len * w];
        let segs = [(0, len)];
        let flop = 4.0 * (len * len * w) as f64;
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let mut shares = Vec::new();
        for _ in 0..5 {
            let it = 4_000_000;
            let t0 = thread_cpu_s();
            // SAFETY: AVX-512F detected.
            std::hint::black_box(unsafe { fma_loop(it) });
            let pk = 12.0 * 32.0 * it as f64 / (thread_cpu_s() - t0) / 1e9;
            let r = pool.install(|| {
                let t0 = thread_cpu_s();
                for _ in 0..3 {
                    segment_attention(&q, &k, &v, heads, hd, &segs, &mut out);
                }
                3.0 * flop / (thread_cpu_s() - t0) / 1e9
            });
            shares.push(r / pk);
        }
        shares.sort_by(|a, b| a.partial_cmp(b).unwrap());
        eprintln!("RATE attention {len} tokens: median {:.1} % of peak (min {:.1}, max {:.1})", 100.0 * shares[2], 100.0 * shares[0], 100.0 * shares[4]);
    }
}
