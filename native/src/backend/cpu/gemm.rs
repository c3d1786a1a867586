//! y[m, n] = x[m, k] · W[n, k]ᵀ (+ bias) for many rows of x (prefill, vision): compute-bound, so each
//! block of W is widened to f32 once and reused by every row.
//!
//! Layout (AVX-512, f32 FMA):
//! * x is packed once into panels of MR = 12 rows, [m/12][k][12] (zero rows pad the last panel), so
//!   the micro-kernel reads the 12 values of one k-step contiguously (16 × 16 register transposes).
//! * Tasks: equal column ranges of ≤ 8 panels of 32 and row blocks of ≤ 792 rows (a 448² image's 784
//!   patches in one), a multiple of the thread count where the shape allows. Per k-block of KC = 256
//!   a task packs its W columns into [32-column panel][KC][32] f32 on 64-byte lines (8 × 32 KiB,
//!   L2-resident): contiguous reads of 16 rows, transposed in registers as bf16 pairs (k, k+1)
//!   (gemm_pack.rs) and widened. Then, per chunk of MC = 20 x panels (240 rows), every W panel
//!   passes over the chunk: the W panel (32 KiB) stays in L1, the chunk's x panels and y tiles in L2.
//! * Micro-kernel: a 12 × 32 tile of y in 24 zmm accumulators; per k-step 2 loads of W, 12 broadcasts
//!   of x, 24 FMAs (the FMA ports, 2 on a Sapphire Rapids core, are the bound: 12 cycles a step);
//!   the y tile is prefetched at the start, since its read-modify-write at the end of each k-block
//!   otherwise waits on L2 or L3.
//! * Measured single-thread on the Xeon (Sapphire Rapids) VM: the kernel on L1-resident panels runs
//!   at ~86 % of the FMA peak, whole ViT products at ~65–73 % (docs/performance.md, "f32 GEMM and
//!   ViT on a 2-FMA-port Xeon"); `rate::rates` below is the harness.
use half::bf16;

/// Returns false when the CPU has neither AVX-512F nor AVX2+FMA (the caller then uses the portable
/// loop). AVX2+FMA: gemm_avx2.rs, the same packing with 6 × 16 tiles.
/// In `--precision bf16` (precision.rs) and with a bf16 dot-product unit: gemm_bf16dot.rs instead;
/// in f32 with AMX granted: the AMX product on x split into three bf16 terms (gemm_amx_split.rs).
pub(super) fn gemm_bf16(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use super::precision::{bf16_support, precision, Precision};
        if precision() == Precision::Bf16 {
            if let Some(path) = bf16_support().path {
                super::gemm_bf16dot::gemm(path, x, m, k, w, n, bias, y);
                return true;
            }
        }
        if f32_amx(m, k, n) {
            super::gemm_bf16dot::gemm_f32_amx(x, m, k, w, n, bias, y, WLayout::NK, None);
            return true;
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            avx512::gemm(x, m, k, w, n, bias, y, WLayout::NK);
            return true;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            super::gemm_avx2::gemm(x, m, k, w, n, bias, y);
            return true;
        }
    }
    let _ = (x, m, k, w, n, bias, y);
    false
}

/// Whether the f32 product of this shape runs on AMX (x split into three bf16 terms): f32 precision,
/// AMX granted and not switched off (precision::f32_gemm), a non-empty product.
#[cfg(target_arch = "x86_64")]
fn f32_amx(m: usize, k: usize, n: usize) -> bool {
    use super::precision::{f32_gemm, precision, F32Gemm, Precision};
    precision() == Precision::F32 && f32_gemm() == F32Gemm::AmxSplit && m > 0 && k > 0 && n > 0
}

/// Whether `gemm_bf16_then` runs the fused product for this shape (else it returns false having done
/// nothing): callers decide before timing, so a declined call is not counted as a product.
pub(super) fn gemm_bf16_then_runs(m: usize, k: usize, n: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use super::precision::{bf16_support, precision, Precision};
        let bf16_dot = precision() == Precision::Bf16 && bf16_support().path.is_some();
        m > super::gemv::MAX_ROWS && k > 0 && n > 0 && !bf16_dot && (f32_amx(m, k, n) || std::arch::is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, k, n);
        false
    }
}

/// `gemm_bf16` followed by `post` (an elementwise function, e.g. GELU) on y, fused: each task applies it
/// to its rows' columns right after their last k-block, while they are still in L2, instead of a
/// separate pass over y from memory afterwards (fc1's y is 784 × 4304 f32 = 13.5 MB at 448²); on the
/// f32 AMX path to each 16 × 64 block of y as it is written. The values are the same as `matmul_bf16`
/// then `post`. False (nothing done) where another kernel would
/// run the product (≤ 16 rows: the GEMV; `--precision bf16` with a bf16 unit; no AVX-512F): the caller
/// then runs the two steps.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_bf16_then(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32], post: fn(&mut [f32])) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if gemm_bf16_then_runs(m, k, n) {
            assert!(x.len() == m * k && w.len() == n * k && y.len() == m * n && bias.is_none_or(|b| b.len() == n), "gemm_bf16_then: shapes");
            if f32_amx(m, k, n) {
                // The AMX product applies `post` to each 16-row × 64-column block as it is written.
                super::gemm_bf16dot::gemm_f32_amx(x, m, k, w, n, bias, y, WLayout::NK, Some(post));
                return true;
            }
            avx512::gemm_post(x, m, k, w, n, bias, y, WLayout::NK, Some(post));
            return true;
        }
    }
    let _ = (x, m, k, w, n, bias, y, post);
    false
}

/// The AVX-512 f32 FMA GEMM whatever precision::f32_gemm chose: the error yardstick of the AMX split
/// product's test (gemm_amx_split.rs). Caller: AVX-512F present.
#[cfg(all(test, target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_fma_for_test(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32], layout: WLayout) {
    avx512::gemm(x, m, k, w, n, bias, y, layout)
}

/// How W is stored: [n, k] (linear layers, y = x·Wᵀ) or [k, n] (the VTE table, y = x·W).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum WLayout {
    NK,
    KN,
}

/// y[m, n] = x[m, k] · W[k, n] for a weight stored [k, n] (probabilities · VTE): the same packed
/// kernels, only the W packing differs. False when the CPU has no AVX-512F (the caller's loop runs).
pub(super) fn gemm_bf16_kn(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, y: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use super::precision::{bf16_support, precision, Precision};
        if precision() == Precision::Bf16 {
            if let Some(path) = bf16_support().path {
                super::gemm_bf16dot::gemm_layout(path, x, m, k, w, n, None, y, WLayout::KN);
                return true;
            }
        }
        if f32_amx(m, k, n) {
            super::gemm_bf16dot::gemm_f32_amx(x, m, k, w, n, None, y, WLayout::KN, None);
            return true;
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            avx512::gemm(x, m, k, w, n, None, y, WLayout::KN);
            return true;
        }
    }
    let _ = (x, m, k, w, n, y);
    false
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::WLayout;
    use crate::backend::cpu::gemm_pack::{for_each_pair16, transpose16};
    use crate::backend::cpu::matmul::SharedOut;
    use crate::backend::cpu::scratch::with_scratch;
    use half::bf16;
    use rayon::prelude::*;
    use std::arch::x86_64::*;
    use std::cell::RefCell;
    use std::ops::Range;

    const MR: usize = 12;
    const NR: usize = 32;
    /// Depth of one packed W panel: KC × 32 f32 = 32 KiB, L1-resident while the x panels stream.
    const KC: usize = 256;
    /// Most rows of x per task (66 panels, 792 rows: a whole 448² image's 784 patches): W is packed
    /// once per such block, so the rows of one block share each widened W panel.
    const MB: usize = 66 * MR;
    /// x panels per row chunk of a task (20 × 12 KiB at KC = 256, with their y tiles: L2-resident).
    const MC: usize = 20;
    /// Most 32-column W panels per task (8 × 32 KiB packed, L2-resident).
    const MAX_PANELS: usize = 8;

    /// Cache blocking of one product (the constants above; the timing harness sweeps them).
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Blocking {
        pub kc: usize,
        pub mb: usize,
        /// x panels per row chunk inside a task.
        pub mc: usize,
    }
    const BLOCKING: Blocking = Blocking { kc: KC, mb: MB, mc: MC };

    thread_local! {
        static X_PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
        static W_PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32], layout: WLayout) {
        gemm_blocked(x, m, k, w, n, bias, y, layout, BLOCKING, None)
    }

    /// `gemm`, then `post` on every finished row stretch of y (see `gemm_bf16_then`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm_post(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32], layout: WLayout, post: Option<fn(&mut [f32])>) {
        gemm_blocked(x, m, k, w, n, bias, y, layout, BLOCKING, post)
    }

    /// Splits `count` items into `parts` near-equal contiguous ranges; range i.
    fn share(count: usize, parts: usize, i: usize) -> Range<usize> {
        count * i / parts..count * (i + 1) / parts
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm_blocked(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32], layout: WLayout, bl: Blocking, post: Option<fn(&mut [f32])>) {
        with_scratch(&X_PACK, m.div_ceil(MR) * k * MR, |ap| {
            pack_x(x, m, k, ap);
            let threads = rayon::current_num_threads().max(1);
            let (m_panels, n_panels) = (m.div_ceil(MR), n.div_ceil(NR));
            let m_blocks = m.div_ceil(bl.mb);
            // Equal tasks, a multiple of the thread count when the shape allows (an odd task left for
            // one thread at the end idles the other: with 2 threads, 9 tasks cost 5): at least ~4 per
            // thread so work stealing can absorb a thread the OS takes away for a while.
            let mut n_tasks = n_panels.div_ceil(MAX_PANELS).max((4 * threads).div_ceil(m_blocks)).min(n_panels);
            while (m_blocks * n_tasks) % threads != 0 && n_tasks < n_panels {
                n_tasks += 1;
            }
            let max_np = n_panels.div_ceil(n_tasks);
            let out = SharedOut(y.as_mut_ptr());
            let ap = &*ap;
            (0..m_blocks * n_tasks).into_par_iter().for_each(|t| {
                let (mb, nt) = (t / n_tasks, t % n_tasks);
                let (pr, pc) = (share(m_panels, m_blocks, mb), share(n_panels, n_tasks, nt));
                let rows = pr.start * MR..m.min(pr.end * MR);
                let cols = pc.start * NR..n.min(pc.end * NR);
                with_scratch(&W_PACK, max_np * bl.kc * NR + 16, |bp| {
                    // W panels on 64-byte lines: each of the kernel's two W loads per step then reads
                    // one line, not two (a split load costs two of the L1's load slots).
                    let skip = bp.as_ptr().align_offset(64);
                    let bp = &mut bp[skip..];
                    // SAFETY: AVX-512F was detected by the caller; tasks write disjoint (rows, cols) blocks of y.
                    unsafe { task(ap, k, w, rows, cols, bias, out, n, bp, layout, bl, post) };
                });
            });
        });
    }

    /// x [m, k] → ap [⌈m/12⌉][k][12]; the rows past m of the last panel are zero. 16 steps of the
    /// panel's rows per round, read contiguously, transposed in registers (gemm_pack.rs), 12 lanes
    /// stored per step (the element-by-element copy it replaced took ~5 % of a ViT product).
    fn pack_x(x: &[f32], m: usize, k: usize, ap: &mut [f32]) {
        ap.par_chunks_mut(k * MR).enumerate().for_each(|(q, panel)| {
            let valid = MR.min(m - q * MR);
            // SAFETY: AVX-512F was detected by the caller; rows < valid lie in x, steps < k in the row.
            unsafe { pack_x_panel(&x[q * MR * k..(q * MR + valid) * k], k, valid, panel) };
        });
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn pack_x_panel(x: &[f32], k: usize, valid: usize, panel: &mut [f32]) {
        let mut kk = 0;
        while kk < k {
            let steps = (k - kk).min(16);
            let m = mask16(steps);
            let mut r = [_mm512_setzero_si512(); 16];
            for (i, v) in r.iter_mut().enumerate().take(valid) {
                *v = _mm512_maskz_loadu_epi32(m, x.as_ptr().add(i * k + kk) as *const i32);
            }
            let t = transpose16(r);
            for (j, v) in t.iter().enumerate().take(steps) {
                _mm512_mask_storeu_epi32(panel.as_mut_ptr().add((kk + j) * MR) as *mut i32, ((1u32 << MR) - 1) as __mmask16, *v);
            }
            kk += steps;
        }
    }

    /// The element-by-element x pack: the reference for `pack_x`'s test.
    #[cfg(test)]
    fn pack_x_scalar(x: &[f32], m: usize, k: usize, ap: &mut [f32]) {
        ap.par_chunks_mut(k * MR).enumerate().for_each(|(q, panel)| {
            let valid = MR.min(m - q * MR);
            for i in 0..MR {
                if i < valid {
                    let row = &x[(q * MR + i) * k..(q * MR + i + 1) * k];
                    for (kk, v) in row.iter().enumerate() {
                        panel[kk * MR + i] = *v;
                    }
                } else {
                    for kk in 0..k {
                        panel[kk * MR + i] = 0.0;
                    }
                }
            }
        });
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn task(ap: &[f32], k: usize, w: &[bf16], rows: Range<usize>, cols: Range<usize>, bias: Option<&[f32]>, out: SharedOut, n: usize, bp: &mut [f32], layout: WLayout, bl: Blocking, post: Option<fn(&mut [f32])>) {
        let kc_max = bl.kc;
        let np = cols.len().div_ceil(NR);
        let (q0, q1) = (rows.start / MR, rows.end.div_ceil(MR));
        let mut pc = 0;
        while pc < k {
            let kc = kc_max.min(k - pc);
            if layout == WLayout::KN {
                pack_w_kn_panels(w, n, cols.clone(), pc, kc, bp.as_mut_ptr(), kc_max * NR);
            }
            for p in 0..np {
                let c0 = cols.start + p * NR;
                let dst = bp.as_mut_ptr().add(p * kc_max * NR);
                if layout == WLayout::NK {
                    // The next panel's W lines (from DRAM: a ViT weight is 2.6–10 MB) are requested
                    // while this one is packed; its rows are short runs (kc · 2 bytes) the hardware
                    // prefetcher never ramps up on, and the pack otherwise waits on each line.
                    let next = if p + 1 < np { Some((c0 + NR, pc)) } else if pc + kc < k { Some((cols.start, pc + kc)) } else { None };
                    if let Some((r0, p0)) = next {
                        prefetch_w(w, k, r0, NR.min(cols.end - r0), p0, kc_max.min(k - p0));
                    }
                }
                if layout == WLayout::NK {
                    pack_w(w, k, c0, NR.min(cols.end - c0), pc, kc, dst);
                }
            }
            // Row chunks of ≤ mc panels: the chunk's x panels and y tiles stay in L2 while every W panel
            // of the block passes over them (one chunk for all rows left the y tiles of fc2, 784 × 256
            // columns, falling out of L2 between k-blocks).
            let mut qc = q0;
            while qc < q1 {
                let qe = q1.min(qc + bl.mc);
                for p in 0..np {
                    let c0 = cols.start + p * NR;
                    let nv = NR.min(cols.end - c0);
                    let b = bp.as_ptr().add(p * kc_max * NR);
                    let bias_p = bias.map(|v| v.as_ptr().add(c0));
                    for q in qc..qe {
                        let r0 = q * MR;
                        let a = ap.as_ptr().add(q * k * MR + pc * MR);
                        kernel(kc, a, b, out.at(r0 * n + c0), n, MR.min(rows.end - r0), nv, pc == 0, bias_p);
                    }
                }
                if let Some(f) = post.filter(|_| pc + kc == k) {
                    for r in qc * MR..rows.end.min(qe * MR) {
                        // SAFETY: row r's columns `cols` belong to this task alone; r < m, cols ⊂ 0..n.
                        f(std::slice::from_raw_parts_mut(out.at(r * n + cols.start), cols.len()));
                    }
                }
                qc = qe;
            }
            pc += kc;
        }
    }

    #[inline(always)]
    fn mask16(v: usize) -> __mmask16 {
        if v >= 16 {
            0xFFFF
        } else {
            ((1u32 << v) - 1) as __mmask16
        }
    }

    /// Prefetches W[r0..r0+rows, pc..pc+kc] (bf16) into L2 ahead of its pack, one request per line.
    #[inline(always)]
    unsafe fn prefetch_w(w: &[bf16], k: usize, r0: usize, rows: usize, pc: usize, kc: usize) {
        for r in r0..r0 + rows {
            let row = w.as_ptr().add(r * k + pc) as *const i8;
            let mut off = 0;
            while off < kc * 2 {
                _mm_prefetch::<_MM_HINT_T1>(row.add(off));
                off += 64;
            }
        }
    }

    /// W[r0..r0+nv, pc..pc+kc] (bf16) → dst [kc][32] f32, columns ≥ nv zero: the pairs (k, k+1) of
    /// 16 rows at a time, transposed from contiguous row reads (gemm_pack.rs); the low half of each
    /// 32-bit lane is step k (shifted up: bf16 → f32), the high half step k+1.
    #[inline(always)]
    unsafe fn pack_w(w: &[bf16], k: usize, r0: usize, nv: usize, pc: usize, kc: usize, dst: *mut f32) {
        let hi_half = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
        for half in 0..2 {
            let rows = nv.saturating_sub(16 * half).min(16);
            for_each_pair16(w, k, r0 + 16 * half, rows, pc, kc / 2, |p, v| {
                let d = dst.add(2 * p * NR + 16 * half);
                _mm512_storeu_ps(d, _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v)));
                _mm512_storeu_ps(d.add(NR), _mm512_castsi512_ps(_mm512_and_si512(v, hi_half)));
            });
        }
        if kc % 2 == 1 {
            // Odd k: the last step alone (a pair would read past the row).
            let kk = kc - 1;
            let d = dst.add(kk * NR);
            for j in 0..NR {
                *d.add(j) = if j < nv { w[(r0 + j) * k + pc + kk].to_f32() } else { 0.0 };
            }
        }
    }

    /// W[pc..pc+kc, cols] of a [k, n] table (bf16) → the task's panels (panel p at dst + p·stride floats,
    /// [kc][32] f32, columns past cols.end zero). Step by step across all panels: each k row's run of
    /// the task's columns (≤ 512 bytes, one page) is read in one sweep; panel by panel, every panel
    /// touched all kc rows' pages (4 KiB apart for the VTE) for one 64-byte line each, and the pack
    /// took ~17 % of the VTE product.
    #[inline(always)]
    unsafe fn pack_w_kn_panels(w: &[bf16], n: usize, cols: Range<usize>, pc: usize, kc: usize, dst: *mut f32, stride: usize) {
        for kk in 0..kc {
            let mut c0 = cols.start;
            let mut p = 0;
            while c0 < cols.end {
                pack_w_kn(w, n, c0, NR.min(cols.end - c0), pc + kk, 1, dst.add(p * stride + kk * NR));
                c0 += NR;
                p += 1;
            }
        }
    }

    /// W[pc..pc+kc, c0..c0+nv] of a [k, n] table (bf16) → dst [kc][32] f32, columns ≥ nv zero: each
    /// k-step is 32 contiguous bf16, widened by shifting into the high half of 32-bit lanes.
    #[inline(always)]
    unsafe fn pack_w_kn(w: &[bf16], n: usize, c0: usize, nv: usize, pc: usize, kc: usize, dst: *mut f32) {
        for kk in 0..kc {
            let src = w.as_ptr().add((pc + kk) * n + c0);
            let d = dst.add(kk * NR);
            if nv == NR {
                let lo = _mm256_loadu_si256(src as *const __m256i);
                let hi = _mm256_loadu_si256(src.add(16) as *const __m256i);
                _mm512_storeu_ps(d, _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(lo))));
                _mm512_storeu_ps(d.add(16), _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(hi))));
            } else {
                for j in 0..NR {
                    *d.add(j) = if j < nv { (*src.add(j)).to_f32() } else { 0.0 };
                }
            }
        }
    }

    /// y[12 rows, 32 cols] (+)= a [kc][12] · b [kc][32]; writes mv rows and nv columns. On the first
    /// k-block the tile is bias (or 0) + product, later blocks add to what is stored.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, mv: usize, nv: usize, first: bool, bias: Option<*const f32>) {
        // The y tile's 12 rows lie n floats apart and were last touched a whole k-block ago (out of
        // L1, often out of L2): fetch them now so the read-modify-write at the end does not wait.
        for i in 0..mv {
            let y = c.add(i * ldc) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(y);
            _mm_prefetch::<_MM_HINT_T0>(y.add(64));
            _mm_prefetch::<_MM_HINT_T0>(y.add(124));
        }
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        #[inline(always)]
        unsafe fn step(acc: &mut [[__m512; 2]; MR], a: *const f32, b: *const f32) {
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(i));
                row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            }
        }
        let mut kk = 0;
        // 4 steps per trip: the loop's own integer µops (which may issue on the two FMA ports, 0 and
        // 5) come once per 96 FMAs instead of once per 24.
        while kk + 4 <= kc {
            step(&mut acc, a.add(kk * MR), b.add(kk * NR));
            step(&mut acc, a.add((kk + 1) * MR), b.add((kk + 1) * NR));
            step(&mut acc, a.add((kk + 2) * MR), b.add((kk + 2) * NR));
            step(&mut acc, a.add((kk + 3) * MR), b.add((kk + 3) * NR));
            kk += 4;
        }
        while kk < kc {
            step(&mut acc, a.add(kk * MR), b.add(kk * NR));
            kk += 1;
        }
        let (m0, m1) = (mask16(nv.min(16)), mask16(nv.saturating_sub(16)));
        let (bias0, bias1) = match bias {
            Some(p) if first => (_mm512_maskz_loadu_ps(m0, p), _mm512_maskz_loadu_ps(m1, p.add(16))),
            _ => (_mm512_setzero_ps(), _mm512_setzero_ps()),
        };
        // A constant trip count keeps `acc` in registers; rows ≥ mv are padding.
        for (i, row) in acc.iter().enumerate() {
            if i < mv {
                let y = c.add(i * ldc);
                let (c0, c1) = if first { (bias0, bias1) } else { (_mm512_maskz_loadu_ps(m0, y), _mm512_maskz_loadu_ps(m1, y.add(16))) };
                _mm512_mask_storeu_ps(y, m0, _mm512_add_ps(c0, row[0]));
                _mm512_mask_storeu_ps(y.add(16), m1, _mm512_add_ps(c1, row[1]));
            }
        }
    }


    /// Timing harness (ignored; `cargo test --release --lib gemm::avx512::rate -- --ignored --nocapture`):
    /// single-thread rates in GFLOP per CPU-second (thread CPU time: less sensitive to the other
    /// processes sharing the cores than wall time): the FMA peak, the micro-kernel on L1-resident
    /// panels, and whole products. `OVIS_GEMM_SHAPES="m,k,n;m,k,n"` picks the products.
    #[cfg(test)]
    mod rate {
        use super::*;

        use crate::backend::cpu::profile::thread_cpu_s;

        /// Median of 3 rounds of `f` (each doing `flop` FLOPs), GFLOP per CPU-second.
        fn median_rate(flop: f64, mut f: impl FnMut()) -> f64 {
            f();
            let mut r: Vec<f64> = (0..3)
                .map(|_| {
                    let t0 = thread_cpu_s();
                    f();
                    flop / (thread_cpu_s() - t0) / 1e9
                })
                .collect();
            r.sort_by(|a, b| a.partial_cmp(b).unwrap());
            r[1]
        }

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

        #[target_feature(enable = "avx512f")]
        unsafe fn kernel_calls(calls: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
            for _ in 0..calls {
                kernel(KC, a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), NR, MR, NR, false, None);
            }
        }

        #[test]
        #[ignore]
        fn rates() {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                eprintln!("SKIP gemm::avx512::rate::rates: this CPU has no AVX-512F");
                return;
            }
            let iters = 20_000_000;
            // SAFETY: AVX-512F detected.
            let peak = median_rate(12.0 * 32.0 * iters as f64, || {
                std::hint::black_box(unsafe { fma_loop(iters) });
            });
            eprintln!("RATE peak: {peak:.1}");
            // Micro-kernel alone: one 12 × KC x panel and one KC × 32 W panel, both in L1.
            let a: Vec<f32> = (0..KC * MR).map(|i| (i % 7) as f32 * 0.1).collect();
            let b: Vec<f32> = (0..KC * NR + 16).map(|i| (i % 5) as f32 * 0.1).collect();
            let b = &b[b.as_ptr().align_offset(64) + std::env::var("OVIS_GEMM_B_OFFSET").ok().and_then(|v| v.parse().ok()).unwrap_or(0)..][..KC * NR];
            let mut c = vec![0f32; MR * NR];
            let calls = 20_000;
            let kern = median_rate(2.0 * (MR * NR * KC * calls) as f64, || {
                // SAFETY: AVX-512F detected; a, b, c hold the tile.
                unsafe { kernel_calls(calls, &a, b, &mut c) };
            });
            eprintln!("RATE kernel (L1): {kern:.1} = {:.0} % of peak", 100.0 * kern / peak);

            let shapes: Vec<(usize, usize, usize)> = match std::env::var("OVIS_GEMM_SHAPES") {
                Ok(s) => s
                    .split(';')
                    .map(|t| {
                        let v: Vec<usize> = t.split(',').map(|x| x.trim().parse().unwrap()).collect();
                        (v[0], v[1], v[2])
                    })
                    .collect(),
                Err(_) => vec![(784, 1152, 1152), (784, 1152, 4304), (784, 4304, 1152), (128, 2048, 2048), (222, 2048, 6144), (128, 6144, 2048)],
            };
            let blockings: Vec<Blocking> = match std::env::var("OVIS_GEMM_BLOCKING") {
                Ok(s) => s
                    .split(';')
                    .map(|t| {
                        let v: Vec<usize> = t.split(',').map(|x| x.trim().parse().unwrap()).collect();
                        Blocking { kc: v[0], mb: v[1], mc: v[2] }
                    })
                    .collect(),
                Err(_) => vec![BLOCKING],
            };
            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
            // OVIS_GEMM_LAYOUT=kn: W stored [k, n] (the VTE product).
            let layout = if std::env::var("OVIS_GEMM_LAYOUT").is_ok_and(|v| v == "kn") { WLayout::KN } else { WLayout::NK };
            let rounds: usize = std::env::var("OVIS_GEMM_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
            for (m, k, n) in shapes {
                let x: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
                let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32(((i * 5 % 11) as f32 - 5.0) / 9.0)).collect();
                let bias: Vec<f32> = (0..n).map(|j| j as f32).collect();
                let mut y = vec![0f32; m * n];
                let flop = 2.0 * (m * k * n) as f64;
                let reps = (3e9 / flop).ceil() as usize;
                // Interleaved: per round a short peak measurement, then each variant once; the
                // median over rounds of rate ÷ that round's peak.
                let mut shares = vec![Vec::new(); blockings.len()];
                for _ in 0..rounds {
                    let it = 4_000_000;
                    let t0 = thread_cpu_s();
                    // SAFETY: AVX-512F detected.
                    std::hint::black_box(unsafe { fma_loop(it) });
                    let pk = 12.0 * 32.0 * it as f64 / (thread_cpu_s() - t0) / 1e9;
                    for (v, &bl) in blockings.iter().enumerate() {
                        let r = pool.install(|| {
                            let t0 = thread_cpu_s();
                            for _ in 0..reps {
                                gemm_blocked(&x, m, k, &w, n, Some(&bias[..]).filter(|_| layout == WLayout::NK), &mut y, layout, bl, None);
                            }
                            flop * reps as f64 / (thread_cpu_s() - t0) / 1e9
                        });
                        shares[v].push(r / pk);
                    }
                }
                for (v, bl) in blockings.iter().enumerate() {
                    let sh = &mut shares[v];
                    sh.sort_by(|a, b| a.partial_cmp(b).unwrap());
                    eprintln!("RATE {m}x{k}x{n} {bl:?}: median {:.1} % of peak (min {:.1}, max {:.1})", 100.0 * sh[sh.len() / 2], 100.0 * sh[0], 100.0 * sh[sh.len() - 1]);
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The whole product against an f64 reference, with bias, on shapes that cross every blocking
        /// edge: partial 12-row panels and 32-column panels, k-blocks (256) with an odd remainder, row
        /// chunks (MC panels), two row blocks (MB rows), one and many column tasks; both W layouts.
        /// Bound: |error| ≤ 1e-5 · Σ|terms| + 1e-6 (f32 sums of ≤ 600 products).
        #[test]
        fn gemm_matches_f64_reference() {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                eprintln!("SKIP gemm::avx512::gemm_matches_f64_reference: this CPU has no AVX-512F");
                return;
            }
            for &(m, k, n) in &[(17usize, 33usize, 70usize), (250, 300, 100), (MB + 13, 519, 40), (29, 600, 300)] {
                let x: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
                let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32(((i * 5 % 11) as f32 - 5.0) / 9.0)).collect();
                let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.25 - 3.0).collect();
                for layout in [WLayout::NK, WLayout::KN] {
                    let wv = |l: usize, j: usize| match layout {
                        WLayout::NK => w[j * k + l].to_f64(),
                        WLayout::KN => w[l * n + j].to_f64(),
                    };
                    let b = if layout == WLayout::NK { Some(&bias[..]) } else { None };
                    let mut y = vec![f32::NAN; m * n];
                    gemm(&x, m, k, &w, n, b, &mut y, layout);
                    for i in 0..m {
                        for j in 0..n {
                            let r: f64 = (0..k).map(|l| x[i * k + l] as f64 * wv(l, j)).sum::<f64>() + b.map_or(0.0, |b| b[j] as f64);
                            let mag: f64 = (0..k).map(|l| (x[i * k + l] as f64 * wv(l, j)).abs()).sum();
                            let v = y[i * n + j] as f64;
                            assert!((v - r).abs() <= 1e-5 * mag + 1e-6, "{layout:?} m={m} k={k} n={n}: y[{i},{j}] = {v}, want {r}");
                        }
                    }
                }
            }
        }

        /// The fused epilogue gives exactly the product followed by the function, over several tasks,
        /// row chunks and k-blocks (the function must see every element once, after the last k-block).
        #[test]
        fn post_matches_separate_pass() {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                eprintln!("SKIP gemm::avx512::post_matches_separate_pass: this CPU has no AVX-512F");
                return;
            }
            fn square_plus_one(v: &mut [f32]) {
                v.iter_mut().for_each(|x| *x = *x * *x + 1.0);
            }
            let (m, k, n) = (MC * MR + 29, 600, 300);
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
            let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32(((i * 5 % 11) as f32 - 5.0) / 9.0)).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.25 - 3.0).collect();
            let (mut a, mut b) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            gemm(&x, m, k, &w, n, Some(&bias), &mut a, WLayout::NK);
            square_plus_one(&mut a);
            gemm_post(&x, m, k, &w, n, Some(&bias), &mut b, WLayout::NK, Some(square_plus_one));
            for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                assert_eq!(p.to_bits(), q.to_bits(), "element {i}: {p} vs {q}");
            }
        }

        /// The transposing x pack against the element-by-element one: partial last panels, k not a
        /// multiple of 16, k below 16.
        #[test]
        fn pack_x_matches_scalar() {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                eprintln!("SKIP gemm::avx512::pack_x_matches_scalar: this CPU has no AVX-512F");
                return;
            }
            for &(m, k) in &[(1usize, 1usize), (12, 16), (25, 37), (13, 300), (36, 5)] {
                let x: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
                let len = m.div_ceil(MR) * k * MR;
                let (mut a, mut b) = (vec![f32::NAN; len], vec![f32::NAN; len]);
                pack_x_scalar(&x, m, k, &mut a);
                pack_x(&x, m, k, &mut b);
                for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                    assert_eq!(p.to_bits(), q.to_bits(), "m={m} k={k}: element {i}");
                }
            }
        }

        /// The transposing W pack against element-by-element widening: partial column panels
        /// (nv < 16, 16 < nv < 32), k-blocks shorter than a 16-pair block, odd, and at an offset pc.
        #[test]
        fn pack_w_matches_scalar() {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                eprintln!("SKIP gemm::avx512::pack_w_matches_scalar: this CPU has no AVX-512F");
                return;
            }
            let (n, k) = (40, 300);
            let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32(((i * 53 % 89) as f32 - 44.0) / 44.0)).collect();
            for &(r0, nv, pc, kc) in &[(0, 32, 0, 256), (8, 32, 0, 33), (3, 5, 7, 1), (1, 17, 256, 44), (0, 16, 1, 31), (7, 30, 10, 290)] {
                let mut dst = vec![f32::NAN; kc * NR];
                // SAFETY: AVX-512F detected; r0 + nv ≤ n, pc + kc ≤ k, dst holds kc × 32.
                unsafe { pack_w(&w, k, r0, nv, pc, kc, dst.as_mut_ptr()) };
                for kk in 0..kc {
                    for j in 0..NR {
                        let want = if j < nv { w[(r0 + j) * k + pc + kk].to_f32() } else { 0.0 };
                        assert_eq!(dst[kk * NR + j].to_bits(), want.to_bits(), "r0={r0} nv={nv} pc={pc} kc={kc}: [{kk}][{j}]");
                    }
                }
            }
        }
    }
}

