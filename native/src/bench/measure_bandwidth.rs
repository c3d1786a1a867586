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
        sink ^= src.par_chunks(chunk).map(sum_words).reduce(|| 0, |a, b| a ^ b);
    });
    let copy = best_of(3, || dst.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| d.copy_from_slice(s)));
    std::hint::black_box((sink, &dst));
    (BYTES as f64 / read, (2 * BYTES) as f64 / copy)
}

/// Folds a slice into one word with the widest loads this CPU has (the portable build targets SSE2
/// only); the value only keeps the loads from being optimised away.
fn sum_words(c: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was detected at run time.
        return unsafe { sum_words_avx512(c) };
    }
    sum_words_portable(c)
}

fn sum_words_portable(c: &[u64]) -> u64 {
    c.chunks_exact(8).fold([0u64; 8], |mut a, w| {
        for l in 0..8 {
            a[l] ^= w[l];
        }
        a
    }).iter().fold(0, |x, y| x ^ y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_words_avx512(c: &[u64]) -> u64 {
    use std::arch::x86_64::*;
    // Four independent 64-byte accumulators keep enough loads in flight to saturate memory.
    let mut acc = [_mm512_setzero_si512(); 4];
    let blocks = c.len() / 32;
    let p = c.as_ptr() as *const __m512i;
    for b in 0..blocks {
        for (l, a) in acc.iter_mut().enumerate() {
            *a = _mm512_xor_si512(*a, _mm512_loadu_si512(p.add(b * 4 + l)));
        }
    }
    let all = _mm512_xor_si512(_mm512_xor_si512(acc[0], acc[1]), _mm512_xor_si512(acc[2], acc[3]));
    _mm512_reduce_or_epi64(all) as u64 ^ sum_words_portable(&c[blocks * 32..])
}
