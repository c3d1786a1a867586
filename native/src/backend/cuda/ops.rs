//! Typed launchers of the kernels in native/kernels/: each sizes the grid as its kernel file's header
//! comment says and passes the arguments in the kernel's order. Pointers are device addresses of bf16
//! (u16 bits) buffers unless named otherwise; the caller owns the shapes.
//!
//! NOT RUN ON A GPU YET (see docs/cuda.md): tests/cuda_parity.rs compares each with its CPU twin.
// Launchers take one argument per kernel parameter: a struct per kernel would only rename them.
#![allow(clippy::too_many_arguments)]
use super::device::{DPtr, Gpu};
use crate::error::Result;
use crate::cuda_args as args;

fn blocks(n: usize, per: usize) -> u32 {
    n.div_ceil(per).max(1) as u32
}

/// y = rmsnorm(x)·w per row; x, y [rows, dim], w [dim].
pub fn rmsnorm(g: &Gpu, x: DPtr, w: DPtr, y: DPtr, rows: usize, dim: usize, eps: f32) -> Result<()> {
    let d = dim as i32;
    g.launch("rmsnorm_bf16", (rows as u32, 1, 1), 256, 0, &mut args![x, w, y, d, eps])
}

/// h = h + delta (bf16), then y = rmsnorm(h)·w.
pub fn rmsnorm_residual(g: &Gpu, h: DPtr, delta: DPtr, w: DPtr, y: DPtr, rows: usize, dim: usize, eps: f32) -> Result<()> {
    let d = dim as i32;
    g.launch("rmsnorm_residual_bf16", (rows as u32, 1, 1), 256, 0, &mut args![h, delta, w, y, d, eps])
}

/// y = LayerNorm(x)·γ + β per row (x may equal y).
pub fn layernorm(g: &Gpu, x: DPtr, gamma: DPtr, beta: DPtr, y: DPtr, rows: usize, dim: usize, eps: f32) -> Result<()> {
    let d = dim as i32;
    g.launch("layernorm_bf16", (rows as u32, 1, 1), 1024, 0, &mut args![x, gamma, beta, y, d, eps])
}

/// Shapes of the Qwen3 attention prologue and KV cache.
#[derive(Clone, Copy, Debug)]
pub struct AttnDims {
    pub heads: usize,
    pub kv_heads: usize,
    pub max_ctx: usize,
    /// Per-head width (128 in the released models, 16 in the test fixture).
    pub head_dim: usize,
}

/// q/k RMSNorm + RoPE + cache write for L rows of the fused qkv [L, (nH+2nKV)·128]; `pos0` a device int.
pub fn qk_norm_rope(g: &Gpu, qkv: DPtr, q_norm: DPtr, k_norm: DPtr, inv_freq: DPtr, pos0: DPtr, q_out: DPtr, k_cache: DPtr, v_cache: DPtr, len: usize, a: AttnDims, eps: f32) -> Result<()> {
    let (l, nh, nkv, mc) = (len as i32, a.heads as i32, a.kv_heads as i32, a.max_ctx as i32);
    let grid = (len as u32, blocks(a.heads + 2 * a.kv_heads, 4), 1);
    g.launch("qk_norm_rope_bf16", grid, 128, 0, &mut args![qkv, q_norm, k_norm, inv_freq, pos0, q_out, k_cache, v_cache, l, nh, nkv, mc, eps])
}

/// out [L, I] = swiglu of the fused gate|up gu [L, 2I].
pub fn swiglu(g: &Gpu, gu: DPtr, out: DPtr, len: usize, inter: usize) -> Result<()> {
    let (l, i) = (len as i32, inter as i32);
    g.launch("swiglu_bf16", (blocks(len * inter / 8, 256), 1, 1), 256, 0, &mut args![gu, out, l, i])
}

pub fn gelu_tanh(g: &Gpu, x: DPtr, n: usize) -> Result<()> {
    let n64 = n as u64;
    g.launch("gelu_tanh_bf16", (blocks(n / 8, 256), 1, 1), 256, 0, &mut args![x, n64])
}

/// x += d elementwise (n values).
pub fn add(g: &Gpu, x: DPtr, d: DPtr, n: usize) -> Result<()> {
    let n64 = n as u64;
    g.launch("add_bf16", (blocks(n / 8, 256), 1, 1), 256, 0, &mut args![x, d, n64])
}

pub fn add_bias(g: &Gpu, x: DPtr, bias: DPtr, rows: usize, cols: usize) -> Result<()> {
    let (r, c) = (rows as i32, cols as i32);
    g.launch("add_bias_bf16", (blocks(rows * cols / 8, 256), 1, 1), 256, 0, &mut args![x, bias, r, c])
}

/// out[r] = table[ids[r]] for n device ids.
pub fn embedding_gather(g: &Gpu, ids: DPtr, table: DPtr, out: DPtr, n: usize, hidden: usize, vocab: usize) -> Result<()> {
    let (nn, h, v) = (n as i32, hidden as i32, vocab as i32);
    g.launch("embedding_gather_bf16", (n as u32, 1, 1), 128, 0, &mut args![ids, table, out, nn, h, v])
}

/// out[r] = row src[r].y of embed (src.x 0), vte (1) or visual (2); src: device int2 [n].
pub fn merge_rows(g: &Gpu, src: DPtr, embed: DPtr, vte: DPtr, visual: DPtr, out: DPtr, n: usize, hidden: usize) -> Result<()> {
    let (nn, h) = (n as i32, hidden as i32);
    g.launch("merge_rows_bf16", (n as u32, 1, 1), 128, 0, &mut args![src, embed, vte, visual, out, nn, h])
}

pub fn advance_position(g: &Gpu, pos: DPtr, n: i32) -> Result<()> {
    g.launch("advance_position_i32", (1, 1, 1), 32, 0, &mut args![pos, n])
}

/// 2-D rotary on q and k of the ViT's fused qkv [n, 3·heads·hd]; pos: device int4 [n] (y, x, h, w).
pub fn vision_rope2d(g: &Gpu, qkv: DPtr, pos: DPtr, n: usize, heads: usize, hd: usize) -> Result<()> {
    let (nn, h, d, stride) = (n as i32, heads as i32, hd as i32, (3 * heads * hd) as i32);
    g.launch("vision_rope2d_bf16", (n as u32, 1, 1), 256, 0, &mut args![qkv, pos, nn, h, d, stride])
}

/// x [n, dim] += bicubic-resized position table [side², dim]; pos: device int4 [n].
pub fn pos_embed_bicubic(g: &Gpu, x: DPtr, table: DPtr, pos: DPtr, n: usize, dim: usize, side: usize) -> Result<()> {
    let (nn, d, s) = (n as i32, dim as i32, side as i32);
    g.launch("pos_embed_bicubic_bf16", (n as u32, 1, 1), 128, 0, &mut args![x, table, pos, nn, d, s])
}

/// y [rows, y_stride] = softmax of x [rows, cols] per row, zero past cols.
pub fn softmax_rows(g: &Gpu, x: DPtr, y: DPtr, rows: usize, cols: usize, y_stride: usize) -> Result<()> {
    let (c, s) = (cols as i32, y_stride as i32);
    g.launch("softmax_rows_bf16", (rows as u32, 1, 1), 1024, 0, &mut args![x, y, c, s])
}

/// y [n] = W [n, k] · x [k] (+ residual [n]); residual 0 = none (may equal y).
pub fn gemv(g: &Gpu, w: DPtr, x: DPtr, residual: DPtr, y: DPtr, n: usize, k: usize) -> Result<()> {
    let (nn, kk) = (n as i32, k as i32);
    g.launch("gemv_bf16", (blocks(n, 8), 1, 1), 256, (2 * k) as u32, &mut args![w, x, residual, y, nn, kk])
}

/// Scratch of the split decode attention: part_o [nH, splits, 128] f32 and part_ml [nH, splits, 2] f32.
pub fn decode_attention(g: &Gpu, q: DPtr, k_cache: DPtr, v_cache: DPtr, pos: DPtr, part_o: DPtr, part_ml: DPtr, out: DPtr, a: AttnDims, splits: usize) -> Result<()> {
    let (nh, nkv, mc, s, scale) = (a.heads as i32, a.kv_heads as i32, a.max_ctx as i32, splits as i32, 1.0f32 / (128f32).sqrt());
    g.launch("decode_attention_bf16", (a.kv_heads as u32, splits as u32, 1), 128, 0, &mut args![q, k_cache, v_cache, pos, part_o, part_ml, nh, nkv, mc, s, scale])?;
    g.launch("decode_attention_combine_bf16", (a.heads as u32, 1, 1), 128, 0, &mut args![part_o, part_ml, out, s])
}

/// out [L, nH·128] = causal attention of q [L, nH, 128] over the cache (positions *pos0 + i).
pub fn prefill_attention(g: &Gpu, q: DPtr, k_cache: DPtr, v_cache: DPtr, out: DPtr, pos0: DPtr, len: usize, a: AttnDims) -> Result<()> {
    let (l, nh, nkv, mc, scale) = (len as i32, a.heads as i32, a.kv_heads as i32, a.max_ctx as i32, 1.0f32 / (128f32).sqrt());
    g.launch("prefill_attention_bf16", (blocks(len, 32), a.heads as u32, 1), 128, 0, &mut args![q, k_cache, v_cache, out, pos0, l, nh, nkv, mc, scale])
}

/// Query tiles {q_begin, q_count, seg_begin, seg_len} of 32 rows for segments (start, len).
pub fn segment_tiles(segments: &[(usize, usize)]) -> Vec<[i32; 4]> {
    let mut tiles = Vec::new();
    for &(start, len) in segments {
        for q in (start..start + len).step_by(32) {
            tiles.push([q as i32, (start + len - q).min(32) as i32, start as i32, len as i32]);
        }
    }
    tiles
}

/// out [N, heads·72] = per-segment attention of the ViT's fused qkv [N, 3·heads·72]; tiles: device int4.
pub fn segment_attention(g: &Gpu, qkv: DPtr, out: DPtr, tiles: DPtr, n_tiles: usize, heads: usize) -> Result<()> {
    let (h, scale) = (heads as i32, 1.0f32 / (72f32).sqrt());
    g.launch("segment_attention_bf16", (n_tiles as u32, heads as u32, 1), 128, 0, &mut args![qkv, out, tiles, h, scale])
}
