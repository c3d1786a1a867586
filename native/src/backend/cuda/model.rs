//! The whole Ovis2.5 model on one GPU: the ViT + head + VTE (`CudaVision`) and the Qwen3 decoder
//! (`CudaQwen3`), uploaded once from a `WeightSource` after one check that everything fits, and the
//! `Runner` that serves generate requests on a session's device KV cache with sampling on the device.
//!
//! NOT RUN ON A GPU YET (see docs/cuda.md).
use super::blas::Blas;
use super::device::{gib, Gpu};
use super::qwen3::{self, CudaQwen3, Session};
use super::sampling::{SampleParams, SampleResult};
use super::vision::{self, CudaVision};
use crate::error::Result;
use crate::generate::run::{check, drive, ms, Phase, Runner, Sink};
use crate::generate::sampler::{Rng, Sampled};
use crate::model::config::ModelConfig;
use crate::model::merge::{row_sources, RowSource};
use crate::backend::model_info;
use crate::model::ovis::model_size;
use crate::model::source::WeightSource;
use crate::protocol::{Done, Generate, Timings};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Positions a new conversation reserves on the device (it grows as needed, see `Session::reserve`).
const FIRST_RESERVE: usize = 4096;
/// Patches of the largest image the load-time check leaves room for (1792², 12 544 patches).
const PLANNED_PATCHES: usize = 12_544;
/// Answer tokens a request reserves KV room for up front (decode grows the cache beyond).
pub(super) const GROW_AHEAD: usize = 1024;
/// cuBLASLt workspace and CUDA's own allocations (context, modules), roughly.
const RUNTIME_BYTES: u64 = 512 << 20;

pub struct CudaOvis {
    pub cfg: ModelConfig,
    pub gpu: Gpu,
    pub blas: Blas,
    pub llm: CudaQwen3,
    pub vision: CudaVision,
    pub params: u64,
    pub weight_bytes: u64,
}

impl CudaOvis {
    /// Opens GPU `ordinal`, checks that the weights, one conversation and one large image fit in its
    /// free memory (a clear error with the numbers otherwise, before anything is uploaded), and uploads.
    pub fn load(ordinal: usize, cfg: ModelConfig, source: &WeightSource) -> Result<CudaOvis> {
        // Everything that can refuse this model does so before the GPU is touched.
        crate::model::vision::check_config(&cfg.vit)?;
        super::ops::check_llm_head_dim(cfg.llm.head_dim)?;
        super::ops::check_vit_head_dim(cfg.vit.hidden / cfg.vit.heads, cfg.vit.hidden)?;
        let gpu = Gpu::open(ordinal)?;
        let (llm_w, vis_w) = (qwen3::weight_bytes(&cfg.llm), vision::weight_bytes(&cfg));
        let kv = qwen3::kv_bytes(&cfg.llm, FIRST_RESERVE.min(cfg.llm.max_positions)) + qwen3::session_work_bytes(&cfg.llm);
        let image = vision::work_bytes(&cfg, PLANNED_PATCHES);
        gpu.check_fits(
            llm_w + vis_w + kv + image + RUNTIME_BYTES,
            &format!(
                "the model ({:.2} GiB of LLM weights + {:.2} GiB of vision weights) with one conversation ({:.2} GiB) and a 1792² image ({:.2} GiB)",
                gib(llm_w),
                gib(vis_w),
                gib(kv),
                gib(image)
            ),
        )?;
        let blas = Blas::new(&gpu)?;
        let get = |name: &str, shape: &[usize]| source.get(name, shape);
        let llm = CudaQwen3::upload(&gpu, &cfg.llm, get)?;
        let vision = CudaVision::upload(&gpu, &cfg, get)?;
        gpu.sync()?;
        let (params, weight_bytes) = model_size(&cfg, source);
        Ok(CudaOvis { cfg, gpu, blas, llm, vision, params, weight_bytes })
    }

    /// The `info` object of `model_loaded`.
    pub fn info(&self, backend: &str, device: &str) -> serde_json::Value {
        model_info(&self.cfg, self.params, self.weight_bytes, backend, device)
    }

    /// A new conversation's device state.
    pub fn new_session(&self) -> Result<Session> {
        Session::new(&self.gpu, &self.llm, FIRST_RESERVE)
    }

    /// Runs `req` on `session` (kept positions 0..keep), sending tokens and progress to `sink`.
    pub fn generate(&self, session: &mut Session, req: &Generate, ids: &[i32], pixels: &[f32], cancel: &AtomicBool, sink: Sink) -> Result<Done> {
        check(req, ids, pixels, &self.cfg, session.len())?;
        let max_pos = self.cfg.llm.max_positions;
        session.restart(&self.gpu, req.keep)?;
        // Room for the prompt and the first answer tokens; decode grows the cache when it fills, so a
        // large max_new_tokens does not reserve device memory it may never use.
        session.reserve(&self.gpu, &self.llm, (req.keep + ids.len() + req.max_new_tokens.min(GROW_AHEAD)).min(max_pos))?;
        let params = SampleParams::for_request(req, self.cfg.llm.vocab);
        let mut runner = CudaRunner { m: self, s: session, params, rng: Rng::new(req.sampling.seed) };
        drive(&mut runner, req, ids, pixels, max_pos, cancel, sink)
    }

    /// The input-row sources of `ids` for `merge_rows` ({table, row}: 0 embed_tokens, 1 the VTE, 2 the
    /// visual rows); the j-th atom takes visual row `row_of_atom[j]`.
    pub fn row_sources(&self, ids: &[i32], row_of_atom: &[i32]) -> Result<Vec<[i32; 2]>> {
        let vv = self.cfg.visual_vocab as i32;
        let sources = row_sources(ids, row_of_atom.len())?;
        Ok(sources
            .into_iter()
            .map(|src| match src {
                RowSource::Text(t) => [0, t as i32],
                RowSource::Indicator(i) => [1, vv - 4 + i as i32],
                RowSource::Visual(a) => [2, row_of_atom[a]],
            })
            .collect())
    }
}

struct CudaRunner<'a> {
    m: &'a CudaOvis,
    s: &'a mut Session,
    params: SampleParams,
    /// The multinomial draws, the same stream as the CPU sampler's for the same seed.
    rng: Rng,
}

impl CudaRunner<'_> {
    fn step_params(&mut self) -> SampleParams {
        let mut p = self.params;
        if p.temperature > 0.0 {
            p.u = self.rng.next_f64();
        }
        p
    }
}

pub(super) fn sampled(r: SampleResult, top_n: usize) -> Sampled {
    let mut top = r.top();
    top.truncate(top_n);
    Sampled { id: r.id as u32, logprob: r.logprob, top }
}

impl Runner for CudaRunner<'_> {
    fn cached(&self) -> usize {
        self.s.len()
    }

    fn prefill(&mut self, ids: &[i32], pixels: &[f32], grids: &[[usize; 3]], timings: &mut Timings, cancel: &AtomicBool, progress: &mut dyn FnMut(Phase, usize, usize)) -> Result<Option<Sampled>> {
        let (m, g) = (self.m, &self.m.gpu);
        let t = Instant::now();
        // One step each on the GPU (milliseconds): the encoder runs as one queue of launches.
        if !pixels.is_empty() {
            progress(Phase::Vision, 0, m.cfg.vit.layers);
        }
        let visual = if pixels.is_empty() { None } else { Some(m.vision.encode(g, &m.blas, pixels, grids)?) };
        if visual.is_some() {
            g.sync()?;
        }
        timings.vision_ms = ms(t);
        let t = Instant::now();
        progress(Phase::Prefill, 0, ids.len());
        let rows = m.row_sources(ids, visual.as_ref().map_or(&[], |v| &v.row_of_atom))?;
        let params = self.step_params();
        let first = m.llm.prefill(g, &m.blas, self.s, &rows, m.vision.vte(g), visual.as_ref().map_or(0, |v| v.rows), params, cancel)?;
        timings.prefill_ms = ms(t);
        Ok(first.map(|r| sampled(r, self.params.top_n as usize)))
    }

    fn decode(&mut self) -> Result<Sampled> {
        if self.s.len() + 1 > self.s.capacity() {
            self.s.reserve(&self.m.gpu, &self.m.llm, self.s.len() + 1)?;
        }
        let params = self.step_params();
        let r = self.m.llm.decode(&self.m.gpu, &self.m.blas, self.s, params)?;
        Ok(sampled(r, self.params.top_n as usize))
    }
}
