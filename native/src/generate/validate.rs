//! Checks a generate request before any work: ids, media, pixels and sampling values.
use crate::error::{bad_request, Result};
use crate::model::config::ModelConfig;
use crate::protocol::{Generate, MediaSpec};

pub const ATOM: i32 = -300;
pub const INDICATORS: [i32; 4] = [-301, -302, -303, -304];
/// Values of one 16×16×3 patch row (model-spec.md §2.5).
pub const PATCH_VALUES: usize = 768;

/// Patches of each medium (t·h·w) after checking the grid.
pub fn media_patches(media: &[MediaSpec], cfg: &ModelConfig) -> Result<Vec<usize>> {
    let s = cfg.vit.hidden_stride;
    media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let [t, h, w] = m.grid;
            if m.kind != "image" && m.kind != "video" {
                return Err(bad_request(format!("media[{i}].kind is {:?}; expected \"image\" or \"video\"", m.kind)));
            }
            if t == 0 || h == 0 || w == 0 || h % s != 0 || w % s != 0 {
                return Err(bad_request(format!("media[{i}].grid {:?} must be positive with h and w multiples of {s}", m.grid)));
            }
            if m.kind == "image" && t != 1 {
                return Err(bad_request(format!("media[{i}] is an image with {t} frames; images have t = 1")));
            }
            Ok(t * h * w)
        })
        .collect()
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
    if !(s.temperature >= 0.0 && s.temperature.is_finite()) {
        return Err(bad_request(format!("sampling.temperature {} must be ≥ 0 (0 = greedy)", s.temperature)));
    }
    if !(s.top_p > 0.0 && s.top_p <= 1.0) {
        return Err(bad_request(format!("sampling.top_p {} must be in (0, 1]", s.top_p)));
    }
    if !(s.repetition_penalty > 0.0 && s.repetition_penalty.is_finite()) {
        return Err(bad_request(format!("sampling.repetition_penalty {} must be > 0 (1 = off)", s.repetition_penalty)));
    }
    if req.top_logprobs > 20 {
        return Err(bad_request(format!("top_logprobs {} is over the limit of 20", req.top_logprobs)));
    }
    Ok(patches)
}
