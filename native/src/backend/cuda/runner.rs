//! The CUDA model in the batch scheduler (`generate::batch`, the CPU's twin is in
//! `generate::cpu_runner`): what the worker runs when a model is loaded on a GPU.
//!
//! - A prompt waits as its input-row sources ({table, row} per position, see `CudaOvis::row_sources`)
//!   and, when it has media, its own copy of the visual rows ([M, H] bf16 on the device: the vision
//!   encoder's output buffer is reused by the next encode, and the prompt may take several steps).
//! - A step prefills each prefilling row's chunk through the single-request prefill path (cuBLASLt
//!   and the flash prefill kernel, one session at a time), then decodes every decoding row together
//!   through the `BatchDecoder` (one multi-row GEMV step reading each weight once, in groups of up to
//!   `MAX_ROWS`, CUDA graphs per batch-size bucket). Row r's arithmetic is the single-request path's,
//!   so a request's tokens and logits do not depend on the rows beside it (tests/cuda_batch_parity.rs).
//! - Sampling is on the device with each request's own parameters; its multinomial draws come from
//!   its own `Rng` in the order the single-request path takes them (one per sampled token).
//! - Under the KV budget an idle conversation is evicted by copying its K/V to host memory and
//!   freeing all its device memory; it is copied back when the conversation continues (`cached_tokens`
//!   unchanged). Host memory for evicted conversations is not bounded by the budget.
//!
//! NOT RUN ON A GPU YET: verified on the fake GPU (tests/cuda_batch_parity.rs, engine_server.rs);
//! scripts/gpu-check.sh runs it on a GPU.
use super::batch::{BatchDecoder, BatchRow};
use super::model::{sampled, CudaOvis, GROW_AHEAD};
use super::ops::MAX_ROWS;
use super::qwen3::{HostKv, Session, PREFILL_ROWS};
use super::sampling::SampleParams;
use crate::error::Result;
use crate::generate::batch::{BatchModel, Output, Prepared, Row, Work};
use crate::generate::run::{check, ms, Phase};
use crate::generate::sampler::{Rng, Sampled};
use crate::protocol::{Generate, Progress, Timings};
use cudarc::driver::CudaSlice;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant;

/// The loaded model with the batch decoder's buffers (allocated at the first decode step).
pub struct CudaBatchModel {
    pub model: CudaOvis,
    decoder: Mutex<Option<BatchDecoder>>,
}

impl CudaBatchModel {
    pub fn new(model: CudaOvis) -> Self {
        CudaBatchModel { model, decoder: Mutex::new(None) }
    }

    /// Device memory left for KV caches when the budget is not given: 90 % of what is free now
    /// (after the weights), less the batch decoder's buffers.
    pub fn default_kv_budget(&self) -> Result<usize> {
        let (free, _) = self.model.gpu.memory()?;
        Ok((free as u64 * 9 / 10).saturating_sub(super::batch::work_bytes(&self.model.llm)) as usize)
    }
}

/// A conversation: on the device, or (evicted) its K/V in host memory.
pub enum CudaCache {
    Device(Session),
    Host(HostKv),
    /// Never used yet: a session is allocated when its first request joins.
    Empty,
}

/// A prompt waiting to be prefilled.
pub struct CudaPrompt {
    rows: Vec<[i32; 2]>,
    /// Rows prefilled so far.
    done: usize,
    /// The request's visual rows ([M, H] bf16), when it has media.
    visual: Option<CudaSlice<u16>>,
}

/// A request's sampling parameters and its multinomial draws.
pub struct CudaSampling {
    params: SampleParams,
    rng: Rng,
}

impl CudaSampling {
    /// The parameters of the next sample: a fresh draw `u` when sampling (as `CudaRunner` takes it).
    fn next(&mut self) -> SampleParams {
        let mut p = self.params;
        if p.temperature > 0.0 {
            p.u = self.rng.next_f64();
        }
        p
    }
}

fn session(c: &mut CudaCache) -> &mut Session {
    match c {
        CudaCache::Device(s) => s,
        _ => unreachable!("a running request's conversation is on the device (prepare puts it there)"),
    }
}

impl BatchModel for CudaBatchModel {
    type Cache = CudaCache;
    type Prompt = CudaPrompt;
    type Sampling = CudaSampling;

    fn new_cache(&self) -> Result<CudaCache> {
        Ok(CudaCache::Empty)
    }

    fn max_positions(&self) -> usize {
        self.model.cfg.llm.max_positions
    }

    fn bytes_per_position(&self) -> usize {
        super::qwen3::kv_bytes(&self.model.cfg.llm, 1) as usize
    }

    fn bytes_per_session(&self) -> usize {
        super::qwen3::session_work_bytes(&self.model.cfg.llm) as usize
    }

    fn cache_bytes(&self, cache: &CudaCache) -> usize {
        match cache {
            CudaCache::Device(s) => s.device_bytes(&self.model.llm) as usize,
            CudaCache::Host(_) | CudaCache::Empty => 0,
        }
    }

    fn evict(&self, cache: &mut CudaCache) -> usize {
        let CudaCache::Device(s) = cache else { return 0 };
        let freed = s.device_bytes(&self.model.llm) as usize;
        match s.offload(&self.model.gpu, &self.model.llm) {
            Ok(host) => {
                *cache = CudaCache::Host(host);
                freed
            }
            Err(e) => {
                eprintln!("ovis-engine: could not move an idle conversation's KV cache to host memory, it stays on the GPU: {e}");
                0
            }
        }
    }

    fn cache_len(&self, cache: &CudaCache) -> usize {
        match cache {
            CudaCache::Device(s) => s.len(),
            CudaCache::Host(h) => h.len,
            CudaCache::Empty => 0,
        }
    }

    fn sampling(&self, req: &Generate) -> CudaSampling {
        let params = SampleParams::for_request(req, self.model.cfg.llm.vocab);
        CudaSampling { params, rng: Rng::new(req.sampling.seed) }
    }

    fn prepare(&self, cache: &mut CudaCache, req: &Generate, ids: &[i32], pixels: &[f32], _cancel: &AtomicBool, out: &dyn Output) -> Result<Option<Prepared<CudaPrompt>>> {
        let m = &self.model;
        let (g, max_pos) = (&m.gpu, m.cfg.llm.max_positions);
        check(req, ids, pixels, &m.cfg, self.cache_len(cache))?;
        // Room for the prompt and the first answer tokens; decode grows the cache when it fills.
        let want = (req.keep + ids.len() + req.max_new_tokens.min(GROW_AHEAD)).min(max_pos);
        match cache {
            CudaCache::Empty => *cache = CudaCache::Device(m.new_session()?),
            CudaCache::Host(h) => {
                let restored = Session::restore(g, &m.llm, h, want)?;
                *cache = CudaCache::Device(restored);
            }
            CudaCache::Device(_) => {}
        }
        let s = session(cache);
        s.restart(g, req.keep)?;
        s.reserve(g, &m.llm, want)?;
        let mut timings = Timings::default();
        let t = Instant::now();
        let grids: Vec<[usize; 3]> = req.media.iter().map(|x| x.grid).collect();
        // The encode is one queue of launches (milliseconds on a GPU): progress at its start only.
        let (visual, row_of_atom) = if pixels.is_empty() {
            (None, Vec::new())
        } else {
            let _ = out.progress(&Progress { id: req.id, phase: Phase::Vision.name().into(), done: 0, total: m.cfg.vit.layers, elapsed_ms: Some(0.0) });
            let v = m.vision.encode(g, &m.blas, pixels, &grids)?;
            let n = v.row_of_atom.len() * m.cfg.llm.hidden;
            let own = g.zeros::<u16>(n)?;
            g.copy_raw(super::device::ptr(&own, &g.stream), v.rows, 2 * n)?;
            g.sync()?;
            (Some(own), v.row_of_atom.clone())
        };
        timings.vision_ms = ms(t);
        let rows = m.row_sources(ids, &row_of_atom)?;
        Ok(Some(Prepared { prompt: CudaPrompt { rows, done: 0, visual }, reused: req.keep, timings }))
    }

    fn prompt_len(&self, prompt: &CudaPrompt) -> usize {
        prompt.rows.len() - prompt.done
    }

    fn step(&self, rows: &mut [Row<'_, Self>]) -> Result<Vec<Option<Sampled>>> {
        let m = &self.model;
        let g = &m.gpu;
        let mut picks: Vec<Option<Sampled>> = vec![None; rows.len()];
        // Prompts first, each through the prefill path in chunks of at most PREFILL_ROWS.
        for (r, pick) in rows.iter_mut().zip(picks.iter_mut()) {
            let Work::Prefill(take) = r.work else { continue };
            let s = session(r.cache);
            let p = &mut *r.prompt;
            let visual = p.visual.as_ref().map_or(0, |v| super::device::ptr(v, &g.stream));
            for chunk in p.rows[p.done..p.done + take].chunks(PREFILL_ROWS) {
                m.llm.prefill_rows(g, &m.blas, s, chunk, m.vision.vte(g), visual)?;
            }
            p.done += take;
            if p.done == p.rows.len() {
                p.visual = None;
                let params = r.sampling.next();
                *pick = Some(sampled(m.llm.sample_prefilled(g, s, params)?, r.top_n));
            }
        }
        // Then one batched decode step for every decoding row, MAX_ROWS rows per launch.
        let decoding: Vec<usize> = (0..rows.len()).filter(|&i| matches!(rows[i].work, Work::Decode(_))).collect();
        if decoding.is_empty() {
            return Ok(picks);
        }
        let mut guard = self.decoder.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(BatchDecoder::new(g, &m.llm)?);
        }
        let dec = guard.as_mut().expect("created above");
        for group in decoding.chunks(MAX_ROWS) {
            let mut batch: Vec<BatchRow> = Vec::with_capacity(group.len());
            let mut top: Vec<usize> = Vec::with_capacity(group.len());
            // Disjoint rows of `rows`, in ascending order: borrowed together through iter_mut.
            for (_, r) in rows.iter_mut().enumerate().filter(|(i, _)| group.contains(i)) {
                let Work::Decode(id) = r.work else { unreachable!("decoding rows only") };
                let s = session(r.cache);
                if s.len() + 1 > s.capacity() {
                    s.reserve(g, &m.llm, s.len() + 1)?;
                }
                top.push(r.top_n);
                batch.push(BatchRow { session: s, next_id: id as i32, params: r.sampling.next() });
            }
            let results = dec.step(g, &m.llm, &mut batch)?;
            for ((&i, res), n) in group.iter().zip(results).zip(top) {
                picks[i] = Some(sampled(res, n));
            }
        }
        Ok(picks)
    }
}
