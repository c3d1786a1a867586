//! The CPU figures of `ovis-engine bench` (medians of `repeats` runs after `warmup` runs), and the
//! timing helpers and inputs that measure_cuda.rs shares.
use super::args::Plan;
use super::report::{Report, DECODE_CONTEXT};
use crate::error::Result;
use crate::generate::kv_cache::KvCache;
use crate::generate::sampler::{Sampler, SamplingParams};
use crate::backend::cpu::merge::merge_embeddings;
use crate::backend::cpu::model::OvisModel;
use std::time::Instant;

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs `f` warmup + repeats times; the median of the timed runs in ms.
pub(super) fn timed(plan: &Plan, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..plan.warmup {
        f()?;
    }
    let mut runs = Vec::with_capacity(plan.repeats);
    for _ in 0..plan.repeats {
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

/// Measures on the CPU, writing each figure as it is known (report.rs).
pub fn measure(model: &OvisModel, plan: &Plan, out: &mut Report) -> Result<()> {
    let llm = &model.llm;
    for &side in &plan.images {
        image_figures(model, plan, side, out)?;
    }

    let prompt = text_ids(plan.prompt_tokens, 3);
    let emb = merge_embeddings(&prompt, |t, o| llm.embed(t, o), &model.head, &[], model.cfg.llm.hidden)?;
    eprintln!("prefill {} tokens…", prompt.len());
    let prefill_ms = timed(plan, || {
        let mut cache = KvCache::new(&model.cfg.llm);
        llm.forward(&mut cache, &emb).map(|_| ())
    })?;
    out.prefill(prompt.len(), prefill_ms);

    eprintln!("decode {} tokens…", plan.decode_tokens);
    out.decode(decode_ms(model, plan)?, plan.decode_tokens);
    // Before the bandwidth test, whose 2 GiB of buffers are not the model's memory.
    out.peak_memory(peak_rss_bytes());

    eprintln!("memory bandwidth…");
    let (read_bw, copy_bw) = super::measure_bandwidth::bandwidth();
    out.floor(read_bw, copy_bw);
    Ok(())
}

/// Vision encode and time to first token for one side×side image.
fn image_figures(model: &OvisModel, plan: &Plan, side: usize, out: &mut Report) -> Result<()> {
    let llm = &model.llm;
    let g = [1, side / 16, side / 16];
    let n = g[1] * g[2];
    let px = pixels(n);
    // [visual tokens, hidden]: the ViT, then the visual head's embeddings.
    let encode = || -> Result<Vec<f32>> {
        let f = model.vision.encode(&px, &[g])?;
        Ok(model.head.forward(&f)?.1)
    };
    if !plan.encode_in_first_token_runs {
        eprintln!("vision encode {side}×{side} ({n} patches)…");
        out.vision_encode(side, timed(plan, || encode().map(|_| ()))?);
    }
    let ids = image_prompt(n / 4);
    eprintln!("time to first token {side}×{side} ({} positions)…", ids.len());
    // Encode ms of every run, warm-up runs first; the vision-encode figure when the plan says so.
    let mut encode_runs = Vec::new();
    let ttft_ms = timed(plan, || {
        let t = Instant::now();
        let vis = encode()?;
        encode_runs.push(t.elapsed().as_secs_f64() * 1e3);
        let emb = merge_embeddings(&ids, |t, o| llm.embed(t, o), &model.head, &vis, model.cfg.llm.hidden)?;
        let mut cache = KvCache::new(&model.cfg.llm);
        let mut logits = llm.forward(&mut cache, &emb)?;
        Sampler::new(SamplingParams::default()).sample(&mut logits, &[], 0);
        Ok(())
    })?;
    if plan.encode_in_first_token_runs {
        // The last `repeats` entries are the timed runs (the first `warmup` ones were not timed).
        out.vision_encode(side, median(encode_runs.split_off(plan.warmup)));
    }
    out.time_to_first_token(side, ttft_ms);
    Ok(())
}

/// Median ms per decoded token (sample, embed, one-position forward) after a DECODE_CONTEXT-token
/// prompt, over every step of the timed runs.
fn decode_ms(model: &OvisModel, plan: &Plan) -> Result<f64> {
    let (llm, h) = (&model.llm, model.cfg.llm.hidden);
    let short = text_ids(DECODE_CONTEXT, 4);
    let short_emb = merge_embeddings(&short, |t, o| llm.embed(t, o), &model.head, &[], h)?;
    let mut steps = Vec::new();
    for run in 0..plan.warmup + plan.repeats {
        let mut cache = KvCache::new(&model.cfg.llm);
        let mut logits = llm.forward(&mut cache, &short_emb)?;
        let mut sampler = Sampler::new(SamplingParams::default());
        let mut row = vec![0f32; h];
        for _ in 0..plan.decode_tokens {
            let t = Instant::now();
            let id = sampler.sample(&mut logits, &[], 0).id;
            llm.embed(&[id], &mut row);
            logits = llm.forward(&mut cache, &row)?;
            if run >= plan.warmup {
                steps.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    Ok(median(steps))
}

/// Peak resident memory of this process (Linux VmHWM), the CPU backend's "device memory".
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or(0, |kb| kb * 1024)
}
