//! The AVX-512 bf16 GEMV as it was at main dc40eb2 (frozen copy, `gemv` only): the "base" side of
//! `KERNEL=base` A/B runs in `gemv_rows`, so a change to `gemv_avx512.rs` is timed call by call
//! against what it replaces under the same load. Not used by the engine.
#![allow(dead_code, clippy::all)]

/// y[i] pointer shared by disjoint tasks (as `matmul::SharedOut`).
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}
impl SharedOut {
    fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}
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

/// `data` is the caller's scratch (taken, so a nested call on this thread gets its own).
fn pack(x: &[f32], m: usize, k: usize, mut data: Vec<f32>) -> Packed {
    let k32 = k / 32 * 32;
    data.clear();
    data.resize(m * k32, 0.0);
    let mut tiles = Vec::new();
    for (r0, rows) in tile_sizes(m) {
        let off = r0 * k32;
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
pub fn gemv(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
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
            // G from R: G·(R + 2) ≤ 29 registers, and G divides SUB.
            match rows {
                1 => t.run::<8, 1>(s0, s1),
                2 => t.run::<6, 2>(s0, s1),
                3 => t.run::<4, 3>(s0, s1),
                4 => t.run::<4, 4>(s0, s1),
                5 => t.run::<4, 5>(s0, s1),
                6 => t.run::<3, 6>(s0, s1),
                7 => t.run::<3, 7>(s0, s1),
                _ => t.run::<2, 8>(s0, s1),
            }
        }
        s0 = s1;
    }
}

/// W rows per pass of the tiles (a multiple of every G below; a task's last pass may be shorter).
const SUB: usize = 48;
/// Columns of k per chunk in the blocked walk: x of an 8-row tile over 256 columns is 8 KiB (L1).
const KC: usize = 256;
/// W groups per block in the blocked walk (their accumulators: 8 · G · R zmm ≤ 8 KiB).
const NG: usize = 8;

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
            // Prefetch: the next group's rows, at the same columns.
            self.columns::<G, R>(j, 0, k32, &mut acc, j + G);
            self.finish::<G, R>(j, &acc);
            j += G;
        }
        while j < j1 {
            let mut acc = [[_mm512_setzero_ps(); R]; 1];
            self.columns::<1, R>(j, 0, k32, &mut acc, j + 1);
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
            let mut c0 = 0;
            while c0 < k32 {
                let c1 = (c0 + KC).min(k32);
                for (g, a) in acc.iter_mut().enumerate().take(groups) {
                    // Prefetch: the next block's rows (one block ahead), at the same columns.
                    self.columns::<G, R>(jb + g * G, c0, c1, a, jb + (groups + g) * G);
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
            self.columns::<1, R>(jb, 0, k32, &mut a, jb + 1);
            self.finish::<1, R>(jb, &a);
            jb += 1;
        }
    }

    /// Adds columns c0..c1 (multiples of 32) of W rows j..j+G times the tile's R rows to `acc`, and
    /// prefetches (to L2) the same columns of W rows `ahead`..`ahead`+G: each line of W is prefetched
    /// once, a group or a block before it is read (past the end of W the hint is harmless).
    #[inline(always)]
    unsafe fn columns<const G: usize, const R: usize>(&self, j: usize, c0: usize, c1: usize, acc: &mut [[__m512; R]; G], ahead: usize) {
        let k = self.k;
        let hi_mask = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
        let wp = self.w.add(j * k);
        let pf = self.w.wrapping_add(ahead * k);
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
