// decode_attention.cu: one new token's attention over the KV cache (model-spec §7), flash-decoding:
// the keys are cut into S splits, each block reduces its split with an online softmax, and a second
// kernel merges the splits. GQA: the G = nH / nKV query heads that share a kv head are served by one
// block, so each key and value row is read from memory once per step.
//
// Both kernels are instantiated per head width HD ∈ {16, 32, 64, 128} (suffix _hd16 … _hd128; the
// released models have 128, the test fixture 16); the Rust launcher picks them by AttnDims::head_dim.
//
// decode_attention_bf16_hd{16,32,64,128}
//   q        [nH, HD] bf16         this token's normed + rotated queries (q_out of qk_norm_rope)
//   k_cache, v_cache [nKV, max_ctx, HD] bf16, this layer; the token itself was written at *pos
//   pos      device int            position of the token: keys 0..*pos are attended (ctx = *pos + 1)
//   part_o   [nH, S, HD] f32       each split's softmax-normalised output
//   part_ml  [nH, S, 2] f32        each split's (max score, Σ exp) for the merge; (−inf, 0) if empty
//   scale    1/√HD; G = nH / nKV ≤ 8 (the launcher checks)
// Launch: grid (nKV, S), block 128 (4 warps). A key row of HD bf16 is HD/8 16-byte vectors, so
//   LPK = HD/8 adjacent lanes (2, 4, 8 or 16) read one key and own 8 of its dims each; the block is
//   NGRP = 128/LPK such lane groups (64, 32, 16 or 8), i.e. NGRP keys per pass. Keys go in tiles of 64
//   (a multiple of every NGRP, so all groups run the same number of passes and every lane reaches each
//   shuffle): group `grp` computes the dot products of keys grp, grp + NGRP, … with all G heads,
//   reduced over its LPK lanes by xor shuffles with offsets < LPK (full-warp masks: the groups are
//   aligned runs of LPK lanes, so an xor never leaves its group); then each thread keeps 8 output dims ×
//   G heads and streams V rows the same way. At the end the NGRP groups' partial outputs are summed
//   through shared memory (NGRP·HD = 1024 floats for every HD). S is fixed per model so that a
//   captured decode graph serves every context length; splits past the context exit at once.
//   Alignment: key rows start at multiples of HD·2 bytes (≥ 32), so the 16-byte loads are aligned.
//   Shared memory: qs 8·HD + ps 8·64 + red 1024 + 24 floats: 10 336 bytes at HD 128, less below.
//
// decode_attention_combine_bf16_hd{16,32,64,128}
//   out[h, d] = bf16(Σ_s w_s·o_s[d] / Σ_s w_s), w_s = l_s·exp(m_s − max m) over splits with l_s > 0
//   part_o, part_ml as above, out [nH, HD] bf16. Launch: grid nH, block HD (one thread per dim).
#include "common.cuh"

#define DA_TILE 64
#define DA_MAXG 8

template <int HD>
__device__ __forceinline__ void decode_attention(const bf16* __restrict__ q, const bf16* __restrict__ k_cache, const bf16* __restrict__ v_cache,
                                                 const int* __restrict__ pos, float* __restrict__ part_o, float* __restrict__ part_ml,
                                                 int nH, int nKV, int max_ctx, int S, float scale) {
    static_assert(HD % 8 == 0 && HD >= 16 && HD <= 128 && (HD & (HD - 1)) == 0, "HD/8 lanes per key must divide 32");
    constexpr int LPK = HD / 8;      // lanes per key row
    constexpr int NGRP = 128 / LPK;  // lane groups per block = keys per pass
    static_assert(DA_TILE % NGRP == 0, "every group must make the same number of passes over a tile");
    __shared__ float qs[DA_MAXG][HD];
    __shared__ float ps[DA_MAXG][DA_TILE];
    __shared__ float m_s[DA_MAXG], l_s[DA_MAXG], alpha_s[DA_MAXG];
    __shared__ float red[NGRP][HD];
    const int g = blockIdx.x, split = blockIdx.y, G = nH / nKV;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int ctx = *pos + 1;
    const int chunk = (ctx + S - 1) / S;
    const int k0 = split * chunk, k1 = min(ctx, k0 + chunk);
    if (k0 >= k1) {  // uniform over the block, before any barrier
        if (tid < G) {
            const int h = g * G + tid;
            part_ml[(h * S + split) * 2] = -OVIS_INF;
            part_ml[(h * S + split) * 2 + 1] = 0.f;
        }
        return;
    }
    for (int i = tid; i < G * HD; i += blockDim.x) qs[i / HD][i % HD] = bf2f(q[(size_t)(g * G) * HD + i]) * scale;
    if (tid < DA_MAXG) { m_s[tid] = -OVIS_INF; l_s[tid] = 0.f; }
    const bf16* kh = k_cache + (size_t)g * max_ctx * HD;
    const bf16* vh = v_cache + (size_t)g * max_ctx * HD;
    const int grp = tid / LPK, sub = tid % LPK;  // lane `sub` of group `grp` owns dims 8·sub .. 8·sub+7
    float acc[DA_MAXG][8];
#pragma unroll
    for (int h = 0; h < DA_MAXG; h++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[h][j] = 0.f;
    __syncthreads();

    for (int t0 = k0; t0 < k1; t0 += DA_TILE) {
        // Scores of this tile: group `grp` takes keys grp, grp + NGRP, … (DA_TILE / NGRP passes for all).
        for (int kk = grp; kk < DA_TILE; kk += NGRP) {
            const int key = t0 + kk;
            float kf[8];
            if (key < k1) unpack8(*reinterpret_cast<const uint4*>(kh + (size_t)key * HD + sub * 8), kf);
#pragma unroll
            for (int h = 0; h < DA_MAXG; h++) {
                if (h < G) {  // G is uniform over the block
                    float d = 0.f;
                    if (key < k1) {
#pragma unroll
                        for (int j = 0; j < 8; j++) d = fmaf(qs[h][sub * 8 + j], kf[j], d);
                    }
                    // Sum over the LPK lanes of this group; every lane of the warp executes it.
#pragma unroll
                    for (int o = LPK / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
                    if (sub == 0) ps[h][kk] = key < k1 ? d : -OVIS_INF;
                }
            }
        }
        __syncthreads();
        // Online softmax per head over the tile's 64 scores (2 per lane): warp w updates heads w, w+4.
        for (int h = warp; h < G; h += 4) {
            const float a = ps[h][lane], b = ps[h][lane + 32];
            const float m_old = m_s[h];
            const float m_new = fmaxf(m_old, warp_max(fmaxf(a, b)));
            const float pa = m_new == -OVIS_INF ? 0.f : expf(a - m_new);
            const float pb = m_new == -OVIS_INF ? 0.f : expf(b - m_new);
            ps[h][lane] = pa;
            ps[h][lane + 32] = pb;
            const float sum = warp_sum(pa + pb);
            if (lane == 0) {
                const float alpha = m_old == -OVIS_INF ? 0.f : expf(m_old - m_new);
                alpha_s[h] = alpha;
                l_s[h] = l_s[h] * alpha + sum;
                m_s[h] = m_new;
            }
        }
        __syncthreads();
        // P·V: group `grp` takes value rows grp, grp + NGRP, … of the tile (no shuffles in here).
#pragma unroll
        for (int h = 0; h < DA_MAXG; h++)
            if (h < G)
#pragma unroll
                for (int j = 0; j < 8; j++) acc[h][j] *= alpha_s[h];
        for (int kk = grp; kk < DA_TILE && t0 + kk < k1; kk += NGRP) {
            float vf[8];
            unpack8(*reinterpret_cast<const uint4*>(vh + (size_t)(t0 + kk) * HD + sub * 8), vf);
#pragma unroll
            for (int h = 0; h < DA_MAXG; h++)
                if (h < G) {
                    const float p = ps[h][kk];
#pragma unroll
                    for (int j = 0; j < 8; j++) acc[h][j] = fmaf(p, vf[j], acc[h][j]);
                }
        }
        __syncthreads();
    }
    // Sum the NGRP groups' partial outputs of each head, normalise by this split's Σ exp. The barriers
    // sit under `h < G` only, which is uniform over the block.
#pragma unroll
    for (int h = 0; h < DA_MAXG; h++) {
        if (h < G) {
#pragma unroll
            for (int j = 0; j < 8; j++) red[grp][sub * 8 + j] = acc[h][j];
            __syncthreads();
            const int head = g * G + h;
            if (tid < HD) {
                float o = 0.f;
                for (int r = 0; r < NGRP; r++) o += red[r][tid];
                part_o[((size_t)head * S + split) * HD + tid] = o / l_s[h];
            }
            if (tid == 0) {
                part_ml[(head * S + split) * 2] = m_s[h];
                part_ml[(head * S + split) * 2 + 1] = l_s[h];
            }
            __syncthreads();
        }
    }
}

// Merges the S splits of one head; blockDim.x == HD.
template <int HD>
__device__ __forceinline__ void decode_attention_combine(const float* __restrict__ part_o, const float* __restrict__ part_ml, bf16* __restrict__ out, int S) {
    const int h = blockIdx.x, d = threadIdx.x;
    if (d >= HD) return;
    float m = -OVIS_INF;
    for (int s = 0; s < S; s++) m = fmaxf(m, part_ml[(h * S + s) * 2]);
    float num = 0.f, den = 0.f;
    for (int s = 0; s < S; s++) {
        const float ms = part_ml[(h * S + s) * 2], ls = part_ml[(h * S + s) * 2 + 1];
        if (ls > 0.f) {
            const float w = ls * expf(ms - m);
            num += w * part_o[((size_t)h * S + s) * HD + d];
            den += w;
        }
    }
    out[(size_t)h * HD + d] = f2bf(num / den);
}

// The instantiations: one extern "C" entry per supported head width (names listed in kernels.rs).
#define DECODE_ATTENTION_PARAMS                                                                                                   \
    const bf16 *__restrict__ q, const bf16 *__restrict__ k_cache, const bf16 *__restrict__ v_cache, const int *__restrict__ pos, \
        float *__restrict__ part_o, float *__restrict__ part_ml, int nH, int nKV, int max_ctx, int S, float scale
#define DECODE_ATTENTION_ARGS q, k_cache, v_cache, pos, part_o, part_ml, nH, nKV, max_ctx, S, scale
#define COMBINE_PARAMS const float *__restrict__ part_o, const float *__restrict__ part_ml, bf16 *__restrict__ out, int S
#define COMBINE_ARGS part_o, part_ml, out, S

extern "C" __global__ void __launch_bounds__(128) decode_attention_bf16_hd16(DECODE_ATTENTION_PARAMS) { decode_attention<16>(DECODE_ATTENTION_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_bf16_hd32(DECODE_ATTENTION_PARAMS) { decode_attention<32>(DECODE_ATTENTION_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_bf16_hd64(DECODE_ATTENTION_PARAMS) { decode_attention<64>(DECODE_ATTENTION_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_bf16_hd128(DECODE_ATTENTION_PARAMS) { decode_attention<128>(DECODE_ATTENTION_ARGS); }

extern "C" __global__ void __launch_bounds__(128) decode_attention_combine_bf16_hd16(COMBINE_PARAMS) { decode_attention_combine<16>(COMBINE_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_combine_bf16_hd32(COMBINE_PARAMS) { decode_attention_combine<32>(COMBINE_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_combine_bf16_hd64(COMBINE_PARAMS) { decode_attention_combine<64>(COMBINE_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_combine_bf16_hd128(COMBINE_PARAMS) { decode_attention_combine<128>(COMBINE_ARGS); }

// The batched decode step (continuous batching): R requests, each over its own KV cache.
// decode_attention_rows_bf16_hd{16,32,64,128}
//   q        [R, nH, HD] bf16        row r's queries
//   k_tab, v_tab [R] u64             device addresses of row r's K and V cache of this layer
//                                    ([nKV, max_ctx[r], HD] bf16: the session's own buffers, wherever
//                                    they are and however large: a cache that grows moves, the table
//                                    is rewritten, the captured graph stays valid)
//   pos, max_ctx [R] int             row r's position (keys 0..pos[r]) and its cache's capacity
//   part_o   [R, nH, S, HD] f32, part_ml [R, nH, S, 2] f32   per-row scratch, as above
// Launch: grid (nKV, S, R), block 128. Block (g, s, r) runs exactly decode_attention_bf16 for row r,
//   so a row's output equals the single-request kernel's bit for bit.
// decode_attention_rows_combine_bf16_hd{16,32,64,128}
//   out [R, nH, HD] bf16. Launch: grid (nH, R), block HD.
template <int HD>
__device__ __forceinline__ void decode_attention_rows(const bf16* __restrict__ q, const unsigned long long* __restrict__ k_tab,
                                                      const unsigned long long* __restrict__ v_tab, const int* __restrict__ pos,
                                                      const int* __restrict__ max_ctx, float* __restrict__ part_o, float* __restrict__ part_ml, int nH,
                                                      int nKV, int S, float scale) {
    const int r = blockIdx.z;
    decode_attention<HD>(q + (size_t)r * nH * HD, reinterpret_cast<const bf16*>(k_tab[r]), reinterpret_cast<const bf16*>(v_tab[r]), pos + r,
                         part_o + (size_t)r * nH * S * HD, part_ml + (size_t)r * nH * S * 2, nH, nKV, max_ctx[r], S, scale);
}

template <int HD>
__device__ __forceinline__ void decode_attention_rows_combine(const float* __restrict__ part_o, const float* __restrict__ part_ml, bf16* __restrict__ out,
                                                              int nH, int S) {
    const int r = blockIdx.y;
    decode_attention_combine<HD>(part_o + (size_t)r * nH * S * HD, part_ml + (size_t)r * nH * S * 2, out + (size_t)r * nH * HD, S);
}

#define DECODE_ROWS_PARAMS                                                                                                          \
    const bf16 *__restrict__ q, const unsigned long long *__restrict__ k_tab, const unsigned long long *__restrict__ v_tab,          \
        const int *__restrict__ pos, const int *__restrict__ max_ctx, float *__restrict__ part_o, float *__restrict__ part_ml, int nH, \
        int nKV, int S, float scale
#define DECODE_ROWS_ARGS q, k_tab, v_tab, pos, max_ctx, part_o, part_ml, nH, nKV, S, scale
#define COMBINE_ROWS_PARAMS const float *__restrict__ part_o, const float *__restrict__ part_ml, bf16 *__restrict__ out, int nH, int S
#define COMBINE_ROWS_ARGS part_o, part_ml, out, nH, S

extern "C" __global__ void __launch_bounds__(128) decode_attention_rows_bf16_hd16(DECODE_ROWS_PARAMS) { decode_attention_rows<16>(DECODE_ROWS_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_rows_bf16_hd32(DECODE_ROWS_PARAMS) { decode_attention_rows<32>(DECODE_ROWS_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_rows_bf16_hd64(DECODE_ROWS_PARAMS) { decode_attention_rows<64>(DECODE_ROWS_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_rows_bf16_hd128(DECODE_ROWS_PARAMS) { decode_attention_rows<128>(DECODE_ROWS_ARGS); }

extern "C" __global__ void __launch_bounds__(128) decode_attention_rows_combine_bf16_hd16(COMBINE_ROWS_PARAMS) { decode_attention_rows_combine<16>(COMBINE_ROWS_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_rows_combine_bf16_hd32(COMBINE_ROWS_PARAMS) { decode_attention_rows_combine<32>(COMBINE_ROWS_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_rows_combine_bf16_hd64(COMBINE_ROWS_PARAMS) { decode_attention_rows_combine<64>(COMBINE_ROWS_ARGS); }
extern "C" __global__ void __launch_bounds__(128) decode_attention_rows_combine_bf16_hd128(COMBINE_ROWS_PARAMS) { decode_attention_rows_combine<128>(COMBINE_ROWS_ARGS); }
