//! Continuous batching, the same scheduler on every backend: every running request advances in one
//! forward step (`BatchModel::step`), so the weights are read once per step for all of them. New
//! requests join between steps and finished or cancelled ones leave at once; prompts are prefilled in
//! chunks inside the same steps (chunked prefill: a per-step budget of prompt positions sized from
//! what the steps cost on this device, `step_budget`), so the streams already answering keep flowing
//! while another request reads its prompt. A vision encode cannot be split: it runs between steps
//! when its request joins (its cost is that request's `vision_ms`, and the others wait for it).
//!
//! What a backend supplies is `BatchModel`: its sessions' cache type, how a request's prompt is
//! prepared (media encoded, cache truncated or restored) and one forward step over the running rows.
//! The CPU's is in `generate::cpu_runner`, CUDA's in `backend::cuda::runner` (NOT RUN ON A GPU YET:
//! verified on the fake GPU only).
//!
//! A request's tokens do not depend on what else runs: its rows are its own in every product, its
//! attention reads only its own cache, and its sampler, stops, limits and cancellation are its own.
use crate::error::{EngineError, Result};
use crate::generate::run::ms;
use crate::generate::sampler::Sampled;
use crate::generate::session::Sessions;
use crate::generate::step_budget::StepBudget;
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


/// What a step asks of one row: feed it the token it sampled last, or prefill the next `take`
/// positions of its prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Decode(u32),
    Prefill(usize),
}

/// One running request's part of a step, borrowed from its stream.
pub struct Row<'a, M: BatchModel + ?Sized> {
    pub cache: &'a mut M::Cache,
    pub prompt: &'a mut M::Prompt,
    pub sampling: &'a mut M::Sampling,
    /// Ids sampled so far, the one being fed included (the repetition penalty's history).
    pub generated: &'a [u32],
    pub top_n: usize,
    pub work: Work,
}

/// A request made ready to join: its prompt to prefill, the positions reused from the session's
/// cache, and its timings so far (vision_ms).
pub struct Prepared<P> {
    pub prompt: P,
    pub reused: usize,
    pub timings: Timings,
}

/// A backend's side of the batch.
pub trait BatchModel {
    /// A session's cache (kept between requests; checked out while a request runs).
    type Cache;
    /// A prepared prompt waiting to be prefilled.
    type Prompt;
    /// A request's sampler state.
    type Sampling;
    fn new_cache(&self) -> Result<Self::Cache>;
    /// The model's context window (positions).
    fn max_positions(&self) -> usize;
    /// Bytes one position of a conversation takes in this backend's cache (for the KV budget).
    fn bytes_per_position(&self) -> usize;
    /// Bytes a session takes besides its positions (the GPU's working buffers; none on the CPU).
    fn bytes_per_session(&self) -> usize {
        0
    }
    /// Bytes `cache` holds now (counted against the KV budget).
    fn cache_bytes(&self, cache: &Self::Cache) -> usize;
    /// Frees what `cache` holds in the budget's memory, keeping what rebuilds the conversation
    /// transparently later; the bytes freed (0: nothing to free).
    fn evict(&self, cache: &mut Self::Cache) -> usize;
    /// Positions `cache` holds (the next position to be written).
    fn cache_len(&self, cache: &Self::Cache) -> usize;
    /// Bytes `cache` keeps outside the budget's memory so that an evicted conversation comes back
    /// without being recomputed (the GPU's host copy of evicted K/V; nothing on the CPU).
    fn kept_bytes(&self, _cache: &Self::Cache) -> usize {
        0
    }
    /// What every idle session's `kept_bytes` may add up to, besides the KV budget (the smaller of
    /// the two holds).
    fn kept_limit(&self) -> usize {
        usize::MAX
    }
    /// Drops what `cache` keeps (`kept_bytes`): its conversation is recomputed when it continues.
    /// The bytes freed.
    fn drop_kept(&self, _cache: &mut Self::Cache) -> usize {
        0
    }
    /// Readies a running request's cache for a step doing `work` (the GPU grows a full KV cache
    /// here). An error fails that request alone, before the step; the others run it.
    fn before_step(&self, _cache: &mut Self::Cache, _work: Work) -> Result<()> {
        Ok(())
    }
    fn sampling(&self, req: &Generate) -> Self::Sampling;
    /// Checks `req`, truncates (or restores) the cache to `req.keep`, encodes the media (reporting
    /// vision progress to `out`) and merges them with `ids`. None when cancelled during the encode.
    fn prepare(&self, cache: &mut Self::Cache, req: &Generate, ids: &[i32], pixels: &[f32], cancel: &AtomicBool, out: &dyn Output) -> Result<Option<Prepared<Self::Prompt>>>;
    /// Positions of `prompt` not yet prefilled.
    fn prompt_len(&self, prompt: &Self::Prompt) -> usize;
    /// One forward step over `rows`: per row, in order, its sampled token when it has one (every
    /// decode row; a prefill row whose prompt this step finished). An error fails every row.
    fn step(&self, rows: &mut [Row<'_, Self>]) -> Result<Vec<Option<Sampled>>>;
}

/// One running request.
struct Stream<M: BatchModel> {
    req: Generate,
    /// The session's cache, checked out of `Sessions` while the request runs (so a second request on
    /// the same session waits until this one ends).
    cache: M::Cache,
    cancel: Arc<AtomicBool>,
    sampling: M::Sampling,
    /// Ids sampled so far (the repetition penalty's history).
    generated: Vec<u32>,
    /// Positions kept from the session's cache (`keep`, or 0 when an evicted cache is rebuilt), and
    /// positions prefilled again to rebuild it.
    reused: usize,
    rebuilt: usize,
    /// The prompt positions not yet prefilled, and how many prompt positions there are in all.
    pending: M::Prompt,
    prompt: usize,
    /// The token sampled last and not yet fed back: the stream is decoding.
    next: Option<Sampled>,
    count: usize,
    timings: Timings,
    start: Instant,
    prefill_start: Option<Instant>,
    decode_start: Option<Instant>,
}

/// The running requests of one loaded model, and the limits they run under.
pub struct Batch<M: BatchModel> {
    streams: Vec<Stream<M>>,
    max_batch: usize,
    /// Bytes the KV caches (running and idle, with what they keep to be rebuilt) may take.
    kv_budget: usize,
    /// Prompt positions per step, from the measured cost of earlier steps.
    budget: StepBudget,
}

impl<M: BatchModel> Batch<M> {
    pub fn new(max_batch: usize, kv_budget: usize) -> Self {
        Batch { streams: Vec::new(), max_batch: max_batch.max(1), kv_budget, budget: StepBudget::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Running requests.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Drops every running request (after a panic in a step): their ids, to fail them. Their
    /// sessions' caches are dropped too (in an unknown state), so those sessions start afresh.
    pub fn abandon(&mut self) -> Vec<u64> {
        self.streams.drain(..).map(|s| s.req.id).collect()
    }

    /// Whether `req` may join now: a free place, its session not in use, and room for its KV cache
    /// (every position it may reach) within the budget. Idle sessions' caches are evicted to make
    /// room, least recently used first (their conversations are rebuilt when they continue). A
    /// request that does not fit even then waits for running ones to end; alone, it runs anyway (the
    /// budget bounds what is kept, not a single conversation).
    pub fn can_admit(&mut self, model: &M, sessions: &mut Sessions<M::Cache>, req: &Generate) -> bool {
        if self.streams.len() >= self.max_batch || self.streams.iter().any(|s| s.req.session == req.session) {
            return false;
        }
        let positions = req.keep.saturating_add(req.n_ids).saturating_add(req.max_new_tokens).min(model.max_positions());
        let own = sessions.get(&req.session).map_or(0, |c| model.cache_bytes(c));
        let need = positions.saturating_mul(model.bytes_per_position()).saturating_add(model.bytes_per_session()).saturating_sub(own);
        let running: usize = self.streams.iter().map(|s| model.cache_bytes(&s.cache)).sum();
        let mut used = running + sessions.caches().map(|c| model.cache_bytes(c)).sum::<usize>();
        if used.saturating_add(need) <= self.kv_budget {
            return true;
        }
        let (mut evicted, mut fits) = (false, false);
        for (name, cache) in sessions.least_recent_first() {
            if name == req.session {
                continue;
            }
            let freed = model.evict(cache);
            if freed == 0 {
                continue;
            }
            evicted = true;
            used = used.saturating_sub(freed);
            eprintln!("ovis-engine: KV memory budget ({} MiB): evicted the cache of idle session {name:?} (brought back when its conversation continues)", self.kv_budget >> 20);
            if used.saturating_add(need) <= self.kv_budget {
                fits = true;
                break;
            }
        }
        if evicted {
            self.bound_kept(model, sessions, &req.session);
        }
        fits || self.streams.is_empty()
    }

    /// Holds what evicted sessions keep to come back quickly (`BatchModel::kept_bytes`, the GPU's
    /// host copies) within the KV budget and the model's `kept_limit`: beyond it the least recently
    /// used one's is dropped, and that conversation is recomputed when it continues.
    fn bound_kept(&self, model: &M, sessions: &mut Sessions<M::Cache>, joining: &str) {
        let limit = self.kv_budget.min(model.kept_limit());
        let mut kept: usize = sessions.caches().map(|c| model.kept_bytes(c)).sum();
        for (name, cache) in sessions.least_recent_first() {
            if kept <= limit {
                return;
            }
            if name == joining {
                continue;
            }
            let freed = model.drop_kept(cache);
            if freed > 0 {
                kept = kept.saturating_sub(freed);
                eprintln!("ovis-engine: KV memory budget ({} MiB kept outside it at most): dropped the saved cache of idle session {name:?} (recomputed when its conversation continues)", limit >> 20);
            }
        }
    }

    /// Checks the request, checks its session's cache out, encodes its media (between steps) and
    /// queues its prompt for prefill. A request cancelled during its vision encode ends here.
    pub fn admit(&mut self, model: &M, sessions: &mut Sessions<M::Cache>, req: Generate, ids: &[i32], pixels: &[f32], cancel: Arc<AtomicBool>, out: &dyn Output) -> Result<()> {
        let start = Instant::now();
        let mut cache = sessions.take_or_create(&req.session, || model.new_cache())?;
        let prepared = model.prepare(&mut cache, &req, ids, pixels, &cancel, out);
        let Prepared { prompt: pending, reused, timings } = match prepared {
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
        self.streams.push(Stream {
            sampling: model.sampling(&req), cache, cancel, generated: Vec::new(), reused, rebuilt: req.keep - reused, pending, prompt: ids.len(), next: None, count: 0, timings, start,
            prefill_start: None, decode_start: None, req,
        });
        Ok(())
    }

    /// One forward step for every running request: a token for each decoding stream, and the next
    /// chunk of the streams still prefilling (within the step's token budget, in arrival order).
    /// Finished streams return their caches to `sessions` and get their `done`.
    pub fn step(&mut self, model: &M, sessions: &mut Sessions<M::Cache>, out: &dyn Output) {
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
        let (mut prefilled, mut decoded) = (0, 0);
        let mut members: Vec<usize> = Vec::new();
        // Streams whose cache could not be readied for this step (`before_step`): they fail alone.
        let mut failed: Vec<(usize, EngineError)> = Vec::new();
        let mut rows: Vec<Row<'_, M>> = Vec::new();
        for (k, s) in self.streams.iter_mut().enumerate() {
            let work = if let Some(next) = &s.next {
                s.generated.push(next.id);
                Work::Decode(next.id)
            } else if budget > 0 {
                let total = s.prompt + s.rebuilt;
                let left = model.prompt_len(&s.pending);
                let take = left.min(budget);
                budget -= take;
                prefilled += take;
                let _ = out.progress(&Progress { id: s.req.id, phase: crate::generate::run::Phase::Prefill.name().into(), done: total - left, total, elapsed_ms: None });
                s.prefill_start.get_or_insert_with(Instant::now);
                Work::Prefill(take)
            } else {
                continue;
            };
            if let Err(e) = model.before_step(&mut s.cache, work) {
                if let Work::Prefill(take) = work {
                    budget += take;
                    prefilled -= take;
                }
                failed.push((k, e));
                continue;
            }
            decoded += matches!(work, Work::Decode(_)) as usize;
            members.push(k);
            rows.push(Row { cache: &mut s.cache, prompt: &mut s.pending, sampling: &mut s.sampling, generated: &s.generated, top_n: s.req.top_logprobs, work });
        }
        let t = Instant::now();
        let result = if rows.is_empty() { Ok(Vec::new()) } else { model.step(&mut rows) };
        drop(rows);
        if result.is_ok() && !members.is_empty() {
            self.budget.record(decoded, prefilled, t.elapsed().as_secs_f64());
        }
        let mut leaving: Vec<(usize, Leave)> = failed.into_iter().map(|(k, e)| (k, Leave::Failed(e))).collect();
        let mut step_error = None;
        match result {
            Ok(picks) => {
                let max_pos = model.max_positions();
                for (&k, picked) in members.iter().zip(picks) {
                    let s = &mut self.streams[k];
                    let Some(picked) = picked else {
                        continue; // more of the prompt to come
                    };
                    if s.next.is_none() {
                        s.timings.prefill_ms = s.prefill_start.map_or(0.0, ms);
                    }
                    let len = model.cache_len(&s.cache);
                    if let Some(reason) = advance(s, picked, len, max_pos, out) {
                        leaving.push((k, Leave::Ended(reason)));
                    }
                }
            }
            Err(e) => {
                // The step failed for all its rows: each request fails, its session keeps what it had.
                leaving.extend(members.into_iter().map(|k| (k, Leave::StepFailed)));
                step_error = Some(e);
            }
        }
        // Highest index first, so that swap_remove leaves the lower indices in place.
        leaving.sort_by(|a, b| b.0.cmp(&a.0));
        for (k, why) in leaving {
            let s = self.streams.swap_remove(k);
            match why {
                Leave::Ended(reason) => finish(s, reason, sessions, out),
                Leave::Failed(e) => fail(s, &e, sessions, out),
                Leave::StepFailed => fail(s, step_error.as_ref().expect("set with StepFailed"), sessions, out),
            }
        }
    }
}

/// Why a stream leaves the batch after a step.
enum Leave {
    Ended(&'static str),
    /// Its cache could not be readied for the step (`BatchModel::before_step`).
    Failed(EngineError),
    /// The step failed (for every row in it).
    StepFailed,
}

/// A request that failed: its error, and its session keeps what it had.
fn fail<M: BatchModel>(s: Stream<M>, e: &EngineError, sessions: &mut Sessions<M::Cache>, out: &dyn Output) {
    out.error(s.req.id, e);
    sessions.put(&s.req.session, s.cache);
}

/// What `run::drive` does with a sampled token, one token at a time: the checks before sending it,
/// sending it, and the stops after. Some(reason) when the request ends; otherwise it goes on decoding.
fn advance<M: BatchModel>(s: &mut Stream<M>, picked: Sampled, cache_len: usize, max_pos: usize, out: &dyn Output) -> Option<&'static str> {
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
    if s.count >= s.req.max_new_tokens || cache_len + 1 > max_pos {
        return Some("length");
    }
    s.next = Some(picked);
    None
}

fn finish<M: BatchModel>(mut s: Stream<M>, reason: &str, sessions: &mut Sessions<M::Cache>, out: &dyn Output) {
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
