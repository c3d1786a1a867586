//! Fault injection into the fake GPU (native/tests/emu/fakegpu/libcuda.cpp) from a test running in the
//! same process: the stand-in libcuda exports `fakecuda_*` control functions, found here through
//! dlopen(RTLD_NOLOAD) on the library cudarc already loaded. A real driver has none of them, so on a GPU
//! machine these tests are skipped (a fault cannot be injected into real hardware); on the fake GPU
//! (OVIS_CUDA_EMULATED=1) a missing control function is a failure.
#![allow(dead_code)] // each test file uses a different part
use std::ffi::{c_char, c_int, c_void, CString};

extern "C" {
    fn dlopen(file: *const c_char, mode: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void;
}
const RTLD_NOW: c_int = 2;
const RTLD_NOLOAD: c_int = 4;

/// The control functions of the fake libcuda.
pub struct FakeCuda {
    fail_alloc_after: extern "C" fn(i64),
    fault: extern "C" fn(*const c_char, i64, c_int),
    reset: extern "C" fn(),
    allocs: extern "C" fn() -> i64,
}

impl FakeCuda {
    /// The allocation after the next `n` fails with CUDA_ERROR_OUT_OF_MEMORY (once).
    pub fn fail_alloc_after(&self, n: i64) {
        (self.fail_alloc_after)(n)
    }

    /// The `nth` run of `kernel` (from now) fails with CUresult `code`, which then sticks to every call.
    pub fn fault(&self, kernel: &str, nth: i64, code: i32) {
        let k = CString::new(kernel).unwrap();
        (self.fault)(k.as_ptr(), nth, code)
    }

    /// Clears the injections and a sticky error (the stand-in is usable again by the next test).
    pub fn reset(&self) {
        (self.reset)()
    }

    /// Allocations made so far in this process.
    pub fn allocs(&self) -> i64 {
        (self.allocs)()
    }
}

/// The fake GPU's controls; None on a real GPU (the test is recorded as skipped). Call after the GPU
/// was found (skip::gpu_present), so that libcuda is loaded.
pub fn fake_cuda(test: &str) -> Option<FakeCuda> {
    let emulated = std::env::var_os("OVIS_CUDA_EMULATED").is_some();
    // SAFETY: dlopen with RTLD_NOLOAD only looks up an already loaded library; the symbols have the
    // signatures declared by libcuda.cpp.
    unsafe {
        let name = CString::new("libcuda.so").unwrap();
        let h = dlopen(name.as_ptr(), RTLD_NOW | RTLD_NOLOAD);
        let sym = |s: &str| if h.is_null() { std::ptr::null_mut() } else { dlsym(h, CString::new(s).unwrap().as_ptr()) };
        let (a, f, r, n) = (sym("fakecuda_fail_alloc_after"), sym("fakecuda_fault"), sym("fakecuda_reset"), sym("fakecuda_allocs"));
        if a.is_null() || f.is_null() || r.is_null() || n.is_null() {
            if emulated {
                panic!("{test}: OVIS_CUDA_EMULATED is set but the loaded libcuda.so has no fakecuda_* controls (a stale stand-in?)");
            }
            crate::skip::skipped(test, "fault injection needs the fake GPU (native/tests/emu/fakegpu): a real driver cannot be made to fault on demand");
            return None;
        }
        Some(FakeCuda {
            fail_alloc_after: std::mem::transmute::<*mut c_void, extern "C" fn(i64)>(a),
            fault: std::mem::transmute::<*mut c_void, extern "C" fn(*const c_char, i64, c_int)>(f),
            reset: std::mem::transmute::<*mut c_void, extern "C" fn()>(r),
            allocs: std::mem::transmute::<*mut c_void, extern "C" fn() -> i64>(n),
        })
    }
}

/// Resets the fake GPU when dropped, so a failing assertion does not leave the next test a dead context.
pub struct ResetOnDrop<'a>(pub &'a FakeCuda);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.reset();
    }
}
