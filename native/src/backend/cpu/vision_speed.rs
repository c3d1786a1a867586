//! How fast this machine runs the vision encoder's two kinds of work, measured once when a model loads
//! (`model_loaded.info.vision_speed`, docs/protocol.md), so that a client can say how long an encode
//! will take before it starts. A ViT layer on N patches costs 2·N·(4·D² + 2·D·I) FLOPs of GEMMs
//! (q, k, v, out; fc1, fc2) plus 4·len²·D FLOPs of attention per segment of len patches; the two
//! rates below are measured on the model's own D, I and heads with the very kernels the encoder
//! calls (matmul_bf16, segment_attention), on a small slice: GEMM_ROWS rows, one ATTENTION_LEN
//! segment ($OVIS_VISION_SPEED replaces the measurement: `for_model`). About 50 ms for the 2B's shapes on a 2-core AVX-512 machine (measured 49–53 ms, quiet, at 3fe0597); a shared machine's noise
//! goes into the figure (the client refines its estimate from the first layers' timing).
use crate::backend::cpu::matmul::matmul_bf16;
use crate::backend::cpu::vision_ops::segment_attention;
use crate::model::config::VitConfig;
use half::bf16;
use std::time::Instant;

/// Rows of the timed GEMM: enough for the packed kernels to reach their steady rate.
const GEMM_ROWS: usize = 256;
/// Patches in the timed attention segment (a 448² image has 784).
const ATTENTION_LEN: usize = 512;
/// Each measurement is repeated until this much time has passed (at least twice); the fastest run counts.
const MIN_MS: f64 = 4.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VisionSpeed {
    /// GFLOP/s of the encoder's linear layers (fc1's shape: [GEMM_ROWS, D] × [D, I]).
    pub gemm_gflops: f64,
    /// GFLOP/s of segment attention (scores and P·V, 4·len²·D FLOPs).
    pub attention_gflops: f64,
}

impl VisionSpeed {
    pub fn to_json(self) -> serde_json::Value {
        // Three significant digits: more would only be noise (and a tiny override must stay above 0).
        let round = |v: f64| if v > 0.0 { let scale = 10f64.powi(2 - v.log10().floor() as i32); (v * scale).round() / scale } else { v };
        serde_json::json!({ "gemm_gflops": round(self.gemm_gflops), "attention_gflops": round(self.attention_gflops) })
    }
}

/// Best GFLOP/s of `run` (which does `flops` FLOPs) over at least two runs and MIN_MS.
fn best_rate(flops: f64, mut run: impl FnMut()) -> f64 {
    let (mut best, mut spent, mut runs) = (f64::INFINITY, 0.0, 0);
    while runs < 2 || spent < MIN_MS {
        let t = Instant::now();
        run();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        best = best.min(ms);
        spent += ms;
        runs += 1;
    }
    // A run below the clock's resolution (tiny test models) is read as 1 µs.
    flops / best.max(1e-3) / 1e6
}

/// The rates `info.vision_speed` reports: $OVIS_VISION_SPEED ("GEMM,ATTENTION" in GFLOP/s, both > 0)
/// when set — the client tests use it to make a tiny model's encode look long, and a user can pin
/// figures measured by `ovis bench` — else `measure(cfg)`. A malformed value is reported and ignored.
pub fn for_model(cfg: &VitConfig) -> VisionSpeed {
    match std::env::var("OVIS_VISION_SPEED") {
        Ok(v) => parse_override(&v).unwrap_or_else(|| {
            eprintln!("ovis-engine: OVIS_VISION_SPEED={v:?} is not GEMM,ATTENTION in GFLOP/s (two numbers above 0, e.g. 150,60); measuring instead");
            measure(cfg)
        }),
        Err(_) => measure(cfg),
    }
}

fn parse_override(v: &str) -> Option<VisionSpeed> {
    let (g, a) = v.split_once(',')?;
    let (gemm_gflops, attention_gflops) = (g.trim().parse::<f64>().ok()?, a.trim().parse::<f64>().ok()?);
    (gemm_gflops.is_finite() && attention_gflops.is_finite() && gemm_gflops > 0.0 && attention_gflops > 0.0).then_some(VisionSpeed { gemm_gflops, attention_gflops })
}

/// Measures both rates on `cfg`'s shapes. Inputs are constant (0.01): the kernels' speed does not
/// depend on values, and constants avoid denormals.
pub fn measure(cfg: &VitConfig) -> VisionSpeed {
    let (d, inter, heads) = (cfg.hidden, cfg.intermediate, cfg.heads);
    let x = vec![0.01f32; GEMM_ROWS * d];
    let w = vec![bf16::from_f32(0.01); inter * d];
    let bias = vec![0f32; inter];
    let mut y = vec![0f32; GEMM_ROWS * inter];
    let gemm_flops = 2.0 * (GEMM_ROWS * d * inter) as f64;
    let gemm_gflops = best_rate(gemm_flops, || matmul_bf16(&x, GEMM_ROWS, d, &w, inter, Some(&bias), &mut y));

    let qkv = vec![0.01f32; ATTENTION_LEN * d];
    let mut out = vec![0f32; ATTENTION_LEN * d];
    let att_flops = 4.0 * (ATTENTION_LEN * ATTENTION_LEN * d) as f64;
    let segments = [(0, ATTENTION_LEN)];
    let attention_gflops = best_rate(att_flops, || segment_attention(&qkv, &qkv, &qkv, ATTENTION_LEN, heads, d / heads, &segments, &mut out));
    VisionSpeed { gemm_gflops, attention_gflops }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_is_two_positive_numbers() {
        assert_eq!(parse_override("150, 60.5"), Some(VisionSpeed { gemm_gflops: 150.0, attention_gflops: 60.5 }));
        for bad in ["150", "150,0", "-1,2", "a,b", "1,2,3", "inf,1", ""] {
            assert_eq!(parse_override(bad), None, "{bad}");
        }
    }

    #[test]
    fn measures_positive_finite_rates_on_small_shapes() {
        let cfg = VitConfig {
            hidden: 64, intermediate: 128, layers: 2, heads: 4, channels: 3, image_size: 64, patch: 16,
            hidden_stride: 2, temporal_patch: 1, window_size: 112, fullatt_blocks: None, ln_eps: 1e-6,
        };
        let s = measure(&cfg);
        assert!(s.gemm_gflops.is_finite() && s.gemm_gflops > 0.0, "{s:?}");
        assert!(s.attention_gflops.is_finite() && s.attention_gflops > 0.0, "{s:?}");
        let j = s.to_json();
        assert!(j["gemm_gflops"].as_f64().unwrap() > 0.0 && j["attention_gflops"].as_f64().unwrap() > 0.0, "{j}");
        let tiny = VisionSpeed { gemm_gflops: 0.0012345, attention_gflops: 123.456 }.to_json();
        assert_eq!((tiny["gemm_gflops"].as_f64(), tiny["attention_gflops"].as_f64()), (Some(0.00123), Some(123.0)));
    }
}
