// attention.cu: flash-style attention over many queries at once, tiles of 32 queries × 32 keys in
// shared memory with an online softmax (f32), so the score matrix never exists in memory (a
// 12 544-patch image would need 12 544² scores per head).
//
// Both kernels are the template flash_tile<HD, CAUSAL>, instantiated per head width HD with the suffix
// _hd<HD>; the Rust launchers pick the instantiation by the model's head width and refuse others.
//
// prefill_attention_bf16_hd{16,32,64,128}  causal GQA attention of L new tokens over the KV cache
//   (model-spec §7; the released LLMs have HD 128, the test fixture 16)
//   q [L, nH, HD] bf16 (q_out of qk_norm_rope), k_cache, v_cache [nKV, max_ctx, HD] bf16 (this layer,
//   already holding positions 0..*pos0+L−1), out [L, nH·HD] bf16; query i sits at *pos0 + i and sees
//   keys 0..*pos0+i; head h reads kv head h / (nH / nKV).
//   Launch: grid (ceil(L / 32), nH), block 128.
// segment_attention_bf16_hd{24,32,64,72,80}  bidirectional attention inside segments (ViT §4.5: one
//   image or one video frame; no mask inside a segment, nothing across; the released ViT has HD 72 =
//   1152 / 16, the test fixture 24 = 48 / 2)
//   qkv [N, 3·D] bf16 (fused projection; q | k | v, D = heads·HD), out [N, D] bf16,
//   tiles [T] int4 {q_begin, q_count ≤ 32, seg_begin, seg_len}: the host cuts every segment into
//   tiles of 32 queries. Launch: grid (T, heads), block 128.
// Both: scale = HD^−0.5, scores and softmax in f32, output rounded to bf16 once.
// Thread t owns query row t / 4 of the tile; its 4 threads split the tile's keys (key = 4·i + t % 4) for
// the scores and the head dims (dim = 4·i + t % 4, HD/4 per thread) for P·V. Shared rows are padded
// against bank conflicts. Plain FMA arithmetic (no tensor cores yet): correct first, see docs/cuda.md.
// Valid shapes: K and V rows are copied to shared memory as 16-byte vectors (load_tile), so every row
//   start must be 16-byte aligned: with the buffers' base pointers 16-byte aligned (cudaMalloc gives
//   256), row r of head h starts at (r·stride + h·HD [+ D or 2·D]) · 2 bytes with stride HD (cache) or
//   3·D (qkv). HD a multiple of 8 makes h·HD·2 a multiple of 16, and since D = heads·HD then so are
//   D·2 and 3·D·2: every HD in the lists above is a multiple of 8, so every (HD, heads) pair is valid;
//   HD = 40 or 48 would be too, but HD 36 (not a multiple of 8) would not. The launchers check HD.
//   Shared memory per block: 256·HD + 5376 bytes (38 144 for HD 128), within the 48 KB static limit.
#include "common.cuh"

#define FA_BR 32
#define FA_BC 32

template <int HD>
struct __align__(16) FlashSmem {
    float q[FA_BR][HD + 1];
    bf16 k[FA_BC][HD + 8];
    bf16 v[FA_BC][HD + 8];
    float p[FA_BR][FA_BC + 1];
};

// Loads `rows` rows of HD bf16 (row stride `stride` elements) into a padded smem tile, zero past `rows`.
template <int HD>
__device__ __forceinline__ void load_tile(bf16 (*dst)[HD + 8], const bf16* src, int stride, int rows) {
    constexpr int V = HD / 8;
    for (int i = threadIdx.x; i < FA_BC * V; i += blockDim.x) {
        const int r = i / V, c = i % V;
        const uint4 val = r < rows ? *reinterpret_cast<const uint4*>(src + (size_t)r * stride + c * 8) : make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4*>(&dst[r][c * 8]) = val;
    }
}

// One tile of ≤ 32 queries of one head against keys 0..kv_len−1 (causal: key ≤ q_pos0 + row).
template <int HD, bool CAUSAL>
__device__ void flash_tile(const bf16* q, int q_stride, int q_rows, int q_pos0, const bf16* k, const bf16* v, int kv_stride,
                           int kv_len, bf16* o, int o_stride, float scale) {
    // 16-byte rows in load_tile, 4-byte bf16 pairs in the score loop, HD/4 dims per thread.
    static_assert(HD % 8 == 0, "HD must be a multiple of 8 (see the header: alignment)");
    __shared__ FlashSmem<HD> sm;
    constexpr int DPT = HD / 4;  // output dims per thread
    const int tid = threadIdx.x, row = tid >> 2, sub = tid & 3;
    for (int i = tid; i < FA_BR * HD; i += blockDim.x) {
        const int r = i / HD, c = i % HD;
        sm.q[r][c] = r < q_rows ? bf2f(q[(size_t)r * q_stride + c]) * scale : 0.f;
    }
    const int qpos = q_pos0 + row;
    float m = -OVIS_INF, l = 0.f, acc[DPT];
#pragma unroll
    for (int i = 0; i < DPT; i++) acc[i] = 0.f;
    const int kv_end = CAUSAL ? min(kv_len, q_pos0 + q_rows) : kv_len;
    for (int t0 = 0; t0 < kv_end; t0 += FA_BC) {
        __syncthreads();
        load_tile<HD>(sm.k, k + (size_t)t0 * kv_stride, kv_stride, min(FA_BC, kv_end - t0));
        load_tile<HD>(sm.v, v + (size_t)t0 * kv_stride, kv_stride, min(FA_BC, kv_end - t0));
        __syncthreads();
        float s[FA_BC / 4];
        float tmax = -OVIS_INF;
#pragma unroll
        for (int i = 0; i < FA_BC / 4; i++) {
            const int kk = 4 * i + sub, key = t0 + kk;
            float d = 0.f;
#pragma unroll 8
            for (int c = 0; c < HD; c += 2) {
                const unsigned kv2 = *reinterpret_cast<const unsigned*>(&sm.k[kk][c]);
                d = fmaf(sm.q[row][c], lo_bf(kv2), d);
                d = fmaf(sm.q[row][c + 1], hi_bf(kv2), d);
            }
            const bool masked = key >= kv_end || (CAUSAL && key > qpos);
            s[i] = masked ? -OVIS_INF : d;
            tmax = fmaxf(tmax, s[i]);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
        const float m_new = fmaxf(m, tmax);
        float sum = 0.f;
#pragma unroll
        for (int i = 0; i < FA_BC / 4; i++) {
            const float p = m_new == -OVIS_INF ? 0.f : expf(s[i] - m_new);
            sm.p[row][4 * i + sub] = p;
            sum += p;
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const float alpha = m == -OVIS_INF ? 0.f : expf(m - m_new);
        l = l * alpha + sum;
        m = m_new;
        __syncwarp();
#pragma unroll
        for (int i = 0; i < DPT; i++) acc[i] *= alpha;
        for (int kk = 0; kk < FA_BC; kk++) {
            const float p = sm.p[row][kk];
#pragma unroll
            for (int i = 0; i < DPT; i++) acc[i] = fmaf(p, bf2f(sm.v[kk][4 * i + sub]), acc[i]);
        }
    }
    if (row < q_rows) {
        const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
        for (int i = 0; i < DPT; i++) o[(size_t)row * o_stride + 4 * i + sub] = f2bf(acc[i] * inv);
    }
}

template <int HD>
__device__ __forceinline__ void prefill_attention(const bf16* __restrict__ q, const bf16* __restrict__ k_cache, const bf16* __restrict__ v_cache,
                                                  bf16* __restrict__ out, const int* __restrict__ pos0, int L, int nH, int nKV, int max_ctx, float scale) {
    const int i0 = blockIdx.x * FA_BR, h = blockIdx.y, g = h / (nH / nKV);
    const int start = *pos0;
    const int rows = min(FA_BR, L - i0);
    flash_tile<HD, true>(q + ((size_t)i0 * nH + h) * HD, nH * HD, rows, start + i0,
                         k_cache + (size_t)g * max_ctx * HD, v_cache + (size_t)g * max_ctx * HD, HD,
                         start + L, out + (size_t)i0 * nH * HD + h * HD, nH * HD, scale);
}

template <int HD>
__device__ __forceinline__ void segment_attention(const bf16* __restrict__ qkv, bf16* __restrict__ out, const int4* __restrict__ tiles, int heads, float scale) {
    const int4 t = tiles[blockIdx.x];  // {q_begin, q_count, seg_begin, seg_len}
    const int h = blockIdx.y, D = heads * HD;
    const bf16* base = qkv + (size_t)t.z * 3 * D + h * HD;
    flash_tile<HD, false>(qkv + (size_t)t.x * 3 * D + h * HD, 3 * D, t.y, 0, base + D, base + 2 * D, 3 * D,
                          t.w, out + (size_t)t.x * D + h * HD, D, scale);
}

// The instantiations: one extern "C" entry per supported head width (names listed in kernels.rs).
#define PREFILL_PARAMS                                                                                                              \
    const bf16 *__restrict__ q, const bf16 *__restrict__ k_cache, const bf16 *__restrict__ v_cache, bf16 *__restrict__ out,        \
        const int *__restrict__ pos0, int L, int nH, int nKV, int max_ctx, float scale
#define PREFILL_ARGS q, k_cache, v_cache, out, pos0, L, nH, nKV, max_ctx, scale
#define SEGMENT_PARAMS const bf16 *__restrict__ qkv, bf16 *__restrict__ out, const int4 *__restrict__ tiles, int heads, float scale
#define SEGMENT_ARGS qkv, out, tiles, heads, scale

extern "C" __global__ void __launch_bounds__(128) prefill_attention_bf16_hd16(PREFILL_PARAMS) { prefill_attention<16>(PREFILL_ARGS); }
extern "C" __global__ void __launch_bounds__(128) prefill_attention_bf16_hd32(PREFILL_PARAMS) { prefill_attention<32>(PREFILL_ARGS); }
extern "C" __global__ void __launch_bounds__(128) prefill_attention_bf16_hd64(PREFILL_PARAMS) { prefill_attention<64>(PREFILL_ARGS); }
extern "C" __global__ void __launch_bounds__(128) prefill_attention_bf16_hd128(PREFILL_PARAMS) { prefill_attention<128>(PREFILL_ARGS); }

extern "C" __global__ void __launch_bounds__(128) segment_attention_bf16_hd24(SEGMENT_PARAMS) { segment_attention<24>(SEGMENT_ARGS); }
extern "C" __global__ void __launch_bounds__(128) segment_attention_bf16_hd32(SEGMENT_PARAMS) { segment_attention<32>(SEGMENT_ARGS); }
extern "C" __global__ void __launch_bounds__(128) segment_attention_bf16_hd64(SEGMENT_PARAMS) { segment_attention<64>(SEGMENT_ARGS); }
extern "C" __global__ void __launch_bounds__(128) segment_attention_bf16_hd72(SEGMENT_PARAMS) { segment_attention<72>(SEGMENT_ARGS); }
extern "C" __global__ void __launch_bounds__(128) segment_attention_bf16_hd80(SEGMENT_PARAMS) { segment_attention<80>(SEGMENT_ARGS); }
