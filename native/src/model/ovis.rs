//! The whole Ovis2.5 model before anything runs it: a model directory opened (config.json + weights)
//! and its parameter count and size.
use crate::error::{model_err, Result};
use crate::model::config::{LlmConfig, ModelConfig};
use crate::model::source::WeightSource;
use crate::model::weights::Weights;
use std::path::Path;
use std::sync::Arc;

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
