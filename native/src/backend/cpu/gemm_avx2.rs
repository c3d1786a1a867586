//! The AVX2+FMA form of gemm.rs's packed product (CPUs without AVX-512, e.g. the AMD EPYC VMs this
//! project also runs on): y[m, n] = x[m, k] · W[n, k]ᵀ (+ bias), f32 FMAs on bf16 weights widened once
//! per panel.
//!
//! Layout (16 ymm registers):
//! * x packed once into panels of MR = 6 rows, [⌈m/6⌉][k][6] (zero rows pad the last panel).
//! * Each task owns ≤ MAX_PANELS·16 columns of W and ≤ MB rows of x. Per k-block of KC = 256 it widens
//!   its W block into [16-column panel][KC][16] f32 (16 KiB a panel: one stays in L1 while the x panels,
//!   6 KiB each, stream from L2).
//! * Micro-kernel: a 6 × 16 tile of y in 12 ymm accumulators; per k-step 2 loads of W, 6 broadcasts of
//!   x, 12 FMAs. Partial tiles (m or n not a multiple) go through a small buffer.
use crate::backend::cpu::matmul::SharedOut;
use crate::backend::cpu::scratch::with_scratch;
use half::bf16;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::cell::RefCell;
use std::ops::Range;

const MR: usize = 6;
const NR: usize = 16;
const KC: usize = 256;
/// Rows of x per task (64 panels): W is widened once per such block, 1/384 of the FMAs.
const MB: usize = 64 * MR;
const MAX_PANELS: usize = 8;

thread_local! {
    static X_PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static W_PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Caller checked: AVX2 and FMA present, shapes consistent, m, n, k ≥ 1.
pub(super) fn gemm(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    with_scratch(&X_PACK, m.div_ceil(MR) * k * MR, |ap| {
        pack_x(x, m, k, ap);
        let threads = rayon::current_num_threads().max(1);
        let n_panels = n.div_ceil(NR);
        let m_blocks = m.div_ceil(MB);
        // At least ~4 tasks per thread when the shape allows, so work stealing can balance them.
        let want = (4 * threads).div_ceil(m_blocks);
        let ppt = (n_panels / want).clamp(1, MAX_PANELS);
        let n_tasks = n_panels.div_ceil(ppt);
        let out = SharedOut(y.as_mut_ptr());
        let ap = &*ap;
        (0..m_blocks * n_tasks).into_par_iter().for_each(|t| {
            let (mb, nt) = (t / n_tasks, t % n_tasks);
            let rows = mb * MB..m.min((mb + 1) * MB);
            let cols = nt * ppt * NR..n.min((nt + 1) * ppt * NR);
            with_scratch(&W_PACK, ppt * KC * NR, |bp| {
                // SAFETY: AVX2+FMA detected by the caller; tasks write disjoint (rows, cols) blocks of y.
                unsafe { task(ap, k, w, rows, cols, bias, out, n, bp) };
            });
        });
    });
}

/// x [m, k] → ap [⌈m/6⌉][k][6]; the rows past m of the last panel are zeroed.
fn pack_x(x: &[f32], m: usize, k: usize, ap: &mut [f32]) {
    ap.par_chunks_mut(k * MR).enumerate().for_each(|(q, panel)| {
        let valid = MR.min(m - q * MR);
        for i in 0..MR {
            if i < valid {
                for (kk, v) in x[(q * MR + i) * k..(q * MR + i + 1) * k].iter().enumerate() {
                    panel[kk * MR + i] = *v;
                }
            } else {
                (0..k).for_each(|kk| panel[kk * MR + i] = 0.0);
            }
        }
    });
}

#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn task(ap: &[f32], k: usize, w: &[bf16], rows: Range<usize>, cols: Range<usize>, bias: Option<&[f32]>, out: SharedOut, n: usize, bp: &mut [f32]) {
    let np = cols.len().div_ceil(NR);
    let (q0, q1) = (rows.start / MR, rows.end.div_ceil(MR));
    let mut pc = 0;
    while pc < k {
        let kc = KC.min(k - pc);
        for p in 0..np {
            let c0 = cols.start + p * NR;
            pack_w(w, k, c0, NR.min(cols.end - c0), pc, kc, &mut bp[p * KC * NR..(p + 1) * KC * NR]);
        }
        for p in 0..np {
            let c0 = cols.start + p * NR;
            let nv = NR.min(cols.end - c0);
            let b = bp.as_ptr().add(p * KC * NR);
            let bias_p = if pc == 0 { bias.map(|v| &v[c0..c0 + nv]) } else { None };
            for q in q0..q1 {
                let r0 = q * MR;
                let a = ap.as_ptr().add(q * k * MR + pc * MR);
                kernel(kc, a, b, out.at(r0 * n + c0), n, MR.min(rows.end - r0), nv, pc == 0, bias_p);
            }
        }
        pc += kc;
    }
}

/// W[r0..r0+nv, pc..pc+kc] (bf16) → dst [kc][16] f32 (bf16 → f32 is the bits shifted up 16), columns
/// ≥ nv zero. Each W row is read contiguously; the writes stride by 16 floats (one line per 4 steps).
#[inline(always)]
fn pack_w(w: &[bf16], k: usize, r0: usize, nv: usize, pc: usize, kc: usize, dst: &mut [f32]) {
    for j in 0..NR {
        if j < nv {
            let row = &w[(r0 + j) * k + pc..(r0 + j) * k + pc + kc];
            for (kk, v) in row.iter().enumerate() {
                dst[kk * NR + j] = f32::from_bits((v.to_bits() as u32) << 16);
            }
        } else {
            (0..kc).for_each(|kk| dst[kk * NR + j] = 0.0);
        }
    }
}

/// y[6 rows, 16 cols] (+)= a [kc][6] · b [kc][16]; writes mv rows and nv columns. On the first k-block
/// the tile is bias (or 0) + product, later blocks add to what is stored.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, mv: usize, nv: usize, first: bool, bias: Option<&[f32]>) {
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for kk in 0..kc {
        let b0 = _mm256_loadu_ps(b.add(kk * NR));
        let b1 = _mm256_loadu_ps(b.add(kk * NR + 8));
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(kk * MR + i));
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
    }
    if mv == MR && nv == NR {
        let (bias0, bias1) = match bias {
            Some(p) => (_mm256_loadu_ps(p.as_ptr()), _mm256_loadu_ps(p.as_ptr().add(8))),
            None => (_mm256_setzero_ps(), _mm256_setzero_ps()),
        };
        for (i, row) in acc.iter().enumerate() {
            let y = c.add(i * ldc);
            let (c0, c1) = if first { (bias0, bias1) } else { (_mm256_loadu_ps(y), _mm256_loadu_ps(y.add(8))) };
            _mm256_storeu_ps(y, _mm256_add_ps(c0, row[0]));
            _mm256_storeu_ps(y.add(8), _mm256_add_ps(c1, row[1]));
        }
        return;
    }
    // Edge tile: through a buffer, only the valid mv × nv part touches y.
    let mut buf = [0f32; MR * NR];
    for (i, row) in acc.iter().enumerate() {
        _mm256_storeu_ps(buf.as_mut_ptr().add(i * NR), row[0]);
        _mm256_storeu_ps(buf.as_mut_ptr().add(i * NR + 8), row[1]);
    }
    for i in 0..mv {
        for j in 0..nv {
            let y = c.add(i * ldc + j);
            let base = if first { bias.map_or(0.0, |b| b[j]) } else { *y };
            *y = base + buf[i * NR + j];
        }
    }
}

#[cfg(test)]
mod tests {
    /// The AVX2 kernel itself (an AVX-512 CPU dispatches elsewhere) against an f64 reference on edge
    /// shapes: partial tiles in m and n, k across the 256 block, m across the 384-row task block.
    /// Bound: |error| ≤ 1e-5 · Σ|terms| + 1e-6 (f32 accumulation of ≤ 600 products).
    #[test]
    fn matches_f64_reference() {
        if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")) {
            eprintln!("SKIP gemm_avx2::matches_f64_reference: this CPU has no AVX2+FMA");
            return;
        }
        for &(m, k, n) in &[(7, 1, 1), (6, 16, 16), (13, 257, 33), (390, 600, 50)] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
            let w: Vec<half::bf16> = (0..n * k).map(|i| half::bf16::from_f32(((i * 53 % 89) as f32 - 44.0) / 44.0)).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
            let mut y = vec![f32::NAN; m * n];
            super::gemm(&x, m, k, &w, n, Some(&bias), &mut y);
            for i in 0..m {
                for j in 0..n {
                    let (mut want, mut mag) = (bias[j] as f64, (bias[j] as f64).abs());
                    for t in 0..k {
                        let p = x[i * k + t] as f64 * w[j * k + t].to_f64();
                        want += p;
                        mag += p.abs();
                    }
                    let got = y[i * n + j] as f64;
                    assert!((got - want).abs() <= 1e-5 * mag + 1e-6, "m={m} k={k} n={n}: y[{i},{j}] = {got}, want {want}");
                }
            }
        }
    }
}
