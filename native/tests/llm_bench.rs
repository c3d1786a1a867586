//! CPU throughput of the Qwen3-1.7B shape (the LLM of Ovis2.5-2B) with synthetic bf16 weights.
//! Ignored by default; run one at a time (they would compete for the cores):
//!   cargo test --release --test llm_bench -- --ignored --nocapture --test-threads=1
//! Prints numbers only (no timed assertions). Targets (docs/performance.md, 2 cores): prefill ≥ 52
//! tokens/s for a 128-token prompt, decode ≥ 13 tokens/s (≤ 77 ms/token).
use half::bf16;
use ovis_engine::backend::cpu::matmul::matmul_bf16;
use ovis_engine::generate::kv_cache::KvCache;
use ovis_engine::generate::sampler::argmax;
use ovis_engine::model::config::LlmConfig;
use ovis_engine::backend::cpu::qwen3::Qwen3;
use std::time::Instant;

fn qwen3_1_7b() -> LlmConfig {
    LlmConfig {
        hidden: 2048,
        layers: 28,
        heads: 16,
        kv_heads: 8,
        head_dim: 128,
        intermediate: 6144,
        vocab: 151_936,
        max_positions: 40_960,
        rope_theta: 1e6,
        rms_eps: 1e-6,
        tie_embeddings: true,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn prefill(model: &Qwen3, ids: &[u32]) -> (KvCache, Vec<f32>) {
    let mut cache = KvCache::new(model.config());
    let mut e = vec![0f32; ids.len() * model.config().hidden];
    model.embed(ids, &mut e);
    let logits = model.forward(&mut cache, &e).unwrap();
    (cache, logits)
}

#[test]
#[ignore = "a timing run: cargo test --release --test llm_bench -- --ignored --nocapture --test-threads=1"]
fn qwen3_1_7b_prefill_and_decode() {
    let cfg = qwen3_1_7b();
    let t = Instant::now();
    let model = Qwen3::synthetic(&cfg, 7);
    println!("synthetic 1.7B-shape model: {:.2e} params in {:.1} s, {} threads", model.param_count() as f64, t.elapsed().as_secs_f64(), rayon::current_num_threads());
    let prompt: Vec<u32> = (0..128u32).map(|i| (i * 7919 + 11) % 151_000).collect();
    prefill(&model, &prompt[..16]);

    let mut times = Vec::new();
    let mut state = None;
    for _ in 0..5 {
        let t = Instant::now();
        state = Some(prefill(&model, &prompt));
        times.push(t.elapsed().as_secs_f64());
    }
    let (p, pb) = (median(times.clone()), best(&times));
    println!("prefill 128 tokens: median {:.0} ms → {:.1} tokens/s; best {:.0} ms → {:.1} tokens/s (5 runs)", p * 1e3, 128.0 / p, pb * 1e3, 128.0 / pb);

    let (mut cache, mut logits) = state.unwrap();
    let mut e = vec![0f32; cfg.hidden];
    let mut steps = Vec::new();
    for _ in 0..33 {
        let id = argmax(&logits) as u32;
        let t = Instant::now();
        model.embed(&[id], &mut e);
        logits = model.forward(&mut cache, &e).unwrap();
        steps.push(t.elapsed().as_secs_f64());
    }
    steps.remove(0);
    let (d, db) = (median(steps.clone()), best(&steps));
    println!("decode after 128 tokens: median {:.1} ms/token → {:.1} tokens/s; best {:.1} ms/token (32 steps)", d * 1e3, 1.0 / d, db * 1e3);
    let bytes = (model.param_count() as f64) * 2.0;
    println!("decode weight stream: {:.2} GB/token → {:.1} GB/s", bytes / 1e9, bytes / d / 1e9);
}

/// Single products of the decoder's shapes, to see where time goes. Weights are cycled through
/// copies totalling ≥ 1 GiB so they come from DRAM, as in the model, not from the 300 MB L3.
/// Best of the repeats (the machine is shared).
#[test]
#[ignore = "a timing run: cargo test --release --test llm_bench -- --ignored --nocapture --test-threads=1"]
fn matmul_shapes_throughput() {
    for &(m, k, n) in &[(1usize, 2048usize, 6144usize), (1, 2048, 1024), (1, 2048, 151_936), (128, 2048, 6144), (128, 6144, 2048), (128, 2048, 1024), (3136, 1152, 4304)] {
        let copies = (1usize << 30).div_ceil(2 * k * n).max(2);
        let x = vec![0.01f32; m * k];
        let ws: Vec<Vec<bf16>> = (0..copies).map(|_| vec![bf16::from_f32(0.02); n * k]).collect();
        let mut y = vec![0f32; m * n];
        matmul_bf16(&x, m, k, &ws[0], n, None, &mut y);
        let reps = copies.clamp(3, 64);
        let mut times = Vec::new();
        for r in 0..reps {
            let t = Instant::now();
            matmul_bf16(&x, m, k, &ws[(r + 1) % copies], n, None, &mut y);
            times.push(t.elapsed().as_secs_f64());
        }
        let s = best(&times);
        println!("m={m:5} k={k:5} n={n:6}: {:8.2} ms  {:7.1} GFLOP/s  {:6.1} GB/s of weights", s * 1e3, 2.0 * (m * k * n) as f64 / s / 1e9, (2 * k * n) as f64 / s / 1e9);
    }
}

/// Causal attention of a 512-position prefill chunk over 512 cached + 512 new positions (1.7B heads).
#[test]
#[ignore = "a timing run: cargo test --release --test llm_bench -- --ignored --nocapture --test-threads=1"]
fn attention_throughput() {
    use ovis_engine::backend::cpu::attention::{causal_attention, AttnShape};
    let s = AttnShape { heads: 16, kv_heads: 8, head_dim: 128 };
    for &(start, len) in &[(0usize, 128usize), (512, 512), (4096, 1)] {
        let ctx = start + len;
        let q: Vec<f32> = (0..len * 16 * 128).map(|i| ((i % 97) as f32 - 48.0) * 0.01).collect();
        let k: Vec<f32> = (0..ctx * 8 * 128).map(|i| ((i % 89) as f32 - 44.0) * 0.01).collect();
        let v = k.clone();
        let mut out = vec![0f32; q.len()];
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            causal_attention(&q, start, &k, &v, s, &mut out);
            times.push(t.elapsed().as_secs_f64());
        }
        let t = best(&times);
        let flops = 4.0 * 16.0 * 128.0 * (0..len).map(|i| (start + i + 1) as f64).sum::<f64>();
        println!("attention start={start:5} len={len:4}: {:8.2} ms  {:6.1} GFLOP/s", t * 1e3, flops / t / 1e9);
    }
}
