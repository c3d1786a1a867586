//! y[r, n] = x[r, k] · W[n, k]ᵀ (+ bias) for r ≤ 16 rows of x (decode, one row per running request):
//! W (bf16, [n, k]) is streamed from memory exactly once per call for all rows, split over n across
//! threads, and widened to f32 in registers.
//!
//! Kernel chosen at run time: AVX-512F (`gemv_avx512`: register-blocked tiles of up to 8 rows,
//! k-blocked so x stays in L1, software prefetch of W), else AVX2 + FMA (`gemv_avx2`), else the
//! caller's portable loop (`matmul::portable`, which also widens each W row once for all rows).
use half::bf16;

/// The most rows of x handled here (the default batch of 8 decoding streams plus a small prefill
/// chunk); more go to the GEMM.
pub const MAX_ROWS: usize = 16;

/// Which kernel `gemv_bf16` runs on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    Avx512,
    Avx2,
    Portable,
}

/// Whether this CPU can run `kernel`.
pub fn available(kernel: Kernel) -> bool {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => super::gemv_avx2::available(),
        Kernel::Portable => true,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// The fastest kernel this CPU can run.
pub fn kernel() -> Kernel {
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
/// order). False where the CPU has no AVX-512F: the caller then runs the products one by one.
pub fn gemv_bf16_fused(x: &[f32], m: usize, k: usize, parts: &mut [Part<'_>]) -> bool {
    assert!((1..=MAX_ROWS).contains(&m) && k > 0 && x.len() == m * k, "gemv_fused: 1..={MAX_ROWS} rows of k ≥ 1, got m = {m}, k = {k}");
    for p in parts.iter() {
        assert!(p.w.len() == p.n * k && p.y.len() == m * p.n, "gemv_fused: shapes do not match m = {m}, k = {k}, n = {}", p.n);
    }
    #[cfg(target_arch = "x86_64")]
    {
        if kernel() == Kernel::Avx512 {
            let mut v: Vec<(&[bf16], usize, &mut [f32])> = parts.iter_mut().map(|p| (p.w, p.n, &mut *p.y)).collect();
            super::gemv_avx512::gemv_fused(x, m, k, &mut v);
            return true;
        }
    }
    false
}
