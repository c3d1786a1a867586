//! The Qwen3 decoder (model-spec §7) on the GPU: bf16 weights uploaded once (q|k|v and gate|up fused
//! into single matrices), prefill through cuBLASLt + the flash prefill kernel, and the decode step
//! (embedding → 28/36 layers with the GEMV kernel → lm_head → sampler) captured once as a CUDA graph
//! and replayed: the position, the next id and the sampling parameters live in device memory.
//!
//! Input rows are gathered on the device from embed_tokens, the VTE (indicators) or the visual
//! embeddings (`merge_rows`), so a prompt with images never crosses the bus as embeddings.
//!
//! NOT RUN ON A GPU YET: written without a GPU; the parity script (scripts/gpu-check.sh) is the first
//! thing to run on one. See docs/cuda.md.
use super::blas::Blas;
use super::device::{device_err, ptr, DPtr, Gpu};
use super::ops::{self, AttnDims};
use super::sampling::{self, SampleParams, SampleResult};
use crate::error::{EngineError, Result};
use crate::model::config::LlmConfig;
use crate::model::weights::WeightRef;
use cudarc::driver::{sys, CudaGraph, CudaSlice};
use std::sync::atomic::{AtomicBool, Ordering};

type Buf = CudaSlice<u16>;

pub(super) struct Layer {
    pub(super) input_norm: Buf,
    pub(super) post_norm: Buf,
    pub(super) q_norm: Buf,
    pub(super) k_norm: Buf,
    /// [(nH + 2·nKV)·128, H]: q rows, then k, then v.
    pub(super) qkv: Buf,
    /// [H, nH·128].
    pub(super) o: Buf,
    /// [2I, H]: gate rows, then up.
    pub(super) gate_up: Buf,
    /// [H, I].
    pub(super) down: Buf,
}

pub struct CudaQwen3 {
    pub(super) cfg: LlmConfig,
    pub(super) embed: Buf,
    pub(super) lm_head: Option<Buf>,
    pub(super) layers: Vec<Layer>,
    pub(super) norm: Buf,
    /// [head_dim/2] f32: 1/θ^(2j/head_dim), as the CPU twin computes it.
    pub(super) inv_freq: CudaSlice<f32>,
}

/// Bytes of device memory a session's KV cache of `positions` needs (K and V, bf16).
pub fn kv_bytes(c: &LlmConfig, positions: usize) -> u64 {
    (2 * c.layers * c.kv_heads * c.head_dim * positions * 2) as u64
}

/// Bytes of the decoder's weights on the device (bf16).
pub fn weight_bytes(c: &LlmConfig) -> u64 {
    2 * crate::model::ovis::llm_params(c)
}

/// Bytes of one session's working buffers besides its KV cache (activations of a prefill chunk,
/// logits, sampler state, decode-attention partials).
pub fn session_work_bytes(c: &LlmConfig) -> u64 {
    let (r, h, qd, kvd, i) = (PREFILL_ROWS, c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim, c.intermediate);
    (2 * r * (4 * h + qd + 2 * kvd + 2 * qd + 3 * i) + 4 * c.vocab + 4 * c.vocab + c.vocab + 4 * c.heads * DECODE_SPLITS * (c.head_dim + 2) + 8 * r + 4096) as u64
}

impl CudaQwen3 {
    /// Uploads the decoder's weights (`get`: full tensor name, shape → bf16 tensor, checked), q|k|v and
    /// gate|up fused. The caller has checked that they fit (`weight_bytes`).
    pub fn upload(gpu: &Gpu, cfg: &LlmConfig, mut get: impl FnMut(&str, &[usize]) -> Result<WeightRef>) -> Result<CudaQwen3> {
        super::ops::check_llm_head_dim(cfg.head_dim)?;
        let hd = cfg.head_dim;
        let (h, qd, kvd, i, v) = (cfg.hidden, cfg.heads * hd, cfg.kv_heads * hd, cfg.intermediate, cfg.vocab);
        let mut fused = |parts: &[(String, Vec<usize>)]| gpu.upload_tensors(parts, &mut get);
        let one = |n: String, s: Vec<usize>| vec![(n, s)];
        let embed = fused(&one("llm.model.embed_tokens.weight".into(), vec![v, h]))?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let p = format!("llm.model.layers.{l}.");
            layers.push(Layer {
                input_norm: fused(&one(format!("{p}input_layernorm.weight"), vec![h]))?,
                post_norm: fused(&one(format!("{p}post_attention_layernorm.weight"), vec![h]))?,
                q_norm: fused(&one(format!("{p}self_attn.q_norm.weight"), vec![hd]))?,
                k_norm: fused(&one(format!("{p}self_attn.k_norm.weight"), vec![hd]))?,
                qkv: fused(&[(format!("{p}self_attn.q_proj.weight"), vec![qd, h]), (format!("{p}self_attn.k_proj.weight"), vec![kvd, h]), (format!("{p}self_attn.v_proj.weight"), vec![kvd, h])])?,
                o: fused(&one(format!("{p}self_attn.o_proj.weight"), vec![h, qd]))?,
                gate_up: fused(&[(format!("{p}mlp.gate_proj.weight"), vec![i, h]), (format!("{p}mlp.up_proj.weight"), vec![i, h])])?,
                down: fused(&one(format!("{p}mlp.down_proj.weight"), vec![h, i]))?,
            });
        }
        let norm = fused(&one("llm.model.norm.weight".into(), vec![h]))?;
        let lm_head = if cfg.tie_embeddings { None } else { Some(fused(&one("llm.lm_head.weight".into(), vec![v, h]))?) };
        let inv: Vec<f32> = (0..hd / 2).map(|j| 1.0 / (cfg.rope_theta as f32).powf((2 * j) as f32 / hd as f32)).collect();
        Ok(CudaQwen3 { cfg: cfg.clone(), embed, lm_head, layers, norm, inv_freq: gpu.upload(&inv)? })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    /// Device address of embed_tokens [V, H] (a `merge_rows` table).
    pub fn embed_table(&self, g: &Gpu) -> DPtr {
        ptr(&self.embed, &g.stream)
    }

    fn dims(&self, s: &Session) -> AttnDims {
        AttnDims { heads: self.cfg.heads, kv_heads: self.cfg.kv_heads, max_ctx: s.max_ctx, head_dim: self.cfg.head_dim }
    }

    /// Runs `len` input rows already in `s.x` ([len, H] bf16) at positions s.len()..: appends their K/V,
    /// leaves the last row's logits in `s.logits`. len ≤ PREFILL_ROWS; len > 1 goes through cuBLASLt
    /// and the flash prefill kernel, len = 1 through the fused GEMV path (`forward_one`).
    fn forward(&self, g: &Gpu, blas: &Blas, s: &Session, len: usize) -> Result<()> {
        if len == 1 {
            return self.forward_one(g, s);
        }
        self.forward_rows(g, blas, s, len)
    }

    /// `forward` through cuBLASLt and the flash prefill kernel whatever `len` (1 included): what
    /// every prefill chunk runs, so that a prompt's K/V and logits do not depend on how the batch
    /// scheduler cut it into chunks. (A one-row chunk through `forward_one` would differ at bf16's
    /// resolution: the decode attention keeps its probabilities in f32, the tensor-core prefill
    /// attention rounds them to bf16 before P·V.)
    fn forward_rows(&self, g: &Gpu, blas: &Blas, s: &Session, len: usize) -> Result<()> {
        let c = &self.cfg;
        let (h, qd, kvd, i, eps) = (c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim, c.intermediate, c.rms_eps as f32);
        let d = self.dims(s);
        let p = |b: &CudaSlice<u16>| ptr(b, &g.stream);
        let (x, a, qkv, q, att, gu, m, delta, pos) = (p(&s.x), p(&s.a), p(&s.qkv), p(&s.q), p(&s.att), p(&s.gu), p(&s.m), p(&s.delta), ptr(&s.pos, &g.stream));
        let lin = |w: u64, inp: u64, out: u64, n: usize, k: usize| blas.linear(g, inp, w, None, out, len, n, k);
        for (li, l) in self.layers.iter().enumerate() {
            let (kc, vc) = (p(&s.k[li]), p(&s.v[li]));
            // The residual add of the previous layer's MLP is fused into this layer's input norm.
            if li == 0 {
                ops::rmsnorm(g, x, p(&l.input_norm), a, len, h, eps)?;
            } else {
                ops::rmsnorm_residual(g, x, delta, p(&l.input_norm), a, len, h, eps)?;
            }
            lin(p(&l.qkv), a, qkv, qd + 2 * kvd, h)?;
            ops::qk_norm_rope(g, qkv, p(&l.q_norm), p(&l.k_norm), ptr(&self.inv_freq, &g.stream), pos, q, kc, vc, len, d, eps)?;
            ops::prefill_attention(g, q, kc, vc, att, pos, len, d)?;
            lin(p(&l.o), att, delta, h, qd)?;
            ops::rmsnorm_residual(g, x, delta, p(&l.post_norm), a, len, h, eps)?;
            lin(p(&l.gate_up), a, gu, 2 * i, h)?;
            ops::swiglu(g, gu, m, len, i)?;
            lin(p(&l.down), m, delta, h, i)?;
        }
        // Only the last row needs the final residual add, norm and lm_head.
        let last = (len - 1) * h * 2;
        ops::add(g, x + last as u64, delta + last as u64, h)?;
        ops::rmsnorm(g, x + last as u64, p(&self.norm), a, 1, h, eps)?;
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        ops::gemv_logits(g, p(head), a, ptr(&s.logits, &g.stream), c.vocab, h)?;
        ops::advance_position(g, pos, len as i32)
    }

    /// `forward` for one row (the decode step, captured in the graph): each norm is fused into the
    /// projection after it and SwiGLU into the down projection (gemv.cu), so a layer is 7 launches.
    /// The residual stream alternates between `s.x` and `s.a`, because a fused kernel's block 0 writes
    /// the updated residual while the other blocks still read the old one.
    fn forward_one(&self, g: &Gpu, s: &Session) -> Result<()> {
        let c = &self.cfg;
        let (h, qd, kvd, i, eps) = (c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim, c.intermediate, c.rms_eps as f32);
        let d = self.dims(s);
        let p = |b: &CudaSlice<u16>| ptr(b, &g.stream);
        let (qkv, q, att, gu, delta, pos) = (p(&s.qkv), p(&s.q), p(&s.att), p(&s.gu), p(&s.delta), ptr(&s.pos, &g.stream));
        let (mut cur, mut spare) = (p(&s.x), p(&s.a));
        // Whether `delta` (the previous sublayer's output) is still to be added to the residual `cur`.
        let mut pending = false;
        for (li, l) in self.layers.iter().enumerate() {
            let (kc, vc) = (p(&s.k[li]), p(&s.v[li]));
            if pending {
                ops::gemv_rmsnorm(g, p(&l.qkv), cur, delta, p(&l.input_norm), spare, qkv, qd + 2 * kvd, h, eps)?;
                std::mem::swap(&mut cur, &mut spare);
            } else {
                ops::gemv_rmsnorm(g, p(&l.qkv), cur, 0, p(&l.input_norm), 0, qkv, qd + 2 * kvd, h, eps)?;
            }
            ops::qk_norm_rope(g, qkv, p(&l.q_norm), p(&l.k_norm), ptr(&self.inv_freq, &g.stream), pos, q, kc, vc, 1, d, eps)?;
            ops::decode_attention(g, q, kc, vc, pos, ptr(&s.part_o, &g.stream), ptr(&s.part_ml, &g.stream), att, d, DECODE_SPLITS)?;
            ops::gemv(g, p(&l.o), att, 0, delta, h, qd)?;
            ops::gemv_rmsnorm(g, p(&l.gate_up), cur, delta, p(&l.post_norm), spare, gu, 2 * i, h, eps)?;
            std::mem::swap(&mut cur, &mut spare);
            ops::gemv_swiglu(g, p(&l.down), gu, delta, h, i)?;
            pending = true;
        }
        // The final norm stays its own launch: fused, each of the lm_head's V/8 blocks would redo it.
        if pending {
            ops::rmsnorm_residual(g, cur, delta, p(&self.norm), spare, 1, h, eps)?;
        } else {
            ops::rmsnorm(g, cur, p(&self.norm), spare, 1, h, eps)?;
        }
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        ops::gemv_logits(g, p(head), spare, ptr(&s.logits, &g.stream), c.vocab, h)?;
        ops::advance_position(g, pos, 1)
    }

    /// Prefills the rows `src` ({table, row} per position: 0 = embed_tokens, 1 = the VTE `vte`, 2 = the
    /// visual embeddings `visual`; see embedding.cu) after the session's cached positions, in chunks of
    /// PREFILL_ROWS, then samples the first token on the device. None when `cancel` is set between chunks.
    pub fn prefill(&self, g: &Gpu, blas: &Blas, s: &mut Session, src: &[[i32; 2]], vte: DPtr, visual: DPtr, params: SampleParams, cancel: &AtomicBool) -> Result<Option<SampleResult>> {
        if src.is_empty() {
            return Err(EngineError::BadRequest("a prefill needs at least one position".into()));
        }
        if s.len + src.len() > s.max_ctx {
            return Err(EngineError::Internal(format!("{} cached + {} new positions exceed the session's reserved {} (reserve first)", s.len, src.len(), s.max_ctx)));
        }
        for chunk in src.chunks(PREFILL_ROWS) {
            if cancel.load(Ordering::SeqCst) {
                return Ok(None);
            }
            self.prefill_rows(g, blas, s, chunk, vte, visual)?;
        }
        self.sample_eager(g, s, params).map(Some)
    }

    /// Prefills `src` (as `prefill`, at most PREFILL_ROWS rows) without sampling: one chunk of a
    /// prompt that the batch scheduler spreads over several steps. The last chunk's logits are
    /// left in `s.logits` for `sample_prefilled`.
    pub fn prefill_rows(&self, g: &Gpu, blas: &Blas, s: &mut Session, src: &[[i32; 2]], vte: DPtr, visual: DPtr) -> Result<()> {
        if src.is_empty() || src.len() > PREFILL_ROWS {
            return Err(EngineError::Internal(format!("a prefill chunk takes 1 to {PREFILL_ROWS} rows, not {}", src.len())));
        }
        if s.len + src.len() > s.max_ctx {
            return Err(EngineError::Internal(format!("{} cached + {} new positions exceed the session's reserved {} (reserve first)", s.len, src.len(), s.max_ctx)));
        }
        s.sync_device(g)?;
        let flat: Vec<i32> = src.iter().flatten().copied().collect();
        g.upload_at(&flat, &mut s.src, 0)?;
        let (h, embed) = (self.cfg.hidden, self.embed_table(g));
        ops::merge_rows(g, ptr(&s.src, &g.stream), embed, vte, visual, ptr(&s.x, &g.stream), src.len(), h)?;
        self.forward_rows(g, blas, s, src.len())?;
        s.len += src.len();
        Ok(())
    }

    /// Samples the first token after a prompt prefilled by `prefill_rows` (what `prefill` does last).
    pub fn sample_prefilled(&self, g: &Gpu, s: &mut Session, params: SampleParams) -> Result<SampleResult> {
        self.sample_eager(g, s, params)
    }

    /// One decode step for the id the last sample wrote on the device: replays the captured graph
    /// (capturing it on the first call), returns the next sample.
    pub fn decode(&self, g: &Gpu, blas: &Blas, s: &mut Session, params: SampleParams) -> Result<SampleResult> {
        if s.len + 1 > s.max_ctx {
            return Err(EngineError::Internal(format!("the session holds {} positions, all it reserved (reserve first)", s.max_ctx)));
        }
        s.sync_device(g)?;
        g.upload_at(&[params], &mut s.params, 0)?;
        if s.graph.is_none() {
            g.stream.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL).map_err(|e| device_err("starting the decode graph capture", e))?;
            let body = self.decode_body(g, blas, s);
            let graph = g.stream.end_capture(sys::CUgraphInstantiate_flags(0));
            // A launch that failed inside the capture invalidates it: its own error is the one to report.
            body?;
            let graph = graph.map_err(|e| device_err("capturing the decode graph", e))?;
            s.graph = Some(graph.ok_or_else(|| EngineError::Device("the decode graph capture recorded nothing".into()))?);
        }
        s.graph.as_ref().expect("captured above").launch().map_err(|e| device_err("replaying the decode graph", e))?;
        s.len += 1;
        Ok(g.download(&s.result)?[0])
    }

    fn decode_body(&self, g: &Gpu, blas: &Blas, s: &Session) -> Result<()> {
        ops::embedding_gather(g, ptr(&s.next_id, &g.stream), self.embed_table(g), ptr(&s.x, &g.stream), 1, self.cfg.hidden, self.cfg.vocab)?;
        self.forward(g, blas, s, 1)?;
        self.sample_kernels(g, s)
    }

    fn sample_kernels(&self, g: &Gpu, s: &Session) -> Result<()> {
        let (logits, seen, z, params) = (ptr(&s.logits, &g.stream), ptr(&s.seen, &g.stream), ptr(&s.z, &g.stream), ptr(&s.params, &g.stream));
        sampling::logits_penalty(g, logits, seen, z, params, self.cfg.vocab)?;
        sampling::sample(g, z, params, ptr(&s.result, &g.stream), seen, ptr(&s.next_id, &g.stream))
    }

    fn sample_eager(&self, g: &Gpu, s: &mut Session, params: SampleParams) -> Result<SampleResult> {
        g.upload_at(&[params], &mut s.params, 0)?;
        self.sample_kernels(g, s)?;
        Ok(g.download(&s.result)?[0])
    }

    /// The f32 logits of the last forward's last position (parity tests and benchmarks).
    pub fn last_logits(&self, g: &Gpu, s: &Session) -> Result<Vec<f32>> {
        g.sync()?;
        g.download(&s.logits)
    }
}

/// Rows per prefill forward call (bounds the activation buffers).
pub const PREFILL_ROWS: usize = 512;

/// Key splits of the decode attention: about two blocks per SM over the kv heads on an H100/H200, and
/// fixed so a captured decode graph serves every context length.
pub const DECODE_SPLITS: usize = 32;

/// Positions a session's KV cache grows by at least (its device memory is reserved in steps).
const KV_STEP: usize = 1024;

/// A session's K/V saved in host memory ([kv_heads, len, head_dim] bf16 bits per layer), while its
/// device memory is freed for others (`Session::offload`, `Session::restore`).
pub struct HostKv {
    pub len: usize,
    k: Vec<Vec<u16>>,
    v: Vec<Vec<u16>>,
}

impl HostKv {
    pub fn bytes(&self) -> usize {
        2 * self.k.iter().chain(&self.v).map(Vec::len).sum::<usize>()
    }
}

/// One conversation's device state: KV cache, the decode graph and its fixed buffers.
pub struct Session {
    pub(super) max_ctx: usize,
    pub(super) len: usize,
    pub(super) k: Vec<Buf>,
    pub(super) v: Vec<Buf>,
    /// Device position (= len), read by the rope and attention kernels, advanced by the graph.
    pub(super) pos: CudaSlice<i32>,
    pub(super) next_id: CudaSlice<i32>,
    /// merge_rows sources of one prefill chunk: [PREFILL_ROWS] int2.
    pub(super) src: CudaSlice<i32>,
    pub(super) x: Buf,
    pub(super) a: Buf,
    pub(super) qkv: Buf,
    pub(super) q: Buf,
    pub(super) att: Buf,
    pub(super) gu: Buf,
    pub(super) m: Buf,
    pub(super) delta: Buf,
    /// [V] f32: the lm_head's output, unrounded.
    pub(super) logits: CudaSlice<f32>,
    pub(super) z: CudaSlice<f32>,
    pub(super) seen: CudaSlice<u8>,
    pub(super) params: CudaSlice<SampleParams>,
    pub(super) result: CudaSlice<SampleResult>,
    pub(super) part_o: CudaSlice<f32>,
    pub(super) part_ml: CudaSlice<f32>,
    pub(super) graph: Option<CudaGraph>,
    /// Set by a batched decode step (backend/cuda/batch.rs), which keeps the position and the next id
    /// in its own tables: the id to write to `next_id` (and `len` to `pos`) before this session's own
    /// prefill or decode graph runs again.
    pub(super) stale_next_id: Option<i32>,
}

// SAFETY: a session is used by one thread at a time (the engine's worker owns every session); the
// graph handles inside are plain driver objects that CUDA allows to be used from any thread.
unsafe impl Send for Session {}

impl Session {
    /// A fresh session with room for `positions` (it grows on `reserve`).
    pub fn new(g: &Gpu, model: &CudaQwen3, positions: usize) -> Result<Session> {
        let c = &model.cfg;
        let max_ctx = positions.clamp(1, c.max_positions);
        g.check_fits(kv_bytes(c, max_ctx) + session_work_bytes(c), &format!("a conversation's KV cache of {max_ctx} positions and its buffers"))?;
        let (r, h, qd, kvd, i) = (PREFILL_ROWS, c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim, c.intermediate);
        let kv = |_| g.zeros::<u16>(kvd * max_ctx);
        Ok(Session {
            max_ctx,
            len: 0,
            k: (0..c.layers).map(kv).collect::<Result<_>>()?,
            v: (0..c.layers).map(kv).collect::<Result<_>>()?,
            pos: g.zeros(1)?,
            next_id: g.zeros(1)?,
            src: g.zeros(2 * r)?,
            x: g.zeros(r * h)?,
            a: g.zeros(r * h)?,
            qkv: g.zeros(r * (qd + 2 * kvd))?,
            q: g.zeros(r * qd)?,
            att: g.zeros(r * qd)?,
            gu: g.zeros(r * 2 * i)?,
            m: g.zeros(r * i)?,
            delta: g.zeros(r * h)?,
            logits: g.zeros(c.vocab)?,
            z: g.zeros(c.vocab)?,
            seen: g.zeros(c.vocab)?,
            params: g.zeros(1)?,
            result: g.zeros(1)?,
            part_o: g.zeros(c.heads * DECODE_SPLITS * c.head_dim)?,
            part_ml: g.zeros(c.heads * DECODE_SPLITS * 2)?,
            graph: None,
            stale_next_id: None,
        })
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the KV cache has room for.
    pub fn capacity(&self) -> usize {
        self.max_ctx
    }

    /// Grows the KV cache to hold at least `positions` (capped at the model's window), keeping the
    /// cached positions; the decode graph is captured again on the next step (its pointers change).
    ///
    /// All or nothing: the decode graph goes first (it holds the old buffers' addresses), then every
    /// layer's new K and V buffer is allocated and filled, and only then are they swapped in. When an
    /// allocation or copy fails (out of device memory), the new buffers are freed and the session is as
    /// it was (same capacity, same cached positions), so the request fails alone with `device_error`
    /// and the conversation can go on. The cost: the old and the new cache live side by side for a
    /// moment, which `check_fits` accounts for.
    pub fn reserve(&mut self, g: &Gpu, model: &CudaQwen3, positions: usize) -> Result<()> {
        let c = &model.cfg;
        if positions <= self.max_ctx {
            return Ok(());
        }
        let new_ctx = positions.max(2 * self.max_ctx).next_multiple_of(KV_STEP).min(c.max_positions).max(positions);
        let what = format!("growing a conversation's KV cache from {} to {new_ctx} positions", self.max_ctx);
        g.check_fits(kv_bytes(c, new_ctx), &what)?;
        self.graph = None;
        let (row, old_ctx, len) = (c.head_dim, self.max_ctx, self.len);
        let grow = |old: &Buf| -> Result<Buf> {
            let mut new = g.zeros::<u16>(c.kv_heads * new_ctx * row)?;
            // Nothing to copy from an empty cache (and cudarc rejects zero-length copies).
            for head in (0..c.kv_heads).filter(|_| len > 0) {
                let from = old.slice(head * old_ctx * row..(head * old_ctx + len) * row);
                let mut to = new.slice_mut(head * new_ctx * row..(head * new_ctx + len) * row);
                g.stream.memcpy_dtod(&from, &mut to).map_err(|e| device_err("copying the KV cache", e))?;
            }
            Ok(new)
        };
        let fresh = || -> Result<(Vec<Buf>, Vec<Buf>)> { Ok((self.k.iter().map(grow).collect::<Result<_>>()?, self.v.iter().map(grow).collect::<Result<_>>()?)) };
        let (k, v) = fresh().map_err(|e| match e {
            EngineError::Device(m) => EngineError::Device(format!("{what} failed, the conversation is unchanged: {m}")),
            other => other,
        })?;
        // The old buffers are freed here, stream-ordered after the copies queued above.
        self.k = k;
        self.v = v;
        self.max_ctx = new_ctx;
        Ok(())
    }

    /// Bytes of device memory this session holds (its KV cache as reserved, and its buffers).
    pub fn device_bytes(&self, model: &CudaQwen3) -> u64 {
        kv_bytes(&model.cfg, self.max_ctx) + session_work_bytes(&model.cfg)
    }

    /// Copies the cached positions' K/V to host memory (what `restore` rebuilds the session from), so
    /// that the session's device memory can be freed under the KV budget.
    pub fn offload(&self, g: &Gpu, model: &CudaQwen3) -> Result<HostKv> {
        let c = &model.cfg;
        let (row, len) = (c.head_dim, self.len);
        let copy = |bufs: &[Buf]| -> Result<Vec<Vec<u16>>> {
            bufs.iter()
                .map(|b| {
                    let mut host = vec![0u16; c.kv_heads * len * row];
                    for head in (0..c.kv_heads).filter(|_| len > 0) {
                        let from = b.slice(head * self.max_ctx * row..(head * self.max_ctx + len) * row);
                        g.stream.memcpy_dtoh(&from, &mut host[head * len * row..(head + 1) * len * row]).map_err(|e| device_err("copying the KV cache to host memory", e))?;
                    }
                    Ok(host)
                })
                .collect()
        };
        let (k, v) = (copy(&self.k)?, copy(&self.v)?);
        g.sync()?;
        Ok(HostKv { len, k, v })
    }

    /// A session holding the positions `host` saved (`offload`), with room for `positions`.
    pub fn restore(g: &Gpu, model: &CudaQwen3, host: &HostKv, positions: usize) -> Result<Session> {
        let c = &model.cfg;
        let mut s = Session::new(g, model, positions.max(host.len))?;
        let (row, len) = (c.head_dim, host.len);
        for (bufs, saved) in [(&mut s.k, &host.k), (&mut s.v, &host.v)] {
            for (b, h) in bufs.iter_mut().zip(saved) {
                for head in (0..c.kv_heads).filter(|_| len > 0) {
                    g.upload_at(&h[head * len * row..(head + 1) * len * row], b, head * s.max_ctx * row)?;
                }
            }
        }
        s.len = len;
        g.upload_at(&[len as i32], &mut s.pos, 0)?;
        Ok(s)
    }

    /// Writes the position and next id a batched step left on the host back to this session's device
    /// scalars (see `stale_next_id`).
    fn sync_device(&mut self, g: &Gpu) -> Result<()> {
        if let Some(id) = self.stale_next_id {
            g.upload_at(&[self.len as i32], &mut self.pos, 0)?;
            g.upload_at(&[id], &mut self.next_id, 0)?;
            self.stale_next_id = None;
        }
        Ok(())
    }

    /// Starts a new request on the same cache prefix: keeps positions 0..keep, forgets the
    /// repetition-penalty history. The graph stays valid (it reads the position from the device).
    pub fn restart(&mut self, g: &Gpu, keep: usize) -> Result<()> {
        self.len = keep.min(self.len);
        g.upload_at(&[self.len as i32], &mut self.pos, 0)?;
        g.stream.memset_zeros(&mut self.seen).map_err(|e| device_err("clearing the penalty history", e))
    }
}
