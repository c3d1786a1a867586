//! The whole Ovis2.5 model: Qwen3 decoder, vision encoder, visual head + VTE, loaded from one directory.
use crate::error::{model_err, Result};
use crate::model::config::ModelConfig;
use crate::model::qwen3::Qwen3;
use crate::model::vision::VisionEncoder;
use crate::model::visual_head::VisualHead;
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
        if !dir.is_dir() {
            return Err(model_err(format!("model directory {} does not exist or is not a directory", dir.display())));
        }
        let cfg = ModelConfig::from_dir(dir)?;
        let weights = Arc::new(Weights::open_dir(dir)?);
        let llm = Qwen3::load(&cfg.llm, &weights)?;
        let vision = VisionEncoder::load(&cfg.vit, &weights)?;
        let head = VisualHead::load(&cfg, &weights)?;
        let (mut params, mut weight_bytes) = (0u64, 0u64);
        for name in weights.names() {
            let info = weights.info(name).expect("listed tensor");
            let n: usize = info.shape.iter().product();
            params += n as u64;
            weight_bytes += (n * info.dtype.size()) as u64;
        }
        Ok(OvisModel { cfg, llm, vision, head, params, weight_bytes })
    }

    /// Random weights of `cfg`'s shapes, in memory (benchmarks of released shapes without files).
    pub fn synthetic(cfg: ModelConfig, seed: u64) -> Self {
        let llm = Qwen3::synthetic(&cfg.llm, seed);
        let vision = VisionEncoder::synthetic(&cfg.vit, seed ^ 1);
        let head = VisualHead::synthetic(&cfg, seed ^ 2);
        let v = &cfg.vit;
        let vit_params = (v.hidden * 768 + v.hidden + 1024 * v.hidden + v.layers * (4 * (v.hidden * v.hidden + v.hidden) + 2 * v.hidden * v.intermediate + v.intermediate + v.hidden + 4 * v.hidden) + 2 * v.hidden) as u64;
        let head_params = ((cfg.visual_vocab - 4) * (4 * v.hidden + 2) + cfg.visual_vocab * cfg.llm.hidden) as u64;
        let params = llm.param_count() + vit_params + head_params;
        OvisModel { cfg, llm, vision, head, params, weight_bytes: 2 * params }
    }

    /// The `info` object of `model_loaded` (docs/protocol.md).
    pub fn info(&self, backend: &str, device: &str) -> serde_json::Value {
        let l = &self.cfg.llm;
        let v = &self.cfg.vit;
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
            "visual_vocab": self.cfg.visual_vocab,
            "params": self.params,
            "weight_bytes": self.weight_bytes
        })
    }
}
