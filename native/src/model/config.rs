//! config.json of an Ovis2.5 model directory (model-spec.md §1.2): the LLM (Qwen3) and ViT sizes.
use crate::error::{model_err, Result};
use serde_json::Value;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub rope_theta: f64,
    pub rms_eps: f64,
    pub tie_embeddings: bool,
}

#[derive(Debug, Clone)]
pub struct VitConfig {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub channels: usize,
    pub image_size: usize,
    pub patch: usize,
    pub hidden_stride: usize,
    pub temporal_patch: usize,
    pub window_size: usize,
    /// Layers that use full attention when window attention is on; None = all layers full (released models).
    pub fullatt_blocks: Option<Vec<usize>>,
    pub ln_eps: f64,
}

#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub llm: LlmConfig,
    pub vit: VitConfig,
    pub visual_vocab: usize,
}

fn get_usize(obj: &Value, key: &str, ctx: &str) -> Result<usize> {
    obj.get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| model_err(format!("config.json: {ctx}.{key} is missing or not a positive integer")))
}

fn get_f64(obj: &Value, key: &str, ctx: &str, default: Option<f64>) -> Result<f64> {
    match obj.get(key).and_then(Value::as_f64) {
        Some(v) => Ok(v),
        None => default.ok_or_else(|| model_err(format!("config.json: {ctx}.{key} is missing or not a number"))),
    }
}

impl ModelConfig {
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| model_err(format!("cannot read {}: {e}", path.display())))?;
        Self::from_json(&text)
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let root: Value = serde_json::from_str(text).map_err(|e| model_err(format!("config.json is not valid JSON: {e}")))?;
        let llm = root.get("llm_config").ok_or_else(|| model_err("config.json: llm_config is missing (not an Ovis2.5 model?)"))?;
        let vit = root.get("vit_config").ok_or_else(|| model_err("config.json: vit_config is missing (not an Ovis2.5 model?)"))?;
        let hidden = get_usize(llm, "hidden_size", "llm_config")?;
        let heads = get_usize(llm, "num_attention_heads", "llm_config")?;
        let head_dim = match llm.get("head_dim") {
            Some(_) => get_usize(llm, "head_dim", "llm_config")?,
            None => hidden / heads.max(1),
        };
        let llm_cfg = LlmConfig {
            hidden,
            layers: get_usize(llm, "num_hidden_layers", "llm_config")?,
            heads,
            kv_heads: get_usize(llm, "num_key_value_heads", "llm_config")?,
            head_dim,
            intermediate: get_usize(llm, "intermediate_size", "llm_config")?,
            vocab: get_usize(llm, "vocab_size", "llm_config")?,
            max_positions: get_usize(llm, "max_position_embeddings", "llm_config").unwrap_or(40960),
            rope_theta: get_f64(llm, "rope_theta", "llm_config", Some(1_000_000.0))?,
            rms_eps: get_f64(llm, "rms_norm_eps", "llm_config", Some(1e-6))?,
            // Qwen3's default when the key is absent (the 9B config omits it) is false: spec trap 18.
            tie_embeddings: llm.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
        };
        let fullatt = match vit.get("fullatt_block_indexes") {
            None | Some(Value::Null) => None,
            // A `|`-separated string in released configs (spec §1.2); accept a JSON list too.
            Some(Value::String(s)) => Some(
                s.split('|')
                    .filter(|p| !p.trim().is_empty())
                    .map(|p| p.trim().parse::<usize>().map_err(|_| model_err(format!("config.json: vit_config.fullatt_block_indexes {s:?} is not a |-separated list of layer indices"))))
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_u64).map(|v| v as usize).collect()),
            Some(other) => return Err(model_err(format!("config.json: vit_config.fullatt_block_indexes has unexpected value {other}"))),
        };
        let vit_cfg = VitConfig {
            hidden: get_usize(vit, "hidden_size", "vit_config")?,
            intermediate: get_usize(vit, "intermediate_size", "vit_config")?,
            layers: get_usize(vit, "num_hidden_layers", "vit_config")?,
            heads: get_usize(vit, "num_attention_heads", "vit_config")?,
            channels: get_usize(vit, "num_channels", "vit_config").unwrap_or(3),
            image_size: get_usize(vit, "image_size", "vit_config")?,
            patch: get_usize(vit, "patch_size", "vit_config")?,
            hidden_stride: get_usize(vit, "hidden_stride", "vit_config").unwrap_or(2),
            temporal_patch: get_usize(vit, "temporal_patch_size", "vit_config").unwrap_or(1),
            window_size: get_usize(vit, "window_size", "vit_config").unwrap_or(112),
            fullatt_blocks: fullatt,
            ln_eps: get_f64(vit, "layer_norm_eps", "vit_config", Some(1e-6))?,
        };
        let cfg = ModelConfig { llm: llm_cfg, vit: vit_cfg, visual_vocab: get_usize(&root, "visual_vocab_size", "")? };
        cfg.check()?;
        Ok(cfg)
    }

    /// Invariants the forward pass relies on; a violated one names the keys to fix.
    fn check(&self) -> Result<()> {
        let l = &self.llm;
        if l.heads == 0 || l.kv_heads == 0 || l.heads % l.kv_heads != 0 {
            return Err(model_err(format!("config.json: llm num_attention_heads {} must be a multiple of num_key_value_heads {}", l.heads, l.kv_heads)));
        }
        if l.head_dim % 2 != 0 {
            return Err(model_err(format!("config.json: llm head_dim {} must be even for rotary embeddings", l.head_dim)));
        }
        let v = &self.vit;
        if v.heads == 0 || v.hidden % v.heads != 0 || (v.hidden / v.heads) % 4 != 0 {
            return Err(model_err(format!("config.json: vit hidden_size {} / num_attention_heads {} must give a head dim divisible by 4 (2-D rotary)", v.hidden, v.heads)));
        }
        if self.visual_vocab < 5 {
            return Err(model_err(format!("config.json: visual_vocab_size {} is too small (4 indicator rows are reserved)", self.visual_vocab)));
        }
        if v.channels != 3 || v.temporal_patch != 1 {
            return Err(model_err(format!("config.json: vit num_channels {} / temporal_patch_size {} are not supported (3 / 1 expected)", v.channels, v.temporal_patch)));
        }
        Ok(())
    }
}
