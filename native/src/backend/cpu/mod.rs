//! The CPU backend: float32 arithmetic on bf16 weights, all cores (rayon).
pub mod attention;
#[cfg(target_arch = "x86_64")]
mod attention_avx512;
mod gemm;
pub mod gemv;
#[cfg(target_arch = "x86_64")]
mod gemv_avx2;
pub mod matmul;
pub mod merge;
pub mod model;
pub mod norm;
pub mod qwen3;
pub mod rope;
mod scratch;
pub mod vision;
pub mod vision_ops;
pub mod visual_head;
