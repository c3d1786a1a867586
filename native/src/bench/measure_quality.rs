//! `ovis-engine bench --weights int8|int4 --quality` (CPU): how far the quantized decoder is from the
//! same weights in bf16, on a prompt of `--prompt-tokens` pseudo-random text ids: the cosine of the
//! last-position logits, and how many of the first `--decode-tokens` greedy ids agree (each model
//! feeding back its own picks; counted up to the first difference). The bf16 twin of the decoder is
//! built from the same source for this (the bf16 decoder's memory again, for the length of the run).
use super::args::Plan;
use super::measure::text_ids;
use super::report::Report;
use crate::backend::cpu::model::OvisModel;
use crate::backend::cpu::quant::WeightMode;
use crate::backend::cpu::qwen3::Qwen3;
use crate::error::Result;
use crate::generate::kv_cache::KvCache;
use crate::model::source::WeightSource;

pub(super) fn measure(model: &OvisModel, source: &WeightSource, plan: &Plan, out: &mut Report) -> Result<()> {
    eprintln!("quality: building the bf16 decoder to compare with…");
    let base = Qwen3::load(&model.cfg.llm, source, WeightMode::Bf16)?;
    let ids: Vec<u32> = text_ids(plan.prompt_tokens, 7).into_iter().map(|i| i as u32).collect();
    let (lb, gb) = greedy(&base, &ids, plan.decode_tokens)?;
    drop(base);
    let (lq, gq) = greedy(&model.llm, &ids, plan.decode_tokens)?;
    let agree = gb.iter().zip(&gq).take_while(|(a, b)| a == b).count();
    out.quality(cosine(&lb, &lq), agree, plan.decode_tokens, plan.prompt_tokens);
    Ok(())
}

fn greedy(m: &Qwen3, ids: &[u32], steps: usize) -> Result<(Vec<f32>, Vec<u32>)> {
    let mut cache = KvCache::new(m.config());
    let h = m.config().hidden;
    let mut e = vec![0f32; ids.len() * h];
    m.embed(ids, &mut e);
    let first = m.forward(&mut cache, &e)?;
    let (mut logits, mut picks) = (first.clone(), Vec::with_capacity(steps));
    for _ in 0..steps {
        let id = logits.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as u32;
        picks.push(id);
        let mut e = vec![0f32; h];
        m.embed(&[id], &mut e);
        logits = m.forward(&mut cache, &e)?;
    }
    Ok((first, picks))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        ab += *x as f64 * *y as f64;
        aa += *x as f64 * *x as f64;
        bb += *y as f64 * *y as f64;
    }
    ab / (aa.sqrt() * bb.sqrt())
}
