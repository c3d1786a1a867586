//! Per-thread scratch buffers reused across calls, so large packing buffers are not re-allocated
//! (and their pages re-faulted and zeroed by the kernel) on every product.
use std::cell::RefCell;
use std::thread::LocalKey;

/// Largest buffer kept between calls: 8 Mi f32 (32 MiB).
const KEEP_MAX: usize = 8 << 20;

pub(crate) type Slot = LocalKey<RefCell<Vec<f32>>>;

/// Runs `f` on `len` f32 of this thread's `slot`. The contents are stale: `f` must write before it
/// reads. A nested use of the same slot on this thread (a product inside a rayon task of another
/// product) gets a fresh zeroed buffer instead.
pub(crate) fn with_scratch<R>(slot: &'static Slot, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    slot.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, 0.0);
            }
            let r = f(&mut v[..len]);
            // A one-off huge product (a vision layer) should not pin its buffer for the thread's life.
            if v.len() > KEEP_MAX {
                *v = Vec::new();
            }
            r
        }
        Err(_) => f(&mut vec![0f32; len]),
    })
}
