//! The multi-row GEMV on AVX-512F: y[r, n] = x[r, k] · W[n, k]ᵀ (+ bias) for 1–16 rows of x (decode,
//! one row per running request). W (bf16 [n, k]) is streamed from memory once per call, split over n
//! across threads, and widened to f32 in registers; the arithmetic is f32 FMA.
//!
//! Widening: 32 bf16 loaded as 16 u32 lanes hold element 2i in the low half and 2i+1 in the high half
//! of lane i; `lane << 16` is element 2i as f32 and `lane & 0xFFFF0000` is 2i+1. x is repacked once
//! per call into the same even/odd order (`Packed`), so 64 bytes of W cost one load, one shift and one
//! and, whatever the row count.
//!
//! Register blocking (32 zmm): a group of G W rows (widened: 2G registers) against a tile of R rows of
//! x (2 registers, loaded per row) with G·R accumulators; G·(R + 2) ≤ 32 picks G from R (`columns`).
//! Up to 8 rows of x form one tile: at 8 rows, G = 3 W loads and 16 x loads per 48 FMAs (G = 2 was
//! 2 + 16 per 32; with W read from L2, one thread: 98 → 124–143 GFLOP/s, the FMA chains' rate measured
//! beside it 136–143, on the Sapphire Rapids VM), as long as x comes from L1, hence the k-blocked walk for tiles of 3+ rows
//! (`Tile::run`). 9–16 rows run as two balanced tiles over the same 48 W rows, the second reading
//! them from L2.
//!
//! Streaming: each task walks its W rows in order and prefetches (to L2) every line it will read, one
//! line per W row per 32 columns, a short way ahead in the same rows: one KC chunk ahead in the
//! blocked walk, STREAM_AHEAD columns ahead in the streamed one, wrapping into the next block or
//! group. Without software prefetch the 8-row kernel is ~1.3× slower (the L2 streamer alone follows
//! a row walked 512 bytes at a time poorly). On the Sapphire Rapids VM one core reads at most ~15 GB/s
//! (half the 2-core ~30), and the 8-row kernel's arithmetic needs about as long as that read, so the
//! 8-row call is as fast as the two overlap: the previous walk, which prefetched the next block or
//! group at the same columns, left each task's first block unprefetched and twice the pages in
//! flight; the present one is 0.83–0.86× its time at 8 rows and 0.96–0.98× at 1 row (docs/
//! performance.md, "Decode GEMV: memory and arithmetic overlapping").
//!
//! Summation order of one output (independent of the row count and of G, so a request's logits do
//! not depend on what runs beside it): 16 lanes over k in steps of 32 (even element, then odd), the
//! 16 lanes reduced, then the k % 32 tail in order, then the bias.
use crate::backend::cpu::matmul::SharedOut;
use half::bf16;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// Rows of x per tile at most (accumulator registers).
const MAX_TILE: usize = 8;

/// x repacked per tile of rows: for each 32-column step, the tile's rows one after another, each as
/// [x0 x2 … x30 | x1 x3 … x31]. The x loads of one step are then one contiguous run.
struct Packed {
    data: Vec<f32>,
    /// (first row, rows, offset in `data`) per tile.
    tiles: Vec<(usize, usize, usize)>,
}

/// Tiles of ≤ 8 rows, balanced (9 → 5 + 4, 16 → 8 + 8).
fn tile_sizes(m: usize) -> Vec<(usize, usize)> {
    let count = m.div_ceil(MAX_TILE);
    let (base, extra) = (m / count, m % count);
    let mut out = Vec::with_capacity(count);
    let mut r0 = 0;
    for t in 0..count {
        let r = base + usize::from(t < extra);
        out.push((r0, r));
        r0 += r;
    }
    out
}

thread_local! {
    /// The caller thread's buffer for packed x, kept between calls (up to 16 · 6144 floats, 384 KiB:
    /// a fresh allocation that large would be mapped and faulted in on every call).
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `data` is the caller's scratch (taken, so a nested call on this thread gets its own). The packed
/// rows start on a 64-byte boundary: every x load of the kernel (16 per 32 columns at 8 rows) is then
/// one cache line, not a line split (the allocator only promises 16 bytes).
fn pack(x: &[f32], m: usize, k: usize, mut data: Vec<f32>) -> Packed {
    let k32 = k / 32 * 32;
    data.clear();
    data.resize(m * k32 + 16, 0.0);
    let base = (64 - data.as_ptr() as usize % 64) % 64 / 4;
    let mut tiles = Vec::new();
    for (r0, rows) in tile_sizes(m) {
        let off = base + r0 * k32;
        for s in 0..k32 / 32 {
            for r in 0..rows {
                let src = &x[(r0 + r) * k + s * 32..(r0 + r) * k + s * 32 + 32];
                let dst = &mut data[off + (s * rows + r) * 32..off + (s * rows + r) * 32 + 32];
                for i in 0..16 {
                    dst[i] = src[2 * i];
                    dst[16 + i] = src[2 * i + 1];
                }
            }
        }
        tiles.push((r0, rows, off));
    }
    Packed { data, tiles }
}

/// W rows per task: 8 tasks per thread (rayon balances them; fewer, longer tasks keep the streams
/// long), a multiple of 8 rows and at least SUB. Equal tasks, not multiples of SUB: 2048 rows in 15
/// tasks of 144 would leave one thread idle for a fifteenth of the call.
fn rows_per_task(n: usize) -> usize {
    let tasks = 8 * rayon::current_num_threads().max(1);
    (n.div_ceil(tasks).div_ceil(8) * 8).max(SUB)
}

/// Caller: AVX-512F is present; shapes checked (1 ≤ m ≤ 16, k ≥ 1).
pub(super) fn gemv(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    let packed = pack(x, m, k, SCRATCH.take());
    let per = rows_per_task(n);
    let out = SharedOut(y.as_mut_ptr());
    let tasks = n.div_ceil(per);
    let run = |t: usize| {
        let (j0, j1) = (t * per, n.min((t + 1) * per));
        // SAFETY: AVX-512F was detected by the caller; the task writes y[.., j0..j1] only.
        unsafe { columns(&packed, x, k, w, j0, j1, bias, out, n) };
    };
    if tasks == 1 {
        run(0);
    } else {
        (0..tasks).into_par_iter().for_each(run);
    }
    SCRATCH.set(packed.data);
}

/// Several products of the same x (q/k/v, gate/up): `parts` (W [n, k], y [m, n]) in one parallel
/// pass: x packed once and one fork-join instead of one per matrix, the tasks sized over all the
/// parts' rows (the last task of a part may be shorter). Each output is computed exactly as `gemv`
/// computes it. Caller: AVX-512F is present; shapes checked.
pub(super) fn gemv_fused(x: &[f32], m: usize, k: usize, parts: &mut [(&[bf16], usize, &mut [f32])]) {
    let packed = pack(x, m, k, SCRATCH.take());
    let per = rows_per_task(parts.iter().map(|p| p.1).sum());
    super::gemv::for_each_fused_task(parts, per, |w, n, out, j0, j1| {
        // SAFETY: AVX-512F was detected by the caller; the task writes y_i[.., j0..j1] only.
        unsafe { columns(&packed, x, k, w, j0, j1, None, out, n) };
    });
    SCRATCH.set(packed.data);
}

/// Output columns j0..j1 for every tile of x, SUB W rows at a time (all tiles over the same W rows,
/// the second from L2: 48 rows are 192–576 KiB at k = 2048–6144).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn columns(p: &Packed, x: &[f32], k: usize, w: &[bf16], j0: usize, j1: usize, bias: Option<&[f32]>, out: SharedOut, n: usize) {
    let mut s0 = j0;
    while s0 < j1 {
        let s1 = j1.min(s0 + SUB);
        for &(r0, rows, off) in &p.tiles {
            // The first tile streams W from memory (and prefetches); a second finds it in L2.
            let t = Tile { xd: p.data.as_ptr().add(off), x: x.as_ptr().add(r0 * k), k, w: w.as_ptr(), bias, out: SharedOut(out.at(r0 * n)), n, prefetch: r0 == 0 };
            // G from R: G·(R + 2) ≤ 32 registers with the mask (G·(R + 2) ≤ 29 leaves room for it, and
            // G = 3 at R = 8 uses all 32: the compiler folds the mask into a broadcast operand), and G
            // divides SUB.
            match rows {
                1 => t.run::<8, 1>(s0, s1),
                2 => t.run::<6, 2>(s0, s1),
                3 => t.run::<4, 3>(s0, s1),
                4 => t.run::<4, 4>(s0, s1),
                5 => t.run::<4, 5>(s0, s1),
                6 => t.run::<3, 6>(s0, s1),
                7 => t.run::<3, 7>(s0, s1),
                _ => t.run::<3, 8>(s0, s1),
            }
        }
        s0 = s1;
    }
}

/// W rows per pass of the tiles (a multiple of every G below; a task's last pass may be shorter).
const SUB: usize = 48;
/// Columns of k per chunk in the blocked walk: x of an 8-row tile over 256 columns is 8 KiB (L1).
const KC: usize = 256;
/// W groups per block in the blocked walk (their accumulators: 4 · G · R zmm ≤ 6 KiB). A block of 4
/// groups of 3 rows touches 12 W rows (12 pages at k = 2048) at a time; 8 groups measured 2–4 %
/// slower at 8 rows (more concurrent streams for the same chunk).
const NG: usize = 4;
/// How far ahead the streamed walk (1–2 rows of x) prefetches, in columns of the same W rows: 512
/// bf16 = 1 KiB, 16 lines per row, 128 lines for a group of 8 rows. The next group is reached by
/// wrapping (the last 512 columns of a group prefetch the first 512 of the next).
const STREAM_AHEAD: usize = 512;

/// One tile of rows of x and where its outputs go.
struct Tile<'a> {
    /// The tile's packed x (`Packed`), [k32 / 32][R][32].
    xd: *const f32,
    /// The tile's first row of the original x [R, k] (the k % 32 tail).
    x: *const f32,
    k: usize,
    w: *const bf16,
    bias: Option<&'a [f32]>,
    /// y at the tile's first row; row r, column j at r · n + j.
    out: SharedOut,
    n: usize,
    prefetch: bool,
}

impl Tile<'_> {
    /// W rows j0..j1. One or two rows of x (≤ 24 KiB at k = 6144) stay in L1 over a whole W row: groups
    /// of G rows walk all of k in turn (`streamed`). More rows would stream x from L2 for every group
    /// (64 KiB for 8 rows at k = 2048), so those walk k in chunks of KC over a block of NG groups, the
    /// accumulators kept between chunks (`blocked`): x's chunk stays in L1 for the block.
    #[inline(always)]
    unsafe fn run<const G: usize, const R: usize>(&self, j0: usize, j1: usize) {
        if R <= 2 {
            self.streamed::<G, R>(j0, j1);
        } else {
            self.blocked::<G, R>(j0, j1);
        }
    }

    #[inline(always)]
    unsafe fn streamed<const G: usize, const R: usize>(&self, j0: usize, j1: usize) {
        let k32 = self.k / 32 * 32;
        let mut j = j0;
        while j + G <= j1 {
            let mut acc = [[_mm512_setzero_ps(); R]; G];
            // Prefetch: the same rows STREAM_AHEAD columns further, then (over the group's last
            // STREAM_AHEAD columns) the next group's first columns. Only a task's first 1 KiB per row
            // goes unprefetched (one group ahead at the same columns left a whole group: 32 KiB).
            let p = STREAM_AHEAD.min(k32);
            self.columns::<G, R>(j, 0, k32 - p, &mut acc, j, p as isize);
            self.columns::<G, R>(j, k32 - p, k32, &mut acc, j + G, p as isize - k32 as isize);
            self.finish::<G, R>(j, &acc);
            j += G;
        }
        while j < j1 {
            let mut acc = [[_mm512_setzero_ps(); R]; 1];
            self.columns::<1, R>(j, 0, k32, &mut acc, j + 1, 0);
            self.finish::<1, R>(j, &acc);
            j += 1;
        }
    }

    #[inline(always)]
    unsafe fn blocked<const G: usize, const R: usize>(&self, j0: usize, j1: usize) {
        let k32 = self.k / 32 * 32;
        let mut acc = [[[_mm512_setzero_ps(); R]; G]; NG];
        let mut jb = j0;
        while jb + G <= j1 {
            let groups = ((j1 - jb) / G).min(NG);
            for a in acc.iter_mut().take(groups) {
                *a = [[_mm512_setzero_ps(); R]; G];
            }
            // Prefetch one chunk ahead in walk order: while chunk c of the block is read, chunk c + 1
            // of the same rows (the next block's chunk 0 during the last chunk). Each W row is then
            // prefetched in order, one chunk (NG·G rows × 512 B = 6 KiB at 8 rows) before its use,
            // and only the first chunk of a task goes unprefetched. Prefetching the next block at
            // the same columns (the previous walk) left a task's whole first block unprefetched and
            // kept twice as many pages in flight: at 8 rows, 8–12 % slower (docs/performance.md).
            let chunks = k32.div_ceil(KC);
            let mut c0 = 0;
            while c0 < k32 {
                let c1 = (c0 + KC).min(k32);
                let next = c0 / KC + 1;
                let (pj, pc) = (jb + next / chunks * groups * G, next % chunks * KC);
                for (g, a) in acc.iter_mut().enumerate().take(groups) {
                    self.columns::<G, R>(jb + g * G, c0, c1, a, pj + g * G, pc as isize - c0 as isize);
                }
                c0 = c1;
            }
            for (g, a) in acc.iter().enumerate().take(groups) {
                self.finish::<G, R>(jb + g * G, a);
            }
            jb += groups * G;
        }
        while jb < j1 {
            let mut a = [[_mm512_setzero_ps(); R]; 1];
            self.columns::<1, R>(jb, 0, k32, &mut a, jb + 1, 0);
            self.finish::<1, R>(jb, &a);
            jb += 1;
        }
    }

    /// Adds columns c0..c1 (multiples of 32) of W rows j..j+G times the tile's R rows to `acc`, and
    /// prefetches (to L2) columns c0 + shift..c1 + shift of W rows `ahead`..`ahead`+G, one line per
    /// row per 32 columns: the callers choose them so that each line of W is prefetched once, some
    /// time before it is read (past the end of W the hint is harmless).
    #[inline(always)]
    unsafe fn columns<const G: usize, const R: usize>(&self, j: usize, c0: usize, c1: usize, acc: &mut [[__m512; R]; G], ahead: usize, shift: isize) {
        let k = self.k;
        let hi_mask = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
        let wp = self.w.add(j * k);
        let pf = self.w.wrapping_add(ahead * k).wrapping_offset(shift);
        let mut a = *acc;
        let mut xs = self.xd.add(c0 / 32 * R * 32);
        let mut c = c0;
        while c < c1 {
            if self.prefetch {
                for q in 0..G {
                    _mm_prefetch::<_MM_HINT_T1>(pf.wrapping_add(q * k + c) as *const i8);
                }
            }
            let mut we = [_mm512_setzero_ps(); G];
            let mut wo = [_mm512_setzero_ps(); G];
            for q in 0..G {
                let v = _mm512_loadu_si512(wp.add(q * k + c) as *const __m512i);
                we[q] = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v));
                wo[q] = _mm512_castsi512_ps(_mm512_and_si512(v, hi_mask));
            }
            for r in 0..R {
                let xe = _mm512_loadu_ps(xs.add(r * 32));
                let xo = _mm512_loadu_ps(xs.add(r * 32 + 16));
                for q in 0..G {
                    a[q][r] = _mm512_fmadd_ps(we[q], xe, a[q][r]);
                    a[q][r] = _mm512_fmadd_ps(wo[q], xo, a[q][r]);
                }
            }
            xs = xs.add(R * 32);
            c += 32;
        }
        *acc = a;
    }

    /// Reduces the accumulators of W rows j..j+G, adds the k % 32 tail in order and the bias, stores.
    #[inline(always)]
    unsafe fn finish<const G: usize, const R: usize>(&self, j: usize, acc: &[[__m512; R]; G]) {
        let k = self.k;
        let k32 = k / 32 * 32;
        let wp = self.w.add(j * k);
        for (q, aq) in acc.iter().enumerate() {
            let b = self.bias.map_or(0.0, |b| b[j + q]);
            for (r, a) in aq.iter().enumerate() {
                let mut v = _mm512_reduce_add_ps(*a);
                for i in k32..k {
                    v += *self.x.add(r * k + i) * (*wp.add(q * k + i)).to_f32();
                }
                *self.out.at(r * self.n + j + q) = v + b;
            }
        }
    }
}
