//! The CPU backend: float32 arithmetic on bf16 weights, all cores (rayon).
pub mod matmul;
