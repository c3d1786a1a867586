//! y[r, n] = x[r, k] · W[n, k]ᵀ (+ bias) for r ≤ 16 rows of x (decode, one row per running request):
//! W (bf16, [n, k]) is streamed from memory exactly once per call for all rows, split over n across
//! threads, and widened to f32 in registers.
//!
//! Kernel chosen at run time: AMX-BF16 tiles where granted and chosen (`gemv_amx`: x split into
//! three exact bf16 terms, f32 arithmetic; opt-in, see `AMX_DEFAULT`), else AVX-512F (`gemv_avx512`: register-blocked tiles of up to 8 rows, k-blocked
//! so x stays in L1, software prefetch of W), else AVX2 + FMA (`gemv_avx2`), else the caller's
//! portable loop (`matmul::portable`, which also widens each W row once for all rows).
//! `OVIS_CPU_GEMV=amx|avx512` forces the choice between the first two (A/B runs).
use half::bf16;

/// The most rows of x handled here (the default batch of 8 decoding streams plus a small prefill
/// chunk); more go to the GEMM.
pub const MAX_ROWS: usize = 16;

/// Which kernel `gemv_bf16` runs on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    Amx,
    Avx512,
    Avx2,
    Portable,
}

/// Whether this CPU can run `kernel`.
pub fn available(kernel: Kernel) -> bool {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Amx => super::gemv_amx::available(),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => super::gemv_avx2::available(),
        Kernel::Portable => true,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// Whether the AMX kernel is chosen when the CPU and process can run it and OVIS_CPU_GEMV does not
/// say otherwise. Off: one kernel serves every row count (a request's logits may not depend on its
/// neighbours), and on the Sapphire Rapids test VM AMX's one-row speed from DRAM is 0.75–0.88× the
/// AVX-512 kernel's (8 rows: 1.03–1.15×; docs/performance.md, "AMX decode GEMV").
const AMX_DEFAULT: bool = false;

/// The kernel `gemv_bf16` runs: OVIS_CPU_GEMV=amx|avx512 if that one is available, else the
/// default order (decided once per process).
pub fn kernel() -> Kernel {
    static K: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
    *K.get_or_init(|| {
        let forced = match std::env::var("OVIS_CPU_GEMV").as_deref() {
            Ok("amx") => Some(Kernel::Amx),
            Ok("avx512") => Some(Kernel::Avx512),
            _ => None,
        };
        match forced {
            Some(k) if available(k) => k,
            _ if AMX_DEFAULT && available(Kernel::Amx) => Kernel::Amx,
            _ => detected(),
        }
    })
}

/// For `ovis info` (`weights_kernel` of bf16 weights) and the bench's "kernels": the GEMV kernel's name.
pub fn kernel_name() -> &'static str {
    match kernel() {
        Kernel::Amx => "amx-bf16",
        Kernel::Avx512 => "avx512f",
        Kernel::Avx2 => "avx2+fma",
        Kernel::Portable => "portable",
    }
}

/// The fastest SIMD kernel without AMX.
fn detected() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Kernel::Avx512;
        }
        if super::gemv_avx2::available() {
            return Kernel::Avx2;
        }
    }
    Kernel::Portable
}

/// Returns false when the CPU has neither AVX-512F nor AVX2 + FMA (the caller then uses the portable loop).
pub(super) fn gemv_bf16(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) -> bool {
    gemv_with(kernel(), x, m, k, w, n, bias, y)
}

/// `gemv_bf16` with a given kernel (tests run each one the CPU has); false for `Portable`, and for a
/// kernel this CPU cannot run (`available`).
#[allow(clippy::too_many_arguments)]
pub fn gemv_with(kernel: Kernel, x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) -> bool {
    assert!((1..=MAX_ROWS).contains(&m) && k > 0, "gemv: 1..={MAX_ROWS} rows and k ≥ 1, got m = {m}, k = {k}");
    assert!(x.len() == m * k && w.len() == n * k && y.len() == m * n && bias.is_none_or(|b| b.len() == n), "gemv: shapes do not match m = {m}, k = {k}, n = {n}");
    if !available(kernel) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        match kernel {
            Kernel::Amx => {
                super::gemv_amx::gemv(x, m, k, w, n, bias, y);
                return true;
            }
            Kernel::Avx512 => {
                super::gemv_avx512::gemv(x, m, k, w, n, bias, y);
                return true;
            }
            Kernel::Avx2 => {
                super::gemv_avx2::gemv(x, m, k, w, n, bias, y);
                return true;
            }
            Kernel::Portable => {}
        }
    }
    let _ = (kernel, x, m, k, w, n, bias, y);
    false
}

/// One product of a fused call: W [n, k] and its output y [m, n].
pub struct Part<'a> {
    pub w: &'a [bf16],
    pub n: usize,
    pub y: &'a mut [f32],
}

/// The products of one x [m, k] (1 ≤ m ≤ 16) by several matrices (a layer's q/k/v, or gate/up) in
/// one parallel pass: x packed once, one fork-join for all of them (7 → 4 per decoder layer), tasks
/// spread over all the rows. Each output equals `gemv_bf16`'s for its matrix (same kernel, same
/// order). False where the kernel is neither AMX nor AVX-512F: the caller then runs the products one
/// by one.
pub fn gemv_bf16_fused(x: &[f32], m: usize, k: usize, parts: &mut [Part<'_>]) -> bool {
    gemv_fused_with(kernel(), x, m, k, parts)
}

/// `gemv_bf16_fused` with a given kernel (tests run each one the CPU has); false for a kernel that
/// does not fuse (AVX2, portable) or that this CPU cannot run.
pub fn gemv_fused_with(kern: Kernel, x: &[f32], m: usize, k: usize, parts: &mut [Part<'_>]) -> bool {
    assert!((1..=MAX_ROWS).contains(&m) && k > 0 && x.len() == m * k, "gemv_fused: 1..={MAX_ROWS} rows of k ≥ 1, got m = {m}, k = {k}");
    for p in parts.iter() {
        assert!(p.w.len() == p.n * k && p.y.len() == m * p.n, "gemv_fused: shapes do not match m = {m}, k = {k}, n = {}", p.n);
    }
    #[cfg(target_arch = "x86_64")]
    {
        if (kern == Kernel::Avx512 || kern == Kernel::Amx) && available(kern) {
            let mut v: Vec<(&[bf16], usize, &mut [f32])> = parts.iter_mut().map(|p| (p.w, p.n, &mut *p.y)).collect();
            if kern == Kernel::Amx {
                super::gemv_amx::gemv_fused(x, m, k, &mut v);
            } else {
                super::gemv_avx512::gemv_fused(x, m, k, &mut v);
            }
            return true;
        }
    }
    false
}

/// The parallel pass of a fused GEMV (both kernels' `gemv_fused`): every part's W rows in tasks of
/// `per` rows (a part's last task may be shorter), one fork-join for all the parts; `run(w, n, y,
/// j0, j1)` computes columns j0..j1 of one part's y [m, n] and writes nothing else.
#[cfg(target_arch = "x86_64")]
pub(super) fn for_each_fused_task(parts: &mut [(&[bf16], usize, &mut [f32])], per: usize, run: impl Fn(&[bf16], usize, super::matmul::SharedOut, usize, usize) + Sync) {
    use rayon::prelude::*;
    let mut tasks = Vec::new(); // (part, first W row, end)
    for (i, p) in parts.iter().enumerate() {
        tasks.extend((0..p.1).step_by(per).map(|j0| (i, j0, p.1.min(j0 + per))));
    }
    let outs: Vec<(&[bf16], usize, super::matmul::SharedOut)> = parts.iter_mut().map(|p| (&*p.0, p.1, super::matmul::SharedOut(p.2.as_mut_ptr()))).collect();
    tasks.into_par_iter().for_each(|(i, j0, j1)| {
        let (w, n, out) = outs[i];
        run(w, n, out, j0, j1);
    });
}
