// activation.cu: elementwise steps between the matrix products, bf16 storage, f32 math, each result
// rounded to bf16 as the reference's bf16 tensor ops do.
//
// swiglu_bf16      out[r, i] = bf16(bf16(silu(g)) · u) with g = gu[r, i], u = gu[r, I + i]
//                  gu [L, 2I] (the fused gate|up projection), out [L, I]; I % 8 == 0   (Qwen3 MLP, §7)
// gelu_tanh_bf16   x = bf16(0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))) in place, n % 8 == 0   (ViT MLP, §4.6)
// add_bf16         x = bf16(x + d) in place (residual connections), n % 8 == 0
// add_bias_bf16    x[r, c] = bf16(x[r, c] + b[c]) in place, x [rows, cols], cols % 8 == 0
// Launch: 1-D grid over n/8 16-byte vectors, block 256; all pointers 16-byte aligned.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256)
swiglu_bf16(const bf16* __restrict__ gu, bf16* __restrict__ out, int L, int I) {
    const size_t v = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t per_row = I / 8;
    if (v >= (size_t)L * per_row) return;
    const size_t r = v / per_row, c = (v % per_row) * 8;
    float g[8], u[8], o[8];
    unpack8(*reinterpret_cast<const uint4*>(gu + r * 2 * I + c), g);
    unpack8(*reinterpret_cast<const uint4*>(gu + r * 2 * I + I + c), u);
#pragma unroll
    for (int j = 0; j < 8; j++) o[j] = round_bf(g[j] / (1.f + expf(-g[j]))) * u[j];
    *reinterpret_cast<uint4*>(out + r * I + c) = pack8(o);
}

extern "C" __global__ void __launch_bounds__(256)
gelu_tanh_bf16(bf16* __restrict__ x, size_t n) {
    const size_t v = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (v * 8 >= n) return;
    float f[8];
    unpack8(*reinterpret_cast<const uint4*>(x + v * 8), f);
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const float z = f[j];
        f[j] = 0.5f * z * (1.f + tanhf(0.7978845608028654f * (z + 0.044715f * z * z * z)));
    }
    *reinterpret_cast<uint4*>(x + v * 8) = pack8(f);
}

extern "C" __global__ void __launch_bounds__(256)
add_bf16(bf16* __restrict__ x, const bf16* __restrict__ d, size_t n) {
    const size_t v = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (v * 8 >= n) return;
    float a[8], b[8];
    unpack8(*reinterpret_cast<const uint4*>(x + v * 8), a);
    unpack8(*reinterpret_cast<const uint4*>(d + v * 8), b);
#pragma unroll
    for (int j = 0; j < 8; j++) a[j] += b[j];
    *reinterpret_cast<uint4*>(x + v * 8) = pack8(a);
}

extern "C" __global__ void __launch_bounds__(256)
add_bias_bf16(bf16* __restrict__ x, const bf16* __restrict__ b, int rows, int cols) {
    const size_t v = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t per_row = cols / 8;
    if (v >= (size_t)rows * per_row) return;
    const size_t c = (v % per_row) * 8;
    float a[8], e[8];
    unpack8(*reinterpret_cast<const uint4*>(x + v * 8), a);
    unpack8(*reinterpret_cast<const uint4*>(b + c), e);
#pragma unroll
    for (int j = 0; j < 8; j++) a[j] += e[j];
    *reinterpret_cast<uint4*>(x + v * 8) = pack8(a);
}
