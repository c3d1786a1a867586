//! The multi-row GEMV on AMX-BF16 tiles: y[r, n] = x[r, k] · W[n, k]ᵀ (+ bias) for 1–16 rows of x
//! (decode), in f32 arithmetic on the bf16 weights as stored. Opt-in (`gemv::kernel`,
//! OVIS_CPU_GEMV=amx): on the Sapphire Rapids test VM one row runs at ~0.75× the AVX-512 kernel
//! (docs/performance.md, "AMX decode GEMV").
//!
//! f32 arithmetic on a bf16 unit: each x value is split exactly into three bf16 terms
//! (`bf16_split`: x = hi + mid + lo) and `tdpbf16ps` makes exact products (8 × 8 significant bits)
//! and sums them in f32, so W·x = W·hi + W·mid + W·lo with only the additions rounded. The three
//! terms are three columns of the B operand (x row r, term t: column 3r + t), each with its own f32
//! accumulator; an output is (hi + (mid + lo)) + bias. Measured error against f64: at or below the
//! AVX-512 kernel's (tests/cpu_gemv_rows.rs).
//!
//! Operands (palette 1): A = 16 rows of W × 32 k (64 bytes of each row, `Source`: copied through a
//! small L1 buffer, W is never repacked in memory); B = the 3m columns of x, packed once per call in
//! VNNI pairs, in 1–3 tiles of ≤ 16 columns (`pack`); C = 16 W rows × those columns, f32. Each
//! output depends only on its W row and its x row, and each C element sums the same products in the
//! same order whatever m is: an m-row call gives every row bit for bit what the row gives alone.
//!
//! Per 32-k step and 16 W rows: one tile load of W (1 KiB) and 1–3 `tdpbf16ps` (m ≤ 5, ≤ 10, ≤ 16).
//! Passes of one 16-row group (two with 2 B tiles), each over all of k; tasks split n across threads
//! in multiples of 32 rows.
use super::bf16_split::split3_x16;
use super::gemm_amx::TileConfig;
use super::matmul::SharedOut;
use half::bf16;
use rayon::prelude::*;
use std::arch::asm;
use std::arch::x86_64::*;

/// Whether this CPU and process can run the kernel: AVX-512F/BW (packing, output) and the AMX tile
/// permission (granted once for the process by `precision::bf16_support`).
pub(super) fn available() -> bool {
    static A: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *A.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && super::precision::bf16_support().path == Some(super::precision::Bf16Path::Amx)
    })
}

/// B tiles per 32-k step: the 3m columns (x row r, term t at column 3r + t) in tiles of 16.
fn b_tiles(m: usize) -> usize {
    (3 * m).div_ceil(16)
}

/// Columns of B tile b (16, the last one the rest).
fn b_cols(m: usize, b: usize) -> usize {
    (3 * m - 16 * b).min(16)
}

/// u16 per 32-k step of packed x: 16 pairs × 3m columns × 2.
fn step_len(m: usize) -> usize {
    96 * m
}

thread_local! {
    /// Packed x of the calling thread (up to 16 · 6144 · 3 u16 = 576 KiB; kept between calls).
    static XT: std::cell::Cell<Vec<u16>> = const { std::cell::Cell::new(Vec::new()) };
    /// A task's zero-padded copies of W rows (a partial group, the k % 32 tail).
    static PAD: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// x [m, k] → its three bf16 terms in B-tile order: per 32-k step, tile b at 512b u16, [16 pairs]
/// [b_cols][2]; column 3r + t holds term t of x row r; zero past k.
fn pack(x: &[f32], m: usize, k: usize, mut data: Vec<u16>) -> Vec<u16> {
    let nk = k.div_ceil(32);
    data.clear();
    data.resize(nk * step_len(m), 0);
    for kb in 0..nk {
        // SAFETY: AVX-512F/BW checked by `available` (callers); reads x[..m][32kb..min(32kb+32, k)],
        // writes inside step kb of data.
        unsafe { pack_step(x.as_ptr(), m, k, kb, data.as_mut_ptr().add(kb * step_len(m))) };
    }
    data
}

/// Step kb of every x row: the 16 (even, odd) pairs of each term as 16 u32 lanes, one vector per
/// column (3r + t), then per B tile its ≤ 16 columns transposed into [pair][column] rows.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_step(x: *const f32, m: usize, k: usize, kb: usize, dst: *mut u16) {
    let c0 = kb * 32;
    let valid = (k - c0).min(32);
    let mask = |v: usize| if v >= 16 { 0xffffu16 } else { ((1u32 << v) - 1) as u16 };
    // The top u16 of every u32 lane of a then b: 32 bf16 in column order = 16 (even, odd) pairs.
    let idx = _mm512_set_epi16(
        63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1,
    );
    let mut cols = [_mm512_setzero_si512(); 48];
    for r in 0..m {
        let xr = x.add(r * k);
        let a = split3_x16(_mm512_maskz_loadu_ps(mask(valid), xr.add(c0)));
        let b = split3_x16(_mm512_maskz_loadu_ps(mask(valid.saturating_sub(16)), xr.wrapping_add(c0 + 16)));
        for t in 0..3 {
            cols[3 * r + t] = _mm512_permutex2var_epi16(a[t], idx, b[t]);
        }
    }
    for b in 0..b_tiles(m) {
        let nc = b_cols(m, b);
        let d = dst.add(512 * b) as *mut u32;
        let block: [__m512i; 16] = cols[16 * b..16 * b + 16].try_into().unwrap();
        for (p, row) in super::gemm_pack::transpose16(block).iter().enumerate() {
            _mm512_mask_storeu_epi32(d.add(p * nc) as *mut i32, mask(nc), *row);
        }
    }
}

/// How a call runs, from m: B tiles per step (1–3) and W groups per pass (2 with 2 B tiles, else 1;
/// one group with 2 B tiles measured slower, two with 1 B tile too).
#[derive(Clone, Copy)]
struct Shape {
    m: usize,
    nb: usize,
    groups: usize,
}

impl Shape {
    fn new(m: usize) -> Self {
        let nb = b_tiles(m);
        Shape { m, nb, groups: if nb == 2 { 2 } else { 1 } }
    }

    /// Palette 1. 1 B tile: tmm0 C, tmm2/4 A (even / odd steps), tmm6/7 B (even / odd steps). 2:
    /// tmm0–3 C (group, tile), tmm4/5 A, tmm6/7 B. 3: tmm0–2 C, tmm3 A, tmm4–6 B. A: 16 rows × 64
    /// bytes; B and C: 16 rows × 4 bytes per column of their B tile.
    fn config(&self) -> TileConfig {
        let b = |i: usize| 4 * b_cols(self.m, i) as u16;
        let widths: [u16; 8] = match self.nb {
            1 => [b(0), 0, 64, 0, 64, 0, b(0), b(0)],
            2 => [b(0), b(1), b(0), b(1), 64, 64, b(0), b(1)],
            _ => [b(0), b(1), b(2), 64, b(0), b(1), b(2), 0],
        };
        let mut c = [0u8; 64];
        c[0] = 1;
        for (t, &w) in widths.iter().enumerate() {
            c[16 + 2 * t..18 + 2 * t].copy_from_slice(&w.to_le_bytes());
            c[48 + t] = if w == 0 { 0 } else { 16 };
        }
        TileConfig(c)
    }
}

/// W rows per task: a multiple of 32, about 4 tasks per thread (rayon balances them on a busy
/// machine; 2 or 8 measured the same within the noise).
fn rows_per_task(n: usize) -> usize {
    let tasks = 4 * rayon::current_num_threads().max(1);
    (n.div_ceil(tasks).div_ceil(32) * 32).max(32)
}

/// Caller: `available()`; shapes checked (1 ≤ m ≤ 16, k ≥ 1).
pub(super) fn gemv(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    let xt = pack(x, m, k, XT.take());
    let per = rows_per_task(n);
    let out = SharedOut(y.as_mut_ptr());
    let run = |t: usize| {
        let (j0, j1) = (t * per, n.min((t + 1) * per));
        // SAFETY: `available()` (caller); the task writes y[.., j0..j1] only.
        unsafe { rows(&xt, m, k, w, n, j0, j1, bias, out) };
    };
    let tasks = n.div_ceil(per);
    if tasks == 1 {
        run(0);
    } else {
        (0..tasks).into_par_iter().for_each(run);
    }
    XT.set(xt);
}

/// `gemv` for several matrices of one x (q/k/v, gate/up): x packed once, one fork-join, tasks sized
/// over all the parts' rows. Each output is computed exactly as `gemv` computes it.
pub(super) fn gemv_fused(x: &[f32], m: usize, k: usize, parts: &mut [(&[bf16], usize, &mut [f32])]) {
    let xt = pack(x, m, k, XT.take());
    let per = rows_per_task(parts.iter().map(|p| p.1).sum());
    super::gemv::for_each_fused_task(parts, per, |w, n, out, j0, j1| {
        // SAFETY: `available()` (caller); the task writes y_i[.., j0..j1] only.
        unsafe { rows(&xt, m, k, w, n, j0, j1, None, out) };
    });
    XT.set(xt);
}

/// A 16-row group of W as the A operand: `main` (stride `ld` bytes) for the k / 32 full steps, `tail`
/// (stride `tail_ld`) for the last partial step when k % 32 ≠ 0.
#[derive(Clone, Copy)]
struct Group {
    main: *const u16,
    ld: usize,
    tail: *const u16,
    tail_ld: usize,
}

/// Steps of W copied per chunk (`Source`): 4 KiB per group (2, 8 and 16 steps measured slower).
const CHUNK: usize = 4;

/// The A operands of a pass. A tile load straight from W rows (stride 2k: at k = 2048 or 6144 all 16
/// rows of a step fall in one L1 set, which holds 12 lines) took about twice as long as one of 16
/// contiguous lines, so each group's next `ch` steps are first copied with ordinary 64-byte loads
/// (many in flight, each row read in address order) into a contiguous L1 buffer [ch][16 rows][64 B]
/// (two slots alternating), and the tiles load from there.
struct Source<'a> {
    groups: &'a [Group],
    full: usize,
    ch: usize,
    /// [2 chunks][groups][ch][16][32] u16.
    buf: *mut u16,
}

impl Source<'_> {
    /// Copies the chunk that starts at step kb, if one does (whole steps only).
    #[inline(always)]
    unsafe fn prepare(&self, kb: usize) {
        if kb < self.full && kb % self.ch == 0 {
            let cnt = self.ch.min(self.full - kb);
            for (g, gr) in self.groups.iter().enumerate() {
                copy_chunk(gr, kb, cnt, self.chunk(kb, g));
            }
        }
    }

    #[inline(always)]
    unsafe fn chunk(&self, kb: usize, g: usize) -> *mut u16 {
        let slot = (kb / self.ch) % 2;
        self.buf.add(((slot * self.groups.len() + g) * self.ch) * 512)
    }

    /// Group g's A operand at step kb and its stride in bytes.
    #[inline(always)]
    unsafe fn at(&self, g: usize, kb: usize) -> (*const u16, usize) {
        if kb < self.full {
            (self.chunk(kb, g).add((kb % self.ch) * 512), 64)
        } else {
            (self.groups[g].tail, self.groups[g].tail_ld)
        }
    }
}

/// Steps s0..s0+cnt of the group's 16 rows → dst [cnt][16][64 B].
#[target_feature(enable = "avx512f")]
unsafe fn copy_chunk(g: &Group, s0: usize, cnt: usize, dst: *mut u16) {
    for i in 0..16 {
        let src = (g.main as *const u8).add(i * g.ld + s0 * 64);
        let d = (dst as *mut u8).add(i * 64);
        for s in 0..cnt {
            _mm512_store_si512(d.add(s * 1024) as *mut __m512i, _mm512_loadu_si512(src.add(s * 64) as *const __m512i));
        }
    }
}

#[repr(C, align(64))]
struct ChunkBuf([u16; 2 * 2 * CHUNK * 16 * 32]);

/// The sums of one pass: per group, [16 W rows][48 columns] f32 (column 3r + t: term t of x row r).
#[repr(C, align(64))]
struct Acc([[f32; 16 * 48]; 2]);

/// Outputs y[.., j0..j1]: W rows j0..j1 in passes of `groups` 16-row groups, each over all of k.
#[allow(clippy::too_many_arguments)]
unsafe fn rows(xt: &[u16], m: usize, k: usize, w: &[bf16], n: usize, j0: usize, j1: usize, bias: Option<&[f32]>, out: SharedOut) {
    let shape = Shape::new(m);
    let nk = k.div_ceil(32);
    let wp = w.as_ptr() as *const u16;
    let span = 16 * shape.groups;
    PAD.with(|pad| {
        let mut pad = pad.borrow_mut();
        // [2][16][kp] for partial groups, then [2][16][32] for the tails of full groups.
        let kp = nk * 32;
        pad.resize(2 * 16 * kp + 2 * 16 * 32, 0);
        let (partial, tails) = pad.split_at_mut(2 * 16 * kp);
        let mut groups = [Group { main: wp, ld: 0, tail: wp, tail_ld: 0 }; 2];
        let cfg = shape.config();
        let mut acc = Acc([[0.0; 16 * 48]; 2]);
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        let mut g = j0;
        while g < j1 {
            for (h, gr) in groups.iter_mut().enumerate().take(shape.groups) {
                // An odd last group is paired with itself (its second result is dropped).
                let r = if g + 16 * h < j1 { g + 16 * h } else { g };
                *gr = group(wp, n, k, kp, r, &mut partial[h * 16 * kp..(h + 1) * 16 * kp], &mut tails[h * 512..(h + 1) * 512]);
            }
            match shape.nb {
                1 => pass1(&groups[0], k, xt, m, &mut acc),
                2 => pass2(&groups, k, xt, m, &mut acc),
                _ => pass3(&groups[0], k, xt, m, &mut acc),
            }
            for (h, a) in acc.0.iter().enumerate().take(shape.groups) {
                let r0 = g + 16 * h;
                if r0 < j1 {
                    write(a, m, r0, (j1 - r0).min(16), n, bias, out);
                }
            }
            g += span;
        }
        asm!("tilerelease", options(nostack, nomem));
    })
}

/// Rows r..r+16 of W: in place when all exist (the k % 32 tail copied into `tail` [16][32]), else
/// the existing rows copied into `partial` [16][kp] with zeros elsewhere.
fn group(wp: *const u16, n: usize, k: usize, kp: usize, r: usize, partial: &mut [u16], tail: &mut [u16]) -> Group {
    let full = k / 32 * 32;
    // SAFETY (the reads below): rows < n of W [n][k], columns < k.
    if r + 16 <= n {
        if full < k {
            for i in 0..16 {
                let row = &mut tail[i * 32..i * 32 + 32];
                row.fill(0);
                unsafe { std::ptr::copy_nonoverlapping(wp.add((r + i) * k + full), row.as_mut_ptr(), k - full) };
            }
        }
        Group { main: unsafe { wp.add(r * k) }, ld: 2 * k, tail: tail.as_ptr(), tail_ld: 64 }
    } else {
        partial.fill(0);
        for i in 0..n - r {
            unsafe { std::ptr::copy_nonoverlapping(wp.add((r + i) * k), partial.as_mut_ptr().add(i * kp), k) };
        }
        Group { main: partial.as_ptr(), ld: 2 * kp, tail: unsafe { partial.as_ptr().add(full) }, tail_ld: 2 * kp }
    }
}

/// One B tile per step (m ≤ 5), one group; steps in pairs with separate A and B registers so the
/// loads of one step overlap the product of the other. (Two groups per pass, i.e. 32 rows of W read
/// at once: 0.78–0.80× the AVX-512 kernel's one-row speed from DRAM instead of 0.85–0.88×.)
#[inline(never)]
unsafe fn pass1(g: &Group, k: usize, xt: &[u16], m: usize, acc: &mut Acc) {
    let (full, nk, sl, ldb) = (k / 32, k.div_ceil(32), step_len(m), 4 * b_cols(m, 0));
    let gs = std::slice::from_ref(g);
    let mut cb = std::mem::MaybeUninit::<ChunkBuf>::uninit();
    let src = Source { groups: gs, full, ch: CHUNK, buf: cb.as_mut_ptr() as *mut u16 };
    asm!("tilezero tmm0", options(nostack, nomem));
    let mut kb = 0;
    while kb < nk {
        src.prepare(kb);
        let (a0, l0) = src.at(0, kb);
        let b = xt.as_ptr().add(kb * sl);
        if kb + 1 < nk {
            src.prepare(kb + 1);
            let (a2, l2) = src.at(0, kb + 1);
            asm!(
                "tileloadd tmm6, [{b0} + {ldb}*1]",
                "tileloadd tmm2, [{a0} + {l0}*1]",
                "tileloadd tmm7, [{b1} + {ldb}*1]",
                "tileloadd tmm4, [{a2} + {l2}*1]",
                "tdpbf16ps tmm0, tmm2, tmm6",
                "tdpbf16ps tmm0, tmm4, tmm7",
                b0 = in(reg) b, b1 = in(reg) b.add(sl), ldb = in(reg) ldb,
                a0 = in(reg) a0, l0 = in(reg) l0, a2 = in(reg) a2, l2 = in(reg) l2,
                options(nostack, readonly),
            );
            kb += 2;
        } else {
            asm!(
                "tileloadd tmm6, [{b0} + {ldb}*1]",
                "tileloadd tmm2, [{a0} + {l0}*1]",
                "tdpbf16ps tmm0, tmm2, tmm6",
                b0 = in(reg) b, ldb = in(reg) ldb, a0 = in(reg) a0, l0 = in(reg) l0,
                options(nostack, readonly),
            );
            kb += 1;
        }
    }
    let p0 = acc.0[0].as_mut_ptr();
    asm!("tilestored [{p0} + {ld}*1], tmm0", p0 = in(reg) p0, ld = in(reg) 192usize, options(nostack));
}

/// Two B tiles per step (6 ≤ m ≤ 10), two groups: 4 C tiles.
#[inline(never)]
unsafe fn pass2(gs: &[Group; 2], k: usize, xt: &[u16], m: usize, acc: &mut Acc) {
    let (full, nk, sl) = (k / 32, k.div_ceil(32), step_len(m));
    let (ld0, ld1) = (4 * b_cols(m, 0), 4 * b_cols(m, 1));
    // Written before it is read (each chunk is copied before its steps).
    let mut cb = std::mem::MaybeUninit::<ChunkBuf>::uninit();
    let src = Source { groups: gs, full, ch: CHUNK, buf: cb.as_mut_ptr() as *mut u16 };
    asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
    for kb in 0..nk {
        src.prepare(kb);
        let (a0, l0) = src.at(0, kb);
        let (a1, l1) = src.at(1, kb);
        let b = xt.as_ptr().add(kb * sl);
        asm!(
            "tileloadd tmm6, [{b0} + {ld0}*1]",
            "tileloadd tmm4, [{a0} + {l0}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm7, [{b1} + {ld1}*1]",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tileloadd tmm5, [{a1} + {l1}*1]",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            b0 = in(reg) b, b1 = in(reg) b.add(512), ld0 = in(reg) ld0, ld1 = in(reg) ld1,
            a0 = in(reg) a0, l0 = in(reg) l0, a1 = in(reg) a1, l1 = in(reg) l1,
            options(nostack, readonly),
        );
    }
    let (p0, p1) = (acc.0[0].as_mut_ptr(), acc.0[1].as_mut_ptr());
    asm!(
        "tilestored [{p0} + {ld}*1], tmm0",
        "tilestored [{p0b} + {ld}*1], tmm1",
        "tilestored [{p1} + {ld}*1], tmm2",
        "tilestored [{p1b} + {ld}*1], tmm3",
        p0 = in(reg) p0, p0b = in(reg) p0.add(16), p1 = in(reg) p1, p1b = in(reg) p1.add(16), ld = in(reg) 192usize,
        options(nostack),
    );
}

/// Three B tiles per step (m ≥ 11), one group: 3 C tiles.
#[inline(never)]
unsafe fn pass3(g: &Group, k: usize, xt: &[u16], m: usize, acc: &mut Acc) {
    let (full, nk, sl) = (k / 32, k.div_ceil(32), step_len(m));
    let ld2 = 4 * b_cols(m, 2);
    let gs = std::slice::from_ref(g);
    // Written before it is read (each chunk is copied before its steps).
    let mut cb = std::mem::MaybeUninit::<ChunkBuf>::uninit();
    let src = Source { groups: gs, full, ch: CHUNK, buf: cb.as_mut_ptr() as *mut u16 };
    asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", options(nostack, nomem));
    for kb in 0..nk {
        src.prepare(kb);
        let (a0, l0) = src.at(0, kb);
        let b = xt.as_ptr().add(kb * sl);
        asm!(
            "tileloadd tmm3, [{a0} + {l0}*1]",
            "tileloadd tmm4, [{b0} + {ld}*1]",
            "tdpbf16ps tmm0, tmm3, tmm4",
            "tileloadd tmm5, [{b1} + {ld}*1]",
            "tdpbf16ps tmm1, tmm3, tmm5",
            "tileloadd tmm6, [{b2} + {ld2}*1]",
            "tdpbf16ps tmm2, tmm3, tmm6",
            b0 = in(reg) b, b1 = in(reg) b.add(512), b2 = in(reg) b.add(1024), ld = in(reg) 64usize, ld2 = in(reg) ld2,
            a0 = in(reg) a0, l0 = in(reg) l0,
            options(nostack, readonly),
        );
    }
    let p = acc.0[0].as_mut_ptr();
    asm!(
        "tilestored [{p0} + {ld}*1], tmm0",
        "tilestored [{p1} + {ld}*1], tmm1",
        "tilestored [{p2} + {ld}*1], tmm2",
        p0 = in(reg) p, p1 = in(reg) p.add(16), p2 = in(reg) p.add(32), ld = in(reg) 192usize,
        options(nostack),
    );
}

/// y[r, r0 + i] = (hi + (mid + lo)) + bias for the `rows` valid W rows of one group's sums.
#[allow(clippy::too_many_arguments)]
unsafe fn write(a: &[f32; 16 * 48], m: usize, r0: usize, rows: usize, n: usize, bias: Option<&[f32]>, out: SharedOut) {
    for i in 0..rows {
        let b = bias.map_or(0.0, |b| b[r0 + i]);
        let s = &a[i * 48..i * 48 + 48];
        for r in 0..m {
            *out.at(r * n + r0 + i) = (s[3 * r] + (s[3 * r + 1] + s[3 * r + 2])) + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector split equals `bf16_split::split3` bit for bit (finite values of every exponent,
    /// zeros, infinities, NaN), and the packing puts each term where the B tile expects it.
    #[test]
    fn packed_terms_match_split3() {
        if !(std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw")) {
            eprintln!("SKIP packed_terms_match_split3: no AVX-512F/BW");
            return;
        }
        let mut s = 0x1234_5678u32;
        let mut vals = vec![0.0f32, -0.0, 1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN, f32::from_bits(0x7f80_0001), 1e-40, -3e-39];
        while vals.len() < 16 * 70 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            vals.push(f32::from_bits(s));
        }
        for m in [1, 3, 6, 11, 16] {
            let k = 70; // 2 full steps and a tail of 6
            let x = &vals[..m * k];
            let data = pack(x, m, k, Vec::new());
            for r in 0..m {
                for c in 0..96 {
                    let want = if c < k { super::super::bf16_split::split3(x[r * k + c]) } else { [0; 3] };
                    let (kb, p, e) = (c / 32, (c % 32) / 2, c % 2);
                    for (t, &wt) in want.iter().enumerate() {
                        let col = 3 * r + t;
                        let (b, cc) = (col / 16, col % 16);
                        let got = data[kb * step_len(m) + 512 * b + 2 * (p * b_cols(m, b) + cc) + e];
                        assert_eq!(got, wt, "m={m} row {r} column {c} term {t}: x = {:e}", if c < k { x[r * k + c] } else { 0.0 });
                    }
                }
            }
        }
    }
}

