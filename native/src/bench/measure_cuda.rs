//! The figures of `ovis-engine bench` on a GPU, with the same JSON keys as the CPU backend's
//! (measure.rs). Every timed section ends with the host holding its result (the sampled id is copied
//! back, or the stream is synchronised), so the times are what a user waits, not launch times.
//! Decode is the captured graph replayed per token, each step copying its id back as generation does.
use super::args::Plan;
use super::measure::{image_prompt, median, pixels, text_ids, timed};
use super::report::{Report, DECODE_CONTEXT};
use crate::backend::cuda::device::{device_err, Gpu};
use crate::backend::cuda::model::CudaOvis;
use crate::backend::cuda::qwen3::Session;
use crate::backend::cuda::sampling::SampleParams;
use crate::error::{EngineError, Result};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn greedy(vocab: usize) -> SampleParams {
    SampleParams { temperature: 0.0, top_k: 0, top_p: 1.0, rep_penalty: 1.0, u: 0.0, top_n: 0, vocab: vocab as i32 }
}

/// Device memory in use now (all processes: the driver reports no per-process figure).
fn used(g: &Gpu) -> Result<u64> {
    let (free, total) = g.memory()?;
    Ok((total - free) as u64)
}

/// Prefills `ids` from position 0 and samples the first token (host holds the id on return).
fn first_token(m: &CudaOvis, s: &mut Session, ids: &[i32], pixels: &[f32], grid: Option<[usize; 3]>) -> Result<()> {
    let g = &m.gpu;
    s.restart(g, 0)?;
    let never = AtomicBool::new(false);
    let visual = match grid {
        Some(grid) => Some(m.vision.encode(g, &m.blas, pixels, &[grid])?),
        None => None,
    };
    let rows = m.row_sources(ids, visual.as_ref().map_or(&[], |v| &v.row_of_atom))?;
    let vis = visual.as_ref().map_or(0, |v| v.rows);
    m.llm.prefill(g, &m.blas, s, &rows, m.vision.vte(g), vis, greedy(m.cfg.llm.vocab), &never)?.ok_or_else(|| EngineError::Internal("prefill was cancelled".into()))?;
    Ok(())
}

/// Device-to-device copy bandwidth (bytes read + written per second) over 1 GiB buffers, or smaller
/// ones when memory is short: the floor's bandwidth, as shared/docs/performance.md measures it.
fn copy_bandwidth(g: &Gpu) -> Result<f64> {
    let (free, _) = g.memory()?;
    let bytes = (1usize << 30).min(free / 4).max(1 << 20);
    let src = g.zeros::<u8>(bytes)?;
    let mut dst = g.zeros::<u8>(bytes)?;
    let copy = |dst: &mut cudarc::driver::CudaSlice<u8>| g.stream.memcpy_dtod(&src, dst).map_err(|e| device_err("bandwidth copy", e));
    copy(&mut dst)?;
    g.sync()?;
    let reps = 10;
    let t = Instant::now();
    for _ in 0..reps {
        copy(&mut dst)?;
    }
    g.sync()?;
    Ok(2.0 * bytes as f64 * reps as f64 / t.elapsed().as_secs_f64())
}

/// Measures on the GPU, writing each figure as it is known (report.rs).
pub fn measure(m: &CudaOvis, plan: &Plan, out: &mut Report) -> Result<()> {
    let g = &m.gpu;
    let c = &m.cfg.llm;
    let mut peak = used(g)?;
    let mut session = m.new_session()?;
    for &side in &plan.images {
        let grid = [1, side / 16, side / 16];
        let n = grid[1] * grid[2];
        let px = pixels(n);
        let ids = image_prompt(n / 4);
        session.reserve(g, &m.llm, ids.len())?;
        eprintln!("vision encode {side}×{side} ({n} patches)…");
        let encode_ms = timed(plan, || {
            m.vision.encode(g, &m.blas, &px, &[grid])?;
            g.sync()
        })?;
        out.vision_encode(side, encode_ms);
        eprintln!("time to first token {side}×{side} ({} positions)…", ids.len());
        let ttft_ms = timed(plan, || first_token(m, &mut session, &ids, &px, Some(grid)))?;
        out.time_to_first_token(side, ttft_ms);
        peak = peak.max(used(g)?);
    }

    let prompt = text_ids(plan.prompt_tokens, 3);
    session.reserve(g, &m.llm, prompt.len())?;
    eprintln!("prefill {} tokens…", prompt.len());
    let prefill_ms = timed(plan, || first_token(m, &mut session, &prompt, &[], None))?;
    out.prefill(prompt.len(), prefill_ms);

    eprintln!("decode {} tokens…", plan.decode_tokens);
    let short = text_ids(DECODE_CONTEXT, 4);
    session.reserve(g, &m.llm, short.len() + plan.decode_tokens + 1)?;
    let mut steps = Vec::new();
    for run in 0..plan.warmup + plan.repeats {
        first_token(m, &mut session, &short, &[], None)?;
        for _ in 0..plan.decode_tokens {
            let t = Instant::now();
            m.llm.decode(g, &m.blas, &mut session, greedy(c.vocab))?;
            if run >= plan.warmup {
                steps.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    out.decode(median(steps), plan.decode_tokens);
    peak = peak.max(used(g)?);
    drop(session);
    out.peak_memory(peak);

    let bw = copy_bandwidth(g)?;
    out.floor(bw, bw);
    Ok(())
}
