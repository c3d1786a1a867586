//! AMX-BF16 kernel of gemm_bf16dot.rs (layouts there). Rust's AMX intrinsics are unstable, so the
//! tile instructions are written with `asm!`; the tile registers are invisible to the compiler, which
//! therefore never spills or reuses them between the asm statements of one block.
//!
//! Tiles (palette 1, each 16 rows × 64 bytes): tmm0–3 the 2 × 2 f32 16×16 blocks of a 32 × 32 block
//! of y; tmm4/5 rows 0–15 / 16–31 of x (32 k each); tmm6/7 the 16 pair-rows of 2 W panels (columns
//! 0–15 / 16–31). Per 32 k: 4 tile loads, 4 `tdpbf16ps` (32 768 flops).
use super::gemm_pack::transpose16;
use super::matmul::SharedOut;
use std::arch::asm;

#[repr(C, align(64))]
pub(super) struct TileConfig(pub(super) [u8; 64]);

/// Palette 1, tiles 0–7 all 16 rows × 64 bytes.
pub(super) fn config() -> TileConfig {
    let mut c = [0u8; 64];
    c[0] = 1;
    for t in 0..8 {
        c[16 + 2 * t] = 64;
        c[48 + t] = 16;
    }
    TileConfig(c)
}

/// Columns c0..c0+cols of y for every row: xb [m_pad][kp] bf16 (m_pad a multiple of 32), `wp` this
/// task's panels [cols/16][kp/2][32] bf16 from index 0. 32-row blocks outside, so one block of x rows
/// meets all the task's (L2-resident) panels. Caller: the AMX permission was granted
/// (precision::bf16_support chose Amx).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_cols(xb: &[u16], xs: usize, m: usize, kp: usize, wp: &[u16], c0: usize, cols: usize, n: usize, bias: Option<&[f32]>, out: SharedOut) {
    let cfg = config();
    let mut buf = Block([0f32; 32 * 32]);
    // SAFETY: permission granted (caller); the tile config is loaded before any tile use and released
    // before returning, on this thread; tasks own disjoint columns of y; every tile load reads inside
    // xb (rows < m_pad) and wp (pair-rows < kp/2 of the panels of cols rounded up to 32).
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        for r0 in (0..m).step_by(32) {
            for c in (c0..c0 + cols).step_by(32) {
                block(xb.as_ptr().add(r0 * xs), xs, kp, wp.as_ptr().add(((c - c0) / 16) * kp * 16), &mut buf);
                write_out(&buf, r0, (m - r0).min(32), c, (n - c).min(32), n, bias, out);
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

#[repr(C, align(64))]
struct Block([f32; 32 * 32]);

/// buf [32][32] f32 = x rows (32 from `a`, stride kp) · the two W panels from `b` (second at +kp·16).
#[inline(always)]
unsafe fn block(a: *const u16, xs: usize, kp: usize, b: *const u16, buf: &mut Block) {
    let lda = xs * 2;
    let a_hi = a.add(16 * xs);
    let b_hi = b.add(kp * 16);
    asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
    for kb in 0..kp / 32 {
        // x: 32 k = 64 bytes of each row; W: 16 pair-rows of 64 bytes = 1024 bytes per 32 k.
        asm!(
            "tileloadd tmm4, [{a} + {lda}*1]",
            "tileloadd tmm5, [{ah} + {lda}*1]",
            "tileloadd tmm6, [{b} + {ldb}*1]",
            "tileloadd tmm7, [{bh} + {ldb}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a = in(reg) a.add(kb * 32),
            ah = in(reg) a_hi.add(kb * 32),
            b = in(reg) b.add(kb * 512),
            bh = in(reg) b_hi.add(kb * 512),
            lda = in(reg) lda,
            ldb = in(reg) 64usize,
            options(nostack, readonly),
        );
    }
    let p = buf.0.as_mut_ptr();
    asm!(
        "tilestored [{p0} + {ld}*1], tmm0",
        "tilestored [{p1} + {ld}*1], tmm1",
        "tilestored [{p2} + {ld}*1], tmm2",
        "tilestored [{p3} + {ld}*1], tmm3",
        p0 = in(reg) p,
        p1 = in(reg) p.add(16),
        p2 = in(reg) p.add(16 * 32),
        p3 = in(reg) p.add(16 * 32 + 16),
        ld = in(reg) 128usize,
        options(nostack),
    );
}

/// y[r0.., c..] (mv × nv valid) = buf + bias, 2 masked zmm stores a row (AVX-512F comes with AMX).
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn write_out(buf: &Block, r0: usize, mv: usize, c: usize, nv: usize, n: usize, bias: Option<&[f32]>, out: SharedOut) {
    use std::arch::x86_64::*;
    let mask = |v: usize| if v >= 16 { 0xFFFFu16 } else { ((1u32 << v) - 1) as u16 };
    let (m0, m1) = (mask(nv.min(16)), mask(nv.saturating_sub(16)));
    let (b0, b1) = match bias {
        Some(b) => (_mm512_maskz_loadu_ps(m0, b.as_ptr().add(c)), _mm512_maskz_loadu_ps(m1, b.as_ptr().wrapping_add(c + 16))),
        None => (_mm512_setzero_ps(), _mm512_setzero_ps()),
    };
    for i in 0..mv {
        let y = out.at((r0 + i) * n + c);
        let row = buf.0.as_ptr().add(i * 32);
        _mm512_mask_storeu_ps(y, m0, _mm512_add_ps(b0, _mm512_load_ps(row)));
        _mm512_mask_storeu_ps(y.wrapping_add(16), m1, _mm512_add_ps(b1, _mm512_load_ps(row.add(16))));
    }
}

// ---------------------------------------------------------------------------------------------
// "Direct" form for W [n, k] (linear layers): yᵀ = W · bf16(x)ᵀ. The AMX A operand (16 rows × 32 k,
// any row stride) is read straight from the bf16 weights, so W is never repacked: its (k, k+1)
// pairs need no transposing, which in the form above costs per call n·k/2 pair moves through
// 16 × 16 register transposes (the whole cost of a 128-row prefill GEMM's packing). Instead x is
// packed once per call into VNNI B tiles (m·k values, far fewer than n·k when m < k) and each 32 × 32
// f32 block of yᵀ is transposed on its way out (m·n values, cheap when k is large).
//
// Layouts:
// * xv [m_pad/16][kp/32][16 pairs][16 rows][2] bf16: B tile (mb, kb) = 1 KiB contiguous, lane
//   (p, i, e) = x[16·mb + i][32·kb + 2p + e], zero past m and k.
// * W row groups of 16: rows r..r+16 read in place (stride 2k bytes) for the k/32 full k steps;
//   the last partial k step (k % 32 ≠ 0) from a zero-padded copy [16][32], so no load reads past a
//   row; a partial group (n % 16 ≠ 0) from a zero-padded copy [16][kp].
// Blocks: 2 W groups (32 rows of W = columns of y) × 2 B tiles (32 rows of x), 4 accumulators
// (tmm0–3), per 32 k 4 loads and 4 `tdpbf16ps`, as in the form above.
// ---------------------------------------------------------------------------------------------

/// W rows per task of the direct form: its 4 pairs of groups (≤ 512 KiB of W at k = 2048, L2-resident)
/// meet each 32-row block of x in turn, so that block's tiles are reused 4 times while in L1/L2.
/// (Single-thread A/B under load, 32 / 128 / 512 rows: 493 / 571 / 513 GFLOP/s over the speed test's shapes.)
const DIRECT_ROWS: usize = 128;

/// One 16-row group of W as the A operand: `main` rows (stride `ld` bytes) for the full k steps,
/// `tail` (stride `tail_ld`) for the last partial step when `k % 32 ≠ 0`.
#[derive(Clone, Copy)]
pub(super) struct Group {
    pub(super) main: *const u16,
    pub(super) ld: usize,
    pub(super) tail: *const u16,
    pub(super) tail_ld: usize,
    /// u16 from one 32-k step's tile to the next: 32 in W's rows, 512 in packed 1 KiB tiles.
    pub(super) kstep: usize,
}

/// y[m, n] = bf16(x)[m, k] · W[n, k]ᵀ (+ bias). Caller: the AMX permission was granted; shapes
/// consistent; m, n, k ≥ 1.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_direct(x: &[f32], m: usize, k: usize, w: &[half::bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    use super::gemm_bf16dot::{pack_x, with_u16, KSTEP, X16};
    use rayon::prelude::*;
    let kp = k.div_ceil(KSTEP) * KSTEP;
    let nkb = kp / 32;
    let m_pad = m.div_ceil(32) * 32;
    with_u16(&X16, m_pad * kp, |xr| {
        // SAFETY: AVX512_BF16 + AVX-512F come with AMX-BF16 (precision.rs chose Amx after both).
        unsafe { pack_x(x, m, k, kp, xr) };
        let xr: &[half::bf16] = unsafe { std::slice::from_raw_parts(xr.as_ptr() as *const half::bf16, xr.len()) };
        with_u16(&XV16, m_pad * kp, |xv| {
            xv.par_chunks_mut(16 * kp).enumerate().for_each(|(mb, dst)| {
                // SAFETY: AVX-512F present (above); rows 16·mb..+16 < m_pad exist in xr, pairs < kp/2.
                unsafe { pack_xv_block(xr, kp, mb, dst) }
            });
            let xv = &*xv;
            let out = SharedOut(y.as_mut_ptr());
            if m_pad / 32 >= X_RESIDENT_MIN_PAIRS && 2 * n.div_ceil(32) * 32 * kp <= BF16_X_RESIDENT_W_BYTES && X_RESIDENT.load(std::sync::atomic::Ordering::Relaxed) {
                return direct_x_resident(xv, m, k, kp, w, n, bias, out);
            }
            for_w_tasks(w, n, k, kp, |groups, c0| {
                // SAFETY: as in gemm_cols; every A load reads rows < n inside W (full steps only) or the
                // aligned / padded copies; every B load reads inside xv.
                unsafe { direct_cols(xv, 0..m, k, kp, nkb, groups, c0, n, bias, out, false) }
            });
        })
    })
}

/// Most bytes of W for the bf16 direct form's x-resident order. Speed test (one thread, 9 rounds
/// alternating): q/k/v/o at 896² (W 1152 × 1152, 2.6 MB) 1.18–1.30× the W-resident order, fc2
/// (1152 × 4304) 0.97–1.05×, fc1 at 896² (4304 × 1152, 10 MB) 0.93–0.99×: only the small W go this way.
const BF16_X_RESIDENT_W_BYTES: usize = 8 << 20;

/// The bf16 direct form in the x-resident order (see X_RESIDENT): W copied once per call into an
/// aligned, zero-padded buffer [n_pad][kp] (2 MB for a 1152 × 1152 W), then tasks of ≤
/// X_RESIDENT_BYTES of x's B tiles (16 blocks of 32 rows at k = 1152) each walking all of W, W pair
/// outside, x blocks inside. In the W-resident order each 32-row block of x (73 KB at k = 1152) comes
/// from L3 for 4 pairs of W groups: 0.5 KB of L3 reads per 32-k step of ~60 ns.
#[allow(clippy::too_many_arguments)]
fn direct_x_resident(xv: &[u16], m: usize, k: usize, kp: usize, w: &[half::bf16], n: usize, bias: Option<&[f32]>, out: SharedOut) {
    use super::gemm_bf16dot::with_u16;
    use rayon::prelude::*;
    let n_pad = n.div_ceil(32) * 32;
    with_u16(&WS16, n_pad * kp, |wc| {
        // W in 1 KiB tiles, group by group: [n_pad/16][kp/32][16 rows][32 k], zero past n and k, so a
        // pair of groups is 2 sequential streams (rows 2k bytes apart would be 32 streams, which the
        // hardware prefetcher does not follow: fc1 at 896² ran 0.8–0.9× the W-resident order so).
        wc.par_chunks_mut(16 * kp).enumerate().for_each(|(g, dst)| {
            for i in 0..16 {
                let r = 16 * g + i;
                for kb in 0..kp / 32 {
                    let d = &mut dst[kb * 512 + i * 32..kb * 512 + i * 32 + 32];
                    let (c0, c1) = (32 * kb, (32 * kb + 32).min(k));
                    if r < n && c0 < k {
                        let src = &w[r * k + c0..r * k + c1];
                        // SAFETY: bf16 and u16 have one layout; the slice covers these columns of row r.
                        d[..c1 - c0].copy_from_slice(unsafe { std::slice::from_raw_parts(src.as_ptr() as *const u16, c1 - c0) });
                        d[c1 - c0..].fill(0);
                    } else {
                        d.fill(0);
                    }
                }
            }
        });
        let groups: Vec<Group> = (0..n_pad / 16)
            .map(|g| {
                let main = wc[g * 16 * kp..].as_ptr();
                Group { main, ld: 64, tail: main.wrapping_add(k / 32 * 512), tail_ld: 64, kstep: 512 }
            })
            .collect();
        let groups = SendGroups(&groups);
        let blocks = m.div_ceil(32);
        let per_task = (X_RESIDENT_BYTES / (64 * kp)).max(1);
        let tasks = (blocks.div_ceil(per_task).div_ceil(2) * 2).min(blocks);
        (0..tasks).into_par_iter().for_each(|t| {
            let (q0, q1) = (blocks * t / tasks, blocks * (t + 1) / tasks);
            let rows = 32 * q0..(32 * q1).min(m);
            // SAFETY: as in gemm_direct; A loads read rows < n_pad of wc, columns < kp; B loads
            // read blocks < m_pad / 16 of xv; the task owns y's rows `rows`.
            unsafe { direct_cols(xv, rows, k, kp, kp / 32, groups.get(), 0, n, bias, out, true) }
        });
    })
}

/// The groups' raw pointers, shared read-only by the tasks.
struct SendGroups<'a>(&'a [Group]);
// SAFETY: the pointers are only read through (tile loads), and the buffer outlives the tasks.
unsafe impl Sync for SendGroups<'_> {}

impl SendGroups<'_> {
    fn get(&self) -> &[Group] {
        self.0
    }
}

/// y[m, n] = x[m, k] · W[n, k]ᵀ (+ bias) in f32 arithmetic: x split into three bf16 terms
/// (gemm_amx_split.rs), then `post` (e.g. GELU) on each finished stretch of y. Rows in chunks so the
/// packed x (3 × rows × kp bf16) stays ≤ 24 MiB and its thread-local buffer is kept between calls
/// (with_u16 frees buffers above 32 MiB). Caller: as gemm_direct.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_direct_split(x: &[f32], m: usize, k: usize, w: &[half::bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32], post: Option<fn(&mut [f32])>) {
    use super::gemm_amx_split::{block_len, direct_pair, pack_block, pack_w_tiles, w_tiles_len, write_direct, Quad};
    use super::scratch::with_scratch;
    use super::gemm_bf16dot::{with_u16, KSTEP, X16};
    use rayon::prelude::*;
    let kp = k.div_ceil(KSTEP) * KSTEP;
    // Blocks of 16 rows, in pairs (the kernel's 2 × 2 tiles); an odd last block is paired with zeros.
    let pairs = m.div_ceil(32);
    let max_pairs = ((12usize << 20) / (2 * block_len(kp))).max(1);
    let chunks = pairs.div_ceil(max_pairs);
    let out = SharedOut(y.as_mut_ptr());
    if kp <= X_RESIDENT_MAX_K && pairs >= X_RESIDENT_MIN_PAIRS && 2 * w_tiles_len(n, kp) <= SHARED_W_BYTES && X_RESIDENT.load(std::sync::atomic::Ordering::Relaxed) {
        return split_x_resident(x, m, k, kp, w, n, bias, out, post, chunks);
    }
    for ch in 0..chunks {
        let (b0, b1) = (2 * (pairs * ch / chunks), 2 * (pairs * (ch + 1) / chunks));
        with_u16(&XV16, (b1 - b0) * block_len(kp), |xv| {
            xv.par_chunks_mut(block_len(kp)).enumerate().for_each(|(i, dst)| {
                with_u16(&X16, 3 * 16 * kp, |tmp| {
                    // SAFETY: AVX-512F/BW come with AMX (precision.rs); rows past m are zero-filled.
                    unsafe { pack_block(x, m, k, kp, 16 * (b0 + i), tmp, dst) }
                })
            });
            let xv = &*xv;
            let pc = (b1 - b0) / 2;
            // k in blocks of ≤ SPLIT_KBLOCK steps when longer: a task (≤ 256 W rows × ≤ 12 pairs of
            // x blocks) keeps its 2 × 2 partial sums in `acc` (≤ 384 KiB) between k blocks, so the
            // k slices of its W tiles (≤ 512 KiB) and of one x pair (≤ 192 KiB) stay in L2 / L1 while
            // reused, and x is read once per 256 W rows instead of once per 64 (fc2: k = 4304,
            // n = 1152, x 20 MB). Short k: one block, W rows per task as the bf16 direct form.
            let ksteps = kp / 32;
            let kbs = ksteps.div_ceil(SPLIT_KBLOCK);
            let (nb, x_tasks) = if kbs == 1 {
                // Fewer than 16 tasks (n = 1152: 9) would leave one of 2 threads idle for up to a
                // task in 9: halve the rows per task then.
                (if n.div_ceil(DIRECT_ROWS) < 16 { DIRECT_ROWS / 2 } else { DIRECT_ROWS }, 1)
            } else {
                (256, pc.div_ceil(12))
            };
            let w_tasks = n.div_ceil(nb);
            (0..w_tasks * x_tasks).into_par_iter().for_each(|t| {
                let (tw, tx) = (t / x_tasks, t % x_tasks);
                let (p0, p1) = (pc * tx / x_tasks, pc * (tx + 1) / x_tasks);
                let c0 = nb * tw;
                let rows = (n - c0).min(nb);
                let ngp = rows.div_ceil(32);
                let slots = if kbs == 1 { 1 } else { (p1 - p0) * ngp };
                // The task's W rows as contiguous 1 KiB tiles, met by every pair of x blocks in turn.
                with_u16(&WT16, w_tiles_len(rows, kp), |wt| {
                    pack_w_tiles(w, k, c0, rows, kp, wt);
                    with_scratch(&ACC, slots * 1024 + 16, |acc| {
                        let skip = acc.as_ptr().align_offset(64);
                        let acc = &mut acc[skip..];
                        let cfg = config();
                        // SAFETY: permission granted (caller); config loaded first, released last, on
                        // this thread; A loads read inside wt (ngp pairs of groups), B loads inside xv
                        // (pairs < pc), accumulator tiles inside acc (slots); the task owns columns
                        // c0..c0 + rows and rows of pairs p0..p1 of y.
                        unsafe {
                            asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
                            for kbi in 0..kbs {
                                let steps = ksteps * kbi / kbs..ksteps * (kbi + 1) / kbs;
                                for p in p0..p1 {
                                    let bt = xv.as_ptr().add(2 * p * block_len(kp));
                                    for gp in 0..ngp {
                                        let g = 2 * gp;
                                        let slot = acc.as_mut_ptr().add(if kbs == 1 { 0 } else { ((p - p0) * ngp + gp) * 1024 });
                                        direct_pair(bt, kp, wt.as_ptr().add(g / 4 * 64 * kp + g % 4 * 512), steps.clone(), slot, kbi == 0);
                                        if kbi + 1 < kbs {
                                            continue;
                                        }
                                        let (c, quad) = (c0 + 16 * g, &*(slot as *const Quad));
                                        let nv = (c0 + rows - c).min(32);
                                        for (blk, tile0) in [(b0 + 2 * p, 0), (b0 + 2 * p + 1, 2)] {
                                            if 16 * blk < m {
                                                write_direct(quad, tile0, 16 * blk, (m - 16 * blk).min(16), c, nv, n, bias, out, post);
                                            }
                                        }
                                    }
                                }
                            }
                            asm!("tilerelease", options(nostack, nomem));
                        }
                    });
                });
            });
        });
    }
}

/// The x-resident order of the split direct form (short k, many rows: the ViT's k = 1152 products).
/// Measured (speed test's probes, one thread): the kernel runs ~75 ns per 32-k step with its tiles
/// in L2 (up to ~1.2 MB streamed over and over), but ~185 ns inside the W-resident order above, whose
/// tasks keep 128 W rows in L2 and stream every x pair (3 terms: 221 KB at k = 1152) from L3 for 4
/// pairs of W groups: 1.5 KB of L3 reads per step at the ~15 GB/s one core gets here. Here a task
/// keeps ≤ 6 pairs of x blocks (≤ 1.3 MB) in L2 and walks all of W (its tiles packed once per call,
/// shared by the tasks): each W pair (74 KB) comes from L3 once and meets the task's pairs in turn,
/// ≤ 2 KB / 6 of L3 reads per step.
pub(super) static X_RESIDENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Fewest pairs of 16-row x blocks (32-row blocks in the bf16 form) for the x-resident order
/// (prefill's 128 rows = 4 pairs keep the W-resident order: W there is the larger operand by far).
const X_RESIDENT_MIN_PAIRS: usize = 8;

/// Bytes of packed x pairs a task of the x-resident order keeps in L2 (6 pairs at k = 1152).
const X_RESIDENT_BYTES: usize = 1300 << 10;

/// Longest (padded) k of the x-resident order: one x pair ≤ 393 KB, so a task still holds 3.
const X_RESIDENT_MAX_K: usize = 2048;

/// Bytes of W tiles packed once per call for the x-resident order: within what with_u16 keeps
/// between calls (32 MiB), so no call maps fresh pages; the ViT's largest W (fc1: 10 MB) fits.
const SHARED_W_BYTES: usize = 32 << 20;

/// gemm_direct_split in the x-resident order (see X_RESIDENT), k whole (no k blocks). Caller:
/// kp ≤ X_RESIDENT_MAX_K, W tiles ≤ SHARED_W_BYTES.
#[allow(clippy::too_many_arguments)]
fn split_x_resident(x: &[f32], m: usize, k: usize, kp: usize, w: &[half::bf16], n: usize, bias: Option<&[f32]>, out: SharedOut, post: Option<fn(&mut [f32])>, chunks: usize) {
    use super::gemm_amx_split::{block_len, direct_pair, pack_block, pack_w_tiles, w_tiles_len, write_direct, Quad};
    use super::gemm_bf16dot::{with_u16, X16};
    use rayon::prelude::*;
    let pairs = m.div_ceil(32);
    let ngp = n.div_ceil(32);
    with_u16(&WS16, w_tiles_len(n, kp), |wt| {
        // W's tiles for all n rows in pack_w_tiles' layout, one quad (64 rows) per parallel piece.
        wt.par_chunks_mut(64 * kp).enumerate().for_each(|(q, dst)| pack_w_tiles(w, k, 64 * q, (n - 64 * q).min(64), kp, dst));
        let wt = &*wt;
        for ch in 0..chunks {
            let (b0, b1) = (2 * (pairs * ch / chunks), 2 * (pairs * (ch + 1) / chunks));
            with_u16(&XV16, (b1 - b0) * block_len(kp), |xv| {
                xv.par_chunks_mut(block_len(kp)).enumerate().for_each(|(i, dst)| {
                    with_u16(&X16, 3 * 16 * kp, |tmp| {
                        // SAFETY: AVX-512F/BW come with AMX (precision.rs); rows past m are zero-filled.
                        unsafe { pack_block(x, m, k, kp, 16 * (b0 + i), tmp, dst) }
                    })
                });
                let xv = &*xv;
                let pc = (b1 - b0) / 2;
                // An even number of tasks (2 threads), each ≤ X_RESIDENT_BYTES of x pairs.
                let per_task = (X_RESIDENT_BYTES / (4 * block_len(kp))).max(1);
                let tasks = (pc.div_ceil(per_task).div_ceil(2) * 2).min(pc);
                (0..tasks).into_par_iter().for_each(|t| {
                    let (p0, p1) = (pc * t / tasks, pc * (t + 1) / tasks);
                    let mut acc = Quad([0f32; 1024]);
                    let cfg = config();
                    // SAFETY: permission granted (caller); config loaded first, released last, on this
                    // thread; A loads read inside wt (groups < 2·ngp ≤ its quads), B loads inside xv
                    // (pairs < pc); the task owns the rows of pairs p0..p1 of y.
                    unsafe {
                        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
                        for gp in 0..ngp {
                            let g = 2 * gp;
                            let a = wt.as_ptr().add(g / 4 * 64 * kp + g % 4 * 512);
                            let (c, nv) = (32 * gp, (n - 32 * gp).min(32));
                            for p in p0..p1 {
                                direct_pair(xv.as_ptr().add(2 * p * block_len(kp)), kp, a, 0..kp / 32, acc.0.as_mut_ptr(), true);
                                for (blk, tile0) in [(b0 + 2 * p, 0), (b0 + 2 * p + 1, 2)] {
                                    if 16 * blk < m {
                                        write_direct(&acc, tile0, 16 * blk, (m - 16 * blk).min(16), c, nv, n, bias, out, post);
                                    }
                                }
                            }
                        }
                        asm!("tilerelease", options(nostack, nomem));
                    }
                });
            });
        }
    })
}

/// Most 32-k steps per k block of the split direct form (1024 k).
const SPLIT_KBLOCK: usize = 32;

thread_local! {
    static ACC: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f(groups, c0)` for each task of W rows c0..c0+nb (in parallel): `groups` the 16-row A
/// operands of those rows, 2·⌈rows/32⌉ of them (groups past n are zero rows).
fn for_w_tasks(w: &[half::bf16], n: usize, k: usize, kp: usize, f: impl Fn(&[Group], usize) + Sync) {
    use super::gemm_bf16dot::with_u16;
    use rayon::prelude::*;
    // Fewer than 16 tasks (n = 1152: 9) would leave one of 2 threads idle for up to a task in
    // 9: halve the rows per task then.
    let nb = if n.div_ceil(DIRECT_ROWS) < 16 { DIRECT_ROWS / 2 } else { DIRECT_ROWS };
    // W rows that do not start on 64-byte boundaries (the allocation's or the mapped file's
    // offset, or 2k not a multiple of 64) make every tile row straddle two cache lines: then
    // each task first copies its rows to an aligned buffer (single thread, the speed test's
    // shapes: 20–35 % faster aligned; the copy is one read of W, which the task makes anyway).
    let ws = if (2 * kp) % 4096 == 0 { kp + 32 } else { kp };
    let copy = w.as_ptr() as usize % 64 != 0 || (2 * k) % 64 != 0;
    let nb = if copy { nb.min(((768 << 10) / (2 * ws) / 32 * 32).max(32)) } else { nb };
    (0..n.div_ceil(nb)).into_par_iter().for_each(|t| {
        let (c0, wp) = (nb * t, w.as_ptr() as *const u16);
        let pairs = (n - c0).min(nb).div_ceil(32);
        if copy {
            return with_u16(&WT16, 32 * pairs * ws, |buf| {
                for (i, row) in buf.chunks_mut(ws).enumerate() {
                    if c0 + i < n {
                        // SAFETY: row c0 + i < n of W [n][k].
                        row[..k].copy_from_slice(unsafe { std::slice::from_raw_parts(wp.add((c0 + i) * k), k) });
                        row[k..].fill(0);
                    } else {
                        row.fill(0);
                    }
                }
                let groups: Vec<Group> = (0..2 * pairs)
                    .map(|g| {
                        let main = buf[g * 16 * ws..].as_ptr();
                        Group { main, ld: 2 * ws, tail: main.wrapping_add(k / 32 * 32), tail_ld: 2 * ws, kstep: 32 }
                    })
                    .collect();
                f(&groups, c0)
            });
        }
        with_u16(&WT16, 2 * pairs * 16 * kp, |pad| {
            let groups: Vec<Group> = pad.chunks_mut(16 * kp).enumerate().map(|(g, pg)| group(wp, n, k, kp, c0 + 16 * g, pg)).collect();
            f(&groups, c0)
        })
    });
}

thread_local! {
    static XV16: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
    static WT16: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
    static WS16: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The A operand for W rows r..r+16: in place when all 16 rows exist (tail copied into `pad` when
/// k % 32 ≠ 0), else the existing rows copied whole into `pad` [16][kp] (zeros elsewhere).
fn group(wp: *const u16, n: usize, k: usize, kp: usize, r: usize, pad: &mut [u16]) -> Group {
    let full = k / 32 * 32;
    // SAFETY (the reads below): rows < n of W [n][k], columns < k.
    if r + 16 <= n {
        if full < k {
            for i in 0..16 {
                let row = &mut pad[i * 32..i * 32 + 32];
                row.fill(0);
                unsafe { std::ptr::copy_nonoverlapping(wp.add((r + i) * k + full), row.as_mut_ptr(), k - full) };
            }
        }
        Group { main: unsafe { wp.add(r * k) }, ld: 2 * k, tail: pad.as_ptr(), tail_ld: 64, kstep: 32 }
    } else {
        pad.fill(0);
        for i in 0..n.saturating_sub(r) {
            unsafe { std::ptr::copy_nonoverlapping(wp.add((r + i) * k), pad.as_mut_ptr().add(i * kp), k) };
        }
        Group { main: pad.as_ptr(), ld: 2 * kp, tail: unsafe { pad.as_ptr().add(full) }, tail_ld: 2 * kp, kstep: 32 }
    }
}

/// x rows 16·mb..+16 (bf16, [m_pad][kp]) → their B tiles [kp/32][16][16][2] in `dst`.
#[target_feature(enable = "avx512f")]
unsafe fn pack_xv_block(xr: &[half::bf16], kp: usize, mb: usize, dst: &mut [u16]) {
    use std::arch::x86_64::*;
    let d = dst.as_mut_ptr();
    // Pair p of 16 rows = pair row p % 16 of tile p / 16: tile rows are consecutive, so the store is at 32·p.
    super::gemm_pack::for_each_pair16(xr, kp, 16 * mb, 16, 0, kp / 2, |p, v| _mm512_storeu_si512(d.add(32 * p) as *mut _, v));
}

/// The task's columns (W rows c0..: `groups`, in pairs) of y for the x rows `rows` (start a multiple
/// of 32, end ≤ m), x blocks outside and W pairs inside, or the reverse (`w_outer`, the x-resident order).
#[allow(clippy::too_many_arguments)]
unsafe fn direct_cols(xv: &[u16], rows: std::ops::Range<usize>, k: usize, kp: usize, nkb: usize, groups: &[Group], c0: usize, n: usize, bias: Option<&[f32]>, out: SharedOut, w_outer: bool) {
    let cfg = config();
    let mut buf = Block([0f32; 32 * 32]);
    let full = k / 32;
    let m = rows.end;
    let (nr, np) = (rows.len().div_ceil(32), groups.len() / 2);
    asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
    for i in 0..nr * np {
      let (ri, pi) = if w_outer { (i % nr, i / nr) } else { (i / np, i % np) };
      let r0 = rows.start + 32 * ri;
      {
        let gp = &groups[2 * pi..2 * pi + 2];
        let (ga, gb, c) = (gp[0], gp[1], c0 + 32 * pi);
        let b0 = xv.as_ptr().add(r0 * kp);
        let b1 = b0.add(16 * kp);
        asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
        for kb in 0..full {
            step(ga.main.add(kb * ga.kstep), ga.ld, gb.main.add(kb * gb.kstep), gb.ld, b0.add(kb * 512), b1.add(kb * 512));
        }
        if full < nkb {
            step(ga.tail, ga.tail_ld, gb.tail, gb.tail_ld, b0.add(full * 512), b1.add(full * 512));
        }
        // tmm0: W rows 0–15 × x rows 0–15; tmm1: W 0–15 × x 16–31; tmm2/3: W rows 16–31. buf[W row][x row].
        let p = buf.0.as_mut_ptr();
        asm!(
            "tilestored [{p0} + {ld}*1], tmm0",
            "tilestored [{p1} + {ld}*1], tmm1",
            "tilestored [{p2} + {ld}*1], tmm2",
            "tilestored [{p3} + {ld}*1], tmm3",
            p0 = in(reg) p,
            p1 = in(reg) p.add(16),
            p2 = in(reg) p.add(16 * 32),
            p3 = in(reg) p.add(16 * 32 + 16),
            ld = in(reg) 128usize,
            options(nostack),
        );
        write_out_t(&buf, r0, (m - r0).min(32), c, (n - c).min(32), n, bias, out);
      }
    }
    asm!("tilerelease", options(nostack, nomem));
}

/// One 32-k step of a 32 × 32 block: A = W groups (a0 / a1, their strides), B = x tiles b0 / b1.
#[inline(always)]
unsafe fn step(a0: *const u16, lda0: usize, a1: *const u16, lda1: usize, b0: *const u16, b1: *const u16) {
    asm!(
        "tileloadd tmm4, [{a0} + {lda0}*1]",
        "tileloadd tmm6, [{b0} + {ldb}*1]",
        "tdpbf16ps tmm0, tmm4, tmm6",
        "tileloadd tmm7, [{b1} + {ldb}*1]",
        "tdpbf16ps tmm1, tmm4, tmm7",
        "tileloadd tmm5, [{a1} + {lda1}*1]",
        "tdpbf16ps tmm2, tmm5, tmm6",
        "tdpbf16ps tmm3, tmm5, tmm7",
        a0 = in(reg) a0,
        a1 = in(reg) a1,
        b0 = in(reg) b0,
        b1 = in(reg) b1,
        lda0 = in(reg) lda0,
        lda1 = in(reg) lda1,
        ldb = in(reg) 64usize,
        options(nostack, readonly),
    );
}

/// y[r0 + i, c + j] = buf[j][i] + bias[c + j] for i < mv, j < nv: the 32 × 32 block transposed in
/// four 16 × 16 register transposes.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn write_out_t(buf: &Block, r0: usize, mv: usize, c: usize, nv: usize, n: usize, bias: Option<&[f32]>, out: SharedOut) {
    use std::arch::x86_64::*;
    let mask = |v: usize| if v >= 16 { 0xFFFFu16 } else { ((1u32 << v) - 1) as u16 };
    for jb in 0..2 {
        let nvj = nv.saturating_sub(16 * jb).min(16);
        if nvj == 0 {
            break;
        }
        let mk = mask(nvj);
        let b = match bias {
            Some(b) => _mm512_maskz_loadu_ps(mk, b.as_ptr().add(c + 16 * jb)),
            None => _mm512_setzero_ps(),
        };
        for ib in 0..2 {
            if 16 * ib >= mv {
                break;
            }
            let mut r = [_mm512_setzero_si512(); 16];
            for (j, v) in r.iter_mut().enumerate() {
                *v = _mm512_load_si512(buf.0.as_ptr().add((16 * jb + j) * 32 + 16 * ib) as *const _);
            }
            let t = transpose16(r);
            for (i, v) in t.iter().enumerate().take(mv - 16 * ib) {
                let yp = out.at((r0 + 16 * ib + i) * n + c + 16 * jb);
                _mm512_mask_storeu_ps(yp, mk, _mm512_add_ps(b, _mm512_castsi512_ps(*v)));
            }
        }
    }
}

/// Seconds of `reps` × 4 `tdpbf16ps` on registers only (no loads): the tile unit's ceiling for the
/// speed test (each instruction 16·16·32·2 = 16 384 flops).
#[cfg(test)]
pub(super) fn peak_probe(reps: usize) {
    let cfg = config();
    // SAFETY: caller checked the AMX permission; config loaded first, released last.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        asm!("tilezero tmm4", "tilezero tmm5", "tilezero tmm6", "tilezero tmm7", options(nostack, nomem));
        for _ in 0..reps {
            asm!("tdpbf16ps tmm0, tmm4, tmm6", "tdpbf16ps tmm1, tmm4, tmm7", "tdpbf16ps tmm2, tmm5, tmm6", "tdpbf16ps tmm3, tmm5, tmm7", options(nostack, nomem));
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

/// `reps` passes of 8 direct 32-k steps over L1-resident operands (A 32 rows × 256 k, B 2 × 8 KiB):
/// the kernel's speed when no load misses L1.
#[cfg(test)]
pub(super) fn l1_probe(reps: usize, mode: u32) {
    let cfg = config();
    // 64-byte aligned, as the products' buffers are: tile rows that straddle two lines load at about
    // half speed (a Vec's own alignment made this probe read ~2× slow).
    let (av, bv) = (vec![0u16; 32 * 256 + 32], vec![0u16; 2 * 8 * 512 + 32]);
    let (a, b) = (&av[av.as_ptr().align_offset(64)..], &bv[bv.as_ptr().align_offset(64)..]);
    // SAFETY: caller checked the AMX permission; all loads inside a / b.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
        for _ in 0..reps {
            for kb in 0..8 {
                let (a0, a1, b0, b1) = (a.as_ptr().add(kb * 32), a.as_ptr().add(16 * 256 + kb * 32), b.as_ptr().add(kb * 512), b.as_ptr().add(4096 + kb * 512));
                match mode {
                    0 => step(a0, 512, a1, 512, b0, b1),
                    1 => asm!(
                        "tileloadd tmm4, [{a0} + {lda}*1]",
                        "tileloadd tmm6, [{b0} + {ldb}*1]",
                        "tileloadd tmm7, [{b1} + {ldb}*1]",
                        "tileloadd tmm5, [{a1} + {lda}*1]",
                        a0 = in(reg) a0, a1 = in(reg) a1, b0 = in(reg) b0, b1 = in(reg) b1, lda = in(reg) 512usize, ldb = in(reg) 64usize,
                        options(nostack, readonly)),
                    2 => asm!(
                        "tileloadd tmm4, [{a0} + {lda}*1]",
                        "tileloadd tmm5, [{a1} + {lda}*1]",
                        "tileloadd tmm6, [{b0} + {ldb}*1]",
                        "tileloadd tmm7, [{b1} + {ldb}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a0 = in(reg) a0, a1 = in(reg) a1, b0 = in(reg) b0, b1 = in(reg) b1, lda = in(reg) 512usize, ldb = in(reg) 64usize,
                        options(nostack, readonly)),
                    _ => step(a0, 64, a1, 64, b0, b1),
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}
