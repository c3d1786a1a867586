//! Vectorisable f32 helpers of the vision kernels. The crate builds for baseline x86-64 (SSE2), so hot
//! loops are written as plain fixed-width array code and compiled again with AVX-512F or AVX2+FMA
//! enabled, chosen at run time (`multiversion!`). Kernels take `const FMA: bool` and multiply-add
//! through `madd`, which is fused only on the wide paths (a software fma would be slow on the baseline).

/// `multiversion! { fn name(args) -> R = body_fn; }` defines `name`, which runs `body_fn::<true>` (an
/// `#[inline(always)]` function) compiled for AVX-512F or AVX2+FMA when the CPU has them, else
/// `body_fn::<false>` for the baseline target.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? = $imp:ident;) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,fma")]
                unsafe fn avx512($($a: $t),*) $(-> $r)? { $imp::<true>($($a),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($a: $t),*) $(-> $r)? { $imp::<true>($($a),*) }
                if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports AVX-512F and FMA.
                    return unsafe { avx512($($a),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports AVX2 and FMA.
                    return unsafe { avx2($($a),*) };
                }
            }
            $imp::<false>($($a),*)
        }
    };
}
pub(crate) use multiversion;

/// a·b + c, fused (one rounding) when FMA is true.
#[inline(always)]
pub fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// exp(x) to ~1 ulp (Cephes expf: x = n·ln2 + r, degree-6 polynomial in r), branch-free so that loops
/// over it vectorise; inputs are clamped to [−87, 88] (results below 2^−125 are not needed here).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    p = p * r * r + r + 1.0;
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    p * f32::from_bits(((ni + 127) << 23) as u32)
}

/// Sum of a slice with 16 lane accumulators (vectorises; the order is fixed, so results are reproducible).
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for l in 0..16 {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder().iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for c in chunks {
        for l in 0..16 {
            acc[l] = acc[l].max(c[l]);
        }
    }
    acc.iter().fold(rest, |a, &b| a.max(b))
}

#[inline(always)]
fn softmax_impl<const FMA: bool>(row: &mut [f32]) {
    let m = max(row);
    row.iter_mut().for_each(|v| *v = exp(*v - m));
    let inv = 1.0 / sum(row);
    row.iter_mut().for_each(|v| *v *= inv);
}

multiversion! {
    /// Softmax of one row in place (max-subtracted, f32).
    pub fn softmax(row: &mut [f32]) = softmax_impl;
}

#[inline(always)]
fn gelu_impl<const FMA: bool>(x: &mut [f32]) {
    const C: f32 = 0.797_884_6; // √(2/π)
    for z in x.iter_mut() {
        let v = *z;
        // tanh(u) = 1 − 2/(e^{2u} + 1): exact limits ±1, absolute error ~1e-7 near 0.
        let tanh = 1.0 - 2.0 / (exp(2.0 * C * (v + 0.044715 * v * v * v)) + 1.0);
        *z = 0.5 * v * (1.0 + tanh);
    }
}

multiversion! {
    /// gelu_pytorch_tanh in place: 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))).
    pub fn gelu(x: &mut [f32]) = gelu_impl;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0f64;
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let rel = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "relative error {worst}");
    }

    #[test]
    fn gelu_matches_tanh_formula() {
        let mut x: Vec<f32> = (-400..400).map(|i| i as f32 * 0.025).collect();
        let want: Vec<f32> = x.iter().map(|&v| 0.5 * v * (1.0 + (0.797_884_6 * (v + 0.044715 * v * v * v)).tanh())).collect();
        gelu(&mut x);
        for (a, b) in x.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
