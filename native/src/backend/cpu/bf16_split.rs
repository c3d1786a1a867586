//! f32 → three bf16 terms that add back to it exactly (x = hi + mid + lo), so a bf16 dot-product unit
//! (AMX `tdpbf16ps`: exact products, f32 sums) multiplies bf16 weights by f32 activations in f32
//! arithmetic: w·x = w·hi + w·mid + w·lo, every product exact in f32 (8 × 8 significant bits), only
//! the additions rounded, as in an f32 FMA loop (three additions per product instead of one).
//!
//! Truncation, not rounding: hi keeps x's top 16 bits (sign, exponent, 7 stored mantissa bits), so
//! r = x − hi is exact and holds x's next 16 significant bits at most; mid is r's top 16 bits and
//! lo = r − mid has at most 8 significant bits, a bf16 exactly. Limit: for |x| below ~2^-110 the mid
//! and lo terms fall under the normal range and units that treat denormal inputs as zero drop them
//! (an absolute error under 2^-126 per element). Infinities and NaN go whole into hi.

/// The three terms as bf16 bit patterns (hi, mid, lo).
#[inline(always)]
pub fn split3(x: f32) -> [u16; 3] {
    if !x.is_finite() {
        let hi = if x.is_nan() { 0x7fc0 | ((x.to_bits() >> 16) as u16 & 0x8000) } else { (x.to_bits() >> 16) as u16 };
        return [hi, 0, 0];
    }
    const TOP: u32 = 0xffff_0000;
    let hi = f32::from_bits(x.to_bits() & TOP);
    let r = x - hi;
    let mid = f32::from_bits(r.to_bits() & TOP);
    let lo = r - mid;
    [(hi.to_bits() >> 16) as u16, (mid.to_bits() >> 16) as u16, (lo.to_bits() >> 16) as u16]
}

/// Splits a row: hi[i] + mid[i] + lo[i] = x[i] (as f32) for every i.
pub fn split3_row(x: &[f32], hi: &mut [u16], mid: &mut [u16], lo: &mut [u16]) {
    assert!(hi.len() >= x.len() && mid.len() >= x.len() && lo.len() >= x.len(), "split3_row: outputs shorter than x");
    for (i, &v) in x.iter().enumerate() {
        let [h, m, l] = split3(v);
        hi[i] = h;
        mid[i] = m;
        lo[i] = l;
    }
}

/// `split3` on 16 f32 lanes: hi, mid, lo each in the top 16 bits of a u32 lane (low 16 bits zero),
/// the same bit patterns as `split3` (truncation; infinities whole in hi; NaN as a quiet NaN in hi
/// with its sign). Callers enable AVX-512F (inlined into their `#[target_feature]` functions).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn split3_x16(v: std::arch::x86_64::__m512) -> [std::arch::x86_64::__m512i; 3] {
    use std::arch::x86_64::*;
    let top = _mm512_set1_epi32(0xffff_0000u32 as i32);
    let bits = _mm512_castps_si512(v);
    let hi = _mm512_and_si512(bits, top);
    let r = _mm512_sub_ps(v, _mm512_castsi512_ps(hi));
    let mid = _mm512_and_si512(_mm512_castps_si512(r), top);
    let lo = _mm512_castps_si512(_mm512_sub_ps(r, _mm512_castsi512_ps(mid)));
    let abs = _mm512_castsi512_ps(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff)));
    let finite = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(abs, _mm512_set1_ps(f32::INFINITY));
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
    let quiet = _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x8000_0000u32 as i32)), _mm512_set1_epi32(0x7fc0_0000));
    [_mm512_mask_mov_epi32(hi, nan, quiet), _mm512_maskz_mov_epi32(finite, mid), _mm512_maskz_mov_epi32(finite, lo)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn back(t: [u16; 3]) -> f32 {
        let f = |b: u16| f32::from_bits((b as u32) << 16);
        // hi + (mid + lo): mid + lo is r exactly, and hi + r is x exactly.
        f(t[0]) + (f(t[1]) + f(t[2]))
    }

    #[test]
    fn terms_add_back_exactly() {
        let mut s = 0x9e37_79b9u32;
        let mut values = vec![0.0f32, -0.0, 1.0, -1.0, f32::MAX, f32::MIN_POSITIVE, 1.0e-30, 3.4e38, -7.25e-5, 0.1, 1.0 / 3.0];
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            // Random bit patterns: every exponent a normal f32 can have down to ~2^-100, both signs.
            let v = f32::from_bits(s);
            if v.is_finite() && (v == 0.0 || v.abs() > 1e-30) {
                values.push(v);
            }
        }
        for v in values {
            let t = split3(v);
            // (−0 comes back as +0 from the sum; the hi term keeps its sign bit.)
            assert!(back(t) == v && (v != 0.0 || t[0] == (v.to_bits() >> 16) as u16), "{v:e} split into {t:04x?}");
            if v != 0.0 {
                assert_eq!(back(t).to_bits(), v.to_bits(), "{v:e} split into {t:04x?}");
            }
            // Each term is a bf16 as it stands (no bits dropped by the 16-bit cut).
            let lo = f32::from_bits((t[2] as u32) << 16);
            let mid = f32::from_bits((t[1] as u32) << 16);
            assert!(lo.abs() <= mid.abs() || mid == 0.0 && lo == 0.0, "{v:e}: lo {lo:e} above mid {mid:e}");
        }
    }

    #[test]
    fn non_finite_values_stay_whole() {
        assert_eq!(split3(f32::INFINITY), [0x7f80, 0, 0]);
        assert_eq!(split3(f32::NEG_INFINITY), [0xff80, 0, 0]);
        let nan = split3(f32::from_bits(0x7f80_0001));
        assert!(f32::from_bits((nan[0] as u32) << 16).is_nan() && nan[1] == 0 && nan[2] == 0);
    }

    #[test]
    fn row_split_matches_elementwise() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.731).sin() * 1e3).collect();
        let (mut h, mut m, mut l) = (vec![0u16; 37], vec![0u16; 37], vec![0u16; 37]);
        split3_row(&x, &mut h, &mut m, &mut l);
        for i in 0..37 {
            assert_eq!([h[i], m[i], l[i]], split3(x[i]));
        }
    }
}
