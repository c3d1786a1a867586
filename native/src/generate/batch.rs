//! Continuous batching on the CPU backend: every running request advances in one forward step
//! (`Qwen3::forward_batch`), so the weights are read once per step for all of them. New requests
//! join between steps and finished or cancelled ones leave at once; prompts are prefilled in chunks
//! inside the same steps (chunked prefill: a per-step budget of prompt positions sized from what the
//! steps cost on this device, `step_budget`), so the streams already answering keep flowing while
//! another request reads its prompt. A vision
//! encode cannot be split: it runs between steps when its request joins (its cost is that request's
//! `vision_ms`, and the others wait for it).
//!
//! A request's tokens do not depend on what else runs: its rows are its own in every product, its
//! attention reads only its own cache, and its sampler, stops, limits and cancellation are its own.
use crate::error::{EngineError, Result};
use crate::generate::kv_cache::KvCache;
use crate::generate::run::{check, ms, Phase};
use crate::generate::sampler::{Sampled, Sampler, SamplingParams};
use crate::generate::session::Sessions;
use crate::generate::step_budget::StepBudget;
use crate::model::config::LlmConfig;
use crate::backend::cpu::merge::merge_embeddings;
use crate::backend::cpu::model::OvisModel;
use crate::backend::cpu::qwen3::BatchRow;
use crate::protocol::{Done, Generate, Progress, Timings, Token};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Running requests at most, by default: decode steps stay memory-bound (each weight read once for
/// all rows) well past this on the CPU, and the GEMV kernel takes up to this many rows.
pub const DEFAULT_MAX_BATCH: usize = 8;

/// The KV memory budget when none is given: half the memory available when the engine starts
/// (/proc/meminfo MemAvailable), at least 1 GiB; 8 GiB where that cannot be read.
pub fn default_kv_budget() -> usize {
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines().find(|l| l.starts_with("MemAvailable:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<usize>().ok())
    });
    available.map_or(8 << 30, |kb| (kb * 1024 / 2).max(1 << 30))
}

/// Where a request's output goes (the engine's frame writer); `false`: the client stopped reading.
pub trait Output {
    fn token(&self, t: &Token) -> bool;
    fn progress(&self, p: &Progress) -> bool;
    fn done(&self, d: &Done);
    fn error(&self, id: u64, e: &EngineError);
}

/// One running request.
struct Stream {
    req: Generate,
    /// The session's cache, checked out of `Sessions` while the request runs (so a second request on
    /// the same session waits until this one ends).
    cache: KvCache,
    cancel: Arc<AtomicBool>,
    sampler: Sampler,
    /// Ids sampled so far (the repetition penalty's history).
    generated: Vec<u32>,
    /// Positions kept from the session's cache (`keep`, or 0 when an evicted cache is rebuilt), and
    /// positions prefilled again to rebuild it.
    reused: usize,
    rebuilt: usize,
    /// Input embeddings [n, H] not yet prefilled, and how many prompt positions there are in all.
    pending: Vec<f32>,
    prompt: usize,
    /// The token sampled last and not yet fed back: the stream is decoding.
    next: Option<Sampled>,
    count: usize,
    timings: Timings,
    start: Instant,
    prefill_start: Option<Instant>,
    decode_start: Option<Instant>,
}

pub struct CpuBatch {
    streams: Vec<Stream>,
    max_batch: usize,
    /// Bytes the KV caches (running and idle, input embeddings included) may take.
    kv_budget: usize,
    /// Prompt positions per step, from the measured cost of earlier steps.
    budget: StepBudget,
}

impl CpuBatch {
    pub fn new(max_batch: usize, kv_budget: usize) -> CpuBatch {
        CpuBatch { streams: Vec::new(), max_batch: max_batch.max(1), kv_budget, budget: StepBudget::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Drops every running request (after a panic in a step): their ids, to fail them. Their
    /// sessions' caches are dropped too (in an unknown state), so those sessions start afresh.
    pub fn abandon(&mut self) -> Vec<u64> {
        self.streams.drain(..).map(|s| s.req.id).collect()
    }

    /// Whether `req` may join now: a free place, its session not in use, and room for its KV cache
    /// (every position it may reach) within the budget. Idle sessions' caches are evicted to make
    /// room, least recently used first (their conversations are rebuilt from their inputs when they
    /// continue). A request that does not fit even then waits for running ones to end; alone, it
    /// runs anyway (the budget bounds what is kept, not a single conversation).
    pub fn can_admit(&mut self, sessions: &mut Sessions<KvCache>, req: &Generate, cfg: &LlmConfig) -> bool {
        if self.streams.len() >= self.max_batch || self.streams.iter().any(|s| s.req.session == req.session) {
            return false;
        }
        let per_position = (2 * cfg.layers * cfg.kv_heads * cfg.head_dim + cfg.hidden) * std::mem::size_of::<f32>();
        let positions = req.keep.saturating_add(req.n_ids).saturating_add(req.max_new_tokens).min(cfg.max_positions);
        let own = sessions.get(&req.session).map_or(0, KvCache::capacity_bytes);
        let need = (positions * per_position).saturating_sub(own);
        let running: usize = self.streams.iter().map(|s| s.cache.capacity_bytes()).sum();
        let mut used = running + sessions.caches().map(KvCache::capacity_bytes).sum::<usize>();
        if used + need <= self.kv_budget {
            return true;
        }
        for (name, cache) in sessions.least_recent_first() {
            if name == req.session || cache.kv_capacity_bytes() == 0 {
                continue;
            }
            used -= cache.evict();
            eprintln!("ovis-engine: KV memory budget ({} MiB): evicted the cache of idle session {name:?} (rebuilt if it continues)", self.kv_budget >> 20);
            if used + need <= self.kv_budget {
                return true;
            }
        }
        self.streams.is_empty()
    }

    /// Checks the request, checks its session's cache out, encodes its media (between steps) and
    /// queues its prompt for prefill. A request cancelled during its vision encode ends here.
    pub fn admit(&mut self, model: &OvisModel, sessions: &mut Sessions<KvCache>, req: Generate, ids: &[i32], pixels: &[f32], cancel: Arc<AtomicBool>, out: &dyn Output) -> Result<()> {
        let start = Instant::now();
        let mut cache = sessions.take_or_create(&req.session, || Ok(KvCache::new(&model.cfg.llm)))?;
        let prepared = prepare(model, &mut cache, &req, ids, pixels, &cancel, out);
        let (pending, reused, timings) = match prepared {
            Ok(Some(p)) => p,
            Ok(None) => {
                sessions.put(&req.session, cache);
                let timings = Timings { total_ms: ms(start), ..Timings::default() };
                out.done(&done(&req, ids.len(), req.keep, 0, "cancelled", timings));
                return Ok(());
            }
            Err(e) => {
                sessions.put(&req.session, cache);
                return Err(e);
            }
        };
        let s = &req.sampling;
        let params = SamplingParams { temperature: s.temperature, top_k: s.top_k, top_p: s.top_p, repetition_penalty: s.repetition_penalty, seed: s.seed };
        self.streams.push(Stream {
            sampler: Sampler::new(params), cache, cancel, generated: Vec::new(), reused, rebuilt: req.keep - reused, pending, prompt: ids.len(), next: None, count: 0, timings, start,
            prefill_start: None, decode_start: None, req,
        });
        Ok(())
    }

    /// One forward step for every running request: a token for each decoding stream, and the next
    /// chunk of the first stream still prefilling (within the step's token budget). Finished streams
    /// return their caches to `sessions` and get their `done`.
    pub fn step(&mut self, model: &OvisModel, sessions: &mut Sessions<KvCache>, out: &dyn Output) {
        let h = model.cfg.llm.hidden;
        // A cancel lands between steps: before any more work for that stream.
        let mut i = 0;
        while i < self.streams.len() {
            if self.streams[i].cancel.load(Ordering::SeqCst) {
                let s = self.streams.swap_remove(i);
                finish(s, "cancelled", sessions, out);
            } else {
                i += 1;
            }
        }
        if self.streams.is_empty() {
            return;
        }
        let decoding = self.streams.iter().filter(|s| s.next.is_some()).count();
        // Every decoding stream gets its row; waiting prompts share the step's prefill budget in
        // arrival order (at least one position a step, so they always progress).
        let mut budget = self.budget.positions(decoding);
        let mut prefilled = 0;
        let mut inputs: Vec<Vec<f32>> = Vec::new();
        let mut members: Vec<usize> = Vec::new();
        for (k, s) in self.streams.iter_mut().enumerate() {
            if let Some(next) = &s.next {
                let mut row = vec![0f32; h];
                model.llm.embed(&[next.id], &mut row);
                s.generated.push(next.id);
                inputs.push(row);
                members.push(k);
            } else if budget > 0 {
                let total = s.prompt + s.rebuilt;
                let done_rows = total - s.pending.len() / h;
                let take = (s.pending.len() / h).min(budget);
                budget -= take;
                prefilled += take;
                let _ = out.progress(&Progress { id: s.req.id, phase: Phase::Prefill.name().into(), done: done_rows, total, elapsed_ms: None });
                s.prefill_start.get_or_insert_with(Instant::now);
                inputs.push(s.pending.drain(..take * h).collect());
                members.push(k);
            }
        }
        // The member streams' caches, borrowed all at once (members ascend, as the streams do).
        let mut rows: Vec<BatchRow> = self.streams.iter_mut().enumerate().filter(|(k, _)| members.contains(k)).zip(&inputs).map(|((_, s), e)| BatchRow { cache: &mut s.cache, embeds: e }).collect();
        let t = Instant::now();
        let result = model.llm.forward_batch(&mut rows);
        if result.is_ok() {
            self.budget.record(decoding, prefilled, t.elapsed().as_secs_f64());
        }
        let logits = match result {
            Ok(l) => l,
            Err(e) => {
                // The step failed for all its rows: each request fails, its session keeps what it had.
                for k in members.into_iter().rev() {
                    let s = self.streams.swap_remove(k);
                    out.error(s.req.id, &e);
                    sessions.put(&s.req.session, s.cache);
                }
                return;
            }
        };
        let mut ended: Vec<(usize, &'static str)> = Vec::new();
        for (&k, mut z) in members.iter().zip(logits) {
            let s = &mut self.streams[k];
            if s.next.is_none() && !s.pending.is_empty() {
                continue; // more of the prompt to come
            }
            if s.next.is_none() {
                s.timings.prefill_ms = s.prefill_start.map_or(0.0, ms);
            }
            let picked = s.sampler.sample(&mut z, &s.generated, s.req.top_logprobs);
            if let Some(reason) = advance(s, picked, model.cfg.llm.max_positions, out) {
                ended.push((k, reason));
            }
        }
        // Highest index first, so that swap_remove leaves the lower indices in place.
        ended.sort_by(|a, b| b.0.cmp(&a.0));
        for (k, reason) in ended {
            let s = self.streams.swap_remove(k);
            finish(s, reason, sessions, out);
        }
    }
}

/// Truncates the cache to `keep` (or, when it was evicted, queues its first `keep` inputs to be
/// prefilled again), encodes the media, merges them with the ids: the input embeddings to prefill,
/// the positions reused from the cache, and the timings so far. None when cancelled during the
/// vision encode.
fn prepare(model: &OvisModel, cache: &mut KvCache, req: &Generate, ids: &[i32], pixels: &[f32], cancel: &AtomicBool, out: &dyn Output) -> Result<Option<(Vec<f32>, usize, Timings)>> {
    check(req, ids, pixels, &model.cfg, cache.history())?;
    let mut rebuild = Vec::new();
    let reused = if req.keep > cache.len() {
        rebuild = cache.inputs(req.keep).to_vec();
        cache.clear();
        0
    } else {
        cache.truncate(req.keep);
        req.keep
    };
    let llm = &model.cfg.llm;
    let positions = (req.keep + ids.len() + req.max_new_tokens).min(llm.max_positions);
    cache.reserve_exact(positions.saturating_sub(cache.len()));
    let mut timings = Timings::default();
    let t = Instant::now();
    let visual = if pixels.is_empty() {
        Vec::new()
    } else {
        let grids: Vec<[usize; 3]> = req.media.iter().map(|m| m.grid).collect();
        let report = |done: usize, total: usize| out.progress(&Progress { id: req.id, phase: Phase::Vision.name().into(), done, total, elapsed_ms: Some(ms(t)) });
        if !report(0, model.cfg.vit.layers) {
            cancel.store(true, Ordering::SeqCst);
        }
        let on_layer = &mut |done, total| {
            if !report(done, total) {
                cancel.store(true, Ordering::SeqCst);
            }
            !cancel.load(Ordering::SeqCst)
        };
        let Some(feats) = model.vision.encode_with_progress(pixels, &grids, on_layer)? else {
            return Ok(None);
        };
        model.head.forward(&feats)?.1
    };
    timings.vision_ms = ms(t);
    let embeds = merge_embeddings(ids, |tok, o| model.llm.embed(tok, o), &model.head, &visual, llm.hidden)?;
    rebuild.extend_from_slice(&embeds);
    Ok(Some((rebuild, reused, timings)))
}

/// What `run::drive` does with a sampled token, one token at a time: the checks before sending it,
/// sending it, and the stops after. Some(reason) when the request ends; otherwise it goes on decoding.
fn advance(s: &mut Stream, picked: Sampled, max_pos: usize, out: &dyn Output) -> Option<&'static str> {
    if s.count >= s.req.max_new_tokens {
        return Some("length");
    }
    if s.cancel.load(Ordering::SeqCst) {
        return Some("cancelled");
    }
    s.count += 1;
    if !out.token(&Token { id: s.req.id, token: picked.id, logprob: picked.logprob, top: picked.top.clone() }) {
        // the client stopped reading: end the request instead of generating for nobody
        s.cancel.store(true, Ordering::SeqCst);
    }
    if s.decode_start.is_none() {
        s.timings.first_token_ms = ms(s.start);
        s.decode_start = Some(Instant::now());
    }
    if s.req.stop_ids.contains(&picked.id) {
        return Some("stop");
    }
    if s.count >= s.req.max_new_tokens || s.cache.len() + 1 > max_pos {
        return Some("length");
    }
    s.next = Some(picked);
    None
}

fn finish(mut s: Stream, reason: &str, sessions: &mut Sessions<KvCache>, out: &dyn Output) {
    s.timings.decode_ms = s.decode_start.map_or(0.0, ms);
    s.timings.total_ms = ms(s.start);
    if s.next.is_none() && s.prefill_start.is_some() && s.timings.prefill_ms == 0.0 {
        s.timings.prefill_ms = s.prefill_start.map_or(0.0, ms);
    }
    out.done(&done(&s.req, s.prompt, s.reused, s.count, reason, s.timings.clone()));
    sessions.put(&s.req.session, s.cache);
}

fn done(req: &Generate, prompt: usize, reused: usize, completion: usize, reason: &str, timings: Timings) -> Done {
    Done { id: req.id, finish_reason: reason.into(), prompt_tokens: prompt, cached_tokens: reused, completion_tokens: completion, timings }
}
