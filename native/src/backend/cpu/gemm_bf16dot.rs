//! The `--precision bf16` product: y[m, n] = bf16(x)[m, k] · W[n, k]ᵀ (+ bias), products of bf16
//! pairs summed in f32 by the CPU's dot-product units (precision.rs says when this runs).
//!
//! Packing, shared by both kernels (k padded to KP = a multiple of 32 with zeros):
//! * x → bf16 rows [m_pad][KP] (round to nearest even, `vcvtne2ps2bf16`), m_pad a multiple of 32.
//! * W → "VNNI" panels of 16 columns: [KP/2][16][2] bf16, i.e. pair-row r of a panel holds
//!   (W[c][2r], W[c][2r+1]) for its 16 columns c: one 64-byte row is one AMX B-tile row and one zmm
//!   operand of `vdpbf16ps`. The (k, k+1) pairs of 16 W rows come from contiguous row reads
//!   transposed in registers (gemm_pack.rs). Each task packs
//!   the panels of its 64 columns only (thread-local, L2-sized) and runs them against all rows.
//!
//! Kernels:
//! * AMX (gemm_amx.rs): 32 × 32 blocks of y in 4 tiles (tmm0–3), per 32-step of k two A tiles
//!   (16 rows × 32 k) and two B tiles (16 pair-rows × 16 columns), 4 `tdpbf16ps` (16·16·32·2 flops each).
//! * AVX512_BF16 (below): 12 × 32 blocks of y in 24 zmm, per k-pair 2 loads of W, 12 broadcasts of an
//!   x pair, 24 `vdpbf16ps`.
use super::gemm::WLayout;
use super::matmul::SharedOut;
use super::precision::Bf16Path;
use half::bf16;
use rayon::prelude::*;
use std::cell::RefCell;

/// k padding and the AMX tile's k extent (32 bf16 = 64 bytes).
pub(super) const KSTEP: usize = 32;
/// Rows padding of packed x (an AMX block is 32 rows).
pub(super) const MSTEP: usize = 32;

thread_local! {
    pub(super) static X16: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
    static W16: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
}

/// Caller: `path` came from precision::bf16_support (so AVX512_BF16, and for Amx the permission, exist);
/// shapes consistent; m, n, k ≥ 1.
#[cfg(target_arch = "x86_64")]
pub(super) fn gemm(path: Bf16Path, x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    gemm_layout(path, x, m, k, w, n, bias, y, WLayout::NK)
}

/// As `gemm`, with W stored [n, k] (NK) or [k, n] (KN, the VTE table).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_layout(path: Bf16Path, x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32], layout: WLayout) {
    gemm_form(path, XForm::Bf16, x, m, k, w, n, bias, y, layout)
}

/// How x meets the bf16 dot-product unit: rounded to bf16 (`--precision bf16`), or split exactly
/// into three bf16 terms (gemm_amx_split.rs: f32 arithmetic, the default precision; AMX only).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum XForm {
    Bf16,
    Split3,
}

/// The default precision's product on AMX (f32 arithmetic, x split into three bf16 terms), W [n, k]
/// or [k, n]; `post` (NK only) applied to each finished stretch of y. Caller: precision::f32_gemm
/// chose Amx (the permission was granted); m, n, k ≥ 1.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_f32_amx(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32], layout: WLayout, post: Option<fn(&mut [f32])>) {
    match layout {
        WLayout::NK => super::gemm_amx::gemm_direct_split(x, m, k, w, n, bias, y, post),
        WLayout::KN => {
            assert!(post.is_none(), "gemm_f32_amx: post only with W [n, k]");
            gemm_form(Bf16Path::Amx, XForm::Split3, x, m, k, w, n, bias, y, layout)
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn gemm_form(path: Bf16Path, form: XForm, x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32], layout: WLayout) {
    if path == Bf16Path::Amx && layout == WLayout::NK {
        return match form {
            XForm::Bf16 => super::gemm_amx::gemm_direct(x, m, k, w, n, bias, y),
            XForm::Split3 => super::gemm_amx::gemm_direct_split(x, m, k, w, n, bias, y, None),
        };
    }
    assert!(form == XForm::Bf16 || path == Bf16Path::Amx, "the split form runs on AMX only");
    if layout == WLayout::KN && k > 2 * kn_chunk(form) {
        return gemm_kn_chunked(path, form, x, m, k, w, n, bias, y);
    }
    let kp = k.div_ceil(KSTEP) * KSTEP;
    let m_pad = m.div_ceil(MSTEP) * MSTEP;
    // Row stride of packed x. The AVX512_BF16 kernel reads 12 rows at once, an AMX tile 16: with kp·2
    // bytes a multiple of 4 KiB (k = 2048, 6144) they would all sit in one L1 set and evict each other,
    // so the rows get one more 64-byte line of zeros (AMX, single thread: +10 % over the speed test).
    let xs = kp + KSTEP;
    // Split: the A tiles of gemm_amx_split::pack_a_tiles, 3 × m_pad × kp.
    let len = if form == XForm::Split3 { 3 * m_pad * kp } else { m_pad * xs };
    with_u16(&X16, len, |xb| {
        // SAFETY: AVX512_BF16 + AVX-512F/BW present (precision.rs checked before choosing a path).
        unsafe {
            match form {
                XForm::Bf16 => pack_x(x, m, k, xs, xb),
                XForm::Split3 => super::gemm_amx_split::pack_a_tiles(x, m, k, kp, m_pad, xb),
            }
        }
        let xb = &*xb;
        let out = SharedOut(y.as_mut_ptr());
        // One task per CG columns: it packs only its own W panels (CG × KP bf16, L2-resident) and runs
        // them against every row of x, so W is read once and no whole-W copy exists (the visual head's
        // W is 600 MB).
        (0..n.div_ceil(CG)).into_par_iter().for_each(|t| {
            let (c0, cols) = (t * CG, CG.min(n - t * CG));
            let panels = cols.div_ceil(32) * 2;
            with_u16(&W16, panels * kp * 16, |wp| {
                for (p, panel) in wp.chunks_mut(kp * 16).enumerate() {
                    // SAFETY: as above (AVX-512BW comes with AVX512_BF16 on every CPU that has it).
                    unsafe {
                        match layout {
                            WLayout::NK => pack_w_panel(w, n, k, c0 + 16 * p, panel),
                            WLayout::KN => pack_w_kn_panel(w, n, k, c0 + 16 * p, panel),
                        }
                    }
                }
                match (path, form) {
                    (Bf16Path::Amx, XForm::Split3) => super::gemm_amx_split::gemm_cols(xb, m, kp, wp, c0, cols, n, bias, out),
                    (Bf16Path::Amx, XForm::Bf16) => super::gemm_amx::gemm_cols(xb, xs, m, kp, wp, c0, cols, n, bias, out),
                    (Bf16Path::Avx512Bf16, _) => avx512bf16_cols(xb, xs, m, kp, wp, c0, cols, n, bias, out),
                }
            })
        });
    })
}

/// k per pass of a [k, n] product with a long k (the VTE: k = 65 536 visual words, m = 196 rows at
/// 448², n = 2048). In one pass every 64-column task would stream the whole packed x (m × 65 536 bf16 =
/// 25 MB, far past L2) and pack a 8 MiB W panel; in passes of 4096 k the packed x chunk (1.6 MB at
/// m = 196) stays in L2 across a thread's column tasks, and each pass adds its partial product to y.
const KN_CHUNK: usize = 4096;

/// k per pass of the [k, n] product: the split form's packed x is 3 × larger, so its passes are
/// shorter (OVIS_KN_CHUNK overrides, for the speed test).
fn kn_chunk(form: XForm) -> usize {
    match form {
        XForm::Bf16 => KN_CHUNK,
        XForm::Split3 => std::env::var("OVIS_KN_CHUNK").ok().and_then(|v| v.parse().ok()).unwrap_or(KN_CHUNK / 4),
    }
}

#[allow(clippy::too_many_arguments)]
fn gemm_kn_chunked(path: Bf16Path, form: XForm, x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    let chunk = kn_chunk(form);
    let mut xc = vec![0f32; m * chunk];
    let mut yc = vec![0f32; m * n];
    for (ci, kc0) in (0..k).step_by(chunk).enumerate() {
        let kc = chunk.min(k - kc0);
        let xc = &mut xc[..m * kc];
        xc.par_chunks_mut(kc).enumerate().for_each(|(i, row)| row.copy_from_slice(&x[i * k + kc0..i * k + kc0 + kc]));
        // Rows kc0..kc0+kc of W [k, n] are themselves a [kc, n] matrix.
        let wc = &w[kc0 * n..(kc0 + kc) * n];
        if ci == 0 {
            gemm_form(path, form, xc, m, kc, wc, n, bias, y, WLayout::KN);
        } else {
            gemm_form(path, form, xc, m, kc, wc, n, None, &mut yc, WLayout::KN);
            y.par_chunks_mut(n).zip(yc.par_chunks(n)).for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
        }
    }
}

/// Columns per task of the bf16 products.
const CG: usize = 64;

/// `len` u16 of the thread's buffer `slot`, starting on a 64-byte boundary: a tile or zmm row that
/// straddles two cache lines costs two line reads (AMX tiles from 16-byte-aligned buffers: ~25 % slower).
pub(super) fn with_u16<R>(slot: &'static std::thread::LocalKey<RefCell<Vec<u16>>>, len: usize, f: impl FnOnce(&mut [u16]) -> R) -> R {
    let aligned = |v: &mut [u16]| {
        let skip = (64 - v.as_ptr() as usize % 64) % 64 / 2;
        f(&mut v[skip..skip + len])
    };
    slot.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len + 32 {
                v.resize(len + 32, 0);
            }
            let r = aligned(&mut v[..len + 32]);
            if v.len() > (16 << 20) {
                *v = Vec::new();
            }
            r
        }
        Err(_) => aligned(&mut vec![0u16; len + 32]),
    })
}

/// x [m, k] f32 → xb [m_pad][kp] bf16 bits (RNE), zero past k and past m (kp: the row stride, a
/// multiple of 32 ≥ k).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn pack_x(x: &[f32], m: usize, k: usize, kp: usize, xb: &mut [u16]) {
    xb.par_chunks_mut(kp).enumerate().for_each(|(i, row)| {
        // SAFETY: same features as the enclosing function (the closure runs on rayon threads of this CPU).
        unsafe { pack_x_row(if i < m { &x[i * k..(i + 1) * k] } else { &[] }, row) }
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pack_x_row(src: &[f32], dst: &mut [u16]) {
    use std::arch::x86_64::*;
    let mut c = 0;
    while c < dst.len() {
        let lo_n = src.len().saturating_sub(c).min(16);
        let hi_n = src.len().saturating_sub(c + 16).min(16);
        let lo = _mm512_maskz_loadu_ps(mask16(lo_n), src.as_ptr().wrapping_add(c));
        let hi = _mm512_maskz_loadu_ps(mask16(hi_n), src.as_ptr().wrapping_add(c + 16));
        // Lanes 0–15 of the result come from the second operand.
        let v = _mm512_cvtne2ps_pbh(hi, lo);
        _mm512_storeu_si512(dst.as_mut_ptr().add(c) as *mut _, std::mem::transmute::<__m512bh, __m512i>(v));
        c += 32;
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mask16(v: usize) -> u16 {
    if v >= 16 {
        0xFFFF
    } else {
        ((1u32 << v) - 1) as u16
    }
}

/// W [n, k] bf16, columns c0..c0+16 → one VNNI panel [kp/2][16][2] (see the module note), zero past n
/// and k: contiguous reads of the 16 W rows, their (k, k+1) pairs transposed in registers
/// (gemm_pack.rs; gathers of one pair per row were ~100 cycles each at k = 2048, the rows 4 KiB apart).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack_w_panel(w: &[bf16], n: usize, k: usize, c0: usize, panel: &mut [u16]) {
    use std::arch::x86_64::*;
    let nv = n.saturating_sub(c0).min(16);
    let dst = panel.as_mut_ptr() as *mut u32;
    if nv == 0 {
        panel.fill(0);
        return;
    }
    let full_pairs = k / 2;
    super::gemm_pack::for_each_pair16(w, k, c0, nv, 0, full_pairs, |r, v| _mm512_storeu_si512(dst.add(r * 16) as *mut _, v));
    let mut r = full_pairs;
    if k % 2 == 1 {
        // The last k alone (a 32-bit read would cross into the next row): (W[c][k-1], 0).
        for j in 0..16 {
            *dst.add(r * 16 + j) = if j < nv { w[(c0 + j) * k + k - 1].to_bits() as u32 } else { 0 };
        }
        r += 1;
    }
    panel[r * 32..].fill(0);
}

/// W [k, n] bf16 (the VTE table), columns c0..c0+16 → the same VNNI panel: pair-row r interleaves the
/// 16 columns of W rows 2r and 2r+1 (one `vpermw` of the two 32-byte rows).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_w_kn_panel(w: &[bf16], n: usize, k: usize, c0: usize, panel: &mut [u16]) {
    use std::arch::x86_64::*;
    let nv = n.saturating_sub(c0).min(16);
    let bits = |r: usize, j: usize| if r < k && j < nv { w[r * n + c0 + j].to_bits() } else { 0 };
    // Lane 2j takes element j of row 2r (lanes 0–15 of the pair), lane 2j+1 element j of row 2r+1 (16–31).
    let idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for r in 0..panel.len() / 32 {
        let d = &mut panel[r * 32..r * 32 + 32];
        if nv == 16 && 2 * r + 1 < k {
            let a = _mm256_loadu_si256(w.as_ptr().add(2 * r * n + c0) as *const __m256i);
            let b = _mm256_loadu_si256(w.as_ptr().add((2 * r + 1) * n + c0) as *const __m256i);
            let both = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), b);
            _mm512_storeu_si512(d.as_mut_ptr() as *mut _, _mm512_permutexvar_epi16(idx, both));
        } else {
            for j in 0..16 {
                d[2 * j] = bits(2 * r, j);
                d[2 * j + 1] = bits(2 * r + 1, j);
            }
        }
    }
}

/// AVX512_BF16 kernel: columns c0..c0+cols of y (their panels in `wp`, from index 0) for every row,
/// 12-row blocks outside so one block of x rows meets all the task's (L2-resident) panels.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn avx512bf16_cols(xb: &[u16], xs: usize, m: usize, kp: usize, wp: &[u16], c0: usize, cols: usize, n: usize, bias: Option<&[f32]>, out: SharedOut) {
    const MR: usize = 12;
    for r0 in (0..m).step_by(MR) {
        for c in (c0..c0 + cols).step_by(32) {
            // SAFETY: AVX512_BF16 checked by the caller; tasks own disjoint column ranges.
            unsafe { dp_kernel(xb, xs, kp, r0, MR.min(m - r0), &wp[((c - c0) / 16) * kp * 16..], c, n, bias, out) };
        }
    }
}

/// y[r0..r0+mv, c..c+32] (its two panels at the start of `wp`) = bias + Σ_pairs x-pair · W-pair; rows ≥ mv reread row r0 (results dropped).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn dp_kernel(xb: &[u16], xs: usize, kp: usize, r0: usize, mv: usize, wp: &[u16], c: usize, n: usize, bias: Option<&[f32]>, out: SharedOut) {
    use std::arch::x86_64::*;
    const MR: usize = 12;
    let mut rows = [std::ptr::null::<u32>(); MR];
    for (i, p) in rows.iter_mut().enumerate() {
        *p = xb.as_ptr().add((r0 + if i < mv { i } else { 0 }) * xs) as *const u32;
    }
    let p0 = wp.as_ptr();
    let p1 = p0.add(kp * 16);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for r in 0..kp / 2 {
        let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(p0.add(r * 32) as *const _));
        let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(p1.add(r * 32) as *const _));
        for (i, row) in acc.iter_mut().enumerate() {
            let a: __m512bh = std::mem::transmute(_mm512_set1_epi32(*rows[i].add(r) as i32));
            row[0] = _mm512_dpbf16_ps(row[0], a, b0);
            row[1] = _mm512_dpbf16_ps(row[1], a, b1);
        }
    }
    let nv = n - c;
    let (m0, m1) = (mask16(nv.min(16)), mask16(nv.saturating_sub(16).min(16)));
    let (bias0, bias1) = match bias {
        Some(b) => (_mm512_maskz_loadu_ps(m0, b.as_ptr().add(c)), _mm512_maskz_loadu_ps(m1, b.as_ptr().wrapping_add(c + 16))),
        None => (_mm512_setzero_ps(), _mm512_setzero_ps()),
    };
    for (i, row) in acc.iter().enumerate() {
        if i < mv {
            let yp = out.at((r0 + i) * n + c);
            _mm512_mask_storeu_ps(yp, m0, _mm512_add_ps(bias0, row[0]));
            _mm512_mask_storeu_ps(yp.wrapping_add(16), m1, _mm512_add_ps(bias1, row[1]));
        }
    }
}

/// The scalar definition both kernels must meet: bf16(x) · W in f64, plus bias.
#[cfg(test)]
pub(super) fn reference(x: &[f32], m: usize, k: usize, w: &[bf16], n: usize, bias: Option<&[f32]>) -> Vec<f64> {
    let mut y = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = bias.map_or(0.0, |b| b[j] as f64);
            for t in 0..k {
                s += bf16::from_f32(x[i * k + t]).to_f64() * w[j * k + t].to_f64();
            }
            y[i * n + j] = s;
        }
    }
    y
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::backend::cpu::precision::{bf16_support, Bf16Path};

    /// Edge shapes: partial 12/32-row blocks, partial 16/32-column panels, k odd, k not a multiple
    /// of 32, k across several tiles; m just above the GEMV's 16 rows with the decoder's k (rows 4 KiB
    /// apart: the transposing W pack, gemm_pack.rs) and k odd past it. Bound: f32 sums of exact bf16·bf16 products (each exact in f32),
    /// |error| ≤ 1e-5 · Σ|terms| + 1e-6.
    fn check(path: Bf16Path) {
        check_layout(path, WLayout::NK);
        check_layout(path, WLayout::KN);
    }

    fn check_layout(path: Bf16Path, layout: WLayout) {
        // (20, 9000, 40): above 2 · KN_CHUNK, the KN product goes in k passes (the last one partial);
        // (1100, 64, 40): x of more than 1024 rows (the 896² ViT has 3136).
        for &(m, k, n) in &[(1, 1, 1), (12, 32, 32), (13, 33, 17), (33, 70, 48), (70, 257, 100), (100, 1152, 40), (17, 2048, 33), (17, 6145, 20), (20, 9000, 40), (1100, 64, 40)] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 47.0).collect();
            let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32(((i * 53 % 89) as f32 - 44.0) / 44.0)).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
            let mut y = vec![f32::NAN; m * n];
            // The same W given [k, n]: the KN packing must give the NK result.
            let w_kn: Vec<bf16> = (0..k * n).map(|i| w[(i % n) * k + i / n]).collect();
            // W at a 64-byte boundary and 2 bytes past one: the AMX direct form reads aligned W in place
            // (when 2k is a multiple of 64) and copies misaligned W rows first; both must agree.
            let mut wa = vec![bf16::ZERO; n * k + 64];
            let base = (64 - wa.as_ptr() as usize % 64) % 64 / 2;
            let want = reference(&x, m, k, &w, n, Some(&bias));
            for shift in [0, 1] {
                y.fill(f32::NAN);
                wa[base + shift..base + shift + n * k].copy_from_slice(&w);
                let w_at = &wa[base + shift..base + shift + n * k];
                match layout {
                    WLayout::NK => gemm(path, &x, m, k, w_at, n, Some(&bias), &mut y),
                    WLayout::KN => gemm_layout(path, &x, m, k, &w_kn, n, Some(&bias), &mut y, WLayout::KN),
                }
                for i in 0..m {
                    for j in 0..n {
                        let mag: f64 = (0..k).map(|t| (bf16::from_f32(x[i * k + t]).to_f64() * w[j * k + t].to_f64()).abs()).sum::<f64>() + bias[j].abs() as f64;
                        let got = y[i * n + j] as f64;
                        assert!((got - want[i * n + j]).abs() <= 1e-5 * mag + 1e-6, "{path:?} {layout:?} m={m} k={k} n={n} W +{shift}: y[{i},{j}] = {got}, want {}", want[i * n + j]);
                    }
                }
            }
        }
    }

    #[test]
    fn avx512bf16_matches_scalar_reference() {
        if !std::arch::is_x86_feature_detected!("avx512bf16") {
            eprintln!("SKIP gemm_bf16dot::avx512bf16_matches_scalar_reference: this CPU has no AVX512_BF16");
            return;
        }
        check(Bf16Path::Avx512Bf16);
    }

    #[test]
    fn amx_matches_scalar_reference() {
        if bf16_support().path != Some(Bf16Path::Amx) {
            eprintln!("SKIP gemm_bf16dot::amx_matches_scalar_reference: {}", bf16_support().why);
            return;
        }
        check(Bf16Path::Amx);
    }

    /// The x packing rounds like half::bf16::from_f32 (nearest even) on normal values, zero-pads.
    #[test]
    fn x_packing_rounds_to_nearest_even() {
        if !std::arch::is_x86_feature_detected!("avx512bf16") {
            eprintln!("SKIP gemm_bf16dot::x_packing_rounds_to_nearest_even: this CPU has no AVX512_BF16");
            return;
        }
        let (m, k) = (3usize, 45usize);
        let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.7391).sin() * 3.0 + 1.0 / (1 + i) as f32).collect();
        let kp = k.div_ceil(KSTEP) * KSTEP;
        let mut xb = vec![7u16; MSTEP * kp];
        unsafe { pack_x(&x, m, k, kp, &mut xb) };
        for i in 0..MSTEP {
            for t in 0..kp {
                let want = if i < m && t < k { bf16::from_f32(x[i * k + t]).to_bits() } else { 0 };
                assert_eq!(xb[i * kp + t], want, "x[{i},{t}]");
            }
        }
    }
}

/// Speed of the bf16 products on the shapes the 2B model runs (`cargo test --release --lib
/// gemm_bf16dot::speed -- --ignored --nocapture`; OVIS_CPU_BF16=avx512bf16 for the other path):
/// ViT at 448² (784 rows, k 1152/4304), prefill of 128 tokens (k 2048/6144), the visual head's
/// first rows (196 × 4608 → 8192 of its 65 536 columns), the VTE product (196 × 65 536 → 2048, W [k, n]). Prints GFLOP/s of one thread, the median
/// of 5 runs, timed in the thread's CPU time (the machine is shared: wall time says little).
#[cfg(all(test, target_arch = "x86_64"))]
mod speed {
    use super::*;
    use crate::backend::cpu::precision::bf16_support;

    #[test]
    #[ignore]
    fn speed() {
        let Some(path) = bf16_support().path else {
            eprintln!("SKIP gemm_bf16dot::speed: {}", bf16_support().why);
            return;
        };
        let shapes: &[(&str, usize, usize, usize)] = &[
            ("vit qkv", 784, 1152, 3456),
            ("vit fc1", 784, 1152, 4304),
            ("vit fc1 896²", 3136, 1152, 4304),
            ("vit q 896²", 3136, 1152, 1152),
            ("vit fc2", 784, 4304, 1152),
            ("vit fc2 896²", 3136, 4304, 1152),
            ("prefill q", 128, 2048, 2048),
            ("prefill gate_up", 128, 2048, 12288),
            ("prefill down", 128, 6144, 2048),
            ("head", 196, 4608, 8192),
            ("vte (KN)", 196, 65536, 2048),
        ];
        if path == Bf16Path::Amx {
            let s = thread_cpu_s();
            crate::backend::cpu::gemm_amx::peak_probe(1 << 18);
            let t = thread_cpu_s() - s;
            eprintln!("Amx tile peak (tdpbf16ps on registers): {:.0} GFLOP/s", (1u64 << 18) as f64 * 4.0 * 16384.0 / t / 1e9);
            for mode in 0..4 {
                let s = thread_cpu_s();
                crate::backend::cpu::gemm_amx::l1_probe(1 << 15, mode);
                let t = thread_cpu_s() - s;
                eprintln!("Amx direct steps mode {mode}, operands in L1: {:.0} GFLOP/s", (1u64 << 15) as f64 * 32.0 * 16384.0 / t / 1e9);
            }
        }
        let mut total = (0f64, 0f64);
        for &(name, m, k, n) in shapes {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 47.0).collect();
            let wv: Vec<bf16> = (0..n * k + 32).map(|i| bf16::from_f32(((i * 53 % 89) as f32 - 44.0) / 440.0)).collect();
            // W's start within a cache line: SPEED_W_ALIGN=64 puts it on a line boundary (else where malloc put it).
            let shift = match std::env::var("SPEED_W_ALIGN").as_deref() {
                Ok("64") => (64 - wv.as_ptr() as usize % 64) % 64 / 2,
                _ => 0,
            };
            let w = &wv[shift..shift + n * k];
            let mut y = vec![0f32; m * n];
            // SPEED_THREADS=2: the whole pool as the engine runs it, timed in wall time (noisier).
            let threads: usize = std::env::var("SPEED_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            // SPEED_AB=order: alternate with the W-resident order of the direct form (X_RESIDENT off),
            // 9 rounds, and print both.
            let ab = std::env::var("SPEED_AB").is_ok_and(|v| v == "order");
            let mut t_w = Vec::new();
            let mut t: Vec<f64> = (0..if ab { 9 } else { 5 })
                .map(|_| {
                    pool.install(|| {
                        let layout = if name.contains("KN") { WLayout::KN } else { WLayout::NK };
                        if ab {
                            use crate::backend::cpu::gemm_amx::X_RESIDENT;
                            X_RESIDENT.store(false, std::sync::atomic::Ordering::Relaxed);
                            let (s, w0) = (thread_cpu_s(), std::time::Instant::now());
                            gemm_layout(path, &x, m, k, w, n, None, &mut y, layout);
                            t_w.push(if threads > 1 { w0.elapsed().as_secs_f64() } else { thread_cpu_s() - s });
                            X_RESIDENT.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        let (s, w0) = (thread_cpu_s(), std::time::Instant::now());
                        gemm_layout(path, &x, m, k, w, n, None, &mut y, layout);
                        if threads > 1 { w0.elapsed().as_secs_f64() } else { thread_cpu_s() - s }
                    })
                })
                .collect();
            if ab {
                t_w.sort_by(|a, b| a.partial_cmp(b).unwrap());
                t.sort_by(|a, b| a.partial_cmp(b).unwrap());
                let flop = 2.0 * (m * k * n) as f64;
                eprintln!("{path:?} {name:16} m={m:4} k={k:5} n={n:6}: x-resident {:6.0} GFLOP/s, W-resident {:6.0} ({:.2}×)", flop / t[4] / 1e9, flop / t_w[4] / 1e9, t_w[4] / t[4]);
                continue;
            }
            t.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let flop = 2.0 * (m * k * n) as f64;
            total.0 += flop;
            total.1 += t[2];
            eprintln!("{path:?} {name:16} (W at {:2} mod 64) m={m:4} k={k:5} n={n:6}: {:7.2} ms, {:6.0} GFLOP/s", w.as_ptr() as usize % 64, t[2] * 1e3, flop / t[2] / 1e9);
        }
        eprintln!("{path:?} all: {:.0} GFLOP/s", total.0 / total.1 / 1e9);
    }

    use crate::backend::cpu::profile::thread_cpu_s;
}
