//! Merging text and vision into the LLM input sequence (model-spec.md §6): ids ≥ 0 are text tokens
//! (embed_tokens rows), −301..−304 are indicators (VTE rows), and the j-th −300 atom takes visual row j.
use crate::error::{bad_request, Result};
use crate::model::visual_head::{VisualHead, INDICATOR_IDS};

/// The visual atom placeholder id: one per merged visual token.
pub const ATOM_ID: i32 = -300;

/// Where one input row comes from (model-spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSource {
    /// embed_tokens row of a text id.
    Text(u32),
    /// Indicator i (ids −301 − i): VTE row V − 4 + i.
    Indicator(usize),
    /// The j-th visual atom: visual embedding row j (in prompt order).
    Visual(usize),
}

/// The source of every position of `ids`, after checking that the prompt holds exactly `visual_rows`
/// atoms and no other negative ids. Both backends build their input rows from this.
pub fn row_sources(ids: &[i32], visual_rows: usize) -> Result<Vec<RowSource>> {
    let atoms = ids.iter().filter(|&&i| i == ATOM_ID).count();
    if atoms != visual_rows {
        return Err(bad_request(format!("the prompt has {atoms} visual atom ids (−300) but the images/videos give {visual_rows} visual tokens")));
    }
    let mut atom = 0;
    ids.iter()
        .map(|&id| {
            if id >= 0 {
                Ok(RowSource::Text(id as u32))
            } else if id == ATOM_ID {
                atom += 1;
                Ok(RowSource::Visual(atom - 1))
            } else {
                let i = INDICATOR_IDS.iter().position(|&x| x == id);
                i.map(RowSource::Indicator).ok_or_else(|| bad_request(format!("token id {id} is negative but not a visual placeholder (−300 atom, −301..−304 indicators)")))
            }
        })
        .collect()
}

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
