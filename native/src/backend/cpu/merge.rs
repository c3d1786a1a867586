//! The CPU's host-side merge of text and vision into the LLM input rows (model-spec.md §6), from the
//! row sources of `model::merge` (the CUDA twin gathers the same rows on the device: `merge_rows`).
use crate::backend::cpu::visual_head::VisualHead;
use crate::error::{bad_request, Result};
use crate::model::merge::{row_sources, RowSource, INDICATOR_IDS};

/// ids [L] → embeddings [L, hidden]. `text_embed(ids, out)` writes embed_tokens rows for text ids into
/// out [ids.len(), hidden] (a closure so this does not depend on the LLM type); `visual` [atoms, hidden]
/// holds the visual embeddings of all images/videos in prompt order.
pub fn merge_embeddings(ids: &[i32], text_embed: impl Fn(&[u32], &mut [f32]), head: &VisualHead, visual: &[f32], hidden: usize) -> Result<Vec<f32>> {
    if hidden == 0 || hidden != head.hidden() {
        return Err(bad_request(format!("merge: hidden size {hidden} does not match the visual embedding table's {}", head.hidden())));
    }
    if !visual.len().is_multiple_of(hidden) {
        return Err(bad_request(format!("merge: visual embeddings have {} floats, not a multiple of the hidden size {hidden}", visual.len())));
    }
    let sources = row_sources(ids, visual.len() / hidden)?;

    let mut out = vec![0f32; ids.len() * hidden];
    // All text rows in one call (the embedding closure may be batched), then scattered to their positions.
    let text: Vec<u32> = sources.iter().filter_map(|s| if let RowSource::Text(t) = s { Some(*t) } else { None }).collect();
    let mut text_rows = vec![0f32; text.len() * hidden];
    if !text.is_empty() {
        text_embed(&text, &mut text_rows);
    }
    let indicators: Vec<Vec<f32>> = INDICATOR_IDS.iter().map(|&i| head.indicator(i)).collect::<Result<_>>()?;
    let mut t = 0;
    for (dst, src) in out.chunks_mut(hidden).zip(&sources) {
        match *src {
            RowSource::Text(_) => {
                dst.copy_from_slice(&text_rows[t * hidden..(t + 1) * hidden]);
                t += 1;
            }
            RowSource::Visual(a) => dst.copy_from_slice(&visual[a * hidden..(a + 1) * hidden]),
            RowSource::Indicator(i) => dst.copy_from_slice(&indicators[i]),
        }
    }
    Ok(out)
}
