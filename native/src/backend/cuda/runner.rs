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
//!   unchanged). Those host copies are bounded too (`kept_limit`, and the KV budget itself): beyond
//!   that the least recently used copy is dropped, and the conversation is recomputed from its input
//!   rows (kept for every session: the row source of each position, and its media's visual rows in
//!   host memory) when it continues, as on the CPU (`cached_tokens` 0).
//! - A running request's cache grows before a step (`before_step`): a growth that fails (out of
//!   memory) fails that request alone, and the others run the step.
//!
//! NOT RUN ON A GPU YET: verified on the fake GPU (tests/cuda_batch_parity.rs, engine_server.rs);
//! scripts/gpu-check.sh runs it on a GPU.
use super::batch::{BatchDecoder, BatchRow};
use super::model::{sampled, CudaOvis, GROW_AHEAD};
use super::ops::MAX_ROWS;
use super::qwen3::{HostKv, Session, PREFILL_ROWS};
use crate::generate::batch::default_kv_budget;
use super::sampling::SampleParams;
use crate::error::Result;
use crate::generate::batch::{BatchModel, Output, Prepared, Row, Work};
use crate::generate::run::{check, ms, Phase};
use crate::generate::sampler::{Rng, Sampled};
use crate::protocol::{Generate, Progress, Timings};
use cudarc::driver::CudaSlice;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The loaded model with the batch decoder's buffers (allocated at the first decode step).
pub struct CudaBatchModel {
    pub model: CudaOvis,
    decoder: Mutex<Option<BatchDecoder>>,
    /// Host memory the evicted conversations' K/V copies may take in all (besides the KV budget,
    /// which bounds them too): half the memory available when the model was loaded, as the CPU's
    /// default budget.
    host_limit: usize,
}

impl CudaBatchModel {
    pub fn new(model: CudaOvis) -> Self {
        CudaBatchModel { model, decoder: Mutex::new(None), host_limit: default_kv_budget() }
    }

    /// Device memory left for KV caches when the budget is not given: 90 % of what is free now
    /// (after the weights), less the batch decoder's buffers.
    pub fn default_kv_budget(&self) -> Result<usize> {
        let (free, _) = self.model.gpu.memory()?;
        Ok((free as u64 * 9 / 10).saturating_sub(super::batch::work_bytes(&self.model.llm)) as usize)
    }
}

/// A conversation: its K/V (on the device, saved in host memory, or gone) and the input rows that
/// recompute them.
pub struct CudaCache {
    kv: Kv,
    inputs: Inputs,
}

enum Kv {
    /// Nothing held: a new conversation, or one whose host copy was dropped under the budget (its
    /// `inputs` recompute it when it continues).
    Gone,
    Device(Session),
    /// Evicted from the device: its cached positions' K/V in host memory.
    Host(HostKv),
}

/// What every cached position was computed from: its `merge_rows` source ({table, row}: 0
/// embed_tokens, 1 the VTE, 2 a row of `visual`) and the visual rows of the conversation's media
/// ([n, H] bf16 bits in host memory). 8 bytes a position, and 2·H per visual row (1/28 of the K/V a
/// position takes in a 2B model).
#[derive(Default)]
struct Inputs {
    rows: Vec<[i32; 2]>,
    visual: Vec<u16>,
}

impl Inputs {
    /// Keeps positions 0..keep and the visual rows they name.
    fn truncate(&mut self, keep: usize, hidden: usize) {
        self.rows.truncate(keep);
        let used = self.rows.iter().filter(|r| r[0] == 2).map(|r| r[1] as usize + 1).max().unwrap_or(0);
        self.visual.truncate(used * hidden);
    }
}

/// A prompt waiting to be prefilled.
pub struct CudaPrompt {
    rows: Vec<[i32; 2]>,
    /// Rows prefilled so far.
    done: usize,
    /// The visual rows the prompt's table-2 rows name ([M, H] bf16), when it has any: the request's
    /// media, or (a recomputed conversation) all of the conversation's.
    visual: Option<CudaSlice<u16>>,
    /// Row `r` of `visual` is row `r + visual_base` of the conversation's `Inputs::visual`.
    visual_base: i32,
}

/// `src` as recorded in a conversation's inputs: visual rows renumbered from the prompt's buffer to
/// the conversation's.
fn recorded(src: &[[i32; 2]], visual_base: i32) -> impl Iterator<Item = [i32; 2]> + '_ {
    src.iter().map(move |r| if r[0] == 2 { [2, r[1] + visual_base] } else { *r })
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

fn session(kv: &mut Kv) -> &mut Session {
    match kv {
        Kv::Device(s) => s,
        _ => unreachable!("a running request's conversation is on the device (prepare puts it there)"),
    }
}

impl BatchModel for CudaBatchModel {
    type Cache = CudaCache;
    type Prompt = CudaPrompt;
    type Sampling = CudaSampling;

    fn new_cache(&self) -> Result<CudaCache> {
        Ok(CudaCache { kv: Kv::Gone, inputs: Inputs::default() })
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
        match &cache.kv {
            Kv::Device(s) => s.device_bytes(&self.model.llm) as usize,
            Kv::Host(_) | Kv::Gone => 0,
        }
    }

    /// Moves an idle conversation's K/V to host memory and frees its device memory; when the copy
    /// alone would exceed what host copies may take, or cannot be made, the K/V are dropped (the
    /// conversation is recomputed from its inputs when it continues).
    fn evict(&self, cache: &mut CudaCache) -> usize {
        let Kv::Device(s) = &cache.kv else { return 0 };
        let freed = s.device_bytes(&self.model.llm) as usize;
        if s.len() * self.bytes_per_position() <= self.host_limit {
            match s.offload(&self.model.gpu, &self.model.llm) {
                Ok(host) => {
                    cache.kv = Kv::Host(host);
                    return freed;
                }
                Err(e) => eprintln!("ovis-engine: could not copy an idle conversation's KV cache to host memory, it will be recomputed: {e}"),
            }
        }
        cache.kv = Kv::Gone;
        freed
    }

    fn kept_bytes(&self, cache: &CudaCache) -> usize {
        match &cache.kv {
            Kv::Host(h) => h.bytes(),
            _ => 0,
        }
    }

    fn kept_limit(&self) -> usize {
        self.host_limit
    }

    fn drop_kept(&self, cache: &mut CudaCache) -> usize {
        match &cache.kv {
            Kv::Host(h) => {
                let freed = h.bytes();
                cache.kv = Kv::Gone;
                freed
            }
            _ => 0,
        }
    }

    fn before_step(&self, cache: &mut CudaCache, work: Work) -> Result<()> {
        let s = session(&mut cache.kv);
        let need = s.len() + if let Work::Prefill(take) = work { take } else { 1 };
        if need > s.capacity() {
            s.reserve(&self.model.gpu, &self.model.llm, need)?;
        }
        Ok(())
    }

    fn cache_len(&self, cache: &CudaCache) -> usize {
        match &cache.kv {
            Kv::Device(s) => s.len(),
            Kv::Host(h) => h.len,
            Kv::Gone => cache.inputs.rows.len(),
        }
    }

    fn sampling(&self, req: &Generate) -> CudaSampling {
        let params = SampleParams::for_request(req, self.model.cfg.llm.vocab);
        CudaSampling { params, rng: Rng::new(req.sampling.seed) }
    }

    fn prepare(&self, cache: &mut CudaCache, req: &Generate, ids: &[i32], pixels: &[f32], cancel: &AtomicBool, out: &dyn Output) -> Result<Option<Prepared<CudaPrompt>>> {
        let m = &self.model;
        let (g, max_pos, hidden) = (&m.gpu, m.cfg.llm.max_positions, m.cfg.llm.hidden);
        check(req, ids, pixels, &m.cfg, self.cache_len(cache))?;
        // Room for the prompt and the first answer tokens; decode grows the cache when it fills.
        let want = (req.keep + ids.len() + req.max_new_tokens.min(GROW_AHEAD)).min(max_pos);
        let mut timings = Timings::default();
        let t = Instant::now();
        // The media first: if the encode fails the conversation is as it was. It is one queue of
        // launches (milliseconds on a GPU): progress at its start and its end, with its cost.
        let grids: Vec<[usize; 3]> = req.media.iter().map(|x| x.grid).collect();
        let (visual, row_of_atom) = if pixels.is_empty() {
            (None, Vec::new())
        } else {
            let layers = m.cfg.vit.layers;
            let report = |done: usize| out.progress(&Progress { id: req.id, phase: Phase::Vision.name().into(), done, total: layers, elapsed_ms: Some(ms(t)) });
            if !report(0) {
                cancel.store(true, Ordering::SeqCst);
            }
            let v = m.vision.encode(g, &m.blas, pixels, &grids)?;
            let n = v.row_of_atom.len() * hidden;
            let own = g.zeros::<u16>(n)?;
            g.copy_raw(super::device::ptr(&own, &g.stream), v.rows, 2 * n)?;
            g.sync()?;
            if !report(layers) {
                cancel.store(true, Ordering::SeqCst);
            }
            (Some(own), v.row_of_atom.clone())
        };
        timings.vision_ms = ms(t);
        if cancel.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let new_rows = m.row_sources(ids, &row_of_atom)?;
        let new_visual = match &visual {
            Some(v) => g.download(v)?,
            None => Vec::new(),
        };
        // The K/V back on the device: as they are, copied back from host memory, or (dropped under
        // the budget) recomputed from the inputs of the kept positions, prefilled before the prompt.
        let recompute = matches!(cache.kv, Kv::Gone) && req.keep > 0;
        match &cache.kv {
            Kv::Gone => cache.kv = Kv::Device(m.new_session()?),
            Kv::Host(h) => cache.kv = Kv::Device(Session::restore(g, &m.llm, h, want)?),
            Kv::Device(_) => {}
        }
        let s = session(&mut cache.kv);
        if let Err(e) = s.restart(g, req.keep).and_then(|_| s.reserve(g, &m.llm, want)) {
            if recompute {
                // (the new session holds none of the kept positions: the inputs still recompute them)
                cache.kv = Kv::Gone;
            }
            return Err(e);
        }
        let inputs = &mut cache.inputs;
        inputs.truncate(req.keep, hidden);
        let kept_visual = (inputs.visual.len() / hidden) as i32;
        inputs.visual.extend_from_slice(&new_visual);
        let prompt = if recompute {
            // One visual buffer for the kept and the new rows, numbered as the conversation's.
            let all = if inputs.visual.is_empty() { None } else { Some(g.upload(&inputs.visual)?) };
            let mut rows = std::mem::take(&mut inputs.rows);
            rows.extend(recorded(&new_rows, kept_visual));
            CudaPrompt { rows, done: 0, visual: all, visual_base: 0 }
        } else {
            CudaPrompt { rows: new_rows, done: 0, visual, visual_base: kept_visual }
        };
        let reused = if recompute { 0 } else { req.keep };
        Ok(Some(Prepared { prompt, reused, timings }))
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
            let CudaCache { kv, inputs } = &mut *r.cache;
            let s = session(kv);
            let p = &mut *r.prompt;
            let visual = p.visual.as_ref().map_or(0, |v| super::device::ptr(v, &g.stream));
            for chunk in p.rows[p.done..p.done + take].chunks(PREFILL_ROWS) {
                m.llm.prefill_rows(g, &m.blas, s, chunk, m.vision.vte(g), visual)?;
                inputs.rows.extend(recorded(chunk, p.visual_base));
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
                // (`before_step` made room for the position)
                let s = session(&mut r.cache.kv);
                top.push(r.top_n);
                batch.push(BatchRow { session: s, next_id: id as i32, params: r.sampling.next() });
            }
            let results = dec.step(g, &m.llm, &mut batch)?;
            drop(batch);
            for ((&i, res), n) in group.iter().zip(results).zip(top) {
                picks[i] = Some(sampled(res, n));
                // the fed id is the position just cached
                if let Work::Decode(id) = rows[i].work {
                    rows[i].cache.inputs.rows.push([0, id as i32]);
                }
            }
        }
        Ok(picks)
    }
}
