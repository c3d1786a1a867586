//! `ovis-engine bench --profile` (CPU): one more pass after the figures, with the stage timers of
//! backend/cpu/profile.rs on: one encode of the first planned image (ViT, head, VTE), one prefill of
//! the prompt, `decode_tokens` decode steps. Per stage: wall time, calls, and for the compute stages
//! GFLOP/s and the share of this machine's f32 FMA peak (measured here, measure_peak.rs).
use super::args::Plan;
use super::measure::{pixels, text_ids};
use super::report::{Report, DECODE_CONTEXT};
use crate::backend::cpu::profile::{self, Stage};
use crate::error::Result;
use crate::generate::kv_cache::KvCache;
use crate::backend::cpu::qwen3::BatchRow;
use crate::generate::sampler::{Sampler, SamplingParams};
use crate::model::config::LlmConfig;
use crate::backend::cpu::merge::merge_embeddings;
use crate::backend::cpu::model::OvisModel;
use serde_json::{json, Value};
use std::time::Instant;

/// FLOPs of the decoder's matrix products for `rows` positions, plus the lm_head for one row
/// (attention's own products are left out: small beside these at the prompt lengths measured).
fn llm_flops(c: &LlmConfig, rows: usize) -> u64 {
    let (qd, kvd) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
    let per_row = c.layers * (c.hidden * (2 * qd + 2 * kvd) + 3 * c.hidden * c.intermediate);
    2 * (rows * per_row + c.hidden * c.vocab) as u64
}

pub fn measure(model: &OvisModel, plan: &Plan, out: &mut Report) -> Result<()> {
    eprintln!("profile: measuring the FMA peak…");
    let (peak, isa) = super::measure_peak::fma_peak();
    let llm = &model.llm;
    let h = model.cfg.llm.hidden;
    profile::set_enabled(true);
    let side = plan.images.first().copied();
    if let Some(side) = side {
        let g = [1, side / 16, side / 16];
        eprintln!("profile: one {side}×{side} encode…");
        let f = model.vision.encode(&pixels(g[1] * g[2]), &[g])?;
        model.head.forward(&f)?;
    }
    eprintln!("profile: one {}-token prefill, {} decode steps…", plan.prompt_tokens, plan.decode_tokens);
    let prompt = text_ids(plan.prompt_tokens, 3);
    let emb = merge_embeddings(&prompt, |t, o| llm.embed(t, o), &model.head, &[], h)?;
    let mut cache = KvCache::new(&model.cfg.llm);
    profile::time(Stage::Prefill, llm_flops(&model.cfg.llm, prompt.len()), || llm.forward(&mut cache, &emb))?;
    let short = text_ids(DECODE_CONTEXT, 4);
    let short_emb = merge_embeddings(&short, |t, o| llm.embed(t, o), &model.head, &[], h)?;
    let mut cache = KvCache::new(&model.cfg.llm);
    let mut logits = llm.forward(&mut cache, &short_emb)?;
    let mut sampler = Sampler::new(SamplingParams::default());
    let mut row = vec![0f32; h];
    for _ in 0..plan.decode_tokens {
        let id = profile::time(Stage::Sampling, 0, || sampler.sample(&mut logits, &[], 0).id);
        logits = profile::time(Stage::Decode, llm_flops(&model.cfg.llm, 1), || {
            llm.embed(&[id], &mut row);
            llm.forward(&mut cache, &row)
        })?;
    }
    let totals = profile::totals();
    profile::set_enabled(false);
    let breakdown: Vec<_> = [1, 8].iter().map(|&rows| decode_parts(model, rows, plan.decode_tokens.max(2), peak)).collect::<Result<_>>()?;
    let stages: Vec<_> = totals
        .iter()
        .map(|t| {
            let mut s = json!({ "stage": t.stage.name(), "ms": t.seconds * 1e3, "calls": t.calls });
            if t.flops > 0 && t.seconds > 0.0 {
                let rate = t.flops as f64 / t.seconds;
                s["gflop"] = json!(t.flops as f64 * 1e-9);
                s["gflop_per_s"] = json!(rate * 1e-9);
                s["percent_of_peak"] = json!(100.0 * rate / peak);
            }
            s
        })
        .collect();
    out.profile(json!({
        "fma_peak_gflop_per_s": peak * 1e-9,
        "fma_peak_isa": isa,
        "gemm_path": crate::backend::cpu::precision::gemm_path_for(crate::backend::cpu::precision::precision()),
        "image_side": side,
        "prompt_tokens": prompt.len(),
        "decode_steps": plan.decode_tokens,
        "stages": stages,
        "decode_breakdown": breakdown,
    }));
    Ok(())
}

/// Where a decode step of `rows` sequences (each after a DECODE_CONTEXT-token prompt) goes: `steps`
/// batched steps with the part timers on (profile::Part), per step: the median wall time, each part's
/// ms and GFLOP/s (% of `peak`), and the rest (sampling excluded: it is timed apart above).
fn decode_parts(model: &OvisModel, rows: usize, steps: usize, peak: f64) -> Result<Value> {
    let llm = &model.llm;
    let h = model.cfg.llm.hidden;
    eprintln!("profile: {steps} decode steps of {rows} row(s), timed by part…");
    let mut caches = Vec::with_capacity(rows);
    let mut ids = Vec::with_capacity(rows);
    for r in 0..rows {
        let prompt = text_ids(DECODE_CONTEXT, 10 + r as u64);
        let emb = merge_embeddings(&prompt, |t, o| llm.embed(t, o), &model.head, &[], h)?;
        let mut cache = KvCache::new(&model.cfg.llm);
        llm.forward(&mut cache, &emb)?;
        caches.push(cache);
        ids.push(prompt[prompt.len() - 1] as u32);
    }
    let mut emb = vec![0f32; rows * h];
    let mut walls = Vec::with_capacity(steps);
    profile::set_parts(true);
    for _ in 0..steps {
        llm.embed(&ids, &mut emb);
        let t = Instant::now();
        let mut batch: Vec<BatchRow> = caches.iter_mut().zip(emb.chunks(h)).map(|(cache, embeds)| BatchRow { cache, embeds }).collect();
        let logits = llm.forward_batch(&mut batch)?;
        walls.push(t.elapsed().as_secs_f64());
        // greedy: the next ids (no sampler; its time is not part of the step here)
        for (id, l) in ids.iter_mut().zip(&logits) {
            *id = l.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as u32;
        }
    }
    let parts = profile::part_totals();
    profile::set_parts(false);
    let total: f64 = walls.iter().sum();
    walls.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let per_step = |s: f64| s / steps as f64 * 1e3;
    let timed: f64 = parts.iter().map(|p| p.1).sum();
    let list: Vec<_> = parts
        .iter()
        .map(|&(p, secs, flops, _)| {
            let mut v = json!({ "part": p.name(), "ms_per_step": per_step(secs) });
            if flops > 0 && secs > 0.0 {
                v["gflop_per_s"] = json!(flops as f64 / secs * 1e-9);
                v["percent_of_peak"] = json!(100.0 * flops as f64 / secs / peak);
                v["gb_per_s_weights"] = json!(flops as f64 / rows as f64 / secs * 1e-9);
            }
            v
        })
        .collect();
    Ok(json!({ "rows": rows, "steps": steps, "step_ms_median": walls[walls.len() / 2] * 1e3, "step_ms_mean": per_step(total), "parts": list, "other_ms_per_step": per_step(total - timed) }))
}
