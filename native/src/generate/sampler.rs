//! Next-token choice from one position's f32 logits, in transformers' order (model-spec.md §8.1):
//! repetition penalty (also when greedy) → temperature → top-k (ties kept) → top-p (largest always
//! kept) → multinomial; greedy = argmax of the penalised logits, for any temperature below
//! GREEDY_TEMPERATURE (logits / T would overflow f32 for a tiny T).
//! Reported log-probabilities follow vLLM: log-softmax of the penalised logits, before temperature
//! and truncation.
use crate::protocol::GREEDY_TEMPERATURE;
use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 (anything below GREEDY_TEMPERATURE) = greedy.
    pub temperature: f32,
    /// 0 = off.
    pub top_k: usize,
    /// 1 = off.
    pub top_p: f32,
    /// 1 = off.
    pub repetition_penalty: f32,
    pub seed: u64,
}

impl Default for SamplingParams {
    /// Greedy, no penalty (the reference's setting for parity).
    fn default() -> Self {
        SamplingParams { temperature: 0.0, top_k: 0, top_p: 1.0, repetition_penalty: 1.0, seed: 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    pub id: u32,
    /// log-softmax of the penalised logits at `id`.
    pub logprob: f32,
    /// The top_n (id, logprob) pairs, logprob descending (ties: lower id first).
    pub top: Vec<(u32, f32)>,
}

pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Sampler {
        Sampler { params, rng: Rng::new(params.seed) }
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next id. `logits` [V] is modified in place (penalty, temperature, removed → −∞);
    /// `history` holds the ids the repetition penalty applies to (ids ≥ V are ignored).
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32], top_n: usize) -> Sampled {
        assert!(!logits.is_empty(), "Sampler::sample: empty logits");
        let p = self.params;
        if p.repetition_penalty != 1.0 {
            apply_repetition_penalty(logits, history, p.repetition_penalty);
        }
        let lse = LogSumExp::of(logits);
        let top = top_logprobs(logits, top_n, &lse);
        // (NaN included: never divide by a temperature that is not a sane positive number)
        if !(p.temperature >= GREEDY_TEMPERATURE) {
            let id = argmax(logits);
            return Sampled { id: id as u32, logprob: lse.logprob(logits[id]), top };
        }
        // The logprob convention needs the penalised value of the chosen id after truncation.
        let penalised = logits.to_vec();
        if p.temperature != 1.0 {
            for z in logits.iter_mut() {
                *z /= p.temperature;
            }
        }
        if p.top_k > 0 {
            top_k_filter(logits, p.top_k);
        }
        if p.top_p < 1.0 {
            top_p_filter(logits, p.top_p);
        }
        let id = self.multinomial(logits);
        Sampled { id: id as u32, logprob: lse.logprob(penalised[id]), top }
    }

    /// Draws from softmax(z) over the finite entries (−∞ = removed).
    fn multinomial(&mut self, z: &[f32]) -> usize {
        let max = z.iter().copied().filter(|v| !v.is_nan()).fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            return argmax(z);
        }
        let total: f64 = z.iter().filter(|v| v.is_finite()).map(|&v| ((v - max) as f64).exp()).sum();
        let mut u = self.rng.next_f64() * total;
        let mut last = 0;
        for (i, &v) in z.iter().enumerate() {
            if v.is_finite() {
                let e = ((v - max) as f64).exp();
                if u < e {
                    return i;
                }
                u -= e;
                last = i;
            }
        }
        last
    }
}

/// Each distinct id in `history`: z/ρ if z > 0, else z·ρ (transformers' gather/scatter applies it once per id).
pub fn apply_repetition_penalty(z: &mut [f32], history: &[u32], rho: f32) {
    let mut seen = HashSet::with_capacity(history.len());
    for &id in history {
        let i = id as usize;
        if i < z.len() && seen.insert(id) {
            z[i] = if z[i] > 0.0 { z[i] / rho } else { z[i] * rho };
        }
    }
}

/// First index of the largest value (torch.argmax); NaN never wins.
pub fn argmax(z: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in z.iter().enumerate() {
        if v > z[best] || z[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}

/// Keeps the k largest values and every value tied with the k-th; the rest → −∞.
pub fn top_k_filter(z: &mut [f32], k: usize) {
    if k >= z.len() {
        return;
    }
    let mut sorted: Vec<f32> = z.iter().map(|&v| if v.is_nan() { f32::NEG_INFINITY } else { v }).collect();
    let (_, kth, _) = sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let kth = *kth;
    for v in z.iter_mut() {
        // NaN and everything below the threshold go.
        if v.is_nan() || *v < kth {
            *v = f32::NEG_INFINITY;
        }
    }
}

/// transformers' TopPLogitsWarper: sort ascending, cumulative softmax, drop entries whose cumulative
/// probability is ≤ 1 − p, but never the largest one. Only finite entries can survive, so only they are sorted.
pub fn top_p_filter(z: &mut [f32], top_p: f32) {
    let mut idx: Vec<usize> = (0..z.len()).filter(|&i| z[i].is_finite()).collect();
    if idx.len() <= 1 {
        return;
    }
    idx.sort_by(|&a, &b| z[a].total_cmp(&z[b]));
    let max = z[*idx.last().unwrap()];
    let total: f64 = idx.iter().map(|&i| ((z[i] - max) as f64).exp()).sum();
    let cut = 1.0 - top_p as f64;
    // The smallest value whose ascending cumulative probability exceeds 1 − p is the threshold; every
    // value tied with it stays (transformers leaves the order of ties unspecified; keeping them all is
    // deterministic and what the device sampler does, so both backends draw from the same set).
    let mut cum = 0.0f64;
    let mut threshold = max;
    for &i in &idx {
        cum += ((z[i] - max) as f64).exp() / total;
        if cum > cut {
            threshold = z[i];
            break;
        }
    }
    for v in z.iter_mut() {
        if *v < threshold {
            *v = f32::NEG_INFINITY;
        }
    }
}

/// log Σ exp(z) of the penalised logits (NaN entries ignored), in f64.
struct LogSumExp {
    max: f32,
    log_total: f64,
}

impl LogSumExp {
    fn of(z: &[f32]) -> LogSumExp {
        let max = z.iter().copied().filter(|v| !v.is_nan()).fold(f32::NEG_INFINITY, f32::max);
        let total: f64 = if max == f32::NEG_INFINITY { 1.0 } else { z.iter().filter(|v| !v.is_nan()).map(|&v| ((v - max) as f64).exp()).sum() };
        LogSumExp { max, log_total: total.ln() }
    }

    fn logprob(&self, z: f32) -> f32 {
        ((z - self.max) as f64 - self.log_total) as f32
    }
}

/// The n largest (id, logprob), descending, lower id first on ties.
fn top_logprobs(z: &[f32], n: usize, lse: &LogSumExp) -> Vec<(u32, f32)> {
    if n == 0 {
        return Vec::new();
    }
    let better = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(n + 1);
    for (i, &v) in z.iter().enumerate() {
        if v.is_nan() || best.len() == n && better(&(i, v), &best[n - 1]).is_ge() {
            continue;
        }
        let at = best.partition_point(|e| better(e, &(i, v)).is_lt());
        best.insert(at, (i, v));
        best.truncate(n);
    }
    best.into_iter().map(|(i, v)| (i as u32, lse.logprob(v))).collect()
}

/// xoshiro256** seeded through splitmix64: ~20 lines, stable streams for a given seed across crate
/// versions (no `rand` dependency, whose generators may change between releases).
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}
