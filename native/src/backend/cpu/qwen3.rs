//! The Qwen3 decoder of Ovis2.5 (model-spec.md §7) on the CPU backend: bf16 weights (memory-mapped or
//! synthetic), float32 activations and arithmetic throughout, as the fixture's float32 reference.
use crate::backend::cpu::attention::{causal_attention_rows, AttnRow, AttnShape};
use crate::backend::cpu::gemv;
use crate::backend::cpu::linear::Linear;
use crate::backend::cpu::quant::WeightMode;
use crate::backend::cpu::norm::{add_inplace, rms_norm, rms_norm_inplace, swiglu};
use crate::backend::cpu::profile::{gemm_flops, time_part, Part};
use crate::backend::cpu::rope::Rope;
use crate::error::{bad_request, EngineError, Result};
use crate::generate::kv_cache::KvCache;
use crate::model::config::LlmConfig;
use crate::model::source::WeightSource;
use crate::model::synthetic::llm_tensor;
use crate::model::weights::WeightRef;

/// One decoder layer. Norm weights are tiny and widened to f32 once; matrices stay bf16 [out, in].
struct Layer {
    input_norm: Vec<f32>,
    post_norm: Vec<f32>,
    q_norm: Vec<f32>,
    k_norm: Vec<f32>,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    gate: Linear,
    up: Linear,
    down: Linear,
}

pub struct Qwen3 {
    cfg: LlmConfig,
    /// [V, H]; also the output matrix when the embeddings are tied.
    embed: WeightRef,
    /// The output layer [V, H]: lm_head, or a copy of embed when tied (`weights` bf16: the same tensor).
    head: Linear,
    weights: WeightMode,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    params: u64,
}

/// Names (prefix `llm.`, spec §1.3) and shapes of layer l's tensors, in `Layer` field order.
fn layer_tensors(c: &LlmConfig, l: usize) -> [(String, Vec<usize>); 11] {
    let p = format!("llm.model.layers.{l}.");
    let (h, qd, kvd, i, d) = (c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim, c.intermediate, c.head_dim);
    [
        (format!("{p}input_layernorm.weight"), vec![h]),
        (format!("{p}post_attention_layernorm.weight"), vec![h]),
        (format!("{p}self_attn.q_norm.weight"), vec![d]),
        (format!("{p}self_attn.k_norm.weight"), vec![d]),
        (format!("{p}self_attn.q_proj.weight"), vec![qd, h]),
        (format!("{p}self_attn.k_proj.weight"), vec![kvd, h]),
        (format!("{p}self_attn.v_proj.weight"), vec![kvd, h]),
        (format!("{p}self_attn.o_proj.weight"), vec![h, qd]),
        (format!("{p}mlp.gate_proj.weight"), vec![i, h]),
        (format!("{p}mlp.up_proj.weight"), vec![i, h]),
        (format!("{p}mlp.down_proj.weight"), vec![h, i]),
    ]
}

impl Qwen3 {
    /// Maps every decoder tensor from `src`, checking each name, dtype and shape against `cfg`.
    /// `weights`: how the linear layers are held (bf16 as stored, or quantized as each is read).
    pub fn load(cfg: &LlmConfig, src: &WeightSource, weights: WeightMode) -> Result<Qwen3> {
        Self::build(cfg, weights, |name, shape| src.get(name, shape))
    }

    /// A model of `cfg`'s shapes with random bf16 weights held in memory (benchmarks, tests):
    /// matrices uniform with standard deviation 0.02, norm weights 1 ± 0.1; reproducible from `seed`.
    pub fn synthetic(cfg: &LlmConfig, seed: u64) -> Qwen3 {
        Self::build(cfg, WeightMode::Bf16, |name, shape| Ok(llm_tensor(seed, name, shape))).expect("synthetic weights always have the configured shapes")
    }

    fn build(cfg: &LlmConfig, weights: WeightMode, mut get: impl FnMut(&str, &[usize]) -> Result<WeightRef>) -> Result<Qwen3> {
        let (v, h) = (cfg.vocab, cfg.hidden);
        let mut params = 0u64;
        let mut take = |name: &str, shape: &[usize]| -> Result<WeightRef> {
            params += shape.iter().product::<usize>() as u64;
            get(name, shape)
        };
        let embed = take("llm.model.embed_tokens.weight", &[v, h])?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let t = layer_tensors(cfg, l);
            let mut g = |i: usize| take(&t[i].0, &t[i].1);
            // Matrices are quantized (when asked) as each is read: one bf16 matrix at most is held besides.
            layers.push(Layer {
                input_norm: g(0)?.to_f32(),
                post_norm: g(1)?.to_f32(),
                q_norm: g(2)?.to_f32(),
                k_norm: g(3)?.to_f32(),
                q: Linear::new(g(4)?, weights),
                k: Linear::new(g(5)?, weights),
                v: Linear::new(g(6)?, weights),
                o: Linear::new(g(7)?, weights),
                gate: Linear::new(g(8)?, weights),
                up: Linear::new(g(9)?, weights),
                down: Linear::new(g(10)?, weights),
            });
        }
        let norm = take("llm.model.norm.weight", &[h])?.to_f32();
        // Tied (2B): logits use embed_tokens; otherwise (9B) the separate lm_head must exist.
        let head = match (cfg.tie_embeddings, weights) {
            (true, WeightMode::Bf16) => Linear::Bf16(embed.clone()),
            (true, _) => Linear::quantized_copy(&embed, weights),
            (false, _) => Linear::new(take("llm.lm_head.weight", &[v, h])?, weights),
        };
        Ok(Qwen3 { cfg: cfg.clone(), embed, head, weights, layers, norm, params })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    /// How the linear layers are held (bf16 as stored, int8, int4).
    pub fn weight_mode(&self) -> WeightMode {
        self.weights
    }

    /// Bytes of the linear layers and the output layer as held in memory.
    pub fn linear_bytes(&self) -> usize {
        let layers: usize = self.layers.iter().map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down].iter().map(|w| w.bytes()).sum::<usize>()).sum();
        layers + self.head.bytes()
    }

    /// Parameters of the decoder (embedding, layers, final norm, and lm_head when not tied).
    pub fn param_count(&self) -> u64 {
        self.params
    }

    /// Err (bad request) naming the first id ≥ vocab.
    pub fn check_ids(&self, ids: &[u32]) -> Result<()> {
        match ids.iter().find(|&&id| id as usize >= self.cfg.vocab) {
            Some(id) => Err(bad_request(format!("token id {id} is outside the vocabulary (size {})", self.cfg.vocab))),
            None => Ok(()),
        }
    }

    /// Rows of embed_tokens widened to f32: out [ids.len(), H]. Panics on an id ≥ vocab (see `check_ids`).
    pub fn embed(&self, ids: &[u32], out: &mut [f32]) {
        let h = self.cfg.hidden;
        assert_eq!(out.len(), ids.len() * h, "embed: out must be [ids, hidden]");
        let table = self.embed.data();
        for (&id, row) in ids.iter().zip(out.chunks_mut(h)) {
            let id = id as usize;
            assert!(id < self.cfg.vocab, "embed: token id {id} ≥ vocab {}", self.cfg.vocab);
            for (o, s) in row.iter_mut().zip(&table[id * h..(id + 1) * h]) {
                *o = s.to_f32();
            }
        }
    }

    /// Runs `embeds` [L, H] at positions cache.len()..cache.len()+L, appends their keys and values to
    /// `cache`, and returns the f32 logits [V] of the last position (lm_head only for that row).
    pub fn forward(&self, cache: &mut KvCache, embeds: &[f32]) -> Result<Vec<f32>> {
        let mut rows = [BatchRow { cache, embeds }];
        Ok(self.forward_batch(&mut rows)?.pop().expect("one row in, one logits vector out"))
    }

    /// One step for several sequences at once (continuous batching): row r runs its `embeds` [L_r, H]
    /// after its own cache's positions. The projections and the MLP see all Σ L_r positions as one
    /// matrix, so each weight is read once per step for every sequence; attention and rotary
    /// positions are per row, over the row's own cache. Returns each row's last-position logits [V],
    /// in row order. The rows' results do not depend on each other (each output row of a matrix
    /// product is its own dot products; only the kernel chosen for the row count differs).
    pub fn forward_batch(&self, rows: &mut [BatchRow<'_>]) -> Result<Vec<Vec<f32>>> {
        let c = &self.cfg;
        let h = c.hidden;
        for r in rows.iter() {
            if r.embeds.is_empty() || !r.embeds.len().is_multiple_of(h) {
                return Err(bad_request(format!("forward: {} embedding values are not a positive multiple of hidden size {h}", r.embeds.len())));
            }
            if !r.cache.fits(c) {
                return Err(EngineError::Internal(format!("KV cache layout ({} layers × {}) does not match the model", r.cache.layers(), r.cache.kv_dim())));
            }
            let (start, len) = (r.cache.len(), r.embeds.len() / h);
            if start + len > c.max_positions {
                return Err(EngineError::ContextOverflow(format!("{start} cached + {len} new positions exceed the context window of {}", c.max_positions)));
            }
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // The step runs on a rayon worker thread (the caller waits once per step): the ~10 parallel
        // calls per layer (GEMVs, attention, large elementwise passes) are then a push onto this
        // worker's queue that the other worker steals, instead of each one waking the pool from an
        // outside thread and putting the caller to sleep until it is done (~280 such hand-offs per
        // step of 28 layers; each a wake-up, far longer when other processes share the cores).
        rayon::scope(|_| Ok(self.step(rows)))
    }

    /// `forward_batch`'s work after the checks, on a worker thread.
    fn step(&self, rows: &mut [BatchRow<'_>]) -> Vec<Vec<f32>> {
        let c = &self.cfg;
        let h = c.hidden;
        // (start position, new positions, first row in the stacked matrix) of each sequence
        let mut spans = Vec::with_capacity(rows.len());
        let mut total = 0;
        for r in rows.iter_mut() {
            let (start, len) = (r.cache.len(), r.embeds.len() / h);
            // Drops what an interrupted earlier pass may have appended without committing.
            r.cache.truncate(start);
            r.cache.reserve(len);
            spans.push((start, len, total));
            total += len;
        }
        let (qd, kvd, inter, eps) = (c.heads * c.head_dim, c.kv_heads * c.head_dim, c.intermediate, c.rms_eps);
        let shape = AttnShape { heads: c.heads, kv_heads: c.kv_heads, head_dim: c.head_dim };
        let ropes: Vec<Rope> = spans.iter().map(|&(start, len, _)| Rope::new(c.head_dim, c.rope_theta, start, len)).collect();
        let lens: Vec<usize> = spans.iter().map(|s| s.1).collect();
        let mut x = Vec::with_capacity(total * h); // residual stream [T, H], the rows stacked
        for r in rows.iter() {
            x.extend_from_slice(r.embeds);
        }
        let mut a = vec![0f32; total * h]; // normed input / projection output [T, H]
        let (mut q, mut att) = (vec![0f32; total * qd], vec![0f32; total * qd]); // [T, nH, d]
        let (mut k, mut v) = (vec![0f32; total * kvd], vec![0f32; total * kvd]); // [T, nKV, d]
        let (mut gate, mut up) = (vec![0f32; total * inter], vec![0f32; total * inter]); // [T, I]
        // Decode-step part timers (bench --profile; one atomic load each when off).
        let fl = |n: usize, k: usize| gemm_flops(total, k, n);
        for (li, l) in self.layers.iter().enumerate() {
            time_part(Part::Elementwise, 0, || rms_norm(&x, &l.input_norm, eps, &mut a));
            time_part(Part::Qkv, fl(qd + 2 * kvd, h), || project(&a, total, &mut [(&l.q, &mut q), (&l.k, &mut k), (&l.v, &mut v)]));
            // Per-head q/k RMSNorm before the rotation (spec trap 19).
            time_part(Part::Elementwise, 0, || {
                rms_norm_inplace(&mut q, &l.q_norm, eps);
                rms_norm_inplace(&mut k, &l.k_norm, eps);
            });
            // Each row over its own cache. Rotary and the cache append per row on this thread ([len,
            // 24 heads, 128] each: a few µs for a decode row), then every row's attention in one
            // parallel pass (decode rows as (row, kv group) tasks; a prefill chunk tiled by itself).
            time_part(Part::Attention, 0, || {
                for ((r, (&(_, len, first), rope)), kr) in rows.iter_mut().zip(spans.iter().zip(&ropes)).zip(split_rows(&mut k, &lens, kvd)) {
                    rope.apply(&mut q[first * qd..(first + len) * qd], c.heads);
                    rope.apply(kr, c.kv_heads);
                    r.cache.append(li, kr, &v[first * kvd..(first + len) * kvd]);
                }
                let work = rows
                    .iter()
                    .zip(&spans)
                    .zip(split_rows(&mut att, &lens, qd))
                    .map(|((r, &(start, len, first)), out)| {
                        let (kc, vc) = r.cache.layer(li);
                        AttnRow { q: &q[first * qd..(first + len) * qd], start, k: kc, v: vc, out }
                    })
                    .collect();
                causal_attention_rows(work, shape);
            });
            time_part(Part::O, fl(h, qd), || l.o.matmul(&att, total, &mut a));
            time_part(Part::Elementwise, 0, || {
                add_inplace(&mut x, &a);
                rms_norm(&x, &l.post_norm, eps, &mut a);
            });
            time_part(Part::GateUp, fl(2 * inter, h), || project(&a, total, &mut [(&l.gate, &mut gate), (&l.up, &mut up)]));
            time_part(Part::Elementwise, 0, || swiglu(&mut gate, &up));
            time_part(Part::Down, fl(h, inter), || l.down.matmul(&gate, total, &mut a));
            time_part(Part::Elementwise, 0, || add_inplace(&mut x, &a));
        }
        for (r, &(_, len, _)) in rows.iter_mut().zip(&spans) {
            r.cache.commit(len);
            r.cache.record_inputs(r.embeds);
        }
        // lm_head for each sequence's last position only, all of them in one product: [R, H] → [R, V].
        let n = rows.len();
        let mut logits = vec![0f32; n * c.vocab];
        time_part(Part::LmHead, gemm_flops(n, h, c.vocab), || {
            let mut last = vec![0f32; n * h];
            for (i, &(_, len, first)) in spans.iter().enumerate() {
                let row = first + len - 1;
                rms_norm(&x[row * h..(row + 1) * h], &self.norm, eps, &mut last[i * h..(i + 1) * h]);
            }
            self.head.matmul(&last, n, &mut logits);
        });
        if n == 1 {
            return vec![logits]; // one stream: no copy of its 0.6 MB of logits
        }
        logits.chunks(c.vocab).map(<[f32]>::to_vec).collect()
    }
}

/// `data` [Σ lens, width] cut into each row's [len, width] slice, in order.
fn split_rows<'a>(mut data: &'a mut [f32], lens: &[usize], width: usize) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(lens.len());
    for &len in lens {
        let (head, rest) = std::mem::take(&mut data).split_at_mut(len * width);
        out.push(head);
        data = rest;
    }
    out
}

/// y_i = x [m, k] · W_iᵀ for several matrices of the same input (q/k/v, gate/up). Up to 16 rows of
/// bf16 weights run as one fused GEMV pass (x packed once, one fork-join: gemv::gemv_bf16_fused),
/// each output exactly as its own product would give it; otherwise one product each.
fn project(x: &[f32], m: usize, outs: &mut [(&Linear, &mut Vec<f32>)]) {
    if (1..=gemv::MAX_ROWS).contains(&m) {
        let k = x.len() / m;
        let count = outs.len();
        let mut parts: Vec<gemv::Part> = Vec::with_capacity(outs.len());
        for (l, y) in outs.iter_mut() {
            match l {
                Linear::Bf16(w) if w.shape == [y.len() / m, k] => parts.push(gemv::Part { w: w.data(), n: w.shape[0], y: &mut y[..] }),
                _ => break,
            }
        }
        if parts.len() == count && gemv::gemv_bf16_fused(x, m, k, &mut parts) {
            return;
        }
    }
    for (l, y) in outs.iter_mut() {
        l.matmul(x, m, y);
    }
}

/// One sequence of a batched step: its session's cache and the embeddings [L, H] of its new positions.
pub struct BatchRow<'a> {
    pub cache: &'a mut KvCache,
    pub embeds: &'a [f32],
}
