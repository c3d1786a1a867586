//! Scratch timer for the batched decode attention at the 2B decoder's shapes (not a test):
//! `cargo run --release --example decode_attention -- [rows,…] [context] [steps]`. Each row has a
//! KV cache like `KvCache`'s (per layer, f32 [positions, 8 kv heads, 128]); a step is the 28 layers'
//! `causal_attention_rows` over all rows, as in `Qwen3::forward_batch`. Before each step a 256 MiB
//! buffer is read, as the step's weights would, so the caches come from DRAM. Prints per row count
//! the best and median ms of a step's attention, run on a rayon worker like the real step.
use ovis_engine::backend::cpu::attention::{causal_attention_rows, AttnRow, AttnShape};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: Vec<usize> = args.get(1).map_or(vec![1, 8], |s| s.split(',').map(|v| v.parse().unwrap()).collect());
    let ctx: usize = args.get(2).map_or(33, |s| s.parse().unwrap());
    let steps: usize = args.get(3).map_or(30, |s| s.parse().unwrap());
    let (layers, s) = (28, AttnShape { heads: 16, kv_heads: 8, head_dim: 128 });
    let (qd, kvd) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let flush: Vec<u64> = (0..32 << 20).map(|i| i as u64).collect();
    for &m in &rows {
        // caches[row][layer]: K and V of ctx positions (the new one included)
        let caches: Vec<Vec<(Vec<f32>, Vec<f32>)>> = (0..m)
            .map(|r| (0..layers).map(|l| ((0..ctx * kvd).map(|i| ((i + r + l) % 97) as f32 * 0.01).collect(), (0..ctx * kvd).map(|i| ((i * 3 + r) % 89) as f32 * 0.01).collect())).collect())
            .collect();
        let q: Vec<f32> = (0..m * qd).map(|i| (i % 101) as f32 * 0.01).collect();
        let mut out = vec![0f32; m * qd];
        let mut times = Vec::with_capacity(steps);
        let mut sink = 0u64;
        for _ in 0..steps {
            if std::env::var("NOFLUSH").is_err() { sink = sink.wrapping_add(flush.iter().fold(0u64, |a, &b| a.wrapping_add(b))); }
            let t = rayon::scope(|_| {
                let t = Instant::now();
                for l in 0..layers {
                    let work = out
                        .chunks_mut(qd)
                        .enumerate()
                        .map(|(r, o)| AttnRow { q: &q[r * qd..(r + 1) * qd], start: ctx - 1, k: &caches[r][l].0, v: &caches[r][l].1, out: o })
                        .collect();
                    causal_attention_rows(work, s);
                }
                t.elapsed().as_secs_f64()
            });
            times.push(t * 1e3);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("rows {m:2} context {ctx}: step attention best {:.3} ms, median {:.3} ms ({} steps, sink {})", times[0], times[steps / 2], steps, sink % 7);
    }
}
