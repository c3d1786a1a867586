//! Merging text and vision into the LLM input sequence (model-spec.md §6): ids ≥ 0 are text tokens
//! (embed_tokens rows), −301..−304 are indicators (VTE rows), and the j-th −300 atom takes visual row j.
use crate::error::{bad_request, Result};

/// The visual atom placeholder id: one per merged visual token.
pub const ATOM_ID: i32 = -300;
/// Image start/end and video start/end placeholder ids, ↔ VTE rows visual_vocab − 4 + i (trap 4).
pub const INDICATOR_IDS: [i32; 4] = [-301, -302, -303, -304];

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
/// atoms and no other negative ids. The CPU and the CUDA forward build their input rows from this.
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
