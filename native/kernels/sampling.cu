// sampling.cu: the next-token choice on the device (model-spec §8.1), so that only the chosen id and
// the requested log-probabilities cross to the host (never 151 936 logits per token).
//
// logits_penalty_f32  z[i] = logits[i] (f32, from gemv_logits_f32), then for ids already generated in this request
//   (seen[i] = 1): z/ρ if z > 0 else z·ρ (repetition penalty, also when greedy). logits, seen, z: [V].
//   Launch: grid ceil(V / 256), block 256.
// sample_f32  one block of 1024 threads over z [V] (the penalised logits):
//   1. log-softmax statistics of z (max, Σ exp in f64) and the top_n (id, logprob) pairs, logprob
//      descending, lower id first on ties (reported logprobs: before temperature and truncation);
//   2. greedy (temperature ≤ 0): the first index of the largest z;
//      else w = z / T; top-k keeps w ≥ the k-th largest (ties kept; radix select on order-preserving
//      u32 keys, 4 passes of 8 bits); top-p keeps w ≥ the smallest value whose ascending cumulative
//      probability exceeds 1 − p (radix select on probability mass; ties at that value all kept; the
//      mass histogram is summed in 128-bit fixed point, so the cut does not depend on the order in
//      which threads add to it: a seeded run gives the same tokens every time);
//      multinomial: the first survivor, in index order, whose cumulative weight exceeds u·Σ weights,
//      u ∈ [0, 1) given by the host (the same stream as the CPU sampler);
//   3. writes the result, marks seen[id] = 1 and *next_id = id (read by the next decode step's
//      embedding gather). NaN never wins and never survives.
//   params and result live in device memory so that a captured decode graph replays them.
#include "common.cuh"

#define SAMPLE_THREADS 1024
#define SAMPLE_MAX_TOP 20

struct SampleParams {
    float temperature;  // ≤ 0: greedy
    int top_k;          // 0: off
    float top_p;        // ≥ 1: off
    float rep_penalty;  // 1: off
    double u;           // uniform in [0, 1), for the multinomial draw
    int top_n;          // log-probabilities requested (≤ SAMPLE_MAX_TOP)
    int vocab;
};

struct SampleResult {
    int id;
    float logprob;
    int n;
    int pad;
    int top_ids[SAMPLE_MAX_TOP];
    float top_logprobs[SAMPLE_MAX_TOP];
};

__device__ __forceinline__ void logits_penalty(const float* __restrict__ logits, const unsigned char* __restrict__ seen, float* __restrict__ z,
                                               const SampleParams* __restrict__ p, int V) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= V) return;
    float v = logits[i];
    const float rho = p->rep_penalty;
    if (rho != 1.f && seen[i]) v = v > 0.f ? v / rho : v * rho;
    z[i] = v;
}

extern "C" __global__ void __launch_bounds__(256)
logits_penalty_f32(const float* __restrict__ logits, const unsigned char* __restrict__ seen, float* __restrict__ z,
                   const SampleParams* __restrict__ p, int V) {
    logits_penalty(logits, seen, z, p, V);
}

// logits_penalty_rows_f32: the batched decode step's, row r = blockIdx.y of R: logits, z [R, V];
//   seen_tab [R] u64: device address of row r's request's seen [V] (its session's own history);
//   p [R]. Launch: grid (ceil(V / 256), R), block 256.
extern "C" __global__ void __launch_bounds__(256)
logits_penalty_rows_f32(const float* __restrict__ logits, const unsigned long long* __restrict__ seen_tab, float* __restrict__ z,
                        const SampleParams* __restrict__ p, int V) {
    const int r = blockIdx.y;
    logits_penalty(logits + (size_t)r * V, reinterpret_cast<const unsigned char*>(seen_tab[r]), z + (size_t)r * V, p + r, V);
}

// Order-preserving key: a larger float gives a larger unsigned key.
__device__ __forceinline__ unsigned order_key(float f) {
    const unsigned u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ double block_sum_d(double v, double* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? scratch[lane] : 0.0;
    return warp_sum_d(v);
}

// Exclusive prefix sum over the block (thread order); `scratch` holds 32 doubles.
__device__ double block_exclusive_scan_d(double v, double* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    double inc = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const double n = __shfl_up_sync(0xffffffffu, inc, o);
        if (lane >= o) inc += n;
    }
    __syncthreads();
    if (lane == 31) scratch[warp] = inc;
    __syncthreads();
    if (warp == 0) {
        double w = lane < (int)(blockDim.x >> 5) ? scratch[lane] : 0.0;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const double n = __shfl_up_sync(0xffffffffu, w, o);
            if (lane >= o) w += n;
        }
        scratch[lane] = w;  // inclusive totals of warps 0..lane
    }
    __syncthreads();
    return inc - v + (warp > 0 ? scratch[warp - 1] : 0.0);
}

// (value, id) ordered by value descending, then id ascending; id < 0 = nothing.
struct Cand { float v; int i; };
__device__ __forceinline__ bool better(Cand a, Cand b) { return a.i >= 0 && (b.i < 0 || a.v > b.v || (a.v == b.v && a.i < b.i)); }

__device__ Cand block_best(Cand c, Cand* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const Cand n = {__shfl_xor_sync(0xffffffffu, c.v, o), __shfl_xor_sync(0xffffffffu, c.i, o)};
        if (better(n, c)) c = n;
    }
    __syncthreads();
    if (lane == 0) scratch[warp] = c;
    __syncthreads();
    c = lane < (int)(blockDim.x >> 5) ? scratch[lane] : Cand{0.f, -1};
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const Cand n = {__shfl_xor_sync(0xffffffffu, c.v, o), __shfl_xor_sync(0xffffffffu, c.i, o)};
        if (better(n, c)) c = n;
    }
    return c;
}

// The best (value desc, id asc) entry of z strictly after `prev` in that order (prev.i < 0: the best).
__device__ Cand next_best(const float* z, int V, Cand prev, Cand* scratch) {
    Cand c = {0.f, -1};
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const Cand e = {z[i], i};
        if (isnan(e.v) || (prev.i >= 0 && !better(prev, e))) continue;
        if (better(e, c)) c = e;
    }
    return block_best(c, scratch);
}

// w_i after temperature (z / T, as the CPU sampler: a multiply by 1/T could differ in the last bit);
// NaN counts as removed (−inf).
__device__ __forceinline__ float scaled(const float* z, int i, float temp) {
    const float w = __fdiv_rn(z[i], temp);
    return isnan(w) ? -OVIS_INF : w;
}

// Radix select of the k-th largest key among finite w (4 passes of 8 bits), returns its key.
__device__ unsigned kth_largest_key(const float* z, int V, float temp, int k, unsigned* hist, unsigned* shared_out) {
    unsigned prefix = 0, mask = 0;
    int remaining = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            const float w = scaled(z, i, temp);
            const unsigned key = order_key(w);
            if (w > -OVIS_INF && (key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int above = 0, d = 255;
            for (; d > 0 && above + (int)hist[d] < remaining; d--) above += hist[d];
            shared_out[0] = d;
            shared_out[1] = above;
        }
        __syncthreads();
        prefix |= shared_out[0] << shift;
        mask |= 255u << shift;
        remaining -= shared_out[1];
        __syncthreads();
    }
    return prefix;
}

// Probability mass in 128-bit unsigned fixed point, 64 fraction bits: {hi, lo} = hi + lo·2⁻⁶⁴. A weight
// exp(w − wmax) ∈ [0, 1] becomes lo = ⌊weight·2⁶⁴⌋ (hi = 1 for weight 1), exact but for the bits below
// 2⁻⁶⁴. Integer addition is associative, so a histogram bucket summed by atomics holds the same bits
// whatever order the threads add in (f64 atomics would round differently from run to run and move the
// top-p cut). The carry out of lo goes to hi (an add wraps at most once; a bucket sums at most V ≤ 2³¹
// weights ≤ 1, so hi never overflows).
__device__ __forceinline__ void mass_add(unsigned long long* hi, unsigned long long* lo, double weight) {
    const unsigned long long l = weight >= 1.0 ? 0ull : (unsigned long long)(weight * 18446744073709551616.0);
    const unsigned long long h = weight >= 1.0 ? 1ull : 0ull;
    const unsigned long long old = atomicAdd(lo, l);
    const unsigned long long carry = old + l < old ? 1ull : 0ull;
    if (h + carry) atomicAdd(hi, h + carry);
}

__device__ __forceinline__ double mass_value(unsigned long long hi, unsigned long long lo) {
    return (double)hi + (double)lo * 5.421010862427522e-20;  // 2⁻⁶⁴
}

// One pass of the top-p radix select: hist[d] (as {hist_hi, hist_lo}) = the mass of the survivors
// (finite, key ≥ floor_key) whose key matches `prefix` under `mask` and has digit d at `shift`.
// Deterministic: the same bits for any thread schedule (see mass_add).
__device__ void top_p_mass_hist(const float* z, int V, float temp, unsigned floor_key, float wmax, unsigned prefix, unsigned mask, int shift,
                                unsigned long long* hist_hi, unsigned long long* hist_lo) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) hist_hi[b] = hist_lo[b] = 0ull;
    __syncthreads();
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const float w = scaled(z, i, temp);
        const unsigned key = order_key(w);
        if (w > -OVIS_INF && key >= floor_key && (key & mask) == prefix) {
            const int d = (key >> shift) & 255;
            mass_add(&hist_hi[d], &hist_lo[d], exp((double)(w - wmax)));
        }
    }
    __syncthreads();
}

// Radix select, ascending, on probability mass among survivors (key ≥ floor_key, finite): the smallest
// key K with mass(key ≤ K) > cut. Weights exp(w − wmax) in f64, summed per digit in fixed point.
__device__ unsigned top_p_key(const float* z, int V, float temp, unsigned floor_key, float wmax, double cut, unsigned long long* hist_hi,
                              unsigned long long* hist_lo, unsigned* shared_out, double* shared_d) {
    unsigned prefix = 0, mask = 0;
    double remaining = cut;
    for (int shift = 24; shift >= 0; shift -= 8) {
        top_p_mass_hist(z, V, temp, floor_key, wmax, prefix, mask, shift, hist_hi, hist_lo);
        if (threadIdx.x == 0) {
            double below = 0.0;
            int d = 0;
            for (; d < 255; d++) {
                const double h = mass_value(hist_hi[d], hist_lo[d]);
                if (below + h > remaining) break;
                below += h;
            }
            shared_out[0] = d;
            shared_d[0] = below;
        }
        __syncthreads();
        prefix |= shared_out[0] << shift;
        mask |= 255u << shift;
        remaining -= shared_d[0];
        __syncthreads();
    }
    return prefix;
}

// (SAMPLE_THREADS, 1): one block per launch, so ptxas may use up to 64 registers rather than spill.
// static: internal linkage, so its __shared__ variables are one set per translation unit (the
// emulator places them in one section, which an inline function's COMDAT copy would conflict with).
static __device__ __forceinline__ void sample_row(const float* __restrict__ z, const SampleParams* __restrict__ params, SampleResult* __restrict__ out,
                                           unsigned char* __restrict__ seen, int* __restrict__ next_id) {
    __shared__ double dscratch[32];
    __shared__ Cand cscratch[32];
    __shared__ unsigned hist[256];
    __shared__ unsigned long long mhist_hi[256], mhist_lo[256];
    __shared__ unsigned uout[2];
    __shared__ double dout[1];
    __shared__ int pick;
    const SampleParams p = *params;
    const int V = p.vocab;
    // 1. log-softmax statistics of the penalised logits and the requested top entries.
    float m = -OVIS_INF;
    for (int i = threadIdx.x; i < V; i += blockDim.x) if (!isnan(z[i])) m = fmaxf(m, z[i]);
    m = block_max(m, reinterpret_cast<float*>(dscratch));
    double total = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) if (!isnan(z[i])) total += exp((double)(z[i] - m));
    total = m == -OVIS_INF ? 1.0 : block_sum_d(total, dscratch);
    const double log_total = log(total);
    const int top_n = min(p.top_n, SAMPLE_MAX_TOP);
    // Slots past the last candidate found (fewer non-NaN logits than top_n) read as empty (−1), not as
    // the previous step's ids.
    if (threadIdx.x == 0)
        for (int r = 0; r < top_n; r++) out->top_ids[r] = -1;
    Cand prev = {0.f, -1};
    for (int r = 0; r < top_n; r++) {
        prev = next_best(z, V, prev, cscratch);
        if (threadIdx.x == 0) {
            out->top_ids[r] = prev.i;
            out->top_logprobs[r] = (float)((double)(prev.v - m) - log_total);
        }
        if (prev.i < 0) break;
    }
    // 2. the choice.
    int id;
    if (p.temperature <= 0.f) {
        id = next_best(z, V, Cand{0.f, -1}, cscratch).i;
    } else {
        const float temp = p.temperature;
        unsigned floor_key = 0;
        if (p.top_k > 0 && p.top_k < V) floor_key = kth_largest_key(z, V, temp, p.top_k, hist, uout);
        float wmax = -OVIS_INF;
        for (int i = threadIdx.x; i < V; i += blockDim.x) wmax = fmaxf(wmax, scaled(z, i, temp));
        wmax = block_max(wmax, reinterpret_cast<float*>(dscratch));
        if (p.top_p < 1.f && wmax > -OVIS_INF) {
            double mass = 0.0;
            for (int i = threadIdx.x; i < V; i += blockDim.x) {
                const float w = scaled(z, i, temp);
                if (w > -OVIS_INF && order_key(w) >= floor_key) mass += exp((double)(w - wmax));
            }
            mass = block_sum_d(mass, dscratch);
            const unsigned pk = p.top_p <= 0.f ? order_key(wmax) : top_p_key(z, V, temp, floor_key, wmax, (1.0 - (double)p.top_p) * mass, mhist_hi, mhist_lo, uout, dout);
            floor_key = max(floor_key, pk);
        }
        // Multinomial: contiguous chunks per thread, an exclusive scan of their weights, then the one
        // thread whose chunk holds the target walks it in index order.
        const int chunk = (V + blockDim.x - 1) / blockDim.x;
        const int c0 = min(V, (int)threadIdx.x * chunk), c1 = min(V, c0 + chunk);
        double part = 0.0;
        int last = -1;
        for (int i = c0; i < c1; i++) {
            const float w = scaled(z, i, temp);
            if (w > -OVIS_INF && order_key(w) >= floor_key) { part += exp((double)(w - wmax)); last = i; }
        }
        const double base = block_exclusive_scan_d(part, dscratch);
        const double all = block_sum_d(part, dscratch + 0) ;
        if (threadIdx.x == 0) pick = 0x7fffffff;
        __syncthreads();
        const double target = p.u * all;
        if (part > 0.0 && target >= base && target < base + part) {
            double acc = base;
            for (int i = c0; i < c1; i++) {
                const float w = scaled(z, i, temp);
                if (w > -OVIS_INF && order_key(w) >= floor_key) {
                    acc += exp((double)(w - wmax));
                    if (target < acc) { atomicMin(&pick, i); break; }
                }
            }
        }
        __syncthreads();
        if (pick == 0x7fffffff) {
            // Rounding put the target past the last weight: take the last survivor (the CPU does too).
            const Cand lastc = block_best(Cand{(float)last, last}, cscratch);
            if (threadIdx.x == 0) pick = lastc.i;
            __syncthreads();
        }
        id = pick;
        if (id < 0) id = next_best(z, V, Cand{0.f, -1}, cscratch).i;
    }
    // 3. the result.
    if (threadIdx.x == 0) {
        if (id < 0) id = 0;
        out->id = id;
        out->n = top_n;
        out->logprob = (float)((double)(z[id] - m) - log_total);
        seen[id] = 1;
        *next_id = id;
    }
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1)
sample_f32(const float* __restrict__ z, const SampleParams* __restrict__ params, SampleResult* __restrict__ out,
           unsigned char* __restrict__ seen, int* __restrict__ next_id) {
    sample_row(z, params, out, seen, next_id);
}

// sample_rows_f32: the batched decode step's sampler, one block per request: block r samples z [R, V]
//   (row stride V = params[r].vocab) row r with params[r] (its own temperature, top-k/p, u, top_n) into out[r] and next_id[r], and marks
//   the id in its own history seen_tab[r] (u64 device address of [V] bytes). Row r's result equals
//   sample_f32's on that row. Launch: grid R, block 1024.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1)
sample_rows_f32(const float* __restrict__ z, const SampleParams* __restrict__ params, SampleResult* __restrict__ out,
                const unsigned long long* __restrict__ seen_tab, int* __restrict__ next_id, int V) {
    const int r = blockIdx.x;
    sample_row(z + (size_t)r * V, params + r, out + r, reinterpret_cast<unsigned char*>(seen_tab[r]), next_id + r);
}
