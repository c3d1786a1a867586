//! The CPU backend: float32 arithmetic on bf16 weights, all cores (rayon).
pub mod attention;
#[cfg(target_arch = "x86_64")]
mod attention_avx512;
mod gemm;
mod gemv;
pub mod matmul;
pub mod norm;
pub mod profile;
pub mod rope;
mod scratch;
pub mod vision_ops;

/// Which matrix-product kernels this CPU runs (runtime detection), for `ovis info` and bench reports:
/// "avx512f" (packed 12×32 GEMM, tiled attention) or "portable" (plain blocked loops).
pub fn kernel_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
    }
    "portable"
}
