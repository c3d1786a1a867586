//! The whole Ovis2.5 model: Qwen3 decoder, vision encoder, visual head + VTE, loaded from one directory.
use crate::error::{model_err, Result};
use crate::model::config::{LlmConfig, ModelConfig};
use crate::model::qwen3::Qwen3;
use crate::model::vision::VisionEncoder;
use crate::model::visual_head::VisualHead;
use crate::model::source::WeightSource;
use crate::model::weights::Weights;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

pub struct OvisModel {
    pub cfg: ModelConfig,
    pub llm: Qwen3,
    pub vision: VisionEncoder,
    pub head: VisualHead,
    /// Parameters and bytes of every stored tensor.
    pub params: u64,
    pub weight_bytes: u64,
}

impl OvisModel {
    /// Reads config.json and maps the weights; every tensor's name and shape is checked here.
    pub fn load(dir: &Path) -> Result<Self> {
        let (cfg, source) = open_dir(dir)?;
        Self::from_source(cfg, &source)
    }

    /// Random weights of `cfg`'s shapes, in memory (benchmarks of released shapes without files).
    pub fn synthetic(cfg: ModelConfig, seed: u64) -> Self {
        Self::from_source(cfg, &WeightSource::Synthetic(seed)).expect("synthetic weights always have the configured shapes")
    }

    /// Builds every part from `source`, checking each tensor.
    pub fn from_source(cfg: ModelConfig, source: &WeightSource) -> Result<Self> {
        let llm = Qwen3::load(&cfg.llm, source)?;
        let vision = VisionEncoder::load(&cfg.vit, source)?;
        let head = VisualHead::load(&cfg, source)?;
        let (params, weight_bytes) = model_size(&cfg, source);
        Ok(OvisModel { cfg, llm, vision, head, params, weight_bytes })
    }

    /// The `info` object of `model_loaded` (docs/protocol.md).
    pub fn info(&self, backend: &str, device: &str) -> serde_json::Value {
        model_info(&self.cfg, self.params, self.weight_bytes, backend, device)
    }
}

/// config.json and the memory-mapped weights of a model directory.
pub fn open_dir(dir: &Path) -> Result<(ModelConfig, WeightSource)> {
    if !dir.is_dir() {
        return Err(model_err(format!("model directory {} does not exist or is not a directory", dir.display())));
    }
    let cfg = ModelConfig::from_dir(dir)?;
    let weights = Arc::new(Weights::open_dir(dir)?);
    Ok((cfg, WeightSource::Files(weights)))
}

/// (parameters, bytes) of the model: as stored in the files, or as bf16 for synthetic weights.
pub fn model_size(cfg: &ModelConfig, source: &WeightSource) -> (u64, u64) {
    if let Some(sizes) = source.stored_size() {
        return sizes;
    }
    // + the ViT's post_layernorm (stored and validated, never applied: trap 1).
    let params = llm_params(&cfg.llm) + vision_params(cfg) + 2 * cfg.vit.hidden as u64;
    (params, 2 * params)
}

/// Parameters of the Qwen3 decoder: embedding (and lm_head when untied), layers, final norm.
pub fn llm_params(l: &LlmConfig) -> u64 {
    let (h, qd, kvd) = (l.hidden, l.heads * l.head_dim, l.kv_heads * l.head_dim);
    let per_layer = 2 * h + 2 * l.head_dim + (qd + 2 * kvd) * h + h * qd + 3 * l.intermediate * h;
    (l.vocab * h * if l.tie_embeddings { 1 } else { 2 } + h + l.layers * per_layer) as u64
}

/// Parameters the vision path uses: the ViT (patch embedding, position table, layers; not the unused
/// post_layernorm), the visual head and the VTE.
pub fn vision_params(cfg: &ModelConfig) -> u64 {
    let v = &cfg.vit;
    let (d, i) = (v.hidden, v.intermediate);
    let per_layer = 4 * (d * d + d) + 2 * d * i + i + d + 4 * d;
    let vit = d * v.channels * v.patch * v.patch + d + (v.image_size / v.patch).pow(2) * d + v.layers * per_layer;
    let head = (cfg.visual_vocab - 4) * (v.hidden_stride * v.hidden_stride * d + 2) + cfg.visual_vocab * cfg.llm.hidden;
    (vit + head) as u64
}

/// The `info` object of `model_loaded` for a model of `cfg` on `backend`/`device`.
pub fn model_info(cfg: &ModelConfig, params: u64, weight_bytes: u64, backend: &str, device: &str) -> serde_json::Value {
    let l = &cfg.llm;
    let v = &cfg.vit;
    json!({
        "model_type": "ovis2_5",
        "backend": backend,
        "device": device,
        "llm": {
            "hidden": l.hidden, "layers": l.layers, "heads": l.heads, "kv_heads": l.kv_heads,
            "head_dim": l.head_dim, "intermediate": l.intermediate, "vocab": l.vocab,
            "tie_embeddings": l.tie_embeddings, "max_positions": l.max_positions
        },
        "vit": { "hidden": v.hidden, "layers": v.layers, "heads": v.heads, "patch": v.patch, "hidden_stride": v.hidden_stride },
        "visual_vocab": cfg.visual_vocab,
        "params": params,
        "weight_bytes": weight_bytes
    })
}
