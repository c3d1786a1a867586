//! The machine's memory bandwidth, the floor's denominator. Decoding streams weights (reads), so the
//! floor uses a parallel read of 1 GiB; the copy figure (bytes read + written, performance.md's
//! convention for GPUs) is reported beside it.
use rayon::prelude::*;
use std::time::Instant;

const BYTES: usize = 1 << 30;

fn best_of(runs: usize, mut f: impl FnMut()) -> f64 {
    (0..runs).map(|_| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    }).fold(f64::MAX, f64::min)
}

/// (read bytes/s, copy bytes/s).
pub fn bandwidth() -> (f64, f64) {
    let words = BYTES / 8;
    let src: Vec<u64> = (0..words as u64).into_par_iter().map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
    let mut dst = vec![1u64; words];
    let chunk = words / rayon::current_num_threads().max(1) / 8;
    let mut sink = 0u64;
    let read = best_of(3, || {
        // Eight independent lanes keep the loads in flight; the wrapping sum is only there to be used.
        sink ^= src.par_chunks(chunk).map(|c| c.chunks_exact(8).fold([0u64; 8], |mut a, w| {
            for l in 0..8 {
                a[l] = a[l].wrapping_add(w[l]);
            }
            a
        }).iter().fold(0u64, |x, y| x ^ y)).reduce(|| 0, |a, b| a ^ b);
    });
    let copy = best_of(3, || dst.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| d.copy_from_slice(s)));
    std::hint::black_box((sink, &dst));
    (BYTES as f64 / read, (2 * BYTES) as f64 / copy)
}
