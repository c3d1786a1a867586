//! The machine's f32 FMA peak, the denominator of the profile's "% of peak": every thread runs
//! independent chains of fused multiply-adds on the widest vectors this CPU has (AVX-512, else
//! AVX2+FMA, else scalar), enough chains to cover the FMA latency on two ports.
use rayon::prelude::*;
use std::time::Instant;

/// Multiply-add steps per chain per run; 12 chains × 16 lanes × 2 FLOPs each.
const STEPS: usize = 4_000_000;

/// (FLOP/s on all threads, the instruction set used).
pub fn fma_peak() -> (f64, &'static str) {
    let threads = rayon::current_num_threads().max(1);
    let (per_run, isa): (fn() -> f32, _) = pick();
    let flops_per_call = match isa {
        "avx512f" => 12 * 16 * 2 * STEPS,
        "avx2+fma" => 12 * 8 * 2 * STEPS,
        _ => 12 * 2 * STEPS,
    } as f64;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let s: f32 = (0..threads).into_par_iter().map(|_| per_run()).sum();
        std::hint::black_box(s);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (flops_per_call * threads as f64 / best, isa)
}

fn pick() -> (fn() -> f32, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: detected at run time.
            return (|| unsafe { chains_avx512() }, "avx512f");
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: detected at run time.
            return (|| unsafe { chains_avx2() }, "avx2+fma");
        }
    }
    (chains_scalar, "scalar")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn chains_avx512() -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut c = [_mm512_set1_ps(1.0); 12];
    for _ in 0..STEPS {
        for v in c.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    c.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chains_avx2() -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut c = [_mm256_set1_ps(1.0); 12];
    for _ in 0..STEPS {
        for v in c.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut out = [0f32; 8];
    let s = c.iter().fold(_mm256_setzero_ps(), |s, v| _mm256_add_ps(s, *v));
    _mm256_storeu_ps(out.as_mut_ptr(), s);
    out.iter().sum()
}

fn chains_scalar() -> f32 {
    let mut c = [1f32; 12];
    for _ in 0..STEPS {
        for v in c.iter_mut() {
            *v = v.mul_add(0.999_999, 1e-7);
        }
    }
    std::hint::black_box(c).iter().sum()
}
