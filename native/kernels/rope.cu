// rope.cu: the Qwen3 attention prologue (model-spec §7, trap 19): per-head RMSNorm of q and k, then
// rotate-half RoPE, then the KV-cache write; v is copied into the cache unchanged.
//
// qk_norm_rope_bf16
//   qkv      [L, (nH + 2·nKV)·128] bf16   output of the fused q|k|v projection (q heads, k heads, v heads)
//   q_norm, k_norm [128] bf16            one weight shared by all heads
//   inv_freq [64] f32                    1 / θ^(2j/128), computed on the host exactly as the CPU twin
//   pos0     device int                  position of row 0 (a device scalar so a captured decode graph
//                                        replays at the next position without being rebuilt)
//   q_out    [L, nH, 128] bf16           normed + rotated queries
//   k_cache, v_cache: this layer's [nKV, max_ctx, 128] bf16; row i lands at position pos0 + i
// Math as the bf16 reference: RMSNorm in f32, weight multiplied after rounding; cos/sin of the f32
// angle rounded to bf16; q·cos, rotate_half(q)·sin and their sum each rounded to bf16 (torch's bf16 ops).
// Launch: grid (L, ceil((nH + 2·nKV) / 4)), block 128: one warp per head; lane l holds elements
// 2l, 2l+1 and their rotation partners 64+2l, 64+2l+1. head_dim must be 128.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(128)
qk_norm_rope_bf16(const bf16* __restrict__ qkv, const bf16* __restrict__ q_norm, const bf16* __restrict__ k_norm,
                  const float* __restrict__ inv_freq, const int* __restrict__ pos0, bf16* __restrict__ q_out,
                  bf16* __restrict__ k_cache, bf16* __restrict__ v_cache, int L, int nH, int nKV, int max_ctx, float eps) {
    const int row = blockIdx.x, lane = threadIdx.x & 31;
    const int head = blockIdx.y * 4 + (threadIdx.x >> 5);
    const int heads = nH + 2 * nKV;
    if (row >= L || head >= heads) return;
    const int pos = *pos0 + row;
    const unsigned* src = reinterpret_cast<const unsigned*>(qkv + ((size_t)row * heads + head) * 128);
    const unsigned lo = src[lane], hi = src[32 + lane];  // elements 2l,2l+1 and 64+2l,64+2l+1
    if (head >= nH + nKV) {
        const int g = head - nH - nKV;
        unsigned* dst = reinterpret_cast<unsigned*>(v_cache + ((size_t)g * max_ctx + pos) * 128);
        dst[lane] = lo;
        dst[32 + lane] = hi;
        return;
    }
    const bool is_q = head < nH;
    float x[4] = {lo_bf(lo), hi_bf(lo), lo_bf(hi), hi_bf(hi)};
    const float ss = warp_sum(x[0] * x[0] + x[1] * x[1] + x[2] * x[2] + x[3] * x[3]);
    const float inv = rsqrtf(ss / 128.f + eps);
    const unsigned* w = reinterpret_cast<const unsigned*>(is_q ? q_norm : k_norm);
    const unsigned wlo = w[lane], whi = w[32 + lane];
    const float g[4] = {lo_bf(wlo), hi_bf(wlo), lo_bf(whi), hi_bf(whi)};
#pragma unroll
    for (int i = 0; i < 4; i++) x[i] = round_bf(g[i] * round_bf(x[i] * inv));
    float o[4];
#pragma unroll
    for (int e = 0; e < 2; e++) {
        const float a = (float)pos * inv_freq[2 * lane + e];
        const float c = round_bf(cosf(a)), s = round_bf(sinf(a));
        const float x1 = x[e], x2 = x[2 + e];
        o[e] = round_bf(round_bf(x1 * c) - round_bf(x2 * s));
        o[2 + e] = round_bf(round_bf(x2 * c) + round_bf(x1 * s));
    }
    unsigned* dst = is_q ? reinterpret_cast<unsigned*>(q_out + ((size_t)row * nH + head) * 128)
                         : reinterpret_cast<unsigned*>(k_cache + ((size_t)(head - nH) * max_ctx + pos) * 128);
    dst[lane] = pack_bf2(o[0], o[1]);
    dst[32 + lane] = pack_bf2(o[2], o[3]);
}
