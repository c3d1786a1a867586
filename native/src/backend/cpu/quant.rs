//! Weight-only quantization at load (`--weights int8|int4`): the decoder's linear layers are rounded
//! from their bf16 values to signed integers with one f16 scale per group of GROUP consecutive
//! values along k (symmetric: w ≈ scale · q, no zero point). No file format: it happens as each
//! tensor is read, and the bf16 copy is released right after.
//!
//! Groups: int8 uses 64 values per scale (one 64-byte zmm of weights per scale; the rounding error
//! of 8 bits is already ~0.2 % of the group's largest value, so smaller groups buy nothing, and the
//! scales cost 2/64 = 3 % on top of 1 byte per weight). int4 uses 32 (16 levels leave ~4 % error
//! per group; halving the group from 64 to 32 measurably improves the logits cosine, for 0.0625 byte
//! per weight of scales on top of 0.5: llama.cpp Q4_0's 0.5625).
//!
//! Storage (W [n, k], k padded with zeros to KP = k rounded up to 64, n to a multiple of TILE = 4):
//! tiles of 4 rows; within a tile, block b (64 values) of rows 0..3, then block b + 1, …, so the
//! decode kernel reading 4 rows at once streams one contiguous stretch of memory. Scales in the same
//! order ([tile, block, row, group in block]).
//! * int8: 64 bytes per row block, q + 128 (unsigned, so VNNI's u8 × s8 product takes the weight as
//!   the unsigned side).
//! * int4: 32 bytes per row block; byte i holds position i (low nibble) and position 32 + i (high
//!   nibble), each as q + 8 ∈ 0..15. Positions are a fixed permutation of the block's 64 values
//!   (`int4_value`): VNNI lane l (positions 4l..4l+3) holds values of group l % 2, so a pair of
//!   scales broadcast to all lanes scales both groups. The activations use the same order.
//!
//! Decode (≤ 16 rows of x, memory-bound): the activations are quantized too, per row and per group
//! (the same groups as the weights) to int8 with their own f32 scale (`QuantX`), and each group's
//! dot product is exact in 32-bit integers: y = Σ_g sw_g · sx_g · Σ_{e∈g} qw_e · qx_e. The kernels
//! (gemv_q_avx512.rs: AVX-512 VNNI; gemv_q_avx2.rs: AVX2; `gemv_scalar` here) compute the same
//! integer sums and differ only in the order of the f32 additions.
//! Prefill and other products of more rows (compute-bound): `dequantize_rows` into bf16, then the
//! usual bf16 GEMM (linear.rs).
use half::{bf16, f16};
use rayon::prelude::*;

/// Every quantized row is padded to a multiple of this many values (one zmm of int8).
pub const BLOCK: usize = 64;

/// How the decoder's linear layers are stored in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightMode {
    /// As in the files: bf16 (the default; exact to the fixtures).
    Bf16,
    Int8,
    Int4,
}

impl WeightMode {
    /// "bf16" | "int8" | "int4"; an error message naming the value otherwise.
    pub fn parse(s: &str) -> Result<WeightMode, String> {
        match s {
            "bf16" => Ok(WeightMode::Bf16),
            "int8" => Ok(WeightMode::Int8),
            "int4" => Ok(WeightMode::Int4),
            other => Err(format!("weights {other:?} is not a weight mode: use bf16, int8 or int4")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            WeightMode::Bf16 => "bf16",
            WeightMode::Int8 => "int8",
            WeightMode::Int4 => "int4",
        }
    }
    /// Values per scale (bf16: none).
    pub fn group(self) -> usize {
        match self {
            WeightMode::Bf16 => 0,
            WeightMode::Int8 => 64,
            WeightMode::Int4 => 32,
        }
    }
}

/// The weight mode a `load_model` asks for (absent: bf16); a bad request for an unknown one, or for
/// int8/int4 on the GPU (its kernels read bf16 only so far).
pub fn weight_mode(weights: Option<&str>, device: &crate::backend::Device) -> Result<WeightMode, crate::error::EngineError> {
    let mode = WeightMode::parse(weights.unwrap_or("bf16")).map_err(crate::error::EngineError::BadRequest)?;
    if mode != WeightMode::Bf16 && matches!(device, crate::backend::Device::Cuda(_)) {
        return Err(crate::error::EngineError::BadRequest(format!("weights {} are not supported on CUDA yet: use bf16 weights on the GPU, or --device cpu for {} weights", mode.name(), mode.name())));
    }
    Ok(mode)
}

/// Rows of W stored together: the decode kernels read TILE rows per pass, and the tile's bytes (and
/// scales) are one contiguous, sequentially read stretch of memory.
pub const TILE: usize = 4;

/// A quantized matrix W [n, k] (see the module comment for the layout).
pub struct QuantMatrix {
    pub mode: WeightMode,
    pub n: usize,
    pub k: usize,
    /// k rounded up to BLOCK.
    pub kp: usize,
    /// [n rounded up to TILE] / TILE tiles × kp / BLOCK blocks × TILE rows × block_bytes (the padding
    /// rows are zeros with scale 0).
    pub data: Vec<u8>,
    /// [tiles, kp / BLOCK, TILE, BLOCK / group]: the same order as the bytes. f16 (as llama.cpp's
    /// Q8_0/Q4_0): 2 bytes per group instead of 4 cut int4's bytes per weight from 0.625 to 0.5625
    /// (−10 % of decode's memory traffic); the integers are rounded against the f16 scale itself, so
    /// its 11-bit mantissa adds no error beyond a relative 2⁻¹² on the group's scale (well below
    /// int8's own rounding error of ~0.4 %).
    pub scales: Vec<f16>,
}

impl QuantMatrix {
    /// Quantizes W [n, k] (bf16, row-major) to `mode` (Int8 or Int4), tiles in parallel.
    pub fn quantize(w: &[bf16], n: usize, k: usize, mode: WeightMode) -> QuantMatrix {
        assert!(mode != WeightMode::Bf16, "quantize: bf16 is not a quantized mode");
        assert_eq!(w.len(), n * k, "quantize: w must be [n, k]");
        let kp = k.div_ceil(BLOCK) * BLOCK;
        let g = mode.group();
        let tiles = n.div_ceil(TILE);
        let (tb, ts) = (TILE * row_bytes(mode, kp), TILE * kp / g);
        let mut m = QuantMatrix { mode, n, k, kp, data: vec![0u8; tiles * tb], scales: vec![f16::ZERO; tiles * ts] };
        let (bb, spb) = (block_bytes(mode), BLOCK / g);
        m.data.par_chunks_mut(tb).zip(m.scales.par_chunks_mut(ts)).enumerate().for_each(|(t, (bytes, scales))| {
            let mut row = vec![0f32; kp];
            let mut q = vec![0i8; kp];
            let mut packed = vec![0u8; row_bytes(mode, kp)];
            let mut rs = vec![f16::ZERO; kp / g];
            for r in 0..TILE.min(n - t * TILE) {
                let j = t * TILE + r;
                for (d, s) in row.iter_mut().zip(&w[j * k..(j + 1) * k]) {
                    *d = s.to_f32();
                }
                for (gi, (vals, qs)) in row.chunks(g).zip(q.chunks_mut(g)).enumerate() {
                    rs[gi] = if mode == WeightMode::Int8 { quantize_group(vals, 127.0, qs) } else { quantize_group_int4(vals, qs) };
                }
                pack_row(mode, &q, &mut packed);
                for b in 0..kp / BLOCK {
                    bytes[(b * TILE + r) * bb..(b * TILE + r + 1) * bb].copy_from_slice(&packed[b * bb..(b + 1) * bb]);
                    scales[(b * TILE + r) * spb..(b * TILE + r + 1) * spb].copy_from_slice(&rs[b * spb..(b + 1) * spb]);
                }
            }
        });
        m
    }

    /// Bytes of memory held.
    pub fn bytes(&self) -> usize {
        self.data.len() + self.scales.len() * 2
    }

    /// Row j's scale of group gi, as f32.
    #[inline(always)]
    pub fn scale(&self, j: usize, gi: usize) -> f32 {
        self.scales[self.scale_at(j, gi)].to_f32()
    }

    /// Bytes one row's block takes: 64 (int8) or 32 (int4).
    pub fn block_bytes(&self) -> usize {
        block_bytes(self.mode)
    }

    /// Offset in `data` of row j's block b (block_bytes() bytes).
    #[inline(always)]
    pub fn block_at(&self, j: usize, b: usize) -> usize {
        ((j / TILE * (self.kp / BLOCK) + b) * TILE + j % TILE) * block_bytes(self.mode)
    }

    /// Index in `scales` of row j's group gi (gi < kp / group).
    #[inline(always)]
    pub fn scale_at(&self, j: usize, gi: usize) -> usize {
        let spb = BLOCK / self.mode.group();
        ((j / TILE * (self.kp / BLOCK) + gi / spb) * TILE + j % TILE) * spb + gi % spb
    }

    /// The integer value of W[j, e] (e < kp) before scaling.
    pub fn q(&self, j: usize, e: usize) -> i32 {
        let (b, i) = (e / BLOCK, e % BLOCK);
        let blk = &self.data[self.block_at(j, b)..];
        match self.mode {
            WeightMode::Int8 => blk[i] as i32 - 128,
            _ => {
                let p = int4_position(i);
                let byte = blk[p % 32];
                (if p < 32 { byte & 0x0F } else { byte >> 4 }) as i32 - 8
            }
        }
    }

    /// Rows j0..j1 back to bf16 (scale · q rounded to bf16), [j1 - j0, k], for the GEMM path. Per
    /// group a straight loop over the stored bytes (no per-value index arithmetic), so the compiler
    /// vectorises it: this runs once per prefill product over the whole matrix.
    pub fn dequantize_rows(&self, j0: usize, j1: usize, out: &mut [bf16]) {
        let (k, kp) = (self.k, self.kp);
        assert_eq!(out.len(), (j1 - j0) * k, "dequantize_rows: out must be [rows, k]");
        let bb = block_bytes(self.mode);
        out.par_chunks_mut(k).enumerate().for_each_init(
            || vec![0f32; kp],
            |row, (r, o)| {
                let j = j0 + r;
                for (b, d) in row.chunks_mut(BLOCK).enumerate() {
                    let at = self.block_at(j, b);
                    let bytes = &self.data[at..at + bb];
                    match self.mode {
                        WeightMode::Int8 => {
                            let s = self.scale(j, b);
                            for (v, &q) in d.iter_mut().zip(bytes) {
                                *v = s * (q as i32 - 128) as f32;
                            }
                        }
                        _ => {
                            // byte i: positions i (low nibble) and 32 + i (high); position p is in
                            // group (p / 4) % 2 of the block
                            let s = [self.scale(j, 2 * b), self.scale(j, 2 * b + 1)];
                            for i in 0..32 {
                                d[int4_value(i)] = s[(i / 4) % 2] * ((bytes[i] & 0x0F) as i32 - 8) as f32;
                                d[int4_value(32 + i)] = s[(i / 4) % 2] * ((bytes[i] >> 4) as i32 - 8) as f32;
                            }
                        }
                    }
                }
                for (v, &f) in o.iter_mut().zip(row.iter()) {
                    *v = to_bf16(f);
                }
            },
        );
    }
}

fn block_bytes(mode: WeightMode) -> usize {
    if mode == WeightMode::Int8 { BLOCK } else { BLOCK / 2 }
}

/// f32 → bf16, round to nearest even (finite values only: dequantized weights are).
#[inline(always)]
fn to_bf16(f: f32) -> bf16 {
    let b = f.to_bits();
    bf16::from_bits(((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16)
}

fn row_bytes(mode: WeightMode, kp: usize) -> usize {
    if mode == WeightMode::Int8 { kp } else { kp / 2 }
}

/// A group's scale as stored: f16, rounded to nearest; 0 when it underflows f16 (the group's values
/// are then below 2⁻²⁴ · qmax in magnitude and round to 0).
fn stored_scale(scale: f32) -> f16 {
    f16::from_f32(scale.min(f16::MAX.to_f32()))
}

/// Rounds `vals` to integers in ±qmax with scale amax / qmax (as f16; the integers are rounded against
/// that f16 value); returns the scale (0 for an all-zero group, whose q are then 0).
fn quantize_group(vals: &[f32], qmax: f32, q: &mut [i8]) -> f16 {
    let amax = vals.iter().fold(0f32, |a, v| a.max(v.abs()));
    let scale = stored_scale(amax / qmax);
    if amax == 0.0 || !amax.is_finite() || scale.to_f32() == 0.0 {
        q.fill(0);
        return f16::ZERO;
    }
    let inv = 1.0 / scale.to_f32();
    for (d, v) in q.iter_mut().zip(vals) {
        *d = (v * inv).round().clamp(-qmax, qmax) as i8;
    }
    scale
}

/// The activations' version of `quantize_group(vals, 127, q)`, written so the compiler vectorises it
/// (it runs for every decode product): a 16-wide running max, and rounding to nearest (ties to
/// even) by the 1.5·2²³ trick, exact for |v · inv| ≤ 2²² (here ≤ 127). `vals.len()` is a multiple
/// of 16.
fn quantize_x_group(vals: &[f32], q: &mut [i8]) -> f32 {
    let mut m = [0f32; 16];
    for c in vals.chunks_exact(16) {
        for i in 0..16 {
            m[i] = m[i].max(c[i].abs());
        }
    }
    let amax = m.iter().fold(0f32, |a, &v| a.max(v));
    if amax == 0.0 || !amax.is_finite() {
        q.fill(0);
        return 0.0;
    }
    const MAGIC: f32 = 12_582_912.0;
    let inv = 127.0 / amax;
    for (d, &v) in q.iter_mut().zip(vals) {
        *d = ((v * inv + MAGIC) - MAGIC) as i32 as i8;
    }
    amax / 127.0
}

/// int4 with the scale that minimises the group's squared error: 16 levels (−8..7) are few, so the
/// plain amax / 7 (which never uses −8 and fits the rare largest value exactly) is not the best;
/// scales amax / d for d from 7 to 10 in steps of 0.25 are tried (clipping the largest values
/// when that lowers the error of the rest) and the best kept. Load-time only: 13 passes per group.
fn quantize_group_int4(vals: &[f32], q: &mut [i8]) -> f16 {
    let amax = vals.iter().fold(0f32, |a, v| a.max(v.abs()));
    if amax == 0.0 || !amax.is_finite() || stored_scale(amax / 10.0).to_f32() == 0.0 {
        q.fill(0);
        return f16::ZERO;
    }
    let (mut best, mut best_err) = (stored_scale(amax / 7.0), f32::INFINITY);
    for step in 0..13 {
        let scale = stored_scale(amax / (7.0 + 0.25 * step as f32));
        let (s, inv) = (scale.to_f32(), 1.0 / scale.to_f32());
        let err: f32 = vals.iter().map(|v| {
            let r = (v * inv).round().clamp(-8.0, 7.0) * s - v;
            r * r
        }).sum();
        if err < best_err {
            (best, best_err) = (scale, err);
        }
    }
    let inv = 1.0 / best.to_f32();
    for (d, v) in q.iter_mut().zip(vals) {
        *d = (v * inv).round().clamp(-8.0, 7.0) as i8;
    }
    best
}

/// int4 blocks keep their 64 values in "position" order, the order the AVX-512 kernel's unpacked
/// bytes and VNNI lanes take: lane l (positions 4l..4l+3) holds values of group l % 2 (the block's
/// first 32 values for even lanes, its last 32 for odd ones), so one broadcast pair of scales
/// [s₀, s₁, s₀, s₁, …] scales all 16 lanes. Position p → value index within the block.
#[inline(always)]
pub fn int4_value(p: usize) -> usize {
    let (l, i) = (p / 4, p % 4);
    (l % 2) * 32 + (l / 2) * 4 + i
}

/// Value index e (within a block) → its position (the inverse of `int4_value`).
#[inline(always)]
pub fn int4_position(e: usize) -> usize {
    let (g, r) = (e / 32, e % 32);
    4 * (2 * (r / 4) + g) + r % 4
}

/// Writes one row of integers (kp values) in the storage layout of `mode`: int8 as q + 128; int4 per
/// block of 32 bytes, byte i holding position i (low nibble) and position 32 + i (high), as q + 8.
fn pack_row(mode: WeightMode, q: &[i8], out: &mut [u8]) {
    match mode {
        WeightMode::Int8 => {
            for (d, v) in out.iter_mut().zip(q) {
                *d = (*v as i16 + 128) as u8;
            }
        }
        _ => {
            for (blk, o) in q.chunks(BLOCK).zip(out.chunks_mut(32)) {
                for i in 0..32 {
                    o[i] = ((blk[int4_value(i)] + 8) as u8) | (((blk[int4_value(32 + i)] + 8) as u8) << 4);
                }
            }
        }
    }
}

/// Rows of x [m, k] quantized to int8 per group (the weights' groups), padded to kp with zeros.
pub struct QuantX {
    pub mode: WeightMode,
    pub m: usize,
    pub kp: usize,
    /// [m, kp], each 64-value block in the weights' order (int4: position order, `int4_value`).
    pub q: Vec<i8>,
    /// [m, kp / group], in value order.
    pub scales: Vec<f32>,
    /// [m, kp / 64, TILE, 64 / group]: each block's scales repeated for the TILE weight rows, the
    /// layout of a weight tile's scales, so one elementwise product gives every (row, group)
    /// combined scale of a tile.
    pub tile_scales: Vec<f32>,
    /// [m, kp / 4]: the VNNI accumulator's start value per lane (positions 4l..4l+3): −offset · their
    /// sum, which removes the offset stored with each weight: +128 for int8; for int4 +8 in lanes
    /// 0–7 (low nibbles) and +128 in lanes 8–15 (high nibbles, used unshifted: 16·(q + 8)).
    pub neg_corr: Vec<i32>,
}

impl QuantX {
    pub fn new(x: &[f32], m: usize, k: usize, mode: WeightMode) -> QuantX {
        assert!(mode != WeightMode::Bf16, "QuantX: int8 or int4");
        assert_eq!(x.len(), m * k, "QuantX: x must be [m, k]");
        let kp = k.div_ceil(BLOCK) * BLOCK;
        let g = mode.group();
        let spb = BLOCK / g;
        let blocks = kp / BLOCK;
        let mut qx = QuantX { mode, m, kp, q: vec![0i8; m * kp], scales: vec![0f32; m * kp / g], tile_scales: vec![0f32; m * blocks * TILE * spb], neg_corr: vec![0i32; m * kp / 4] };
        let mut row = vec![0f32; kp];
        let mut vq = vec![0i8; kp];
        for r in 0..m {
            row[..k].copy_from_slice(&x[r * k..(r + 1) * k]);
            let s = &mut qx.scales[r * kp / g..(r + 1) * kp / g];
            for (gi, (vals, qs)) in row.chunks(g).zip(vq.chunks_mut(g)).enumerate() {
                s[gi] = quantize_x_group(vals, qs);
            }
            let q = &mut qx.q[r * kp..(r + 1) * kp];
            if mode == WeightMode::Int8 {
                q.copy_from_slice(&vq);
            } else {
                // position order (`int4_value`): lane l (4 bytes) holds values 4·(l/2)..+3 of the
                // block's first half (l even) or second half (l odd): an interleave of 4-byte words
                for (d, v) in q.chunks_exact_mut(BLOCK).zip(vq.chunks_exact(BLOCK)) {
                    let (lo, hi) = v.split_at(BLOCK / 2);
                    for (i, dl) in d.chunks_exact_mut(8).enumerate() {
                        dl[..4].copy_from_slice(&lo[4 * i..4 * i + 4]);
                        dl[4..].copy_from_slice(&hi[4 * i..4 * i + 4]);
                    }
                }
            }
            for b in 0..blocks {
                for t in 0..TILE {
                    for si in 0..spb {
                        qx.tile_scales[((r * blocks + b) * TILE + t) * spb + si] = s[b * spb + si];
                    }
                }
            }
            for (l, (d, c)) in qx.neg_corr[r * kp / 4..(r + 1) * kp / 4].iter_mut().zip(q.chunks_exact(4)).enumerate() {
                let offset = if mode == WeightMode::Int8 || l % 16 >= 8 { 128 } else { 8 };
                *d = -offset * (c[0] as i32 + c[1] as i32 + c[2] as i32 + c[3] as i32);
            }
        }
        qx
    }

    /// The integer value of x[r, e] (e < kp, value order) before scaling.
    #[inline(always)]
    pub fn value(&self, r: usize, e: usize) -> i32 {
        let p = if self.mode == WeightMode::Int8 { e } else { e / BLOCK * BLOCK + int4_position(e % BLOCK) };
        self.q[r * self.kp + p] as i32
    }
}

/// The reference (and portable fallback): y[r, j] = Σ_g sw[j,g] · sx[r,g] · Σ_{e∈g} qw[j,e] · qx[r,e]
/// (+ bias), one group's integer sum at a time.
pub fn gemv_scalar(w: &QuantMatrix, x: &QuantX, bias: Option<&[f32]>, y: &mut [f32]) {
    let (n, kp, g) = (w.n, w.kp, w.mode.group());
    assert_eq!(y.len(), x.m * n, "gemv_scalar: y must be [m, n]");
    y.par_chunks_mut(n).enumerate().for_each(|(r, yr)| {
        for (j, out) in yr.iter_mut().enumerate() {
            let mut acc = 0f32;
            for gi in 0..kp / g {
                let mut dot = 0i32;
                for e in gi * g..(gi + 1) * g {
                    dot += w.q(j, e) * x.value(r, e);
                }
                acc += w.scale(j, gi) * x.scales[r * kp / g + gi] * dot as f32;
            }
            *out = acc + bias.map_or(0.0, |b| b[j]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(n: usize, k: usize) -> Vec<bf16> {
        (0..n * k).map(|i| bf16::from_f32((((i * 7919) % 1013) as f32 / 506.0 - 1.0) * 0.05)).collect()
    }

    /// The mode a load_model asks for: absent is bf16; int8/int4 on CUDA and unknown names are bad
    /// requests that say what to do.
    #[test]
    fn weight_mode_per_device() {
        use crate::backend::Device;
        assert_eq!(weight_mode(None, &Device::Cuda(0)).unwrap(), WeightMode::Bf16);
        assert_eq!(weight_mode(Some("int4"), &Device::Cpu).unwrap(), WeightMode::Int4);
        let e = weight_mode(Some("int8"), &Device::Cuda(0)).unwrap_err();
        assert_eq!(e.code(), "bad_request");
        assert!(e.to_string().contains("int8 are not supported on CUDA yet") && e.to_string().contains("--device cpu"), "{e}");
        let e = weight_mode(Some("fp8"), &Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("\"fp8\" is not a weight mode: use bf16, int8 or int4"), "{e}");
    }

    /// Dequantized weights stay within half a step of the originals (per group), and the packed
    /// integers read back as written, for both modes and a k that needs padding.
    #[test]
    fn round_trip_within_half_a_step() {
        for mode in [WeightMode::Int8, WeightMode::Int4] {
            let (n, k) = (5, 100);
            let w = weights(n, k);
            let qm = QuantMatrix::quantize(&w, n, k, mode);
            assert_eq!(qm.kp, 128);
            let mut back = vec![bf16::ZERO; n * k];
            qm.dequantize_rows(0, n, &mut back);
            let g = mode.group();
            for j in 0..n {
                for e in 0..k {
                    let step = qm.scale(j, e / g);
                    let err = (back[j * k + e].to_f32() - w[j * k + e].to_f32()).abs();
                    // half a step of rounding, or for int4 the clipping of the largest values that the
                    // error-minimising scale may choose (top level 7 steps), plus bf16's rounding
                    let g0 = j * k + e / g * g;
                    let amax = w[g0..(g0 + g).min((j + 1) * k)].iter().fold(0f32, |a, v| a.max(v.to_f32().abs()));
                    let bound = if mode == WeightMode::Int8 { 0.5 * step } else { (0.5 * step).max(amax - 7.0 * step) };
                    assert!(err <= bound + 4e-3 * w[j * k + e].to_f32().abs() + 1e-7, "{mode:?} j={j} e={e}: error {err}, step {step}");
                }
                for e in k..qm.kp {
                    assert_eq!(qm.q(j, e), 0, "padding must be zero");
                }
            }
        }
    }

    /// Scales are stored as f16 and the integers rounded against that stored value: a group far below
    /// f16's range (|w| ~ 1e-9: its scale underflows) becomes zeros with scale 0, not garbage; a
    /// group of large values (amax 1000) keeps its top integer at ±127 (int8) and within half a step.
    #[test]
    fn f16_scales_at_the_edges_of_their_range() {
        for mode in [WeightMode::Int8, WeightMode::Int4] {
            let k = 128;
            let mut w = vec![bf16::ZERO; k];
            for (e, v) in w.iter_mut().enumerate() {
                *v = bf16::from_f32(if e < 64 { 1e-9 * (e as f32 - 32.0) } else { 1000.0 * (e as f32 - 96.0) / 32.0 });
            }
            let qm = QuantMatrix::quantize(&w, 1, k, mode);
            let g = mode.group();
            for e in 0..64 {
                assert_eq!(qm.q(0, e), 0, "{mode:?}: value {e} of the tiny block");
                assert_eq!(qm.scale(0, e / g), 0.0);
            }
            let mut back = vec![bf16::ZERO; k];
            qm.dequantize_rows(0, 1, &mut back);
            for e in 64..k {
                let step = qm.scale(0, e / g);
                assert!(step > 0.0 && step == half::f16::from_f32(step).to_f32());
                let bound = if mode == WeightMode::Int8 { 0.5 * step } else { (0.5 * step).max(1000.0 - 7.0 * step) };
                assert!((back[e].to_f32() - w[e].to_f32()).abs() <= bound + 4e-3 * w[e].to_f32().abs(), "{mode:?} value {e}");
            }
            if mode == WeightMode::Int8 {
                assert_eq!(qm.q(0, 64), -127, "the group's largest magnitude takes the top integer");
            }
        }
    }

    /// int4's position order is a permutation whose inverse is `int4_position`, and each VNNI lane
    /// (4 positions) holds values of one group: group l % 2 for lane l.
    #[test]
    fn int4_positions_are_a_lane_parity_permutation() {
        let mut seen = [false; BLOCK];
        for p in 0..BLOCK {
            let e = int4_value(p);
            assert!(!seen[e], "value {e} twice");
            seen[e] = true;
            assert_eq!(int4_position(e), p);
            assert_eq!(e / 32, (p / 4) % 2, "position {p}: value {e} is not in its lane's group");
        }
    }

    /// The activations' rounding: within half a step of x / scale, ±127 at the largest |x|, zeros for a
    /// zero group, and the tiled scales repeat each group's scale for the TILE weight rows.
    #[test]
    fn activations_quantize_within_half_a_step() {
        for mode in [WeightMode::Int8, WeightMode::Int4] {
            let (m, k) = (2, 150);
            let mut x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1013) as f32 / 100.0 - 5.0).collect();
            x[k..k + 64].fill(0.0); // row 1's first block is zero
            let qx = QuantX::new(&x, m, k, mode);
            let g = mode.group();
            for r in 0..m {
                for e in 0..qx.kp {
                    let s = qx.scales[r * qx.kp / g + e / g];
                    let v = if e < k { x[r * k + e] } else { 0.0 };
                    let q = qx.value(r, e);
                    if s == 0.0 {
                        assert_eq!(q, 0);
                    } else {
                        assert!((q as f32 - v / s).abs() <= 0.5 + 1e-4 && q.abs() <= 127, "{mode:?} ({r},{e}): {q} for {v} / {s}");
                    }
                }
                for b in 0..qx.kp / BLOCK {
                    for t in 0..TILE {
                        for si in 0..BLOCK / g {
                            assert_eq!(qx.tile_scales[((r * qx.kp / BLOCK + b) * TILE + t) * (BLOCK / g) + si], qx.scales[r * qx.kp / g + b * BLOCK / g + si]);
                        }
                    }
                }
            }
            assert!(qx.scales[qx.kp / g] == 0.0, "row 1's zero group has scale 0");
        }
    }

    /// The integer kernel's result is close to the f32 product of the original values: the only
    /// differences are the two roundings (weights and activations).
    #[test]
    fn scalar_gemv_approximates_f32() {
        for (mode, tol) in [(WeightMode::Int8, 0.01), (WeightMode::Int4, 0.12)] {
            let (m, n, k) = (3, 7, 192);
            let w = weights(n, k);
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 104_729) % 97) as f32 / 48.0 - 1.0).collect();
            let qm = QuantMatrix::quantize(&w, n, k, mode);
            let qx = QuantX::new(&x, m, k, mode);
            let mut y = vec![0f32; m * n];
            gemv_scalar(&qm, &qx, None, &mut y);
            for r in 0..m {
                for j in 0..n {
                    let exact: f32 = (0..k).map(|e| x[r * k + e] * w[j * k + e].to_f32()).sum();
                    let scale: f32 = (0..k).map(|e| (x[r * k + e] * w[j * k + e].to_f32()).abs()).sum();
                    assert!((y[r * n + j] - exact).abs() <= tol * scale, "{mode:?} r={r} j={j}: {} vs {exact} (Σ|terms| {scale})", y[r * n + j]);
                }
            }
        }
    }
}
