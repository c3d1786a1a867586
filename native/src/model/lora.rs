//! PEFT LoRA adapters as ms-swift (and PEFT) save them: `adapter_config.json` and
//! `adapter_model.safetensors` with `base_model.model.<module>.lora_A.weight` [r, in] and
//! `<module>.lora_B.weight` [out, r] (a Conv2d module: A [r, c, kh, kw], B [out, r, 1, 1]).
//! The adapter is merged into the base weights at load: W' = W + scale·B·A, summed in f32 and
//! rounded to bf16 once, so both backends (which read weights through `WeightSource`) run the
//! merged model. scale = lora_alpha / r, or lora_alpha / √r with `use_rslora`.
use crate::error::{model_err, Result};
use crate::model::weights::{DType, WeightRef, Weights};
use half::{bf16, f16};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// PEFT's prefix of every adapter tensor (the PeftModel wraps the model as `base_model.model`).
const PEFT_PREFIX: &str = "base_model.model.";

/// Base tensors that are embedding tables, which LoRA would target with `lora_embedding_A/B`
/// (a different merge) — refused.
const EMBEDDINGS: [&str; 3] = ["llm.model.embed_tokens.weight", "vte.weight", "visual_tokenizer.vit.vision_model.embeddings.position_embedding.weight"];

/// One adapted module: its factors widened to f32.
struct Pair {
    /// lora_A [r, in] (in = the product of the base weight's trailing dims).
    a: Vec<f32>,
    /// lora_B [out, r].
    b: Vec<f32>,
}

pub struct LoraAdapter {
    pub dir: PathBuf,
    pub rank: usize,
    pub alpha: f64,
    pub rslora: bool,
    /// alpha / r (or alpha / √r with rsLoRA).
    pub scale: f32,
    /// Base weight name (e.g. `llm.model.layers.0.self_attn.q_proj.weight`) → its factors.
    deltas: BTreeMap<String, Pair>,
}

/// What adapter_config.json says, checked: rank, alpha, rsLoRA; every unsupported option refused.
struct AdapterConfig {
    rank: usize,
    alpha: f64,
    rslora: bool,
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty() && s != "none",
        _ => true,
    }
}

fn parse_config(path: &Path) -> Result<AdapterConfig> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| model_err(format!("cannot read the LoRA adapter's config {shown}: {e} (an adapter directory holds adapter_config.json and adapter_model.safetensors)")))?;
    let c: Value = serde_json::from_str(&text).map_err(|e| model_err(format!("{shown} is not valid JSON: {e}")))?;
    let refuse = |what: &str| model_err(format!("{shown}: {what} is not supported; train a plain LoRA adapter (ms-swift --train_type lora) or merge it with ms-swift (`swift export --merge_lora true`) and run the merged model"));
    match c.get("peft_type").and_then(Value::as_str) {
        None | Some("LORA") => {}
        Some(other) => return Err(model_err(format!("{shown}: peft_type {other:?} is not supported: only LORA adapters can be merged"))),
    }
    if c.get("use_dora").and_then(Value::as_bool) == Some(true) {
        return Err(refuse("use_dora (DoRA: a magnitude vector per module)"));
    }
    if truthy(c.get("modules_to_save")) {
        return Err(refuse(&format!("modules_to_save {} (whole modules saved beside the adapter)", c["modules_to_save"])));
    }
    for key in ["rank_pattern", "alpha_pattern"] {
        if truthy(c.get(key)) {
            return Err(refuse(&format!("{key} {} (a rank or alpha per module)", c[key])));
        }
    }
    if c.get("fan_in_fan_out").and_then(Value::as_bool) == Some(true) {
        return Err(refuse("fan_in_fan_out (transposed Conv1D weights)"));
    }
    if c.get("lora_bias").and_then(Value::as_bool) == Some(true) || c.get("bias").and_then(Value::as_str).is_some_and(|b| b != "none") {
        return Err(refuse("training biases (bias / lora_bias)"));
    }
    if truthy(c.get("layer_replication")) {
        return Err(refuse("layer_replication"));
    }
    let rank = c.get("r").and_then(Value::as_u64).filter(|&r| r > 0).ok_or_else(|| model_err(format!("{shown}: r (the LoRA rank) is missing or not a positive integer")))? as usize;
    let alpha = c.get("lora_alpha").and_then(Value::as_f64).ok_or_else(|| model_err(format!("{shown}: lora_alpha is missing or not a number")))?;
    let rslora = c.get("use_rslora").and_then(Value::as_bool).unwrap_or(false);
    Ok(AdapterConfig { rank, alpha, rslora })
}

/// A tensor of the adapter file widened to f32 (adapters are saved in f32, bf16 or f16).
fn f32_tensor(w: &Weights, name: &str, file: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let v = w.view(name)?;
    let data = match v.info.dtype {
        DType::F32 => v.bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        DType::BF16 => v.bytes.chunks_exact(2).map(|c| bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32()).collect(),
        DType::F16 => v.bytes.chunks_exact(2).map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32()).collect(),
        _ => return Err(model_err(format!("{}: tensor {name} has dtype {}; LoRA factors must be F32, BF16 or F16", file.display(), v.info.dtype_name))),
    };
    Ok((v.info.shape.clone(), data))
}

impl LoraAdapter {
    /// Reads an adapter directory and checks every tensor against `base` (names and shapes); nothing is
    /// merged yet (`merged` does that per tensor, as the model loads it).
    pub fn open(dir: &Path, base: &Weights, tied_embeddings: bool) -> Result<Self> {
        if !dir.is_dir() {
            return Err(model_err(format!("LoRA adapter directory {} does not exist or is not a directory", dir.display())));
        }
        let cfg = parse_config(&dir.join("adapter_config.json"))?;
        let file = dir.join("adapter_model.safetensors");
        if !file.exists() {
            let hint = if dir.join("adapter_model.bin").exists() { " (adapter_model.bin is there: save the adapter with safetensors, e.g. PEFT's save_pretrained(safe_serialization=True))" } else { "" };
            return Err(model_err(format!("{} is missing{hint}", file.display())));
        }
        let w = Weights::open_files(std::slice::from_ref(&file))?;
        let shown = file.display();
        // module → (lora_A name, lora_B name)
        let mut modules: BTreeMap<String, [Option<String>; 2]> = BTreeMap::new();
        for name in w.names() {
            let rest = name.strip_prefix(PEFT_PREFIX).ok_or_else(|| model_err(format!("{shown}: tensor {name} does not start with {PEFT_PREFIX:?}: not a PEFT LoRA adapter")))?;
            if rest.contains("lora_embedding_") {
                return Err(model_err(format!("{shown}: tensor {name} is a LoRA on an embedding table, which is not supported: leave embed_tokens and the visual embedding table out of target_modules")));
            }
            if rest.contains(".modules_to_save.") {
                return Err(model_err(format!("{shown}: tensor {name} is a saved copy of a whole module (modules_to_save), which is not supported")));
            }
            if rest.ends_with("lora_magnitude_vector") || rest.contains(".lora_magnitude_vector.") {
                return Err(model_err(format!("{shown}: tensor {name} is a DoRA magnitude vector: DoRA adapters are not supported")));
            }
            let (module, which) = if let Some(m) = rest.strip_suffix(".lora_A.weight") {
                (m, 0)
            } else if let Some(m) = rest.strip_suffix(".lora_B.weight") {
                (m, 1)
            } else {
                return Err(model_err(format!("{shown}: tensor {name} is neither <module>.lora_A.weight nor <module>.lora_B.weight; only plain LoRA factors are supported")));
            };
            modules.entry(module.to_string()).or_default()[which] = Some(name.clone());
        }
        if modules.is_empty() {
            return Err(model_err(format!("{shown} holds no LoRA tensors")));
        }
        let mut deltas = BTreeMap::new();
        for (module, [a_name, b_name]) in modules {
            let (Some(a_name), Some(b_name)) = (a_name, b_name) else {
                return Err(model_err(format!("{shown}: module {module} has only one of lora_A / lora_B")));
            };
            let target = format!("{module}.weight");
            if EMBEDDINGS.contains(&target.as_str()) {
                return Err(model_err(format!("{shown}: module {module} is an embedding table; LoRA on embeddings is not supported: leave it out of target_modules")));
            }
            if target == "llm.lm_head.weight" && tied_embeddings {
                return Err(model_err(format!("{shown}: module {module} is the output layer, which this model ties to the token embeddings; an adapter on it is not supported")));
            }
            let info = base.info(&target).ok_or_else(|| {
                model_err(format!("{shown}: module {module} has no weight {target} in the base model: the adapter was made for another model (or another naming); check the base model you pass with --model"))
            })?;
            let (a_shape, a) = f32_tensor(&w, &a_name, &file)?;
            let (b_shape, b) = f32_tensor(&w, &b_name, &file)?;
            let out = info.shape.first().copied().unwrap_or(0);
            let inner: usize = info.shape.iter().skip(1).product();
            let r = cfg.rank;
            // A: [r, trailing dims of W...]; B: [out, r] (+ trailing 1s for a Conv2d).
            let a_ok = info.shape.len() >= 2 && a_shape.len() == info.shape.len() && a_shape[0] == r && a_shape[1..] == info.shape[1..];
            let b_ok = b_shape.len() == info.shape.len() && b_shape[0] == out && b_shape[1] == r && b_shape[2..].iter().all(|&d| d == 1);
            if !a_ok || !b_ok {
                return Err(model_err(format!(
                    "{shown}: module {module}: lora_A {a_shape:?} and lora_B {b_shape:?} do not fit the base weight {target} {:?} at rank {r} (expected lora_A [{r}, {}] and lora_B [{out}, {r}]): the adapter was made for a model of other shapes",
                    info.shape,
                    info.shape[1..].iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
                )));
            }
            debug_assert_eq!(a.len(), r * inner);
            deltas.insert(target, Pair { a, b });
        }
        let scale = if cfg.rslora { cfg.alpha / (cfg.rank as f64).sqrt() } else { cfg.alpha / cfg.rank as f64 } as f32;
        Ok(LoraAdapter { dir: dir.to_path_buf(), rank: cfg.rank, alpha: cfg.alpha, rslora: cfg.rslora, scale, deltas })
    }

    pub fn targets(&self) -> impl Iterator<Item = &String> {
        self.deltas.keys()
    }

    pub fn adapts(&self, name: &str) -> bool {
        self.deltas.contains_key(name)
    }

    /// `base` (bf16, [out, in...]) + scale·B·A, each element summed in f32 and rounded to bf16 once.
    pub fn merged(&self, name: &str, base: &WeightRef) -> Option<WeightRef> {
        let p = self.deltas.get(name)?;
        let out = base.shape[0];
        let inner: usize = base.shape[1..].iter().product();
        let r = self.rank;
        let w = base.data();
        let mut merged = Vec::with_capacity(w.len());
        let mut row = vec![0f32; inner];
        for o in 0..out {
            row.iter_mut().for_each(|x| *x = 0.0);
            for k in 0..r {
                let bk = p.b[o * r + k];
                for (x, a) in row.iter_mut().zip(&p.a[k * inner..(k + 1) * inner]) {
                    *x += bk * a;
                }
            }
            merged.extend(w[o * inner..(o + 1) * inner].iter().zip(&row).map(|(wv, d)| bf16::from_f32(wv.to_f32() + self.scale * d)));
        }
        Some(WeightRef::from_vec(merged, &base.shape))
    }

    /// A one-line description for logs and `model_loaded` info.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "dir": self.dir.display().to_string(),
            "rank": self.rank,
            "alpha": self.alpha,
            "rslora": self.rslora,
            "scale": self.scale,
            "modules": self.deltas.len(),
        })
    }
}

/// Base tensor name → merged tensor, for every module the adapter targets (used by `lora merge`).
pub fn merge_all(base: &Arc<Weights>, lora: &LoraAdapter) -> Result<HashMap<String, WeightRef>> {
    let mut out = HashMap::new();
    for name in lora.targets() {
        let info = base.info(name).expect("checked when the adapter was opened");
        let w = base.bf16(name, &info.shape.clone())?;
        out.insert(name.clone(), lora.merged(name, &w).expect("a target"));
    }
    Ok(out)
}
