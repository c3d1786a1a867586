// Test-only kernels over device functions of native/kernels/sampling.cu, for the emulation suite
// (run.py, group "sampling"): emubuild compiles this file after sampling.cu in one translation unit.
// NVRTC never compiles it and the engine never launches it.

// One pass of the top-p radix select's mass histogram (top_p_mass_hist): out[d] = the bucket's mass
// as a double. run.py requires the same bits under every thread schedule and the exact fixed-point sum.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1)
probe_top_p_mass_hist(const float* __restrict__ z, int V, float temp, unsigned floor_key, float wmax, unsigned prefix, unsigned mask, int shift,
                      double* __restrict__ out) {
    __shared__ unsigned long long hi[256], lo[256];
    top_p_mass_hist(z, V, temp, floor_key, wmax, prefix, mask, shift, hi, lo);
    for (int b = threadIdx.x; b < 256; b += blockDim.x) out[b] = mass_value(hi[b], lo[b]);
}
