//! The CPU backend's `Runner` (one request: f32 vision encode + merge on the host, chunked Qwen3
//! prefill into the session's KvCache, the host sampler over the f32 logits) and its `BatchModel`
//! (the same pieces, many requests a step: `generate::batch`).
use crate::backend::cpu::merge::merge_embeddings;
use crate::backend::cpu::model::OvisModel;
use crate::backend::cpu::qwen3::BatchRow;
use crate::error::Result;
use crate::generate::batch::{BatchModel, Output, Prepared, Row, Work};
use crate::generate::kv_cache::KvCache;
use crate::generate::run::{check, drive, ms, Phase, Runner, Sink, PREFILL_CHUNK};
use crate::generate::sampler::{Sampled, Sampler, SamplingParams};
use crate::protocol::{Done, Generate, Progress, Timings};
use rayon::prelude::*;
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

/// The CPU model in the batch scheduler (`generate::batch`): sessions keep f32 `KvCache`s (evicted
/// K/V are rebuilt from the input embeddings they keep), a prompt waits as its input embeddings
/// [n, H], and a step is one `Qwen3::forward_batch` over every row with the host sampler after it.
impl BatchModel for OvisModel {
    type Cache = KvCache;
    type Prompt = Vec<f32>;
    /// The request's sampler (its own seed's stream).
    type Sampling = Sampler;

    fn new_cache(&self) -> Result<KvCache> {
        Ok(KvCache::new(&self.cfg.llm))
    }

    fn max_positions(&self) -> usize {
        self.cfg.llm.max_positions
    }

    fn bytes_per_position(&self) -> usize {
        let c = &self.cfg.llm;
        (2 * c.layers * c.kv_heads * c.head_dim + c.hidden) * std::mem::size_of::<f32>()
    }

    fn cache_bytes(&self, cache: &KvCache) -> usize {
        cache.capacity_bytes()
    }

    fn evict(&self, cache: &mut KvCache) -> usize {
        cache.evict()
    }

    fn cache_len(&self, cache: &KvCache) -> usize {
        cache.len()
    }

    fn sampling(&self, req: &Generate) -> Sampler {
        let s = &req.sampling;
        Sampler::new(SamplingParams { temperature: s.temperature, top_k: s.top_k, top_p: s.top_p, repetition_penalty: s.repetition_penalty, seed: s.seed })
    }

    fn prepare(&self, cache: &mut KvCache, req: &Generate, ids: &[i32], pixels: &[f32], cancel: &AtomicBool, out: &dyn Output) -> Result<Option<Prepared<Vec<f32>>>> {
        prepare(self, cache, req, ids, pixels, cancel, out)
    }

    fn prompt_len(&self, prompt: &Vec<f32>) -> usize {
        prompt.len() / self.cfg.llm.hidden
    }

    fn step(&self, rows: &mut [Row<'_, Self>]) -> Result<Vec<Option<Sampled>>> {
        let h = self.cfg.llm.hidden;
        let inputs: Vec<Vec<f32>> = rows
            .iter_mut()
            .map(|r| match r.work {
                Work::Decode(id) => {
                    let mut row = vec![0f32; h];
                    self.llm.embed(&[id], &mut row);
                    row
                }
                Work::Prefill(take) => r.prompt.drain(..take * h).collect(),
            })
            .collect();
        let mut batch: Vec<BatchRow> = rows.iter_mut().zip(&inputs).map(|(r, e)| BatchRow { cache: &mut *r.cache, embeds: e }).collect();
        let logits = self.llm.forward_batch(&mut batch)?;
        drop(batch);
        // Each row samples from its own logits with its own sampler (seed, history), so the rows
        // are drawn in parallel: one draw at temperature 1 takes ~3 passes of f64 exp over the 152 K
        // vocabulary (~2–3 ms), 8 rows one after another ~10 % of an 8-row step.
        let sample = |(r, mut z): (&mut Row<'_, Self>, Vec<f32>)| {
            let finished = matches!(r.work, Work::Decode(_)) || r.prompt.is_empty();
            finished.then(|| r.sampling.sample(&mut z, r.generated, r.top_n))
        };
        Ok(if rows.len() == 1 { rows.iter_mut().zip(logits).map(sample).collect() } else { rows.par_iter_mut().zip(logits).map(sample).collect() })
    }
}

/// `BatchModel::prepare` on the CPU: truncates the cache to `keep` (or, when it was evicted, queues its first `keep` inputs to be
/// prefilled again), encodes the media, merges them with the ids: the input embeddings to prefill
/// ([n, H] f32), the positions reused from the cache, and the timings so far. None when cancelled
/// during the vision encode.
fn prepare(model: &OvisModel, cache: &mut KvCache, req: &Generate, ids: &[i32], pixels: &[f32], cancel: &AtomicBool, out: &dyn Output) -> Result<Option<Prepared<Vec<f32>>>> {
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
    Ok(Some(Prepared { prompt: rebuild, reused, timings }))
}

