//! The CPU backend: float32 arithmetic on bf16 weights, all cores (rayon).
pub mod attention;
pub mod bf16_split;
#[cfg(target_arch = "x86_64")]
mod attention_avx512;
mod gemm;
#[cfg(target_arch = "x86_64")]
mod gemm_amx;
#[cfg(target_arch = "x86_64")]
mod gemm_amx_split;
#[cfg(target_arch = "x86_64")]
mod gemm_bf16dot;
#[cfg(target_arch = "x86_64")]
mod gemm_avx2;
#[cfg(target_arch = "x86_64")]
mod gemm_pack;
pub mod gemv;
#[cfg(target_arch = "x86_64")]
mod gemv_q_avx2;
#[cfg(target_arch = "x86_64")]
mod gemv_q_avx512;
#[cfg(target_arch = "x86_64")]
mod gemv_amx;
#[cfg(target_arch = "x86_64")]
mod gemv_avx2;
#[cfg(target_arch = "x86_64")]
mod gemv_avx512;
pub mod linear;
pub mod matmul;
pub mod merge;
pub mod model;
pub mod norm;
pub mod precision;
pub mod quant;
pub mod qwen3;
pub mod profile;
pub mod rope;
mod scratch;
pub mod vision;
pub mod vision_ops;
pub mod vision_speed;
pub mod visual_head;

/// Which matrix-product kernels this CPU runs (runtime detection), for `ovis info` and bench reports:
/// "avx512f" (packed 12×32 GEMM, flash-style ViT attention, AVX-512 decode GEMV), "avx2+fma" (packed
/// 6×16 GEMM; ViT attention and elementwise loops compiled for AVX2; GEMV portable) or "portable".
pub fn kernel_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
    }
    "portable"
}
