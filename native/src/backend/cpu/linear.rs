//! A linear layer's weight W [n, k] as the decoder holds it: bf16 as stored (the default), or
//! quantized at load (`--weights int8|int4`, quant.rs). `matmul` is y[m, n] = x[m, k] · Wᵀ.
//!
//! Quantized dispatch: m ≤ 16 rows (decode) → integer GEMV with the activations quantized per row and
//! group (AVX-512 VNNI, else AVX2, else the scalar reference). More rows (prefill): int4 with
//! AVX-512 VNNI takes the same integer kernel (`vnni_prefill`); otherwise W is dequantized
//! into a bf16 scratch of ≤ 4 MiB (a block of W rows at a time) and the bf16 GEMM, whose result
//! block is copied into y's columns. That costs one extra pass writing and reading the block (n·k
//! values per call, against m·n·k multiply-adds: < 1 % at m = 128), and the GEMM then computes in
//! f32 like the bf16 mode.
use super::gemv::MAX_ROWS;
use super::matmul::matmul_bf16;
use super::quant::{gemv_scalar, QuantMatrix, QuantX, WeightMode};
use crate::model::weights::WeightRef;
use half::bf16;

pub enum Linear {
    Bf16(WeightRef),
    Quant(QuantMatrix),
}

/// Which quantized GEMV kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantKernel {
    Avx512Vnni,
    Avx2,
    Scalar,
}

impl QuantKernel {
    pub fn name(self) -> &'static str {
        match self {
            QuantKernel::Avx512Vnni => "avx512-vnni",
            QuantKernel::Avx2 => "avx2",
            QuantKernel::Scalar => "scalar",
        }
    }
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            QuantKernel::Avx512Vnni => super::gemv_q_avx512::available(),
            #[cfg(target_arch = "x86_64")]
            QuantKernel::Avx2 => super::gemv_q_avx2::available(),
            QuantKernel::Scalar => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
    /// The fastest this CPU runs.
    pub fn best() -> QuantKernel {
        [QuantKernel::Avx512Vnni, QuantKernel::Avx2].into_iter().find(|k| k.available()).unwrap_or(QuantKernel::Scalar)
    }
}

/// y = Wq · x for quantized W and already quantized x, with `kernel` (tests run each one the CPU
/// has). Panics if the CPU lacks `kernel`.
pub fn gemv_quant_with(kernel: QuantKernel, w: &QuantMatrix, x: &QuantX, bias: Option<&[f32]>, y: &mut [f32]) {
    assert!(kernel.available(), "quantized GEMV kernel {} is not available on this CPU", kernel.name());
    match kernel {
        #[cfg(target_arch = "x86_64")]
        QuantKernel::Avx512Vnni => super::gemv_q_avx512::gemv(w, x, bias, y),
        #[cfg(target_arch = "x86_64")]
        QuantKernel::Avx2 => super::gemv_q_avx2::gemv(w, x, bias, y),
        _ => gemv_scalar(w, x, bias, y),
    }
}

/// Bytes of bf16 scratch per block of W rows in the prefill path.
const DEQUANT_BLOCK_BYTES: usize = 4 << 20;

impl Linear {
    /// `w` as `mode` stores it: bf16 kept as is (mapped or owned); int8/int4 quantized, and `w`
    /// dropped (an owned copy is freed; a mapped file's pages are released from this process).
    pub fn new(w: WeightRef, mode: WeightMode) -> Linear {
        if mode == WeightMode::Bf16 {
            return Linear::Bf16(w);
        }
        assert_eq!(w.shape.len(), 2, "Linear: a matrix [n, k], got shape {:?}", w.shape);
        let (n, k) = (w.shape[0], w.shape[1]);
        let q = QuantMatrix::quantize(w.data(), n, k, mode);
        w.release();
        Linear::Quant(q)
    }

    /// A quantized copy of `w` (`mode` int8/int4), leaving `w` as it is (the tied embeddings: the
    /// lookup keeps reading the bf16 table, the output layer the quantized copy).
    pub fn quantized_copy(w: &WeightRef, mode: WeightMode) -> Linear {
        assert!(mode != WeightMode::Bf16 && w.shape.len() == 2, "quantized_copy: int8/int4 of a matrix");
        Linear::Quant(QuantMatrix::quantize(w.data(), w.shape[0], w.shape[1], mode))
    }

    /// Bytes held in memory (bf16: the tensor's size, mapped or not).
    pub fn bytes(&self) -> usize {
        match self {
            Linear::Bf16(w) => w.data().len() * 2,
            Linear::Quant(q) => q.bytes(),
        }
    }

    /// y[m, n] = x[m, k] · Wᵀ.
    pub fn matmul(&self, x: &[f32], m: usize, y: &mut [f32]) {
        match self {
            Linear::Bf16(w) => {
                let (n, k) = (w.shape[0], w.shape[1]);
                matmul_bf16(x, m, k, w.data(), n, None, y)
            }
            Linear::Quant(q) => {
                let (n, k) = (q.n, q.k);
                assert!(x.len() == m * k && y.len() == m * n, "Linear: x must be [{m}, {k}] and y [{m}, {n}]");
                if m == 0 {
                    return;
                }
                let kernel = QuantKernel::best();
                if m <= MAX_ROWS || (kernel == QuantKernel::Avx512Vnni && vnni_prefill(q.mode)) {
                    let qx = QuantX::new(x, m, k, q.mode);
                    gemv_quant_with(kernel, q, &qx, None, y);
                } else {
                    prefill(q, x, m, y);
                }
            }
        }
    }
}

/// Whether prefill (more than MAX_ROWS rows) runs through the VNNI integer kernel, activations
/// quantized per row and group like decode's: each 4-row W tile is read from memory once and used
/// for every row from L1 (measured 2.3× the dequantize path's tokens/s for int8). int4 only: for int8
/// the activations' rounding in prefill lowered the synthetic 2B's logits cosine from 0.9992 to
/// 0.9976, below issue 12's 0.999 (docs/performance.md), so int8 prefill dequantizes to bf16.
pub fn vnni_prefill(mode: WeightMode) -> bool {
    mode == WeightMode::Int4
}

/// Many rows: blocks of W rows dequantized to bf16, each through the bf16 GEMM into a [m, rows]
/// block copied into y's columns.
fn prefill(q: &QuantMatrix, x: &[f32], m: usize, y: &mut [f32]) {
    let (n, k) = (q.n, q.k);
    let rows = (DEQUANT_BLOCK_BYTES / (2 * k)).max(64).min(n);
    let mut wb = vec![bf16::ZERO; rows * k];
    let mut yb = vec![0f32; m * rows];
    let mut j0 = 0;
    while j0 < n {
        let j1 = n.min(j0 + rows);
        let nb = j1 - j0;
        q.dequantize_rows(j0, j1, &mut wb[..nb * k]);
        matmul_bf16(x, m, k, &wb[..nb * k], nb, None, &mut yb[..m * nb]);
        for r in 0..m {
            y[r * n + j0..r * n + j1].copy_from_slice(&yb[r * nb..(r + 1) * nb]);
        }
        j0 = j1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(m: usize, n: usize, k: usize) -> (Vec<f32>, Vec<bf16>) {
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32((((i * 104_729) % 997) as f32 / 498.0 - 1.0) * 0.03)).collect();
        (x, w)
    }

    /// Each quantized GEMV kernel this CPU has agrees with the scalar reference (the integer sums are
    /// exact in every kernel; only the f32 order of the scaled group sums differs: 1e-5 relative to
    /// Σ|terms|). A kernel the CPU lacks is reported as skipped on stderr.
    #[test]
    fn quant_gemv_kernels_match_scalar() {
        for kernel in [QuantKernel::Avx512Vnni, QuantKernel::Avx2] {
            if !kernel.available() {
                eprintln!("SKIP quant_gemv_kernels_match_scalar[{}]: this CPU lacks it", kernel.name());
                continue;
            }
            for mode in [WeightMode::Int8, WeightMode::Int4] {
                // VNNI also runs prefill's many rows (37 here); AVX2 only decode's ≤ 16
                let big: &[(usize, usize, usize)] = if kernel == QuantKernel::Avx512Vnni { &[(37, 11, 192)] } else { &[] };
                for &(m, n, k) in [(1, 9, 64), (3, 37, 200), (4, 64, 256), (7, 21, 96), (16, 13, 320)].iter().chain(big) {
                    let (x, w) = data(m, n, k);
                    let qm = QuantMatrix::quantize(&w, n, k, mode);
                    let qx = QuantX::new(&x, m, k, mode);
                    let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
                    let (mut a, mut b) = (vec![0f32; m * n], vec![0f32; m * n]);
                    gemv_quant_with(kernel, &qm, &qx, Some(&bias), &mut a);
                    gemv_scalar(&qm, &qx, Some(&bias), &mut b);
                    for r in 0..m {
                        for j in 0..n {
                            let mag: f32 = (0..k).map(|e| (x[r * k + e] * w[j * k + e].to_f32()).abs()).sum::<f32>() + 1.0;
                            let (p, s) = (a[r * n + j], b[r * n + j]);
                            assert!((p - s).abs() <= 1e-5 * mag, "{} {mode:?} m={m} n={n} k={k} ({r},{j}): {p} vs {s}", kernel.name());
                        }
                    }
                }
            }
        }
    }

    /// Many rows (prefill): the dequantize-to-bf16 path (CPUs without VNNI) matches the f32 product of
    /// the dequantized weights (1e-4 relative to Σ|terms|); `matmul` with 20 rows takes the VNNI
    /// kernel where the CPU has it (equal to the scalar reference of the quantized activations, 1e-5)
    /// or that path otherwise (identical), and the decode path is close to the exact product (the
    /// activations' rounding: 1 %).
    #[test]
    fn prefill_and_decode_paths_agree() {
        for mode in [WeightMode::Int8, WeightMode::Int4] {
            let (m, n, k) = (20, 70, 96);
            let (x, w) = data(m, n, k);
            let lin = Linear::new(WeightRef::from_vec(w.clone(), &[n, k]), mode);
            let Linear::Quant(q) = &lin else { panic!("quantized") };
            let mut deq = vec![bf16::ZERO; n * k];
            q.dequantize_rows(0, n, &mut deq);
            let mut yd = vec![0f32; m * n];
            prefill(q, &x, m, &mut yd);
            let mut y = vec![0f32; m * n];
            lin.matmul(&x, m, &mut y);
            let vnni = QuantKernel::best() == QuantKernel::Avx512Vnni && vnni_prefill(mode);
            let mut ys = vec![0f32; m * n];
            gemv_scalar(q, &QuantX::new(&x, m, k, mode), None, &mut ys);
            if !vnni {
                eprintln!("SKIP prefill_and_decode_paths_agree[vnni prefill, {mode:?}]: this CPU lacks AVX-512 VNNI or the mode prefills by dequantizing");
            }
            let mut y1 = vec![0f32; n];
            lin.matmul(&x[..k], 1, &mut y1);
            for r in 0..m {
                for j in 0..n {
                    let exact: f32 = (0..k).map(|e| x[r * k + e] * deq[j * k + e].to_f32()).sum();
                    let mag: f32 = (0..k).map(|e| (x[r * k + e] * deq[j * k + e].to_f32()).abs()).sum::<f32>() + 1e-3;
                    assert!((yd[r * n + j] - exact).abs() <= 1e-4 * mag, "{mode:?} dequantized prefill ({r},{j}): {} vs {exact}", yd[r * n + j]);
                    if vnni {
                        assert!((y[r * n + j] - ys[r * n + j]).abs() <= 1e-5 * mag, "{mode:?} vnni prefill ({r},{j}): {} vs {}", y[r * n + j], ys[r * n + j]);
                        assert!((y[r * n + j] - exact).abs() <= 0.01 * mag, "{mode:?} vnni prefill ({r},{j}): {} vs {exact}", y[r * n + j]);
                    } else {
                        assert_eq!(y[r * n + j], yd[r * n + j]);
                    }
                    if r == 0 {
                        assert!((y1[j] - exact).abs() <= 0.01 * mag, "{mode:?} decode ({r},{j}): {} vs {exact}", y1[j]);
                    }
                }
            }
        }
    }
}
