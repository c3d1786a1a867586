//! The tiny-ovis2.5 fixture for integration tests: config, weights, the reference outputs of
//! expected.safetensors and cases.json, and the pixel_values of each case (model-spec §2.4–2.5).
#![allow(dead_code)] // each test file uses a different part
use ovis_engine::model::config::ModelConfig;
use ovis_engine::model::source::WeightSource;
use ovis_engine::model::weights::{DType, Weights};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// The fixture: $OVIS_FIXTURE_DIR (test binaries carried to a GPU machine, where the source tree sits
/// elsewhere), else test/fixtures/tiny-ovis2.5 of this source tree.
pub fn fixture_dir() -> PathBuf {
    match std::env::var_os("OVIS_FIXTURE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test/fixtures/tiny-ovis2.5"),
    }
}

pub struct Fixture {
    pub cfg: ModelConfig,
    pub weights: Arc<Weights>,
    pub source: WeightSource,
    pub expected: Weights,
}

pub fn fixture() -> Fixture {
    let dir = fixture_dir();
    let cfg = ModelConfig::from_dir(&dir).expect("fixture config");
    let weights = Arc::new(Weights::open_dir(&dir).expect("fixture weights"));
    let expected = Weights::open_files(&[dir.join("expected.safetensors")]).expect("expected.safetensors");
    let source = WeightSource::Files(Arc::clone(&weights));
    Fixture { cfg, weights, source, expected }
}

pub fn raw<'a>(exp: &'a Weights, name: &str, dtype: DType) -> (&'a [u8], Vec<usize>) {
    let v = exp.view(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(v.info.dtype, dtype, "{name} dtype");
    (v.bytes, v.info.shape.clone())
}

pub fn f32s(exp: &Weights, name: &str) -> Vec<f32> {
    raw(exp, name, DType::F32).0.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

pub fn i64s(exp: &Weights, name: &str) -> Vec<i64> {
    raw(exp, name, DType::I64).0.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

pub fn grids(exp: &Weights, case: &str) -> Vec<[usize; 3]> {
    i64s(exp, &format!("{case}.grid_thws")).chunks(3).map(|g| [g[0] as usize, g[1] as usize, g[2] as usize]).collect()
}

/// §2.4: v = f32(u · (1/255) in f64), x = f32(f32(v − 0.5) / 0.5).
pub fn normalise(u: u8) -> f32 {
    let v = (u as f64 * 0.00392156862745098) as f32;
    (v - 0.5) / 0.5
}

/// §2.5 for one grid: frames [H, W, 3] u8 → rows ((t·gh/2 + by)·gw/2 + bx)·4 + sy·2 + sx, col ch·256 + ky·16 + kx.
pub fn patchify(frames: &[(&[u8], usize, usize)], out: &mut Vec<f32>) {
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
pub fn pixels_from_resized(exp: &Weights, case: &str) -> Vec<f32> {
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

pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The pixels the reference saw where the fixture has them (two_images), else the resized-derived ones.
pub fn case_pixels(exp: &Weights, case: &str) -> (Vec<f32>, &'static str) {
    if exp.contains(&format!("{case}.pixel_values")) {
        (f32s(exp, &format!("{case}.pixel_values")), "reference pixel_values")
    } else {
        (pixels_from_resized(exp, case), "pixels from resized")
    }
}

/// greedy_top2_gaps of every case in cases.json.
pub fn cases_json() -> std::collections::HashMap<String, Vec<f32>> {
    let text = std::fs::read_to_string(fixture_dir().join("cases.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap().to_string(), c["greedy_top2_gaps"].as_array().unwrap().iter().map(|g| g.as_f64().unwrap() as f32).collect())).collect()
}


/// An in-memory output the engine's frame writer can own a clone of, read back after `serve`.
#[derive(Clone, Default)]
pub struct Shared(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Cosine similarity of two vectors, summed in f64 (0 for an all-zero vector).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(1e-30)
}
