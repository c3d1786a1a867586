//! The engine's malloc policy: freed memory stays mapped for the next request instead of going back
//! to the kernel (glibc on Linux only; elsewhere nothing changes).
//!
//! Why: glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh mmap and
//! unmaps it on free, and trims the heap's top; the next allocation of that size faults every 4 KiB
//! page in again and the kernel zeroes it. A 896² encode allocates per ViT layer an fc1 output of
//! 3,136 × 4,304 f32 (54 MB) and several 14 MB activations, and the prefill after it its own; one
//! 896² first token took 1.38 M page faults (5.6 GB of zeroed pages). With mmap off, no trimming and
//! one arena (the worker thread's buffers then come from the same reusable heap as the main
//! thread's), the same run takes 0.09 M; its bf16 first token was 0.4–1.1 s faster in all 7 pairs,
//! the f32 one faster in 3 pairs and slower in 2 taken while the host slowed (not settled; docs/
//! performance.md, "The malloc policy"). The cost: the process keeps its peak heap (measured +180 MB
//! at 896² bf16) until it exits.
//! Model weights are the exception: while a model loads, large allocations are mmapped as glibc does
//! by default (`loading_weights`). Synthetic and quantized weights are heap memory; with them on the
//! brk heap two decode pairs read 188–199 against 164–174 ms/token. Later pairs on a drifting host
//! could not confirm or refute that, so the weights keep glibc's placement.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::os::raw::c_int;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // glibc's malloc.h parameter numbers, and M_MMAP_MAX's default.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_MAX: c_int = -4;
    const M_ARENA_MAX: c_int = -8;
    const DEFAULT_MMAP_MAX: c_int = 65_536;

    /// SAFETY (both): mallopt only sets allocator parameters, under malloc's own lock. A refused
    /// setting (it returns 0) leaves glibc's default, which is only slower.
    pub fn keep_freed_memory() {
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, c_int::MAX);
            mallopt(M_ARENA_MAX, 1);
        }
    }

    pub fn mmap_large(on: bool) {
        unsafe {
            mallopt(M_MMAP_MAX, if on { DEFAULT_MMAP_MAX } else { 0 });
        }
    }
}

/// Whether main chose the keep-freed policy (library users, such as the tests, keep glibc's defaults).
static KEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called first thing in main: from then on freed memory is kept for reuse.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        glibc::keep_freed_memory();
        KEPT.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Runs `load` (building a model's weights) with large allocations mmapped, glibc's default; the
/// keep-freed policy (if main set it) holds again afterwards. Only the engine's loads call this,
/// one at a time (the worker thread), so the setting is not raced by another load.
pub fn loading_weights<T>(load: impl FnOnce() -> T) -> T {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let kept = KEPT.load(std::sync::atomic::Ordering::SeqCst);
        glibc::mmap_large(true);
        let out = load();
        if kept {
            glibc::mmap_large(false);
        }
        out
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    load()
}
