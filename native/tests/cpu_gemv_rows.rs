//! The multi-row GEMV (decode of 1–16 running requests in one step) against an f64 reference: every
//! kernel this CPU can run (AVX-512F, AVX2 + FMA; the portable loop always), every row count 1..=16
//! (AVX-512: tiles of 1–8 rows, one or two per call), with and without a bias, on shapes with k below,
//! at and past the vector widths (8, 32) and the 256-column k chunk, and n not a multiple of the W-row
//! groups (2–8), of the 48-row pass or of a task; then `matmul_bf16` past 16 rows (the
//! AVX2 kernel in 64-row blocks on CPUs without the AVX-512 GEMM). Tolerance: |y − ref| ≤ 1e-5 ·
//! Σ|terms| + 1e-6 (f32 accumulation in a different order).
mod skip;

use half::bf16;
use ovis_engine::backend::cpu::gemv::{available, gemv_with, Kernel, MAX_ROWS};
use ovis_engine::backend::cpu::matmul::matmul_bf16;

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919 + seed * 104_729) % 1009) as f32 / 504.5 - 1.0).collect()
}

fn inputs(m: usize, k: usize, n: usize) -> (Vec<f32>, Vec<bf16>, Vec<f32>) {
    (values(m * k, m + k), values(n * k, n).into_iter().map(bf16::from_f32).collect(), values(n, 3))
}

#[allow(clippy::too_many_arguments)]
fn check(what: &str, x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &[f32]) {
    for i in 0..m {
        for j in 0..n {
            let mut want = bias.map_or(0.0, |b| b[j] as f64);
            let mut mag = want.abs();
            for t in 0..k {
                let p = x[i * k + t] as f64 * w[j * k + t].to_f64();
                want += p;
                mag += p.abs();
            }
            let got = y[i * n + j] as f64;
            assert!((got - want).abs() <= 1e-5 * mag + 1e-6, "{what} m={m} k={k} n={n}: y[{i},{j}] = {got}, want {want}");
        }
    }
}

#[test]
fn every_kernel_every_row_count() {
    let mut kernels = Vec::new();
    for kernel in [Kernel::Avx512, Kernel::Avx2] {
        if available(kernel) {
            kernels.push(kernel);
        } else {
            skip::skipped("every_kernel_every_row_count", &format!("the {kernel:?} kernel: this CPU cannot run it (the others are tested)"));
        }
    }
    for m in 1..=MAX_ROWS {
        for &(k, n) in &[(1, 1), (7, 5), (8, 3), (31, 7), (33, 13), (100, 37), (257, 250), (600, 11), (1000, 101), (2048, 9)] {
            let (x, w, b) = inputs(m, k, n);
            // Odd (k, n) pairs get a bias on even row counts, even pairs on odd ones: both for every m.
            let bias = ((m + k + n) % 2 == 1).then_some(&b[..]);
            for &kernel in &kernels {
                let mut y = vec![f32::NAN; m * n];
                assert!(gemv_with(kernel, &x, m, k, &w, n, bias, &mut y), "{kernel:?} is available");
                check(&format!("{kernel:?}"), &x, m, k, &w, n, bias, &y);
            }
            assert!(!gemv_with(Kernel::Portable, &x, m, k, &w, n, bias, &mut vec![0.0; m * n]), "Portable is the caller's loop");
            let mut y = vec![f32::NAN; m * n];
            matmul_bf16(&x, m, k, &w, n, bias, &mut y);
            check("matmul_bf16", &x, m, k, &w, n, bias, &y);
        }
    }
}

/// Past 16 rows: up to and across the AVX2 kernel's 64-row block.
#[test]
fn many_rows_through_matmul() {
    for &(m, k, n) in &[(17, 33, 13), (31, 257, 10), (64, 300, 7), (65, 40, 9), (150, 70, 33)] {
        let (x, w, b) = inputs(m, k, n);
        let mut y = vec![f32::NAN; m * n];
        matmul_bf16(&x, m, k, &w, n, Some(&b), &mut y);
        check("matmul_bf16", &x, m, k, &w, n, Some(&b), &y);
    }
}
