//! The SigLIP2-NaViT vision encoder of Ovis2.5 (model-spec.md §4): patch embedding, bicubic-resized
//! learned position embedding, pre-LN layers with 2-D rotary and per-frame (or per-window) attention.
//! Output: the last layer's hidden states [N, D] in §2.5 patch order, without post_layernorm (trap 1).
use crate::backend::cpu::gemm::{gemm_bf16_then, gemm_bf16_then_runs};
use crate::backend::cpu::matmul::matmul_bf16;
use crate::backend::cpu::profile::{self, gemm_flops, Stage};
use crate::backend::cpu::vision_ops::{add_rows, apply_rope, bicubic_resize, gelu_tanh, gelu_tanh_serial, residual_then_norm, rope2d_tables, segment_attention};
use crate::error::{bad_request, Result};
use crate::model::config::VitConfig;
use crate::model::source::{WeightSource, VIT_PREFIX};
use crate::model::synthetic::vit_tensor;
use crate::model::vision::check_config;
use crate::model::vision::layout::{check_grids, frame_segments, permute_cells, positions, segments_from_cu, unpermute_cells, window_index};
use crate::model::weights::WeightRef;
use half::bf16;


struct Layer {
    ln1: (Vec<f32>, Vec<f32>),
    ln2: (Vec<f32>, Vec<f32>),
    /// q, k, v, out projections: weights [D, D], biases [D].
    q: (WeightRef, Vec<f32>),
    k: (WeightRef, Vec<f32>),
    v: (WeightRef, Vec<f32>),
    o: (WeightRef, Vec<f32>),
    /// fc1 [I, D] + [I]; fc2 [D, I] + [D].
    fc1: (WeightRef, Vec<f32>),
    fc2: (WeightRef, Vec<f32>),
}

pub struct VisionEncoder {
    cfg: VitConfig,
    /// Conv2d weight [D, 3, p, p] used as a Linear [D, 3·p·p] (column = ch·p² + ky·p + kx, §4.1).
    patch: (WeightRef, Vec<f32>),
    /// Learned position table [side², D], row i·side + j (f32 copy of the bf16 tensor).
    pos_table: Vec<f32>,
    side: usize,
    layers: Vec<Layer>,
    /// Round pixels to bf16 before the patch embedding, as the bf16 reference does (§4.1). Off by default:
    /// the float32 reference that produced the fixtures feeds f32 pixels (see the vision_parity tests).
    pub bf16_pixels: bool,
}

type Getter<'a> = dyn FnMut(&str, &[usize]) -> Result<WeightRef> + 'a;

/// A Linear `name` with weight [out, inp] and bias [out].
fn linear(get: &mut Getter, name: &str, out: usize, inp: usize) -> Result<(WeightRef, Vec<f32>)> {
    Ok((get(&format!("{name}.weight"), &[out, inp])?, get(&format!("{name}.bias"), &[out])?.to_f32()))
}

/// A LayerNorm `name`: (weight, bias), both [d].
fn norm(get: &mut Getter, name: &str, d: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    Ok((get(&format!("{name}.weight"), &[d])?.to_f32(), get(&format!("{name}.bias"), &[d])?.to_f32()))
}

impl VisionEncoder {
    /// Maps every ViT tensor (prefix `visual_tokenizer.vit.vision_model.`), checking dtype and shape.
    pub fn load(cfg: &VitConfig, src: &WeightSource) -> Result<Self> {
        Self::build(cfg, |name, shape| src.get(&format!("{VIT_PREFIX}{name}"), shape))
    }

    /// Random weights of the configured shapes (benchmarks and tests; outputs are meaningless).
    pub fn synthetic(cfg: &VitConfig, seed: u64) -> Self {
        Self::build(cfg, |name, shape| Ok(vit_tensor(seed, name, shape))).expect("synthetic weights always have the configured shapes")
    }

    fn build(cfg: &VitConfig, mut get: impl FnMut(&str, &[usize]) -> Result<WeightRef>) -> Result<Self> {
        check_config(cfg)?;
        let (d, inter, p, c) = (cfg.hidden, cfg.intermediate, cfg.patch, cfg.channels);
        let side = cfg.image_size / p;
        let patch = (get("embeddings.patch_embedding.weight", &[d, c, p, p])?, get("embeddings.patch_embedding.bias", &[d])?.to_f32());
        let pos_table = get("embeddings.position_embedding.weight", &[side * side, d])?.to_f32();
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let pre = format!("encoder.layers.{l}.");
            layers.push(Layer {
                ln1: norm(&mut get, &format!("{pre}layer_norm1"), d)?,
                ln2: norm(&mut get, &format!("{pre}layer_norm2"), d)?,
                q: linear(&mut get, &format!("{pre}self_attn.q_proj"), d, d)?,
                k: linear(&mut get, &format!("{pre}self_attn.k_proj"), d, d)?,
                v: linear(&mut get, &format!("{pre}self_attn.v_proj"), d, d)?,
                o: linear(&mut get, &format!("{pre}self_attn.out_proj"), d, d)?,
                fc1: linear(&mut get, &format!("{pre}mlp.fc1"), inter, d)?,
                fc2: linear(&mut get, &format!("{pre}mlp.fc2"), d, inter)?,
            });
        }
        // Present in every checkpoint and validated, but never applied (§4.7, trap 1).
        norm(&mut get, "post_layernorm", d)?;
        Ok(VisionEncoder { cfg: cfg.clone(), patch, pos_table, side, layers, bf16_pixels: false })
    }

    /// Floats per patch row of pixel_values: channels·p·p (768).
    pub fn patch_dim(&self) -> usize {
        self.cfg.channels * self.cfg.patch * self.cfg.patch
    }

    pub fn hidden(&self) -> usize {
        self.cfg.hidden
    }

    /// pixels [N, 3·p·p] (§2.5 order, all images/videos concatenated), grids (t, h, w) per image or video
    /// → the last layer's hidden states [N, D] in the same order.
    pub fn encode(&self, pixels: &[f32], grids: &[[usize; 3]]) -> Result<Vec<f32>> {
        Ok(self.encode_with_progress(pixels, grids, &mut |_, _| true)?.expect("never stopped"))
    }

    /// `encode`, calling `on_layer(layers done, layers)` after each encoder layer (seconds each on a
    /// CPU); None when it returns false (a cancelled request stops between layers, not minutes later).
    pub fn encode_with_progress(&self, pixels: &[f32], grids: &[[usize; 3]], on_layer: &mut dyn FnMut(usize, usize) -> bool) -> Result<Option<Vec<f32>>> {
        let (d, s, pd) = (self.cfg.hidden, self.cfg.hidden_stride, self.patch_dim());
        let n = check_grids(grids, s)?;
        if pixels.len() != n * pd {
            return Err(bad_request(format!(
                "pixel_values has {} floats but the grids {grids:?} need N·{pd} = {} (N = Σ t·h·w = {n} patches of {pd})",
                pixels.len(),
                n * pd
            )));
        }
        if let Some(i) = pixels.iter().position(|v| !v.is_finite()) {
            return Err(bad_request(format!("pixel_values[{}][{}] is not a finite number", i / pd, i % pd)));
        }
        let mut x = vec![0f32; n * d];
        profile::time(Stage::Patchify, gemm_flops(n, pd, d), || {
            if self.bf16_pixels {
                let rounded: Vec<f32> = pixels.iter().map(|&v| bf16::from_f32(v).to_f32()).collect();
                matmul_bf16(&rounded, n, pd, self.patch.0.data(), d, Some(&self.patch.1), &mut x);
            } else {
                matmul_bf16(pixels, n, pd, self.patch.0.data(), d, Some(&self.patch.1), &mut x);
            }
            self.add_position_embedding(&mut x, grids);
        });

        let hd = d / self.cfg.heads;
        let (mut cos, mut sin) = rope2d_tables(&positions(grids, s), hd);
        let frames = frame_segments(grids);
        // Window attention (§4.4): tokens and their angles move in whole merge cells; undone at the end.
        let window = self.cfg.fullatt_blocks.as_ref().map(|full| {
            let ws = self.cfg.window_size / s / self.cfg.patch;
            let (perm, cu) = window_index(grids, s, ws);
            (full, perm, segments_from_cu(&cu))
        });
        if let Some((_, perm, _)) = &window {
            x = permute_cells(&x, d, s * s, perm);
            cos = permute_cells(&cos, hd / 2, s * s, perm);
            sin = permute_cells(&sin, hd / 2, s * s, perm);
        }
        for (k, layer) in self.layers.iter().enumerate() {
            let segs = match &window {
                Some((full, _, wsegs)) if !full.contains(&k) => wsegs,
                _ => &frames,
            };
            self.layer_forward(layer, &mut x, n, segs, &cos, &sin);
            if !on_layer(k + 1, self.layers.len()) {
                return Ok(None);
            }
        }
        if let Some((_, perm, _)) = &window {
            x = unpermute_cells(&x, d, s * s, perm);
        }
        Ok(Some(x))
    }

    /// x += PE: per grid the table resized to (h, w) (§4.2), token (y, x) of every frame gets PE[y·w + x].
    fn add_position_embedding(&self, x: &mut [f32], grids: &[[usize; 3]]) {
        let (d, s) = (self.cfg.hidden, self.cfg.hidden_stride);
        let mut row = 0;
        for &[t, h, w] in grids {
            let pe = bicubic_resize(&self.pos_table, self.side, d, h, w);
            for (y, xx) in positions(&[[t, h, w]], s) {
                let src = &pe[(y * w + xx) * d..(y * w + xx + 1) * d];
                x[row * d..(row + 1) * d].iter_mut().zip(src).for_each(|(a, b)| *a += b);
                row += 1;
            }
        }
    }

    /// One pre-LN encoder layer (§4.6) on x [n, D] in place.
    fn layer_forward(&self, l: &Layer, x: &mut [f32], n: usize, segs: &[(usize, usize)], cos: &[f32], sin: &[f32]) {
        let (d, heads, inter, eps) = (self.cfg.hidden, self.cfg.heads, self.cfg.intermediate, self.cfg.ln_eps);
        let hd = d / heads;
        let lin = |inp: &[f32], k: usize, (w, b): &(WeightRef, Vec<f32>), out: usize| {
            profile::time(Stage::VitGemm, gemm_flops(n, k, out), || {
                let mut y = vec![0f32; n * out];
                matmul_bf16(inp, n, k, w.data(), out, Some(b), &mut y);
                y
            })
        };
        let elementwise = |f: &mut dyn FnMut()| profile::time(Stage::VitElementwise, 0, f);
        let mut a = vec![0f32; x.len()];
        elementwise(&mut || residual_then_norm(x, None, &mut a, d, &l.ln1.0, &l.ln1.1, eps));
        let (mut q, mut k, v) = (lin(&a, d, &l.q, d), lin(&a, d, &l.k, d), lin(&a, d, &l.v, d));
        elementwise(&mut || {
            apply_rope(&mut q, heads, hd, cos, sin);
            apply_rope(&mut k, heads, hd, cos, sin);
        });
        // Scores and P·V: 2 · len² · hd FLOPs each per head and segment.
        let att_flops = segs.iter().map(|&(_, len)| 4 * (len * len * d) as u64).sum();
        profile::time(Stage::VitAttention, att_flops, || segment_attention(&q, &k, &v, n, heads, hd, segs, &mut a));
        let o = lin(&a, d, &l.o, d);
        elementwise(&mut || residual_then_norm(x, Some(&o), &mut a, d, &l.ln2.0, &l.ln2.1, eps));
        // fc1 with its GELU fused into the GEMM (each finished block while in L2; timed as ViT GEMM),
        // else the product and a separate pass.
        let mut h = vec![0f32; n * inter];
        let fused = gemm_bf16_then_runs(n, d, inter)
            && profile::time(Stage::VitGemm, gemm_flops(n, d, inter), || gemm_bf16_then(&a, n, d, l.fc1.0.data(), inter, Some(&l.fc1.1), &mut h, gelu_tanh_serial));
        if !fused {
            h = lin(&a, d, &l.fc1, inter);
            elementwise(&mut || gelu_tanh(&mut h));
        }
        let y = lin(&h, inter, &l.fc2, d);
        elementwise(&mut || add_rows(x, &y, d));
    }
}
