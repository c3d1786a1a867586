//! Checks a generate request before any work: ids, media, pixels and sampling values.
use crate::error::{bad_request, Result};
use crate::model::config::ModelConfig;
use crate::protocol::{Generate, MediaSpec, GREEDY_TEMPERATURE, MAX_FRAME};

pub const ATOM: i32 = -300;
pub const INDICATORS: [i32; 4] = [-301, -302, -303, -304];
/// Values of one 16×16×3 patch row (model-spec.md §2.5).
pub const PATCH_VALUES: usize = 768;
/// Patch rows one frame can carry (MAX_FRAME bytes of 768 f32 each): the most patches the media
/// of one request may have, in all, and so the most any grid dimension may be.
pub const MAX_MEDIA_PATCHES: usize = MAX_FRAME / (PATCH_VALUES * 4);
/// sampling.temperature is in [0, MAX_TEMPERATURE]; below GREEDY_TEMPERATURE it is greedy.
pub const MAX_TEMPERATURE: f32 = 100.0;
/// sampling.repetition_penalty is in [MIN_REPETITION_PENALTY, MAX_REPETITION_PENALTY] (1 = off):
/// z/ρ and z·ρ stay finite for any logit a model gives.
pub const MIN_REPETITION_PENALTY: f32 = 0.01;
pub const MAX_REPETITION_PENALTY: f32 = 100.0;
/// top_logprobs is at most this.
pub const MAX_TOP_LOGPROBS: usize = 20;

/// Patches of each medium (t·h·w) after checking the grid: every dimension in 1..=MAX_MEDIA_PATCHES,
/// h and w multiples of the hidden stride, images with t = 1, and t·h·w (and the sum over the
/// media) at most MAX_MEDIA_PATCHES, computed without wrapping.
pub fn media_patches(media: &[MediaSpec], cfg: &ModelConfig) -> Result<Vec<usize>> {
    let s = cfg.vit.hidden_stride;
    let mut total = 0usize;
    let mut out = Vec::with_capacity(media.len());
    for (i, m) in media.iter().enumerate() {
        let [t, h, w] = m.grid;
        if m.kind != "image" && m.kind != "video" {
            return Err(bad_request(format!("media[{i}].kind is {:?}; expected \"image\" or \"video\"", m.kind)));
        }
        for (name, v) in [("t", t), ("h", h), ("w", w)] {
            if v == 0 || v > MAX_MEDIA_PATCHES {
                return Err(bad_request(format!("media[{i}].grid {:?}: {name} = {v} is outside 1..={MAX_MEDIA_PATCHES}", m.grid)));
            }
        }
        if h % s != 0 || w % s != 0 {
            return Err(bad_request(format!("media[{i}].grid {:?} must have h and w multiples of {s}", m.grid)));
        }
        if m.kind == "image" && t != 1 {
            return Err(bad_request(format!("media[{i}] is an image with {t} frames; images have t = 1")));
        }
        let patches = t.checked_mul(h).and_then(|n| n.checked_mul(w)).filter(|&n| n <= MAX_MEDIA_PATCHES).ok_or_else(|| {
            let n = t as u128 * h as u128 * w as u128;
            bad_request(format!("media[{i}].grid {:?} has t·h·w = {n} patches, more than the {MAX_MEDIA_PATCHES} one frame can carry", m.grid))
        })?;
        total += patches;
        if total > MAX_MEDIA_PATCHES {
            return Err(bad_request(format!("media[0..={i}] have {total} patches in all, more than the {MAX_MEDIA_PATCHES} one frame can carry")));
        }
        out.push(patches);
    }
    Ok(out)
}

pub fn check_request(req: &Generate, ids: &[i32], pixels: usize, cfg: &ModelConfig) -> Result<Vec<usize>> {
    let patches = media_patches(&req.media, cfg)?;
    let want_pixels: usize = patches.iter().sum::<usize>() * PATCH_VALUES;
    if pixels != want_pixels {
        return Err(bad_request(format!("the body holds {pixels} pixel values but the media grids need {want_pixels}")));
    }
    let stride2 = cfg.vit.hidden_stride * cfg.vit.hidden_stride;
    let want_atoms: usize = patches.iter().map(|p| p / stride2).sum();
    let mut atoms = 0usize;
    for (i, &id) in ids.iter().enumerate() {
        if id == ATOM {
            atoms += 1;
        } else if id < 0 && !INDICATORS.contains(&id) {
            return Err(bad_request(format!("ids[{i}] = {id} is not a token id, a visual atom (-300) or an indicator (-301..-304)")));
        } else if id >= 0 && id as usize >= cfg.llm.vocab {
            return Err(bad_request(format!("ids[{i}] = {id} is outside the vocabulary of {} tokens", cfg.llm.vocab)));
        }
    }
    if atoms != want_atoms {
        return Err(bad_request(format!("the ids hold {atoms} visual atoms (-300) but the media grids give {want_atoms}")));
    }
    let s = &req.sampling;
    if !(s.temperature >= 0.0 && s.temperature <= MAX_TEMPERATURE) {
        return Err(bad_request(format!("sampling.temperature {} is outside [0, {MAX_TEMPERATURE}] (below {GREEDY_TEMPERATURE:e} = greedy)", num(s.temperature))));
    }
    if !(s.top_p > 0.0 && s.top_p <= 1.0) {
        return Err(bad_request(format!("sampling.top_p {} is outside (0, 1] (1 = off)", num(s.top_p))));
    }
    if !(s.repetition_penalty >= MIN_REPETITION_PENALTY && s.repetition_penalty <= MAX_REPETITION_PENALTY) {
        return Err(bad_request(format!("sampling.repetition_penalty {} is outside [{MIN_REPETITION_PENALTY}, {MAX_REPETITION_PENALTY}] (1 = off)", num(s.repetition_penalty))));
    }
    if req.top_logprobs > MAX_TOP_LOGPROBS {
        return Err(bad_request(format!("top_logprobs {} is over the limit of {MAX_TOP_LOGPROBS}", req.top_logprobs)));
    }
    Ok(patches)
}

/// A value as a person reads it: 0.7, 100, 1e-45, 1e30 (not 30 digits).
fn num(v: f32) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}
