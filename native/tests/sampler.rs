//! The sampler against model-spec.md §8.1 (transformers' order) and vLLM's logprob convention.
use ovis_engine::generate::sampler::{top_k_filter, top_p_filter, Sampler, SamplingParams};

const NEG: f32 = f32::NEG_INFINITY;

fn params(temperature: f32, top_k: usize, top_p: f32, repetition_penalty: f32, seed: u64) -> SamplingParams {
    SamplingParams { temperature, top_k, top_p, repetition_penalty, seed }
}

fn log_softmax(z: &[f32]) -> Vec<f32> {
    let max = z.iter().copied().fold(NEG, f32::max) as f64;
    let lse = max + z.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
    z.iter().map(|&v| (v as f64 - lse) as f32).collect()
}

fn counts(p: SamplingParams, logits: &[f32], draws: usize) -> Vec<usize> {
    let mut s = Sampler::new(p);
    let mut c = vec![0; logits.len()];
    for _ in 0..draws {
        c[s.sample(&mut logits.to_vec(), &[], 0).id as usize] += 1;
    }
    c
}

fn chi_square(counts: &[usize], probs: &[f64]) -> f64 {
    let n: usize = counts.iter().sum();
    counts.iter().zip(probs).map(|(&c, &p)| (c as f64 - n as f64 * p).powi(2) / (n as f64 * p)).sum()
}

#[test]
fn greedy_is_argmax_with_logprobs() {
    let logits = [0.5f32, 2.0, -1.0, 2.0, 1.5];
    let mut z = logits.to_vec();
    let got = Sampler::new(SamplingParams::default()).sample(&mut z, &[], 3);
    let lp = log_softmax(&logits);
    assert_eq!(got.id, 1, "first index of the maximum, like torch.argmax");
    assert!((got.logprob - lp[1]).abs() < 1e-6);
    let ids: Vec<u32> = got.top.iter().map(|t| t.0).collect();
    assert_eq!(ids, [1, 3, 4], "descending, ties by lower id");
    for (id, v) in &got.top {
        assert!((v - lp[*id as usize]).abs() < 1e-6);
    }
    assert_eq!(z, logits, "greedy without penalty leaves the logits alone");
    assert!(Sampler::new(SamplingParams::default()).sample(&mut logits.to_vec(), &[], 0).top.is_empty());
    assert_eq!(Sampler::new(SamplingParams::default()).sample(&mut logits.to_vec(), &[], 99).top.len(), 5);
}

#[test]
fn repetition_penalty_positive_and_negative_once_per_id_also_greedy() {
    let mut z = vec![3.0f32, -1.0, 2.0, 0.0];
    // Id 0 twice (applied once), id 1 negative (multiplied), id 3 zero (unchanged), id 99 out of range.
    let got = Sampler::new(params(0.0, 0, 1.0, 2.0, 0)).sample(&mut z, &[0, 0, 1, 3, 99], 4);
    assert_eq!(z, [1.5, -2.0, 2.0, 0.0]);
    assert_eq!(got.id, 2, "greedy picks the argmax of the penalised logits");
    let lp = log_softmax(&[1.5, -2.0, 2.0, 0.0]);
    assert!((got.logprob - lp[2]).abs() < 1e-6, "logprob of the penalised logits");
    assert_eq!(got.top[1].0, 0);
    assert!((got.top[1].1 - lp[0]).abs() < 1e-6);
}

#[test]
fn top_k_keeps_ties_at_the_threshold() {
    let mut z = vec![1.0f32, 3.0, 3.0, 2.0, 3.0, 0.0];
    top_k_filter(&mut z, 2);
    assert_eq!(z, [NEG, 3.0, 3.0, NEG, 3.0, NEG]);
    let mut z = vec![1.0f32, 3.0, 2.0];
    top_k_filter(&mut z, 5);
    assert_eq!(z, [1.0, 3.0, 2.0], "k ≥ V keeps everything");
    let c = counts(params(1.0, 2, 1.0, 1.0, 7), &[1.0, 3.0, 3.0, 2.0, 3.0, 0.0], 3000);
    assert!(c[0] == 0 && c[3] == 0 && c[5] == 0 && c[1] > 800 && c[2] > 800 && c[4] > 800, "{c:?}");
}

#[test]
fn top_p_removes_the_low_tail_but_keeps_the_largest() {
    let ln = |p: f64| p.ln() as f32;
    let probs = [0.2, 0.5, 0.3];
    // Sorted ascending 0.2, 0.3, 0.5 → cumulative 0.2, 0.5, 1.0.
    let mut z: Vec<f32> = probs.iter().map(|&p| ln(p)).collect();
    top_p_filter(&mut z, 0.6); // removes cumulative ≤ 0.4: only the 0.2
    assert_eq!(z[0], NEG);
    assert!(z[1].is_finite() && z[2].is_finite());
    let mut z: Vec<f32> = probs.iter().map(|&p| ln(p)).collect();
    top_p_filter(&mut z, 0.4); // removes cumulative ≤ 0.6: 0.2 and 0.3
    assert_eq!((z[0], z[2]), (NEG, NEG));
    assert!(z[1].is_finite());
    let mut z = vec![10.0f32, 0.0, 0.0];
    top_p_filter(&mut z, 1e-6);
    assert_eq!(z, [10.0, NEG, NEG], "the largest survives even when it alone exceeds p");
    let c = counts(params(1.0, 0, 0.6, 1.0, 3), &probs.map(ln), 4000);
    assert_eq!(c[0], 0);
    assert!(chi_square(&c[1..], &[0.5 / 0.8, 0.3 / 0.8]) < 10.83, "{c:?}");
}

#[test]
fn same_seed_same_draws() {
    let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
    let run = |seed| {
        let mut s = Sampler::new(params(0.8, 20, 0.95, 1.1, seed));
        let mut hist = Vec::new();
        for _ in 0..40 {
            let id = s.sample(&mut logits.clone(), &hist, 0).id;
            hist.push(id);
        }
        hist
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn logprob_is_before_temperature_and_truncation() {
    let logits = [1.0f32, 0.0, 2.0, -1.0];
    let mut z = logits.to_vec();
    let got = Sampler::new(params(0.5, 1, 1.0, 1.0, 9)).sample(&mut z, &[], 2);
    let lp = log_softmax(&logits);
    assert_eq!(got.id, 2, "top_k = 1 leaves only the argmax");
    assert!((got.logprob - lp[2]).abs() < 1e-6, "{} vs {}", got.logprob, lp[2]);
    assert!(got.logprob < -0.3, "not the truncated distribution's log(1) = 0");
    assert_eq!(got.top.iter().map(|t| t.0).collect::<Vec<_>>(), [2, 0]);
    assert_eq!(z, [NEG, NEG, 4.0, NEG], "temperature divides, top-k masks");
}

#[test]
fn multinomial_follows_softmax() {
    let probs = [0.1, 0.2, 0.3, 0.4];
    let logits: Vec<f32> = probs.iter().map(|p: &f64| p.ln() as f32).collect();
    // 3 degrees of freedom: 16.27 is the 0.1 % critical value; the seed is fixed, so this is deterministic.
    let c = counts(params(1.0, 0, 1.0, 1.0, 11), &logits, 20_000);
    assert!(chi_square(&c, &probs) < 16.27, "{c:?}");
    // Temperature 0.5 squares the probabilities (then renormalises).
    let sq: Vec<f64> = probs.iter().map(|p| p * p / 0.3).collect();
    let c = counts(params(0.5, 0, 1.0, 1.0, 12), &logits, 20_000);
    assert!(chi_square(&c, &sq) < 16.27, "{c:?}");
}
