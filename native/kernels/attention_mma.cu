// attention_mma.cu: the flash attention of attention.cu on tensor cores (mma.sync m16n8k16, bf16
// operands, f32 accumulation), for the long sequences where the FMA kernels are too slow: the ViT's
// per-frame attention (3 136 to 12 544 patches per image) and the LLM's causal prefill.
//
// segment_attention_mma_bf16_hd<N>  (N = 24, 32, 64, 72, 80) same contract as segment_attention_bf16
//   qkv [N_tok, 3·D] bf16 (q | k | v, heads of N), out [N_tok, D] bf16, tiles [T] int4
//   {q_begin, q_count ≤ 64, seg_begin, seg_len}: the host cuts every segment into tiles of 64
//   queries (ops::segment_tiles with MMA_ROWS). Launch: grid (T, heads), block 128.
// prefill_attention_mma_bf16_hd<N>  (N = 16, 32, 64, 128) same contract as prefill_attention_bf16
//   (causal GQA over the KV cache [nKV, max_ctx, N], queries at *pos0 + i), tiles of 64 queries.
//   Launch: grid (ceil(L / 64), nH), block 128.
//
// Each of the 4 warps owns 16 query rows; keys go through shared memory in tiles of BK. Per tile a
// warp computes S = Q·Kᵀ (16 × BK, f32) with Q's fragments held in registers, keeps the online
// softmax (max, Σ) of its rows in f32, rounds P to bf16 and accumulates O += P·V (16 × N, f32).
// The head width is padded to a multiple of 16 with zeros for Q·Kᵀ (the mma's k); shared rows are
// padded by 8 bf16 so that the fragment loads are free of bank conflicts. Scores, softmax and
// output accumulate in f32, the output is rounded to bf16 once: the FMA kernels' numerics, except
// that P is rounded to bf16 before P·V (as flash attention does; well inside bf16 tolerance).
// Fragment layouts (PTX ISA, mma.m16n8k16 .bf16): g = lane / 4, c = lane % 4;
//   A (16×16, row): a0 = A[g][2c..2c+1], a1 = A[g+8][2c..], a2 = A[g][2c+8..], a3 = A[g+8][2c+8..]
//   B (16×8, col):  b0 = B[2c..2c+1][g], b1 = B[2c+8..2c+9][g]
//   C (16×8, f32):  c0 = C[g][2c], c1 = C[g][2c+1], c2 = C[g+8][2c], c3 = C[g+8][2c+1]
#include "common.cuh"

#define MMA_ROWS 64  // queries per block: 4 warps × 16

__device__ __forceinline__ void mma_16816(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ unsigned ld32(const bf16* p) { return *reinterpret_cast<const unsigned*>(p); }

// Copies `rows` rows of HD bf16 (global row stride `stride`) into a [R][LD] shared tile, zero in
// rows ≥ rows and in columns HD..LD−1 that Q·Kᵀ reads (HD % 8 == 0: whole 16-byte chunks).
template <int HD, int LD, int R>
__device__ __forceinline__ void load_rows(bf16* dst, const bf16* src, size_t stride, int rows) {
    constexpr int HDP = (HD + 15) / 16 * 16;
    constexpr int V = HDP / 8;
    for (int i = threadIdx.x; i < R * V; i += blockDim.x) {
        const int r = i / V, c = i % V;
        const uint4 val = (r < rows && c * 8 < HD) ? *reinterpret_cast<const uint4*>(src + (size_t)r * stride + c * 8) : make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4*>(dst + r * LD + c * 8) = val;
    }
}

// One block: ≤ 64 queries (q_rows) of one head against keys 0..kv_len−1 (causal: key ≤ q_pos0 + row).
template <int HD, int BK, bool CAUSAL>
__device__ __forceinline__ void mma_flash(const bf16* q, size_t q_stride, int q_rows, int q_pos0, const bf16* k, const bf16* v,
                                          size_t kv_stride, int kv_len, bf16* o, size_t o_stride, float scale) {
    static_assert(HD % 8 == 0 && BK % 16 == 0, "head width a multiple of 8, key tile of 16");
    constexpr int HDP = (HD + 15) / 16 * 16;
    constexpr int LD = HDP + 8;
    constexpr int KS = HDP / 16;  // k16 steps of Q·Kᵀ
    constexpr int NT = HD / 8;    // n8 tiles of the output
    constexpr int SN = BK / 8;    // n8 tiles of S
    __shared__ __align__(16) bf16 qs[MMA_ROWS * LD];
    __shared__ __align__(16) bf16 ks[BK * LD];
    __shared__ __align__(16) bf16 vs[BK * LD];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;

    load_rows<HD, LD, MMA_ROWS>(qs, q, q_stride, q_rows);
    __syncthreads();
    unsigned qa[KS][4];
    const bf16* qw = qs + warp * 16 * LD;
#pragma unroll
    for (int s = 0; s < KS; s++) {
        qa[s][0] = ld32(qw + g * LD + s * 16 + 2 * c);
        qa[s][1] = ld32(qw + (g + 8) * LD + s * 16 + 2 * c);
        qa[s][2] = ld32(qw + g * LD + s * 16 + 8 + 2 * c);
        qa[s][3] = ld32(qw + (g + 8) * LD + s * 16 + 8 + 2 * c);
    }
    float acc[NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
    // Rows r0 = warp·16 + g and r1 = r0 + 8 of this thread: running max and Σ exp.
    const int r0 = warp * 16 + g, r1 = r0 + 8;
    float m0 = -OVIS_INF, m1 = -OVIS_INF, l0 = 0.f, l1 = 0.f;
    const int kv_end = CAUSAL ? min(kv_len, q_pos0 + q_rows) : kv_len;

    for (int k0 = 0; k0 < kv_end; k0 += BK) {
        const int nk = min(BK, kv_end - k0);
        __syncthreads();  // every warp is done with the previous tile
        load_rows<HD, LD, BK>(ks, k + (size_t)k0 * kv_stride, kv_stride, nk);
        load_rows<HD, LD, BK>(vs, v + (size_t)k0 * kv_stride, kv_stride, nk);
        __syncthreads();

        float s[SN][4];
#pragma unroll
        for (int j = 0; j < SN; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
            for (int t = 0; t < KS; t++) {
                const bf16* kr = ks + (8 * j + g) * LD + t * 16 + 2 * c;
                const unsigned b[2] = {ld32(kr), ld32(kr + 8)};
                mma_16816(s[j], qa[t], b);
            }
        }
        // Scale and mask (keys past the tile, and for causal, keys after the query's position).
        float mx0 = -OVIS_INF, mx1 = -OVIS_INF;
#pragma unroll
        for (int j = 0; j < SN; j++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = 8 * j + 2 * c + (e & 1);
                const int row = e < 2 ? r0 : r1;
                const bool masked = key >= nk || (CAUSAL && k0 + key > q_pos0 + row);
                s[j][e] = masked ? -OVIS_INF : s[j][e] * scale;
            }
            mx0 = fmaxf(mx0, fmaxf(s[j][0], s[j][1]));
            mx1 = fmaxf(mx1, fmaxf(s[j][2], s[j][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        // A row with no visible key in this tile keeps its state (only possible when causal, and never
        // in the first tile, which always holds key 0).
        const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
        const float a0 = n0 == -OVIS_INF ? 1.f : expf(m0 - n0), a1 = n1 == -OVIS_INF ? 1.f : expf(m1 - n1);
        float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
        for (int j = 0; j < SN; j++) {
            s[j][0] = n0 == -OVIS_INF ? 0.f : expf(s[j][0] - n0);
            s[j][1] = n0 == -OVIS_INF ? 0.f : expf(s[j][1] - n0);
            s[j][2] = n1 == -OVIS_INF ? 0.f : expf(s[j][2] - n1);
            s[j][3] = n1 == -OVIS_INF ? 0.f : expf(s[j][3] - n1);
            sum0 += s[j][0] + s[j][1];
            sum1 += s[j][2] + s[j][3];
        }
        sum0 += __shfl_xor_sync(0xffffffffu, sum0, 1);
        sum0 += __shfl_xor_sync(0xffffffffu, sum0, 2);
        sum1 += __shfl_xor_sync(0xffffffffu, sum1, 1);
        sum1 += __shfl_xor_sync(0xffffffffu, sum1, 2);
        l0 = l0 * a0 + sum0;
        l1 = l1 * a1 + sum1;
        m0 = n0;
        m1 = n1;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            acc[n][0] *= a0;
            acc[n][1] *= a0;
            acc[n][2] *= a1;
            acc[n][3] *= a1;
        }
        // O += P·V: S's C fragments of key tiles 2t and 2t+1 are exactly P's A fragment for keys 16t..16t+15.
#pragma unroll
        for (int t = 0; t < BK / 16; t++) {
            const unsigned pa[4] = {pack_bf2(s[2 * t][0], s[2 * t][1]), pack_bf2(s[2 * t][2], s[2 * t][3]),
                                    pack_bf2(s[2 * t + 1][0], s[2 * t + 1][1]), pack_bf2(s[2 * t + 1][2], s[2 * t + 1][3])};
#pragma unroll
            for (int n = 0; n < NT; n++) {
                // B[key][dim] = V[key][dim]: two keys per register, so two 16-bit reads each.
                const bf16* vr = vs + (16 * t + 2 * c) * LD + 8 * n + g;
                const unsigned b[2] = {(unsigned)vr[0] | ((unsigned)vr[LD] << 16), (unsigned)vr[8 * LD] | ((unsigned)vr[9 * LD] << 16)};
                mma_16816(acc[n], pa, b);
            }
        }
    }
    const float i0 = l0 > 0.f ? 1.f / l0 : 0.f, i1 = l1 > 0.f ? 1.f / l1 : 0.f;
#pragma unroll
    for (int n = 0; n < NT; n++) {
        if (r0 < q_rows) *reinterpret_cast<unsigned*>(o + (size_t)r0 * o_stride + 8 * n + 2 * c) = pack_bf2(acc[n][0] * i0, acc[n][1] * i0);
        if (r1 < q_rows) *reinterpret_cast<unsigned*>(o + (size_t)r1 * o_stride + 8 * n + 2 * c) = pack_bf2(acc[n][2] * i1, acc[n][3] * i1);
    }
}

// Key tile sizes: 64 keys while the three tiles fit in 48 KB of static shared memory, else 32.
template <int HD>
struct MmaTile {
    static constexpr int LD = (HD + 15) / 16 * 16 + 8;
    static constexpr int BK = (MMA_ROWS + 2 * 64) * LD * 2 <= 48 * 1024 ? 64 : 32;
};

template <int HD>
__device__ __forceinline__ void segment_mma(const bf16* qkv, bf16* out, const int4* tiles, int heads, float scale) {
    const int4 t = tiles[blockIdx.x];  // {q_begin, q_count, seg_begin, seg_len}
    const int h = blockIdx.y, D = heads * HD;
    const size_t stride = 3 * (size_t)D;
    const bf16* base = qkv + (size_t)t.z * stride + h * HD;
    mma_flash<HD, MmaTile<HD>::BK, false>(qkv + (size_t)t.x * stride + h * HD, stride, t.y, 0, base + D, base + 2 * D, stride, t.w,
                                          out + (size_t)t.x * D + h * HD, D, scale);
}

template <int HD>
__device__ __forceinline__ void prefill_mma(const bf16* q, const bf16* k_cache, const bf16* v_cache, bf16* out, const int* pos0, int L, int nH,
                                            int nKV, int max_ctx, float scale) {
    const int i0 = blockIdx.x * MMA_ROWS, h = blockIdx.y, g = h / (nH / nKV);
    const int start = *pos0;
    mma_flash<HD, MmaTile<HD>::BK, true>(q + ((size_t)i0 * nH + h) * HD, (size_t)nH * HD, min(MMA_ROWS, L - i0), start + i0,
                                         k_cache + (size_t)g * max_ctx * HD, v_cache + (size_t)g * max_ctx * HD, HD, start + L,
                                         out + (size_t)i0 * nH * HD + h * HD, (size_t)nH * HD, scale);
}

// Entries (written out, one per width, so that each name appears in the source as it is called).
// __launch_bounds__(128, 3): at most 170 registers, so ptxas does not cap them for occupancy and spill.
#define SEG_ARGS const bf16* __restrict__ qkv, bf16* __restrict__ out, const int4* __restrict__ tiles, int heads, float scale
extern "C" __global__ void __launch_bounds__(128, 3) segment_attention_mma_bf16_hd24(SEG_ARGS) { segment_mma<24>(qkv, out, tiles, heads, scale); }
extern "C" __global__ void __launch_bounds__(128, 3) segment_attention_mma_bf16_hd32(SEG_ARGS) { segment_mma<32>(qkv, out, tiles, heads, scale); }
extern "C" __global__ void __launch_bounds__(128, 3) segment_attention_mma_bf16_hd64(SEG_ARGS) { segment_mma<64>(qkv, out, tiles, heads, scale); }
extern "C" __global__ void __launch_bounds__(128, 3) segment_attention_mma_bf16_hd72(SEG_ARGS) { segment_mma<72>(qkv, out, tiles, heads, scale); }
extern "C" __global__ void __launch_bounds__(128, 3) segment_attention_mma_bf16_hd80(SEG_ARGS) { segment_mma<80>(qkv, out, tiles, heads, scale); }

#define PRE_ARGS const bf16* __restrict__ q, const bf16* __restrict__ k_cache, const bf16* __restrict__ v_cache, bf16* __restrict__ out, \
                 const int* __restrict__ pos0, int L, int nH, int nKV, int max_ctx, float scale
#define PRE_CALL(N) prefill_mma<N>(q, k_cache, v_cache, out, pos0, L, nH, nKV, max_ctx, scale)
extern "C" __global__ void __launch_bounds__(128, 3) prefill_attention_mma_bf16_hd16(PRE_ARGS) { PRE_CALL(16); }
extern "C" __global__ void __launch_bounds__(128, 3) prefill_attention_mma_bf16_hd32(PRE_ARGS) { PRE_CALL(32); }
extern "C" __global__ void __launch_bounds__(128, 3) prefill_attention_mma_bf16_hd64(PRE_ARGS) { PRE_CALL(64); }
extern "C" __global__ void __launch_bounds__(128, 3) prefill_attention_mma_bf16_hd128(PRE_ARGS) { PRE_CALL(128); }
