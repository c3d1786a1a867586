// embedding.cu: building the LLM input rows (model-spec §6) and the decode step's bookkeeping.
//
// embedding_gather_bf16  out[r] = table[ids[r]]: table [vocab, H] bf16, ids [n] (device, so the decode
//                        graph reads the id the sampler just wrote), out [n, H]; an id outside
//                        0..vocab gives a zero row (the host validates ids before they get here)
// merge_rows_bf16        out[r] = one row of embed_tokens (src.x = 0), of the VTE (src.x = 1: indicator
//                        ids −301..−304 → rows V−4..V−1), or of the visual embeddings (src.x = 2: the
//                        j-th −300 atom → row j); src [n] int2 (table, row) built by the host from the ids
// advance_position_i32   *pos += n (one thread): moves the decode graph's position after each step
// Launch: grid n rows, block 128, 16-byte copies (H % 8 == 0).
#include "common.cuh"

__device__ __forceinline__ void copy_row(const bf16* src, bf16* dst, int H) {
    const uint4* s = reinterpret_cast<const uint4*>(src);
    uint4* d = reinterpret_cast<uint4*>(dst);
    for (int i = threadIdx.x; i < H / 8; i += blockDim.x) d[i] = s ? s[i] : make_uint4(0, 0, 0, 0);
}

extern "C" __global__ void __launch_bounds__(128)
embedding_gather_bf16(const int* __restrict__ ids, const bf16* __restrict__ table, bf16* __restrict__ out, int n, int H, int vocab) {
    const int r = blockIdx.x;
    if (r >= n) return;
    const int id = ids[r];
    copy_row(id >= 0 && id < vocab ? table + (size_t)id * H : nullptr, out + (size_t)r * H, H);
}

extern "C" __global__ void __launch_bounds__(128)
merge_rows_bf16(const int2* __restrict__ src, const bf16* __restrict__ embed, const bf16* __restrict__ vte,
                const bf16* __restrict__ visual, bf16* __restrict__ out, int n, int H) {
    const int r = blockIdx.x;
    if (r >= n) return;
    const int2 s = src[r];
    const bf16* base = s.x == 0 ? embed : s.x == 1 ? vte : visual;
    copy_row(base + (size_t)s.y * H, out + (size_t)r * H, H);
}

extern "C" __global__ void advance_position_i32(int* pos, int n) {
    if (threadIdx.x == 0 && blockIdx.x == 0) *pos += n;
}
