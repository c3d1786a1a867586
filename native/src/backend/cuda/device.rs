//! One opened GPU: its context and stream, every kernel loaded from the CUBIN cache, and device memory
//! with errors that say how much was asked for and how much is free.
//!
//! NOT RUN ON A GPU YET: this file compiles and is exercised only by tests/cuda_parity.rs, which skip
//! without a GPU (see docs/cuda.md).
use super::kernels::{self, FILES};
use super::probe::{probe, GpuInfo};
use crate::error::{EngineError, Result, EXIT_DEVICE_FAULT};
use crate::model::weights::WeightRef;
use cudarc::driver::{result, result::DriverError, CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DeviceRepr, ValidAsZeroBits};
use std::any::Any;
use std::ffi::c_void;
use std::collections::HashMap;
use std::sync::Arc;

/// A device pointer as kernels take it (CUdeviceptr).
pub type DPtr = u64;

/// A failed CUDA call as an engine error. A driver error that leaves the context unusable (`sticky`) is
/// a `DeviceFault`: the engine reports it once and exits (EXIT_DEVICE_FAULT); anything else (out of
/// memory, a bad launch configuration, a cuBLASLt refusal) is a plain `Device` error, and the engine
/// keeps serving.
pub fn device_err(what: &str, e: impl std::fmt::Debug + 'static) -> EngineError {
    if let Some(d) = (&e as &dyn Any).downcast_ref::<DriverError>() {
        if is_sticky(d.0 as u32) {
            let desc = d.error_string().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            return EngineError::DeviceFault(format!(
                "the GPU faulted: {what}: {:?} ({desc}); its CUDA context cannot be used again, so the engine exits with status {EXIT_DEVICE_FAULT} (start it again)",
                d.0
            ));
        }
    }
    EngineError::Device(format!("{what}: {e:?}"))
}

/// Whether a CUresult is one of the errors after which the CUDA context is corrupt: every later call in
/// the process fails with it ("sticky" errors; CUDA driver API, cudaError_enum). Out of memory, invalid
/// values, launch-configuration and stream-capture errors are not among them.
pub fn is_sticky(code: u32) -> bool {
    matches!(
        code,
        214 // CUDA_ERROR_ECC_UNCORRECTABLE
            | 220 // CUDA_ERROR_NVLINK_UNCORRECTABLE
            | 700 // CUDA_ERROR_ILLEGAL_ADDRESS
            | 702 // CUDA_ERROR_LAUNCH_TIMEOUT
            | 709 // CUDA_ERROR_CONTEXT_IS_DESTROYED
            | 710 // CUDA_ERROR_ASSERT (a device-side assert)
            | 714 // CUDA_ERROR_HARDWARE_STACK_ERROR
            | 715 // CUDA_ERROR_ILLEGAL_INSTRUCTION
            | 716 // CUDA_ERROR_MISALIGNED_ADDRESS
            | 717 // CUDA_ERROR_INVALID_ADDRESS_SPACE
            | 718 // CUDA_ERROR_INVALID_PC
            | 719 // CUDA_ERROR_LAUNCH_FAILED
    )
}

/// Stack of each kernel-compiling thread.
const NVRTC_STACK: usize = 64 << 20;

fn nvrtc_panicked() -> super::nvrtc::CompileError {
    super::nvrtc::CompileError { name: "kernels".into(), status: "panicked".into(), log: "a kernel compile thread panicked".into() }
}

pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub info: GpuInfo,
    /// "90" for sm_90.
    pub arch: String,
    functions: HashMap<&'static str, CudaFunction>,
}

impl Gpu {
    /// Opens CUDA device `ordinal`, compiles (or reads from the cache) and loads every kernel file.
    /// Needs compute capability 8.0+ (bf16 conversion instructions).
    pub fn open(ordinal: usize) -> Result<Gpu> {
        let gpus = probe().result.clone().map_err(EngineError::Device)?;
        let info = gpus.get(ordinal).cloned().ok_or_else(|| EngineError::Device(format!("there is no GPU number {ordinal}; this machine has {}", gpus.len())))?;
        let (major, minor) = info.capability;
        if major < 8 {
            return Err(EngineError::Device(format!("{} has compute capability {major}.{minor}; the CUDA backend needs 8.0 or newer (bf16)", info.describe())));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| device_err("cannot create a CUDA context", e))?;
        // One stream does all the work, so cudarc's per-buffer events (for multi-stream ordering) would
        // only add calls, and an event wait inside stream capture breaks the decode graph.
        // SAFETY: no other stream of this context ever touches our buffers.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(|e| device_err("cannot create a CUDA stream", e))?;
        let arch = format!("{major}{minor}");
        let mut functions = HashMap::new();
        // Compiled (or read from the cache) in parallel, each file on its own thread with a large stack
        // (a compiler front end may recurse deeply; the default 2 MiB thread stack is no place for it).
        let cubins: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let jobs: Vec<_> = FILES
                .iter()
                .map(|f| std::thread::Builder::new().name(format!("nvrtc {}", f.name)).stack_size(NVRTC_STACK).spawn_scoped(scope, || kernels::cubin(f, &arch)))
                .collect();
            jobs.into_iter()
                .map(|j| match j {
                    Ok(handle) => handle.join().unwrap_or_else(|_| Err(nvrtc_panicked())).map_err(|e| EngineError::Device(e.to_string())),
                    Err(e) => Err(EngineError::Device(format!("cannot start a kernel compile thread: {e}"))),
                })
                .collect::<Result<Vec<_>>>()
        })?;
        for (f, cubin) in FILES.iter().zip(cubins) {
            let module = ctx.load_module(cudarc::nvrtc::Ptx::from_binary(cubin)).map_err(|e| device_err(&format!("cannot load the kernels of {}", f.name), e))?;
            for &k in f.kernels {
                functions.insert(k, module.load_function(k).map_err(|e| device_err(&format!("kernel {k} of {}", f.name), e))?);
            }
        }
        Ok(Gpu { ctx, stream, info, arch, functions })
    }

    pub fn function(&self, name: &str) -> &CudaFunction {
        self.functions.get(name).unwrap_or_else(|| panic!("kernel {name} is not in backend/cuda/kernels.rs FILES"))
    }

    /// (free, total) device memory in bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.ctx.mem_get_info().map_err(|e| device_err("cannot read the device memory size", e))
    }

    /// Fails with the numbers when `need` bytes (described by `what`) do not fit in free memory.
    pub fn check_fits(&self, need: u64, what: &str) -> Result<()> {
        let (free, total) = self.memory()?;
        if need > free as u64 {
            return Err(EngineError::Device(format!(
                "{what} needs {:.2} GiB of device memory but {} has {:.2} GiB free of {:.2} GiB: use a smaller model, free the GPU, or --device cpu",
                gib(need),
                self.info.describe(),
                gib(free as u64),
                gib(total as u64)
            )));
        }
        Ok(())
    }

    /// Zeroed device buffer of `len` elements.
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, len: usize) -> Result<CudaSlice<T>> {
        self.stream.alloc_zeros::<T>(len.max(1)).map_err(|e| device_err(&format!("cannot allocate {:.3} GiB on the GPU", gib((len * std::mem::size_of::<T>()) as u64)), e))
    }

    /// Copies host data into a new device buffer.
    pub fn upload<T: DeviceRepr>(&self, data: &[T]) -> Result<CudaSlice<T>> {
        self.stream.clone_htod(data).map_err(|e| device_err(&format!("cannot copy {:.3} GiB to the GPU", gib(std::mem::size_of_val(data) as u64)), e))
    }

    /// Uploads the bf16 tensors `parts` (full name, shape; read through `get`, which checks them)
    /// concatenated in order into one buffer: one tensor, or a fused matrix such as q|k|v.
    pub fn upload_tensors(&self, parts: &[(String, Vec<usize>)], get: &mut dyn FnMut(&str, &[usize]) -> Result<WeightRef>) -> Result<CudaSlice<u16>> {
        let total: usize = parts.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        let mut buf = self.zeros::<u16>(total)?;
        let mut at = 0;
        for (name, shape) in parts {
            let w = get(name, shape)?;
            let d = w.data();
            // SAFETY: half::bf16 is a transparent u16.
            let bits = unsafe { std::slice::from_raw_parts(d.as_ptr() as *const u16, d.len()) };
            self.upload_at(bits, &mut buf, at)?;
            at += d.len();
        }
        Ok(buf)
    }

    /// Copies host data into `dst` starting at element `offset`.
    pub fn upload_at<T: DeviceRepr>(&self, data: &[T], dst: &mut CudaSlice<T>, offset: usize) -> Result<()> {
        let mut view = dst.slice_mut(offset..offset + data.len());
        self.stream.memcpy_htod(data, &mut view).map_err(|e| device_err("cannot copy to the GPU", e))
    }

    /// Copies `bytes` bytes between raw device addresses (stream-ordered), e.g. out of a buffer that
    /// another owner reuses.
    pub fn copy_raw(&self, dst: DPtr, src: DPtr, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        self.ctx.bind_to_thread().map_err(|e| device_err("binding the CUDA context", e))?;
        // SAFETY: the callers pass addresses of live allocations of at least `bytes` bytes.
        unsafe { result::memcpy_dtod_async(dst, src, bytes, self.stream.cu_stream()) }.map_err(|e| device_err("copying on the GPU", e))
    }

    pub fn download<T: DeviceRepr + Default + Clone>(&self, src: &CudaSlice<T>) -> Result<Vec<T>> {
        self.stream.clone_dtoh(src).map_err(|e| device_err("cannot copy from the GPU", e))
    }

    pub fn sync(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| device_err("a GPU kernel failed", e))
    }

    /// Launches kernel `name` with `args`: pointers to the argument values, in the kernel's order and
    /// of its exact types (DPtr for pointers, i32 for int, u64 for size_t, f32 for float); see `args!`.
    pub fn launch(&self, name: &str, grid: (u32, u32, u32), block: u32, smem: u32, args: &mut [*mut c_void]) -> Result<()> {
        let f = self.function(name);
        let mut params: Vec<*mut c_void> = args.to_vec();
        self.ctx.bind_to_thread().map_err(|e| device_err("binding the CUDA context", e))?;
        // SAFETY: each launcher in ops.rs passes the arguments its kernel declares, in order, and
        // sizes its grid to the buffers it was given; the values outlive this call.
        unsafe { result::launch_kernel(f.cu_function(), grid, (block, 1, 1), smem, self.stream.cu_stream(), &mut params) }.map_err(|e| device_err(&format!("launching {name}"), e))
    }
}

/// Kernel arguments from local values: `args![x, n]` → pointers to x and n for `Gpu::launch`.
#[macro_export]
macro_rules! cuda_args {
    ($($v:expr),* $(,)?) => { [$(&$v as *const _ as *mut std::ffi::c_void),*] };
}

/// The raw device address of a buffer (event tracking is off, so nothing is recorded).
pub fn ptr<T>(s: &CudaSlice<T>, stream: &CudaStream) -> DPtr {
    s.device_ptr(stream).0
}

pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_errors_are_faults_and_out_of_memory_is_not() {
        for code in [214, 700, 714, 715, 716, 717, 718, 719] {
            assert!(is_sticky(code), "{code}");
        }
        // Out of memory, invalid value, launch out of resources, stream capture invalidated.
        for code in [2, 1, 701, 901, 0] {
            assert!(!is_sticky(code), "{code}");
        }
        // Errors that are not driver errors (cuBLASLt, NVRTC) stay plain device errors.
        assert!(matches!(device_err("cuBLASLt matmul", "CUBLAS_STATUS_NOT_SUPPORTED"), EngineError::Device(_)));
    }
}
