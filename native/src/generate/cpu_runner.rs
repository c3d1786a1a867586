//! The CPU backend's `Runner`: f32 vision encode + merge on the host, chunked Qwen3 prefill into the
//! session's KvCache, and the host sampler over the f32 logits.
use crate::error::Result;
use crate::generate::kv_cache::KvCache;
use crate::generate::run::{check, drive, ms, Phase, Runner, Sink, PREFILL_CHUNK};
use crate::generate::sampler::{Sampled, Sampler, SamplingParams};
use crate::backend::cpu::merge::merge_embeddings;
use crate::backend::cpu::model::OvisModel;
use crate::protocol::{Done, Generate, Timings};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub struct CpuRunner<'a> {
    model: &'a OvisModel,
    cache: &'a mut KvCache,
    sampler: Sampler,
    top_n: usize,
    /// Ids sampled in this request (the repetition penalty's history).
    generated: Vec<u32>,
    logits: Vec<f32>,
}

impl<'a> CpuRunner<'a> {
    pub fn new(model: &'a OvisModel, cache: &'a mut KvCache, params: SamplingParams, top_n: usize) -> Self {
        CpuRunner { model, cache, sampler: Sampler::new(params), top_n, generated: Vec::new(), logits: Vec::new() }
    }

    fn sample(&mut self) -> Sampled {
        let picked = self.sampler.sample(&mut self.logits, &self.generated, self.top_n);
        self.generated.push(picked.id);
        picked
    }
}

impl Runner for CpuRunner<'_> {
    fn cached(&self) -> usize {
        self.cache.len()
    }

    fn prefill(&mut self, ids: &[i32], pixels: &[f32], grids: &[[usize; 3]], timings: &mut Timings, cancel: &AtomicBool, progress: &mut dyn FnMut(Phase, usize, usize)) -> Result<Option<Sampled>> {
        let m = self.model;
        let t = Instant::now();
        let visual = if pixels.is_empty() {
            Vec::new()
        } else {
            progress(Phase::Vision, 0, m.cfg.vit.layers);
            let on_layer = &mut |done, total| {
                progress(Phase::Vision, done, total);
                !cancel.load(Ordering::SeqCst)
            };
            let Some(feats) = m.vision.encode_with_progress(pixels, grids, on_layer)? else {
                timings.vision_ms = ms(t);
                return Ok(None);
            };
            m.head.forward(&feats)?.1
        };
        timings.vision_ms = ms(t);
        let hidden = m.cfg.llm.hidden;
        let embeds = merge_embeddings(ids, |tok, out| m.llm.embed(tok, out), &m.head, &visual, hidden)?;
        let t = Instant::now();
        for (k, chunk) in embeds.chunks(PREFILL_CHUNK * hidden).enumerate() {
            if cancel.load(Ordering::SeqCst) {
                timings.prefill_ms = ms(t);
                return Ok(None);
            }
            progress(Phase::Prefill, k * PREFILL_CHUNK, ids.len());
            self.logits = m.llm.forward(self.cache, chunk)?;
        }
        timings.prefill_ms = ms(t);
        Ok(Some(self.sample()))
    }

    fn decode(&mut self) -> Result<Sampled> {
        let last = *self.generated.last().expect("decode follows a sample");
        let mut row = vec![0f32; self.model.cfg.llm.hidden];
        self.model.llm.embed(&[last], &mut row);
        self.logits = self.model.llm.forward(self.cache, &row)?;
        Ok(self.sample())
    }
}

/// Runs `req` on `cache` (truncated to `req.keep` first) on the CPU, sending tokens and progress to `sink`.
pub fn generate(model: &OvisModel, cache: &mut KvCache, req: &Generate, ids: &[i32], pixels: &[f32], cancel: &AtomicBool, sink: Sink) -> Result<Done> {
    check(req, ids, pixels, &model.cfg, cache.len())?;
    cache.truncate(req.keep);
    let s = &req.sampling;
    let params = SamplingParams { temperature: s.temperature, top_k: s.top_k, top_p: s.top_p, repetition_penalty: s.repetition_penalty, seed: s.seed };
    let mut runner = CpuRunner::new(model, cache, params, req.top_logprobs);
    drive(&mut runner, req, ids, pixels, model.cfg.llm.max_positions, cancel, sink)
}
