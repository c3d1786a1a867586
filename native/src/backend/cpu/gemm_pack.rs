//! Transposing reads of a bf16 weight W [n, k] for the packed GEMMs (gemm.rs's f32 kernel, the
//! `vdpbf16ps`/AMX panels of gemm_bf16dot.rs): both want, per pair of steps (k, k+1), the pairs of
//! 16 W rows side by side in one 512-bit vector (lane i = row i's pair as 32 bits: low half step k,
//! high half step k+1).
//!
//! Each row is read contiguously, 16 pairs (one 64-byte line) at a time, and the 16 × 16 block of
//! pairs is transposed in registers (64 shuffles per 256 pairs). The earlier form gathered one pair
//! of each of 16 rows per step; with k = 2048 or 6144 the rows lie 4 KiB apart, so the 16–32 lines in
//! use all fall in one L1 set and every gather missed: packing took ~30 % of a 128-row prefill GEMM.
use half::bf16;
use std::arch::x86_64::*;

/// For W rows r0..r0+rows (rows ≤ 16; lanes ≥ rows are zero) and the pairs p in 0..pairs, that is steps
/// (pc + 2p, pc + 2p + 1): calls `f(p, v)` with lane i of v = that pair of row r0 + i, p ascending.
/// Caller: AVX-512F present (this inlines into its `target_feature` function); r0 + rows ≤ n and
/// pc + 2·pairs ≤ k.
#[inline(always)]
pub(super) unsafe fn for_each_pair16(w: &[bf16], k: usize, r0: usize, rows: usize, pc: usize, pairs: usize, mut f: impl FnMut(usize, __m512i)) {
    debug_assert!(rows <= 16 && (r0 + rows) * k <= w.len() && pc + 2 * pairs <= k);
    let mut pp = 0;
    while pp < pairs {
        let np = (pairs - pp).min(16);
        let m = if np >= 16 { 0xFFFF } else { ((1u32 << np) - 1) as __mmask16 };
        let mut r = [_mm512_setzero_si512(); 16];
        for (i, v) in r.iter_mut().enumerate().take(rows) {
            *v = _mm512_maskz_loadu_epi32(m, w.as_ptr().add((r0 + i) * k + pc + 2 * pp) as *const i32);
        }
        let t = transpose16(r);
        for (p, v) in t.iter().enumerate().take(np) {
            f(pp + p, *v);
        }
        pp += np;
    }
}

/// A 16 × 16 matrix of 32-bit lanes transposed (r[i] lane j → t[j] lane i): 32- and 64-bit unpacks
/// within 128-bit lanes, then two rounds of 128-bit lane shuffles.
#[inline(always)]
pub(super) unsafe fn transpose16(r: [__m512i; 16]) -> [__m512i; 16] {
    let mut a = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // b[4j + c], 128-bit lane L: column 4L + c of rows 4j..4j+3.
    let mut b = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        b[4 * j] = _mm512_unpacklo_epi64(a[4 * j], a[4 * j + 2]);
        b[4 * j + 1] = _mm512_unpackhi_epi64(a[4 * j], a[4 * j + 2]);
        b[4 * j + 2] = _mm512_unpacklo_epi64(a[4 * j + 1], a[4 * j + 3]);
        b[4 * j + 3] = _mm512_unpackhi_epi64(a[4 * j + 1], a[4 * j + 3]);
    }
    // t[4L + c] = lane L of b[c], b[4 + c], b[8 + c], b[12 + c].
    let mut t = [_mm512_setzero_si512(); 16];
    for c in 0..4 {
        let u0 = _mm512_shuffle_i32x4::<0x44>(b[c], b[4 + c]);
        let u1 = _mm512_shuffle_i32x4::<0xEE>(b[c], b[4 + c]);
        let v0 = _mm512_shuffle_i32x4::<0x44>(b[8 + c], b[12 + c]);
        let v1 = _mm512_shuffle_i32x4::<0xEE>(b[8 + c], b[12 + c]);
        t[c] = _mm512_shuffle_i32x4::<0x88>(u0, v0);
        t[4 + c] = _mm512_shuffle_i32x4::<0xDD>(u0, v0);
        t[8 + c] = _mm512_shuffle_i32x4::<0x88>(u1, v1);
        t[12 + c] = _mm512_shuffle_i32x4::<0xDD>(u1, v1);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[target_feature(enable = "avx512f")]
    unsafe fn collect(w: &[bf16], k: usize, r0: usize, rows: usize, pc: usize, pairs: usize) -> Vec<[u32; 16]> {
        let mut out = Vec::new();
        for_each_pair16(w, k, r0, rows, pc, pairs, |p, v| {
            assert_eq!(p, out.len(), "pairs in ascending order");
            let mut a = [0u32; 16];
            _mm512_storeu_si512(a.as_mut_ptr() as *mut _, v);
            out.push(a);
        });
        out
    }

    /// Every (row, pair) lands in its lane, rows past `rows` are zero, for pair counts below, at and
    /// above one 16-pair block and at odd offsets pc.
    #[test]
    fn pairs_are_transposed() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("SKIP gemm_pack::pairs_are_transposed: this CPU has no AVX-512F");
            return;
        }
        let (n, k) = (40, 301);
        let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_bits((i * 7 + 1) as u16)).collect();
        for &(r0, rows, pc, pairs) in &[(0, 16, 0, 16), (3, 16, 1, 150), (20, 5, 7, 1), (24, 16, 256, 22), (39, 1, 0, 33), (0, 0, 0, 3)] {
            // SAFETY: AVX-512F detected; r0 + rows ≤ n, pc + 2·pairs ≤ k.
            let got = unsafe { collect(&w, k, r0, rows, pc, pairs) };
            assert_eq!(got.len(), pairs);
            for (p, lanes) in got.iter().enumerate() {
                for (i, &v) in lanes.iter().enumerate() {
                    let want = if i < rows {
                        let e = (r0 + i) * k + pc + 2 * p;
                        w[e].to_bits() as u32 | (w[e + 1].to_bits() as u32) << 16
                    } else {
                        0
                    };
                    assert_eq!(v, want, "r0={r0} rows={rows} pc={pc} pairs={pairs}: pair {p} lane {i}");
                }
            }
        }
    }
}
