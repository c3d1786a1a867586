//! The device sampler's host side (kernels in native/kernels/sampling.cu): the parameter block the
//! host writes before each step and the result it reads back, both mirrored field for field.
//!
//! NOT RUN ON A GPU YET (see docs/cuda.md): tests/cuda_parity.rs compares it with generate::sampler.
use super::device::{DPtr, Gpu};
use crate::cuda_args as args;
use crate::error::Result;

/// Entries of `top` the device can report (SAMPLE_MAX_TOP in sampling.cu).
pub const MAX_TOP: usize = 20;

/// `struct SampleParams` of sampling.cu (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SampleParams {
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub rep_penalty: f32,
    /// Uniform in [0, 1): the CPU sampler's `Rng::next_f64()`, so both backends draw the same stream.
    pub u: f64,
    pub top_n: i32,
    pub vocab: i32,
}

impl SampleParams {
    /// A request's sampling settings for the kernel (`u` is drawn per step by the caller).
    pub fn for_request(req: &crate::protocol::Generate, vocab: usize) -> SampleParams {
        let s = &req.sampling;
        SampleParams {
            temperature: s.temperature,
            top_k: s.top_k.min(i32::MAX as usize) as i32,
            top_p: s.top_p,
            rep_penalty: s.repetition_penalty,
            u: 0.0,
            top_n: req.top_logprobs as i32,
            vocab: vocab as i32,
        }
    }
}

/// `struct SampleResult` of sampling.cu (176 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleResult {
    pub id: i32,
    pub logprob: f32,
    pub n: i32,
    pub pad: i32,
    pub top_ids: [i32; MAX_TOP],
    pub top_logprobs: [f32; MAX_TOP],
}

impl Default for SampleResult {
    fn default() -> Self {
        SampleResult { id: 0, logprob: 0.0, n: 0, pad: 0, top_ids: [0; MAX_TOP], top_logprobs: [0.0; MAX_TOP] }
    }
}

impl SampleResult {
    /// The reported (id, logprob) pairs, best first.
    pub fn top(&self) -> Vec<(u32, f32)> {
        (0..(self.n.max(0) as usize).min(MAX_TOP)).filter(|&i| self.top_ids[i] >= 0).map(|i| (self.top_ids[i] as u32, self.top_logprobs[i])).collect()
    }
}

// SAFETY: plain-old-data structs with C layout, valid for any bit pattern of their fields.
unsafe impl cudarc::driver::DeviceRepr for SampleParams {}
unsafe impl cudarc::driver::DeviceRepr for SampleResult {}
unsafe impl cudarc::driver::ValidAsZeroBits for SampleParams {}
unsafe impl cudarc::driver::ValidAsZeroBits for SampleResult {}

/// z [V] f32 = logits [V] f32 with the repetition penalty applied to ids with seen[id] = 1.
pub fn logits_penalty(g: &Gpu, logits: DPtr, seen: DPtr, z: DPtr, params: DPtr, vocab: usize) -> Result<()> {
    let v = vocab as i32;
    g.launch("logits_penalty_f32", (vocab.div_ceil(256) as u32, 1, 1), 256, 0, &mut args![logits, seen, z, params, v])
}

/// Picks the next id from z [V] (one block); writes `result`, sets seen[id] and *next_id.
pub fn sample(g: &Gpu, z: DPtr, params: DPtr, result: DPtr, seen: DPtr, next_id: DPtr) -> Result<()> {
    g.launch("sample_f32", (1, 1, 1), 1024, 0, &mut args![z, params, result, seen, next_id])
}

/// The batched step's penalty: z [rows, V] from logits [rows, V], row r with params[r] and its own
/// history seen_tab[r] (a device u64 array of the sessions' `seen` addresses).
pub fn logits_penalty_rows(g: &Gpu, logits: DPtr, seen_tab: DPtr, z: DPtr, params: DPtr, vocab: usize, rows: usize) -> Result<()> {
    let v = vocab as i32;
    g.launch("logits_penalty_rows_f32", (vocab.div_ceil(256) as u32, rows as u32, 1), 256, 0, &mut args![logits, seen_tab, z, params, v])
}

/// The batched step's sampler: one block per row; writes result[r] and next_id[r], marks seen_tab[r].
pub fn sample_rows(g: &Gpu, z: DPtr, params: DPtr, result: DPtr, seen_tab: DPtr, next_id: DPtr, vocab: usize, rows: usize) -> Result<()> {
    let v = vocab as i32;
    g.launch("sample_rows_f32", (rows as u32, 1, 1), 1024, 0, &mut args![z, params, result, seen_tab, next_id, v])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_match_the_cuda_layout() {
        assert_eq!(std::mem::size_of::<SampleParams>(), 32);
        assert_eq!(std::mem::offset_of!(SampleParams, u), 16);
        assert_eq!(std::mem::size_of::<SampleResult>(), 16 + 8 * MAX_TOP);
        assert_eq!(std::mem::offset_of!(SampleResult, top_logprobs), 16 + 4 * MAX_TOP);
    }
}
