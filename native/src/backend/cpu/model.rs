//! The whole Ovis2.5 model on the CPU: Qwen3 decoder, vision encoder, visual head + VTE, read from one
//! `WeightSource` (the CUDA twin is backend/cuda/model.rs).
use crate::backend::cpu::quant::WeightMode;
use crate::backend::cpu::qwen3::Qwen3;
use crate::backend::cpu::vision::VisionEncoder;
use crate::backend::cpu::visual_head::VisualHead;
use crate::backend::cpu::vision_speed;
use crate::error::Result;
use crate::model::config::ModelConfig;
use crate::backend::model_info;
use crate::model::ovis::{model_size, open_dir};
use crate::model::source::WeightSource;
use std::path::Path;

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
        Self::from_source(cfg, &source, WeightMode::Bf16)
    }

    /// Random weights of `cfg`'s shapes, in memory (benchmarks of released shapes without files).
    pub fn synthetic(cfg: ModelConfig, seed: u64) -> Self {
        Self::from_source(cfg, &WeightSource::Synthetic(seed), WeightMode::Bf16).expect("synthetic weights always have the configured shapes")
    }

    /// Builds every part from `source`, checking each tensor.
    /// `weights`: how the decoder's linear layers are held (quant.rs); the ViT and head stay bf16.
    pub fn from_source(cfg: ModelConfig, source: &WeightSource, weights: WeightMode) -> Result<Self> {
        // Weights in mmapped allocations, as glibc would place them (alloc_policy.rs: decode is slower
        // with them on the reused heap).
        let (llm, vision, head) = crate::alloc_policy::loading_weights(|| -> Result<_> {
            Ok((Qwen3::load(&cfg.llm, source, weights)?, VisionEncoder::load(&cfg.vit, source)?, VisualHead::load(&cfg, source)?))
        })?;
        let (params, weight_bytes) = model_size(&cfg, source);
        Ok(OvisModel { cfg, llm, vision, head, params, weight_bytes })
    }

    /// The `info` object of `model_loaded` (docs/protocol.md), with this machine's vision encoder
    /// speed measured now (vision_speed.rs: ~50 ms for the 2B's shapes).
    pub fn info(&self, backend: &str, device: &str) -> serde_json::Value {
        let mut info = model_info(&self.cfg, self.params, self.weight_bytes, backend, device);
        info["vision_speed"] = vision_speed::for_model(&self.cfg.vit).to_json();
        let mode = self.llm.weight_mode();
        info["weights"] = serde_json::json!(mode.name());
        // The decode kernel of the decoder's linear layers (bf16: the GEMV's instruction set).
        info["weights_kernel"] = serde_json::json!(match mode {
            WeightMode::Bf16 => crate::backend::cpu::gemv::kernel_name(),
            _ => crate::backend::cpu::linear::QuantKernel::best().name(),
        });
        info["linear_bytes"] = serde_json::json!(self.llm.linear_bytes());
        info
    }
}
