//! Vision path parity against the tiny-ovis2.5 fixture (test/fixtures/tiny-ovis2.5/README.md): pixels from
//! the resized images (spec §2.4–2.5), ViT features, visual tokens and embeddings, merging, bad inputs.
//! Run with `--nocapture` to see the measured errors; `--ignored` adds the real-shape ViT timing.
use half::bf16;
use ovis_engine::error::EngineError;
use ovis_engine::model::config::ModelConfig;
use ovis_engine::model::merge::merge_embeddings;
use ovis_engine::model::vision::layout::window_index;
use ovis_engine::model::vision::VisionEncoder;
use ovis_engine::model::visual_head::VisualHead;
use ovis_engine::model::weights::{DType, Weights};
use std::path::PathBuf;
use std::sync::Arc;

const TOL: f32 = 1e-4;
const IMAGE_CASES: [&str; 4] = ["image", "two_images", "video", "multiturn"];

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test/fixtures/tiny-ovis2.5")
}

struct Fixture {
    cfg: ModelConfig,
    weights: Arc<Weights>,
    expected: Weights,
}

fn fixture() -> Fixture {
    let dir = fixture_dir();
    let cfg = ModelConfig::from_dir(&dir).expect("fixture config");
    let weights = Arc::new(Weights::open_dir(&dir).expect("fixture weights"));
    let expected = Weights::open_files(&[dir.join("expected.safetensors")]).expect("expected.safetensors");
    Fixture { cfg, weights, expected }
}

fn raw<'a>(exp: &'a Weights, name: &str, dtype: DType) -> (&'a [u8], Vec<usize>) {
    let v = exp.view(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(v.info.dtype, dtype, "{name} dtype");
    (v.bytes, v.info.shape.clone())
}

fn f32s(exp: &Weights, name: &str) -> Vec<f32> {
    raw(exp, name, DType::F32).0.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn i64s(exp: &Weights, name: &str) -> Vec<i64> {
    raw(exp, name, DType::I64).0.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

fn grids(exp: &Weights, case: &str) -> Vec<[usize; 3]> {
    i64s(exp, &format!("{case}.grid_thws")).chunks(3).map(|g| [g[0] as usize, g[1] as usize, g[2] as usize]).collect()
}

/// §2.4: v = f32(u · (1/255) in f64), x = f32(f32(v − 0.5) / 0.5).
fn normalise(u: u8) -> f32 {
    let v = (u as f64 * 0.00392156862745098) as f32;
    (v - 0.5) / 0.5
}

/// §2.5 for one grid: frames [H, W, 3] u8 → rows ((t·gh/2 + by)·gw/2 + bx)·4 + sy·2 + sx, col ch·256 + ky·16 + kx.
fn patchify(frames: &[(&[u8], usize, usize)], out: &mut Vec<f32>) {
    for &(img, h, w) in frames {
        let (gh, gw) = (h / 16, w / 16);
        for by in 0..gh / 2 {
            for bx in 0..gw / 2 {
                for sy in 0..2 {
                    for sx in 0..2 {
                        for ch in 0..3 {
                            for ky in 0..16 {
                                for kx in 0..16 {
                                    let (y, x) = ((2 * by + sy) * 16 + ky, (2 * bx + sx) * 16 + kx);
                                    out.push(normalise(img[(y * w + x) * 3 + ch]));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// pixel_values of a case from its `resized.K` images/frames, consumed in order: t frames per grid.
fn pixels_from_resized(exp: &Weights, case: &str) -> Vec<f32> {
    let mut out = Vec::new();
    let mut k = 0;
    for [t, gh, gw] in grids(exp, case) {
        let frames: Vec<(&[u8], usize, usize)> = (k..k + t)
            .map(|i| {
                let (bytes, shape) = raw(exp, &format!("{case}.resized.{i}"), DType::U8);
                assert_eq!(shape, vec![gh * 16, gw * 16, 3], "{case}.resized.{i} vs grid");
                (bytes, shape[0], shape[1])
            })
            .collect();
        patchify(&frames, &mut out);
        k += t;
    }
    out
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The pixels the reference saw where the fixture has them (two_images), else the resized-derived ones.
fn case_pixels(exp: &Weights, case: &str) -> (Vec<f32>, &'static str) {
    if exp.contains(&format!("{case}.pixel_values")) {
        (f32s(exp, &format!("{case}.pixel_values")), "reference pixel_values")
    } else {
        (pixels_from_resized(exp, case), "pixels from resized")
    }
}

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
    let vit = VisionEncoder::load(&f.cfg.vit, &f.weights).expect("load ViT");
    let head = VisualHead::load(&f.cfg, &f.weights).expect("load head");
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
        for (what, e) in [("vit_features", e_feats), ("visual_tokens", e_probs), ("visual_embeds", e_embeds), ("head-only tokens", h_probs), ("head-only embeds", h_embeds)] {
            assert!(e <= TOL, "{case}: {what} max abs error {e:.3e} > {TOL:e}");
        }
    }
}

#[test]
fn merged_embeddings_follow_input_ids() {
    let f = fixture();
    let head = VisualHead::load(&f.cfg, &f.weights).unwrap();
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
                -304..=-301 => vte.data()[(f.cfg.visual_vocab - 301 - id as usize - 0) * 0 + (f.cfg.visual_vocab as i64 - 4 + (-301 - id as i64)) as usize * h..][..h].iter().map(|v| v.to_f32()).collect(),
                _ => table.data()[id as usize * h..(id as usize + 1) * h].iter().map(|v| v.to_f32()).collect(),
            };
            assert_eq!(row, &want[..], "{case}: position {i} (id {id})");
        }
        assert_eq!(atom * h, visual.len(), "{case}: every visual row used once");
    }
}
