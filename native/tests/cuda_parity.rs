//! Every CUDA kernel against its CPU twin (backend/cpu, generate::sampler) on random inputs, with the
//! tolerance each comparison states. Every test is ignored by a plain `cargo test` (it needs a GPU);
//! scripts/gpu-check.sh runs them on a GPU machine, and `npm test` on the fake GPU
//! (native/tests/emu/fakegpu, the kernels emulated on the CPU). NOT YET RUN ON A REAL GPU.
//! Error measure: max |gpu − cpu| / max |cpu| over the output (bf16 keeps 8 significant bits: ~4e-3).
use half::bf16;
use ovis_engine::backend::cpu::{attention, matmul, norm, rope, vision_ops};
use ovis_engine::backend::cuda::blas::Blas;
use ovis_engine::backend::cuda::device::{ptr, Gpu};
use ovis_engine::backend::cuda::ops::{self, AttnDims};
use ovis_engine::backend::cuda::sampling;
use ovis_engine::generate::sampler::{Rng, Sampler, SamplingParams};
use std::sync::{Mutex, MutexGuard, OnceLock};
mod skip;

/// The GPU, opened once; None when this machine has none (skip.rs: skipped, or a failure under
/// OVIS_REQUIRE_GPU=1).
fn gpu(test: &str) -> Option<(&'static Gpu, MutexGuard<'static, ()>)> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    if !skip::gpu_present(test) {
        return None;
    }
    let g = GPU.get_or_init(|| Some(Gpu::open(0).unwrap_or_else(|e| panic!("a GPU is present but could not be opened: {e}"))));
    g.as_ref().map(|g| (g, ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())))
}

/// Values uniform in ±scale, rounded to bf16 (so both backends see the same inputs).
fn randn(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| bf16::from_f32(((r.next_f64() * 2.0 - 1.0) as f32) * scale).to_f32()).collect()
}

fn bits(v: &[f32]) -> Vec<u16> {
    v.iter().map(|&x| bf16::from_f32(x).to_bits()).collect()
}

fn up(g: &Gpu, v: &[f32]) -> cudarc::driver::CudaSlice<u16> {
    g.upload(&bits(v)).unwrap()
}

fn down(g: &Gpu, s: &cudarc::driver::CudaSlice<u16>) -> Vec<f32> {
    g.sync().unwrap();
    g.download(s).unwrap().into_iter().map(|b| bf16::from_bits(b).to_f32()).collect()
}

fn p<T>(g: &Gpu, s: &cudarc::driver::CudaSlice<T>) -> u64 {
    ptr(s, &g.stream)
}

fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], tol: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths differ");
    let scale = cpu.iter().fold(0f32, |a, &b| a.max(b.abs())).max(1e-6);
    let (mut worst, mut at) = (0f32, 0);
    for (i, (a, b)) in gpu.iter().zip(cpu).enumerate() {
        let e = (a - b).abs();
        if e > worst || e.is_nan() {
            worst = e;
            at = i;
        }
    }
    eprintln!("{what}: max error {:.2e} of scale {scale:.3} (at {at})", worst / scale);
    assert!(worst / scale <= tol, "{what}: error {:.3e} > {tol:.1e} at {at}: gpu {} cpu {}", worst / scale, gpu[at], cpu[at]);
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn rmsnorm_and_fused_residual_match_the_cpu() {
    let Some((g, _l)) = gpu("rmsnorm_and_fused_residual_match_the_cpu") else { return };
    let (rows, dim) = (5, 2048);
    let (x, d, w) = (randn(1, rows * dim, 2.0), randn(2, rows * dim, 1.0), randn(3, dim, 1.5));
    let mut want = vec![0f32; rows * dim];
    norm::rms_norm(&x, &w, 1e-6, &mut want);
    let (xs, ws, ys) = (up(g, &x), up(g, &w), g.zeros::<u16>(rows * dim).unwrap());
    ops::rmsnorm(g, p(g, &xs), p(g, &ws), p(g, &ys), rows, dim, 1e-6).unwrap();
    assert_close("rmsnorm_bf16", &down(g, &ys), &want, 1e-2);
    let mut h = x.clone();
    norm::add_inplace(&mut h, &d);
    norm::rms_norm(&h, &w, 1e-6, &mut want);
    let ds = up(g, &d);
    ops::rmsnorm_residual(g, p(g, &xs), p(g, &ds), p(g, &ws), p(g, &ys), rows, dim, 1e-6).unwrap();
    assert_close("rmsnorm_residual_bf16 (h)", &down(g, &xs), &h, 1e-2);
    assert_close("rmsnorm_residual_bf16 (y)", &down(g, &ys), &want, 1e-2);
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn layernorm_matches_the_cpu_for_vit_and_head_widths() {
    let Some((g, _l)) = gpu("layernorm_matches_the_cpu_for_vit_and_head_widths") else { return };
    for (rows, dim, eps) in [(7, 1152, 1e-6), (3, 65532, 1e-5)] {
        let (x, gm, bt) = (randn(4, rows * dim, 3.0), randn(5, dim, 1.0), randn(6, dim, 0.5));
        let mut want = x.clone();
        vision_ops::layer_norm(&mut want, dim, &gm, &bt, eps);
        let (xs, gs, bs) = (up(g, &x), up(g, &gm), up(g, &bt));
        ops::layernorm(g, p(g, &xs), p(g, &gs), p(g, &bs), p(g, &xs), rows, dim, eps as f32).unwrap();
        assert_close(&format!("layernorm_bf16 dim {dim}"), &down(g, &xs), &want, 1e-2);
    }
}

/// LLM attention shapes (query heads, kv heads, head_dim) the rope and attention tests run: the test
/// fixture (head_dim 16), every other kernel instantiation, the released 2B (16/8) and 9B (32/8)
/// models, and the largest GQA group a decode block serves (8).
const LLM_SHAPES: [(usize, usize, usize); 5] = [(4, 2, 16), (8, 1, 32), (12, 3, 64), (16, 8, 128), (32, 8, 128)];

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn qk_norm_rope_writes_queries_and_the_cache_like_the_cpu() {
    let Some((g, _l)) = gpu("qk_norm_rope_writes_queries_and_the_cache_like_the_cpu") else { return };
    for (nh, nkv, hd) in LLM_SHAPES {
        qk_norm_rope_case(g, nh, nkv, hd);
    }
}

fn qk_norm_rope_case(g: &Gpu, nh: usize, nkv: usize, hd: usize) {
    let (len, max_ctx, start) = (3, 64, 37);
    let width = (nh + 2 * nkv) * hd;
    let (qkv, qn, kn) = (randn(7 + hd as u64, len * width, 2.0), randn(8 + hd as u64, hd, 1.0), randn(9 + hd as u64, hd, 1.0));
    let (mut q, mut k, mut v) = (Vec::new(), Vec::new(), Vec::new());
    for r in qkv.chunks(width) {
        q.extend_from_slice(&r[..nh * hd]);
        k.extend_from_slice(&r[nh * hd..(nh + nkv) * hd]);
        v.extend_from_slice(&r[(nh + nkv) * hd..]);
    }
    norm::rms_norm_inplace(&mut q, &qn, 1e-6);
    norm::rms_norm_inplace(&mut k, &kn, 1e-6);
    let rp = rope::Rope::new(hd, 1e6, start, len);
    rp.apply(&mut q, nh);
    rp.apply(&mut k, nkv);
    let inv: Vec<f32> = (0..hd / 2).map(|j| 1.0 / (1e6f32).powf((2 * j) as f32 / hd as f32)).collect();
    let (qkvs, qns, kns, invs, pos) = (up(g, &qkv), up(g, &qn), up(g, &kn), g.upload(&inv).unwrap(), g.upload(&[start as i32]).unwrap());
    let (qo, kc, vc) = (g.zeros::<u16>(len * nh * hd).unwrap(), g.zeros::<u16>(nkv * max_ctx * hd).unwrap(), g.zeros::<u16>(nkv * max_ctx * hd).unwrap());
    let dims = AttnDims { heads: nh, kv_heads: nkv, max_ctx, head_dim: hd };
    ops::qk_norm_rope(g, p(g, &qkvs), p(g, &qns), p(g, &kns), p(g, &invs), p(g, &pos), p(g, &qo), p(g, &kc), p(g, &vc), len, dims, 1e-6).unwrap();
    let what = format!("qk_norm_rope_bf16_hd{hd} ({nh}/{nkv} heads)");
    assert_close(&format!("{what} q"), &down(g, &qo), &q, 2e-2);
    let (kd, vd) = (down(g, &kc), down(g, &vc));
    let cache_rows = |c: &[f32]| -> Vec<f32> { (0..len).flat_map(|i| (0..nkv).flat_map(move |h| (0..hd).map(move |d| (h, i, d)))).map(|(h, i, d)| c[(h * max_ctx + start + i) * hd + d]).collect() };
    assert_close(&format!("{what} k cache"), &cache_rows(&kd), &k, 2e-2);
    assert_close(&format!("{what} v cache"), &cache_rows(&vd), &v, 0.0);
    // Nothing but the L rows at start.. was written (a lane of a small head must not write past it).
    let untouched = |c: &[f32]| (0..nkv).all(|h| (0..max_ctx).filter(|t| !(start..start + len).contains(t)).all(|t| c[(h * max_ctx + t) * hd..][..hd].iter().all(|&x| x == 0.0)));
    assert!(untouched(&kd) && untouched(&vd), "{what}: cache rows outside the new positions were written");
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn unsupported_head_widths_fail_before_launching() {
    let Some((g, _l)) = gpu("unsupported_head_widths_fail_before_launching") else { return };
    let dims = AttnDims { heads: 4, kv_heads: 2, max_ctx: 64, head_dim: 96 };
    assert!(ops::qk_norm_rope(g, 0, 0, 0, 0, 0, 0, 0, 0, 1, dims, 1e-6).is_err());
    assert!(ops::decode_attention(g, 0, 0, 0, 0, 0, 0, 0, dims, 4).is_err());
    assert!(ops::prefill_attention(g, 0, 0, 0, 0, 0, 1, dims).is_err());
    assert!(ops::segment_attention(g, 0, 0, 0, 1, 2, 36).is_err());
    let wide_group = AttnDims { heads: 32, kv_heads: 2, max_ctx: 64, head_dim: 128 };
    assert!(ops::decode_attention(g, 0, 0, 0, 0, 0, 0, 0, wide_group, 4).is_err());
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn elementwise_kernels_match_the_cpu() {
    let Some((g, _l)) = gpu("elementwise_kernels_match_the_cpu") else { return };
    let (len, inter) = (3, 6144);
    let gu = randn(10, len * 2 * inter, 4.0);
    let (mut gate, mut upv) = (Vec::new(), Vec::new());
    for r in gu.chunks(2 * inter) {
        gate.extend_from_slice(&r[..inter]);
        upv.extend_from_slice(&r[inter..]);
    }
    norm::swiglu(&mut gate, &upv);
    let (gus, out) = (up(g, &gu), g.zeros::<u16>(len * inter).unwrap());
    ops::swiglu(g, p(g, &gus), p(g, &out), len, inter).unwrap();
    assert_close("swiglu_bf16", &down(g, &out), &gate, 1e-2);
    let x = randn(11, 4 * 4304, 5.0);
    let mut want = x.clone();
    vision_ops::gelu_tanh(&mut want);
    let xs = up(g, &x);
    ops::gelu_tanh(g, p(g, &xs), x.len()).unwrap();
    assert_close("gelu_tanh_bf16", &down(g, &xs), &want, 1e-2);
    let (a, b) = (randn(12, 4096, 3.0), randn(13, 4096, 3.0));
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    let (as_, bs) = (up(g, &a), up(g, &b));
    ops::add(g, p(g, &as_), p(g, &bs), a.len()).unwrap();
    assert_close("add_bf16", &down(g, &as_), &want, 1e-2);
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn embedding_gather_copies_rows() {
    let Some((g, _l)) = gpu("embedding_gather_copies_rows") else { return };
    let (vocab, h) = (50, 2048);
    let table = randn(14, vocab * h, 1.0);
    let ids = [3i32, 0, 49, 17];
    let want: Vec<f32> = ids.iter().flat_map(|&i| table[i as usize * h..(i as usize + 1) * h].to_vec()).collect();
    let (ts, is, out) = (up(g, &table), g.upload(&ids).unwrap(), g.zeros::<u16>(ids.len() * h).unwrap());
    ops::embedding_gather(g, p(g, &is), p(g, &ts), p(g, &out), ids.len(), h, vocab).unwrap();
    assert_close("embedding_gather_bf16", &down(g, &out), &want, 0.0);
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn vision_rope_and_position_embedding_match_the_cpu() {
    let Some((g, _l)) = gpu("vision_rope_and_position_embedding_match_the_cpu") else { return };
    let (heads, hd, side, d) = (16, 72, 32, 1152);
    let (gh, gw) = (6, 10);
    let pos: Vec<(usize, usize)> = (0..gh).flat_map(|y| (0..gw).map(move |x| (y, x))).collect();
    let n = pos.len();
    let qkv = randn(15, n * 3 * d, 2.0);
    let (cos, sin) = vision_ops::rope2d_tables(&pos, hd);
    let (mut q, mut k): (Vec<f32>, Vec<f32>) = (qkv.chunks(3 * d).flat_map(|r| r[..d].to_vec()).collect(), qkv.chunks(3 * d).flat_map(|r| r[d..2 * d].to_vec()).collect());
    vision_ops::apply_rope(&mut q, heads, hd, &cos, &sin);
    vision_ops::apply_rope(&mut k, heads, hd, &cos, &sin);
    let pos4: Vec<[i32; 4]> = pos.iter().map(|&(y, x)| [y as i32, x as i32, gh as i32, gw as i32]).collect();
    let (qs, ps) = (up(g, &qkv), g.upload(&pos4.concat()).unwrap());
    ops::vision_rope2d(g, p(g, &qs), p(g, &ps), n, heads, hd).unwrap();
    let got = down(g, &qs);
    assert_close("vision_rope2d_bf16 q", &got.chunks(3 * d).flat_map(|r| r[..d].to_vec()).collect::<Vec<_>>(), &q, 1e-2);
    assert_close("vision_rope2d_bf16 k", &got.chunks(3 * d).flat_map(|r| r[d..2 * d].to_vec()).collect::<Vec<_>>(), &k, 1e-2);
    let table = randn(16, side * side * d, 1.0);
    let x = randn(17, n * d, 1.0);
    let pe = vision_ops::bicubic_resize(&table, side, d, gh, gw);
    let want: Vec<f32> = (0..n * d).map(|i| x[i] + pe[(pos[i / d].0 * gw + pos[i / d].1) * d + i % d]).collect();
    let (xs, ts) = (up(g, &x), up(g, &table));
    ops::pos_embed_bicubic(g, p(g, &xs), p(g, &ts), p(g, &ps), n, d, side).unwrap();
    assert_close("pos_embed_bicubic_bf16", &down(g, &xs), &want, 1e-2);
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn head_softmax_pads_zero_columns() {
    let Some((g, _l)) = gpu("head_softmax_pads_zero_columns") else { return };
    let (rows, cols, stride) = (3, 65532, 65536);
    let x = randn(18, rows * cols, 8.0);
    let mut want = x.clone();
    vision_ops::softmax_rows(&mut want, cols);
    let want: Vec<f32> = want.chunks(cols).flat_map(|r| r.iter().copied().chain([0.0; 4])).collect();
    let (xs, ys) = (up(g, &x), g.zeros::<u16>(rows * stride).unwrap());
    ops::softmax_rows(g, p(g, &xs), p(g, &ys), rows, cols, stride).unwrap();
    assert_close("softmax_rows_bf16", &down(g, &ys), &want, 1e-2);
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn gemv_and_cublaslt_match_the_cpu_matmul() {
    let Some((g, _l)) = gpu("gemv_and_cublaslt_match_the_cpu_matmul") else { return };
    let (n, k) = (1000, 2048);
    let (w, x, res) = (randn(19, n * k, 0.05), randn(20, k, 1.0), randn(21, n, 1.0));
    let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
    let mut want = vec![0f32; n];
    matmul::matmul_bf16(&x, 1, k, &wb, n, None, &mut want);
    let (ws, xs, rs, ys) = (up(g, &w), up(g, &x), up(g, &res), g.zeros::<u16>(n).unwrap());
    ops::gemv(g, p(g, &ws), p(g, &xs), 0, p(g, &ys), n, k).unwrap();
    assert_close("gemv_bf16", &down(g, &ys), &want, 1e-2);
    ops::gemv(g, p(g, &ws), p(g, &xs), p(g, &rs), p(g, &rs), n, k).unwrap();
    let with_res: Vec<f32> = want.iter().zip(&res).map(|(a, b)| a + b).collect();
    assert_close("gemv_bf16 + residual", &down(g, &rs), &with_res, 1e-2);
    // The lm_head variant keeps f32: only the summation order differs from the CPU.
    let yf = g.zeros::<f32>(n).unwrap();
    ops::gemv_logits(g, p(g, &ws), p(g, &xs), p(g, &yf), n, k).unwrap();
    g.sync().unwrap();
    assert_close("gemv_logits_f32", &g.download(&yf).unwrap(), &want, 1e-5);

    let blas = Blas::new(g).unwrap();
    let (m, n, k) = (67, 300, 256);
    let (x, w, b) = (randn(22, m * k, 1.0), randn(23, n * k, 0.1), randn(24, n, 0.5));
    let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
    let mut want = vec![0f32; m * n];
    matmul::matmul_bf16(&x, m, k, &wb, n, Some(&b), &mut want);
    let (xs, ws, bs, ys) = (up(g, &x), up(g, &w), up(g, &b), g.zeros::<u16>(m * n).unwrap());
    blas.linear(g, p(g, &xs), p(g, &ws), Some(p(g, &bs)), p(g, &ys), m, n, k).unwrap();
    assert_close("cuBLASLt linear + bias", &down(g, &ys), &want, 1e-2);
    let wkn = randn(25, k * n, 0.1);
    let wknb: Vec<bf16> = wkn.iter().map(|&v| bf16::from_f32(v)).collect();
    vision_ops::matmul_nn_bf16(&x, m, k, &wknb, n, &mut want);
    let wks = up(g, &wkn);
    blas.matmul_kn(g, p(g, &xs), p(g, &wks), p(g, &ys), m, n, k).unwrap();
    assert_close("cuBLASLt x·W[k,n]", &down(g, &ys), &want, 1e-2);
}

/// A KV cache [nKV, max_ctx, hd] on the device from CPU-layout k, v [ctx, nKV, hd].
fn cache_from(g: &Gpu, kv: &[f32], ctx: usize, nkv: usize, hd: usize, max_ctx: usize) -> cudarc::driver::CudaSlice<u16> {
    let mut c = vec![0f32; nkv * max_ctx * hd];
    for t in 0..ctx {
        for h in 0..nkv {
            c[(h * max_ctx + t) * hd..][..hd].copy_from_slice(&kv[(t * nkv + h) * hd..][..hd]);
        }
    }
    up(g, &c)
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn decode_and_prefill_attention_match_the_cpu() {
    let Some((g, _l)) = gpu("decode_and_prefill_attention_match_the_cpu") else { return };
    for (nh, nkv, hd) in LLM_SHAPES {
        attention_case(g, nh, nkv, hd);
    }
}

fn attention_case(g: &Gpu, nh: usize, nkv: usize, hd: usize) {
    let max_ctx = 2048;
    let shape = attention::AttnShape { heads: nh, kv_heads: nkv, head_dim: hd };
    let dims = AttnDims { heads: nh, kv_heads: nkv, max_ctx, head_dim: hd };
    // Decode at ctx 1000 (every split busy, the last tile of each partial) and at ctx 6 (10 of the 16
    // splits empty); prefill across tiles of 32 with and without a cached prefix.
    for (start, len, seed) in [(999usize, 1usize, 30u64), (5, 1, 33), (40, 70, 31), (0, 33, 32)] {
        let ctx = start + len;
        let (k, v, q) = (randn(seed, ctx * nkv * hd, 2.0), randn(seed + 100, ctx * nkv * hd, 1.0), randn(seed + 200, len * nh * hd, 2.0));
        let mut want = vec![0f32; len * nh * hd];
        attention::causal_attention(&q, start, &k, &v, shape, &mut want);
        let (kc, vc, qs, pos) = (cache_from(g, &k, ctx, nkv, hd, max_ctx), cache_from(g, &v, ctx, nkv, hd, max_ctx), up(g, &q), g.upload(&[start as i32]).unwrap());
        let out = g.zeros::<u16>(len * nh * hd).unwrap();
        let what = format!("hd{hd} ({nh}/{nkv} heads)");
        if len == 1 {
            let splits = 16;
            let (po, pm) = (g.zeros::<f32>(nh * splits * hd).unwrap(), g.zeros::<f32>(nh * splits * 2).unwrap());
            ops::decode_attention(g, p(g, &qs), p(g, &kc), p(g, &vc), p(g, &pos), p(g, &po), p(g, &pm), p(g, &out), dims, splits).unwrap();
            assert_close(&format!("decode_attention_bf16_{what} ctx {ctx}"), &down(g, &out), &want, 1e-2);
        }
        // Both kernel families: the tensor-core one (attention_mma.cu, the default) and the FMA one.
        for (mma, kind) in [(true, "prefill_attention_mma_bf16"), (false, "prefill_attention_bf16")] {
            ops::prefill_attention_with(g, p(g, &qs), p(g, &kc), p(g, &vc), p(g, &out), p(g, &pos), len, dims, mma).unwrap();
            assert_close(&format!("{kind}_{what} start {start} len {len}"), &down(g, &out), &want, 1e-2);
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn segment_attention_keeps_segments_apart() {
    let Some((g, _l)) = gpu("segment_attention_keeps_segments_apart") else { return };
    // The test fixture's ViT (2 heads of 24), every other instantiation, the released ViT (16 × 72).
    for (heads, hd) in [(2usize, 24usize), (3, 32), (4, 64), (16, 72), (2, 80)] {
        let d = heads * hd;
        // Segments shorter than, equal to and longer than both tile sizes (32 and 64 queries).
        let segs = [(0usize, 100usize), (100, 37), (137, 64), (201, 5), (206, 131)];
        let n = 337;
        let qkv = randn(40 + hd as u64, n * 3 * d, 2.0);
        let part = |c: usize| -> Vec<f32> { qkv.chunks(3 * d).flat_map(|r| r[c * d..(c + 1) * d].to_vec()).collect() };
        let mut want = vec![0f32; n * d];
        vision_ops::segment_attention(&part(0), &part(1), &part(2), n, heads, hd, &segs, &mut want);
        for (mma, rows, kind) in [(true, ops::MMA_ROWS, "segment_attention_mma_bf16"), (false, ops::FMA_ROWS, "segment_attention_bf16")] {
            let tiles = ops::segment_tiles_of(&segs, rows);
            let (qs, ts, out) = (up(g, &qkv), g.upload(&tiles.concat()).unwrap(), g.zeros::<u16>(n * d).unwrap());
            ops::segment_attention_with(g, p(g, &qs), p(g, &out), p(g, &ts), tiles.len(), heads, hd, mma).unwrap();
            assert_close(&format!("{kind}_hd{hd} ({heads} heads)"), &down(g, &out), &want, 1e-2);
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn device_sampling_picks_what_the_cpu_sampler_picks() {
    let Some((g, _l)) = gpu("device_sampling_picks_what_the_cpu_sampler_picks") else { return };
    let vocab = 151_936;
    let history = [5u32, 77, 151_000];
    for (seed, t, k, tp) in [(1u64, 0.0f32, 0usize, 1.0f32), (2, 0.7, 50, 0.9), (3, 1.0, 0, 0.8), (4, 0.6, 20, 1.0)] {
        let logits = randn(50 + seed, vocab, 12.0);
        let params = SamplingParams { temperature: t, top_k: k, top_p: tp, repetition_penalty: 1.05, seed };
        let mut z = logits.clone();
        let cpu = Sampler::new(params).sample(&mut z, &history, 5);
        let mut seen = vec![0u8; vocab];
        history.iter().for_each(|&i| seen[i as usize] = 1);
        let dp = sampling::SampleParams { temperature: t, top_k: k as i32, top_p: tp, rep_penalty: 1.05, u: Rng::new(seed).next_f64(), top_n: 5, vocab: vocab as i32 };
        let (ls, ss, zs) = (g.upload(&logits).unwrap(), g.upload(&seen).unwrap(), g.zeros::<f32>(vocab).unwrap());
        let (ps, rs, next) = (g.upload(&[dp]).unwrap(), g.zeros::<sampling::SampleResult>(1).unwrap(), g.zeros::<i32>(1).unwrap());
        sampling::logits_penalty(g, p(g, &ls), p(g, &ss), p(g, &zs), p(g, &ps), vocab).unwrap();
        sampling::sample(g, p(g, &zs), p(g, &ps), p(g, &rs), p(g, &ss), p(g, &next)).unwrap();
        g.sync().unwrap();
        let r = g.download(&rs).unwrap()[0];
        assert_eq!(r.id as u32, cpu.id, "seed {seed}: device picked {} where the CPU sampler picked {}", r.id, cpu.id);
        assert!((r.logprob - cpu.logprob).abs() < 1e-4, "seed {seed}: logprob {} vs {}", r.logprob, cpu.logprob);
        let top = r.top();
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), cpu.top.iter().map(|t| t.0).collect::<Vec<_>>(), "seed {seed}: top ids");
        assert_eq!(g.download(&next).unwrap()[0], r.id);
        assert_eq!(g.download(&ss).unwrap()[r.id as usize], 1);
    }
}

/// The decode step's fused GEMVs (gemv.cu) equal the unfused kernel sequences bit for bit: the same
/// roundings in the same order, only fewer launches.
#[test]
#[ignore = "needs a CUDA GPU (runs with --include-ignored: scripts/gpu-check.sh, npm run test:fakegpu)"]
fn fused_decode_gemvs_equal_the_unfused_kernels() {
    let Some((g, _l)) = gpu("fused_decode_gemvs_equal_the_unfused_kernels") else { return };
    for (n, k) in [(3072usize, 2048usize), (1000, 4096), (40, 32)] {
        let (w, h, d, nw) = (randn(60, n * k, 0.05), randn(61, k, 1.0), randn(62, k, 1.0), randn(63, k, 1.0));
        let (ws, hs, ds, nws) = (up(g, &w), up(g, &h), up(g, &d), up(g, &nw));
        let eps = 1e-6f32;
        // Unfused: h2 = h + d (in place on a copy), a = rmsnorm(h2), y = W·a.
        let (h2, a, y_ref) = (up(g, &h), g.zeros::<u16>(k).unwrap(), g.zeros::<u16>(n).unwrap());
        ops::rmsnorm_residual(g, p(g, &h2), p(g, &ds), p(g, &nws), p(g, &a), 1, k, eps).unwrap();
        ops::gemv(g, p(g, &ws), p(g, &a), 0, p(g, &y_ref), n, k).unwrap();
        let (h_out, y) = (g.zeros::<u16>(k).unwrap(), g.zeros::<u16>(n).unwrap());
        ops::gemv_rmsnorm(g, p(g, &ws), p(g, &hs), p(g, &ds), p(g, &nws), p(g, &h_out), p(g, &y), n, k, eps).unwrap();
        assert_eq!(down(g, &y), down(g, &y_ref), "gemv_rmsnorm_bf16 {n}×{k}");
        assert_eq!(down(g, &h_out), down(g, &h2), "gemv_rmsnorm_bf16 {n}×{k}: the updated residual");
        // Without a residual: rmsnorm alone.
        ops::rmsnorm(g, p(g, &hs), p(g, &nws), p(g, &a), 1, k, eps).unwrap();
        ops::gemv(g, p(g, &ws), p(g, &a), 0, p(g, &y_ref), n, k).unwrap();
        ops::gemv_rmsnorm(g, p(g, &ws), p(g, &hs), 0, p(g, &nws), 0, p(g, &y), n, k, eps).unwrap();
        assert_eq!(down(g, &y), down(g, &y_ref), "gemv_rmsnorm_bf16 {n}×{k} without delta");
    }
    for (n, k) in [(2048usize, 6144usize), (32, 96)] {
        let (w, gu) = (randn(64, n * k, 0.05), randn(65, 2 * k, 3.0));
        let (ws, gus, m, y_ref, y) = (up(g, &w), up(g, &gu), g.zeros::<u16>(k).unwrap(), g.zeros::<u16>(n).unwrap(), g.zeros::<u16>(n).unwrap());
        ops::swiglu(g, p(g, &gus), p(g, &m), 1, k).unwrap();
        ops::gemv(g, p(g, &ws), p(g, &m), 0, p(g, &y_ref), n, k).unwrap();
        ops::gemv_swiglu(g, p(g, &ws), p(g, &gus), p(g, &y), n, k).unwrap();
        assert_eq!(down(g, &y), down(g, &y_ref), "gemv_swiglu_bf16 {n}×{k}");
    }
}
