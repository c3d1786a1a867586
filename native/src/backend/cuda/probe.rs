//! Finding NVIDIA GPUs without touching them: loads libcuda.so.1 at run time (cudarc's dynamic
//! loading), asks the driver how many devices there are and what they are. No context is created
//! here (a context costs hundreds of MB of device memory and ~0.1 s), so `ovis info` stays cheap.
use cudarc::driver::{result, sys};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

/// One visible GPU, as the driver reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuInfo {
    pub ordinal: usize,
    pub name: String,
    /// Compute capability (major, minor): (9, 0) for H100/H200.
    pub capability: (i32, i32),
    /// Device memory in bytes.
    pub total_mem: usize,
}

impl GpuInfo {
    /// "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)".
    pub fn describe(&self) -> String {
        let (ma, mi) = self.capability;
        format!("cuda:{} {} (sm_{ma}{mi}, {:.1} GiB)", self.ordinal, self.name, self.total_mem as f64 / (1u64 << 30) as f64)
    }
}

/// What the driver says about this machine: the GPUs, or why CUDA cannot be used at all.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Driver API version as major·1000 + minor·10 (13000 = CUDA 13.0), when the driver loaded.
    pub driver_version: Option<i32>,
    pub result: Result<Vec<GpuInfo>, String>,
}

/// The probe, run once per process (cuInit is idempotent but not free).
pub fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(run_probe)
}

fn run_probe() -> Probe {
    // SAFETY: only tries to dlopen the candidate names of libcuda; no symbol is called.
    if !unsafe { sys::is_culib_present() } {
        return Probe { driver_version: None, result: Err("no NVIDIA driver: libcuda.so.1 could not be loaded (no GPU, or the driver is not installed)".into()) };
    }
    // cudarc panics (rather than returning an error) when a symbol is missing from an old driver:
    // contain that here so a strange driver degrades to "no CUDA" instead of killing the engine.
    match catch_unwind(AssertUnwindSafe(query_driver)) {
        Ok(p) => p,
        Err(panic) => {
            let why = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            Probe { driver_version: None, result: Err(format!("the NVIDIA driver library loaded but could not be used: {why}")) }
        }
    }
}

fn query_driver() -> Probe {
    if let Err(e) = result::init() {
        return Probe { driver_version: None, result: Err(format!("the NVIDIA driver did not initialise (cuInit: {e:?}); check `nvidia-smi`")) };
    }
    let mut version = 0i32;
    // SAFETY: writes one int.
    let driver_version = (unsafe { sys::cuDriverGetVersion(&mut version) } == sys::CUresult::CUDA_SUCCESS).then_some(version);
    let count = match result::device::get_count() {
        Ok(n) => n.max(0) as usize,
        Err(e) => return Probe { driver_version, result: Err(format!("the NVIDIA driver cannot count devices: {e:?}")) },
    };
    let mut gpus = Vec::with_capacity(count);
    for ordinal in 0..count {
        match device_info(ordinal) {
            Ok(g) => gpus.push(g),
            Err(e) => return Probe { driver_version, result: Err(format!("cuda:{ordinal}: {e:?}")) },
        }
    }
    Probe { driver_version, result: Ok(gpus) }
}

fn device_info(ordinal: usize) -> Result<GpuInfo, result::DriverError> {
    let dev = result::device::get(ordinal as i32)?;
    let name = result::device::get_name(dev)?;
    // SAFETY: `dev` is a valid device handle from cuDeviceGet.
    let (total_mem, major, minor) = unsafe {
        (
            result::device::total_mem(dev)?,
            result::device::get_attribute(dev, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            result::device::get_attribute(dev, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        )
    };
    Ok(GpuInfo { ordinal, name, capability: (major, minor), total_mem })
}
