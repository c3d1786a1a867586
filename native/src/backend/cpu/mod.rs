//! The CPU backend: float32 arithmetic on bf16 weights, all cores (rayon).
pub mod attention;
pub mod gemm;
pub mod gemv;
pub mod matmul;
pub mod norm;
pub mod rope;
mod scratch;
pub mod vision_ops;
