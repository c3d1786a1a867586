//! The SigLIP2-NaViT encoder (model-spec §4) and the visual head + VTE (§5) on the GPU, bf16 with f32
//! accumulation: patch embedding and every projection through cuBLASLt (bias fused), bicubic position
//! embedding, 2-D rotary and per-frame (or per-window) flash attention in kernels. The output is the
//! visual embeddings [M, H] that `merge_rows` copies into the LLM input, never leaving the device.
//!
//! Window attention (§4.4) moves whole merge cells: the host permutes the pixel rows and coordinates
//! before upload, and the row map of `VisualEmbeds` undoes it when the rows are merged (the head
//! works per cell, so its output needs no reordering on the device).
//!
//! NOT RUN ON A GPU YET (see docs/cuda.md): tests/cuda_model_parity.rs compares it with the CPU path.
use super::blas::Blas;
use super::device::{ptr, DPtr, Gpu};
use super::ops;
use crate::error::{bad_request, Result};
use crate::model::config::ModelConfig;
use crate::model::source::VIT_PREFIX;
use crate::model::vision::layout::{check_grids, frame_segments, positions, segments_from_cu, window_index};
use crate::model::weights::WeightRef;
use cudarc::driver::CudaSlice;
use half::bf16;
use rayon::prelude::*;
use std::sync::Mutex;

type Buf = CudaSlice<u16>;

/// The visual head's LayerNorm is PyTorch's default eps, not the ViT's (trap 2).
const HEAD_LN_EPS: f32 = 1e-5;

struct Layer {
    ln1: (Buf, Buf),
    ln2: (Buf, Buf),
    /// q|k|v fused: [3D, D] and bias [3D].
    qkv: (Buf, Buf),
    o: (Buf, Buf),
    fc1: (Buf, Buf),
    fc2: (Buf, Buf),
}

/// Device buffers of one encode, kept between calls and grown to the largest input seen.
#[derive(Default)]
struct Work {
    bufs: Vec<Option<Buf>>,
    ints: Vec<Option<CudaSlice<i32>>>,
}

/// Slot `slot` of `slots`, holding at least `len` elements (reallocated only when too small).
fn grown<'a, T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(g: &Gpu, slots: &'a mut Vec<Option<CudaSlice<T>>>, slot: usize, len: usize) -> Result<&'a mut CudaSlice<T>> {
    if slots.len() <= slot {
        slots.resize_with(slot + 1, || None);
    }
    if slots[slot].as_ref().is_none_or(|b| b.len() < len) {
        slots[slot] = None; // free first: the old and new buffers need not fit together
        slots[slot] = Some(g.zeros::<T>(len)?);
    }
    Ok(slots[slot].as_mut().expect("set above"))
}

impl Work {
    /// Buffer `slot` with at least `len` elements.
    fn buf(&mut self, g: &Gpu, slot: usize, len: usize) -> Result<DPtr> {
        Ok(ptr(grown(g, &mut self.bufs, slot, len)?, &g.stream))
    }

    /// Uploads `data` into int slot `slot`; returns its address.
    fn ints(&mut self, g: &Gpu, slot: usize, data: &[i32]) -> Result<DPtr> {
        let dst = grown(g, &mut self.ints, slot, data.len())?;
        g.upload_at(data, dst, 0)?;
        Ok(ptr(dst, &g.stream))
    }

    /// Uploads bf16 bits into buffer `slot`; returns its address.
    fn upload(&mut self, g: &Gpu, slot: usize, data: &[u16]) -> Result<DPtr> {
        let dst = grown(g, &mut self.bufs, slot, data.len())?;
        g.upload_at(data, dst, 0)?;
        Ok(ptr(dst, &g.stream))
    }
}

// Work slots.
const PIXELS: usize = 0;
const X: usize = 1;
const A: usize = 2;
const QKV: usize = 3;
const ATT: usize = 4;
const DELTA: usize = 5;
const MLP: usize = 6;
const LOGITS: usize = 7;
const PROBS: usize = 8;
const EMBEDS: usize = 9;
// Int slots.
const POS: usize = 0;
const FRAME_TILES: usize = 1;
const WINDOW_TILES: usize = 2;

pub struct CudaVision {
    cfg: ModelConfig,
    /// Conv2d weight [D, 3·p·p] as a Linear (column = ch·p² + ky·p + kx, §4.1) and bias [D].
    patch: (Buf, Buf),
    /// Learned position table [side², D].
    pos_table: Buf,
    side: usize,
    layers: Vec<Layer>,
    /// Head Linear [V−4, s²·D] (no bias), its LayerNorm (weight, bias) [V−4], the VTE [V, H].
    head0: Buf,
    head_ln: (Buf, Buf),
    vte: Buf,
    work: Mutex<Work>,
}

/// Visual embeddings on the device: `rows` [M, H] bf16 where the j-th visual atom of the prompt
/// (§2.5 cell order) is row `row_of_atom[j]`.
pub struct VisualEmbeds<'a> {
    pub rows: DPtr,
    pub row_of_atom: Vec<i32>,
    _work: std::sync::MutexGuard<'a, Work>,
}

/// Bytes of the ViT, head and VTE weights on the device (bf16).
pub fn weight_bytes(cfg: &ModelConfig) -> u64 {
    2 * crate::model::ovis::vision_params(cfg)
}

/// Bytes of device memory one encode of `patches` patches needs (activations, head logits and probabilities).
pub fn work_bytes(cfg: &ModelConfig, patches: usize) -> u64 {
    let v = &cfg.vit;
    let (n, d, m) = (patches, v.hidden, patches / (v.hidden_stride * v.hidden_stride));
    let acts = n * (v.channels * v.patch * v.patch + 4 * d + 3 * d + v.intermediate);
    let head = m * (2 * cfg.visual_vocab + cfg.llm.hidden);
    (2 * (acts + head) + 16 * n + 64 * n / 32 * v.heads) as u64
}

impl CudaVision {
    /// Uploads the ViT (q|k|v fused), head and VTE; `get` takes full checkpoint names.
    pub fn upload(g: &Gpu, cfg: &ModelConfig, mut get: impl FnMut(&str, &[usize]) -> Result<WeightRef>) -> Result<CudaVision> {
        let v = &cfg.vit;
        let (d, inter, p, c) = (v.hidden, v.intermediate, v.patch, v.channels);
        ops::check_vit_head_dim(d / v.heads.max(1), d)?;
        let side = v.image_size / p;
        // Validated like the CPU loader does (present in every checkpoint), never applied (§4.7, trap 1).
        get(&format!("{VIT_PREFIX}post_layernorm.weight"), &[d])?;
        get(&format!("{VIT_PREFIX}post_layernorm.bias"), &[d])?;
        let mut up = |parts: &[(String, Vec<usize>)]| g.upload_tensors(parts, &mut get);
        let vit = |n: &str| format!("{VIT_PREFIX}{n}");
        let one = |n: String, s: Vec<usize>| vec![(n, s)];
        let patch = (up(&one(vit("embeddings.patch_embedding.weight"), vec![d, c, p, p]))?, up(&one(vit("embeddings.patch_embedding.bias"), vec![d]))?);
        let pos_table = up(&one(vit("embeddings.position_embedding.weight"), vec![side * side, d]))?;
        let mut layers = Vec::with_capacity(v.layers);
        for l in 0..v.layers {
            let pre = vit(&format!("encoder.layers.{l}."));
            let w = |n: &str, s: Vec<usize>| (format!("{pre}{n}.weight"), s);
            let b = |n: &str, s: Vec<usize>| (format!("{pre}{n}.bias"), s);
            let pair = |up: &mut dyn FnMut(&[(String, Vec<usize>)]) -> Result<Buf>, n: &str, out: usize, inp: usize| -> Result<(Buf, Buf)> {
                Ok((up(&[w(n, vec![out, inp])])?, up(&[b(n, vec![out])])?))
            };
            let norm = |up: &mut dyn FnMut(&[(String, Vec<usize>)]) -> Result<Buf>, n: &str| -> Result<(Buf, Buf)> { Ok((up(&[w(n, vec![d])])?, up(&[b(n, vec![d])])?)) };
            let attn = |n: &str| format!("self_attn.{n}");
            layers.push(Layer {
                ln1: norm(&mut up, "layer_norm1")?,
                ln2: norm(&mut up, "layer_norm2")?,
                qkv: (
                    up(&[w(&attn("q_proj"), vec![d, d]), w(&attn("k_proj"), vec![d, d]), w(&attn("v_proj"), vec![d, d])])?,
                    up(&[b(&attn("q_proj"), vec![d]), b(&attn("k_proj"), vec![d]), b(&attn("v_proj"), vec![d])])?,
                ),
                o: pair(&mut up, &attn("out_proj"), d, d)?,
                fc1: pair(&mut up, "mlp.fc1", inter, d)?,
                fc2: pair(&mut up, "mlp.fc2", d, inter)?,
            });
        }
        let (vv, h, s) = (cfg.visual_vocab, cfg.llm.hidden, v.hidden_stride);
        let head0 = up(&one("visual_tokenizer.head.0.weight".into(), vec![vv - 4, s * s * d]))?;
        let head_ln = (up(&one("visual_tokenizer.head.1.weight".into(), vec![vv - 4]))?, up(&one("visual_tokenizer.head.1.bias".into(), vec![vv - 4]))?);
        let vte = up(&one("vte.weight".into(), vec![vv, h]))?;
        Ok(CudaVision { cfg: cfg.clone(), patch, pos_table, side, layers, head0, head_ln, vte, work: Mutex::new(Work::default()) })
    }

    /// Device address of the VTE [V, H] (indicator rows V−4.. are a `merge_rows` table).
    pub fn vte(&self, g: &Gpu) -> DPtr {
        ptr(&self.vte, &g.stream)
    }

    /// pixels [N, 3·p·p] f32 (§2.5 order, all media concatenated), grids (t, h, w) → the visual embeddings.
    pub fn encode(&self, g: &Gpu, blas: &Blas, pixels: &[f32], grids: &[[usize; 3]]) -> Result<VisualEmbeds<'_>> {
        let v = &self.cfg.vit;
        let (d, s, heads, inter) = (v.hidden, v.hidden_stride, v.heads, v.intermediate);
        let (hd, pd, unit) = (d / heads, v.channels * v.patch * v.patch, s * s);
        let n = check_grids(grids, s)?;
        if pixels.len() != n * pd {
            return Err(bad_request(format!("pixel_values has {} floats but the grids {grids:?} need {n}·{pd}", pixels.len())));
        }
        if let Some(i) = pixels.par_iter().position_first(|x| !x.is_finite()) {
            return Err(bad_request(format!("pixel_values[{}][{}] is not a finite number", i / pd, i % pd)));
        }
        let cells = n / unit;
        // Window attention (§4.4): cell order perm[i] = the natural cell at row i.
        let window = v.fullatt_blocks.as_ref().map(|full| {
            let (perm, cu) = window_index(grids, s, v.window_size / s / v.patch);
            (full.clone(), perm, segments_from_cu(&cu))
        });
        let perm: Vec<usize> = window.as_ref().map_or_else(|| (0..cells).collect(), |w| w.1.clone());

        // Pixel rows as bf16 (the bf16 reference feeds bf16 pixels to the patch embedding) and token
        // coordinates {y, x, h, w}, both in (permuted) cell order.
        let mut grid_of = Vec::with_capacity(n);
        for &[t, h, w] in grids {
            grid_of.extend(std::iter::repeat_n([h as i32, w as i32], t * h * w));
        }
        let coords = positions(grids, s);
        let mut px = vec![0u16; n * pd];
        let mut pos = vec![0i32; 4 * n];
        px.par_chunks_mut(unit * pd).zip(pos.par_chunks_mut(4 * unit)).zip(perm.par_iter()).for_each(|((dst, pdst), &c)| {
            for (o, &x) in dst.iter_mut().zip(&pixels[c * unit * pd..(c + 1) * unit * pd]) {
                *o = bf16::from_f32(x).to_bits();
            }
            for k in 0..unit {
                let t = c * unit + k;
                let (y, x) = coords[t];
                pdst[4 * k..4 * k + 4].copy_from_slice(&[y as i32, x as i32, grid_of[t][0], grid_of[t][1]]);
            }
        });
        let frame_tiles: Vec<i32> = ops::segment_tiles(&frame_segments(grids)).into_iter().flatten().collect();
        let window_tiles: Option<Vec<i32>> = window.as_ref().map(|w| ops::segment_tiles(&w.2).into_iter().flatten().collect());

        let mut work = self.work.lock().unwrap_or_else(|e| e.into_inner());
        let w = &mut *work;
        let pix = w.upload(g, PIXELS, &px)?;
        let pos = w.ints(g, POS, &pos)?;
        let frames = (w.ints(g, FRAME_TILES, &frame_tiles)?, frame_tiles.len() / 4);
        let windows = match &window_tiles {
            Some(t) => Some((w.ints(g, WINDOW_TILES, t)?, t.len() / 4)),
            None => None,
        };
        let (x, a, qkv, att, delta, mlp) = (w.buf(g, X, n * d)?, w.buf(g, A, n * d)?, w.buf(g, QKV, n * 3 * d)?, w.buf(g, ATT, n * d)?, w.buf(g, DELTA, n * d)?, w.buf(g, MLP, n * inter)?);
        let p = |b: &Buf| ptr(b, &g.stream);
        let eps = v.ln_eps as f32;

        blas.linear(g, pix, p(&self.patch.0), Some(p(&self.patch.1)), x, n, d, pd)?;
        ops::pos_embed_bicubic(g, x, p(&self.pos_table), pos, n, d, self.side)?;
        for (k, l) in self.layers.iter().enumerate() {
            let (tiles, n_tiles) = match (&window, windows) {
                (Some((full, _, _)), Some(win)) if !full.contains(&k) => win,
                _ => frames,
            };
            ops::layernorm(g, x, p(&l.ln1.0), p(&l.ln1.1), a, n, d, eps)?;
            blas.linear(g, a, p(&l.qkv.0), Some(p(&l.qkv.1)), qkv, n, 3 * d, d)?;
            ops::vision_rope2d(g, qkv, pos, n, heads, hd)?;
            ops::segment_attention(g, qkv, att, tiles, n_tiles, heads, hd)?;
            blas.linear(g, att, p(&l.o.0), Some(p(&l.o.1)), delta, n, d, d)?;
            ops::add(g, x, delta, n * d)?;
            ops::layernorm(g, x, p(&l.ln2.0), p(&l.ln2.1), a, n, d, eps)?;
            blas.linear(g, a, p(&l.fc1.0), Some(p(&l.fc1.1)), mlp, n, inter, d)?;
            ops::gelu_tanh(g, mlp, n * inter)?;
            blas.linear(g, mlp, p(&l.fc2.0), Some(p(&l.fc2.1)), delta, n, d, inter)?;
            ops::add(g, x, delta, n * d)?;
        }

        // Head (§5): each cell's s² tokens are one row of x viewed as [cells, s²·D].
        let (vv, h) = (self.cfg.visual_vocab, self.cfg.llm.hidden);
        let (logits, probs, embeds) = (w.buf(g, LOGITS, cells * (vv - 4))?, w.buf(g, PROBS, cells * vv)?, w.buf(g, EMBEDS, cells * h)?);
        blas.linear(g, x, p(&self.head0), None, logits, cells, vv - 4, unit * d)?;
        ops::layernorm(g, logits, p(&self.head_ln.0), p(&self.head_ln.1), logits, cells, vv - 4, HEAD_LN_EPS)?;
        ops::softmax_rows(g, logits, probs, cells, vv - 4, vv)?;
        blas.matmul_kn(g, probs, p(&self.vte), embeds, cells, h, vv)?;

        let mut row_of_atom = vec![0i32; cells];
        for (row, &c) in perm.iter().enumerate() {
            row_of_atom[c] = row as i32;
        }
        Ok(VisualEmbeds { rows: embeds, row_of_atom, _work: work })
    }

    /// The last encode's ViT output [N, D] (bf16 widened; rows in permuted cell order when windowed),
    /// for parity tests.
    pub fn last_features(&self, g: &Gpu, n: usize) -> Result<Vec<f32>> {
        self.download(g, X, n * self.cfg.vit.hidden)
    }

    fn download(&self, g: &Gpu, slot: usize, len: usize) -> Result<Vec<f32>> {
        g.sync()?;
        let work = self.work.lock().unwrap_or_else(|e| e.into_inner());
        let buf = work.bufs.get(slot).and_then(Option::as_ref).ok_or_else(|| crate::error::EngineError::Internal("nothing encoded yet".into()))?;
        let all = g.download(buf)?;
        Ok(all[..len.min(all.len())].iter().map(|&b| bf16::from_bits(b).to_f32()).collect())
    }
}
