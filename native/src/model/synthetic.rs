//! Synthetic weights: random bf16 tensors of the released shapes, generated on demand from (seed,
//! tensor name) for benchmarks and tests without model files. The CPU and CUDA forwards read them
//! through `WeightSource::Synthetic`, so a synthetic model is the same on the CPU and the GPU.
use crate::generate::sampler::Rng;
use crate::model::source::name_hash;
use crate::model::weights::WeightRef;
use half::bf16;
use rayon::prelude::*;

/// Random bf16 tensor `name`: 1-D (norm weights) 1 ± 0.1, else uniform ±0.02·√3 (standard deviation
/// 0.02). Filled in parallel in chunks of 64 Ki values, each with its own generator seeded from
/// (seed, name, chunk), so the result depends neither on the thread count nor on the load order.
pub fn llm_tensor(seed: u64, name: &str, shape: &[usize]) -> WeightRef {
    let tensor = name_hash(name);
    let n: usize = shape.iter().product();
    let (center, half_width) = if shape.len() == 1 { (1.0f32, 0.1f32) } else { (0.0, 0.02 * 3f32.sqrt()) };
    let mut data = vec![bf16::ZERO; n];
    data.par_chunks_mut(1 << 16).enumerate().for_each(|(ci, chunk)| {
        let mut rng = Rng::new(seed ^ tensor.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (ci as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        for pair in chunk.chunks_mut(2) {
            let r = rng.next_u64();
            for (j, v) in pair.iter_mut().enumerate() {
                // 24 random bits → uniform in [-1, 1).
                let u = ((r >> (32 * j + 8)) & 0xFF_FFFF) as f32 / (1 << 23) as f32 - 1.0;
                *v = bf16::from_f32(center + half_width * u);
            }
        }
    });
    WeightRef::from_vec(data, shape)
}

/// Deterministic pseudo-random bf16 values uniform in center ± scale (splitmix64 per 64 Ki chunk, filled
/// in parallel; the result does not depend on the thread count), for synthetic weights.
pub fn random_bf16(seed: u64, len: usize, center: f32, scale: f32) -> Vec<bf16> {
    let mut out = vec![bf16::ZERO; len];
    out.par_chunks_mut(1 << 16).enumerate().for_each(|(ci, chunk)| {
        let mut s = (seed ^ (ci as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for v in chunk {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            *v = bf16::from_f32(center + scale * u);
        }
    });
    out
}

/// Random ViT tensor `name` (without the `visual_tokenizer.vit.vision_model.` prefix): LayerNorm
/// weights 1 ± 0.1, biases ± 0.02, matrices ± 1/√fan_in; depends only on (seed, name).
pub fn vit_tensor(seed: u64, name: &str, shape: &[usize]) -> WeightRef {
    let n: usize = shape.iter().product();
    let (center, scale) = match (shape.len(), name.contains("norm") && name.ends_with(".weight")) {
        (1, true) => (1.0, 0.1),
        (1, false) => (0.0, 0.02),
        _ => (0.0, 1.0 / (shape[1..].iter().product::<usize>() as f32).sqrt()),
    };
    WeightRef::from_vec(random_bf16(seed ^ name_hash(name), n, center, scale), shape)
}

/// Random head/VTE tensor `name`: the LayerNorm weight 1 ± 0.1, its bias ± 0.02, matrices
/// ± 1/√(columns); depends only on (seed, name).
pub fn head_tensor(seed: u64, name: &str, shape: &[usize]) -> WeightRef {
    let n: usize = shape.iter().product();
    let (center, scale) = match (shape.len(), name.ends_with("1.weight")) {
        (1, true) => (1.0, 0.1),
        (1, false) => (0.0, 0.02),
        _ => (0.0, 1.0 / (shape[1] as f32).sqrt()),
    };
    WeightRef::from_vec(random_bf16(seed ^ name_hash(name), n, center, scale), shape)
}
