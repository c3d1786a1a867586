//! AVX-512 flash-style bidirectional segment attention (model-spec.md §4.5), f32, any head_dim.
//! Per (head, segment, tile of 12 queries) the keys are visited in blocks of KB = 128 with an online
//! softmax (running row max m and sum l; earlier partial outputs rescaled by exp(m_old − m_new)), so
//! no score row longer than KB is ever stored: memory per task is 12·KB scores + 12·hd outputs,
//! whatever the segment length (a 1792² image is one 12 544-token segment).
//!
//! Layout, packed once per call (16 × 16 register transposes, into per-thread scratch reused across
//! calls):
//! * K per (head, segment): [⌈len/32⌉ blocks][hd][32 keys], zero keys past len, so the score tile
//!   S[12 × 32] = Q[12 × hd] · Kᵀ[hd × 32] reads one contiguous 32·hd block (the GEMM's micro-kernel:
//!   24 zmm accumulators, per d 2 loads and 12 broadcasts).
//! * V per (head, segment): [len padded to 32][hdp] with hdp = hd rounded up to 16 (zero columns);
//!   O[12 × hdp] += P[12 × KB] · V[KB × hdp] runs in column chunks of 32 (16 for the rest): the same
//!   12 × 32 register tile, so each V line is read once per key block.
//! Scores past the segment end are −∞ (their probability is exactly 0).
use crate::backend::cpu::gemm_pack::transpose16;
use crate::backend::cpu::matmul::SharedOut;
use crate::backend::cpu::scratch::with_scratch;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::cell::RefCell;

const MR: usize = 12;
const NR: usize = 32;
const KB: usize = 128;
/// Largest padded head_dim the kernel takes (the P·V chunks handle any; the bound keeps the per-task
/// scratch small and the dispatch in attention.rs unchanged).
pub(super) const MAX_HDP: usize = 96;

/// exp(x) for x ≤ 0 (scores minus their row max) on 16 lanes (the Cephes expf of simd::exp: x = n·ln2
/// + r, degree-6 polynomial, scale by 2^n); x ≤ −88 (and −∞, whose NaN intermediate the final blend
/// replaces) gives 0. No clamps: every 512-bit operation here takes a slot of the two FMA ports.
#[inline(always)]
unsafe fn exp16(x: __m512) -> __m512 {
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
    // Below −87.3 the true value is under f32's normal range: flush to 0 (also −∞ scores).
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LE_OQ>(x, _mm512_set1_ps(-88.0)), e, _mm512_setzero_ps())
}

/// Per (head, segment): offsets of its packed K and V (in per-thread scratch buffers, reused).
struct Packed<'a> {
    k: &'a [f32],
    v: &'a [f32],
    /// (k offset, v offset) per head·segments + segment.
    off: Vec<(usize, usize)>,
    hdp: usize,
}

thread_local! {
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

/// Offsets of each (head, segment) in the packed K and V, and their total lengths.
fn layout(heads: usize, hd: usize, segs: &[(usize, usize)]) -> (Vec<(usize, usize)>, usize, usize) {
    let hdp = hd.div_ceil(16) * 16;
    let mut off = Vec::with_capacity(heads * segs.len());
    let (mut ko, mut vo) = (0, 0);
    for _ in 0..heads {
        for &(_, len) in segs {
            off.push((ko, vo));
            let lp = len.div_ceil(NR) * NR;
            ko += lp * hd;
            vo += lp * hdp;
        }
    }
    (off, ko, vo)
}

/// Fills kp / vp (every element, padding included: the scratch buffers hold stale data).
fn pack(k: &[f32], v: &[f32], heads: usize, hd: usize, segs: &[(usize, usize)], off: &[(usize, usize)], kp: &mut [f32], vp: &mut [f32]) {
    let hdp = hd.div_ceil(16) * 16;
    let ns = segs.len();
    // One task per (head, segment): disjoint slices of kp / vp, split off in order.
    let mut kparts = Vec::with_capacity(off.len());
    let mut vparts = Vec::with_capacity(off.len());
    let (mut krest, mut vrest) = (kp, vp);
    for t in 0..off.len() {
        let lp = segs[t % ns].1.div_ceil(NR) * NR;
        let (a, b) = std::mem::take(&mut krest).split_at_mut(lp * hd);
        kparts.push(a);
        krest = b;
        let (a, b) = std::mem::take(&mut vrest).split_at_mut(lp * hdp);
        vparts.push(a);
        vrest = b;
    }
    kparts.into_par_iter().zip(vparts).enumerate().for_each(|(t, (kd, vd))| {
        let (h, seg) = (t / ns, segs[t % ns]);
        // SAFETY: AVX-512F checked by segment_attention's caller; kd / vd have this segment's sizes.
        unsafe { pack_head(k, v, heads * hd, h * hd, hd, seg, kd, vd) };
    });
}

/// One (head, segment): K [len][hd] (row stride w, from column c0) → kd [⌈len/32⌉][hd][32] by 16 × 16
/// register transposes (16 keys × 16 dims), zero keys past len; V → vd [len padded to 32][hdp], zero
/// columns past hd and zero rows past len.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_head(k: &[f32], v: &[f32], w: usize, c0: usize, hd: usize, (st, len): (usize, usize), kd: &mut [f32], vd: &mut [f32]) {
    let hdp = hd.div_ceil(16) * 16;
    let lp = len.div_ceil(NR) * NR;
    for j0 in (0..lp).step_by(16) {
        let rows = len.saturating_sub(j0).min(16);
        let (blk, half) = (j0 / NR, (j0 % NR) / 16);
        for d0 in (0..hd).step_by(16) {
            let m = mask16(hd - d0);
            let mut r = [_mm512_setzero_si512(); 16];
            for (i, x) in r.iter_mut().enumerate().take(rows) {
                *x = _mm512_maskz_loadu_epi32(m, k.as_ptr().add((st + j0 + i) * w + c0 + d0) as *const i32);
            }
            let t = transpose16(r);
            for (dd, x) in t.iter().enumerate().take((hd - d0).min(16)) {
                _mm512_storeu_si512(kd.as_mut_ptr().add(blk * hd * NR + (d0 + dd) * NR + half * 16) as *mut _, *x);
            }
        }
    }
    for j in 0..lp {
        let dst = vd.as_mut_ptr().add(j * hdp);
        for c in (0..hdp).step_by(16) {
            let x = if j < len { _mm512_maskz_loadu_ps(mask16(hd - c), v.as_ptr().add((st + j) * w + c0 + c)) } else { _mm512_setzero_ps() };
            _mm512_storeu_ps(dst.add(c), x);
        }
    }
}

/// Caller checked: AVX-512F present, hd.div_ceil(16)·16 ≤ MAX_HDP, shapes consistent.
#[allow(clippy::too_many_arguments)]
pub(super) fn segment_attention(q: &[f32], k: &[f32], v: &[f32], heads: usize, hd: usize, segs: &[(usize, usize)], out: &mut [f32]) {
    let (off, ko, vo) = layout(heads, hd, segs);
    with_scratch(&K_PACK, ko, |kp| {
        with_scratch(&V_PACK, vo, |vp| {
            pack(k, v, heads, hd, segs, &off, kp, vp);
            let p = Packed { k: kp, v: vp, off, hdp: hd.div_ceil(16) * 16 };
            run(q, heads, hd, segs, &p, out);
        })
    });
}

fn run(q: &[f32], heads: usize, hd: usize, segs: &[(usize, usize)], p: &Packed, out: &mut [f32]) {
    let ns = segs.len();
    // (head, segment, first query) per task; head-major so consecutive tasks share packed K/V in cache.
    let items: Vec<(usize, usize, usize)> = (0..heads).flat_map(|h| (0..ns).flat_map(move |s| (0..segs[s].1).step_by(MR).map(move |i0| (h, s, i0)))).collect();
    let o = SharedOut(out.as_mut_ptr());
    items.par_iter().for_each_init(
        || (vec![0f32; hd * MR], vec![0f32; MR * KB], vec![0f32; MR * p.hdp]),
        |(qt, s, acc), &(h, si, i0)| {
            // SAFETY: AVX-512F checked by the caller; each task writes its own rows of one head.
            unsafe { tile(q, heads, hd, segs[si], p, p.off[h * ns + si], h, i0, o, qt, s, acc) };
        },
    );
}

#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(q: &[f32], heads: usize, hd: usize, (st, len): (usize, usize), p: &Packed, (ko, vo): (usize, usize), h: usize, i0: usize, out: SharedOut, qt: &mut [f32], s: &mut [f32], acc: &mut [f32]) {
    let (w, hdp) = (heads * hd, p.hdp);
    let rows = MR.min(len - i0);
    let scale = 1.0 / (hd as f32).sqrt();
    // Q tile [hd][12], pre-scaled by hd^−½, zero rows past the segment: 16 dims of the 12 rows per
    // round, transposed in registers.
    let sc = _mm512_set1_ps(scale);
    for d0 in (0..hd).step_by(16) {
        let m = mask16(hd - d0);
        let mut r = [_mm512_setzero_si512(); 16];
        for (i, x) in r.iter_mut().enumerate().take(rows) {
            *x = _mm512_maskz_loadu_epi32(m, q.as_ptr().add((st + i0 + i) * w + h * hd + d0) as *const i32);
        }
        let t = transpose16(r);
        for (dd, x) in t.iter().enumerate().take((hd - d0).min(16)) {
            _mm512_mask_storeu_ps(qt.as_mut_ptr().add((d0 + dd) * MR), 0x0FFF, _mm512_mul_ps(sc, _mm512_castsi512_ps(*x)));
        }
    }
    acc.fill(0.0);
    let (mut m, mut l) = ([f32::NEG_INFINITY; MR], [0f32; MR]);
    let (kp, vp) = (p.k.as_ptr().add(ko), p.v.as_ptr().add(vo));
    let mut j0 = 0;
    while j0 < len {
        let kb = KB.min(len - j0);
        let kbp = kb.div_ceil(NR) * NR;
        for b in 0..kbp / NR {
            scores(hd, qt.as_ptr(), kp.add((j0 / NR + b) * hd * NR), s.as_mut_ptr().add(b * NR), kb.saturating_sub(b * NR));
        }
        // Online softmax: new row max, rescale the partial sums and outputs, P = exp(S − m).
        let mut alpha = [0f32; MR];
        for r in 0..MR {
            let row = s.as_mut_ptr().add(r * KB);
            let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
            for c in (0..kbp).step_by(16) {
                mx = _mm512_max_ps(mx, _mm512_loadu_ps(row.add(c)));
            }
            let m_new = m[r].max(_mm512_reduce_max_ps(mx));
            alpha[r] = if m[r] == f32::NEG_INFINITY { 0.0 } else { (m[r] - m_new).exp() };
            let mv = _mm512_set1_ps(m_new);
            let mut sum = _mm512_setzero_ps();
            for c in (0..kbp).step_by(16) {
                let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(row.add(c)), mv));
                _mm512_storeu_ps(row.add(c), e);
                sum = _mm512_add_ps(sum, e);
            }
            l[r] = l[r] * alpha[r] + _mm512_reduce_add_ps(sum);
            m[r] = m_new;
        }
        let v = vp.add(j0 * hdp);
        // O[12 × hdp] = O·alpha + P[12 × kbp] · V[kbp × hdp] in column chunks of 32 (the GEMM's
        // 12 × 32 tile): each V line is read once per key block, 2 loads per 24 FMAs (the 4-row
        // tile over all columns read V three times, 5 loads per 20 FMAs, from L2).
        let mut c = 0;
        while c < hdp {
            if hdp - c >= 32 {
                pv::<2>(kbp, s.as_ptr(), v.add(c), hdp, acc.as_mut_ptr().add(c), &alpha);
                c += 32;
            } else {
                pv::<1>(kbp, s.as_ptr(), v.add(c), hdp, acc.as_mut_ptr().add(c), &alpha);
                c += 16;
            }
        }
        j0 += kb;
    }
    for r in 0..rows {
        let inv = 1.0 / l[r];
        let dst = out.at((st + i0 + r) * w + h * hd);
        for d in 0..hd {
            *dst.add(d) = acc[r * hdp + d] * inv;
        }
    }
}

/// s[12][32] (row stride KB) = qt [hd][12] · kb [hd][32]; key columns ≥ valid are −∞.
#[inline(always)]
unsafe fn scores(hd: usize, qt: *const f32, kb: *const f32, s: *mut f32, valid: usize) {
    let mut a = [[_mm512_setzero_ps(); 2]; MR];
    for d in 0..hd {
        let k0 = _mm512_loadu_ps(kb.add(d * NR));
        let k1 = _mm512_loadu_ps(kb.add(d * NR + 16));
        for (r, row) in a.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*qt.add(d * MR + r));
            row[0] = _mm512_fmadd_ps(x, k0, row[0]);
            row[1] = _mm512_fmadd_ps(x, k1, row[1]);
        }
    }
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let m0 = _mm512_cmplt_epi32_mask(lanes, _mm512_set1_epi32(valid.min(NR) as i32));
    let m1 = _mm512_cmplt_epi32_mask(_mm512_add_epi32(lanes, _mm512_set1_epi32(16)), _mm512_set1_epi32(valid.min(NR) as i32));
    let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
    for (r, row) in a.iter().enumerate() {
        _mm512_storeu_ps(s.add(r * KB), _mm512_mask_blend_ps(m0, ninf, row[0]));
        _mm512_storeu_ps(s.add(r * KB + 16), _mm512_mask_blend_ps(m1, ninf, row[1]));
    }
}

/// acc[12][16·V] (row stride hdp) = acc·alpha (per row) + p[12][kbp] (row stride KB) · v[kbp][16·V]
/// (row stride hdp).
#[inline(always)]
unsafe fn pv<const V: usize>(kbp: usize, p: *const f32, v: *const f32, hdp: usize, acc: *mut f32, alpha: &[f32; MR]) {
    let mut a = [[_mm512_setzero_ps(); V]; MR];
    for (r, row) in a.iter_mut().enumerate() {
        let al = _mm512_set1_ps(alpha[r]);
        for (c, x) in row.iter_mut().enumerate() {
            *x = _mm512_mul_ps(al, _mm512_loadu_ps(acc.add(r * hdp + c * 16)));
        }
    }
    for j in 0..kbp {
        let mut vv = [_mm512_setzero_ps(); V];
        for (c, x) in vv.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(v.add(j * hdp + c * 16));
        }
        for (r, row) in a.iter_mut().enumerate() {
            let pr = _mm512_set1_ps(*p.add(r * KB + j));
            for c in 0..V {
                row[c] = _mm512_fmadd_ps(pr, vv[c], row[c]);
            }
        }
    }
    for (r, row) in a.iter().enumerate() {
        for (c, x) in row.iter().enumerate() {
            _mm512_storeu_ps(acc.add(r * hdp + c * 16), *x);
        }
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
