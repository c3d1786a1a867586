//! Scratch A/B timer for the multi-row bf16 GEMV at the 2B decoder's shapes (not a test):
//! `cargo run --release --example gemv_rows -- [rounds]`. W for 10 layers (~1 GB, past the L3) is
//! walked layer after layer, the 7 projections of each, like a decode step; then the lm_head
//! [151936, 2048]. Prints, per row count, the best and median ms of one pass and its GFLOP/s and GB/s.
use half::bf16;
use ovis_engine::backend::cpu::gemv::{gemv_with, Kernel};

#[path = "gemv_rows/base_avx512.rs"]
mod base;

/// KERNEL=amx|avx512|avx2, else the default.
fn kernel() -> Kernel {
    match std::env::var("KERNEL").as_deref() {
        Ok("amx") => Kernel::Amx,
        Ok("avx512") => Kernel::Avx512,
        Ok("avx2") => Kernel::Avx2,
        _ => ovis_engine::backend::cpu::gemv::kernel(),
    }
}
use std::time::Instant;

/// `HOT=n,k`: one thread, one [n, k] matrix read again and again (from L2 when small): the kernel's
/// arithmetic rate without DRAM, best of many calls (`KERNEL=base`: the frozen kernel of dc40eb2).
fn hot(spec: &str, rows: &[usize]) {
    let v: Vec<usize> = spec.split(',').map(|s| s.parse().unwrap()).collect();
    let (n, k) = (v[0], v[1]);
    let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32(((i * 7919) % 1009) as f32 * 1e-4)).collect();
    let x: Vec<f32> = (0..16 * k).map(|i| ((i * 31) % 97) as f32 * 1e-2).collect();
    let mut y = vec![0f32; 16 * n];
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        println!("one-thread f32 FMA peak now: {:.1} GFLOP/s", peak());
        for &m in rows {
            let mut best = f64::MAX;
            for _ in 0..300 {
                let t = Instant::now();
                if std::env::var("KERNEL").as_deref() == Ok("base") {
                    base::gemv(&x[..m * k], m, k, &w, n, None, &mut y[..m * n]);
                } else {
                    gemv_with(kernel(), &x[..m * k], m, k, &w, n, None, &mut y[..m * n]);
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!("hot n={n} k={k} m={m:2}: best {:8.1} us  {:6.1} GFLOP/s", best * 1e6, (2 * m * n * k) as f64 / best * 1e-9);
        }
    });
}

/// `CALLS=n,k`: [n, k] matrices filling 1 GiB (past the L3), one call each in turn, timed one by
/// one (`ROUNDS` passes over them, default 3): on a loaded machine the best and 10th-percentile calls
/// are those that ran undisturbed.
/// `KERNEL=ab`: AMX and AVX-512 alternate call by call (each on the next matrix, from DRAM), so both
/// see the same load; prints both and the ratio of their p10 and median times. `KERNEL=base`: the same
/// with the frozen AVX-512 kernel of main dc40eb2 (`gemv_rows/base_avx512.rs`) against today's.
fn calls(spec: &str, rows: &[usize]) {
    let v: Vec<usize> = spec.split(',').map(|s| s.parse().unwrap()).collect();
    let (n, k) = (v[0], v[1]);
    let count = (1usize << 30) / (n * k * 2);
    // `HUGE=1`: the matrices in one anonymous mapping advised MADV_HUGEPAGE (2 MiB pages where the
    // kernel grants them) instead of one heap allocation each: does the page size matter?
    let mut huge = if std::env::var("HUGE").as_deref() == Ok("1") {
        let map = memmap2::MmapMut::map_anon(count * n * k * 2).unwrap();
        map.advise(memmap2::Advice::HugePage).unwrap();
        Some(map)
    } else {
        None
    };
    let mut owned: Vec<Vec<bf16>> = Vec::new();
    let mut rest: &mut [u8] = huge.as_deref_mut().unwrap_or(&mut []);
    let mut mats: Vec<&[bf16]> = Vec::new();
    for c in 0..count {
        let fill = |w: &mut [bf16]| w.iter_mut().enumerate().for_each(|(i, v)| *v = bf16::from_f32(((i * 7919 + c) % 1009) as f32 * 1e-4));
        if rest.is_empty() {
            let mut w = vec![bf16::ZERO; n * k];
            fill(&mut w);
            owned.push(w);
        } else {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(n * k * 2);
            // SAFETY: the mapping is page-aligned (bf16 needs 2) and lives until the end of `calls`.
            let w = unsafe { std::slice::from_raw_parts_mut(head.as_mut_ptr() as *mut bf16, n * k) };
            fill(w);
            mats.push(w);
            rest = tail;
        }
    }
    if mats.is_empty() {
        mats = owned.iter().map(|w| &w[..]).collect();
    }
    let x: Vec<f32> = (0..16 * k).map(|i| ((i * 31) % 97) as f32 * 1e-2).collect();
    let mut y = vec![0f32; 16 * n];
    let base_ab = std::env::var("KERNEL").as_deref() == Ok("base");
    let ab = base_ab || std::env::var("KERNEL").as_deref() == Ok("ab");
    // `WORKER=ab`: the same kernel called alternately from this (outside) thread and from inside a
    // rayon worker (`rayon::scope`, as `Qwen3::forward_batch` runs its step): does the caller matter?
    let worker_ab = std::env::var("WORKER").as_deref() == Ok("ab");
    // (with KERNEL=base, the first entry stands for the frozen base kernel)
    let kernels = if ab { vec![Kernel::Amx, Kernel::Avx512] } else if worker_ab { vec![kernel(), kernel()] } else { vec![kernel()] };
    for &m in rows {
        let mut ts = vec![Vec::new(); kernels.len()];
        let rounds: usize = std::env::var("ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
        for _ in 0..rounds {
            for (c, w) in mats.iter().enumerate() {
                let which = c % kernels.len();
                let call = |y: &mut [f32]| {
                    let t = Instant::now();
                    if base_ab && which == 0 {
                        base::gemv(&x[..m * k], m, k, w, n, None, y);
                    } else {
                        assert!(gemv_with(kernels[which], &x[..m * k], m, k, w, n, None, y));
                    }
                    t.elapsed().as_secs_f64()
                };
                let dt = if worker_ab && which == 1 { rayon::scope(|_| call(&mut y[..m * n])) } else { call(&mut y[..m * n]) };
                ts[which].push(dt);
            }
        }
        let bytes = (n * k * 2) as f64;
        let mut stats = Vec::new();
        for (kern, t) in kernels.iter().zip(ts.iter_mut()) {
            t.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let (best, p10, med) = (t[0], t[t.len() / 10], t[t.len() / 2]);
            let kern = if base_ab && stats.is_empty() { "Base".to_string() } else { format!("{kern:?}") };
            println!("calls {kern} n={n} k={k} m={m:2}: best {:7.1} us ({:5.1} GB/s)  p10 {:7.1} us ({:5.1} GB/s)  med {:7.1} us", best * 1e6, bytes / best * 1e-9, p10 * 1e6, bytes / p10 * 1e-9, med * 1e6);
            stats.push((p10, med));
        }
        if ab {
            let what = if base_ab { "new AVX-512 time / base time" } else { "AVX-512 time / AMX time" };
            println!("calls m={m:2}: {what}: p10 {:.3}, median {:.3}", stats[1].0 / stats[0].0, stats[1].1 / stats[0].1);
        }
        if worker_ab {
            println!("calls m={m:2}: in a worker / from outside: p10 {:.3}, median {:.3}", stats[1].0 / stats[0].0, stats[1].1 / stats[0].1);
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var("CALLS") {
        let rows: Vec<usize> = std::env::args().nth(2).map_or(vec![1, 8], |s| s.split(',').map(|v| v.parse().unwrap()).collect());
        return calls(&spec, &rows);
    }
    if let Ok(spec) = std::env::var("HOT") {
        let rows: Vec<usize> = std::env::args().nth(2).map_or(vec![1, 2, 4, 8, 16], |s| s.split(',').map(|v| v.parse().unwrap()).collect());
        return hot(&spec, &rows);
    }
    let rounds: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(7);
    let rows: Vec<usize> = std::env::args().nth(2).map_or(vec![1, 2, 4, 8, 16], |s| s.split(',').map(|v| v.parse().unwrap()).collect());
    let (h, qd, kvd, inter, layers, vocab) = (2048usize, 2048usize, 1024usize, 6144usize, 10usize, 151_936usize);
    // (n, k) of q, k, v, o, gate, up, down
    let shapes = [(qd, h), (kvd, h), (kvd, h), (h, qd), (inter, h), (inter, h), (h, inter)];
    let mut seed = 1u32;
    let mut rnd = || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 9) as f32 / (1u32 << 23) as f32 - 0.5
    };
    let mats: Vec<Vec<Vec<bf16>>> = (0..layers).map(|_| shapes.iter().map(|&(n, k)| (0..n * k).map(|_| bf16::from_f32(rnd() * 0.04)).collect()).collect()).collect();
    let head: Vec<bf16> = (0..vocab * h).map(|_| bf16::from_f32(rnd() * 0.04)).collect();
    let x: Vec<f32> = (0..16 * inter).map(|_| rnd()).collect();
    let mut y = vec![0f32; 16 * vocab];
    let layer_bytes: usize = shapes.iter().map(|&(n, k)| n * k * 2).sum();
    let kern = kernel();
    println!("kernel {kern:?}, threads {}", rayon::current_num_threads());
    for &m in &rows {
        let mut t_layers = Vec::new();
        let mut t_head = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            for l in &mats {
                for (w, &(n, k)) in l.iter().zip(&shapes) {
                    assert!(gemv_with(kern, &x[..m * k], m, k, w, n, None, &mut y[..m * n]));
                }
            }
            t_layers.push(t.elapsed().as_secs_f64() / layers as f64);
            let t = Instant::now();
            gemv_with(kern, &x[..m * h], m, h, &head, vocab, None, &mut y[..m * vocab]);
            t_head.push(t.elapsed().as_secs_f64());
        }
        for (what, mut ts, bytes) in [("layer", t_layers, layer_bytes), ("lm_head", t_head, vocab * h * 2)] {
            ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let (best, med) = (ts[0], ts[ts.len() / 2]);
            let flop = (bytes / 2 * 2 * m) as f64;
            println!("m={m:2} {what:8} best {:7.2} ms  med {:7.2} ms  best {:6.1} GFLOP/s {:5.1} GB/s  med {:6.1} GFLOP/s {:5.1} GB/s", best * 1e3, med * 1e3, flop / best * 1e-9, bytes as f64 / best * 1e-9, flop / med * 1e-9, bytes as f64 / med * 1e-9);
        }
    }
}

/// One thread's f32 FMA rate now (24 independent zmm chains), best of 50 runs of 4096 iterations.
fn peak() -> f64 {
    #[target_feature(enable = "avx512f")]
    unsafe fn chains(iters: usize) -> f32 {
        use std::arch::x86_64::*;
        let mut a = [_mm512_set1_ps(1.0); 24];
        let (b, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        for _ in 0..iters {
            for v in a.iter_mut() {
                *v = _mm512_fmadd_ps(*v, b, c);
            }
        }
        a.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
    }
    let mut best = f64::MAX;
    for _ in 0..50 {
        let t = Instant::now();
        std::hint::black_box(unsafe { chains(std::hint::black_box(4096)) });
        best = best.min(t.elapsed().as_secs_f64());
    }
    (4096 * 24 * 32) as f64 / best * 1e-9
}
