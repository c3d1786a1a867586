// vision.cu: the ViT's position-dependent steps (model-spec §4.2, §4.3).
//
// vision_rope2d_bf16  2-D rotary on q and k inside the fused qkv buffer, in place.
//   qkv [N, stride] bf16 with q at columns 0..heads·hd and k at heads·hd..2·heads·hd (stride = 3·heads·hd)
//   pos [N] int4 {.x = y, .y = x, .z = h, .w = w}: patch coordinates of each token in its frame, and
//   the frame's patch grid (h, w unused by the rotary)
//   With r = hd/2 rotary pairs and ω_j = 1/10000^(2j/r) (j < r/2): angle of pair i is y·ω_i for
//   i < r/2, x·ω_(i−r/2) after; q'[i] = q[i]·cos − q[i+r]·sin, q'[i+r] = q[i+r]·cos + q[i]·sin.
//   f32 math on the bf16 values, rounded once (the reference upcasts, rotates, casts back).
//   Launch: grid N, block 256 (threads stride over 2·heads·r pairs). hd must be a multiple of 4.
//
// pos_embed_bicubic_bf16  x[t] = bf16(x[t] + bf16(PE(y, x))) in place, where PE is the learned
//   side×side table [side², D] resized to the token's (h, w) grid by PyTorch bicubic (A = −0.75,
//   align_corners=False, source index not clamped, taps clamped; x-direction first, then y).
//   x [N, D] bf16, table [side², D] bf16, pos [N] int4 as above. Launch: grid N, block 128.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256)
vision_rope2d_bf16(bf16* __restrict__ qkv, const int4* __restrict__ pos, int n, int heads, int hd, int stride) {
    const int t = blockIdx.x;
    if (t >= n) return;
    const int r = hd / 2, nf = r / 2;
    const int4 p = pos[t];
    bf16* row = qkv + (size_t)t * stride;
    for (int k = threadIdx.x; k < 2 * heads * r; k += blockDim.x) {
        const int i = k % r, part = k / r;  // part = (q or k) · heads + head: both are contiguous
        const int j = i < nf ? i : i - nf;
        const float coord = (float)(i < nf ? p.x : p.y);
        const float omega = 1.0f / powf(10000.0f, (float)(2 * j) / (float)r);
        const float a = coord * omega;
        const float c = cosf(a), s = sinf(a);
        bf16* h = row + (size_t)part * hd;
        const float u = bf2f(h[i]), v = bf2f(h[i + r]);
        h[i] = f2bf(u * c - v * s);
        h[i + r] = f2bf(v * c + u * s);
    }
}

__device__ __forceinline__ float cc1(float x) { const float A = -0.75f; return ((A + 2.f) * x - (A + 3.f)) * x * x + 1.f; }
__device__ __forceinline__ float cc2(float x) { const float A = -0.75f; return ((A * x - 5.f * A) * x + 8.f * A) * x - 4.f * A; }

// Taps and weights of output index o of an axis resized from `in` to `out` samples.
__device__ __forceinline__ void cubic_taps(int o, int out, int in, int* idx, float* w) {
    const float scale = (float)in / (float)out;
    const float src = scale * ((float)o + 0.5f) - 0.5f;
    const float i0 = floorf(src);
    const float t = src - i0;
    const float t1 = 1.f - t;
    w[0] = cc2(t + 1.f); w[1] = cc1(t); w[2] = cc1(t1); w[3] = cc2(t1 + 1.f);
#pragma unroll
    for (int k = 0; k < 4; k++) idx[k] = min(max((int)i0 - 1 + k, 0), in - 1);
}

extern "C" __global__ void __launch_bounds__(128)
pos_embed_bicubic_bf16(bf16* __restrict__ x, const bf16* __restrict__ table, const int4* __restrict__ pos, int n, int D, int side) {
    const int t = blockIdx.x;
    if (t >= n) return;
    const int4 p = pos[t];  // {.x = y, .y = x, .z = h, .w = w}
    int iy[4], ix[4];
    float wy[4], wx[4];
    cubic_taps(p.y, p.w, side, ix, wx);
    cubic_taps(p.x, p.z, side, iy, wy);
    bf16* row = x + (size_t)t * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.f;
#pragma unroll
        for (int a = 0; a < 4; a++) {
            const bf16* tr = table + (size_t)iy[a] * side * D + d;
            float line = 0.f;
#pragma unroll
            for (int b = 0; b < 4; b++) line += bf2f(tr[(size_t)ix[b] * D]) * wx[b];
            acc += line * wy[a];
        }
        row[d] = f2bf(bf2f(row[d]) + round_bf(acc));
    }
}
