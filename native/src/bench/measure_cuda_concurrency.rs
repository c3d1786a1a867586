//! `--concurrency N[,M…]` on a GPU: N requests prefilled, then decoding together through the batched
//! decode step (backend/cuda/batch.rs: one graph replay per step for all N rows, each weight read
//! once). Same JSON keys as the CPU sweep (measure_concurrency.rs) for the decode run: aggregate
//! tokens/s and the per-stream gap between tokens (median, p99), each step ending with the sampled
//! ids on the host, as generation needs them. The "with a long prompt prefilling" run is null here:
//! on CUDA a prefill still runs whole between steps (chunked prefill is the CPU scheduler's so far).
use super::args::Plan;
use super::measure::{median, text_ids};
use super::report::{Report, DECODE_CONTEXT};
use crate::backend::cuda::batch::{BatchDecoder, BatchRow};
use crate::backend::cuda::model::CudaOvis;
use crate::backend::cuda::ops::MAX_ROWS;
use crate::backend::cuda::sampling::SampleParams;
use crate::error::{EngineError, Result};
use serde_json::{json, Value};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Decode steps not timed before each run (the first replays capture the bucket's graph).
const WARMUP_STEPS: usize = 2;

fn run(m: &CudaOvis, dec: &mut BatchDecoder, streams: usize, tokens: usize) -> Result<Value> {
    let (g, v) = (&m.gpu, m.cfg.llm.vocab);
    // temperature 1, per-stream u: a realistic sampler (no early stop: nothing is checked for stops)
    let params = |i: usize, step: usize| SampleParams { temperature: 1.0, top_k: 0, top_p: 1.0, rep_penalty: 1.0, u: ((i * 7919 + step * 104_729) % 1000) as f64 / 1000.0, top_n: 0, vocab: v as i32 };
    let never = AtomicBool::new(false);
    let mut sessions = Vec::with_capacity(streams);
    let mut next = Vec::with_capacity(streams);
    for i in 0..streams {
        let ids = text_ids(DECODE_CONTEXT, 100 + i as u64);
        let mut s = m.new_session()?;
        s.reserve(g, &m.llm, ids.len() + tokens + WARMUP_STEPS + 1)?;
        let rows = m.row_sources(&ids, &[])?;
        let first = m.llm.prefill(g, &m.blas, &mut s, &rows, m.vision.vte(g), 0, params(i, 0), &never)?.ok_or_else(|| EngineError::Internal("prefill was cancelled".into()))?;
        sessions.push(s);
        next.push(first.id);
    }
    let mut steps = Vec::with_capacity(tokens);
    for step in 0..WARMUP_STEPS + tokens {
        let t = Instant::now();
        let mut rows: Vec<BatchRow> = sessions.iter_mut().zip(&next).enumerate().map(|(i, (s, &id))| BatchRow { session: s, next_id: id, params: params(i, step + 1) }).collect();
        let results = dec.step(g, &m.llm, &mut rows)?;
        next = results.iter().map(|r| r.id).collect();
        if step >= WARMUP_STEPS {
            steps.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let total_s: f64 = steps.iter().sum::<f64>() / 1e3;
    let mut gaps = steps.clone();
    gaps.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p99 = gaps[((gaps.len() as f64 * 0.99).ceil() as usize).clamp(1, gaps.len()) - 1];
    Ok(json!({ "tokens_per_s": (streams * tokens) as f64 / total_s, "ms_per_token_median": median(steps), "gap_p99_ms": p99, "gaps": gaps.len() * streams }))
}

/// The sweep on the GPU (stream counts 1..=16: the batched step's rows).
pub fn measure(m: &CudaOvis, plan: &Plan, out: &mut Report) -> Result<()> {
    if let Some(&n) = plan.concurrency.iter().find(|&&n| n == 0 || n > MAX_ROWS) {
        return Err(EngineError::BadRequest(format!("--concurrency {n}: the CUDA batched decode runs 1 to {MAX_ROWS} streams")));
    }
    let mut dec = BatchDecoder::new(&m.gpu, &m.llm)?;
    // One stream's tokens/s is the baseline of the aggregate ratio (issue 10: 8 streams ≥ 5× one).
    let mut one: Option<f64> = None;
    if !plan.concurrency.contains(&1) {
        eprintln!("1 stream decoding {} tokens on the GPU (the baseline)…", plan.decode_tokens);
        one = run(m, &mut dec, 1, plan.decode_tokens.max(1))?["tokens_per_s"].as_f64();
    }
    for &n in &plan.concurrency {
        eprintln!("{n} stream(s) decoding {} tokens together on the GPU…", plan.decode_tokens);
        let alone = run(m, &mut dec, n, plan.decode_tokens.max(1))?;
        if n == 1 && one.is_none() {
            one = alone["tokens_per_s"].as_f64();
        }
        let aggregate = alone["tokens_per_s"].as_f64().unwrap_or(f64::NAN) / one.unwrap_or(f64::NAN);
        // No long-prompt run on CUDA yet (prefill is not chunked there): its ratio is null.
        let ratios = serde_json::json!({ "aggregate_vs_one": aggregate, "gap_p99_vs_step": Value::Null });
        out.concurrency(n, alone, Value::Null, ratios);
    }
    Ok(())
}
