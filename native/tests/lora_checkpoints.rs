//! LoRA adapters merged at load (issue 14 item 4) and trained checkpoints in the torch.save format
//! (item 5), against the tiny-ovis2.5 fixture. Adapters and .bin files are made here by the test:
//! random LoRA factors written as PEFT/ms-swift save them, and the fixture's tensors written as a
//! torch.save zip with the pickle opcodes torch emits for a state dict (no torch needed).
use ovis_engine::generate::kv_cache::KvCache;
use ovis_engine::model::config::ModelConfig;
use ovis_engine::model::lora_merge::merge;
use ovis_engine::backend::cpu::qwen3::Qwen3;
use ovis_engine::model::source::{open_model, WeightSource};
use ovis_engine::model::weights::{DType, Weights};
use half::bf16;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../test/fixtures/tiny-ovis2.5")
}

fn tmp(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!("ovis-lora-{}-{tag}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A safetensors file of (name, dtype, shape, little-endian bytes).
fn write_safetensors(path: &Path, tensors: &[(String, &str, Vec<usize>, Vec<u8>)]) {
    let mut header = serde_json::Map::new();
    let mut off = 0;
    for (name, dtype, shape, bytes) in tensors {
        header.insert(name.clone(), json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + bytes.len()]}));
        off += bytes.len();
    }
    let h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    for t in tensors {
        out.extend(&t.3);
    }
    std::fs::write(path, out).unwrap();
}

/// Deterministic values in [−1, 1) (xorshift).
fn randoms(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The modules of the test adapter: an LLM attention and MLP projection, a ViT projection, the
/// ViT's patch embedding (a Conv2d: A [r, 3, 16, 16], B [48, r, 1, 1]) and the visual head.
const MODULES: [&str; 5] = [
    "llm.model.layers.0.self_attn.q_proj",
    "llm.model.layers.1.mlp.down_proj",
    "visual_tokenizer.vit.vision_model.encoder.layers.0.mlp.fc1",
    "visual_tokenizer.vit.vision_model.embeddings.patch_embedding",
    "visual_tokenizer.head.0",
];

/// Writes an adapter for `base` targeting `modules` (shapes taken from `base`, or `shape_of` overrides).
fn make_adapter(dir: &Path, base: &Weights, modules: &[&str], rank: usize, config: serde_json::Value, bump_in: usize) {
    let mut tensors = Vec::new();
    for (i, m) in modules.iter().enumerate() {
        let shape = base.info(&format!("{m}.weight")).unwrap().shape.clone();
        let mut a_shape = shape.clone();
        a_shape[0] = rank;
        if shape.len() == 2 {
            a_shape[1] += bump_in;
        }
        let mut b_shape = vec![shape[0], rank];
        b_shape.extend(std::iter::repeat_n(1, shape.len() - 2));
        let a = randoms(2 * i as u64 + 1, a_shape.iter().product());
        // B scaled so the merged change is a sizeable fraction of the base weights (which are ~0.02–0.1).
        let b: Vec<f32> = randoms(2 * i as u64 + 2, b_shape.iter().product()).iter().map(|x| x * 0.02).collect();
        tensors.push((format!("base_model.model.{m}.lora_A.weight"), "F32", a_shape, f32_bytes(&a)));
        tensors.push((format!("base_model.model.{m}.lora_B.weight"), "F32", b_shape, f32_bytes(&b)));
    }
    write_safetensors(&dir.join("adapter_model.safetensors"), &tensors);
    std::fs::write(dir.join("adapter_config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

fn lora_config(rank: usize, alpha: f64) -> serde_json::Value {
    json!({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha, "lora_dropout": 0.05,
        "bias": "none", "use_rslora": false, "use_dora": false, "modules_to_save": null,
        "rank_pattern": {}, "alpha_pattern": {}, "fan_in_fan_out": false, "target_modules": ["q_proj", "down_proj", "fc1"],
        "base_model_name_or_path": "tiny-ovis2.5"
    })
}

fn base_weights() -> Weights {
    Weights::open_dir(&fixture()).unwrap()
}

fn bf16s(src: &WeightSource, w: &Weights, name: &str) -> Vec<bf16> {
    src.get(name, &w.info(name).unwrap().shape).unwrap().data().to_vec()
}

fn logits(src: &WeightSource) -> Vec<f32> {
    let cfg = ModelConfig::from_dir(&fixture()).unwrap();
    let model = Qwen3::load(&cfg.llm, src, ovis_engine::backend::cpu::quant::WeightMode::Bf16).unwrap();
    let ids = [151644u32, 872, 198, 9707, 11, 1879, 0, 5, 77];
    let mut e = vec![0f32; ids.len() * cfg.llm.hidden];
    model.embed(&ids, &mut e);
    model.forward(&mut KvCache::new(model.config()), &e).unwrap()
}

#[test]
fn adapter_is_merged_at_load_as_w_plus_scale_b_a() {
    let base = base_weights();
    let dir = tmp("merge-at-load");
    let (rank, alpha) = (4, 16.0);
    make_adapter(&dir, &base, &MODULES, rank, lora_config(rank, alpha), 0);
    let (_, src) = open_model(&fixture(), Some(&dir)).unwrap();
    let lora = src.adapter().unwrap();
    assert_eq!(lora.scale, 4.0, "alpha / r");
    let (_, plain) = open_model(&fixture(), None).unwrap();
    let adapter = Weights::open_files(&[dir.join("adapter_model.safetensors")]).unwrap();
    let f32_of = |name: &str| -> Vec<f32> { adapter.view(name).unwrap().bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect() };
    for m in MODULES {
        let name = format!("{m}.weight");
        let shape = base.info(&name).unwrap().shape.clone();
        let (out, inner) = (shape[0], shape[1..].iter().product::<usize>());
        let (a, b) = (f32_of(&format!("base_model.model.{m}.lora_A.weight")), f32_of(&format!("base_model.model.{m}.lora_B.weight")));
        let w = bf16s(&plain, &base, &name);
        let merged = bf16s(&src, &base, &name);
        let mut changed = 0;
        for o in 0..out {
            for i in 0..inner {
                // Reference in f64; the engine sums in f32 and rounds once, so at most one bf16 step apart.
                let d: f64 = (0..rank).map(|k| b[o * rank + k] as f64 * a[k * inner + i] as f64).sum();
                let want = w[o * inner + i].to_f64() + 4.0 * d;
                let got = merged[o * inner + i].to_f64();
                assert!((got - want).abs() <= want.abs() / 128.0 + 1e-6, "{name}[{o},{i}]: merged {got}, want {want}");
                changed += (merged[o * inner + i] != w[o * inner + i]) as usize;
            }
        }
        assert!(changed > out * inner / 2, "{name}: the adapter changed only {changed} of {} values", out * inner);
    }
    // A tensor the adapter does not target comes through unchanged.
    let other = "llm.model.layers.0.self_attn.k_proj.weight";
    assert_eq!(bf16s(&src, &base, other), bf16s(&plain, &base, other));
}

#[test]
fn rslora_scales_by_alpha_over_sqrt_r() {
    let base = base_weights();
    let dir = tmp("rslora");
    let mut cfg = lora_config(4, 16.0);
    cfg["use_rslora"] = json!(true);
    make_adapter(&dir, &base, &MODULES[..1], 4, cfg, 0);
    let (_, src) = open_model(&fixture(), Some(&dir)).unwrap();
    assert_eq!(src.adapter().unwrap().scale, 8.0, "16 / √4");
}

#[test]
fn merged_directory_gives_the_same_logits_as_lora_at_load_and_other_than_the_base() {
    let base = base_weights();
    let dir = tmp("adapter");
    make_adapter(&dir, &base, &MODULES, 8, lora_config(8, 32.0), 0);
    let out = tmp("merged").join("model");
    assert_eq!(merge(&fixture(), &dir, &out).unwrap(), MODULES.len());
    let (_, adapted) = open_model(&fixture(), Some(&dir)).unwrap();
    let (_, merged) = open_model(&out, None).unwrap();
    let (_, plain) = open_model(&fixture(), None).unwrap();
    for name in base.names() {
        let info = base.info(name).unwrap();
        if info.dtype == DType::BF16 {
            assert_eq!(bf16s(&adapted, &base, name), bf16s(&merged, &base, name), "{name}");
        }
    }
    assert!(out.join("config.json").exists() && out.join("tokenizer.json").exists(), "the other files come along");
    let (la, lm, lb) = (logits(&adapted), logits(&merged), logits(&plain));
    assert_eq!(la, lm, "--lora and the merged directory give bit-identical logits");
    let diff = la.iter().zip(&lb).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff > 1e-3, "the adapter changes the logits (max |Δ| {diff})");
    // Merging into a directory that holds files is refused and leaves it alone.
    let e = merge(&fixture(), &dir, &out).unwrap_err().to_string();
    assert!(e.contains("already exists and is not empty"), "{e}");
}

#[test]
fn adapter_for_a_model_of_other_shapes_is_refused_naming_the_module() {
    let base = base_weights();
    let dir = tmp("other-shapes");
    // An adapter made for a model whose hidden size is 16 wider.
    make_adapter(&dir, &base, &MODULES[..1], 4, lora_config(4, 8.0), 16);
    let e = open_model(&fixture(), Some(&dir)).err().unwrap();
    assert_eq!(e.code(), "model_error");
    let m = e.to_string();
    assert!(m.contains("llm.model.layers.0.self_attn.q_proj") && m.contains("[4, 48]") && m.contains("other shapes"), "{m}");
    // r in the config differing from the tensors' rank.
    let dir = tmp("rank");
    make_adapter(&dir, &base, &MODULES[..1], 4, lora_config(8, 8.0), 0);
    let m = open_model(&fixture(), Some(&dir)).err().unwrap().to_string();
    assert!(m.contains("at rank 8"), "{m}");
    // A module the base model lacks (an adapter for a deeper model).
    let dir = tmp("no-module");
    make_adapter(&dir, &base, &MODULES[..1], 4, lora_config(4, 8.0), 0);
    let t = Weights::open_files(&[dir.join("adapter_model.safetensors")]).unwrap();
    let mut tensors = Vec::new();
    for n in t.names() {
        let v = t.view(n).unwrap();
        tensors.push((n.replace("layers.0.", "layers.7."), "F32", v.info.shape.clone(), v.bytes.to_vec()));
    }
    write_safetensors(&dir.join("adapter_model.safetensors"), &tensors);
    let m = open_model(&fixture(), Some(&dir)).err().unwrap().to_string();
    assert!(m.contains("llm.model.layers.7.self_attn.q_proj") && m.contains("no weight"), "{m}");
}

#[test]
fn unsupported_adapter_configs_are_refused_with_the_option_named() {
    let base = base_weights();
    let cases: [(&str, serde_json::Value, &str); 7] = [
        ("use_dora", json!(true), "use_dora"),
        ("modules_to_save", json!(["lm_head"]), "modules_to_save"),
        ("rank_pattern", json!({"q_proj": 16}), "rank_pattern"),
        ("alpha_pattern", json!({"q_proj": 32}), "alpha_pattern"),
        ("peft_type", json!("LOHA"), "LOHA"),
        ("bias", json!("all"), "bias"),
        ("fan_in_fan_out", json!(true), "fan_in_fan_out"),
    ];
    for (key, value, needle) in cases {
        let dir = tmp(key);
        let mut cfg = lora_config(4, 8.0);
        cfg[key] = value;
        make_adapter(&dir, &base, &MODULES[..1], 4, cfg, 0);
        let e = open_model(&fixture(), Some(&dir)).err().unwrap_or_else(|| panic!("{key} accepted"));
        assert_eq!(e.code(), "model_error");
        assert!(e.to_string().contains(needle) && e.to_string().contains("not supported"), "{key}: {e}");
    }
    // An embedding target, by PEFT's embedding factor names and by a plain lora_A/B on the table.
    let dir = tmp("embedding");
    std::fs::write(dir.join("adapter_config.json"), serde_json::to_vec(&lora_config(4, 8.0)).unwrap()).unwrap();
    let z = |n| f32_bytes(&vec![0.0; n]);
    write_safetensors(&dir.join("adapter_model.safetensors"), &[("base_model.model.llm.model.embed_tokens.lora_embedding_A".into(), "F32", vec![4, 151936], z(4 * 151936))]);
    let m = open_model(&fixture(), Some(&dir)).err().unwrap().to_string();
    assert!(m.contains("embedding") && m.contains("not supported"), "{m}");
    write_safetensors(
        &dir.join("adapter_model.safetensors"),
        &[("base_model.model.vte.lora_A.weight".into(), "F32", vec![4, 32], z(128)), ("base_model.model.vte.lora_B.weight".into(), "F32", vec![1024, 4], z(4096))],
    );
    let m = open_model(&fixture(), Some(&dir)).err().unwrap().to_string();
    assert!(m.contains("embedding table") && m.contains("not supported"), "{m}");
    // A missing directory and a missing config name what is missing.
    let m = open_model(&fixture(), Some(Path::new("/nonexistent/adapter"))).err().unwrap().to_string();
    assert!(m.contains("/nonexistent/adapter") && m.contains("does not exist"), "{m}");
    let dir = tmp("no-config");
    let m = open_model(&fixture(), Some(&dir)).err().unwrap().to_string();
    assert!(m.contains("adapter_config.json"), "{m}");
}

// ---------------------------------------------------------------------------------------------------
// torch.save checkpoints

/// CRC-32 (IEEE) of the zip records.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 };
        }
    }
    !c
}

/// A zip of stored (uncompressed) records whose data start 64-byte aligned, as torch's writer does
/// (it pads the local header's extra field).
fn write_zip(path: &Path, records: &[(String, Vec<u8>)]) {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in records {
        let local = out.len();
        let base = local + 30 + name.len() + 4;
        let pad = (64 - base % 64) % 64;
        let crc = crc32(data);
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method 0, time, date
        out.extend(crc.to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(((4 + pad) as u16).to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(0x4246u16.to_le_bytes()); // "FB": torch's padding field
        out.extend((pad as u16).to_le_bytes());
        out.extend(std::iter::repeat_n(b'Z', pad));
        assert_eq!(out.len() % 64, 0);
        out.extend(data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // made by, needed, flags, method, time, date
        central.extend(crc.to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // extra, comment, disk, attributes
        central.extend((local as u32).to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd = out.len();
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0, 0, 0, 0]);
    out.extend((records.len() as u16).to_le_bytes());
    out.extend((records.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend((cd as u32).to_le_bytes());
    out.extend([0, 0]);
    std::fs::write(path, out).unwrap();
}

/// Pickle protocol 2 as torch.save writes a state dict (pickle.Pickler with persistent_id for
/// storages): memo puts after every new object, tensors through `torch._utils._rebuild_tensor_v2`.
struct Pickle {
    out: Vec<u8>,
    memo: u32,
}

impl Pickle {
    fn put(&mut self) {
        if self.memo < 256 {
            self.out.extend([b'q', self.memo as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend(self.memo.to_le_bytes());
        }
        self.memo += 1;
    }
    fn string(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.as_bytes());
        self.put();
    }
    fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        self.out.extend(format!("{module}\n{name}\n").as_bytes());
        self.put();
    }
    fn int(&mut self, v: usize) {
        match v {
            0..=0xff => self.out.extend([b'K', v as u8]),
            0x100..=0xffff => self.out.extend([b'M', v as u8, (v >> 8) as u8]),
            _ if v < 1 << 31 => {
                self.out.push(b'J');
                self.out.extend((v as i32).to_le_bytes());
            }
            _ => {
                self.out.extend([0x8a, 8]);
                self.out.extend((v as u64).to_le_bytes());
            }
        }
    }
    fn tuple(&mut self, items: &[usize]) {
        match items.len() {
            0 => self.out.push(b')'),
            1..=3 => {
                items.iter().for_each(|&v| self.int(v));
                self.out.push(0x84 + items.len() as u8);
                self.put();
            }
            _ => {
                self.out.push(b'(');
                items.iter().for_each(|&v| self.int(v));
                self.out.push(b't');
                self.put();
            }
        }
    }
    /// key → _rebuild_tensor_v2(storage key (bf16), offset 0, shape, contiguous stride, False, OrderedDict()).
    fn tensor(&mut self, name: &str, key: &str, shape: &[usize], storage: &str) {
        self.string(name);
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(b'(');
        self.out.push(b'(');
        self.string("storage");
        self.global("torch", storage);
        self.string(key);
        self.string("cpu");
        self.int(shape.iter().product());
        self.out.push(b't');
        self.put();
        self.out.push(b'Q');
        self.int(0);
        self.tuple(shape);
        let mut stride = vec![1; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * shape[d + 1];
        }
        self.tuple(&stride);
        self.out.push(0x89);
        self.global("collections", "OrderedDict");
        self.out.extend([b')', b'R']);
        self.put();
        self.out.push(b't');
        self.put();
        self.out.push(b'R');
        self.put();
    }
}

/// Writes `names` of `w` as one torch.save file `path`: an OrderedDict with torch's `_metadata`
/// attribute (model.state_dict()) when `ordered`, else a plain dict (transformers' shards).
fn write_bin(path: &Path, w: &Weights, names: &[&String], ordered: bool) {
    let archive = path.file_stem().unwrap().to_string_lossy().into_owned();
    let mut p = Pickle { out: vec![0x80, 2], memo: 0 };
    if ordered {
        p.global("collections", "OrderedDict");
        p.out.extend([b')', b'R']);
        p.put();
    } else {
        p.out.push(b'}');
        p.put();
    }
    p.out.push(b'(');
    let mut records = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let v = w.view(name).unwrap();
        let storage = match v.info.dtype {
            DType::BF16 => "BFloat16Storage",
            DType::F32 => "FloatStorage",
            other => panic!("{other:?}"),
        };
        p.tensor(name, &k.to_string(), &v.info.shape, storage);
        records.push((format!("{archive}/data/{k}"), v.bytes.to_vec()));
    }
    p.out.push(b'u');
    if ordered {
        // state: {"_metadata": OrderedDict({"": {"version": 1}})} set by BUILD.
        p.out.push(b'}');
        p.put();
        p.string("_metadata");
        p.global("collections", "OrderedDict");
        p.out.extend([b')', b'R']);
        p.put();
        p.string("");
        p.out.push(b'}');
        p.put();
        p.string("version");
        p.int(1);
        p.out.push(b's');
        p.out.push(b's');
        p.out.push(b's');
        p.out.push(b'b');
    }
    p.out.push(b'.');
    let mut all = vec![(format!("{archive}/data.pkl"), p.out), (format!("{archive}/byteorder"), b"little".to_vec())];
    all.extend(records);
    all.push((format!("{archive}/version"), b"3\n".to_vec()));
    write_zip(path, &all);
}

/// A model directory with the fixture's config (model_type `model_type`), tokenizer files and
/// weights as torch.save files: one pytorch_model.bin, or `shards` shards with their index.
fn bin_model(tag: &str, shards: usize, model_type: &str) -> PathBuf {
    let dir = tmp(tag);
    for f in std::fs::read_dir(fixture()).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().to_string_lossy().into_owned();
        if f.path().is_file() && !name.ends_with(".safetensors") {
            std::fs::copy(f.path(), dir.join(&name)).unwrap();
        }
    }
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    cfg["model_type"] = json!(model_type);
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let w = base_weights();
    let mut names: Vec<&String> = w.names().collect();
    names.sort();
    if shards == 1 {
        write_bin(&dir.join("pytorch_model.bin"), &w, &names, true);
    } else {
        let mut map = serde_json::Map::new();
        let per = names.len().div_ceil(shards);
        for (s, chunk) in names.chunks(per).enumerate() {
            let file = format!("pytorch_model-{:05}-of-{shards:05}.bin", s + 1);
            write_bin(&dir.join(&file), &w, chunk, false);
            chunk.iter().for_each(|n| _ = map.insert((*n).clone(), json!(file)));
        }
        std::fs::write(dir.join("pytorch_model.bin.index.json"), serde_json::to_vec(&json!({"metadata": {}, "weight_map": map})).unwrap()).unwrap();
    }
    dir
}

fn assert_same_as_fixture(dir: &Path) {
    let base = base_weights();
    let bin = Weights::open_dir(dir).unwrap();
    assert!(bin.files().iter().all(|f| f.extension().unwrap() == "bin"));
    assert_eq!(bin.names().count(), base.names().count());
    for name in base.names() {
        let (a, b) = (base.view(name).unwrap(), bin.view(name).unwrap());
        assert_eq!((a.info.dtype, &a.info.shape), (b.info.dtype, &b.info.shape), "{name}");
        assert_eq!(a.bytes, b.bytes, "{name}");
    }
    let (_, bin_src) = open_model(dir, None).unwrap();
    let (_, st_src) = open_model(&fixture(), None).unwrap();
    assert_eq!(logits(&bin_src), logits(&st_src), "the .bin checkpoint gives the fixture's logits");
}

#[test]
fn pytorch_model_bin_loads_with_the_fixtures_tensors_and_logits() {
    assert_same_as_fixture(&bin_model("bin-single", 1, "ovis2_5"));
}

#[test]
fn sharded_bin_checkpoint_of_model_type_ovis_loads() {
    let dir = bin_model("bin-shards", 3, "ovis");
    assert_same_as_fixture(&dir);
    // And an adapter merges into it like into the safetensors model; the merged copy is safetensors.
    let adapter = tmp("bin-adapter");
    make_adapter(&adapter, &base_weights(), &MODULES[..2], 4, lora_config(4, 8.0), 0);
    let out = tmp("bin-merged").join("m");
    merge(&dir, &adapter, &out).unwrap();
    assert!(out.join("model.safetensors").exists() && !out.join("pytorch_model.bin.index.json").exists());
    let (_, a) = open_model(&fixture(), Some(&adapter)).unwrap();
    let (_, m) = open_model(&out, None).unwrap();
    assert_eq!(logits(&a), logits(&m));
}

#[test]
fn bin_with_code_or_other_content_is_refused_clearly() {
    let dir = bin_model("bin-evil", 1, "ovis2_5");
    let path = dir.join("pytorch_model.bin");
    let zip = std::fs::read(&path).unwrap();
    // Swap the rebuild function's name for os.system (same length keeps the zip valid).
    let needle = b"torch._utils\n_rebuild_tensor_v2\n";
    let evil = b"posixpath\nsystemxxxxxxxxxxxxxxx\n";
    assert_eq!(needle.len(), evil.len());
    let at = zip.windows(needle.len()).position(|w| w == needle).unwrap();
    let mut bad = zip.clone();
    bad[at..at + needle.len()].copy_from_slice(evil);
    std::fs::write(&path, &bad).unwrap();
    let m = Weights::open_dir(&dir).err().unwrap().to_string();
    assert!(m.contains("posixpath.systemxxxxxxxxxxxxxxx") && m.contains("refused"), "{m}");
    // A file cut short.
    std::fs::write(&path, &zip[..zip.len() / 2]).unwrap();
    let m = Weights::open_dir(&dir).err().unwrap().to_string();
    assert!(m.contains("pytorch_model.bin") && m.contains("truncated"), "{m}");
    // An int8 storage.
    let s = b"torch\nBFloat16Storage\n";
    let at = zip.windows(s.len()).position(|w| w == s).unwrap();
    let mut bad = zip.clone();
    bad[at..at + s.len()].copy_from_slice(b"torch\nCharStorageXXXX\n");
    std::fs::write(&path, &bad).unwrap();
    let m = Weights::open_dir(&dir).err().unwrap().to_string();
    assert!(m.contains("torch.CharStorageXXXX") && m.contains("not supported"), "{m}");
}

#[test]
fn merging_into_a_sharded_safetensors_base_keeps_its_shards_and_index() {
    // The fixture split into two safetensors shards with an index, as the hub's larger models are.
    let base = base_weights();
    let dir = tmp("sharded-base");
    for f in std::fs::read_dir(fixture()).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().to_string_lossy().into_owned();
        if f.path().is_file() && !name.ends_with(".safetensors") {
            std::fs::copy(f.path(), dir.join(&name)).unwrap();
        }
    }
    let mut names: Vec<&String> = base.names().collect();
    names.sort();
    let mut map = serde_json::Map::new();
    for (i, chunk) in names.chunks(names.len().div_ceil(2)).enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        let tensors: Vec<_> = chunk.iter().map(|n| {
            let v = base.view(n).unwrap();
            ((*n).clone(), v.info.dtype_name.as_str(), v.info.shape.clone(), v.bytes.to_vec())
        }).collect();
        write_safetensors(&dir.join(&file), &tensors);
        chunk.iter().for_each(|n| _ = map.insert((*n).clone(), json!(file)));
    }
    std::fs::write(dir.join("model.safetensors.index.json"), serde_json::to_vec(&json!({"metadata": {}, "weight_map": map})).unwrap()).unwrap();
    let adapter = tmp("sharded-adapter");
    make_adapter(&adapter, &base, &MODULES, 4, lora_config(4, 8.0), 0);
    let out = tmp("sharded-merged").join("m");
    merge(&dir, &adapter, &out).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|f| f.contains("safetensors")).collect();
    files.sort();
    assert_eq!(files, ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]);
    let (_, a) = open_model(&fixture(), Some(&adapter)).unwrap();
    let (_, m) = open_model(&out, None).unwrap();
    assert_eq!(logits(&a), logits(&m));
    for name in MODULES.map(|m| format!("{m}.weight")) {
        assert_eq!(bf16s(&a, &base, &name), bf16s(&m, &base, &name), "{name}");
    }
}
