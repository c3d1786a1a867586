//! Matrix products through cuBLASLt: bf16 operands, f32 accumulation and scaling, bf16 output, with
//! an optional bias fused as the epilogue. Row-major in the engine, column-major in cuBLAS: the engine's
//! Y[m, n] = X[m, k]·W[n, k]ᵀ is cuBLAS's Yᵀ (n×m) = op(W) (n×k) · Xᵀ (k×m) with W transposed.
//! A plan (descriptors + the heuristic's algorithm) is built once per shape and reused.
//!
//! NOT RUN ON A GPU YET (see docs/cuda.md): tests/cuda_parity.rs checks it against the CPU matmul.
// Launchers take one argument per kernel parameter: a struct per kernel would only rename them.
#![allow(clippy::too_many_arguments)]
use super::device::{device_err, DPtr, Gpu};
use crate::error::Result;
use cudarc::cublaslt::{result, sys};
use cudarc::driver::CudaSlice;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

/// cuBLASLt's recommended workspace on Hopper.
const WORKSPACE: usize = 32 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Shape {
    m: usize,
    n: usize,
    k: usize,
    /// W stored [k, n] (the VTE) instead of [n, k] (a Linear weight).
    w_kn: bool,
    bias: bool,
}

struct Plan {
    desc: sys::cublasLtMatmulDesc_t,
    a: sys::cublasLtMatrixLayout_t,
    b: sys::cublasLtMatrixLayout_t,
    c: sys::cublasLtMatrixLayout_t,
    algo: sys::cublasLtMatmulAlgo_t,
}

// SAFETY: the descriptors are plain host objects, used under the Blas mutex only.
unsafe impl Send for Plan {}

impl Drop for Plan {
    fn drop(&mut self) {
        // SAFETY: created by cuBLASLt in `plan` and destroyed exactly once here.
        unsafe {
            let _ = result::destroy_matrix_layout(self.a);
            let _ = result::destroy_matrix_layout(self.b);
            let _ = result::destroy_matrix_layout(self.c);
            let _ = result::destroy_matmul_desc(self.desc);
        }
    }
}

pub struct Blas {
    handle: sys::cublasLtHandle_t,
    workspace: CudaSlice<u8>,
    plans: Mutex<HashMap<Shape, Plan>>,
}

// SAFETY: the handle is used from one thread at a time (the engine's worker) under `plans`' lock.
unsafe impl Send for Blas {}
unsafe impl Sync for Blas {}

impl Drop for Blas {
    fn drop(&mut self) {
        self.plans.lock().unwrap().clear();
        // SAFETY: created in `new`, destroyed once.
        let _ = unsafe { result::destroy_handle(self.handle) };
    }
}

impl Blas {
    pub fn new(gpu: &Gpu) -> Result<Blas> {
        // cudarc panics on first use of a library it cannot load: ask first, and say what is missing.
        // SAFETY: only tries to open the shared library.
        if !unsafe { cudarc::cublaslt::sys::is_culib_present() } {
            return Err(crate::error::EngineError::Device("libcublasLt.so.13 (CUDA 13 cuBLASLt) could not be loaded: install the CUDA 13 runtime libraries or add their folder to LD_LIBRARY_PATH; or use --device cpu".into()));
        }
        let handle = result::create_handle().map_err(|e| device_err("cannot start cuBLASLt (libcublasLt.so.13)", e))?;
        Ok(Blas { handle, workspace: gpu.zeros::<u8>(WORKSPACE)?, plans: Mutex::new(HashMap::new()) })
    }

    /// y[m, n] = bf16(x[m, k] · w[n, k]ᵀ (+ bias[n])), f32 accumulation. All bf16, row-major.
    pub fn linear(&self, gpu: &Gpu, x: DPtr, w: DPtr, bias: Option<DPtr>, y: DPtr, m: usize, n: usize, k: usize) -> Result<()> {
        self.run(gpu, Shape { m, n, k, w_kn: false, bias: bias.is_some() }, x, w, bias, y)
    }

    /// y[m, n] = bf16(x[m, k] · w[k, n]) for a weight stored [k, n] (probabilities · VTE, §5).
    pub fn matmul_kn(&self, gpu: &Gpu, x: DPtr, w: DPtr, y: DPtr, m: usize, n: usize, k: usize) -> Result<()> {
        self.run(gpu, Shape { m, n, k, w_kn: true, bias: false }, x, w, None, y)
    }

    fn run(&self, gpu: &Gpu, s: Shape, x: DPtr, w: DPtr, bias: Option<DPtr>, y: DPtr) -> Result<()> {
        gpu.ctx.bind_to_thread().map_err(|e| device_err("binding the CUDA context", e))?;
        let mut plans = self.plans.lock().unwrap();
        if let std::collections::hash_map::Entry::Vacant(slot) = plans.entry(s) {
            slot.insert(self.plan(s).map_err(|e| device_err(&format!("cuBLASLt has no bf16 algorithm for {s:?}"), e))?);
        }
        let p = &plans[&s];
        let (alpha, beta) = (1.0f32, 0.0f32);
        let ws = super::device::ptr(&self.workspace, &gpu.stream);
        // SAFETY: the pointers address buffers of the shapes in `s` (the callers' contract), the
        // descriptors live in `p`, and the workspace is WORKSPACE bytes.
        unsafe {
            if let Some(b) = bias {
                result::set_matmul_desc_attribute(p.desc, sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b as *const DPtr as *const c_void, std::mem::size_of::<DPtr>())
                    .map_err(|e| device_err("cuBLASLt bias", e))?;
            }
            result::matmul(
                self.handle,
                p.desc,
                &alpha as *const f32 as *const c_void,
                &beta as *const f32 as *const c_void,
                w as *const c_void,
                p.a,
                x as *const c_void,
                p.b,
                y as *const c_void,
                p.c,
                y as *mut c_void,
                p.c,
                &p.algo,
                ws as *mut c_void,
                WORKSPACE,
                gpu.stream.cu_stream() as *mut _,
            )
            .map_err(|e| device_err(&format!("cuBLASLt matmul {s:?}"), e))
        }
    }

    /// Column-major view: D (n×m, ld n) = op(A) (n×k) · B (k×m, ld k); A = W, B = X.
    fn plan(&self, s: Shape) -> std::result::Result<Plan, result::CublasError> {
        let bf = sys::cudaDataType_t::CUDA_R_16BF;
        let (m, n, k) = (s.m as u64, s.n as u64, s.k as u64);
        // SAFETY: plain descriptor creation and attribute setting with values that outlive the calls.
        unsafe {
            let desc = result::create_matmul_desc(sys::cublasComputeType_t::CUBLAS_COMPUTE_32F, sys::cudaDataType_t::CUDA_R_32F)?;
            // W [n, k] row-major is k×n column-major: transpose it. W [k, n] row-major is n×k as is.
            let trans_a: i32 = if s.w_kn { 0 } else { 1 };
            let a = if s.w_kn { result::create_matrix_layout(bf, n, k, n as i64)? } else { result::create_matrix_layout(bf, k, n, k as i64)? };
            let b = result::create_matrix_layout(bf, k, m, k as i64)?;
            let c = result::create_matrix_layout(bf, n, m, n as i64)?;
            // Owned from here: an error below drops (and destroys) the descriptors.
            let mut plan = Plan { desc, a, b, c, algo: std::mem::zeroed() };
            result::set_matmul_desc_attribute(desc, sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA, &trans_a as *const i32 as *const c_void, 4)?;
            if s.bias {
                let epi = sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS;
                result::set_matmul_desc_attribute(desc, sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_EPILOGUE, &epi as *const _ as *const c_void, std::mem::size_of_val(&epi))?;
                let bias_type = bf;
                result::set_matmul_desc_attribute(desc, sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type as *const _ as *const c_void, std::mem::size_of_val(&bias_type))?;
            }
            let pref = result::create_matmul_pref()?;
            let ws = WORKSPACE;
            let heuristic = result::set_matmul_pref_attribute(pref, sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws as *const usize as *const c_void, std::mem::size_of::<usize>())
                .and_then(|_| result::get_matmul_algo_heuristic(self.handle, desc, a, b, c, c, pref));
            let _ = result::destroy_matmul_pref(pref);
            plan.algo = heuristic?.algo;
            Ok(plan)
        }
    }
}
