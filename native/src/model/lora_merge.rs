//! `ovis-engine lora-merge BASE ADAPTER OUT` (run by `ovis lora merge`): writes a model directory whose
//! weights have the adapter merged (the same W + scale·B·A, rounded to bf16 once, as `--lora` at load),
//! so `ovis ask --model OUT` answers exactly as `ovis ask --model BASE --lora ADAPTER`.
//! Every other file of BASE is hard-linked (copied across file systems); safetensors shards keep their
//! names and their index; a pytorch_model*.bin checkpoint becomes one model.safetensors.
use crate::error::{model_err, Result};
use crate::model::lora::{merge_all, LoraAdapter};
use crate::model::source::open_model;
use crate::model::weights::Weights;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

pub const USAGE: &str = "usage: ovis-engine lora-merge BASE_DIR ADAPTER_DIR OUT_DIR\n\n  Merges the PEFT LoRA adapter in ADAPTER_DIR into the model in BASE_DIR and writes the merged model\n  to OUT_DIR (which must not exist or be empty). Progress on stderr; nothing on stdout.";

/// Exit status: 0 done, 2 bad arguments, 4 a model or adapter problem, 5 an I/O failure.
pub fn main(argv: &[String]) -> i32 {
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("{USAGE}");
        return 0;
    }
    let [base, adapter, out] = argv else {
        eprintln!("ovis-engine lora-merge: expected 3 arguments, got {}\n\n{USAGE}", argv.len());
        return 2;
    };
    match merge(Path::new(base), Path::new(adapter), Path::new(out)) {
        Ok(n) => {
            eprintln!("merged {n} LoRA modules into {out}");
            0
        }
        Err(e) => {
            eprintln!("ovis-engine lora-merge: {e}");
            if e.code() == "model_error" { 4 } else { 5 }
        }
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> crate::error::EngineError {
    crate::error::EngineError::Internal(format!("cannot {what} {}: {e}", path.display()))
}

fn is_weight_file(name: &str) -> bool {
    name.starts_with("model") && (name.ends_with(".safetensors") || name == "model.safetensors.index.json")
        || name.starts_with("pytorch_model") && (name.ends_with(".bin") || name.ends_with(".bin.index.json"))
}

/// Merges and writes; returns the number of modules merged.
pub fn merge(base: &Path, adapter: &Path, out: &Path) -> Result<usize> {
    let (cfg, source) = open_model(base, Some(adapter))?;
    let lora: &LoraAdapter = source.adapter().expect("opened with an adapter");
    let crate::model::source::WeightSource::Adapted(weights, _) = &source else { unreachable!("opened with an adapter") };
    if out.exists() && fs::read_dir(out).map_err(|e| io_err("read", out, e))?.next().is_some() {
        return Err(model_err(format!("{} already exists and is not empty: give a new directory for the merged model", out.display())));
    }
    if out.canonicalize().ok().is_some_and(|o| base.canonicalize().ok() == Some(o)) {
        return Err(model_err("the output directory is the base model's directory: give a new one"));
    }
    let _ = cfg;
    fs::create_dir_all(out).map_err(|e| io_err("create", out, e))?;
    let from_bin = weights.files().iter().any(|f| f.extension().is_some_and(|e| e == "bin"));
    for entry in fs::read_dir(base).map_err(|e| io_err("read", base, e))? {
        let entry = entry.map_err(|e| io_err("read", base, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !path.is_file() || is_weight_file(&name) && (from_bin || !name.ends_with(".index.json")) {
            continue;
        }
        let dst = out.join(&name);
        if fs::hard_link(&path, &dst).is_err() {
            fs::copy(&path, &dst).map_err(|e| io_err("copy", &path, e))?;
        }
    }
    let merged = merge_all(weights, lora)?;
    // Tensor names by output file: the same shards as the base, or one model.safetensors for .bin.
    let mut by_file: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut names: Vec<&String> = weights.names().collect();
    names.sort();
    for name in names {
        let info = weights.info(name).expect("listed");
        let file = if from_bin { "model.safetensors".to_string() } else { weights.files()[info.file].file_name().unwrap().to_string_lossy().into_owned() };
        by_file.entry(file).or_default().push(name.clone());
    }
    for (file, names) in &by_file {
        let path = out.join(file);
        eprintln!("writing {}", path.display());
        write_safetensors(&path, weights, names, &merged).map_err(|e| io_err("write", &path, e))?;
    }
    Ok(merged.len())
}

/// A safetensors file of `names`: merged bytes where the adapter changed the tensor, stored bytes otherwise.
fn write_safetensors(path: &Path, w: &Arc<Weights>, names: &[String], merged: &std::collections::HashMap<String, crate::model::weights::WeightRef>) -> std::io::Result<()> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({ "format": "pt" }));
    let mut offset = 0usize;
    for name in names {
        let info = w.info(name).expect("listed");
        let len = info.shape.iter().product::<usize>() * info.dtype.size();
        header.insert(name.clone(), serde_json::json!({ "dtype": info.dtype_name, "shape": info.shape, "data_offsets": [offset, offset + len] }));
        offset += len;
    }
    let mut text = serde_json::to_vec(&serde_json::Value::Object(header)).expect("JSON");
    // The data starts 8-byte aligned (the header is padded with spaces, as the format allows).
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut f = BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    f.write_all(&(text.len() as u64).to_le_bytes())?;
    f.write_all(&text)?;
    for name in names {
        match merged.get(name) {
            Some(m) => {
                for v in m.data() {
                    f.write_all(&v.to_bits().to_le_bytes())?;
                }
            }
            None => f.write_all(w.view(name).map_err(|e| std::io::Error::other(e.to_string()))?.bytes)?,
        }
    }
    f.flush()?;
    f.into_inner().map_err(|e| e.into_error())?.sync_all()
}
