//! The Qwen3 decoder against the tiny-ovis2.5 fixture (float32 reference from transformers), KV-cache
//! consistency, and load-time validation of broken model directories.
use ovis_engine::error::EngineError;
use ovis_engine::generate::kv_cache::KvCache;
use ovis_engine::generate::sampler::{Sampler, SamplingParams};
use ovis_engine::model::config::ModelConfig;
use ovis_engine::backend::cpu::qwen3::Qwen3;
use ovis_engine::model::source::WeightSource;
use ovis_engine::model::weights::Weights;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../test/fixtures/tiny-ovis2.5")
}

fn load(dir: &Path) -> Result<Qwen3, EngineError> {
    let cfg = ModelConfig::from_dir(dir)?;
    Qwen3::load(&cfg.llm, &WeightSource::Files(Arc::new(Weights::open_dir(dir)?)), ovis_engine::backend::cpu::quant::WeightMode::Bf16)
}

/// Raw little-endian tensors of expected.safetensors.
struct Expected(Weights);

impl Expected {
    fn open() -> Expected {
        Expected(Weights::open_files(&[fixture().join("expected.safetensors")]).expect("expected.safetensors"))
    }
    fn f32s(&self, name: &str) -> Vec<f32> {
        let v = self.0.view(name).unwrap();
        assert_eq!(v.info.dtype_name, "F32", "{name}");
        v.bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    }
    fn i64s(&self, name: &str) -> Vec<i64> {
        let v = self.0.view(name).unwrap();
        assert_eq!(v.info.dtype_name, "I64", "{name}");
        v.bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
    }
    fn ids(&self, name: &str) -> Vec<u32> {
        self.i64s(name).into_iter().map(|v| u32::try_from(v).expect("text case ids are ≥ 0")).collect()
    }
}

fn case_gaps(name: &str) -> Vec<f64> {
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(fixture().join("cases.json")).unwrap()).unwrap();
    let case = cases["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
    case["greedy_top2_gaps"].as_array().unwrap().iter().map(|g| g.as_f64().unwrap()).collect()
}

fn forward_ids(model: &Qwen3, cache: &mut KvCache, ids: &[u32]) -> Vec<f32> {
    let mut e = vec![0f32; ids.len() * model.config().hidden];
    model.embed(ids, &mut e);
    model.forward(cache, &e).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn top2_gap(z: &[f32]) -> f32 {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &v in z {
        if v > a {
            (a, b) = (v, a);
        } else if v > b {
            b = v;
        }
    }
    a - b
}

fn check_case(name: &str) {
    let model = load(&fixture()).unwrap();
    let exp = Expected::open();
    let ids = exp.ids(&format!("{name}.input_ids"));
    let mut cache = KvCache::new(model.config());
    let mut logits = forward_ids(&model, &mut cache, &ids);
    let want = exp.f32s(&format!("{name}.last_logits"));
    let diff = max_abs_diff(&logits, &want);
    eprintln!("{name}: max |logit - reference| = {diff:e}");
    assert!(diff <= 1e-3, "{name}: last logits differ by {diff} (> 1e-3)");
    assert_eq!(cache.len(), ids.len());

    let greedy = exp.i64s(&format!("{name}.greedy_ids"));
    let gaps = case_gaps(name);
    // From the first near-tie on, float noise may legitimately pick the other token.
    let steps = gaps.iter().position(|&g| g < 0.02).unwrap_or(greedy.len());
    let mut sampler = Sampler::new(SamplingParams::default());
    let mut out = Vec::new();
    for (step, &want_gap) in gaps.iter().enumerate().take(steps) {
        let gap = top2_gap(&logits);
        assert!((gap as f64 - want_gap).abs() < 2e-3, "{name} step {step}: top-2 gap {gap} vs reference {want_gap}");
        let id = sampler.sample(&mut logits, &[], 0).id;
        out.push(id as i64);
        logits = forward_ids(&model, &mut cache, &[id]);
    }
    assert_eq!(out, greedy[..steps], "{name}: greedy continuation");
}

#[test]
fn text_case_matches_reference() {
    check_case("text");
}

#[test]
fn think_case_matches_reference() {
    check_case("think");
}

#[test]
fn incremental_decoding_equals_full_forward() {
    let model = load(&fixture()).unwrap();
    let ids = Expected::open().ids("text.input_ids");
    let full = forward_ids(&model, &mut KvCache::new(model.config()), &ids);
    // Prefix of 11, a chunk of 5 (GEMM path), then single tokens (GEMV path).
    let mut cache = KvCache::new(model.config());
    forward_ids(&model, &mut cache, &ids[..11]);
    forward_ids(&model, &mut cache, &ids[11..16]);
    let mut last = Vec::new();
    for &id in &ids[16..] {
        last = forward_ids(&model, &mut cache, &[id]);
    }
    assert_eq!(cache.len(), ids.len());
    let diff = max_abs_diff(&last, &full);
    assert!(diff <= 1e-4, "incremental vs full forward differ by {diff}");
}

#[test]
fn truncate_then_reappend_equals_fresh() {
    let model = load(&fixture()).unwrap();
    let exp = Expected::open();
    let (text, think) = (exp.ids("text.input_ids"), exp.ids("think.input_ids"));
    let mut cache = KvCache::new(model.config());
    forward_ids(&model, &mut cache, &text);
    let bytes_full = cache.bytes();
    // Keep the shared chat-template prefix of the text case, continue with the think case's tail.
    cache.truncate(3);
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.bytes(), bytes_full / text.len() * 3);
    let mut mixed = text[..3].to_vec();
    mixed.extend_from_slice(&think[3..]);
    let reused = forward_ids(&model, &mut cache, &think[3..]);
    let fresh = forward_ids(&model, &mut KvCache::new(model.config()), &mixed);
    let diff = max_abs_diff(&reused, &fresh);
    assert!(diff <= 1e-4, "truncated+reappended vs fresh differ by {diff}");
    cache.clear();
    assert!(cache.is_empty() && cache.bytes() == 0);
}

#[test]
fn forward_rejects_bad_input() {
    let model = load(&fixture()).unwrap();
    let mut cache = KvCache::new(model.config());
    assert!(matches!(model.forward(&mut cache, &[]), Err(EngineError::BadRequest(_))));
    assert!(matches!(model.forward(&mut cache, &[0.0; 33]), Err(EngineError::BadRequest(_))));
    assert!(model.check_ids(&[151_936]).is_err() && model.check_ids(&[151_935]).is_ok());
    assert_eq!(cache.len(), 0);
}

/// A copy of the fixture's config.json and a rewritten model.safetensors: `edit` changes the header
/// JSON, `keep` bytes of the file survive (None = all).
fn broken_dir(tag: &str, edit: impl Fn(&mut serde_json::Map<String, Value>), keep: Option<usize>, config: impl Fn(&mut Value)) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ovis-llm-parity-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(fixture().join("config.json")).unwrap()).unwrap();
    config(&mut cfg);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let bytes = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(header.as_object_mut().unwrap());
    let mut json = header.to_string().into_bytes();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut file = (json.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&json);
    file.extend_from_slice(&bytes[8 + n..]);
    file.truncate(keep.unwrap_or(file.len()));
    std::fs::write(dir.join("model.safetensors"), file).unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    let err = load(dir).err().expect("loading a broken model must fail");
    std::fs::remove_dir_all(dir).ok();
    assert!(matches!(err, EngineError::Model(_)), "{err:?} is not a model error");
    err.to_string()
}

#[test]
fn missing_tensor_is_named() {
    let name = "llm.model.layers.1.mlp.up_proj.weight";
    let msg = load_error(&broken_dir("missing", |h| drop(h.remove(name)), None, |_| {}));
    assert!(msg.contains(name) && msg.contains("missing") && msg.contains("[96, 32]"), "{msg}");
}

#[test]
fn wrong_shape_is_named_with_both_shapes() {
    let name = "llm.model.layers.0.self_attn.k_proj.weight";
    let msg = load_error(&broken_dir("shape", |h| h[name]["shape"] = serde_json::json!([16, 64]), None, |_| {}));
    assert!(msg.contains(name) && msg.contains("[16, 64]") && msg.contains("[32, 32]"), "{msg}");
}

#[test]
fn truncated_file_names_a_tensor() {
    let len = std::fs::metadata(fixture().join("model.safetensors")).unwrap().len() as usize;
    let msg = load_error(&broken_dir("truncated", |_| {}, Some(len / 2), |_| {}));
    assert!(msg.contains("truncated") && msg.contains("tensor ") && msg.contains(".weight"), "{msg}");
}

#[test]
fn untied_model_needs_lm_head() {
    let msg = load_error(&broken_dir("untied", |_| {}, None, |c| c["llm_config"]["tie_word_embeddings"] = Value::Bool(false)));
    assert!(msg.contains("llm.lm_head.weight") && msg.contains("[151936, 32]"), "{msg}");
}

#[test]
fn param_count_matches_the_tensors() {
    let model = load(&fixture()).unwrap();
    // embed 151936·32 + 2 layers × (2·32 + 2·16 + 64·32 + 2·32·32 + 32·64 + 3·96·32) + final norm 32.
    let per_layer = 2 * 32 + 2 * 16 + 64 * 32 + 2 * 32 * 32 + 32 * 64 + 3 * 96 * 32;
    assert_eq!(model.param_count(), 151_936 * 32 + 2 * per_layer + 32);
}

#[test]
fn synthetic_model_is_reproducible_and_finite() {
    let cfg = ModelConfig::from_dir(&fixture()).unwrap().llm;
    let run = |seed| {
        let model = Qwen3::synthetic(&cfg, seed);
        assert_eq!(model.param_count(), load(&fixture()).unwrap().param_count());
        forward_ids(&model, &mut KvCache::new(&cfg), &[1, 2, 3, 151_000])
    };
    let (a, b, c) = (run(5), run(5), run(6));
    assert!(a.iter().all(|v| v.is_finite()));
    assert_eq!(a, b);
    assert_ne!(a, c);
}
