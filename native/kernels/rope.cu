// rope.cu: the Qwen3 attention prologue (model-spec §7, trap 19): per-head RMSNorm of q and k, then
// rotate-half RoPE, then the KV-cache write; v is copied into the cache unchanged.
//
// qk_norm_rope_bf16_hd{16,32,64,128}: one instantiation per head width HD (the released models have
// 128, the test fixture 16); the Rust launcher picks it by AttnDims::head_dim.
//   qkv      [L, (nH + 2·nKV)·HD] bf16  output of the fused q|k|v projection (q heads, k heads, v heads)
//   q_norm, k_norm [HD] bf16           one weight shared by all heads
//   inv_freq [HD/2] f32                inv_freq[i] = 1 / θ^(2i/HD), computed on the host exactly as the
//                                      CPU twin does (so both sides rotate by the same f32 angles)
//   pos0     device int                position of row 0 (a device scalar so a captured decode graph
//                                      replays at the next position without being rebuilt)
//   q_out    [L, nH, HD] bf16          normed + rotated queries
//   k_cache, v_cache: this layer's [nKV, max_ctx, HD] bf16; row i lands at position pos0 + i
// Math as the bf16 reference (HF Qwen3RMSNorm + apply_rotary_pos_emb in bf16): RMSNorm in f32 with the
// mean over HD, the normed value rounded to bf16 before the weight multiplies it, the product rounded;
// cos/sin of the f32 angle pos·inv_freq[i] rounded to bf16; q·cos, rotate_half(q)·sin and their sum
// each rounded to bf16 (torch's bf16 ops). Rotary pairs are (i, i + HD/2) for i < HD/2.
// Launch: grid (L, ceil((nH + 2·nKV) / 4)), block 128: one warp per head. The head is read as 32-bit
// words (two bf16 each): lane l < HD/4 holds word l of each half, i.e. elements 2l, 2l+1 and their
// rotation partners HD/2 + 2l, HD/2 + 2l + 1. For HD = 128 that is every lane; for smaller heads
// lanes ≥ HD/4 hold nothing and add 0 to the sum of squares (they still take part in the full-warp
// shuffle reduction, so no lane may return before it).
// Alignment: rows start at multiples of HD·2 bytes and the second half at HD bytes, so the 32-bit
// accesses are aligned for every HD that is a multiple of 4.
#include "common.cuh"

// Row `row` of qkv (block x), at position `pos`, into caches of capacity max_ctx.
template <int HD>
__device__ __forceinline__ void qk_norm_rope_row(const bf16* __restrict__ qkv, const bf16* __restrict__ q_norm, const bf16* __restrict__ k_norm,
                                                 const float* __restrict__ inv_freq, int row, int pos, bf16* __restrict__ q_out,
                                                 bf16* __restrict__ k_cache, bf16* __restrict__ v_cache, int nH, int nKV, int max_ctx, float eps) {
    static_assert(HD % 4 == 0 && HD >= 4 && HD <= 128, "one warp covers the head: HD/4 words per half, at most 32");
    constexpr int W = HD / 4;  // 32-bit words per half head = active lanes
    const int lane = threadIdx.x & 31;
    const int head = blockIdx.y * 4 + (threadIdx.x >> 5);
    const int heads = nH + 2 * nKV;
    // Uniform per warp (row per block, head per warp): a warp leaves whole or not at all.
    if (head >= heads) return;
    const bool active = lane < W;
    const unsigned* src = reinterpret_cast<const unsigned*>(qkv + ((size_t)row * heads + head) * HD);
    // lo: elements 2l, 2l+1; hi: their partners HD/2 + 2l, HD/2 + 2l + 1 (word W + l).
    const unsigned lo = active ? src[lane] : 0u, hi = active ? src[W + lane] : 0u;
    if (head >= nH + nKV) {
        const int g = head - nH - nKV;
        unsigned* dst = reinterpret_cast<unsigned*>(v_cache + ((size_t)g * max_ctx + pos) * HD);
        if (active) {
            dst[lane] = lo;
            dst[W + lane] = hi;
        }
        return;
    }
    const bool is_q = head < nH;
    float x[4] = {lo_bf(lo), hi_bf(lo), lo_bf(hi), hi_bf(hi)};  // zeros on inactive lanes
    const float ss = warp_sum(x[0] * x[0] + x[1] * x[1] + x[2] * x[2] + x[3] * x[3]);
    if (!active) return;  // past the last shuffle: idle lanes are done
    const float inv = rsqrtf(ss / (float)HD + eps);
    const unsigned* w = reinterpret_cast<const unsigned*>(is_q ? q_norm : k_norm);
    const unsigned wlo = w[lane], whi = w[W + lane];
    const float g[4] = {lo_bf(wlo), hi_bf(wlo), lo_bf(whi), hi_bf(whi)};
#pragma unroll
    for (int i = 0; i < 4; i++) x[i] = round_bf(g[i] * round_bf(x[i] * inv));
    float o[4];
#pragma unroll
    for (int e = 0; e < 2; e++) {
        // Pair i = 2l + e < HD/2: inv_freq has exactly HD/2 entries.
        const float a = (float)pos * inv_freq[2 * lane + e];
        const float c = round_bf(cosf(a)), s = round_bf(sinf(a));
        const float x1 = x[e], x2 = x[2 + e];
        o[e] = round_bf(round_bf(x1 * c) - round_bf(x2 * s));
        o[2 + e] = round_bf(round_bf(x2 * c) + round_bf(x1 * s));
    }
    unsigned* dst = is_q ? reinterpret_cast<unsigned*>(q_out + ((size_t)row * nH + head) * HD)
                         : reinterpret_cast<unsigned*>(k_cache + ((size_t)(head - nH) * max_ctx + pos) * HD);
    dst[lane] = pack_bf2(o[0], o[1]);
    dst[W + lane] = pack_bf2(o[2], o[3]);
}

template <int HD>
__device__ __forceinline__ void qk_norm_rope(const bf16* __restrict__ qkv, const bf16* __restrict__ q_norm, const bf16* __restrict__ k_norm,
                                             const float* __restrict__ inv_freq, const int* __restrict__ pos0, bf16* __restrict__ q_out,
                                             bf16* __restrict__ k_cache, bf16* __restrict__ v_cache, int L, int nH, int nKV, int max_ctx, float eps) {
    const int row = blockIdx.x;
    if (row >= L) return;  // uniform per block
    qk_norm_rope_row<HD>(qkv, q_norm, k_norm, inv_freq, row, *pos0 + row, q_out, k_cache, v_cache, nH, nKV, max_ctx, eps);
}

// qk_norm_rope_rows_bf16_hd{16,32,64,128}: the batched decode step's prologue, one token for each of R
// requests, each at its own position and into its own cache.
//   qkv [R, (nH + 2·nKV)·HD], q_out [R, nH, HD] as above (L = R); pos, max_ctx [R] int: row r's
//   position and its cache's capacity; k_tab, v_tab [R] u64: device addresses of row r's K and V
//   cache of this layer ([nKV, max_ctx[r], HD] bf16). Row r's results equal qk_norm_rope_bf16 with
//   L = 1 at pos[r] bit for bit. Launch: grid (R, ceil((nH + 2·nKV) / 4)), block 128.
template <int HD>
__device__ __forceinline__ void qk_norm_rope_rows(const bf16* __restrict__ qkv, const bf16* __restrict__ q_norm, const bf16* __restrict__ k_norm,
                                                  const float* __restrict__ inv_freq, const int* __restrict__ pos, bf16* __restrict__ q_out,
                                                  const unsigned long long* __restrict__ k_tab, const unsigned long long* __restrict__ v_tab,
                                                  const int* __restrict__ max_ctx, int nH, int nKV, float eps) {
    const int r = blockIdx.x;
    qk_norm_rope_row<HD>(qkv, q_norm, k_norm, inv_freq, r, pos[r], q_out, reinterpret_cast<bf16*>(k_tab[r]), reinterpret_cast<bf16*>(v_tab[r]), nH, nKV,
                         max_ctx[r], eps);
}

// The instantiations: one extern "C" entry per supported head width (names listed in kernels.rs).
#define QK_NORM_ROPE_PARAMS                                                                                                     \
    const bf16 *__restrict__ qkv, const bf16 *__restrict__ q_norm, const bf16 *__restrict__ k_norm,                             \
        const float *__restrict__ inv_freq, const int *__restrict__ pos0, bf16 *__restrict__ q_out, bf16 *__restrict__ k_cache, \
        bf16 *__restrict__ v_cache, int L, int nH, int nKV, int max_ctx, float eps
#define QK_NORM_ROPE_ARGS qkv, q_norm, k_norm, inv_freq, pos0, q_out, k_cache, v_cache, L, nH, nKV, max_ctx, eps

extern "C" __global__ void __launch_bounds__(128) qk_norm_rope_bf16_hd16(QK_NORM_ROPE_PARAMS) { qk_norm_rope<16>(QK_NORM_ROPE_ARGS); }
extern "C" __global__ void __launch_bounds__(128) qk_norm_rope_bf16_hd32(QK_NORM_ROPE_PARAMS) { qk_norm_rope<32>(QK_NORM_ROPE_ARGS); }
extern "C" __global__ void __launch_bounds__(128) qk_norm_rope_bf16_hd64(QK_NORM_ROPE_PARAMS) { qk_norm_rope<64>(QK_NORM_ROPE_ARGS); }
extern "C" __global__ void __launch_bounds__(128) qk_norm_rope_bf16_hd128(QK_NORM_ROPE_PARAMS) { qk_norm_rope<128>(QK_NORM_ROPE_ARGS); }

#define QK_NORM_ROPE_ROWS_PARAMS                                                                                                      \
    const bf16 *__restrict__ qkv, const bf16 *__restrict__ q_norm, const bf16 *__restrict__ k_norm, const float *__restrict__ inv_freq, \
        const int *__restrict__ pos, bf16 *__restrict__ q_out, const unsigned long long *__restrict__ k_tab,                          \
        const unsigned long long *__restrict__ v_tab, const int *__restrict__ max_ctx, int nH, int nKV, float eps
#define QK_NORM_ROPE_ROWS_ARGS qkv, q_norm, k_norm, inv_freq, pos, q_out, k_tab, v_tab, max_ctx, nH, nKV, eps

extern "C" __global__ void __launch_bounds__(128) qk_norm_rope_rows_bf16_hd16(QK_NORM_ROPE_ROWS_PARAMS) { qk_norm_rope_rows<16>(QK_NORM_ROPE_ROWS_ARGS); }
extern "C" __global__ void __launch_bounds__(128) qk_norm_rope_rows_bf16_hd32(QK_NORM_ROPE_ROWS_PARAMS) { qk_norm_rope_rows<32>(QK_NORM_ROPE_ROWS_ARGS); }
extern "C" __global__ void __launch_bounds__(128) qk_norm_rope_rows_bf16_hd64(QK_NORM_ROPE_ROWS_PARAMS) { qk_norm_rope_rows<64>(QK_NORM_ROPE_ROWS_ARGS); }
extern "C" __global__ void __launch_bounds__(128) qk_norm_rope_rows_bf16_hd128(QK_NORM_ROPE_ROWS_PARAMS) { qk_norm_rope_rows<128>(QK_NORM_ROPE_ROWS_ARGS); }
