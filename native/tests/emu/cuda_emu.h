// cuda_emu.h: CPU emulation of the CUDA C subset used by native/kernels/*.cu, so the kernel sources can
// be compiled by g++ and run with CUDA's execution semantics (see README.md).
//
// Execution model. A launch runs its blocks one after another (in an order the driver chooses:
// forward, reverse or shuffled). Inside a block every CUDA thread is a user-level fiber (ucontext) on
// one OS thread; the scheduler runs each fiber until it reaches a synchronisation point (__syncthreads,
// __syncwarp, a shuffle, mma.sync) or returns, then picks the next. A barrier is released only when
// every thread it names has arrived:
//   __syncthreads  all threads of the block that have not exited (a barrier reached while some threads
//                  have already exited is reported as an error: the kernels promise uniform barriers);
//   warp collectives (__shfl_*_sync, __syncwarp, mma.sync): every lane in the mask; a lane in the mask
//                  that has exited (or does not exist: partial last warp) is an error, as is a warp in
//                  which some lanes wait in a collective and others in __syncthreads (deadlock).
// Between two synchronisation points threads run in the order of the schedule mode (forward, reverse or
// a fresh random permutation per round), so a missing barrier usually shows up as a difference between
// modes. `__shared__` variables are function-scope statics placed in the ELF section emu_shared, which
// the runtime fills with 0xFF bytes (NaN for f32 and bf16) before every block, as is the dynamic shared
// buffer; uninitialised shared reads therefore surface as NaN.
#pragma once
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

// ---- CUDA keywords ----------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static __attribute__((section("emu_shared")))

// ---- vector types -----------------------------------------------------------------------------------
struct uint3 { unsigned x, y, z; };
struct dim3 { unsigned x, y, z; };
struct __align__(16) uint4 { unsigned x, y, z, w; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct __align__(8) uint2 { unsigned x, y; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) float2 { float x, y; };
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

// ---- built-in variables (set by the scheduler before it resumes a fiber) ------------------------------
uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

// ---- device math --------------------------------------------------------------------------------------
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __expf(float x) { return expf(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }

#define EMU_MINMAX(T)                                          \
    inline T min(T a, T b) { return a < b ? a : b; }           \
    inline T max(T a, T b) { return a > b ? a : b; }
EMU_MINMAX(int)
EMU_MINMAX(unsigned)
EMU_MINMAX(long)
EMU_MINMAX(unsigned long)
EMU_MINMAX(long long)
EMU_MINMAX(unsigned long long)
#undef EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
// CUDA's mixed signed/unsigned overloads convert to unsigned.
inline unsigned min(int a, unsigned b) { return min((unsigned)a, b); }
inline unsigned min(unsigned a, int b) { return min(a, (unsigned)b); }
inline unsigned max(int a, unsigned b) { return max((unsigned)a, b); }
inline unsigned max(unsigned a, int b) { return max(a, (unsigned)b); }

// ---- the scheduler ------------------------------------------------------------------------------------
namespace emu {

enum State { RUN, WAIT_BLOCK, WAIT_WARP, DONE };
enum Kind { K_SYNCWARP = 1, K_SHFL, K_MMA };

struct Slot {
    uint64_t v;
    unsigned a[4], b[2];
};

struct Fiber {
    ucontext_t ctx;
    State state;
    unsigned mask;
    int kind;
    uint64_t ops;  // warp collectives completed
    char* stack;
    void* fake_stack;
};

constexpr size_t kStack = 256 * 1024;
constexpr int kMaxThreads = 1024;

struct Runtime {
    Fiber fibers[kMaxThreads];
    Slot slots[kMaxThreads / 32][2][32];  // per warp, per parity (double buffer), per lane
    ucontext_t main_ctx;
    int n = 0, cur = -1;
    std::function<void()> body;
    std::string error;
    bool failed = false;
    int mode = 0;  // 0 forward, 1 reverse, 2 shuffled (random order and warp speeds), 3 warp-serial
    std::mt19937_64 rng{1};
    std::vector<unsigned char> dyn;  // dynamic shared memory of the launch
    const void* main_bottom = nullptr;
    size_t main_size = 0;
    long long switches = 0;
};
inline Runtime R;

inline void fail(const std::string& msg) {
    if (!R.failed) {
        R.failed = true;
        R.error = msg;
    }
}

// Fiber → scheduler.
inline void yield_to_main() {
    Fiber& f = R.fibers[R.cur];
    asm volatile("" ::: "memory");
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_start_switch_fiber(&f.fake_stack, R.main_bottom, R.main_size);
#endif
    swapcontext(&f.ctx, &R.main_ctx);
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_finish_switch_fiber(f.fake_stack, nullptr, nullptr);
#endif
    asm volatile("" ::: "memory");
}

inline void fiber_entry() {
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_finish_switch_fiber(nullptr, &R.main_bottom, &R.main_size);
#endif
    R.body();
    Fiber& f = R.fibers[R.cur];
    f.state = DONE;
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_start_switch_fiber(nullptr, R.main_bottom, R.main_size);
#endif
    swapcontext(&f.ctx, &R.main_ctx);
    abort();  // never resumed
}

inline void resume(int t) {
    Fiber& f = R.fibers[t];
    R.cur = t;
    threadIdx = uint3{(unsigned)t, 0, 0};
    R.switches++;
    void* fake = nullptr;
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_start_switch_fiber(&fake, f.stack, kStack);
#endif
    swapcontext(&R.main_ctx, &f.ctx);
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    (void)fake;
    R.cur = -1;
}

inline int lane_id() { return R.cur & 31; }
inline int warp_id() { return R.cur >> 5; }

// A warp collective: wait until every lane of `mask` arrives at one.
inline void warp_wait(unsigned mask, int kind) {
    Fiber& f = R.fibers[R.cur];
    f.state = WAIT_WARP;
    f.mask = mask;
    f.kind = kind;
    yield_to_main();
    f.ops++;
}

inline Slot& my_slot() {
    const Fiber& f = R.fibers[R.cur];
    return R.slots[warp_id()][f.ops & 1][lane_id()];
}
inline const Slot& slot_of(int lane) {
    const Fiber& f = R.fibers[R.cur];
    return R.slots[warp_id()][f.ops & 1][lane];
}

inline void sync_block() {
    R.fibers[R.cur].state = WAIT_BLOCK;
    yield_to_main();
}

inline const char* kind_name(int k) { return k == K_SYNCWARP ? "__syncwarp" : k == K_SHFL ? "__shfl_*_sync" : "mma.sync"; }

// Releases the warp collective of warp w if complete; false if nothing to release. Records errors.
inline bool try_release_warp(int w) {
    const int lo = w * 32, hi = std::min(lo + 32, R.n);
    int first = -1;
    for (int t = lo; t < hi; t++)
        if (R.fibers[t].state == WAIT_WARP) { first = t; break; }
    if (first < 0) return false;
    const Fiber& f0 = R.fibers[first];
    char buf[256];
    for (int t = lo; t < hi; t++) {
        const Fiber& f = R.fibers[t];
        if (f.state == WAIT_WARP && (f.mask != f0.mask || f.kind != f0.kind || f.ops != f0.ops)) {
            snprintf(buf, sizeof buf, "block (%u,%u): warp %d: lanes %d and %d wait in different warp collectives (%s mask %08x #%llu vs %s mask %08x #%llu)",
                     blockIdx.x, blockIdx.y, w, first - lo, t - lo, kind_name(f0.kind), f0.mask, (unsigned long long)f0.ops, kind_name(f.kind), f.mask,
                     (unsigned long long)f.ops);
            fail(buf);
            return false;
        }
    }
    for (int l = 0; l < 32; l++) {
        if (!(f0.mask >> l & 1)) continue;
        const int t = lo + l;
        if (t >= R.n || R.fibers[t].state == DONE) {
            snprintf(buf, sizeof buf, "block (%u,%u): warp %d: %s with mask %08x but lane %d has %s", blockIdx.x, blockIdx.y, w, kind_name(f0.kind), f0.mask, l,
                     t >= R.n ? "no thread (partial warp)" : "exited");
            fail(buf);
            return false;
        }
        if (R.fibers[t].state != WAIT_WARP) return false;  // WAIT_BLOCK: a deadlock, reported by the caller
    }
    for (int l = 0; l < 32; l++)
        if (f0.mask >> l & 1) R.fibers[lo + l].state = RUN;
    return true;
}

inline void poison_shared();

inline void run_block() {
    for (int t = 0; t < R.n; t++) {
        Fiber& f = R.fibers[t];
        if (!f.stack) {
            f.stack = (char*)mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (f.stack == MAP_FAILED) { fprintf(stderr, "emu: mmap failed\n"); abort(); }
        }
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = kStack;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, (void (*)())fiber_entry, 0);
        f.state = RUN;
        f.ops = 0;
        f.fake_stack = nullptr;
    }
    std::vector<int> order(R.n);
    const int nwarps = (R.n + 31) / 32;
    std::vector<char> warp_on(nwarps, 1);
    std::vector<unsigned> speed(nwarps, 256);
    auto draw_speeds = [&] {
        // Shuffled mode: each warp gets a speed (chance in 256 to run in a given round) until the next
        // block barrier, so some warps lag many warp collectives behind others.
        static const unsigned kSpeeds[3] = {256, 128, 26};
        for (int w = 0; w < nwarps; w++) speed[w] = kSpeeds[R.rng() % 3];
    };
    if (R.mode == 2) draw_speeds();
    for (;;) {
        for (int t = 0; t < R.n; t++) order[t] = R.mode == 1 ? R.n - 1 - t : t;
        if (R.mode == 2) {
            // Shuffled: threads in a random order, and only some warps run in each round (see draw_speeds).
            std::shuffle(order.begin(), order.end(), R.rng);
            bool any = false;
            for (int w = 0; w < nwarps; w++) {
                bool runnable = false;
                for (int t = w * 32; t < std::min(R.n, w * 32 + 32); t++) runnable |= R.fibers[t].state == RUN;
                warp_on[w] = runnable && (R.rng() & 255) < speed[w];
                any |= warp_on[w];
            }
            if (!any)
                for (int w = 0; w < nwarps; w++) warp_on[w] = 1;
        } else if (R.mode == 3) {
            // Warp-serial: the highest warp with runnable threads runs alone until all its threads wait in
            // __syncthreads or have exited (the largest possible skew between warps), lanes descending.
            int active = -1;
            for (int t = R.n - 1; t >= 0 && active < 0; t--)
                if (R.fibers[t].state == RUN) active = t >> 5;
            for (int w = 0; w < nwarps; w++) warp_on[w] = w == active;
            for (int t = 0; t < R.n; t++) order[t] = R.n - 1 - t;
        }
        for (int t : order)
            if (R.fibers[t].state == RUN && warp_on[t >> 5]) resume(t);
        if (R.failed) return;
        bool released = false;
        for (int w = 0; w * 32 < R.n; w++) released |= try_release_warp(w);
        if (R.failed) return;
        if (released) continue;
        int done = 0, at_barrier = 0, running = 0;
        for (int t = 0; t < R.n; t++) {
            done += R.fibers[t].state == DONE;
            at_barrier += R.fibers[t].state == WAIT_BLOCK;
            running += R.fibers[t].state == RUN;
        }
        if (running) continue;
        if (done == R.n) return;
        char buf[256];
        if (done + at_barrier == R.n) {
            if (done > 0) {
                snprintf(buf, sizeof buf, "block (%u,%u): __syncthreads reached by %d threads while %d have exited", blockIdx.x, blockIdx.y, at_barrier, done);
                fail(buf);
                return;
            }
            for (int t = 0; t < R.n; t++) R.fibers[t].state = RUN;
            if (R.mode == 2) draw_speeds();
            continue;
        }
        int ww = -1;
        for (int t = 0; t < R.n; t++)
            if (R.fibers[t].state == WAIT_WARP) { ww = t; break; }
        snprintf(buf, sizeof buf, "block (%u,%u): deadlock: thread %d waits in %s while %d threads wait in __syncthreads and %d have exited", blockIdx.x, blockIdx.y, ww,
                 ww >= 0 ? kind_name(R.fibers[ww].kind) : "?", at_barrier, done);
        fail(buf);
        return;
    }
}

extern "C" char __start_emu_shared[], __stop_emu_shared[];
// Keeps the section present in files without __shared__ variables.
static char emu_shared_anchor[16] __attribute__((section("emu_shared"), used));

inline void poison_shared() {
    memset(__start_emu_shared, 0xff, __stop_emu_shared - __start_emu_shared);
    if (!R.dyn.empty()) memset(R.dyn.data(), 0xff, R.dyn.size());
}

inline void* dyn_smem() { return R.dyn.empty() ? nullptr : R.dyn.data(); }

template <class... A, size_t... I>
void call_kernel(void (*k)(A...), void** args, std::index_sequence<I...>) {
    k(*reinterpret_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}

template <class... A>
int launch(void (*k)(A...), const unsigned* grid, const unsigned* block, size_t smem, void** args) {
    R.failed = false;
    R.error.clear();
    const unsigned nt = block[0] * block[1] * block[2];
    if (block[1] != 1 || block[2] != 1 || nt == 0 || nt > (unsigned)kMaxThreads) {
        fail("unsupported block shape (1-D blocks of 1..1024 threads only)");
        return 1;
    }
    R.n = (int)nt;
    gridDim = dim3{grid[0], grid[1], grid[2]};
    blockDim = dim3{block[0], block[1], block[2]};
    R.dyn.assign(smem, 0xff);
    R.body = [&] { call_kernel(k, args, std::index_sequence_for<A...>{}); };
    std::vector<uint3> blocks;
    for (unsigned z = 0; z < grid[2]; z++)
        for (unsigned y = 0; y < grid[1]; y++)
            for (unsigned x = 0; x < grid[0]; x++) blocks.push_back(uint3{x, y, z});
    if (R.mode == 1 || R.mode == 3) std::reverse(blocks.begin(), blocks.end());
    if (R.mode == 2) std::shuffle(blocks.begin(), blocks.end(), R.rng);
    for (const uint3& b : blocks) {
        blockIdx = b;
        poison_shared();
        run_block();
        if (R.failed) return 1;
    }
    return 0;
}

// ---- warp collectives ---------------------------------------------------------------------------------
template <class T>
inline T shfl_from(unsigned mask, T v, int src) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a type over 8 bytes");
    Slot& s = my_slot();
    s.v = 0;
    memcpy(&s.v, &v, sizeof(T));
    // Read the partner from the buffer this collective wrote (ops is incremented after the wait).
    const uint64_t op = R.fibers[R.cur].ops;
    warp_wait(mask, K_SHFL);
    const Slot& o = R.slots[warp_id()][op & 1][src & 31];
    T r;
    memcpy(&r, &o.v, sizeof(T));
    return r;
}

}  // namespace emu

inline void __syncthreads() { emu::sync_block(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu::warp_wait(mask, emu::K_SYNCWARP); }
inline void __threadfence_block() {}
inline void __threadfence() {}

template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    if (width != 32) emu::fail("__shfl_xor_sync: only width 32 is emulated");
    return emu::shfl_from(mask, v, (emu::lane_id() ^ lane_mask) & 31);
}
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
    const int l = emu::lane_id();
    return emu::shfl_from(mask, v, (l / width) * width + (src_lane % width));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) {
    const int l = emu::lane_id();
    const int src = (int)((l % width) + d) < width ? l + (int)d : l;
    return emu::shfl_from(mask, v, src);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) {
    const int l = emu::lane_id();
    const int src = (l % width) >= (int)d ? l - (int)d : l;
    return emu::shfl_from(mask, v, src);
}

// ---- atomics (fibers of one OS thread: no interleaving inside a call) ------------------------------------
template <class T>
inline T atomicAdd(T* p, T v) { T o = *p; *p = o + v; return o; }
inline int atomicMin(int* p, int v) { int o = *p; if (v < o) *p = v; return o; }
inline unsigned atomicMin(unsigned* p, unsigned v) { unsigned o = *p; if (v < o) *p = v; return o; }
inline int atomicMax(int* p, int v) { int o = *p; if (v > o) *p = v; return o; }
inline unsigned atomicMax(unsigned* p, unsigned v) { unsigned o = *p; if (v > o) *p = v; return o; }

// ---- inline PTX, reached through the harness's rewrite of each asm statement (run.py) -----------------------
// cvt.rn.bf16.f32: round to nearest even; NaN → canonical quiet NaN.
inline void emu_cvt_rn_bf16_f32(unsigned short& r, float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) { r = 0x7fff; return; }
    u += 0x7fffu + ((u >> 16) & 1u);
    r = (unsigned short)(u >> 16);
}
// ld.global.nc.L1::no_allocate.v4.u32: a plain 16-byte load (the address must be 16-byte aligned).
inline void emu_ld_global_nc_v4_u32(unsigned& x, unsigned& y, unsigned& z, unsigned& w, const void* p) {
    if ((uintptr_t)p & 15) {
        char buf[128];
        snprintf(buf, sizeof buf, "ld.global.nc.v4.u32 from a misaligned address %p", p);
        emu::fail(buf);
    }
    const uint4 v = *static_cast<const uint4*>(p);
    x = v.x; y = v.y; z = v.z; w = v.w;
}
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 with C = D. Fragment layouts from the PTX ISA
// ("Matrix Fragments for mma.m16n8k16 with floating point type"), groupID = lane >> 2, tig = lane % 4:
//   A element i (i = 0..7; register i/2, half i%2, low half first):
//       row = groupID for i < 2 or 4 <= i < 6, else groupID + 8; col = tig*2 + (i&1) + (i >= 4 ? 8 : 0)
//   B element i (0..3): row = tig*2 + (i&1) + (i >= 2 ? 8 : 0), col = groupID
//   C/D element i (0..3): row = groupID + (i >= 2 ? 8 : 0), col = tig*2 + (i&1)
// Products of bf16 are exact in f32; the sum is taken in double and rounded once to f32.
inline void emu_mma_m16n8k16_row_col_f32_bf16_bf16_f32(float& d0, float& d1, float& d2, float& d3, unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                                      unsigned b0, unsigned b1) {
    emu::Slot& s = emu::my_slot();
    s.a[0] = a0; s.a[1] = a1; s.a[2] = a2; s.a[3] = a3;
    s.b[0] = b0; s.b[1] = b1;
    const uint64_t op = emu::R.fibers[emu::R.cur].ops;
    emu::warp_wait(0xffffffffu, emu::K_MMA);
    const emu::Slot* sl = emu::R.slots[emu::warp_id()][op & 1];
    float A[16][16], B[16][8];
    for (int L = 0; L < 32; L++) {
        const int g = L >> 2, t = L & 3;
        for (int i = 0; i < 8; i++) {
            const unsigned h = (sl[L].a[i / 2] >> (16 * (i & 1))) & 0xffffu;
            const int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
            const int col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
            A[row][col] = __uint_as_float(h << 16);
        }
        for (int i = 0; i < 4; i++) {
            const unsigned h = (sl[L].b[i / 2] >> (16 * (i & 1))) & 0xffffu;
            const int row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0);
            B[row][g] = __uint_as_float(h << 16);
        }
    }
    const int lane = emu::lane_id(), g = lane >> 2, t = lane & 3;
    float* d[4] = {&d0, &d1, &d2, &d3};
    for (int i = 0; i < 4; i++) {
        const int row = g + (i >= 2 ? 8 : 0), col = t * 2 + (i & 1);
        double acc = *d[i];
        for (int k = 0; k < 16; k++) acc += (double)A[row][k] * (double)B[k][col];
        *d[i] = (float)acc;
    }
}

// ---- exported entry points --------------------------------------------------------------------------------
extern "C" {
inline void emu_set_schedule(int mode, unsigned long long seed) {
    emu::R.mode = mode;
    emu::R.rng.seed(seed);
}
}
// Byte sizes of a kernel's parameters, in order (the fake driver copies argument values when a launch
// is captured into a graph, as cuLaunchKernel does from the kernel's metadata).
template <typename... A>
int emu_arg_sizes(void (*)(A...), size_t* out) {
    const size_t s[] = {sizeof(A)...};
    for (size_t i = 0; i < sizeof...(A); i++) out[i] = s[i];
    return (int)sizeof...(A);
}

// `bound`: the kernel's __launch_bounds__ maximum (a larger block fails to launch on a GPU).
#define EMU_EXPORT(name, bound)                                                                                       \
    extern "C" int emu_argsizes_##name(size_t* out) { return emu_arg_sizes(name, out); }                             \
    extern "C" int emu_launch_##name(const unsigned* grid, const unsigned* block, size_t smem, void** args) {        \
        if (block[0] * block[1] * block[2] > (unsigned)(bound)) {                                                     \
            emu::R.error = "block of " + std::to_string(block[0] * block[1] * block[2]) + " threads exceeds " #name   \
                           "'s __launch_bounds__ (" + std::to_string(bound) + ")";                                     \
            return 1;                                                                                                 \
        }                                                                                                             \
        return emu::launch(name, grid, block, smem, args);                                                            \
    }

#define EMU_COMMON_EXPORTS                                                                                            \
    extern "C" void emu_schedule(int mode, unsigned long long seed) { emu_set_schedule(mode, seed); }                 \
    extern "C" const char* emu_last_error() { return emu::R.error.c_str(); }                                          \
    extern "C" long long emu_switches() { return emu::R.switches; }                                                    \
    extern "C" void* emu_alloc(size_t n) {                                                                            \
        void* p = nullptr;                                                                                            \
        return posix_memalign(&p, 256, n ? n : 1) ? nullptr : p;                                                      \
    }                                                                                                                 \
    extern "C" void emu_free(void* p) { free(p); }
