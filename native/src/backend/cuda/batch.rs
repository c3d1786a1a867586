//! Batched decode on the GPU (continuous batching, issue 10 item 2): one step decodes one token for
//! each of up to `MAX_ROWS` running requests, reading every weight once for all of them
//! (`gemv_rows_*`), each request attending over its own KV cache and sampling with its own parameters.
//!
//! Per-request caches: an array of cache pointers, not a paged layout. Each session keeps its own
//! contiguous K/V buffers per layer (as the single-request path does, so a session moves between the
//! two paths freely and nothing is copied when a request joins or leaves a batch). Before each step
//! the host writes one small table: per row its position, its caches' capacity, its K and V address
//! per layer, its `seen` history address, the id to embed and its sampling parameters. The kernels
//! read everything row-specific through that table, so the CUDA graph captured for a batch-size
//! bucket (1, 2, 4, 8, 16) holds only this decoder's own buffers and the weights: it stays valid when
//! rows join, leave or a session's cache grows (moves), and is captured once per bucket for the
//! model's lifetime. Rows past the live count in a bucket point at a one-position dummy cache.
//!
//! Row r's arithmetic is that of the single-request decode step, kernel for kernel (the fused GEMVs of
//! `forward_one` equal the unfused chain used here bit for bit; tests/emu/run.py checks both), so a
//! request's tokens and logits do not depend on the rows beside it.
//!
//! NOT RUN ON A GPU YET: verified on the fake GPU (tests/cuda_model_parity.rs) against the
//! single-request path and the CPU; scripts/gpu-check.sh runs it on a GPU.
use super::device::{device_err, ptr, DPtr, Gpu};
use super::ops::{self, AttnDims, RowTables, MAX_ROWS};
use super::qwen3::{CudaQwen3, Session, DECODE_SPLITS};
use super::sampling::{self, SampleParams, SampleResult};
use crate::error::{EngineError, Result};
use cudarc::driver::{sys, CudaGraph, CudaSlice};

/// Batch sizes a decode graph is captured for; a step of n rows replays the smallest bucket ≥ n.
pub const BUCKETS: [usize; 5] = [1, 2, 4, 8, 16];

type Buf = CudaSlice<u16>;

/// One running request of a batched step.
pub struct BatchRow<'a> {
    pub session: &'a mut Session,
    /// The id sampled last (the input of this step).
    pub next_id: i32,
    pub params: SampleParams,
}

/// Word offsets (u64) of the per-step row table, laid out for MAX_ROWS rows whatever the bucket.
struct Layout {
    layers: usize,
}

impl Layout {
    const R: usize = MAX_ROWS;
    /// K addresses of layer `li` (R words), then its V addresses (R words).
    fn k(&self, li: usize) -> usize {
        2 * li * Self::R
    }
    fn v(&self, li: usize) -> usize {
        self.k(li) + Self::R
    }
    fn seen(&self) -> usize {
        2 * self.layers * Self::R
    }
    /// Three i32 arrays [R] (positions, capacities, next ids), two per word.
    fn pos(&self) -> usize {
        self.seen() + Self::R
    }
    fn max_ctx(&self) -> usize {
        self.pos() + Self::R / 2
    }
    fn next_id(&self) -> usize {
        self.max_ctx() + Self::R / 2
    }
    /// SampleParams [R], 4 words each.
    fn params(&self) -> usize {
        self.next_id() + Self::R / 2
    }
    fn words(&self) -> usize {
        self.params() + 4 * Self::R
    }
}

/// The batch's device buffers (sized for MAX_ROWS) and its captured graphs.
pub struct BatchDecoder {
    layout: Layout,
    table: CudaSlice<u64>,
    x: Buf,
    a: Buf,
    qkv: Buf,
    q: Buf,
    att: Buf,
    gu: Buf,
    m: Buf,
    delta: Buf,
    /// [R, V] f32: the lm_head's output, unrounded; z: after the repetition penalty.
    logits: CudaSlice<f32>,
    z: CudaSlice<f32>,
    part_o: CudaSlice<f32>,
    part_ml: CudaSlice<f32>,
    result: CudaSlice<SampleResult>,
    /// What padding rows point at: a one-position cache per layer and a history.
    dummy_k: Vec<Buf>,
    dummy_v: Vec<Buf>,
    dummy_seen: CudaSlice<u8>,
    graphs: [Option<CudaGraph>; BUCKETS.len()],
    /// Rows of the last step (for `logits`).
    last_rows: usize,
}

// SAFETY: as for `Session`: used by one thread at a time (the engine's worker); the graph handles are
// plain driver objects usable from any thread.
unsafe impl Send for BatchDecoder {}

/// Bytes of device memory a `BatchDecoder` needs for `model`.
pub fn work_bytes(model: &CudaQwen3) -> u64 {
    let c = model.config();
    let (r, h, qd, kvd, i, v) = (MAX_ROWS, c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim, c.intermediate, c.vocab);
    let bf16 = 2 * r * (4 * h + qd + 2 * kvd + 2 * qd + 3 * i);
    let f32s = 4 * (2 * r * v + r * c.heads * DECODE_SPLITS * (c.head_dim + 2));
    (bf16 + f32s + 8 * Layout { layers: c.layers }.words() + r * std::mem::size_of::<SampleResult>() + 2 * 2 * c.layers * kvd + v) as u64
}

impl BatchDecoder {
    pub fn new(g: &Gpu, model: &CudaQwen3) -> Result<BatchDecoder> {
        let c = model.config();
        g.check_fits(work_bytes(model), "the batched decode step's buffers")?;
        let (r, h, qd, kvd, i, v) = (MAX_ROWS, c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim, c.intermediate, c.vocab);
        let layout = Layout { layers: c.layers };
        Ok(BatchDecoder {
            table: g.zeros(layout.words())?,
            layout,
            x: g.zeros(r * h)?,
            a: g.zeros(r * h)?,
            qkv: g.zeros(r * (qd + 2 * kvd))?,
            q: g.zeros(r * qd)?,
            att: g.zeros(r * qd)?,
            gu: g.zeros(r * 2 * i)?,
            m: g.zeros(r * i)?,
            delta: g.zeros(r * h)?,
            logits: g.zeros(r * v)?,
            z: g.zeros(r * v)?,
            part_o: g.zeros(r * c.heads * DECODE_SPLITS * c.head_dim)?,
            part_ml: g.zeros(r * c.heads * DECODE_SPLITS * 2)?,
            result: g.zeros(r)?,
            dummy_k: (0..c.layers).map(|_| g.zeros(kvd)).collect::<Result<_>>()?,
            dummy_v: (0..c.layers).map(|_| g.zeros(kvd)).collect::<Result<_>>()?,
            dummy_seen: g.zeros(v)?,
            graphs: Default::default(),
            last_rows: 0,
        })
    }

    /// The bucket (index into BUCKETS) a step of `n` rows runs in.
    pub fn bucket(n: usize) -> Option<usize> {
        BUCKETS.iter().position(|&b| b >= n)
    }

    /// Graphs captured so far, by bucket size (tests, benchmarks).
    pub fn captured(&self) -> Vec<usize> {
        BUCKETS.iter().zip(&self.graphs).filter(|(_, g)| g.is_some()).map(|(&b, _)| b).collect()
    }

    /// One decode step for every row: embeds each row's `next_id` at its session's next position,
    /// appends its K/V to its own cache, and samples its next token with its own parameters. Returns
    /// the results in row order; each session's length grows by one. Every session must have room for
    /// one more position (`Session::reserve` first).
    pub fn step(&mut self, g: &Gpu, model: &CudaQwen3, rows: &mut [BatchRow<'_>]) -> Result<Vec<SampleResult>> {
        let n = rows.len();
        let Some(bucket) = Self::bucket(n).filter(|_| n > 0) else {
            return Err(EngineError::Internal(format!("a batched decode step takes 1 to {MAX_ROWS} rows, not {n}")));
        };
        let c = model.config();
        for r in rows.iter() {
            if r.session.len + 1 > r.session.max_ctx {
                return Err(EngineError::Internal(format!("a session holds {} positions, all it reserved (reserve first)", r.session.max_ctx)));
            }
            if r.next_id < 0 || r.next_id as usize >= c.vocab {
                return Err(EngineError::Internal(format!("batched decode: token id {} is outside the vocabulary", r.next_id)));
            }
        }
        g.upload_at(&self.table_for(g, c.vocab, rows), &mut self.table, 0)?;
        let b = BUCKETS[bucket];
        if self.graphs[bucket].is_none() {
            g.stream.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL).map_err(|e| device_err("starting a batched decode graph capture", e))?;
            let body = self.body(g, model, b);
            let graph = g.stream.end_capture(sys::CUgraphInstantiate_flags(0));
            // A launch that failed inside the capture invalidates it: its own error is the one to report.
            body?;
            let graph = graph.map_err(|e| device_err("capturing a batched decode graph", e))?;
            self.graphs[bucket] = Some(graph.ok_or_else(|| EngineError::Device("the batched decode graph capture recorded nothing".into()))?);
        }
        self.graphs[bucket].as_ref().expect("captured above").launch().map_err(|e| device_err("replaying a batched decode graph", e))?;
        let results = g.download(&self.result)?;
        self.last_rows = n;
        for (r, res) in rows.iter_mut().zip(&results) {
            r.session.len += 1;
            r.session.stale_next_id = Some(res.id);
        }
        Ok(results[..n].to_vec())
    }

    /// The f32 logits [V] of row `row` of the last step (parity tests and benchmarks).
    pub fn logits(&self, g: &Gpu, row: usize, vocab: usize) -> Result<Vec<f32>> {
        if row >= self.last_rows {
            return Err(EngineError::Internal(format!("the last batched step had {} rows, not {}", self.last_rows, row + 1)));
        }
        let all = g.download(&self.logits)?;
        Ok(all[row * vocab..(row + 1) * vocab].to_vec())
    }

    /// The row table of a step (see `Layout`); padding rows get the dummy cache at position 0.
    fn table_for(&self, g: &Gpu, vocab: usize, rows: &[BatchRow<'_>]) -> Vec<u64> {
        let l = &self.layout;
        let mut t = vec![0u64; l.words()];
        let mut ints = [[0i32; MAX_ROWS]; 3]; // pos, max_ctx, next_id
        let mut params = [SampleParams { temperature: 0.0, top_k: 0, top_p: 1.0, rep_penalty: 1.0, u: 0.0, top_n: 0, vocab: vocab as i32 }; MAX_ROWS];
        for r in 0..MAX_ROWS {
            let row = rows.get(r);
            for li in 0..l.layers {
                let (k, v) = match row {
                    Some(x) => (&x.session.k[li], &x.session.v[li]),
                    None => (&self.dummy_k[li], &self.dummy_v[li]),
                };
                t[l.k(li) + r] = ptr(k, &g.stream);
                t[l.v(li) + r] = ptr(v, &g.stream);
            }
            t[l.seen() + r] = match row {
                Some(x) => ptr(&x.session.seen, &g.stream),
                None => ptr(&self.dummy_seen, &g.stream),
            };
            if let Some(x) = row {
                ints[0][r] = x.session.len as i32;
                ints[1][r] = x.session.max_ctx as i32;
                ints[2][r] = x.next_id;
                params[r] = x.params;
            } else {
                ints[1][r] = 1;
            }
        }
        for (a, at) in ints.iter().zip([l.pos(), l.max_ctx(), l.next_id()]) {
            for (w, pair) in a.chunks(2).enumerate() {
                t[at + w] = (pair[0] as u32 as u64) | ((pair[1] as u32 as u64) << 32);
            }
        }
        for (r, p) in params.iter().enumerate() {
            // SAFETY: SampleParams is 32 bytes of plain data with C layout (sampling.rs checks it).
            let words: [u64; 4] = unsafe { std::mem::transmute(*p) };
            t[l.params() + 4 * r..l.params() + 4 * r + 4].copy_from_slice(&words);
        }
        t
    }

    /// The step for `b` rows (captured into the bucket's graph): the kernels of `forward_one`, unfused,
    /// over [b, ·] activations.
    fn body(&self, g: &Gpu, model: &CudaQwen3, b: usize) -> Result<()> {
        let c = model.config();
        let (h, qd, kvd, i, v, eps) = (c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim, c.intermediate, c.vocab, c.rms_eps as f32);
        let p = |x: &Buf| ptr(x, &g.stream);
        let l = &self.layout;
        let base = ptr(&self.table, &g.stream);
        let at = |word: usize| -> DPtr { base + 8 * word as u64 };
        let d = AttnDims { heads: c.heads, kv_heads: c.kv_heads, max_ctx: 0, head_dim: c.head_dim };
        let (x, a, qkv, q, att, gu, m, delta) = (p(&self.x), p(&self.a), p(&self.qkv), p(&self.q), p(&self.att), p(&self.gu), p(&self.m), p(&self.delta));
        ops::embedding_gather(g, at(l.next_id()), model.embed_table(g), x, b, h, v)?;
        for (li, w) in model.layers.iter().enumerate() {
            let t = RowTables { pos: at(l.pos()), max_ctx: at(l.max_ctx()), k: at(l.k(li)), v: at(l.v(li)) };
            if li == 0 {
                ops::rmsnorm(g, x, p(&w.input_norm), a, b, h, eps)?;
            } else {
                ops::rmsnorm_residual(g, x, delta, p(&w.input_norm), a, b, h, eps)?;
            }
            ops::gemv_rows(g, p(&w.qkv), a, qkv, qd + 2 * kvd, h, b)?;
            ops::qk_norm_rope_rows(g, qkv, p(&w.q_norm), p(&w.k_norm), ptr(&model.inv_freq, &g.stream), q, t, b, d, eps)?;
            ops::decode_attention_rows(g, q, t, ptr(&self.part_o, &g.stream), ptr(&self.part_ml, &g.stream), att, b, d, DECODE_SPLITS)?;
            ops::gemv_rows(g, p(&w.o), att, delta, h, qd, b)?;
            ops::rmsnorm_residual(g, x, delta, p(&w.post_norm), a, b, h, eps)?;
            ops::gemv_rows(g, p(&w.gate_up), a, gu, 2 * i, h, b)?;
            ops::swiglu(g, gu, m, b, i)?;
            ops::gemv_rows(g, p(&w.down), m, delta, h, i, b)?;
        }
        ops::rmsnorm_residual(g, x, delta, p(&model.norm), a, b, h, eps)?;
        let head = model.lm_head.as_ref().unwrap_or(&model.embed);
        let (logits, z) = (ptr(&self.logits, &g.stream), ptr(&self.z, &g.stream));
        ops::gemv_rows_logits(g, p(head), a, logits, v, h, b)?;
        sampling::logits_penalty_rows(g, logits, at(l.seen()), z, at(l.params()), v, b)?;
        sampling::sample_rows(g, z, at(l.params()), ptr(&self.result, &g.stream), at(l.seen()), at(l.next_id()), v, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_row_count() {
        assert_eq!(BatchDecoder::bucket(1), Some(0));
        assert_eq!(BatchDecoder::bucket(3), Some(2));
        assert_eq!(BatchDecoder::bucket(16), Some(4));
        assert_eq!(BatchDecoder::bucket(17), None);
        assert_eq!(*BUCKETS.last().unwrap(), MAX_ROWS);
    }

    #[test]
    fn table_regions_do_not_overlap() {
        let l = Layout { layers: 3 };
        assert_eq!(l.v(2) + MAX_ROWS, l.seen());
        assert!(l.pos() >= l.seen() + MAX_ROWS && l.params() == l.next_id() + MAX_ROWS / 2);
        assert_eq!(l.words(), 2 * 3 * 16 + 16 + 3 * 8 + 4 * 16);
    }
}
