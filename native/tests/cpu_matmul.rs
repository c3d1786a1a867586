//! matmul_bf16 (GEMV for ≤ 4 rows, blocked GEMM above) against an f64 reference on awkward shapes:
//! k odd / not a multiple of 32 or of the 256 k-block, n not a multiple of 32, m not a multiple of 12
//! or of the 480-row task block (AVX-512) or the 384-row one (AVX2), m just above the GEMV's 16
//! rows with the decoder's k (2048; 6145: odd, rows 12 KiB apart for the transposing W pack), with and
//! without bias. The kernel
//! this CPU dispatches to is the one tested (gemm_avx2.rs also tests itself directly on AVX-512 CPUs).
use half::bf16;
use ovis_engine::backend::cpu::matmul::matmul_bf16;
use ovis_engine::generate::sampler::Rng;

fn rand_vec(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.next_f64() as f32 * 2.0 - 1.0).collect()
}

fn check(m: usize, k: usize, n: usize, with_bias: bool, rng: &mut Rng) {
    let x = rand_vec(rng, m * k);
    let w: Vec<bf16> = rand_vec(rng, n * k).into_iter().map(bf16::from_f32).collect();
    let bias = with_bias.then(|| rand_vec(rng, n));
    let mut y = vec![f32::NAN; m * n];
    matmul_bf16(&x, m, k, &w, n, bias.as_deref(), &mut y);
    for i in 0..m {
        for j in 0..n {
            let mut want = bias.as_ref().map_or(0.0, |b| b[j] as f64);
            let mut mag = want.abs();
            for t in 0..k {
                let p = x[i * k + t] as f64 * w[j * k + t].to_f64();
                want += p;
                mag += p.abs();
            }
            let got = y[i * n + j] as f64;
            assert!((got - want).abs() <= 1e-5 * mag + 1e-6, "m={m} k={k} n={n} bias={with_bias}: y[{i},{j}] = {got}, want {want}");
        }
    }
}

#[test]
fn gemv_shapes() {
    let mut rng = Rng::new(1);
    for m in 1..=4 {
        for &(k, n) in &[(1, 1), (31, 5), (32, 7), (33, 64), (100, 37), (2048, 9), (64, 1000)] {
            check(m, k, n, m % 2 == 0, &mut rng);
        }
    }
}

#[test]
fn gemm_shapes() {
    let mut rng = Rng::new(2);
    for &(m, k, n) in &[(5, 1, 1), (12, 2, 32), (13, 3, 33), (24, 255, 31), (25, 256, 64), (37, 257, 95), (100, 513, 300), (481, 70, 40), (130, 96, 2100), (385, 300, 129), (390, 16, 16), (17, 2048, 33), (18, 6145, 17), (17, 1, 5)] {
        check(m, k, n, false, &mut rng);
        check(m, k, n, true, &mut rng);
    }
}

#[test]
fn k_zero_gives_bias() {
    let mut y = vec![f32::NAN; 6];
    matmul_bf16(&[], 2, 0, &[], 3, Some(&[1.0, 2.0, 3.0]), &mut y);
    assert_eq!(y, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
}
