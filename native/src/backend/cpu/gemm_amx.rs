//! AMX-BF16 kernel of gemm_bf16dot.rs (layouts there). Rust's AMX intrinsics are unstable, so the
//! tile instructions are written with `asm!`; the tile registers are invisible to the compiler, which
//! therefore never spills or reuses them between the asm statements of one block.
//!
//! Tiles (palette 1, each 16 rows × 64 bytes): tmm0–3 the 2 × 2 f32 16×16 blocks of a 32 × 32 block
//! of y; tmm4/5 rows 0–15 / 16–31 of x (32 k each); tmm6/7 the 16 pair-rows of 2 W panels (columns
//! 0–15 / 16–31). Per 32 k: 4 tile loads, 4 `tdpbf16ps` (32 768 flops).
use super::matmul::SharedOut;
use std::arch::asm;

#[repr(C, align(64))]
struct TileConfig([u8; 64]);

/// Palette 1, tiles 0–7 all 16 rows × 64 bytes.
fn config() -> TileConfig {
    let mut c = [0u8; 64];
    c[0] = 1;
    for t in 0..8 {
        c[16 + 2 * t] = 64;
        c[48 + t] = 16;
    }
    TileConfig(c)
}

/// Columns c0..c0+cols of y for every row: xb [m_pad][kp] bf16 (m_pad a multiple of 32), `wp` this
/// task's panels [cols/16][kp/2][32] bf16 from index 0. 32-row blocks outside, so one block of x rows
/// meets all the task's (L2-resident) panels. Caller: the AMX permission was granted
/// (precision::bf16_support chose Amx).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_cols(xb: &[u16], xs: usize, m: usize, kp: usize, wp: &[u16], c0: usize, cols: usize, n: usize, bias: Option<&[f32]>, out: SharedOut) {
    let cfg = config();
    let mut buf = Block([0f32; 32 * 32]);
    // SAFETY: permission granted (caller); the tile config is loaded before any tile use and released
    // before returning, on this thread; tasks own disjoint columns of y; every tile load reads inside
    // xb (rows < m_pad) and wp (pair-rows < kp/2 of the panels of cols rounded up to 32).
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        for r0 in (0..m).step_by(32) {
            for c in (c0..c0 + cols).step_by(32) {
                block(xb.as_ptr().add(r0 * xs), xs, kp, wp.as_ptr().add(((c - c0) / 16) * kp * 16), &mut buf);
                write_out(&buf, r0, (m - r0).min(32), c, (n - c).min(32), n, bias, out);
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

#[repr(C, align(64))]
struct Block([f32; 32 * 32]);

/// buf [32][32] f32 = x rows (32 from `a`, stride kp) · the two W panels from `b` (second at +kp·16).
#[inline(always)]
unsafe fn block(a: *const u16, xs: usize, kp: usize, b: *const u16, buf: &mut Block) {
    let lda = xs * 2;
    let a_hi = a.add(16 * xs);
    let b_hi = b.add(kp * 16);
    asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
    for kb in 0..kp / 32 {
        // x: 32 k = 64 bytes of each row; W: 16 pair-rows of 64 bytes = 1024 bytes per 32 k.
        asm!(
            "tileloadd tmm4, [{a} + {lda}*1]",
            "tileloadd tmm5, [{ah} + {lda}*1]",
            "tileloadd tmm6, [{b} + {ldb}*1]",
            "tileloadd tmm7, [{bh} + {ldb}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a = in(reg) a.add(kb * 32),
            ah = in(reg) a_hi.add(kb * 32),
            b = in(reg) b.add(kb * 512),
            bh = in(reg) b_hi.add(kb * 512),
            lda = in(reg) lda,
            ldb = in(reg) 64usize,
            options(nostack, readonly),
        );
    }
    let p = buf.0.as_mut_ptr();
    asm!(
        "tilestored [{p0} + {ld}*1], tmm0",
        "tilestored [{p1} + {ld}*1], tmm1",
        "tilestored [{p2} + {ld}*1], tmm2",
        "tilestored [{p3} + {ld}*1], tmm3",
        p0 = in(reg) p,
        p1 = in(reg) p.add(16),
        p2 = in(reg) p.add(16 * 32),
        p3 = in(reg) p.add(16 * 32 + 16),
        ld = in(reg) 128usize,
        options(nostack),
    );
}

/// y[r0.., c..] (mv × nv valid) = buf + bias, 2 masked zmm stores a row (AVX-512F comes with AMX).
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn write_out(buf: &Block, r0: usize, mv: usize, c: usize, nv: usize, n: usize, bias: Option<&[f32]>, out: SharedOut) {
    use std::arch::x86_64::*;
    let mask = |v: usize| if v >= 16 { 0xFFFFu16 } else { ((1u32 << v) - 1) as u16 };
    let (m0, m1) = (mask(nv.min(16)), mask(nv.saturating_sub(16)));
    let (b0, b1) = match bias {
        Some(b) => (_mm512_maskz_loadu_ps(m0, b.as_ptr().add(c)), _mm512_maskz_loadu_ps(m1, b.as_ptr().wrapping_add(c + 16))),
        None => (_mm512_setzero_ps(), _mm512_setzero_ps()),
    };
    for i in 0..mv {
        let y = out.at((r0 + i) * n + c);
        let row = buf.0.as_ptr().add(i * 32);
        _mm512_mask_storeu_ps(y, m0, _mm512_add_ps(b0, _mm512_load_ps(row)));
        _mm512_mask_storeu_ps(y.wrapping_add(16), m1, _mm512_add_ps(b1, _mm512_load_ps(row.add(16))));
    }
}
