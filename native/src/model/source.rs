//! Where a model's tensors come from: the memory-mapped safetensors of a model directory, or random
//! values of the released shapes generated on demand (benchmarks and tests without files). Both the CPU
//! model and the CUDA upload read through this, so a synthetic model is the same on CPU and GPU.
use crate::error::{model_err, Result};
use crate::model::config::ModelConfig;
use crate::model::lora::LoraAdapter;
use crate::model::weights::{WeightRef, Weights};
use crate::model::synthetic;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone)]
pub enum WeightSource {
    Files(Arc<Weights>),
    /// Random weights from this seed; each tensor depends only on (seed, its name), never on load order.
    Synthetic(u64),
    /// The files with a LoRA adapter merged into the tensors it targets as they are read.
    Adapted(Arc<Weights>, Arc<LoraAdapter>),
}

/// config.json and the weights of a model directory (safetensors, or pytorch_model*.bin), with the LoRA
/// adapter of `lora` checked against them when given. Both backends load through this.
pub fn open_model(dir: &Path, lora: Option<&Path>) -> Result<(ModelConfig, WeightSource)> {
    if !dir.is_dir() {
        return Err(model_err(format!("model directory {} does not exist or is not a directory", dir.display())));
    }
    let cfg = ModelConfig::from_dir(dir)?;
    let weights = Arc::new(Weights::open_dir(dir)?);
    Ok(match lora {
        None => (cfg, WeightSource::Files(weights)),
        Some(adapter) => {
            let lora = LoraAdapter::open(adapter, &weights, cfg.llm.tie_embeddings)?;
            (cfg, WeightSource::Adapted(weights, Arc::new(lora)))
        }
    })
}

/// Prefix of the ViT's tensors (model-spec §1.3).
pub const VIT_PREFIX: &str = "visual_tokenizer.vit.vision_model.";

/// FNV-1a of a tensor name: the per-tensor part of a synthetic seed.
pub fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

impl WeightSource {
    /// The bf16 tensor `name` (full checkpoint name) of exactly `shape`; a clear model error when the
    /// files lack it or hold another shape or dtype.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<WeightRef> {
        match self {
            WeightSource::Files(w) => {
                if !w.contains(name) {
                    return Err(model_err(format!("tensor {name} (expected shape {shape:?} from config.json) is missing from the weights")));
                }
                w.bf16(name, shape)
            }
            WeightSource::Adapted(w, lora) => {
                let base = WeightSource::Files(Arc::clone(w)).get(name, shape)?;
                Ok(lora.merged(name, &base).unwrap_or(base))
            }
            WeightSource::Synthetic(seed) => Ok(if name.starts_with("llm.") {
                synthetic::llm_tensor(*seed, name, shape)
            } else if let Some(rest) = name.strip_prefix(VIT_PREFIX) {
                synthetic::vit_tensor(*seed ^ 1, rest, shape)
            } else {
                synthetic::head_tensor(*seed ^ 2, name, shape)
            }),
        }
    }

    /// What was found on disk, for `model_loaded` info: `{"format": "safetensors"|"torch", "files": [...],
    /// "model_type"}` (model_type as config.json says: "ovis2_5" from the hub, "ovis" from upstream SFT).
    pub fn checkpoint(&self, dir: &Path) -> Option<serde_json::Value> {
        let (WeightSource::Files(w) | WeightSource::Adapted(w, _)) = self else { return None };
        let files: Vec<String> = w.files().iter().filter_map(|f| f.file_name()).map(|f| f.to_string_lossy().into_owned()).collect();
        let format = if files.iter().all(|f| f.ends_with(".bin")) { "torch" } else { "safetensors" };
        let model_type = std::fs::read_to_string(dir.join("config.json")).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()).and_then(|v| v.get("model_type").cloned());
        Some(serde_json::json!({ "format": format, "files": files, "model_type": model_type }))
    }

    /// The adapter merged at load, if any.
    pub fn adapter(&self) -> Option<&LoraAdapter> {
        match self {
            WeightSource::Adapted(_, lora) => Some(lora),
            _ => None,
        }
    }

    /// Parameters and bytes of every stored tensor, when the source is files (synthetic: None).
    pub fn stored_size(&self) -> Option<(u64, u64)> {
        let (WeightSource::Files(w) | WeightSource::Adapted(w, _)) = self else { return None };
        let (mut params, mut bytes) = (0u64, 0u64);
        for name in w.names() {
            let info = w.info(name).expect("listed tensor");
            let n: usize = info.shape.iter().product();
            params += n as u64;
            bytes += (n * info.dtype.size()) as u64;
        }
        Some((params, bytes))
    }
}
