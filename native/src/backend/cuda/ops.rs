//! Typed launchers of the kernels in native/kernels/: each sizes the grid as its kernel file's header
//! comment says and passes the arguments in the kernel's order. Pointers are device addresses of bf16
//! (u16 bits) buffers unless named otherwise; the caller owns the shapes.
//!
//! NOT RUN ON A GPU YET (see docs/cuda.md): tests/cuda_parity.rs compares each with its CPU twin.
// Launchers take one argument per kernel parameter: a struct per kernel would only rename them.
#![allow(clippy::too_many_arguments)]
use super::device::{DPtr, Gpu};
use crate::error::{EngineError, Result};
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

/// LLM head widths the kernels of rope.cu, decode_attention.cu and attention.cu (prefill) are
/// instantiated for: each kernel has one entry `<name>_hd<HD>` per width, in this order.
pub const LLM_HEAD_DIMS: [usize; 4] = [16, 32, 64, 128];
/// ViT head widths segment_attention_bf16 is instantiated for (multiples of 8: see attention.cu).
pub const VIT_HEAD_DIMS: [usize; 5] = [24, 32, 64, 72, 80];

const QK_NORM_ROPE: [&str; 4] = ["qk_norm_rope_bf16_hd16", "qk_norm_rope_bf16_hd32", "qk_norm_rope_bf16_hd64", "qk_norm_rope_bf16_hd128"];
const DECODE_ATTENTION: [&str; 4] = ["decode_attention_bf16_hd16", "decode_attention_bf16_hd32", "decode_attention_bf16_hd64", "decode_attention_bf16_hd128"];
const DECODE_COMBINE: [&str; 4] = ["decode_attention_combine_bf16_hd16", "decode_attention_combine_bf16_hd32", "decode_attention_combine_bf16_hd64", "decode_attention_combine_bf16_hd128"];
const QK_NORM_ROPE_ROWS: [&str; 4] = ["qk_norm_rope_rows_bf16_hd16", "qk_norm_rope_rows_bf16_hd32", "qk_norm_rope_rows_bf16_hd64", "qk_norm_rope_rows_bf16_hd128"];
const DECODE_ATTENTION_ROWS: [&str; 4] = ["decode_attention_rows_bf16_hd16", "decode_attention_rows_bf16_hd32", "decode_attention_rows_bf16_hd64", "decode_attention_rows_bf16_hd128"];
const DECODE_ROWS_COMBINE: [&str; 4] = [
    "decode_attention_rows_combine_bf16_hd16",
    "decode_attention_rows_combine_bf16_hd32",
    "decode_attention_rows_combine_bf16_hd64",
    "decode_attention_rows_combine_bf16_hd128",
];
const PREFILL_ATTENTION: [&str; 4] = ["prefill_attention_bf16_hd16", "prefill_attention_bf16_hd32", "prefill_attention_bf16_hd64", "prefill_attention_bf16_hd128"];
const SEGMENT_ATTENTION: [&str; 5] = ["segment_attention_bf16_hd24", "segment_attention_bf16_hd32", "segment_attention_bf16_hd64", "segment_attention_bf16_hd72", "segment_attention_bf16_hd80"];
const PREFILL_ATTENTION_MMA: [&str; 4] = ["prefill_attention_mma_bf16_hd16", "prefill_attention_mma_bf16_hd32", "prefill_attention_mma_bf16_hd64", "prefill_attention_mma_bf16_hd128"];
const SEGMENT_ATTENTION_MMA: [&str; 5] = [
    "segment_attention_mma_bf16_hd24",
    "segment_attention_mma_bf16_hd32",
    "segment_attention_mma_bf16_hd64",
    "segment_attention_mma_bf16_hd72",
    "segment_attention_mma_bf16_hd80",
];

/// Query rows per block of the FMA (attention.cu) and tensor-core (attention_mma.cu) attention kernels.
pub const FMA_ROWS: usize = 32;
pub const MMA_ROWS: usize = 64;

/// Which flash attention prefill and the ViT use: the tensor-core kernels, unless
/// OVIS_CUDA_FMA_ATTENTION=1 asks for the plain FMA ones (to tell a kernel fault from a model fault).
pub fn use_mma_attention() -> bool {
    static MMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MMA.get_or_init(|| std::env::var("OVIS_CUDA_FMA_ATTENTION").map_or(true, |v| v.is_empty() || v == "0"))
}

/// "a, b, c or d" for error messages.
fn list(dims: &[usize]) -> String {
    let s: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    match s.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => s.join(""),
    }
}

/// Ok when the LLM kernels have an instantiation for head width `hd`; otherwise the device error to
/// show (model loading should call this before allocating anything).
pub fn check_llm_head_dim(hd: usize) -> Result<()> {
    if LLM_HEAD_DIMS.contains(&hd) {
        return Ok(());
    }
    Err(EngineError::Device(format!("the CUDA kernels support LLM head_dim {}; this model has {hd}: use --device cpu", list(&LLM_HEAD_DIMS))))
}

/// Ok when segment_attention has an instantiation for ViT head width `hd` and `hidden` (the ViT's
/// width, heads·hd) is a whole number of such heads; otherwise the device error to show.
pub fn check_vit_head_dim(hd: usize, hidden: usize) -> Result<()> {
    if !VIT_HEAD_DIMS.contains(&hd) {
        return Err(EngineError::Device(format!("the CUDA kernels support ViT head_dim {}; this model has {hd}: use --device cpu", list(&VIT_HEAD_DIMS))));
    }
    if hidden == 0 || !hidden.is_multiple_of(hd) {
        return Err(EngineError::Device(format!("the ViT hidden size {hidden} is not a whole number of heads of {hd}: use --device cpu")));
    }
    Ok(())
}

/// The instantiation of an LLM kernel for `hd` (names in LLM_HEAD_DIMS order).
fn llm_kernel(names: &[&'static str; 4], hd: usize) -> Result<&'static str> {
    check_llm_head_dim(hd)?;
    Ok(names[LLM_HEAD_DIMS.iter().position(|&d| d == hd).expect("checked above")])
}

/// q/k RMSNorm + RoPE + cache write for L rows of the fused qkv [L, (nH+2nKV)·HD], HD = a.head_dim;
/// inv_freq [HD/2] f32 (1/θ^(2i/HD)); `pos0` a device int. Fails for an unsupported head width.
pub fn qk_norm_rope(g: &Gpu, qkv: DPtr, q_norm: DPtr, k_norm: DPtr, inv_freq: DPtr, pos0: DPtr, q_out: DPtr, k_cache: DPtr, v_cache: DPtr, len: usize, a: AttnDims, eps: f32) -> Result<()> {
    let kernel = llm_kernel(&QK_NORM_ROPE, a.head_dim)?;
    let (l, nh, nkv, mc) = (len as i32, a.heads as i32, a.kv_heads as i32, a.max_ctx as i32);
    let grid = (len as u32, blocks(a.heads + 2 * a.kv_heads, 4), 1);
    g.launch(kernel, grid, 128, 0, &mut args![qkv, q_norm, k_norm, inv_freq, pos0, q_out, k_cache, v_cache, l, nh, nkv, mc, eps])
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

/// y [n] f32 = W [n, k] · x [k], not rounded (the lm_head: logits for the sampler).
pub fn gemv_logits(g: &Gpu, w: DPtr, x: DPtr, y: DPtr, n: usize, k: usize) -> Result<()> {
    let (nn, kk) = (n as i32, k as i32);
    g.launch("gemv_logits_f32", (blocks(n, 8), 1, 1), 256, (2 * k) as u32, &mut args![w, x, y, nn, kk])
}

/// The decode step's input norm fused into its projection: s = bf16(h + delta) (delta 0: s = h), y [n] =
/// W [n, k] · rmsnorm(s)·w; block 0 writes s to h_out (0: not written; never equal to h).
pub fn gemv_rmsnorm(g: &Gpu, wm: DPtr, h: DPtr, delta: DPtr, norm: DPtr, h_out: DPtr, y: DPtr, n: usize, k: usize, eps: f32) -> Result<()> {
    debug_assert!(h_out == 0 || h_out != h, "gemv_rmsnorm: h_out must not alias h");
    let (nn, kk) = (n as i32, k as i32);
    g.launch("gemv_rmsnorm_bf16", (blocks(n, 8), 1, 1), 256, (2 * k) as u32, &mut args![wm, h, delta, norm, h_out, y, nn, kk, eps])
}

/// The MLP's down projection with SwiGLU fused: y [n] = W [n, k] · swiglu(gu [2k]).
pub fn gemv_swiglu(g: &Gpu, wm: DPtr, gu: DPtr, y: DPtr, n: usize, k: usize) -> Result<()> {
    let (nn, kk) = (n as i32, k as i32);
    g.launch("gemv_swiglu_bf16", (blocks(n, 8), 1, 1), 256, (2 * k) as u32, &mut args![wm, gu, y, nn, kk])
}

/// Rows (running requests) one batched decode step serves at most: GEMV_MAX_ROWS of gemv.cu.
pub const MAX_ROWS: usize = 16;

fn check_rows(rows: usize) -> Result<()> {
    if rows == 0 || rows > MAX_ROWS {
        return Err(EngineError::Internal(format!("a batched decode step takes 1 to {MAX_ROWS} rows, not {rows}")));
    }
    Ok(())
}

/// y [rows, n] = x [rows, k] · Wᵀ (W [n, k]), each weight read once for all rows; row r equals
/// `gemv` on x[r] bit for bit.
pub fn gemv_rows(g: &Gpu, w: DPtr, x: DPtr, y: DPtr, n: usize, k: usize, rows: usize) -> Result<()> {
    check_rows(rows)?;
    let (nn, kk, r) = (n as i32, k as i32, rows as i32);
    g.launch("gemv_rows_bf16", (blocks(n, 8), 1, 1), 256, 0, &mut args![w, x, y, nn, kk, r])
}

/// `gemv_rows` with f32 output, not rounded (the lm_head of a batch): y [rows, n] f32.
pub fn gemv_rows_logits(g: &Gpu, w: DPtr, x: DPtr, y: DPtr, n: usize, k: usize, rows: usize) -> Result<()> {
    check_rows(rows)?;
    let (nn, kk, r) = (n as i32, k as i32, rows as i32);
    g.launch("gemv_rows_logits_f32", (blocks(n, 8), 1, 1), 256, 0, &mut args![w, x, y, nn, kk, r])
}

/// Device tables of a batched decode step's rows: row r's position and cache capacity (device int
/// arrays [rows]) and this layer's K and V cache addresses (device u64 arrays [rows]).
#[derive(Clone, Copy, Debug)]
pub struct RowTables {
    pub pos: DPtr,
    pub max_ctx: DPtr,
    pub k: DPtr,
    pub v: DPtr,
}

/// `qk_norm_rope` for one token of each of `rows` requests: qkv [rows, (nH+2nKV)·HD], q_out [rows,
/// nH, HD]; row r at position pos[r], into its own caches (`t`). a.max_ctx is not used.
pub fn qk_norm_rope_rows(g: &Gpu, qkv: DPtr, q_norm: DPtr, k_norm: DPtr, inv_freq: DPtr, q_out: DPtr, t: RowTables, rows: usize, a: AttnDims, eps: f32) -> Result<()> {
    check_rows(rows)?;
    let kernel = llm_kernel(&QK_NORM_ROPE_ROWS, a.head_dim)?;
    let (nh, nkv) = (a.heads as i32, a.kv_heads as i32);
    let grid = (rows as u32, blocks(a.heads + 2 * a.kv_heads, 4), 1);
    g.launch(kernel, grid, 128, 0, &mut args![qkv, q_norm, k_norm, inv_freq, t.pos, q_out, t.k, t.v, t.max_ctx, nh, nkv, eps])
}

/// `decode_attention` for `rows` requests, each over its own cache (`t`): q, out [rows, nH, HD];
/// scratch part_o [rows, nH, splits, HD] f32, part_ml [rows, nH, splits, 2] f32.
pub fn decode_attention_rows(g: &Gpu, q: DPtr, t: RowTables, part_o: DPtr, part_ml: DPtr, out: DPtr, rows: usize, a: AttnDims, splits: usize) -> Result<()> {
    check_rows(rows)?;
    let (kernel, combine) = (llm_kernel(&DECODE_ATTENTION_ROWS, a.head_dim)?, llm_kernel(&DECODE_ROWS_COMBINE, a.head_dim)?);
    check_decode_group(a)?;
    let (nh, nkv, s, scale) = (a.heads as i32, a.kv_heads as i32, splits as i32, 1.0f32 / (a.head_dim as f32).sqrt());
    g.launch(kernel, (a.kv_heads as u32, splits as u32, rows as u32), 128, 0, &mut args![q, t.k, t.v, t.pos, t.max_ctx, part_o, part_ml, nh, nkv, s, scale])?;
    g.launch(combine, (a.heads as u32, rows as u32, 1), a.head_dim as u32, 0, &mut args![part_o, part_ml, out, nh, s])
}

fn check_decode_group(a: AttnDims) -> Result<()> {
    if a.kv_heads == 0 || !a.heads.is_multiple_of(a.kv_heads) || a.heads / a.kv_heads > DECODE_MAX_GROUP {
        return Err(EngineError::Device(format!(
            "the CUDA decode attention serves up to {DECODE_MAX_GROUP} query heads per kv head; this model has {} heads over {} kv heads: use --device cpu",
            a.heads, a.kv_heads
        )));
    }
    Ok(())
}

/// Largest GQA group (query heads per kv head) one decode_attention block serves (DA_MAXG).
pub const DECODE_MAX_GROUP: usize = 8;

/// out [nH, HD] = attention of this token's q [nH, HD] over the cache positions 0..=*pos, HD =
/// a.head_dim. Scratch of the split decode attention: part_o [nH, splits, HD] f32 and part_ml
/// [nH, splits, 2] f32. Fails for an unsupported head width or a GQA group over 8.
pub fn decode_attention(g: &Gpu, q: DPtr, k_cache: DPtr, v_cache: DPtr, pos: DPtr, part_o: DPtr, part_ml: DPtr, out: DPtr, a: AttnDims, splits: usize) -> Result<()> {
    let (kernel, combine) = (llm_kernel(&DECODE_ATTENTION, a.head_dim)?, llm_kernel(&DECODE_COMBINE, a.head_dim)?);
    check_decode_group(a)?;
    let (nh, nkv, mc, s, scale) = (a.heads as i32, a.kv_heads as i32, a.max_ctx as i32, splits as i32, 1.0f32 / (a.head_dim as f32).sqrt());
    g.launch(kernel, (a.kv_heads as u32, splits as u32, 1), 128, 0, &mut args![q, k_cache, v_cache, pos, part_o, part_ml, nh, nkv, mc, s, scale])?;
    g.launch(combine, (a.heads as u32, 1, 1), a.head_dim as u32, 0, &mut args![part_o, part_ml, out, s])
}

/// out [L, nH·HD] = causal attention of q [L, nH, HD] over the cache (positions *pos0 + i), HD =
/// a.head_dim, on the kernels `use_mma_attention` picks. Fails for an unsupported head width.
pub fn prefill_attention(g: &Gpu, q: DPtr, k_cache: DPtr, v_cache: DPtr, out: DPtr, pos0: DPtr, len: usize, a: AttnDims) -> Result<()> {
    prefill_attention_with(g, q, k_cache, v_cache, out, pos0, len, a, use_mma_attention())
}

/// `prefill_attention` on the tensor-core (`mma`) or FMA kernels.
pub fn prefill_attention_with(g: &Gpu, q: DPtr, k_cache: DPtr, v_cache: DPtr, out: DPtr, pos0: DPtr, len: usize, a: AttnDims, mma: bool) -> Result<()> {
    let (kernel, rows) = if mma { (llm_kernel(&PREFILL_ATTENTION_MMA, a.head_dim)?, MMA_ROWS) } else { (llm_kernel(&PREFILL_ATTENTION, a.head_dim)?, FMA_ROWS) };
    let (l, nh, nkv, mc, scale) = (len as i32, a.heads as i32, a.kv_heads as i32, a.max_ctx as i32, 1.0f32 / (a.head_dim as f32).sqrt());
    g.launch(kernel, (blocks(len, rows), a.heads as u32, 1), 128, 0, &mut args![q, k_cache, v_cache, out, pos0, l, nh, nkv, mc, scale])
}

/// Query tiles {q_begin, q_count, seg_begin, seg_len} of `rows` rows for segments (start, len).
pub fn segment_tiles_of(segments: &[(usize, usize)], rows: usize) -> Vec<[i32; 4]> {
    let mut tiles = Vec::new();
    for &(start, len) in segments {
        for q in (start..start + len).step_by(rows) {
            tiles.push([q as i32, (start + len - q).min(rows) as i32, start as i32, len as i32]);
        }
    }
    tiles
}

/// The query tiles `segment_attention` expects (their size follows `use_mma_attention`).
pub fn segment_tiles(segments: &[(usize, usize)]) -> Vec<[i32; 4]> {
    segment_tiles_of(segments, if use_mma_attention() { MMA_ROWS } else { FMA_ROWS })
}

/// out [N, heads·hd] = per-segment attention of the ViT's fused qkv [N, 3·heads·hd] (both 16-byte
/// aligned); tiles: device int4 from `segment_tiles`. Fails for an unsupported head width.
pub fn segment_attention(g: &Gpu, qkv: DPtr, out: DPtr, tiles: DPtr, n_tiles: usize, heads: usize, head_dim: usize) -> Result<()> {
    segment_attention_with(g, qkv, out, tiles, n_tiles, heads, head_dim, use_mma_attention())
}

/// `segment_attention` on the tensor-core (`mma`, tiles of MMA_ROWS) or FMA (FMA_ROWS) kernels.
pub fn segment_attention_with(g: &Gpu, qkv: DPtr, out: DPtr, tiles: DPtr, n_tiles: usize, heads: usize, head_dim: usize, mma: bool) -> Result<()> {
    check_vit_head_dim(head_dim, heads * head_dim)?;
    let i = VIT_HEAD_DIMS.iter().position(|&d| d == head_dim).expect("checked above");
    let kernel = if mma { SEGMENT_ATTENTION_MMA[i] } else { SEGMENT_ATTENTION[i] };
    let (h, scale) = (heads as i32, 1.0f32 / (head_dim as f32).sqrt());
    g.launch(kernel, (n_tiles as u32, heads as u32, 1), 128, 0, &mut args![qkv, out, tiles, h, scale])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cuda::kernels::FILES;

    /// Every name a launcher may pick is a kernel of FILES, and names the width it is picked for.
    #[test]
    fn picked_kernels_exist_and_match_their_head_width() {
        let all: Vec<&str> = FILES.iter().flat_map(|f| f.kernels.iter().copied()).collect();
        for names in [&QK_NORM_ROPE, &DECODE_ATTENTION, &DECODE_COMBINE, &PREFILL_ATTENTION, &PREFILL_ATTENTION_MMA, &QK_NORM_ROPE_ROWS, &DECODE_ATTENTION_ROWS, &DECODE_ROWS_COMBINE] {
            for hd in LLM_HEAD_DIMS {
                let k = llm_kernel(names, hd).unwrap();
                assert!(k.ends_with(&format!("_hd{hd}")) && all.contains(&k), "{k} for head_dim {hd}");
            }
        }
        for (k, hd) in SEGMENT_ATTENTION.iter().chain(&SEGMENT_ATTENTION_MMA).zip(VIT_HEAD_DIMS.iter().chain(&VIT_HEAD_DIMS)) {
            assert!(k.ends_with(&format!("_hd{hd}")) && all.contains(k), "{k} for head_dim {hd}");
        }
        // Nothing instantiated is left unreachable from a launcher.
        let picked: Vec<&str> = [
            &QK_NORM_ROPE[..],
            &DECODE_ATTENTION,
            &DECODE_COMBINE,
            &PREFILL_ATTENTION,
            &SEGMENT_ATTENTION,
            &PREFILL_ATTENTION_MMA,
            &SEGMENT_ATTENTION_MMA,
            &QK_NORM_ROPE_ROWS,
            &DECODE_ATTENTION_ROWS,
            &DECODE_ROWS_COMBINE,
        ]
        .concat();
        for k in all.iter().filter(|k| k.contains("_hd")) {
            assert!(picked.contains(k), "kernel {k} has no launcher");
        }
    }

    #[test]
    fn unsupported_head_widths_are_device_errors_that_say_what_to_do() {
        for hd in LLM_HEAD_DIMS {
            check_llm_head_dim(hd).unwrap();
        }
        let e = check_llm_head_dim(96).unwrap_err();
        assert!(matches!(e, EngineError::Device(_)));
        assert!(e.to_string().contains("support LLM head_dim 16, 32, 64 or 128; this model has 96: use --device cpu"), "{e}");
        check_vit_head_dim(72, 1152).unwrap();
        check_vit_head_dim(24, 48).unwrap();
        let e = check_vit_head_dim(36, 1152).unwrap_err();
        assert!(e.to_string().contains("support ViT head_dim 24, 32, 64, 72 or 80; this model has 36: use --device cpu"), "{e}");
        assert!(matches!(check_vit_head_dim(72, 1000), Err(EngineError::Device(_))));
        assert!(matches!(check_vit_head_dim(72, 0), Err(EngineError::Device(_))));
    }
}
