//! Vision path parity against the tiny-ovis2.5 fixture (test/fixtures/tiny-ovis2.5/README.md): pixels from
//! the resized images (spec §2.4–2.5), ViT features, visual tokens and embeddings, merging, bad inputs.
//! Run with `--nocapture` to see the measured errors; `--ignored` adds the real-shape ViT timing.
use half::bf16;
use ovis_engine::error::EngineError;
use ovis_engine::generate::kv_cache::KvCache;
use ovis_engine::model::config::ModelConfig;
use ovis_engine::backend::cpu::merge::merge_embeddings;
use ovis_engine::backend::cpu::qwen3::Qwen3;
use ovis_engine::model::vision::layout::window_index;
use ovis_engine::backend::cpu::vision::VisionEncoder;
use ovis_engine::backend::cpu::visual_head::VisualHead;

mod common;
use common::*;

const TOL: f32 = 1e-4;
const IMAGE_CASES: [&str; 4] = ["image", "two_images", "video", "multiturn"];
/// Cases whose `resized.K` is not exactly what the reference fed its ViT (the README: "within one level").
/// multiturn from its resized image misses 1e-4 (measured 3.5e-3 features, 2.4e-4 tokens, 3.5e-4 embeds)
/// while its head on the reference features stays at 1e-6; one pixel moved by one level in
/// two_images.pixel_values moves the features by 1.7e-3, and two_images from its resized images (121
/// one-level values) gives 3.4e-3. So these cases get this looser end-to-end bound.
const ONE_LEVEL_CASES: [(&str, f32); 1] = [("multiturn", 1e-2)];

#[test]
fn resized_pixels_match_reference_pixel_values() {
    let f = fixture();
    let ours = pixels_from_resized(&f.expected, "two_images");
    let theirs = f32s(&f.expected, "two_images.pixel_values");
    assert_eq!(ours.len(), theirs.len());
    let level = 2.0 / 255.0;
    let mut differing = 0;
    for (a, b) in ours.iter().zip(&theirs) {
        let d = (a - b).abs();
        if d > 1e-6 {
            assert!((d - level).abs() < 1e-5, "a pixel differs by {d}, more than one level ({level})");
            differing += 1;
        }
    }
    let share = differing as f64 / ours.len() as f64;
    println!("two_images pixels: {differing} of {} values differ by one level ({:.4} %)", ours.len(), share * 100.0);
    assert!(share <= 0.00015, "{:.4} % of pixel values differ (the fixture README states 0.013 %)", share * 100.0);
}

#[test]
fn vision_and_head_match_reference() {
    let f = fixture();
    let vit = VisionEncoder::load(&f.cfg.vit, &f.source).expect("load ViT");
    let head = VisualHead::load(&f.cfg, &f.source).expect("load head");
    for case in IMAGE_CASES {
        let (pixels, source) = case_pixels(&f.expected, case);
        let g = grids(&f.expected, case);
        let feats = vit.encode(&pixels, &g).expect("encode");
        let want_feats = f32s(&f.expected, &format!("{case}.vit_features"));
        let e_feats = max_abs(&feats, &want_feats);

        // The head on our features (end to end) and on the reference's features (the head alone).
        let (probs, embeds) = head.forward(&feats).expect("head");
        let (ref_probs, ref_embeds) = head.forward(&want_feats).expect("head");
        let want_probs = f32s(&f.expected, &format!("{case}.visual_tokens"));
        let want_embeds = f32s(&f.expected, &format!("{case}.visual_embeds"));
        let (e_probs, e_embeds) = (max_abs(&probs, &want_probs), max_abs(&embeds, &want_embeds));
        let (h_probs, h_embeds) = (max_abs(&ref_probs, &want_probs), max_abs(&ref_embeds, &want_embeds));
        println!("{case:>10} ({source}): vit_features {e_feats:.2e}, visual_tokens {e_probs:.2e}, visual_embeds {e_embeds:.2e}; head alone: tokens {h_probs:.2e}, embeds {h_embeds:.2e}");
        assert!(probs.chunks(f.cfg.visual_vocab).all(|r| r[f.cfg.visual_vocab - 4..].iter().all(|&p| p == 0.0)), "{case}: pad columns must be 0");
        let tol = ONE_LEVEL_CASES.iter().find(|c| c.0 == case).map_or(TOL, |c| c.1);
        for (what, e, tol) in [("vit_features", e_feats, tol), ("visual_tokens", e_probs, tol), ("visual_embeds", e_embeds, tol), ("head-only tokens", h_probs, TOL), ("head-only embeds", h_embeds, TOL)] {
            assert!(e <= tol, "{case}: {what} max abs error {e:.3e} > {tol:e}");
        }
    }
}

#[test]
fn merged_embeddings_follow_input_ids() {
    let f = fixture();
    let head = VisualHead::load(&f.cfg, &f.source).unwrap();
    let h = f.cfg.llm.hidden;
    let table = f.weights.bf16("llm.model.embed_tokens.weight", &[f.cfg.llm.vocab, h]).unwrap();
    let text_embed = |ids: &[u32], out: &mut [f32]| {
        for (row, &id) in out.chunks_mut(h).zip(ids) {
            row.iter_mut().zip(&table.data()[id as usize * h..(id as usize + 1) * h]).for_each(|(o, w)| *o = w.to_f32());
        }
    };
    let vte = f.weights.bf16("vte.weight", &[f.cfg.visual_vocab, h]).unwrap();
    for case in IMAGE_CASES {
        let ids: Vec<i32> = i64s(&f.expected, &format!("{case}.input_ids")).iter().map(|&i| i as i32).collect();
        let visual = f32s(&f.expected, &format!("{case}.visual_embeds"));
        let merged = merge_embeddings(&ids, text_embed, &head, &visual, h).expect("merge");
        let mut atom = 0;
        for (i, (&id, row)) in ids.iter().zip(merged.chunks(h)).enumerate() {
            let want: Vec<f32> = match id {
                -300 => {
                    atom += 1;
                    visual[(atom - 1) * h..atom * h].to_vec()
                }
                -304..=-301 => {
                    let r = f.cfg.visual_vocab - 4 + (-301 - id) as usize;
                    vte.data()[r * h..(r + 1) * h].iter().map(|v| v.to_f32()).collect()
                }
                _ => table.data()[id as usize * h..(id as usize + 1) * h].iter().map(|v| v.to_f32()).collect(),
            };
            assert_eq!(row, &want[..], "{case}: position {i} (id {id})");
        }
        assert_eq!(atom * h, visual.len(), "{case}: every visual row used once");
    }
}

fn argmax(x: &[f32]) -> usize {
    x.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0
}

/// Prompt logits and greedy continuation from merged embeddings: (max |Δ last_logits|, steps compared).
fn run_llm(f: &Fixture, llm: &Qwen3, case: &str, embeds: &[f32]) -> (f32, usize) {
    let mut cache = KvCache::new(&f.cfg.llm);
    let mut logits = llm.forward(&mut cache, embeds).expect("forward");
    let e = max_abs(&logits, &f32s(&f.expected, &format!("{case}.last_logits")));
    let want = i64s(&f.expected, &format!("{case}.greedy_ids"));
    let gaps = cases_json()[case].clone();
    // Steps from the first near-tie (gap < 0.02) on may legitimately pick the other token.
    let steps = gaps.iter().position(|&g| g < 0.02).unwrap_or(want.len());
    let mut row = vec![0f32; f.cfg.llm.hidden];
    for (step, &w) in want.iter().enumerate().take(steps) {
        let got = argmax(&logits);
        assert_eq!(got as i64, w, "{case}: greedy step {step}");
        llm.embed(&[got as u32], &mut row);
        logits = llm.forward(&mut cache, &row).expect("decode step");
    }
    (e, steps)
}

#[test]
fn end_to_end_logits_and_greedy_ids() {
    let f = fixture();
    let vit = VisionEncoder::load(&f.cfg.vit, &f.source).unwrap();
    let head = VisualHead::load(&f.cfg, &f.source).unwrap();
    let llm = Qwen3::load(&f.cfg.llm, &f.source, ovis_engine::backend::cpu::quant::WeightMode::Bf16).expect("load Qwen3");
    let h = f.cfg.llm.hidden;
    for case in IMAGE_CASES {
        let ids: Vec<i32> = i64s(&f.expected, &format!("{case}.input_ids")).iter().map(|&i| i as i32).collect();
        let text_embed = |t: &[u32], out: &mut [f32]| llm.embed(t, out);
        // The reference's visual embeddings (merge + LLM alone), then ours from pixels (the whole path).
        let ref_visual = f32s(&f.expected, &format!("{case}.visual_embeds"));
        let merged = merge_embeddings(&ids, text_embed, &head, &ref_visual, h).unwrap();
        let (e_ref, steps) = run_llm(&f, &llm, case, &merged);
        let (pixels, source) = case_pixels(&f.expected, case);
        let (_, visual) = head.forward(&vit.encode(&pixels, &grids(&f.expected, case)).unwrap()).unwrap();
        let merged = merge_embeddings(&ids, text_embed, &head, &visual, h).unwrap();
        let (e_ours, _) = run_llm(&f, &llm, case, &merged);
        println!("{case:>10}: last_logits max abs error {e_ref:.2e} from reference visual_embeds, {e_ours:.2e} from {source}; greedy ids equal for {steps} steps");
        assert!(e_ref <= 1e-3 && e_ours <= 2e-3, "{case}: last_logits errors {e_ref:.3e} / {e_ours:.3e}");
    }
}

#[test]
fn window_index_matches_spec_example() {
    let (index, cu) = window_index(&[[1, 8, 12]], 2, 3);
    let mut want = vec![0, 1, 2, 6, 7, 8, 12, 13, 14, 3, 4, 5, 9, 10, 11];
    want.extend(15..24);
    assert_eq!(index, want);
    assert_eq!(cu, vec![0, 36, 72, 84, 96]);
    // A second grid's cells are offset by the first grid's cell count; a video's frames window separately.
    let (index, cu) = window_index(&[[1, 2, 2], [2, 2, 2]], 2, 3);
    assert_eq!(index, vec![0, 1, 2]);
    assert_eq!(cu, vec![0, 4, 8, 12]);
}

#[test]
fn window_attention_permutation_is_undone() {
    let f = fixture();
    let (pixels, _) = case_pixels(&f.expected, "video");
    let g = grids(&f.expected, "video");
    let base = VisionEncoder::load(&f.cfg.vit, &f.source).unwrap().encode(&pixels, &g).unwrap();
    // Every layer full: the window permutation is a pure reorder within frames, so the output is unchanged.
    let mut cfg = f.cfg.vit.clone();
    cfg.fullatt_blocks = Some((0..cfg.layers).collect());
    let all_full = VisionEncoder::load(&cfg, &f.source).unwrap().encode(&pixels, &g).unwrap();
    let e = max_abs(&all_full, &base);
    assert!(e < 1e-5, "permuted full attention differs by {e}");
    // Layer 0 windowed: the result must change (attention is now local), but stay finite and ordered.
    cfg.fullatt_blocks = Some(vec![1]);
    let windowed = VisionEncoder::load(&cfg, &f.source).unwrap().encode(&pixels, &g).unwrap();
    assert!(max_abs(&windowed, &base) > 1e-3 && windowed.iter().all(|v| v.is_finite()));
}

fn is_bad_request<T>(r: Result<T, EngineError>, needle: &str) {
    match r {
        Err(EngineError::BadRequest(m)) => assert!(m.contains(needle), "message {m:?} lacks {needle:?}"),
        Err(e) => panic!("expected BadRequest, got {e:?}"),
        Ok(_) => panic!("expected BadRequest, got Ok"),
    }
}

#[test]
fn bad_vision_inputs_are_rejected() {
    let f = fixture();
    let vit = VisionEncoder::load(&f.cfg.vit, &f.source).unwrap();
    let px = vec![0f32; 4 * 768];
    is_bad_request(vit.encode(&px[..3 * 768], &[[1, 2, 2]]), "pixel_values has 2304 floats");
    is_bad_request(vit.encode(&px, &[[1, 2, 3]]), "multiples of the merge stride");
    is_bad_request(vit.encode(&px, &[[0, 2, 2]]), "must all be positive");
    is_bad_request(vit.encode(&px, &[]), "no grids");
    let mut nan = px.clone();
    nan[5] = f32::NAN;
    is_bad_request(vit.encode(&nan, &[[1, 2, 2]]), "not a finite number");
    assert_eq!(vit.encode(&px, &[[1, 2, 2]]).unwrap().len(), 4 * 48);

    let head = VisualHead::load(&f.cfg, &f.source).unwrap();
    is_bad_request(head.probabilities(&[0.0; 48 * 3]), "merge cell");
    is_bad_request(head.indicator(-300), "not a visual indicator");
    let h = f.cfg.llm.hidden;
    let zero = |_: &[u32], out: &mut [f32]| out.fill(0.0);
    is_bad_request(merge_embeddings(&[1, -300, -300], zero, &head, &vec![0.0; h], h), "2 visual atom ids");
    is_bad_request(merge_embeddings(&[1, -305], zero, &head, &[], h), "-305");
    is_bad_request(merge_embeddings(&[1], zero, &head, &[], h + 1), "hidden size");
}

#[test]
fn load_names_missing_and_misshapen_tensors() {
    let f = fixture();
    let mut cfg = f.cfg.vit.clone();
    cfg.layers = 3;
    match VisionEncoder::load(&cfg, &f.source) {
        Err(EngineError::Model(m)) => assert!(m.contains("encoder.layers.2.layer_norm1.weight") && m.contains("missing"), "{m}"),
        other => panic!("expected a model error, got {:?}", other.err()),
    }
    let mut cfg = f.cfg.vit.clone();
    cfg.intermediate = 100;
    match VisionEncoder::load(&cfg, &f.source) {
        Err(EngineError::Model(m)) => assert!(m.contains("mlp.fc1.weight") && m.contains("[96, 48]") && m.contains("[100, 48]"), "{m}"),
        other => panic!("expected a model error, got {:?}", other.err()),
    }
}

/// Real Ovis2.5 ViT shapes (D 1152, 27 layers, 16 heads, MLP 4304) on one 448×448 image (784 patches).
#[test]
#[ignore = "a timing run: cargo test --release --test vision_parity -- --ignored --nocapture"]
fn time_real_shape_vit_448() {
    let mut cfg = ModelConfig::from_dir(&fixture_dir()).unwrap();
    let v = &mut cfg.vit;
    (v.hidden, v.intermediate, v.layers, v.heads, v.image_size) = (1152, 4304, 27, 16, 512);
    cfg.llm.hidden = 2048;
    cfg.visual_vocab = 65536;
    let t = std::time::Instant::now();
    let vit = VisionEncoder::synthetic(&cfg.vit, 7);
    let head = VisualHead::synthetic(&cfg, 8);
    println!("synthetic weights: {} ms", t.elapsed().as_millis());
    let pixels: Vec<f32> = (0..784 * 768).map(|i| bf16::from_f32(((i * 37 % 255) as f32 / 127.5) - 1.0).to_f32()).collect();
    let t = std::time::Instant::now();
    let feats = vit.encode(&pixels, &[[1, 28, 28]]).unwrap();
    let vit_ms = t.elapsed().as_millis();
    let t = std::time::Instant::now();
    let probs = head.probabilities(&feats).unwrap();
    let head_ms = t.elapsed().as_millis();
    let t = std::time::Instant::now();
    let embeds = head.embed(&probs).unwrap();
    let vte_ms = t.elapsed().as_millis();
    assert!(embeds.iter().all(|x| x.is_finite()));
    println!("448x448 (784 patches), {} threads: ViT {vit_ms} ms, head linear+LN+softmax {head_ms} ms, VTE (H 2048) {vte_ms} ms", rayon::current_num_threads());
}
