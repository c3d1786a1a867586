//! AVX-512 causal GQA attention, f32, head_dim a multiple of 16. Two shapes of work:
//! * ≥ 12 new rows (prefill): per (head, tile of 12 query rows) two register-blocked products like
//!   the GEMM's, S = Q·Kᵀ and O = P·V, with a vectorised softmax in between; K and V are read once
//!   per tile, not once per row. Per call, K is transposed per kv head into [d][ctx] (32 consecutive
//!   keys form one vector pair) and V copied per kv head into contiguous [ctx][d] (the cache
//!   interleaves kv heads, so in place every key would be a new page).
//! * fewer rows (decode): per (row, kv group) the group's heads share each K and V row load.
use super::attention::AttnShape;
use super::matmul::SharedOut;
use super::norm::exp512;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// Query rows per prefill tile; fewer new rows take the per-row (decode) path.
pub(super) const MR: usize = 12;
const NR: usize = 32;

/// Caller checked: AVX-512F present, head_dim % 16 == 0, shapes consistent, len ≥ 1.
pub(super) fn causal_attention(q: &[f32], len: usize, start: usize, k: &[f32], v: &[f32], s: AttnShape, out: &mut [f32]) {
    if len >= MR {
        tiled(q, len, start, k, v, s, out);
    } else {
        let group_d = s.heads / s.kv_heads * s.head_dim;
        out.par_chunks_mut(group_d).enumerate().for_each_init(Vec::new, |scores, (t, o)| {
            // SAFETY: AVX-512F checked by the caller; indices stay within the checked shapes.
            unsafe { row_task(q, start, k, v, s, t / s.kv_heads, t % s.kv_heads..t % s.kv_heads + 1, o, scores) };
        });
    }
}

fn tiled(q: &[f32], len: usize, start: usize, k: &[f32], v: &[f32], s: AttnShape, out: &mut [f32]) {
    let (d, kv_dim) = (s.head_dim, s.kv_heads * s.head_dim);
    let ctx_all = start + len;
    let ctxp = ctx_all.div_ceil(NR) * NR;
    // Kᵀ per kv head: [d][ctxp], keys past ctx_all zero. Copied in 16-key blocks so each write is a line.
    let mut kt = vec![0f32; s.kv_heads * d * ctxp];
    kt.par_chunks_mut(d * ctxp).enumerate().for_each(|(g, ktg)| {
        for j0 in (0..ctx_all).step_by(16) {
            for t in 0..d {
                for j in j0..ctx_all.min(j0 + 16) {
                    ktg[t * ctxp + j] = k[j * kv_dim + g * d + t];
                }
            }
        }
    });
    // V per kv head made contiguous, [kv_heads][ctx][d], so P·V streams it without a page per key.
    let mut vp = vec![0f32; s.kv_heads * ctx_all * d];
    vp.par_chunks_mut(ctx_all * d).enumerate().for_each(|(g, vg)| {
        for (j, dst) in vg.chunks_mut(d).enumerate() {
            dst.copy_from_slice(&v[j * kv_dim + g * d..j * kv_dim + (g + 1) * d]);
        }
    });
    let tiles = len.div_ceil(MR);
    let o = SharedOut(out.as_mut_ptr());
    let (kt, vp) = (&kt, &vp);
    // Head-major task order: consecutive tasks reuse the same kv head's Kᵀ and V from cache.
    (0..s.heads * tiles).into_par_iter().for_each_init(
        || (vec![0f32; d * MR], vec![0f32; MR * ctxp], vec![0f32; ctxp * MR]),
        |(aq, sbuf, pp), t| {
            // SAFETY: AVX-512F checked by the caller; each task writes its own (rows, head) of out.
            unsafe { tile_task(q, len, start, kt, ctxp, vp, s, t / tiles, (t % tiles) * MR, o, aq, sbuf, pp) };
        },
    );
}

#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_task(q: &[f32], len: usize, start: usize, kt: &[f32], ctxp: usize, vp: &[f32], s: AttnShape, h: usize, i0: usize, out: SharedOut, aq: &mut [f32], sbuf: &mut [f32], pp: &mut [f32]) {
    let d = s.head_dim;
    let g = h / (s.heads / s.kv_heads);
    let rows = MR.min(len - i0);
    let ctx = start + i0 + rows; // keys seen by the tile's last row
    let nctx = ctx.div_ceil(NR) * NR;
    for t in 0..d {
        for r in 0..MR {
            aq[t * MR + r] = if r < rows { q[((i0 + r) * s.heads + h) * d + t] } else { 0.0 };
        }
    }
    // S [MR][nctx] = Q·Kᵀ / √d
    let scale = _mm512_set1_ps(1.0 / (d as f32).sqrt());
    let ktg = kt.as_ptr().add(g * d * ctxp);
    for p in 0..nctx / NR {
        let acc = micro(d, aq.as_ptr(), ktg.add(p * NR), ctxp, 0xFFFF);
        for (r, a) in acc.iter().enumerate() {
            let dst = sbuf.as_mut_ptr().add(r * nctx + p * NR);
            _mm512_storeu_ps(dst, _mm512_mul_ps(a[0], scale));
            _mm512_storeu_ps(dst.add(16), _mm512_mul_ps(a[1], scale));
        }
    }
    // Row softmax over its causal keys, written transposed into P [ctx][MR] (zeros past each row's keys).
    let mut inv = [0f32; MR];
    for (r, inv_r) in inv.iter_mut().enumerate() {
        let valid = if r < rows { start + i0 + r + 1 } else { 0 };
        let row = &mut sbuf[r * nctx..r * nctx + nctx];
        if valid > 0 {
            *inv_r = 1.0 / softmax_exp(&mut row[..valid]);
        }
        for j in 0..ctx {
            pp[j * MR + r] = if j < valid { row[j] } else { 0.0 };
        }
    }
    // O [MR][d] = P·V / Σ, in panels of 32 (or a last 16) output dims.
    let vg = vp.as_ptr().add(g * (len + start) * d);
    for p in 0..d.div_ceil(NR) {
        let wide = d - p * NR > 16;
        let acc = micro(ctx, pp.as_ptr(), vg.add(p * NR), d, if wide { 0xFFFF } else { 0 });
        for (r, a) in acc.iter().enumerate().take(rows) {
            let dst = out.at(((i0 + r) * s.heads + h) * d + p * NR);
            let f = _mm512_set1_ps(inv[r]);
            _mm512_storeu_ps(dst, _mm512_mul_ps(a[0], f));
            if wide {
                _mm512_storeu_ps(dst.add(16), _mm512_mul_ps(a[1], f));
            }
        }
    }
}

/// acc[i] = Σ_kk a[kk][i] · b[kk·ldb .. +32] for 12 rows i: a is [kc][12], b rows are 32 floats
/// (the second 16 only where `hi` is set).
#[inline(always)]
unsafe fn micro(kc: usize, a: *const f32, b: *const f32, ldb: usize, hi: __mmask16) -> [[__m512; 2]; MR] {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for kk in 0..kc {
        let b0 = _mm512_loadu_ps(b.add(kk * ldb));
        let b1 = _mm512_maskz_loadu_ps(hi, b.add(kk * ldb + 16));
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*a.add(kk * MR + i));
            row[0] = _mm512_fmadd_ps(av, b0, row[0]);
            row[1] = _mm512_fmadd_ps(av, b1, row[1]);
        }
    }
    acc
}

/// x ← exp(x − max x) in place; returns the sum.
#[inline(always)]
unsafe fn softmax_exp(x: &mut [f32]) -> f32 {
    let n = x.len();
    let tail = |c: usize| -> __mmask16 { if n - c >= 16 { 0xFFFF } else { ((1u32 << (n - c)) - 1) as __mmask16 } };
    let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
    for c in (0..n).step_by(16) {
        mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, tail(c), x.as_ptr().add(c)));
    }
    let max = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    let mut sum = _mm512_setzero_ps();
    for c in (0..n).step_by(16) {
        let m = tail(c);
        let e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x.as_ptr().add(c)), max));
        _mm512_mask_storeu_ps(x.as_mut_ptr().add(c), m, e);
        sum = _mm512_mask_add_ps(sum, m, sum, e);
    }
    _mm512_reduce_add_ps(sum)
}

/// Decode attention of several sequences in one parallel pass (each with fewer than MR new rows),
/// every output exactly what the sequence alone gives (`row_task`'s order does not depend on how
/// the heads are split into tasks). One fork-join for the whole batch instead of one per sequence.
///
/// Tasks are (sequence, query row, span of kv groups). The cache interleaves kv heads: one key is
/// 4 KiB at 2B (8 groups × 128 floats), each key a new page, and it comes from DRAM (the step's
/// weights evicted it), so the reads are latency-bound: `row_task` prefetches a few keys ahead
/// (8 rows at a 33-token context, 28 layers, one thread: 7.7–8.1 ms a step with one group per
/// task, 6.4–7.0 with wider spans; without the prefetch 8.2–9.1 ms; examples/decode_attention on a
/// loaded machine). A task takes as many groups as still leaves 2 tasks per thread: all 8 for 8
/// rows on 2 threads, 2 for one row. Tasks are then grouped into pieces of at least
/// MIN_PIECE_FLOPS, so a short context runs on the calling thread (one row at 32 tokens: ~0.3 M
/// flops a layer).
/// Caller checked: AVX-512F present, head_dim % 16 == 0, each row's shapes consistent, len < MR.
pub(super) fn decode_rows(rows: Vec<super::attention::AttnRow<'_>>, s: AttnShape) {
    let group_d = s.heads / s.kv_heads * s.head_dim;
    let new_rows: usize = rows.iter().map(|r| r.out.len() / (s.heads * s.head_dim)).sum();
    // spans per row: the fewest that give 2 tasks per thread, rounded up to a divisor of kv_heads
    let want = (2 * rayon::current_num_threads()).div_ceil(new_rows.max(1)).clamp(1, s.kv_heads);
    let spans = (want..=s.kv_heads).find(|d| s.kv_heads.is_multiple_of(*d)).unwrap_or(s.kv_heads);
    let span = s.kv_heads / spans; // kv groups per task
    let mut inputs = Vec::with_capacity(rows.len());
    let mut tasks: Vec<(usize, usize, &mut [f32])> = Vec::new(); // (sequence, t = row · spans + span index, out)
    let mut flops = 0usize;
    for (ri, r) in rows.into_iter().enumerate() {
        let len = r.out.len() / (s.heads * s.head_dim);
        // scores and P·V: 4 flops per (head, key, dim); the keys seen grow by one per row
        flops += 4 * s.heads * s.head_dim * (len * r.start + len * (len + 1) / 2);
        tasks.extend(r.out.chunks_mut(span * group_d).enumerate().map(|(t, o)| (ri, t, o)));
        inputs.push((r.q, r.start, r.k, r.v));
    }
    if tasks.is_empty() {
        return;
    }
    let per_task = (flops / tasks.len()).max(1);
    let min_len = (MIN_PIECE_FLOPS / per_task).max(1);
    tasks.par_iter_mut().with_min_len(min_len).for_each_init(Vec::new, |scores, (ri, t, o)| {
        let (q, start, k, v) = inputs[*ri];
        let g0 = *t % spans * span;
        // SAFETY: AVX-512F checked by the caller; indices stay within the checked shapes.
        unsafe { row_task(q, start, k, v, s, *t / spans, g0..g0 + span, o, scores) };
    });
}

/// Smallest piece of decode attention worth handing to another thread (~50 µs of work): a fork
/// costs a wake-up, and on a loaded machine a thread that is descheduled while holding a piece
/// holds the whole step.
const MIN_PIECE_FLOPS: usize = 1 << 20;

/// Keys (values) prefetched ahead of the one being read in `row_task`.
const PF: usize = 4;

/// Query row i, kv groups `groups`: their heads (contiguous in q and out) against keys 0..=start+i.
/// Per output the order is fixed whatever the span: a score is one 16-lane FMA chain over d then
/// reduced; the softmax per head; P·V summed over the keys in order.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn row_task(q: &[f32], start: usize, k: &[f32], v: &[f32], s: AttnShape, i: usize, groups: std::ops::Range<usize>, out: &mut [f32], scores: &mut Vec<f32>) {
    let (d, kv_dim) = (s.head_dim, s.kv_heads * s.head_dim);
    let group = s.heads / s.kv_heads;
    let nh = groups.len() * group; // heads of the task
    let ctx = start + i + 1;
    let scale = 1.0 / (d as f32).sqrt();
    let qp = q.as_ptr().add((i * s.heads + groups.start * group) * d);
    let off = groups.start * d; // the task's floats within a key row: [groups.len() · d]
    scores.clear();
    // [nh][ctx] scores, then the heads' 1 / Σ (no allocation per task)
    scores.resize(nh * ctx + nh, 0.0);
    // The task's part of each key and value row is requested PF keys ahead (from DRAM, see decode_rows).
    let lines = groups.len() * d / 16;
    let ahead = |base: *const f32, j: usize| {
        if j < ctx {
            for l in 0..lines {
                _mm_prefetch::<_MM_HINT_T0>(base.add(j * kv_dim + off + l * 16) as *const i8);
            }
        }
    };
    for j in 0..PF {
        ahead(k.as_ptr(), j);
    }
    for j in 0..ctx {
        ahead(k.as_ptr(), j + PF);
        let kr = k.as_ptr().add(j * kv_dim + off);
        for hh in 0..nh {
            let kh = kr.add(hh / group * d);
            let mut acc = _mm512_setzero_ps();
            for c in (0..d).step_by(16) {
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(qp.add(hh * d + c)), _mm512_loadu_ps(kh.add(c)), acc);
            }
            scores[hh * ctx + j] = _mm512_reduce_add_ps(acc) * scale;
        }
    }
    for j in 0..PF {
        ahead(v.as_ptr(), j);
    }
    for hh in 0..nh {
        scores[nh * ctx + hh] = 1.0 / softmax_exp(&mut scores[hh * ctx..(hh + 1) * ctx]);
    }
    out.fill(0.0);
    let op = out.as_mut_ptr();
    for j in 0..ctx {
        ahead(v.as_ptr(), j + PF);
        let vr = v.as_ptr().add(j * kv_dim + off);
        for hh in 0..nh {
            let vh = vr.add(hh / group * d);
            let p = _mm512_set1_ps(scores[hh * ctx + j]);
            for c in (0..d).step_by(16) {
                let o = op.add(hh * d + c);
                _mm512_storeu_ps(o, _mm512_fmadd_ps(p, _mm512_loadu_ps(vh.add(c)), _mm512_loadu_ps(o)));
            }
        }
    }
    for hh in 0..nh {
        let f = scores[nh * ctx + hh];
        for x in &mut out[hh * d..(hh + 1) * d] {
            *x *= f;
        }
    }
}
