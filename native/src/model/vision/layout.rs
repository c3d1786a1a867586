//! Token layout of the ViT input (model-spec.md §2.5, §4.2–4.5): grid validation, patch coordinates
//! in merge-cell order, per-frame attention segments, and the window permutation of §4.4.
use crate::error::{bad_request, Result};

/// Checks the (t, h, w) grids against the merge stride s and returns N = Σ t·h·w patches.
pub fn check_grids(grids: &[[usize; 3]], s: usize) -> Result<usize> {
    if grids.is_empty() {
        return Err(bad_request("vision input has no grids: expected one (t, h, w) per image or video"));
    }
    let mut n = 0usize;
    for (i, &[t, h, w]) in grids.iter().enumerate() {
        if t == 0 || h == 0 || w == 0 {
            return Err(bad_request(format!("grid {i} is ({t}, {h}, {w}): t, h and w must all be positive")));
        }
        if h % s != 0 || w % s != 0 {
            return Err(bad_request(format!("grid {i} is ({t}, {h}, {w}): h and w (in patches) must be multiples of the merge stride {s}")));
        }
        let vol = t.checked_mul(h).and_then(|v| v.checked_mul(w)).filter(|&v| v <= 1 << 24);
        let vol = vol.ok_or_else(|| bad_request(format!("grid {i} is ({t}, {h}, {w}): too many patches")))?;
        n += vol;
    }
    if n > 1 << 24 {
        return Err(bad_request(format!("the grids hold {n} patches in total: too many")));
    }
    Ok(n)
}

/// (y, x) patch coordinates within its frame of every token, in §2.5 order: per grid, per frame,
/// merge cells (by, bx) in raster order, then (sy, sx) inside the s×s cell. Positions restart per frame.
pub fn positions(grids: &[[usize; 3]], s: usize) -> Vec<(usize, usize)> {
    let mut pos = Vec::new();
    for &[t, h, w] in grids {
        for _ in 0..t {
            for by in 0..h / s {
                for bx in 0..w / s {
                    for sy in 0..s {
                        for sx in 0..s {
                            pos.push((by * s + sy, bx * s + sx));
                        }
                    }
                }
            }
        }
    }
    pos
}

/// (start, len) of every frame: each image, and each frame of a video, attends only to itself (§4.5).
pub fn frame_segments(grids: &[[usize; 3]]) -> Vec<(usize, usize)> {
    let mut segs = Vec::new();
    let mut start = 0;
    for &[t, h, w] in grids {
        for _ in 0..t {
            segs.push((start, h * w));
            start += h * w;
        }
    }
    segs
}

/// The window permutation of §4.4 for ws×ws windows of s×s merge cells: `window_index` lists the merge
/// cells (numbered frame-major raster over all grids) in window order; `cu_window_seqlens` are the token
/// prefix sums of the windows (starting at 0, empty windows' repeats removed).
pub fn window_index(grids: &[[usize; 3]], s: usize, ws: usize) -> (Vec<usize>, Vec<usize>) {
    let unit = s * s;
    let mut index = Vec::new();
    let mut cu = vec![0usize];
    let mut offset = 0;
    for &[t, h, w] in grids {
        let (lh, lw) = (h / s, w / s);
        // The reference always pads by ws − (l mod ws): a whole empty window row/column when divisible.
        let (nwh, nww) = ((lh + ws - lh % ws) / ws, (lw + ws - lw % ws) / ws);
        for f in 0..t {
            for wy in 0..nwh {
                for wx in 0..nww {
                    let mut count = 0;
                    for y in wy * ws..((wy + 1) * ws).min(lh) {
                        for x in wx * ws..((wx + 1) * ws).min(lw) {
                            index.push(offset + (f * lh + y) * lw + x);
                            count += 1;
                        }
                    }
                    let last = *cu.last().unwrap();
                    if count > 0 {
                        cu.push(last + count * unit);
                    }
                }
            }
        }
        offset += t * lh * lw;
    }
    (index, cu)
}

/// Consecutive (start, len) pairs of a prefix-sum list.
pub fn segments_from_cu(cu: &[usize]) -> Vec<(usize, usize)> {
    cu.windows(2).map(|p| (p[0], p[1] - p[0])).collect()
}

/// Reorders rows of x [cells·unit, dim] so that output cell i is input cell perm[i] (units of `unit` rows).
pub fn permute_cells(x: &[f32], dim: usize, unit: usize, perm: &[usize]) -> Vec<f32> {
    let block = unit * dim;
    let mut out = Vec::with_capacity(x.len());
    for &c in perm {
        out.extend_from_slice(&x[c * block..(c + 1) * block]);
    }
    out
}

/// Inverse of `permute_cells` with the same perm: output cell perm[i] is input cell i.
pub fn unpermute_cells(x: &[f32], dim: usize, unit: usize, perm: &[usize]) -> Vec<f32> {
    let block = unit * dim;
    let mut out = vec![0f32; x.len()];
    for (i, &c) in perm.iter().enumerate() {
        out[c * block..(c + 1) * block].copy_from_slice(&x[i * block..(i + 1) * block]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_merge_cell_order() {
        let p = positions(&[[1, 2, 4]], 2);
        assert_eq!(p, vec![(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3)]);
    }
}
