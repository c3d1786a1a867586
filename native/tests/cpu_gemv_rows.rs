//! The multi-row GEMV (decode of 1–16 running requests in one step) against an f64 reference: every
//! kernel this CPU can run (AMX-BF16 where the tiles are granted, AVX-512F, AVX2 + FMA; the portable
//! loop always), every row count 1..=16 (AVX-512: tiles of 1–8 rows, one or two per call; AMX: 1–3 B
//! tiles), with and without a bias, on shapes with k below,
//! at and past the vector widths (8, 32) and the 256-column k chunk, and n not a multiple of the W-row
//! groups (2–8), of the 48-row pass or of a task; then `matmul_bf16` past 16 rows (the
//! AVX2 kernel in 64-row blocks on CPUs without the AVX-512 GEMM). Tolerance: |y − ref| ≤ 1e-5 ·
//! Σ|terms| + 1e-6 (f32 accumulation in a different order).
mod skip;

use half::bf16;
use ovis_engine::backend::cpu::gemv::{available, gemv_bf16_fused, gemv_fused_with, gemv_with, Kernel, Part, MAX_ROWS};
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
    for kernel in [Kernel::Amx, Kernel::Avx512, Kernel::Avx2] {
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

/// A request's outputs must not depend on what runs beside it: row r of an m-row call equals, bit for
/// bit, the same x row run alone (every kernel this CPU has, every m, every position in the batch).
#[test]
fn rows_do_not_depend_on_their_neighbours() {
    let kernels: Vec<Kernel> = [Kernel::Amx, Kernel::Avx512, Kernel::Avx2].into_iter().filter(|&k| available(k)).collect();
    if !available(Kernel::Amx) {
        skip::skipped("rows_do_not_depend_on_their_neighbours[amx]", "no AMX-BF16 tiles granted on this CPU (the other kernels are tested)");
    }
    if kernels.is_empty() {
        skip::skipped("rows_do_not_depend_on_their_neighbours", "no SIMD GEMV kernel on this CPU (the portable loop is row by row)");
        return;
    }
    for &(k, n) in &[(33, 13), (300, 50), (2048, 24)] {
        let (x, w, b) = inputs(MAX_ROWS, k, n);
        for &kernel in &kernels {
            let alone: Vec<Vec<f32>> = (0..MAX_ROWS)
                .map(|r| {
                    let mut y = vec![f32::NAN; n];
                    assert!(gemv_with(kernel, &x[r * k..(r + 1) * k], 1, k, &w, n, Some(&b), &mut y));
                    y
                })
                .collect();
            for m in 2..=MAX_ROWS {
                // rows (16 - m)..16: each row also sits at a different position for each m
                let first = MAX_ROWS - m;
                let mut y = vec![f32::NAN; m * n];
                assert!(gemv_with(kernel, &x[first * k..MAX_ROWS * k], m, k, &w, n, Some(&b), &mut y));
                for i in 0..m {
                    let same = y[i * n..(i + 1) * n].iter().zip(&alone[first + i]).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{kernel:?} k={k} n={n}: row {} at position {i} of {m} differs from its run alone", first + i);
                }
            }
        }
    }
}

/// The fused pass over several matrices of one x (q/k/v, gate/up) gives each output bit for bit what
/// its own product gives, for every row count, with parts of uneven sizes (tasks cross part ends).
#[test]
fn fused_products_equal_their_own() {
    let kernels: Vec<Kernel> = [Kernel::Amx, Kernel::Avx512].into_iter().filter(|&k| available(k)).collect();
    if kernels.is_empty() {
        let mut y = vec![0.0; 3];
        let w = vec![bf16::ONE; 3];
        assert!(!gemv_bf16_fused(&[1.0], 1, 1, &mut [Part { w: &w, n: 3, y: &mut y }]), "only the AMX and AVX-512 kernels fuse");
        skip::skipped("fused_products_equal_their_own", "no AVX-512F: the caller runs the products one by one (checked: the fused call says so)");
        return;
    }
    if !available(Kernel::Amx) {
        skip::skipped("fused_products_equal_their_own[amx]", "no AMX-BF16 tiles granted on this CPU (AVX-512 tested)");
    }
    for &fused_kernel in &kernels {
        for m in [1, 2, 3, 8, 9, 16] {
            for &(k, ns) in &[(64, &[48usize, 8, 8][..]), (257, &[100, 37, 37][..]), (2048, &[96, 400][..])] {
                let x = values(m * k, m + 7 * k);
                let ws: Vec<Vec<bf16>> = ns.iter().enumerate().map(|(i, &n)| values(n * k, 11 + i).into_iter().map(bf16::from_f32).collect()).collect();
                let mut ys: Vec<Vec<f32>> = ns.iter().map(|&n| vec![f32::NAN; m * n]).collect();
                let mut parts: Vec<Part> = ws.iter().zip(ys.iter_mut()).zip(ns).map(|((w, y), &n)| Part { w, n, y }).collect();
                assert!(gemv_fused_with(fused_kernel, &x, m, k, &mut parts));
                for ((w, y), &n) in ws.iter().zip(&ys).zip(ns) {
                    let mut own = vec![f32::NAN; m * n];
                    assert!(gemv_with(fused_kernel, &x, m, k, w, n, None, &mut own));
                    assert!(y.iter().zip(&own).all(|(a, b)| a.to_bits() == b.to_bits()), "{fused_kernel:?} m={m} k={k} n={n}: fused differs from its own product");
                }
            }
        }
    }
}

/// The AMX kernel's error against the f64 reference is at the f32 GEMV level: within `check`'s bound
/// everywhere, and its RMS relative error (to Σ|terms|) within 2× the AVX-512 kernel's
/// on the decoder's shapes (k = 2048, 6144) with activations of mixed magnitudes. Prints both.
#[test]
fn amx_error_is_at_the_f32_level() {
    if !available(Kernel::Amx) || !available(Kernel::Avx512) {
        skip::skipped("amx_error_is_at_the_f32_level", "needs both the AMX (tiles granted) and AVX-512 kernels");
        return;
    }
    let mut s = 0x2545_f491u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    for &(m, k, n) in &[(1, 2048, 256), (8, 2048, 256), (3, 6144, 64), (16, 2048, 64)] {
        // x: normal-ish values with a few outliers 100× larger (as hidden states have); W ~ 0.02.
        let x: Vec<f32> = (0..m * k).map(|i| (rnd() * if i % 97 == 0 { 300.0 } else { 3.0 }) as f32).collect();
        let w: Vec<bf16> = (0..n * k).map(|_| bf16::from_f64(rnd() * 0.04)).collect();
        let mut errs = Vec::new();
        for kernel in [Kernel::Amx, Kernel::Avx512] {
            let mut y = vec![f32::NAN; m * n];
            assert!(gemv_with(kernel, &x, m, k, &w, n, None, &mut y));
            check(&format!("{kernel:?}"), &x, m, k, &w, n, None, &y);
            let mut sq = 0.0;
            for i in 0..m {
                for j in 0..n {
                    let (mut want, mut mag) = (0.0f64, 0.0f64);
                    for t in 0..k {
                        let p = x[i * k + t] as f64 * w[j * k + t].to_f64();
                        want += p;
                        mag += p.abs();
                    }
                    sq += ((y[i * n + j] as f64 - want) / mag).powi(2);
                }
            }
            errs.push((sq / (m * n) as f64).sqrt());
        }
        eprintln!("m={m} k={k} n={n}: RMS error / Σ|terms|: amx {:.2e}, avx512 {:.2e}", errs[0], errs[1]);
        assert!(errs[0] <= 2.0 * errs[1] + 1e-9, "m={m} k={k}: AMX error {:.2e} vs AVX-512 {:.2e}", errs[0], errs[1]);
    }
}

/// The decoder's long rows (k = 6144 and past it, a k % 32 tail) over W rows whose count is no
/// multiple of the 3-row groups, the 4-group blocks or the 48-row pass, with W and x starting off any
/// 64-byte boundary (weights at an odd element offset, as a file mapping may give them): every AVX-512
/// tile shape against the f64 reference, and each row bit for bit equal to its run alone. The
/// prefetch walk (one chunk ahead, wrapping into the next block and past the task) must not change
/// a value; this is where a wrong chunk index would show.
#[test]
fn long_rows_at_any_alignment() {
    if !available(Kernel::Avx512) {
        skip::skipped("long_rows_at_any_alignment", "no AVX-512F on this CPU (the kernel it checks)");
        return;
    }
    for &(k, n) in &[(6144 + 7, 61), (2048, 100), (4096 + 32, 29)] {
        for &(w_off, x_off) in &[(0usize, 0usize), (1, 3), (24, 5)] {
            let (x_all, w_all, b) = inputs(MAX_ROWS, k, n);
            // Shifted copies: the kernel sees slices starting w_off / x_off elements into a buffer.
            let mut w_buf = vec![bf16::ZERO; w_off + n * k];
            w_buf[w_off..].copy_from_slice(&w_all);
            let mut x_buf = vec![0f32; x_off + MAX_ROWS * k];
            x_buf[x_off..].copy_from_slice(&x_all);
            let (w, x) = (&w_buf[w_off..], &x_buf[x_off..]);
            let alone: Vec<Vec<f32>> = (0..MAX_ROWS)
                .map(|r| {
                    let mut y = vec![f32::NAN; n];
                    assert!(gemv_with(Kernel::Avx512, &x[r * k..(r + 1) * k], 1, k, w, n, Some(&b), &mut y));
                    y
                })
                .collect();
            for m in [1, 2, 3, 5, 7, 8, 9, 16] {
                let mut y = vec![f32::NAN; m * n];
                assert!(gemv_with(Kernel::Avx512, &x[..m * k], m, k, w, n, Some(&b), &mut y));
                check(&format!("Avx512 w+{w_off} x+{x_off}"), &x[..m * k], m, k, w, n, Some(&b), &y);
                for i in 0..m {
                    let same = y[i * n..(i + 1) * n].iter().zip(&alone[i]).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "k={k} n={n} w+{w_off} x+{x_off}: row {i} of {m} differs from its run alone");
                }
            }
        }
    }
}
