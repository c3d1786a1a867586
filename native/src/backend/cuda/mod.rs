//! The CUDA backend: libcuda, NVRTC and cuBLASLt loaded at run time through cudarc, kernels in
//! `native/kernels/*.cu` compiled by NVRTC for the GPU present and cached on disk.
//!
//! State (see docs/cuda.md): device discovery and kernel compilation are tested on machines without
//! a GPU; nothing that launches work on a GPU has been run yet.
pub mod blas;
pub mod device;
pub mod kernels;
pub mod nvrtc;
pub mod ops;
pub mod probe;
pub mod qwen3;
pub mod sampling;

/// Whether `--device auto|cuda` may hand a model to this backend. False until a CUDA model path is
/// wired into the worker and has passed the parity script on a GPU: until then `auto` stays on the
/// CPU (saying a GPU was found) and an explicit `cuda` fails with `NOT_READY`.
pub const BACKEND_READY: bool = false;

/// Why a found GPU is not used while `BACKEND_READY` is false.
pub const NOT_READY: &str = "the CUDA backend is not complete";
