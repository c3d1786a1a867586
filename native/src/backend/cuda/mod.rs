//! The CUDA backend: libcuda, NVRTC and cuBLASLt loaded at run time through cudarc, kernels in
//! `native/kernels/*.cu` compiled by NVRTC for the GPU present and cached on disk.
//!
//! State (see docs/cuda.md): device discovery and kernel compilation are tested on machines without
//! a GPU; nothing that launches work on a GPU has been run yet.
pub mod batch;
pub mod blas;
pub mod device;
pub mod kernels;
pub mod model;
pub mod nvrtc;
pub mod ops;
pub mod probe;
pub mod qwen3;
pub mod runner;
pub mod sampling;
pub mod vision;

/// Whether `--device auto` may pick this backend: false until the whole CUDA model has passed the
/// parity script (scripts/gpu-check.sh) on a GPU. Until then `auto` stays on the CPU (saying that a
/// GPU was found), while an explicit `--device cuda` uses the GPU and says it is unverified.
pub const VERIFIED: bool = false;

/// What `auto` says about a found GPU while `VERIFIED` is false.
pub const NOT_VERIFIED: &str = "the CUDA backend has not passed its parity checks on a GPU yet (--device cuda uses it anyway)";
