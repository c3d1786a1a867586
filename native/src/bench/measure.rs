//! The figures of `ovis-engine bench`: medians of `repeats` runs after `warmup` runs.
use super::BenchArgs;
use crate::error::Result;
use crate::generate::kv_cache::KvCache;
use crate::generate::sampler::{Sampler, SamplingParams};
use crate::model::merge::merge_embeddings;
use crate::model::ovis::OvisModel;
use serde_json::json;
use std::time::Instant;

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs `f` warmup + repeats times; the median of the timed runs in ms.
pub(super) fn timed(args: &BenchArgs, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..args.warmup {
        f()?;
    }
    let mut runs = Vec::with_capacity(args.repeats);
    for _ in 0..args.repeats {
        let t = Instant::now();
        f()?;
        runs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(runs))
}

/// Deterministic pseudo-random text ids below the special tokens.
pub(super) fn text_ids(n: usize, salt: u64) -> Vec<i32> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ salt;
    (0..n).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 151_000) as i32
    }).collect()
}

/// A short prompt around one image of `atoms` visual tokens: 12 text ids, the image, 12 text ids.
pub(super) fn image_prompt(atoms: usize) -> Vec<i32> {
    let mut ids = text_ids(12, 1);
    ids.push(-301);
    ids.extend(std::iter::repeat_n(-300, atoms));
    ids.push(-302);
    ids.extend(text_ids(12, 2));
    ids
}

pub(super) fn pixels(n_patches: usize) -> Vec<f32> {
    (0..n_patches * 768).map(|i| ((i * 2_654_435_761usize) % 2001) as f32 / 1000.0 - 1.0).collect()
}

pub fn measure(model: &OvisModel, args: &BenchArgs, backend: &str, device: &str) -> Result<serde_json::Value> {
    let llm = &model.llm;
    let h = model.cfg.llm.hidden;
    let mut images = Vec::new();
    let default_sides = if backend == "cpu" { vec![448, 896] } else { vec![896, 1792] };
    for &side in args.images.as_ref().unwrap_or(&default_sides) {
        let g = [1, side / 16, side / 16];
        let n = g[1] * g[2];
        let px = pixels(n);
        eprintln!("vision encode {side}×{side} ({n} patches)…");
        let encode_ms = timed(args, || {
            let f = model.vision.encode(&px, &[g])?;
            model.head.forward(&f).map(|_| ())
        })?;
        let ids = image_prompt(n / 4);
        eprintln!("time to first token {side}×{side} ({} positions)…", ids.len());
        let ttft_ms = timed(args, || {
            let f = model.vision.encode(&px, &[g])?;
            let (_, vis) = model.head.forward(&f)?;
            let emb = merge_embeddings(&ids, |t, o| llm.embed(t, o), &model.head, &vis, h)?;
            let mut cache = KvCache::new(&model.cfg.llm);
            let mut logits = llm.forward(&mut cache, &emb)?;
            Sampler::new(SamplingParams::default()).sample(&mut logits, &[], 0);
            Ok(())
        })?;
        images.push(json!({ "side": side, "patches": n, "positions": ids.len(), "vision_encode_ms": encode_ms, "time_to_first_token_ms": ttft_ms }));
    }

    let prompt = text_ids(args.prompt_tokens, 3);
    let emb = merge_embeddings(&prompt, |t, o| llm.embed(t, o), &model.head, &[], h)?;
    eprintln!("prefill {} tokens…", prompt.len());
    let prefill_ms = timed(args, || {
        let mut cache = KvCache::new(&model.cfg.llm);
        llm.forward(&mut cache, &emb).map(|_| ())
    })?;

    eprintln!("decode {} tokens…", args.decode_tokens);
    let short = text_ids(32, 4);
    let short_emb = merge_embeddings(&short, |t, o| llm.embed(t, o), &model.head, &[], h)?;
    let mut steps = Vec::new();
    for run in 0..args.warmup + args.repeats {
        let mut cache = KvCache::new(&model.cfg.llm);
        let mut logits = llm.forward(&mut cache, &short_emb)?;
        let mut sampler = Sampler::new(SamplingParams::default());
        let mut row = vec![0f32; h];
        for _ in 0..args.decode_tokens {
            let t = Instant::now();
            let id = sampler.sample(&mut logits, &[], 0).id;
            llm.embed(&[id], &mut row);
            logits = llm.forward(&mut cache, &row)?;
            if run >= args.warmup {
                steps.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let decode_ms = median(steps);

    let (read_bw, copy_bw) = super::measure_bandwidth::bandwidth();
    let figures = Figures { images, prompt_tokens: prompt.len(), prefill_ms, decode_ms, peak_memory_bytes: peak_rss_bytes(), read_bw, copy_bw };
    Ok(report(args, backend, device, &model.cfg.llm, figures))
}

/// What a backend measured; `report` turns it into the JSON that both backends print.
pub(super) struct Figures {
    pub images: Vec<serde_json::Value>,
    pub prompt_tokens: usize,
    pub prefill_ms: f64,
    /// Median ms per decoded token after a 32-token prompt.
    pub decode_ms: f64,
    pub peak_memory_bytes: u64,
    /// Bytes/s the floor divides by (CPU: measured reads; GPU: device copy, read + written), and the
    /// copy bandwidth.
    pub read_bw: f64,
    pub copy_bw: f64,
}

/// The benchmark's JSON report (src/cli/bench.ts formats it).
pub(super) fn report(args: &BenchArgs, backend: &str, device: &str, llm: &crate::model::config::LlmConfig, f: Figures) -> serde_json::Value {
    let bytes = decode_weight_bytes(llm);
    json!({
        "model": args.model.clone().unwrap_or_else(|| format!("synthetic {}", args.synthetic.clone().unwrap_or_default())),
        "backend": backend,
        "device": device,
        "threads": rayon::current_num_threads(),
        "images": f.images,
        "prefill": { "tokens": f.prompt_tokens, "ms": f.prefill_ms, "tokens_per_s": f.prompt_tokens as f64 / f.prefill_ms * 1e3 },
        "decode": { "ms_per_token": f.decode_ms, "tokens_per_s": 1e3 / f.decode_ms, "context": 32, "tokens": args.decode_tokens },
        "peak_memory_bytes": f.peak_memory_bytes,
        "floor": { "weight_bytes_per_token": bytes, "read_bandwidth_bytes_per_s": f.read_bw, "copy_bandwidth_bytes_per_s": f.copy_bw, "decode_ms_per_token": bytes as f64 / f.read_bw * 1e3 },
        "repeats": args.repeats,
        "warmup": args.warmup,
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// Bytes a decode step must read (model-spec.md §9): every decoder layer, the final norm, and the
/// output matrix (the tied embedding for 2B); the embedding lookup itself is one row.
fn decode_weight_bytes(c: &crate::model::config::LlmConfig) -> u64 {
    let per_layer = (c.heads * c.head_dim * c.hidden * 2 + c.kv_heads * c.head_dim * c.hidden * 2 + 3 * c.hidden * c.intermediate + 2 * c.hidden + 2 * c.head_dim) as u64;
    2 * (per_layer * c.layers as u64 + c.hidden as u64 + (c.vocab * c.hidden) as u64)
}

/// Peak resident memory of this process (Linux VmHWM), the CPU backend's "device memory".
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or(0, |kb| kb * 1024)
}
