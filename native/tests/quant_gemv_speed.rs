//! Decode speed of the quantized GEMV against this machine's read bandwidth (a measurement, not a
//! pass/fail check: `#[ignore]`, run it by hand):
//!
//!     cargo test --release --manifest-path native/Cargo.toml --test quant_gemv_speed -- --ignored --nocapture
//!
//! Builds LAYERS decoder layers of the Ovis2.5-2B (Qwen3-1.7B) shapes — q, k, v, o, gate, up, down —
//! quantized at load like the model (`Linear::new`), far more bytes than the last-level cache, and
//! alternates two timings, ROUNDS times: one decode step's products (x of 1 row through every
//! matrix, activations quantized per call as in decode) and a plain parallel read of the same bytes
//! (weights and scales). The ratio of the medians is the kernel's distance from its bandwidth floor
//! (1.0 = at the floor), measured in one process a few milliseconds apart, so it stays meaningful
//! when other processes load the machine. OVIS_QMODE=int8|int4 picks one mode (default: both).
use half::bf16;
use ovis_engine::backend::cpu::linear::Linear;
use ovis_engine::backend::cpu::quant::WeightMode;
use ovis_engine::model::weights::WeightRef;
use rayon::prelude::*;
use std::time::Instant;

const LAYERS: usize = 6;
const ROUNDS: usize = 15;
/// (n, k) of one layer's linear layers, 2B shapes: hidden 2048, 16 query and 8 key/value heads of
/// 128, MLP 6144.
const SHAPES: [(usize, usize); 7] = [(2048, 2048), (1024, 2048), (1024, 2048), (2048, 2048), (6144, 2048), (6144, 2048), (2048, 6144)];

/// Weights like the synthetic model's: uniform in ±0.05 (a fast deterministic generator).
fn random_bf16(len: usize, seed: u64) -> Vec<bf16> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            bf16::from_f32(((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1)
        })
        .collect()
}

/// CPU time of this process's threads so far, in ns (Linux: /proc/self/task/*/schedstat; 0
/// elsewhere). Unlike wall time it does not count time spent waiting while other processes run, so
/// on a loaded machine it still shows what a kernel costs (memory stalls included).
fn cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0 };
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Sums every 8-byte word of `bytes` over the rayon pool (the memory floor of reading them).
fn read_all(parts: &[&[u8]]) -> u64 {
    parts
        .par_iter()
        .map(|p| p.par_chunks(1 << 16).map(|c| c.chunks_exact(8).fold(0u64, |a, w| a.wrapping_add(u64::from_le_bytes(w.try_into().unwrap())))).reduce(|| 0, u64::wrapping_add))
        .reduce(|| 0, u64::wrapping_add)
}

fn reps_of(hot: bool) -> usize {
    if hot { 200 } else { 1 }
}

fn measure(mode: WeightMode) {
    // OVIS_QHOT=1: one small matrix (k, v shape) only, which stays in L2: the kernel's compute rate
    let hot = std::env::var("OVIS_QHOT").is_ok_and(|v| v == "1");
    let (layers, shapes) = if hot { (1, &SHAPES[1..2]) } else { (LAYERS, &SHAPES[..]) };
    let mut linears = Vec::new();
    for l in 0..layers {
        for (i, &(n, k)) in shapes.iter().enumerate() {
            linears.push(Linear::new(WeightRef::from_vec(random_bf16(n * k, (l * 7 + i) as u64 + 1), &[n, k]), mode));
        }
    }
    let parts: Vec<&[u8]> = linears
        .iter()
        .flat_map(|lin| match lin {
            Linear::Quant(q) => {
                // SAFETY: the scales viewed as their bytes, same lifetime
                let s = unsafe { std::slice::from_raw_parts(q.scales.as_ptr() as *const u8, std::mem::size_of_val(&q.scales[..])) };
                vec![&q.data[..], s]
            }
            Linear::Bf16(_) => unreachable!("quantized"),
        })
        .collect();
    let bytes: usize = parts.iter().map(|p| p.len()).sum();
    let xs: Vec<Vec<f32>> = SHAPES.iter().map(|&(_, k)| random_bf16(k, 99 + k as u64).iter().map(|v| v.to_f32() * 20.0).collect()).collect();
    let mut ys: Vec<Vec<f32>> = SHAPES.iter().map(|&(n, _)| vec![0f32; n]).collect();
    let (mut kernel, mut read) = (Vec::new(), Vec::new());
    let (mut kernel_cpu, mut read_cpu) = (Vec::new(), Vec::new());
    let mut sink = 0u64;
    for round in 0..ROUNDS + 1 {
        // hot: many passes over the same small matrix, so timer and rayon start-up are amortised
        let reps = reps_of(hot);
        let (t, c) = (Instant::now(), cpu_ns());
        for (i, lin) in (0..reps).flat_map(|_| linears.iter().enumerate()) {
            let s = if hot { 1 } else { i % 7 };
            lin.matmul(&xs[s], 1, &mut ys[s]);
        }
        let tk = t.elapsed().as_secs_f64();
        let ck = (cpu_ns() - c) as f64 * 1e-9;
        let (t, c) = (Instant::now(), cpu_ns());
        for _ in 0..reps {
            sink = sink.wrapping_add(read_all(&parts));
        }
        let tr = t.elapsed().as_secs_f64();
        let cr = (cpu_ns() - c) as f64 * 1e-9;
        if round > 0 {
            kernel.push(tk);
            read.push(tr);
            kernel_cpu.push(ck);
            read_cpu.push(cr);
        }
    }
    let ratios: Vec<String> = kernel.iter().zip(&read).map(|(a, b)| format!("{:.2}", a / b)).collect();
    let (k, r) = (median(&mut kernel), median(&mut read));
    let (kc, rc) = (median(&mut kernel_cpu), median(&mut read_cpu));
    println!(
        "{}: {:.1} MB in {} layers; decode products {:.2} ms, read {:.2} ms ({:.1} GB/s): kernel/read {:.2}; CPU time: products {:.2} ms, read {:.2} ms, ratio {:.2} (wall ratio per round: {}) [{}]",
        mode.name(),
        (bytes * reps_of(hot)) as f64 / 1e6,
        layers,
        k * 1e3,
        r * 1e3,
        (bytes * reps_of(hot)) as f64 / r / 1e9,
        k / r,
        kc * 1e3,
        rc * 1e3,
        kc / rc,
        ratios.join(" "),
        sink % 2 + ys[0][0].is_finite() as u64
    );
}

#[test]
#[ignore = "a speed measurement: run by hand with --ignored --nocapture"]
fn decode_gemv_against_read() {
    let modes = match std::env::var("OVIS_QMODE").as_deref() {
        Ok("int8") => vec![WeightMode::Int8],
        Ok("int4") => vec![WeightMode::Int4],
        _ => vec![WeightMode::Int4, WeightMode::Int8],
    };
    for mode in modes {
        measure(mode);
    }
}
