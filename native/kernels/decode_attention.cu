// decode_attention.cu: one new token's attention over the KV cache (model-spec §7), flash-decoding:
// the keys are cut into S splits, each block reduces its split with an online softmax, and a second
// kernel merges the splits. GQA: the G = nH / nKV query heads that share a kv head are served by one
// block, so each key and value row is read from memory once per step.
//
// decode_attention_bf16
//   q        [nH, 128] bf16        this token's normed + rotated queries (q_out of qk_norm_rope_bf16)
//   k_cache, v_cache [nKV, max_ctx, 128] bf16, this layer; the token itself was written at *pos
//   pos      device int            position of the token: keys 0..*pos are attended (ctx = *pos + 1)
//   part_o   [nH, S, 128] f32      each split's softmax-normalised output
//   part_ml  [nH, S, 2] f32        each split's (max score, Σ exp) for the merge; (−inf, 0) if empty
//   scale    1/√128; G ≤ 8
// Launch: grid (nKV, S), block 128 (4 warps). Keys go in tiles of 64: a half-warp computes one key's
//   dot products (16 lanes × 16-byte loads = one 256-byte row) for all G heads, then each thread keeps
//   8 output dims × G heads and streams V rows the same way. S is fixed per model so that a captured
//   decode graph serves every context length; splits past the context exit at once.
//
// decode_attention_combine_bf16  out[h, d] = bf16(Σ_s w_s·o_s[d] / Σ_s w_s), w_s = l_s·exp(m_s − max m)
//   Launch: grid nH, block 128 (one thread per dim).
#include "common.cuh"

#define DA_TILE 64
#define DA_MAXG 8

extern "C" __global__ void __launch_bounds__(128)
decode_attention_bf16(const bf16* __restrict__ q, const bf16* __restrict__ k_cache, const bf16* __restrict__ v_cache,
                      const int* __restrict__ pos, float* __restrict__ part_o, float* __restrict__ part_ml,
                      int nH, int nKV, int max_ctx, int S, float scale) {
    __shared__ float qs[DA_MAXG][128];
    __shared__ float ps[DA_MAXG][DA_TILE];
    __shared__ float m_s[DA_MAXG], l_s[DA_MAXG], alpha_s[DA_MAXG];
    __shared__ float red[8][128];
    const int g = blockIdx.x, split = blockIdx.y, G = nH / nKV;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int ctx = *pos + 1;
    const int chunk = (ctx + S - 1) / S;
    const int k0 = split * chunk, k1 = min(ctx, k0 + chunk);
    if (k0 >= k1) {
        if (tid < G) {
            const int h = g * G + tid;
            part_ml[(h * S + split) * 2] = -OVIS_INF;
            part_ml[(h * S + split) * 2 + 1] = 0.f;
        }
        return;
    }
    for (int i = tid; i < G * 128; i += blockDim.x) qs[i / 128][i % 128] = bf2f(q[(size_t)(g * G) * 128 + i]) * scale;
    if (tid < DA_MAXG) { m_s[tid] = -OVIS_INF; l_s[tid] = 0.f; }
    const bf16* kh = k_cache + (size_t)g * max_ctx * 128;
    const bf16* vh = v_cache + (size_t)g * max_ctx * 128;
    const int half = tid >> 4, l16 = tid & 15;  // 8 half-warps; lane l16 owns dims 8·l16 .. 8·l16+7
    float acc[DA_MAXG][8];
#pragma unroll
    for (int h = 0; h < DA_MAXG; h++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[h][j] = 0.f;
    __syncthreads();

    for (int t0 = k0; t0 < k1; t0 += DA_TILE) {
        // Scores of this tile: half-warp `half` takes keys half, half+8, …
        for (int kk = half; kk < DA_TILE; kk += 8) {
            const int key = t0 + kk;
            float kf[8];
            if (key < k1) unpack8(*reinterpret_cast<const uint4*>(kh + (size_t)key * 128 + l16 * 8), kf);
#pragma unroll
            for (int h = 0; h < DA_MAXG; h++) {
                if (h < G) {
                    float d = 0.f;
                    if (key < k1) {
#pragma unroll
                        for (int j = 0; j < 8; j++) d = fmaf(qs[h][l16 * 8 + j], kf[j], d);
                    }
#pragma unroll
                    for (int o = 8; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
                    if (l16 == 0) ps[h][kk] = key < k1 ? d : -OVIS_INF;
                }
            }
        }
        __syncthreads();
        // Online softmax per head: warp w updates heads w, w+4.
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
        // P·V: half-warp `half` takes value rows half, half+8, … of the tile.
#pragma unroll
        for (int h = 0; h < DA_MAXG; h++)
            if (h < G)
#pragma unroll
                for (int j = 0; j < 8; j++) acc[h][j] *= alpha_s[h];
        for (int kk = half; kk < DA_TILE && t0 + kk < k1; kk += 8) {
            float vf[8];
            unpack8(*reinterpret_cast<const uint4*>(vh + (size_t)(t0 + kk) * 128 + l16 * 8), vf);
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
    // Sum the 8 half-warps' partial outputs of each head, normalise by this split's Σ exp.
#pragma unroll
    for (int h = 0; h < DA_MAXG; h++) {
        if (h < G) {
#pragma unroll
            for (int j = 0; j < 8; j++) red[half][l16 * 8 + j] = acc[h][j];
            __syncthreads();
            float o = 0.f;
#pragma unroll
            for (int r = 0; r < 8; r++) o += red[r][tid];
            const int head = g * G + h;
            part_o[((size_t)head * S + split) * 128 + tid] = o / l_s[h];
            if (tid == 0) {
                part_ml[(head * S + split) * 2] = m_s[h];
                part_ml[(head * S + split) * 2 + 1] = l_s[h];
            }
            __syncthreads();
        }
    }
}

extern "C" __global__ void __launch_bounds__(128)
decode_attention_combine_bf16(const float* __restrict__ part_o, const float* __restrict__ part_ml, bf16* __restrict__ out, int S) {
    const int h = blockIdx.x, d = threadIdx.x;
    float m = -OVIS_INF;
    for (int s = 0; s < S; s++) m = fmaxf(m, part_ml[(h * S + s) * 2]);
    float num = 0.f, den = 0.f;
    for (int s = 0; s < S; s++) {
        const float ms = part_ml[(h * S + s) * 2], ls = part_ml[(h * S + s) * 2 + 1];
        if (ls > 0.f) {
            const float w = ls * expf(ms - m);
            num += w * part_o[((size_t)h * S + s) * 128 + d];
            den += w;
        }
    }
    out[(size_t)h * 128 + d] = f2bf(num / den);
}
