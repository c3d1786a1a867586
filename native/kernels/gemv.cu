// gemv.cu: the decode step's projections, y = W·x for one token (memory-bound: W is read once).
//
// gemv_bf16  y[j] = bf16(Σ_i W[j, i]·x[i])                      (residual == nullptr)
//            y[j] = bf16(residual[j] + bf16(Σ_i W[j, i]·x[i]))  (fused residual add; y may alias residual)
//   W [n, k] bf16 row-major (a PyTorch Linear weight), x [k] bf16, y and residual [n] bf16; f32 accumulate.
//   k % 8 == 0 and W, x 16-byte aligned.
// gemv_logits_f32  y[j] = Σ_i W[j, i]·x[i] in f32, not rounded: the lm_head, so that the sampler and the
//   reported log-probabilities see the logits at f32 precision (near-ties stay ordered as in f32).
// Launch: grid ceil(n / 8), block 256 (8 warps, one output row per warp), dynamic shared memory 2·k
// bytes (x is staged once per block). Each lane streams 16-byte vectors of its row with up to 8 loads
// in flight (ld.global.nc.L1::no_allocate: weights are used once per token and must not evict x).
#include "common.cuh"

#define GEMV_WARPS 8
#define GEMV_UNROLL 8

// Σ_i W[row, i]·x[i] in f32 for this warp's row (every lane gets it); x is staged in shared memory.
__device__ __forceinline__ float gemv_row(const bf16* __restrict__ W, const uint4* xs, int row, int k) {
    const int lane = threadIdx.x & 31;
    const int nvec = k / 8;
    const uint4* wr = reinterpret_cast<const uint4*>(W + (size_t)row * k);
    float acc = 0.f;
    for (int base = lane; base < nvec; base += 32 * GEMV_UNROLL) {
        uint4 wv[GEMV_UNROLL];
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            const int c = base + u * 32;
            wv[u] = c < nvec ? ld_stream(wr + c) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            const int c = base + u * 32;
            if (c < nvec) {
                float a[8], b[8];
                unpack8(wv[u], a);
                unpack8(xs[c], b);
#pragma unroll
                for (int j = 0; j < 8; j++) acc = fmaf(a[j], b[j], acc);
            }
        }
    }
    return warp_sum(acc);
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_bf16(const bf16* __restrict__ W, const bf16* __restrict__ x, const bf16* residual, bf16* y, int n, int k) {
    extern __shared__ uint4 xs[];  // [k / 8]
    for (int i = threadIdx.x; i < k / 8; i += blockDim.x) xs[i] = reinterpret_cast<const uint4*>(x)[i];
    __syncthreads();
    const int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (row >= n) return;
    const float acc = gemv_row(W, xs, row, k);
    if ((threadIdx.x & 31) == 0) {
        const float dot = round_bf(acc);
        y[row] = f2bf(residual ? bf2f(residual[row]) + dot : dot);
    }
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_logits_f32(const bf16* __restrict__ W, const bf16* __restrict__ x, float* __restrict__ y, int n, int k) {
    extern __shared__ uint4 xs[];  // [k / 8]
    for (int i = threadIdx.x; i < k / 8; i += blockDim.x) xs[i] = reinterpret_cast<const uint4*>(x)[i];
    __syncthreads();
    const int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (row >= n) return;
    const float acc = gemv_row(W, xs, row, k);
    if ((threadIdx.x & 31) == 0) y[row] = acc;
}
