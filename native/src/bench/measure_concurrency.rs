//! `--concurrency N[,M…]`: N requests decoding together through the engine's own batch scheduler
//! (generate::batch, what serves clients), after their prefill; then the same N while one more
//! request prefills a long prompt (`--prompt-tokens`, at least 512; the target uses 2,000).
//! Per run: aggregate tokens/s, and each stream's gaps between tokens (median and p99), from the
//! moment every stream has its first token. Per N, against issue 10's targets: the aggregate over
//! one stream's tokens/s in the same run (≥ 5 at 8 streams), and the p99 gap beside the long
//! prefill over the same streams' median step without it (≤ 3).
//!
//! The same code measures both backends: the CPU model, or on a GPU the CUDA `BatchModel`
//! (backend/cuda/runner.rs: batched decode steps, prompts prefilled in chunks between them).
use super::args::Plan;
use super::measure::{median, text_ids};
use super::report::{Report, DECODE_CONTEXT};
use crate::error::{EngineError, Result};
use crate::generate::batch::{Batch, BatchModel, Output};
use crate::generate::session::Sessions;
use crate::protocol::{Done, Generate, Progress, Sampling, Token};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// When each request's tokens arrived, its prefill progress, and whether it is done.
#[derive(Default)]
struct Clock {
    tokens: RefCell<HashMap<u64, Vec<Instant>>>,
    /// (when, positions prefilled before that step) per request
    prefill: RefCell<HashMap<u64, Vec<(Instant, usize)>>>,
    done: RefCell<HashMap<u64, Instant>>,
    error: RefCell<Option<String>>,
}

impl Output for Clock {
    fn token(&self, t: &Token) -> bool {
        self.tokens.borrow_mut().entry(t.id).or_default().push(Instant::now());
        true
    }
    fn progress(&self, p: &Progress) -> bool {
        if p.phase == "prefill" {
            self.prefill.borrow_mut().entry(p.id).or_default().push((Instant::now(), p.done));
        }
        true
    }
    fn done(&self, d: &Done) {
        self.done.borrow_mut().insert(d.id, Instant::now());
    }
    fn error(&self, id: u64, e: &EngineError) {
        *self.error.borrow_mut() = Some(format!("request {id}: {e}"));
    }
}

fn request(id: u64, prompt: usize, max_new: usize) -> (Generate, Vec<i32>) {
    let ids = text_ids(prompt, 100 + id);
    // temperature 1 with a fixed seed: a realistic sampler, and no early stop (no stop ids)
    let sampling = Sampling { temperature: 1.0, top_k: 0, top_p: 1.0, repetition_penalty: 1.0, seed: id };
    (Generate { id, session: format!("bench-{id}"), keep: 0, n_ids: ids.len(), media: vec![], max_new_tokens: max_new, sampling, stop_ids: vec![], top_logprobs: 0 }, ids)
}

/// One run: `streams` requests decode `tokens` each; with `long_prompt`, one more request joins
/// once they all decode and prefills that many positions. The gaps are timed until its first token
/// or until the streams are done, whichever comes first; then the long request is cancelled (on a
/// slow device its prefill, kept to a small share of each step, outlasts the streams by far).
fn run<M: BatchModel>(model: &M, streams: usize, tokens: usize, long_prompt: Option<usize>) -> Result<Value> {
    let clock = Clock::default();
    let mut sessions: Sessions<M::Cache> = Sessions::default();
    let mut batch: Batch<M> = Batch::new(streams + 1, usize::MAX);
    for id in 1..=streams as u64 {
        let (req, ids) = request(id, DECODE_CONTEXT, tokens);
        batch.admit(model, &mut sessions, req, &ids, &[], Arc::new(AtomicBool::new(false)), &clock)?;
    }
    let started = |c: &Clock| (1..=streams as u64).all(|id| c.tokens.borrow().get(&id).is_some_and(|t| !t.is_empty()));
    while !started(&clock) {
        batch.step(model, &mut sessions, &clock);
    }
    let from = Instant::now();
    let long_id = streams as u64 + 1;
    let long_cancel = Arc::new(AtomicBool::new(false));
    if let Some(n) = long_prompt {
        let (req, ids) = request(long_id, n, 1);
        batch.admit(model, &mut sessions, req, &ids, &[], long_cancel.clone(), &clock)?;
    }
    let streams_done = |c: &Clock| (1..=streams as u64).all(|id| c.done.borrow().contains_key(&id));
    while !batch.is_empty() {
        batch.step(model, &mut sessions, &clock);
        if let Some(e) = clock.error.borrow().clone() {
            return Err(EngineError::Internal(format!("the concurrency benchmark failed: {e}")));
        }
        if streams_done(&clock) {
            long_cancel.store(true, Ordering::SeqCst);
        }
    }
    // Gaps of every stream from `from` on (its tokens after the first), while the long prompt, if
    // any, was being prefilled: until its first token, or the streams' last token if earlier.
    let last_token = (1..=streams as u64).filter_map(|id| clock.tokens.borrow()[&id].last().copied()).max().unwrap_or(from);
    let long_first = clock.tokens.borrow().get(&long_id).and_then(|t| t.first().copied());
    let until = if long_prompt.is_some() { long_first.map_or(last_token, |t| t.min(last_token)) } else { Instant::now() };
    let mut gaps = Vec::new();
    let mut counted = 0usize;
    for id in 1..=streams as u64 {
        let times = &clock.tokens.borrow()[&id];
        for w in times.windows(2) {
            if w[0] >= from && w[1] <= until {
                gaps.push((w[1] - w[0]).as_secs_f64() * 1e3);
            }
        }
        counted += times.iter().filter(|t| **t > from && **t <= until).count();
    }
    if gaps.is_empty() {
        return Err(EngineError::Internal("the concurrency benchmark measured no decode steps: raise --decode-tokens".into()));
    }
    let secs = (until - from).as_secs_f64();
    gaps.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p99 = gaps[((gaps.len() as f64 * 0.99).ceil() as usize).clamp(1, gaps.len()) - 1];
    let mut v = json!({ "tokens_per_s": counted as f64 / secs, "ms_per_token_median": median(gaps.clone()), "gap_p99_ms": p99, "gaps": gaps.len() });
    if let Some(n) = long_prompt {
        // Positions prefilled in the window: all of them if the first token came in it, else at
        // least those reported done before the window's last prefill step.
        let prefilled = if long_first.is_some_and(|t| t <= until) {
            n
        } else {
            clock.prefill.borrow().get(&long_id).map_or(0, |p| p.iter().filter(|(t, _)| *t <= until).map(|(_, d)| *d).max().unwrap_or(0))
        };
        v["prompt"] = json!(n);
        v["window_ms"] = json!(secs * 1e3);
        v["prefilled"] = json!(prefilled);
        v["prefill_positions_per_s"] = json!(prefilled as f64 / secs);
        v["prefill_done"] = json!(prefilled == n);
    }
    Ok(v)
}

/// The sweep: for each N, a run without and one with a long prompt prefilling meanwhile, and their
/// ratios to the targets. One stream's figure (the baseline) is the sweep's N = 1 when it has one,
/// else a run of its own first.
pub fn measure<M: BatchModel>(model: &M, plan: &Plan, out: &mut Report) -> Result<()> {
    let long = plan.prompt_tokens.max(512);
    let mut solo: Option<Value> = None;
    if !plan.concurrency.contains(&1) {
        eprintln!("1 stream decoding {} tokens (the baseline)…", plan.decode_tokens);
        solo = Some(run(model, 1, plan.decode_tokens, None)?);
    }
    for &n in &plan.concurrency {
        eprintln!("{n} stream(s) decoding {} tokens…", plan.decode_tokens);
        let alone = run(model, n, plan.decode_tokens, None)?;
        if n == 1 && solo.is_none() {
            solo = Some(alone.clone());
        }
        eprintln!("{n} stream(s) while a {long}-token prompt prefills…");
        // enough tokens for a p99 over the window (the long prefill may outlast them: it is then cancelled)
        let with = run(model, n, plan.decode_tokens.max(24), Some(long))?;
        let one = solo.as_ref().expect("measured first")["tokens_per_s"].as_f64().unwrap_or(f64::NAN);
        let ratios = json!({
            "aggregate_vs_one": alone["tokens_per_s"].as_f64().unwrap_or(f64::NAN) / one,
            "gap_p99_vs_step": with["gap_p99_ms"].as_f64().unwrap_or(f64::NAN) / alone["ms_per_token_median"].as_f64().unwrap_or(f64::NAN),
        });
        out.concurrency(n, alone, with, ratios);
    }
    Ok(())
}
