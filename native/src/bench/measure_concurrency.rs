//! `--concurrency N[,M…]`: N requests decoding together through the engine's own batch scheduler
//! (generate::batch, what serves clients), after their prefill; then the same N while one more
//! request prefills a long prompt. Per run: aggregate tokens/s, and each stream's gaps between
//! tokens (median and p99), from the moment every stream has its first token.
use super::args::Plan;
use super::measure::{median, text_ids};
use super::report::{Report, DECODE_CONTEXT};
use crate::error::{EngineError, Result};
use crate::generate::batch::{CpuBatch, Output};
use crate::generate::kv_cache::KvCache;
use crate::generate::session::Sessions;
use crate::backend::cpu::model::OvisModel;
use crate::protocol::{Done, Generate, Progress, Sampling, Token};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// When each request's tokens arrived, and whether it is done.
#[derive(Default)]
struct Clock {
    tokens: RefCell<HashMap<u64, Vec<Instant>>>,
    done: RefCell<HashMap<u64, Instant>>,
    error: RefCell<Option<String>>,
}

impl Output for Clock {
    fn token(&self, t: &Token) -> bool {
        self.tokens.borrow_mut().entry(t.id).or_default().push(Instant::now());
        true
    }
    fn progress(&self, _: &Progress) -> bool {
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
/// once they all decode and prefills that many positions (then stops after its first token).
fn run(model: &OvisModel, streams: usize, tokens: usize, long_prompt: Option<usize>) -> Result<Value> {
    let clock = Clock::default();
    let mut sessions: Sessions<KvCache> = Sessions::default();
    let mut batch = CpuBatch::new(streams + 1, usize::MAX);
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
    if let Some(n) = long_prompt {
        let (req, ids) = request(long_id, n, 1);
        batch.admit(model, &mut sessions, req, &ids, &[], Arc::new(AtomicBool::new(false)), &clock)?;
    }
    while !batch.is_empty() {
        batch.step(model, &mut sessions, &clock);
        if let Some(e) = clock.error.borrow().clone() {
            return Err(EngineError::Internal(format!("the concurrency benchmark failed: {e}")));
        }
    }
    // Gaps of every stream from `from` on (its tokens after the first), while the long prompt, if
    // any, was being prefilled: until its first token.
    let until = if long_prompt.is_some() { clock.tokens.borrow()[&long_id][0] } else { Instant::now() };
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
        v["prompt"] = json!(n);
        v["prefill_ms"] = json!((until - from).as_secs_f64() * 1e3);
    }
    Ok(v)
}

/// The sweep: for each N, a run without and one with a long prompt prefilling meanwhile.
pub fn measure(model: &OvisModel, plan: &Plan, out: &mut Report) -> Result<()> {
    let long = plan.prompt_tokens.max(512);
    for &n in &plan.concurrency {
        eprintln!("{n} stream(s) decoding {} tokens…", plan.decode_tokens);
        let alone = run(model, n, plan.decode_tokens, None)?;
        eprintln!("{n} stream(s) while a {long}-token prompt prefills…");
        // enough tokens for the streams to outlast the long prefill
        let with = run(model, n, plan.decode_tokens.max(long / 64 + 8), Some(long))?;
        out.concurrency(n, alone, with);
    }
    Ok(())
}
