// norm.cu: RMSNorm (Qwen3, model-spec §7) and LayerNorm (ViT §4.6 eps 1e-6; visual head §5 eps 1e-5).
//
// rmsnorm_bf16           y[r] = bf16(w ⊙ bf16(x[r]·rsqrt(mean(x[r]²) + eps)))     x, y: [rows, dim]; w: [dim]
// rmsnorm_residual_bf16  h[r] = bf16(h[r] + d[r]) in place, then y[r] = rmsnorm(h[r])  (the residual add
//                        of the previous sublayer fused with the next norm: one read of h and d)
// layernorm_bf16         y[r] = bf16((x[r] − mean)·rsqrt(var + eps)·γ + β), population variance;
//                        x and y may alias (in place); any even dim (65 532 for the visual head)
//
// dtype: bf16 storage, f32 math; the RMSNorm weight multiplies AFTER rounding the normalised value to
// bf16 (spec trap 19). Launch: one block per row, 256 threads (RMSNorm) / 1024 (LayerNorm);
// RMSNorm needs dim % 8 == 0 and dim ≤ 8·256·RMS_VECS (16 384), rows 16-byte aligned.
#include "common.cuh"

#define RMS_THREADS 256
#define RMS_VECS 8

// Loads a row into registers (16-byte vectors), returns the sum of squares over the block.
__device__ __forceinline__ float load_row(const bf16* x, int dim, float (*v)[8], float* scratch) {
    const int nvec = dim / 8;
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < RMS_VECS; i++) {
        const int c = threadIdx.x + i * RMS_THREADS;
        if (c < nvec) {
            unpack8(*reinterpret_cast<const uint4*>(x + c * 8), v[i]);
#pragma unroll
            for (int j = 0; j < 8; j++) ss += v[i][j] * v[i][j];
        }
    }
    return block_sum(ss, scratch);
}

__device__ __forceinline__ void store_rms(const float (*v)[8], float inv, const bf16* w, bf16* y, int dim) {
    const int nvec = dim / 8;
#pragma unroll
    for (int i = 0; i < RMS_VECS; i++) {
        const int c = threadIdx.x + i * RMS_THREADS;
        if (c < nvec) {
            float g[8], o[8];
            unpack8(*reinterpret_cast<const uint4*>(w + c * 8), g);
#pragma unroll
            for (int j = 0; j < 8; j++) o[j] = g[j] * round_bf(v[i][j] * inv);
            *reinterpret_cast<uint4*>(y + c * 8) = pack8(o);
        }
    }
}

extern "C" __global__ void __launch_bounds__(RMS_THREADS)
rmsnorm_bf16(const bf16* __restrict__ x, const bf16* __restrict__ w, bf16* __restrict__ y, int dim, float eps) {
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    float v[RMS_VECS][8];
    const float ss = load_row(x + row * dim, dim, v, scratch);
    const float inv = rsqrtf(ss / dim + eps);
    store_rms(v, inv, w, y + row * dim, dim);
}

extern "C" __global__ void __launch_bounds__(RMS_THREADS)
rmsnorm_residual_bf16(bf16* __restrict__ h, const bf16* __restrict__ d, const bf16* __restrict__ w, bf16* __restrict__ y, int dim, float eps) {
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    bf16* hr = h + row * dim;
    const bf16* dr = d + row * dim;
    const int nvec = dim / 8;
    float v[RMS_VECS][8];
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < RMS_VECS; i++) {
        const int c = threadIdx.x + i * RMS_THREADS;
        if (c < nvec) {
            float a[8], b[8];
            unpack8(*reinterpret_cast<const uint4*>(hr + c * 8), a);
            unpack8(*reinterpret_cast<const uint4*>(dr + c * 8), b);
#pragma unroll
            for (int j = 0; j < 8; j++) {
                v[i][j] = round_bf(a[j] + b[j]);
                ss += v[i][j] * v[i][j];
            }
            *reinterpret_cast<uint4*>(hr + c * 8) = pack8(v[i]);
        }
    }
    ss = block_sum(ss, scratch);
    const float inv = rsqrtf(ss / dim + eps);
    store_rms(v, inv, w, y + row * dim, dim);
}

// Two passes over the row for the statistics (mean, then centred variance: stable for the 65 532-wide
// head rows), a third to write. Pairs of bf16 (4-byte loads) so odd rows of 65 532 stay aligned.
extern "C" __global__ void __launch_bounds__(1024)
layernorm_bf16(const bf16* x, const bf16* __restrict__ gamma, const bf16* __restrict__ beta, bf16* y, int dim, float eps) {
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const unsigned* xr = reinterpret_cast<const unsigned*>(x + row * dim);
    const unsigned* g2 = reinterpret_cast<const unsigned*>(gamma);
    const unsigned* b2 = reinterpret_cast<const unsigned*>(beta);
    unsigned* yr = reinterpret_cast<unsigned*>(y + row * dim);
    const int pairs = dim / 2;
    float s = 0.f;
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const unsigned p = xr[i];
        s += lo_bf(p) + hi_bf(p);
    }
    const float mean = block_sum(s, scratch) / dim;
    float q = 0.f;
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const unsigned p = xr[i];
        const float a = lo_bf(p) - mean, b = hi_bf(p) - mean;
        q += a * a + b * b;
    }
    const float rstd = rsqrtf(block_sum(q, scratch) / dim + eps);
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const unsigned p = xr[i], g = g2[i], b = b2[i];
        yr[i] = pack_bf2((lo_bf(p) - mean) * rstd * lo_bf(g) + lo_bf(b), (hi_bf(p) - mean) * rstd * hi_bf(g) + hi_bf(b));
    }
}
