// gemv.cu: the decode step's projections, y = W·x for one token (memory-bound: W is read once).
//
// gemv_bf16  y[j] = bf16(Σ_i W[j, i]·x[i])                      (residual == nullptr)
//            y[j] = bf16(residual[j] + bf16(Σ_i W[j, i]·x[i]))  (fused residual add; y may alias residual)
//   W [n, k] bf16 row-major (a PyTorch Linear weight), x [k] bf16, y and residual [n] bf16; f32 accumulate.
//   k % 8 == 0 and W, x 16-byte aligned.
// gemv_logits_f32  y[j] = Σ_i W[j, i]·x[i] in f32, not rounded: the lm_head, so that the sampler and the
//   reported log-probabilities see the logits at f32 precision (near-ties stay ordered as in f32).
//
// The decode step's fused forms: the elementwise step before a projection is done while x is staged
// (every block recomputes it: one token's row is a few KB, read from L2), which saves a launch and a
// round trip through memory per fusion. Numerics equal the unfused kernels'. Not for the lm_head: its
// 19 k blocks would each redo the final norm, so it stays rmsnorm + gemv_logits_f32.
// gemv_rmsnorm_bf16  s = bf16(h + delta) (delta null: s = h), x = bf16(w ⊙ bf16(s·rsqrt(mean(s²) + eps)))
//   (rmsnorm_residual_bf16 / rmsnorm_bf16), y = bf16(W·x); block 0 also writes s to h_out (when not
//   null), which must not alias h: the other blocks are still reading h. h, delta, w, h_out [k].
// gemv_swiglu_bf16  x[i] = bf16(bf16(silu(g_i))·u_i) with g = gu[i], u = gu[k + i] (swiglu_bf16),
//   y = bf16(W·x); gu [2k].
// Launch (all): grid ceil(n / 8), block 256, dynamic shared memory 2·k bytes; k % 8 == 0.
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

// x = the RMSNorm of s = bf16(h + delta) into xs, as rmsnorm_residual_bf16 computes it (same thread
// mapping and reduction); block 0 stores s to h_out. Ends with the block synchronised.
__device__ __forceinline__ void stage_rmsnorm(const bf16* h, const bf16* delta, const bf16* __restrict__ w, bf16* h_out, uint4* xs, int k,
                                              float eps, float* scratch) {
    const int nvec = k / 8;
    float ss = 0.f;
    for (int c = threadIdx.x; c < nvec; c += blockDim.x) {
        float a[8];
        unpack8(reinterpret_cast<const uint4*>(h)[c], a);
        if (delta) {
            float b[8];
            unpack8(reinterpret_cast<const uint4*>(delta)[c], b);
#pragma unroll
            for (int j = 0; j < 8; j++) a[j] = round_bf(a[j] + b[j]);
        }
#pragma unroll
        for (int j = 0; j < 8; j++) ss += a[j] * a[j];
        const uint4 sv = pack8(a);
        xs[c] = sv;
        if (h_out && blockIdx.x == 0) reinterpret_cast<uint4*>(h_out)[c] = sv;
    }
    ss = block_sum(ss, scratch);
    const float inv = rsqrtf(ss / k + eps);
    // Each thread rewrites only the vectors it staged, so no barrier is needed before this pass.
    for (int c = threadIdx.x; c < nvec; c += blockDim.x) {
        float v[8], g[8], o[8];
        unpack8(xs[c], v);
        unpack8(reinterpret_cast<const uint4*>(w)[c], g);
#pragma unroll
        for (int j = 0; j < 8; j++) o[j] = g[j] * round_bf(v[j] * inv);
        xs[c] = pack8(o);
    }
    __syncthreads();
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_rmsnorm_bf16(const bf16* __restrict__ W, const bf16* h, const bf16* delta, const bf16* __restrict__ w, bf16* h_out, bf16* __restrict__ y,
                  int n, int k, float eps) {
    extern __shared__ uint4 xs[];  // [k / 8]
    __shared__ float scratch[32];
    stage_rmsnorm(h, delta, w, h_out, xs, k, eps, scratch);
    const int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (row >= n) return;
    const float acc = gemv_row(W, xs, row, k);
    if ((threadIdx.x & 31) == 0) y[row] = f2bf(acc);
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_swiglu_bf16(const bf16* __restrict__ W, const bf16* __restrict__ gu, bf16* __restrict__ y, int n, int k) {
    extern __shared__ uint4 xs[];  // [k / 8]
    for (int c = threadIdx.x; c < k / 8; c += blockDim.x) {
        float g[8], u[8], o[8];
        unpack8(reinterpret_cast<const uint4*>(gu)[c], g);
        unpack8(reinterpret_cast<const uint4*>(gu + k)[c], u);
#pragma unroll
        for (int j = 0; j < 8; j++) o[j] = round_bf(g[j] / (1.f + expf(-g[j]))) * u[j];
        xs[c] = pack8(o);
    }
    __syncthreads();
    const int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (row >= n) return;
    const float acc = gemv_row(W, xs, row, k);
    if ((threadIdx.x & 31) == 0) y[row] = f2bf(acc);
}

// The batched decode step's projections (continuous batching, up to GEMV_MAX_ROWS running requests):
// gemv_rows_bf16        y[r, j] = bf16(Σ_i W[j, i]·x[r, i])   for every row r < R
// gemv_rows_logits_f32  y[r, j] = Σ_i W[j, i]·x[r, i] in f32, not rounded (the lm_head of a batch)
//   W [n, k] bf16 row-major, x [R, k] bf16 (row stride k), y [R, n]; 1 ≤ R ≤ 16, k % 8 == 0, W and x
//   16-byte aligned. Each weight vector is loaded once and used for all R rows, so a step of R
//   requests reads the weights once (the point of batching a memory-bound decode).
//   Per row, the lane split, the fmaf order and the warp reduction are those of gemv_row, so row r's
//   result equals gemv_bf16 / gemv_logits_f32 on x[r] bit for bit: a request's tokens do not depend on
//   the rows beside it.
// Launch: grid ceil(n / 8), block 256 (one output row j per warp), no dynamic shared memory: the R
//   input rows (R·2k bytes, up to 192 KiB for the MLP's down projection) are read through L1, where
//   the block's 8 warps share them.
#define GEMV_MAX_ROWS 16

template <bool F32OUT>
__device__ __forceinline__ void gemv_rows(const bf16* __restrict__ W, const bf16* __restrict__ x, void* __restrict__ y, int n, int k, int R) {
    const int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (row >= n) return;  // uniform per warp: the warp leaves whole
    const int lane = threadIdx.x & 31;
    const int nvec = k / 8;
    const uint4* wr = reinterpret_cast<const uint4*>(W + (size_t)row * k);
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    float acc[GEMV_MAX_ROWS];
#pragma unroll
    for (int r = 0; r < GEMV_MAX_ROWS; r++) acc[r] = 0.f;
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
                float a[8];
                unpack8(wv[u], a);
#pragma unroll
                for (int r = 0; r < GEMV_MAX_ROWS; r++) {
                    if (r < R) {
                        float b[8];
                        unpack8(xv[(size_t)r * nvec + c], b);
#pragma unroll
                        for (int j = 0; j < 8; j++) acc[r] = fmaf(a[j], b[j], acc[r]);
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < GEMV_MAX_ROWS; r++) {
        if (r < R) {  // R is uniform: every lane reaches each reduction
            const float s = warp_sum(acc[r]);
            if (lane == 0) {
                if (F32OUT) reinterpret_cast<float*>(y)[(size_t)r * n + row] = s;
                else reinterpret_cast<bf16*>(y)[(size_t)r * n + row] = f2bf(s);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_rows_bf16(const bf16* __restrict__ W, const bf16* __restrict__ x, bf16* __restrict__ y, int n, int k, int R) {
    gemv_rows<false>(W, x, y, n, k, R);
}

extern "C" __global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_rows_logits_f32(const bf16* __restrict__ W, const bf16* __restrict__ x, float* __restrict__ y, int n, int k, int R) {
    gemv_rows<true>(W, x, y, n, k, R);
}
