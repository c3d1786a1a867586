//! One generate request, the same on every backend: checks, then the backend's `Runner` encodes the
//! media and prefills (sampling the first token), then decodes one token at a time until a stop.
use crate::error::{EngineError, Result};
use crate::generate::sampler::Sampled;
use crate::generate::validate::check_request;
use crate::model::config::ModelConfig;
use crate::protocol::{Done, Generate, Progress, Timings, Token};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Positions prefilled per forward call: bounds the activation memory and lets a cancel land between chunks.
pub const PREFILL_CHUNK: usize = 512;

pub fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// The steps before the first token, for `progress` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Encoder layers of the request's media done / in all.
    Vision,
    /// New positions prefilled / in all.
    Prefill,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Vision => "vision",
            Phase::Prefill => "prefill",
        }
    }
}

/// Where a request's output goes: tokens as they are sampled, and the steps before the first one.
pub struct Sink<'a> {
    pub token: &'a mut dyn FnMut(Token),
    pub progress: &'a mut dyn FnMut(Progress),
}

/// A backend's side of one request on one session (its KV cache already truncated to `keep`).
pub trait Runner {
    /// Positions the session's cache holds.
    fn cached(&self) -> usize;
    /// Encodes the media (`grids` of `pixels`), merges them with `ids`, prefills them after the cached
    /// positions and samples the first token; None when `cancel` was set between prefill chunks (or,
    /// on the CPU, between vision encoder layers).
    /// Fills `timings.vision_ms` and `timings.prefill_ms`; reports its steps to `progress`.
    fn prefill(&mut self, ids: &[i32], pixels: &[f32], grids: &[[usize; 3]], timings: &mut Timings, cancel: &AtomicBool, progress: &mut dyn FnMut(Phase, usize, usize)) -> Result<Option<Sampled>>;
    /// Feeds the last sampled token and samples the next.
    fn decode(&mut self) -> Result<Sampled>;
}

/// Checks `req` against the model and a session holding `cached` positions, before any work.
pub fn check(req: &Generate, ids: &[i32], pixels: &[f32], cfg: &ModelConfig, cached: usize) -> Result<()> {
    check_request(req, ids, pixels.len(), cfg)?;
    if req.keep > cached {
        return Err(EngineError::BadRequest(format!("keep = {} but session {:?} holds only {cached} positions", req.keep, req.session)));
    }
    let max_pos = cfg.llm.max_positions;
    if req.keep + ids.len() > max_pos {
        return Err(EngineError::ContextOverflow(format!("the prompt needs {} positions ({} kept + {} new) but the model's context window is {max_pos}", req.keep + ids.len(), req.keep, ids.len())));
    }
    if ids.is_empty() {
        return Err(EngineError::BadRequest("a generate request needs at least one new id".into()));
    }
    Ok(())
}

/// Runs a checked request on `runner`, sending each token to `sink` as it is sampled.
pub fn drive(runner: &mut dyn Runner, req: &Generate, ids: &[i32], pixels: &[f32], max_pos: usize, cancel: &AtomicBool, sink: Sink) -> Result<Done> {
    let start = Instant::now();
    let mut timings = Timings::default();
    let grids: Vec<[usize; 3]> = req.media.iter().map(|m| m.grid).collect();
    let Sink { token: emit, progress } = sink;
    // The vision steps carry the time since the encode's first step (its clock starts at done = 0).
    let mut vision_start = None;
    let mut step = |phase: Phase, done: usize, total: usize| {
        let elapsed_ms = (phase == Phase::Vision).then(|| ms(*vision_start.get_or_insert_with(Instant::now)));
        progress(Progress { id: req.id, phase: phase.name().into(), done, total, elapsed_ms })
    };
    let Some(mut next) = runner.prefill(ids, pixels, &grids, &mut timings, cancel, &mut step)? else {
        timings.total_ms = ms(start);
        return Ok(done(req, ids.len(), 0, "cancelled", timings));
    };
    let mut count = 0;
    let mut decode_start = None;
    let reason = loop {
        if count >= req.max_new_tokens {
            break "length";
        }
        if cancel.load(Ordering::SeqCst) {
            break "cancelled";
        }
        count += 1;
        let id = next.id;
        emit(Token { id: req.id, token: id, logprob: next.logprob, top: std::mem::take(&mut next.top) });
        if decode_start.is_none() {
            timings.first_token_ms = ms(start);
            decode_start = Some(Instant::now());
        }
        if req.stop_ids.contains(&id) {
            break "stop";
        }
        if count >= req.max_new_tokens || runner.cached() + 1 > max_pos {
            break "length";
        }
        next = runner.decode()?;
    };
    timings.decode_ms = decode_start.map_or(0.0, ms);
    timings.total_ms = ms(start);
    Ok(done(req, ids.len(), count, reason, timings))
}

fn done(req: &Generate, prompt: usize, completion: usize, reason: &str, timings: Timings) -> Done {
    Done { id: req.id, finish_reason: reason.into(), prompt_tokens: prompt, cached_tokens: req.keep, completion_tokens: completion, timings }
}
