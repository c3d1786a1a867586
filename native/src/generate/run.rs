//! One generate request: vision encode, merge, chunked prefill, then sample/decode until a stop.
use crate::error::{EngineError, Result};
use crate::generate::kv_cache::KvCache;
use crate::generate::sampler::{Sampler, SamplingParams};
use crate::generate::validate::check_request;
use crate::model::merge::merge_embeddings;
use crate::model::ovis::OvisModel;
use crate::protocol::{Done, Generate, Timings, Token};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Positions prefilled per forward call: bounds the activation memory and lets a cancel land between chunks.
const PREFILL_CHUNK: usize = 512;

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Runs `req` on `cache` (truncated to `req.keep` first), calling `emit` per token as it is sampled.
pub fn generate(model: &OvisModel, cache: &mut KvCache, req: &Generate, ids: &[i32], pixels: &[f32], cancel: &AtomicBool, emit: &mut dyn FnMut(Token)) -> Result<Done> {
    let start = Instant::now();
    let cfg = &model.cfg;
    let patches = check_request(req, ids, pixels.len(), cfg)?;
    if req.keep > cache.len() {
        return Err(EngineError::BadRequest(format!("keep = {} but session {:?} holds only {} positions", req.keep, req.session, cache.len())));
    }
    let max_pos = cfg.llm.max_positions;
    if req.keep + ids.len() > max_pos {
        return Err(EngineError::ContextOverflow(format!("the prompt needs {} positions ({} kept + {} new) but the model's context window is {max_pos}", req.keep + ids.len(), req.keep, ids.len())));
    }
    if ids.is_empty() {
        return Err(EngineError::BadRequest("a generate request needs at least one new id".into()));
    }
    cache.truncate(req.keep);
    let mut timings = Timings::default();

    let t = Instant::now();
    let grids: Vec<[usize; 3]> = req.media.iter().map(|m| m.grid).collect();
    let visual = if patches.is_empty() {
        Vec::new()
    } else {
        let feats = model.vision.encode(pixels, &grids)?;
        model.head.forward(&feats)?.1
    };
    timings.vision_ms = ms(t);
    let hidden = cfg.llm.hidden;
    let embeds = merge_embeddings(ids, |tok, out| model.llm.embed(tok, out), &model.head, &visual, hidden)?;

    let t = Instant::now();
    let mut logits = Vec::new();
    for chunk in embeds.chunks(PREFILL_CHUNK * hidden) {
        if cancel.load(Ordering::SeqCst) {
            timings.prefill_ms = ms(t);
            timings.total_ms = ms(start);
            return Ok(done(req, ids.len(), 0, "cancelled", timings));
        }
        logits = model.llm.forward(cache, chunk)?;
    }
    timings.prefill_ms = ms(t);

    let s = &req.sampling;
    let mut sampler = Sampler::new(SamplingParams { temperature: s.temperature, top_k: s.top_k, top_p: s.top_p, repetition_penalty: s.repetition_penalty, seed: s.seed });
    let mut generated: Vec<u32> = Vec::new();
    let mut embed_row = vec![0f32; hidden];
    let mut decode_start = None;
    let reason = loop {
        if generated.len() >= req.max_new_tokens {
            break "length";
        }
        if cancel.load(Ordering::SeqCst) {
            break "cancelled";
        }
        let picked = sampler.sample(&mut logits, &generated, req.top_logprobs);
        generated.push(picked.id);
        emit(Token { id: req.id, token: picked.id, logprob: picked.logprob, top: picked.top });
        if decode_start.is_none() {
            timings.first_token_ms = ms(start);
            decode_start = Some(Instant::now());
        }
        if req.stop_ids.contains(&picked.id) {
            break "stop";
        }
        if generated.len() >= req.max_new_tokens || cache.len() + 1 > max_pos {
            break "length";
        }
        model.llm.embed(&[picked.id], &mut embed_row);
        logits = model.llm.forward(cache, &embed_row)?;
    };
    timings.decode_ms = decode_start.map_or(0.0, ms);
    timings.total_ms = ms(start);
    Ok(done(req, ids.len(), generated.len(), reason, timings))
}

fn done(req: &Generate, prompt: usize, completion: usize, reason: &str, timings: Timings) -> Done {
    Done { id: req.id, finish_reason: reason.into(), prompt_tokens: prompt, cached_tokens: req.keep, completion_tokens: completion, timings }
}
