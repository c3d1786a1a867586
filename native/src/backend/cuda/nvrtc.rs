//! NVRTC: compiles CUDA C to PTX (any machine) or CUBIN (for the GPU present) at run time, with the
//! compiler's log in every error. Works without a GPU: only libnvrtc.so is needed.
//!
//! Finding the library: cudarc opens `libnvrtc.so`, `libnvrtc.so.13`, … by name through the loader.
//! `OVIS_NVRTC_LIB=/path/to/libnvrtc.so.13` (or `preload`) opens a given file first; the loader then
//! resolves cudarc's later open of `libnvrtc.so.13` to that already-loaded library by its soname.
use cudarc::nvrtc::sys;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// What NVRTC should produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Virtual-architecture PTX (`compute_XY`): portable text, checked here without a GPU.
    Ptx,
    /// Machine code for one real architecture (`sm_XY`): what the engine loads, so the driver never
    /// has to JIT PTX (and a newer NVRTC's PTX cannot be refused by an older driver).
    Cubin,
}

/// A failed compilation: NVRTC's status plus its full log (file:line: error …).
#[derive(Debug, Clone)]
pub struct CompileError {
    pub name: String,
    pub status: String,
    pub log: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NVRTC could not compile {} ({}):\n{}", self.name, self.status, self.log.trim_end())
    }
}

extern "C" {
    // glibc ≥ 2.34 has these in libc itself (Ubuntu 24.04: 2.39), so no extra link flag is needed.
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlerror() -> *const c_char;
}
const RTLD_NOW: c_int = 2;
const RTLD_GLOBAL: c_int = 0x100;

/// Opens `path` (a libnvrtc.so.*) so that cudarc's own open of `libnvrtc.so.13` finds it; the handle
/// is kept for the life of the process.
pub fn preload(path: &Path) -> Result<(), String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| format!("{} contains a NUL byte", path.display()))?;
    // SAFETY: a plain dlopen of a file name; the handle is intentionally never closed.
    let handle = unsafe { dlopen(c.as_ptr(), RTLD_NOW | RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a static, NUL-terminated message after a failed dlopen.
        let why = unsafe { CStr::from_ptr(dlerror()) }.to_string_lossy().into_owned();
        return Err(format!("cannot load NVRTC from {}: {why}", path.display()));
    }
    Ok(())
}

/// Makes NVRTC loadable: `OVIS_NVRTC_LIB` first, else the loader's search path. Err says how to fix it.
pub fn ensure_loaded() -> Result<(), String> {
    static FROM_ENV: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    FROM_ENV.get_or_init(|| std::env::var_os("OVIS_NVRTC_LIB").map_or(Ok(()), |p| preload(Path::new(&p)))).clone()?;
    // SAFETY: only tries to dlopen candidate names; no symbol is called.
    if unsafe { sys::is_culib_present() } {
        Ok(())
    } else {
        Err("NVRTC (libnvrtc.so.13) was not found: install the CUDA 13 runtime libraries, or `pip install nvidia-cuda-nvrtc` and set OVIS_NVRTC_LIB to its lib/libnvrtc.so.13".into())
    }
}

/// NVRTC's (major, minor) version.
pub fn version() -> Result<(i32, i32), String> {
    ensure_loaded()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: writes two ints; a missing symbol panics inside cudarc and is caught.
    let status = guarded(|| unsafe { sys::nvrtcVersion(&mut major, &mut minor) })?;
    check(status, "nvrtcVersion")?;
    Ok((major, minor))
}

/// A successful compilation: PTX text bytes or CUBIN, and NVRTC's log (warnings, ptxas statistics).
#[derive(Debug, Clone)]
pub struct Compiled {
    pub bytes: Vec<u8>,
    pub log: String,
}

/// Compiles `src` (named `name` in messages) for `arch` (e.g. "90" → compute_90 / sm_90). `headers`
/// are (include name, contents) pairs served to `#include "name"`.
pub fn compile(name: &str, src: &str, headers: &[(&str, &str)], arch: &str, out: Output, extra: &[&str]) -> Result<Compiled, CompileError> {
    let fail = |status: String, log: String| CompileError { name: name.to_string(), status, log };
    ensure_loaded().map_err(|e| fail("library not loaded".into(), e))?;
    let cstr = |s: &str| CString::new(s).map_err(|_| fail("bad input".into(), format!("{name}: the source or an option contains a NUL byte")));
    let (c_src, c_name) = (cstr(src)?, cstr(name)?);
    let header_src: Vec<CString> = headers.iter().map(|h| cstr(h.1)).collect::<Result<_, _>>()?;
    let header_names: Vec<CString> = headers.iter().map(|h| cstr(h.0)).collect::<Result<_, _>>()?;
    let target = match out {
        Output::Ptx => format!("--gpu-architecture=compute_{arch}"),
        Output::Cubin => format!("--gpu-architecture=sm_{arch}"),
    };
    let mut options: Vec<CString> = vec![cstr(&target)?, cstr("--std=c++17")?];
    for o in extra {
        options.push(cstr(o)?);
    }
    let result = guarded(|| {
        let src_ptrs: Vec<*const c_char> = header_src.iter().map(|c| c.as_ptr()).collect();
        let name_ptrs: Vec<*const c_char> = header_names.iter().map(|c| c.as_ptr()).collect();
        let opt_ptrs: Vec<*const c_char> = options.iter().map(|c| c.as_ptr()).collect();
        let mut prog: sys::nvrtcProgram = std::ptr::null_mut();
        // SAFETY: every pointer stays alive (owned CStrings above) for the duration of these calls,
        // and the program is destroyed on every path after creation.
        unsafe {
            let st = sys::nvrtcCreateProgram(&mut prog, c_src.as_ptr(), c_name.as_ptr(), headers.len() as c_int, src_ptrs.as_ptr(), name_ptrs.as_ptr());
            if st != sys::nvrtcResult::NVRTC_SUCCESS {
                return Err(fail(format!("{st:?}"), "nvrtcCreateProgram failed".into()));
            }
            let st = sys::nvrtcCompileProgram(prog, opt_ptrs.len() as c_int, opt_ptrs.as_ptr());
            let log = program_log(prog);
            let res = if st != sys::nvrtcResult::NVRTC_SUCCESS { Err(fail(format!("{st:?}"), log)) } else { fetch_output(prog, out).map(|bytes| Compiled { bytes, log: log.clone() }).map_err(|s| fail(s, log)) };
            sys::nvrtcDestroyProgram(&mut prog);
            res
        }
    });
    result.map_err(|panic| fail("NVRTC library error".into(), panic))?
}

/// The compile log (warnings on success, errors on failure).
unsafe fn program_log(prog: sys::nvrtcProgram) -> String {
    let mut size = 0usize;
    if sys::nvrtcGetProgramLogSize(prog, &mut size) != sys::nvrtcResult::NVRTC_SUCCESS || size == 0 {
        return String::new();
    }
    let mut buf = vec![0u8; size];
    if sys::nvrtcGetProgramLog(prog, buf.as_mut_ptr() as *mut c_char) != sys::nvrtcResult::NVRTC_SUCCESS {
        return String::new();
    }
    String::from_utf8_lossy(&buf).trim_end_matches('\0').to_string()
}

unsafe fn fetch_output(prog: sys::nvrtcProgram, out: Output) -> Result<Vec<u8>, String> {
    let mut size = 0usize;
    let st = match out {
        Output::Ptx => sys::nvrtcGetPTXSize(prog, &mut size),
        Output::Cubin => sys::nvrtcGetCUBINSize(prog, &mut size),
    };
    check(st, "get output size")?;
    let mut buf = vec![0u8; size];
    let st = match out {
        Output::Ptx => sys::nvrtcGetPTX(prog, buf.as_mut_ptr() as *mut c_char),
        Output::Cubin => sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut c_char),
    };
    check(st, "get output")?;
    if out == Output::Ptx {
        // The PTX text ends with a NUL that the driver needs but callers do not.
        while buf.last() == Some(&0) {
            buf.pop();
        }
    }
    Ok(buf)
}

fn check(st: sys::nvrtcResult, what: &str) -> Result<(), String> {
    if st == sys::nvrtcResult::NVRTC_SUCCESS {
        Ok(())
    } else {
        Err(format!("{what}: {st:?}"))
    }
}

/// Runs an NVRTC call, turning cudarc's panic on a missing library or symbol into an error.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let why = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
        format!("the NVRTC library could not be used: {why}")
    })
}
