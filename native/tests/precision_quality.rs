//! Quality of `--precision bf16` (backend/cpu/precision.rs) against the exact f32 mode, measured on
//! the tiny-ovis2.5 fixture (fast, always) and on synthetic Ovis2.5-2B shapes (`--ignored`, ~minutes):
//! vision-embedding cosine, last-position logits cosine and greedy agreement. The precision is
//! process-wide, so each test here switches it only inside one test function, and this file is its
//! own test binary (no other test of the process sees the switch).
//! Run with `--nocapture` to see the figures (docs/performance.md records them).
use ovis_engine::backend::cpu::precision::{bf16_support, set_precision, Precision};
use ovis_engine::backend::cpu::quant::WeightMode;
use ovis_engine::backend::cpu::qwen3::Qwen3;
use ovis_engine::backend::cpu::vision::VisionEncoder;
use ovis_engine::backend::cpu::visual_head::VisualHead;
use ovis_engine::generate::kv_cache::KvCache;
use ovis_engine::generate::sampler::{Sampler, SamplingParams};
use ovis_engine::model::source::WeightSource;
use std::sync::Mutex;

mod common;
use common::*;

/// The two tests below both switch the process-wide precision: one at a time.
static SWITCH: Mutex<()> = Mutex::new(());


fn embeds(vit: &VisionEncoder, head: &VisualHead, pixels: &[f32], grids: &[[usize; 3]], p: Precision) -> Vec<f32> {
    set_precision(p);
    let feats = vit.encode(pixels, grids).expect("encode");
    let out = head.forward(&feats).expect("head").1;
    set_precision(Precision::F32);
    out
}

/// Last-position logits of `ids`, then `steps` greedy tokens, in precision `p`.
fn greedy(model: &Qwen3, ids: &[u32], steps: usize, p: Precision) -> (Vec<f32>, Vec<u32>) {
    set_precision(p);
    let forward = |cache: &mut KvCache, ids: &[u32]| {
        let mut e = vec![0f32; ids.len() * model.config().hidden];
        model.embed(ids, &mut e);
        model.forward(cache, &e).expect("forward")
    };
    let mut cache = KvCache::new(model.config());
    let first = forward(&mut cache, ids);
    let (mut logits, mut out) = (first.clone(), Vec::new());
    let mut sampler = Sampler::new(SamplingParams::default());
    for _ in 0..steps {
        let id = sampler.sample(&mut logits, &[], 0).id;
        out.push(id);
        logits = forward(&mut cache, &[id]);
    }
    set_precision(Precision::F32);
    (first, out)
}

/// Tokens equal from the start until the first difference.
fn agreement(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn skip_without_bf16(name: &str) -> bool {
    if bf16_support().path.is_none() {
        eprintln!("SKIP precision_quality::{name}: {}", bf16_support().why);
        return true;
    }
    eprintln!("{name}: bf16 path: {}", bf16_support().why);
    false
}

/// Bounds, from the measured figures with margin (docs/performance.md): embeddings cosine ≥ 0.999,
/// logits cosine ≥ 0.999 on the fixture. Greedy agreement is reported, not asserted (a near-tie may
/// flip in either precision); the think case (no near-tie in its first 8 steps) must agree for 8.
#[test]
fn fixture_bf16_vs_f32() {
    if skip_without_bf16("fixture_bf16_vs_f32") {
        return;
    }
    let _one = SWITCH.lock().unwrap();
    let f = fixture();
    let vit = VisionEncoder::load(&f.cfg.vit, &f.source).expect("load ViT");
    let head = VisualHead::load(&f.cfg, &f.source).expect("load head");
    for case in ["image", "two_images", "video", "multiturn"] {
        let (pixels, _) = case_pixels(&f.expected, case);
        let g = grids(&f.expected, case);
        let a = embeds(&vit, &head, &pixels, &g, Precision::F32);
        let b = embeds(&vit, &head, &pixels, &g, Precision::Bf16);
        let c = cosine(&a, &b);
        println!("fixture {case:>10}: visual embeddings cosine bf16 vs f32 = {c:.6} ({} patches)", pixels.len() / 768);
        assert!(c >= 0.999, "{case}: visual embeddings cosine {c}");
        // Identical results would mean the switch never reached the products.
        assert!(c < 1.0 - 1e-9, "{case}: bf16 and f32 embeddings are identical: the bf16 path did not run");
    }
    let llm = Qwen3::load(&f.cfg.llm, &f.source, WeightMode::Bf16).expect("load LLM");
    for case in ["text", "think"] {
        let ids: Vec<u32> = i64s(&f.expected, &format!("{case}.input_ids")).iter().map(|&v| v as u32).collect();
        let steps = i64s(&f.expected, &format!("{case}.greedy_ids")).len();
        let (la, ga) = greedy(&llm, &ids, steps, Precision::F32);
        let (lb, gb) = greedy(&llm, &ids, steps, Precision::Bf16);
        let c = cosine(&la, &lb);
        let agree = agreement(&ga, &gb);
        println!("fixture {case:>10}: last logits cosine = {c:.6} ({} prompt ids); greedy agree {agree} of {steps}", ids.len());
        assert!(c >= 0.999, "{case}: logits cosine {c}");
        if case == "think" {
            assert!(agree >= 8.min(steps), "{case}: greedy agrees for only {agree} tokens");
        }
    }
}

/// Synthetic Ovis2.5-2B weights (the bench's): one 448² image (784 patches, random pixels in [-1, 1])
/// through the ViT and head, and a 128-id prompt through the decoder with 8 greedy steps.
#[test]
#[ignore = "minutes on 2 cores: cargo test --release --test precision_quality -- --ignored --nocapture"]
fn synthetic_2b_bf16_vs_f32() {
    if skip_without_bf16("synthetic_2b_bf16_vs_f32") {
        return;
    }
    let _one = SWITCH.lock().unwrap();
    let cfg = ovis_engine::bench::presets::preset_config("2b").expect("2b preset");
    let src = WeightSource::Synthetic(1234);
    let vit = VisionEncoder::load(&cfg.vit, &src).expect("ViT");
    let head = VisualHead::load(&cfg, &src).expect("head");
    let pixels: Vec<f32> = (0..784 * 768).map(|i| ((i as u64 * 2_654_435_761) % 2001) as f32 / 1000.0 - 1.0).collect();
    let a = embeds(&vit, &head, &pixels, &[[1, 28, 28]], Precision::F32);
    let b = embeds(&vit, &head, &pixels, &[[1, 28, 28]], Precision::Bf16);
    println!("synthetic 2b 448²: visual embeddings cosine bf16 vs f32 = {:.6}", cosine(&a, &b));
    drop((vit, head));
    let llm = Qwen3::load(&cfg.llm, &src, WeightMode::Bf16).expect("LLM");
    let ids: Vec<u32> = (0..128u32).map(|i| (i * 7919 + 11) % cfg.llm.vocab as u32).collect();
    let (la, ga) = greedy(&llm, &ids, 8, Precision::F32);
    let (lb, gb) = greedy(&llm, &ids, 8, Precision::Bf16);
    println!("synthetic 2b prompt 128: last logits cosine = {:.6}; greedy agree {} of 8 ({ga:?} vs {gb:?})", cosine(&la, &lb), agreement(&ga, &gb));
}
