// softmax.cu: the visual head's probabilities (model-spec §5, trap 3).
//
// softmax_rows_bf16  y[r, c] = bf16(exp(x[r, c] − max_r) / Σ_c exp(x[r, c] − max_r)) for c < cols, and
//                    y[r, c] = 0 for cols ≤ c < y_stride (the 4 zero indicator columns of the padded
//                    [M, 65 536] probability matrix that multiplies the VTE)
//   x [rows, cols] bf16 (cols = 65 532: rows are only 8-byte aligned, so 2-byte loads), y [rows, y_stride]
//   f32 math (max, sum, exp), one rounding at the end.
// Launch: grid rows, block 1024 (three passes over the row: it stays in L1/L2 between them).
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(1024)
softmax_rows_bf16(const bf16* __restrict__ x, bf16* __restrict__ y, int cols, int y_stride) {
    __shared__ float scratch[32];
    const bf16* xr = x + (size_t)blockIdx.x * cols;
    bf16* yr = y + (size_t)blockIdx.x * y_stride;
    float m = -OVIS_INF;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, bf2f(xr[c]));
    m = block_max(m, scratch);
    float s = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += expf(bf2f(xr[c]) - m);
    const float inv = 1.f / block_sum(s, scratch);
    for (int c = threadIdx.x; c < y_stride; c += blockDim.x) yr[c] = c < cols ? f2bf(expf(bf2f(xr[c]) - m) * inv) : (bf16)0;
}
