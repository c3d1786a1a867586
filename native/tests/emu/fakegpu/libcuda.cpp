// A stand-in for libcuda.so (the CUDA driver API subset the engine uses through cudarc) that runs on the
// CPU: "device" memory is host memory, every operation runs at once on the calling thread (so all
// streams are trivially ordered), modules are ignored and kernels resolve by name to the emulation
// libraries of native/tests/emu (listed in $OVIS_EMU_KERNEL_LIBS, colon-separated), which run the
// unchanged kernel sources with CUDA block/warp semantics. Stream capture records launches (with copies
// of their argument bytes) into a graph that cuGraphLaunch replays.
//
// Purpose: run the engine's whole CUDA path (Gpu, Blas, CudaQwen3, CudaVision, sessions, graphs) on a
// machine without a GPU, on the tiny fixture, against the reference. It checks the host-side
// orchestration; the kernels' own numerics are those of the emulator (see ../README.md).
//
// Fault injection, for the engine's error handling (deterministic: counted in calls, not in time):
//   FAKECUDA_FAIL_ALLOC_AFTER=N     the allocation after the next N fails with CUDA_ERROR_OUT_OF_MEMORY
//                                   (once; the ones after it succeed again: out of memory is recoverable)
//   FAKECUDA_FAULT=KERNEL[:NTH[:CODE]]  the NTH run (default 1; eager launch or graph replay) of KERNEL
//                                   fails with CUresult CODE (default 700, CUDA_ERROR_ILLEGAL_ADDRESS)
//                                   and the context is dead from then on: every later call returns CODE
//                                   (a "sticky" error, as after a real fault)
// and, from a test in the same process (dlopen("libcuda.so", RTLD_NOLOAD) + dlsym):
//   fakecuda_fail_alloc_after(n)  (n < 0: off), fakecuda_fault(kernel, nth, code), fakecuda_reset()
//   (clears both and the sticky error), fakecuda_allocs() (allocations so far).
#include <dlfcn.h>
#include "bf16.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

namespace {
constexpr CUresult OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, NOT_FOUND = 500, LAUNCH_FAILED = 719;

// Fault injection state (see the top of this file).
std::atomic<long long> g_fail_alloc_after{-1};
std::atomic<long long> g_allocs{0};
std::string g_fault_kernel;
long long g_fault_nth = 0;
int g_fault_code = 700;
std::atomic<int> g_sticky{0};

void read_fault_env() {
    static bool done = false;
    if (done) return;
    done = true;
    if (const char* n = getenv("FAKECUDA_FAIL_ALLOC_AFTER")) g_fail_alloc_after = atoll(n);
    if (const char* f = getenv("FAKECUDA_FAULT")) {
        std::string spec = f;
        size_t a = spec.find(':');
        g_fault_kernel = spec.substr(0, a);
        g_fault_nth = 1;
        if (a != std::string::npos) {
            size_t b = spec.find(':', a + 1);
            g_fault_nth = atoll(spec.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1).c_str());
            if (b != std::string::npos) g_fault_code = atoi(spec.c_str() + b + 1);
        }
    }
}

struct Kernel {
    std::string name;
    int (*launch)(const unsigned* grid, const unsigned* block, size_t smem, void** args);
    int (*argsizes)(size_t* out);
    const char* (*last_error)();
};

struct Node {
    Kernel* k;
    unsigned grid[3], block[3];
    size_t smem;
    std::vector<std::vector<char>> args;
};

struct Stream {
    bool capturing = false;
    std::vector<Node> nodes;
};

struct Graph {
    std::vector<Node> nodes;
};

std::vector<void*>& libs() {
    static std::vector<void*> l = [] {
        std::vector<void*> out;
        const char* env = getenv("OVIS_EMU_KERNEL_LIBS");
        std::string s = env ? env : "";
        size_t at = 0;
        while (at <= s.size() && !s.empty()) {
            size_t end = s.find(':', at);
            std::string path = s.substr(at, end == std::string::npos ? std::string::npos : end - at);
            if (!path.empty()) {
                void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
                if (!h) fprintf(stderr, "fake libcuda: cannot open %s: %s\n", path.c_str(), dlerror());
                else out.push_back(h);
            }
            if (end == std::string::npos) break;
            at = end + 1;
        }
        return out;
    }();
    return l;
}

template <typename T>
T arg(const Node& n, int i) {
    T v;
    memcpy(&v, n.args[i].data(), sizeof(T));
    return v;
}

// Native twin of the lm_head kernel (151 936 rows: 19 k blocks of 256 emulated threads per call would
// take tens of seconds). Same contract as gemv.cu's gemv_logits_f32, which ../run.py checks against
// numpy; only the f32 summation order differs (≈1e-7).
// gemv_rows_logits_f32 (a batch's lm_head) likewise, with the same order per row as this twin, so a
// batched row's logits equal the single-request twin's bit for bit, as on the GPU.
bool native_twin(const Node& n) {
    if (n.k->name == "gemv_rows_logits_f32") {
        const uint16_t *W = arg<const uint16_t*>(n, 0), *x = arg<const uint16_t*>(n, 1);
        float* y = arg<float*>(n, 2);
        const int rows = arg<int>(n, 3), k = arg<int>(n, 4), R = arg<int>(n, 5);
        for (int r = 0; r < R; r++)
            for (int j = 0; j < rows; j++) {
                float acc = 0.f;
                for (int i = 0; i < k; i++) acc += bf(W[(size_t)j * k + i]) * bf(x[(size_t)r * k + i]);
                y[(size_t)r * rows + j] = acc;
            }
        return true;
    }
    if (n.k->name != "gemv_logits_f32") return false;
    const uint16_t *W = arg<const uint16_t*>(n, 0), *x = arg<const uint16_t*>(n, 1);
    float* y = arg<float*>(n, 2);
    const int rows = arg<int>(n, 3), k = arg<int>(n, 4);
    for (int j = 0; j < rows; j++) {
        float acc = 0.f;
        for (int i = 0; i < k; i++) acc += bf(W[(size_t)j * k + i]) * bf(x[i]);
        y[j] = acc;
    }
    return true;
}

int run(const Node& n) {
    if (g_sticky) return g_sticky;
    if (!g_fault_kernel.empty() && n.k->name == g_fault_kernel && --g_fault_nth == 0) {
        fprintf(stderr, "fake libcuda: injected fault %d in kernel %s (FAKECUDA_FAULT)\n", g_fault_code, n.k->name.c_str());
        g_fault_kernel.clear();
        g_sticky = g_fault_code;
        return g_fault_code;
    }
    if (native_twin(n)) return OK;
    std::vector<void*> ptrs;
    for (auto& a : n.args) ptrs.push_back((void*)a.data());
    if (n.k->launch(n.grid, n.block, n.smem, ptrs.data()) != 0) {
        fprintf(stderr, "fake libcuda: kernel %s failed: %s\n", n.k->name.c_str(), n.k->last_error ? n.k->last_error() : "?");
        return LAUNCH_FAILED;
    }
    return OK;
}

size_t g_used = 0;
const size_t TOTAL = 80ull << 30;
}  // namespace

// After an injected fault every call that touches the context fails with the same error.
#define STICKY \
    do {                            \
        if (int e_ = g_sticky) return e_; \
    } while (0)

extern "C" {
CUresult cuInit(unsigned) { read_fault_env(); return OK; }
CUresult cuDriverGetVersion(int* v) { *v = 13000; return OK; }
CUresult cuDeviceGetCount(int* n) { *n = 1; return OK; }
CUresult cuDeviceGet(CUdevice* d, int ordinal) { if (ordinal != 0) return INVALID_VALUE; *d = 0; return OK; }
CUresult cuDeviceGetName(char* name, int len, CUdevice) { snprintf(name, len, "Emulated GPU (CPU kernels)"); return OK; }
CUresult cuDeviceTotalMem_v2(size_t* b, CUdevice) { *b = TOTAL; return OK; }
CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice) {
    switch (attr) {
        case 75: *v = 9; break;    // compute capability major
        case 76: *v = 0; break;    // minor
        case 16: *v = 132; break;  // SMs
        case 115: *v = 0; break;   // no memory pools: plain allocations
        default: *v = 0;
    }
    return OK;
}
CUresult cuDeviceGetUuid(void* u, CUdevice) { memset(u, 0, 16); return OK; }
CUresult cuDeviceGetUuid_v2(void* u, CUdevice) { memset(u, 0, 16); return OK; }
static int g_ctx_token;
CUresult cuDevicePrimaryCtxRetain(void** ctx, CUdevice) { *ctx = &g_ctx_token; return OK; }
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return OK; }
CUresult cuCtxSetCurrent(void*) { return OK; }
CUresult cuCtxGetCurrent(void** ctx) { *ctx = &g_ctx_token; return OK; }
CUresult cuCtxSynchronize() { STICKY; return OK; }
CUresult cuCtxPushCurrent_v2(void*) { return OK; }
CUresult cuCtxPopCurrent_v2(void** c) { if (c) *c = &g_ctx_token; return OK; }
// Names and descriptions of the errors this stand-in returns or injects (as the real driver words them).
static const char* error_text(CUresult e, bool name) {
    switch (e) {
        case 0: return name ? "CUDA_SUCCESS" : "no error";
        case 1: return name ? "CUDA_ERROR_INVALID_VALUE" : "invalid argument";
        case 2: return name ? "CUDA_ERROR_OUT_OF_MEMORY" : "out of memory";
        case 214: return name ? "CUDA_ERROR_ECC_UNCORRECTABLE" : "uncorrectable ECC error encountered";
        case 500: return name ? "CUDA_ERROR_NOT_FOUND" : "named symbol not found";
        case 700: return name ? "CUDA_ERROR_ILLEGAL_ADDRESS" : "an illegal memory access was encountered";
        case 719: return name ? "CUDA_ERROR_LAUNCH_FAILED" : "unspecified launch failure";
        default: return name ? "CUDA_ERROR_FAKE" : "fake libcuda error";
    }
}
CUresult cuGetErrorString(CUresult e, const char** s) { *s = error_text(e, false); return OK; }
CUresult cuGetErrorName(CUresult e, const char** s) { *s = error_text(e, true); return OK; }

CUresult cuStreamCreate(void** s, unsigned) { *s = new Stream(); return OK; }
CUresult cuStreamCreateWithPriority(void** s, unsigned, int) { *s = new Stream(); return OK; }
CUresult cuStreamDestroy_v2(void* s) { delete (Stream*)s; return OK; }
CUresult cuStreamSynchronize(void*) { STICKY; return OK; }
CUresult cuStreamWaitEvent(void*, void*, unsigned) { return OK; }
CUresult cuStreamBeginCapture_v2(void* s, int) {
    STICKY;
    auto* st = (Stream*)s;
    if (!st) return INVALID_VALUE;
    st->capturing = true;
    st->nodes.clear();
    return OK;
}
CUresult cuStreamEndCapture(void* s, void** graph) {
    auto* st = (Stream*)s;
    st->capturing = false;
    auto* g = new Graph();
    g->nodes.swap(st->nodes);
    *graph = g;
    return OK;
}
CUresult cuStreamIsCapturing(void* s, int* status) { *status = s && ((Stream*)s)->capturing ? 1 : 0; return OK; }
CUresult cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long) { STICKY; *exec = new Graph(*(Graph*)graph); return OK; }
CUresult cuGraphUpload(void*, void*) { return OK; }
CUresult cuGraphLaunch(void* exec, void*) {
    STICKY;
    for (auto& n : ((Graph*)exec)->nodes)
        if (CUresult r = run(n)) return r;
    return OK;
}
CUresult cuGraphDestroy(void* g) { delete (Graph*)g; return OK; }
CUresult cuGraphExecDestroy(void* g) { delete (Graph*)g; return OK; }

CUresult cuEventCreate(void** e, unsigned) { *e = new int(0); return OK; }
CUresult cuEventDestroy_v2(void* e) { delete (int*)e; return OK; }
CUresult cuEventRecord(void*, void*) { STICKY; return OK; }
CUresult cuEventSynchronize(void*) { STICKY; return OK; }
CUresult cuEventQuery(void*) { STICKY; return OK; }

// Allocations: 256-byte aligned host memory, filled with 0xFF so a kernel reading what nobody wrote
// sees NaN; cudarc's alloc_zeros clears explicitly with cuMemsetD8.
static CUresult alloc(CUdeviceptr* p, size_t n) {
    STICKY;
    read_fault_env();
    g_allocs++;
    long long left = g_fail_alloc_after.load();
    if (left == 0) {
        g_fail_alloc_after = -1;
        fprintf(stderr, "fake libcuda: injected out of memory for an allocation of %zu bytes (FAKECUDA_FAIL_ALLOC_AFTER)\n", n);
        return OUT_OF_MEMORY;
    }
    if (left > 0) g_fail_alloc_after = left - 1;
    void* m = nullptr;
    if (posix_memalign(&m, 256, n ? n : 1)) return OUT_OF_MEMORY;
    memset(m, 0xFF, n);
    g_used += n;
    *p = (CUdeviceptr)m;
    return OK;
}
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t n) { return alloc(p, n); }
CUresult cuMemAllocAsync(CUdeviceptr* p, size_t n, void*) { return alloc(p, n); }
CUresult cuMemFree_v2(CUdeviceptr p) { free((void*)p); STICKY; return OK; }
CUresult cuMemFreeAsync(CUdeviceptr p, void*) { free((void*)p); STICKY; return OK; }
CUresult cuMemGetInfo_v2(size_t* free_b, size_t* total) { STICKY; *total = TOTAL; *free_b = TOTAL - (g_used < TOTAL ? g_used : 0); return OK; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void* s, size_t n) { STICKY; memcpy((void*)d, s, n); return OK; }
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, void*) { STICKY; memcpy((void*)d, s, n); return OK; }
CUresult cuMemcpyDtoH_v2(void* d, CUdeviceptr s, size_t n) { STICKY; memcpy(d, (void*)s, n); return OK; }
CUresult cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, void*) { STICKY; memcpy(d, (void*)s, n); return OK; }
CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) { STICKY; memmove((void*)d, (void*)s, n); return OK; }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, void*) { STICKY; memmove((void*)d, (void*)s, n); return OK; }
CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { STICKY; memset((void*)d, v, n); return OK; }
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, void*) { STICKY; memset((void*)d, v, n); return OK; }
CUresult cuMemHostAlloc(void** p, size_t n, unsigned) { *p = malloc(n ? n : 1); return OK; }
CUresult cuMemFreeHost(void* p) { free(p); return OK; }

static int g_module_token;
CUresult cuModuleLoadData(void** m, const void*) { STICKY; *m = &g_module_token; return OK; }
CUresult cuModuleUnload(void*) { return OK; }
CUresult cuModuleGetFunction(void** f, void*, const char* name) {
    std::string l = std::string("emu_launch_") + name, a = std::string("emu_argsizes_") + name;
    for (void* h : libs()) {
        void* launch = dlsym(h, l.c_str());
        if (!launch) continue;
        auto* k = new Kernel{name, (int (*)(const unsigned*, const unsigned*, size_t, void**))launch, (int (*)(size_t*))dlsym(h, a.c_str()),
                             (const char* (*)())dlsym(h, "emu_last_error")};
        if (!k->argsizes) {
            fprintf(stderr, "fake libcuda: %s has no emu_argsizes_%s (rebuild the emulation libraries)\n", name, name);
            return NOT_FOUND;
        }
        *f = k;
        return OK;
    }
    fprintf(stderr, "fake libcuda: no emulation library defines kernel %s (OVIS_EMU_KERNEL_LIBS)\n", name);
    return NOT_FOUND;
}
CUresult cuFuncGetAttribute(int* v, int, void*) { *v = 0; return OK; }
CUresult cuFuncSetAttribute(void*, int, int) { return OK; }
CUresult cuFuncSetCacheConfig(void*, int) { return OK; }

CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned smem, void* stream,
                        void** params, void** extra) {
    STICKY;
    auto* k = (Kernel*)f;
    if (extra) return INVALID_VALUE;
    Node n{k, {gx, gy, gz}, {bx, by, bz}, smem, {}};
    size_t sizes[64];
    int count = k->argsizes(sizes);
    for (int i = 0; i < count; i++) n.args.emplace_back((char*)params[i], (char*)params[i] + sizes[i]);
    auto* st = (Stream*)stream;
    if (st && st->capturing) {
        st->nodes.push_back(std::move(n));
        return OK;
    }
    return run(n);
}

// Fault injection from a test in the same process (see the top of this file).
void fakecuda_fail_alloc_after(long long n) { read_fault_env(); g_fail_alloc_after = n; }
void fakecuda_fault(const char* kernel, long long nth, int code) {
    read_fault_env();
    g_fault_kernel = kernel ? kernel : "";
    g_fault_nth = nth;
    g_fault_code = code;
}
void fakecuda_reset() {
    read_fault_env();
    g_fail_alloc_after = -1;
    g_fault_kernel.clear();
    g_sticky = 0;
}
long long fakecuda_allocs() { return g_allocs; }
}
