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
#include <dlfcn.h>
#include "bf16.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

namespace {
constexpr CUresult OK = 0, INVALID_VALUE = 1, NOT_FOUND = 500, LAUNCH_FAILED = 719;

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
bool native_twin(const Node& n) {
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

extern "C" {
CUresult cuInit(unsigned) { return OK; }
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
CUresult cuCtxSynchronize() { return OK; }
CUresult cuCtxPushCurrent_v2(void*) { return OK; }
CUresult cuCtxPopCurrent_v2(void** c) { if (c) *c = &g_ctx_token; return OK; }
CUresult cuGetErrorString(CUresult, const char** s) { *s = "fake libcuda error"; return OK; }
CUresult cuGetErrorName(CUresult, const char** s) { *s = "CUDA_ERROR_FAKE"; return OK; }

CUresult cuStreamCreate(void** s, unsigned) { *s = new Stream(); return OK; }
CUresult cuStreamCreateWithPriority(void** s, unsigned, int) { *s = new Stream(); return OK; }
CUresult cuStreamDestroy_v2(void* s) { delete (Stream*)s; return OK; }
CUresult cuStreamSynchronize(void*) { return OK; }
CUresult cuStreamWaitEvent(void*, void*, unsigned) { return OK; }
CUresult cuStreamBeginCapture_v2(void* s, int) {
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
CUresult cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long) { *exec = new Graph(*(Graph*)graph); return OK; }
CUresult cuGraphUpload(void*, void*) { return OK; }
CUresult cuGraphLaunch(void* exec, void*) {
    for (auto& n : ((Graph*)exec)->nodes)
        if (CUresult r = run(n)) return r;
    return OK;
}
CUresult cuGraphDestroy(void* g) { delete (Graph*)g; return OK; }
CUresult cuGraphExecDestroy(void* g) { delete (Graph*)g; return OK; }

CUresult cuEventCreate(void** e, unsigned) { *e = new int(0); return OK; }
CUresult cuEventDestroy_v2(void* e) { delete (int*)e; return OK; }
CUresult cuEventRecord(void*, void*) { return OK; }
CUresult cuEventSynchronize(void*) { return OK; }
CUresult cuEventQuery(void*) { return OK; }

// Allocations: 256-byte aligned host memory, filled with 0xFF so a kernel reading what nobody wrote
// sees NaN; cudarc's alloc_zeros clears explicitly with cuMemsetD8.
static CUresult alloc(CUdeviceptr* p, size_t n) {
    void* m = nullptr;
    if (posix_memalign(&m, 256, n ? n : 1)) return 2;  // CUDA_ERROR_OUT_OF_MEMORY
    memset(m, 0xFF, n);
    g_used += n;
    *p = (CUdeviceptr)m;
    return OK;
}
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t n) { return alloc(p, n); }
CUresult cuMemAllocAsync(CUdeviceptr* p, size_t n, void*) { return alloc(p, n); }
CUresult cuMemFree_v2(CUdeviceptr p) { free((void*)p); return OK; }
CUresult cuMemFreeAsync(CUdeviceptr p, void*) { free((void*)p); return OK; }
CUresult cuMemGetInfo_v2(size_t* free_b, size_t* total) { *total = TOTAL; *free_b = TOTAL - (g_used < TOTAL ? g_used : 0); return OK; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void* s, size_t n) { memcpy((void*)d, s, n); return OK; }
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, void*) { memcpy((void*)d, s, n); return OK; }
CUresult cuMemcpyDtoH_v2(void* d, CUdeviceptr s, size_t n) { memcpy(d, (void*)s, n); return OK; }
CUresult cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, void*) { memcpy(d, (void*)s, n); return OK; }
CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) { memmove((void*)d, (void*)s, n); return OK; }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, void*) { memmove((void*)d, (void*)s, n); return OK; }
CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { memset((void*)d, v, n); return OK; }
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, void*) { memset((void*)d, v, n); return OK; }
CUresult cuMemHostAlloc(void** p, size_t n, unsigned) { *p = malloc(n ? n : 1); return OK; }
CUresult cuMemFreeHost(void* p) { free(p); return OK; }

static int g_module_token;
CUresult cuModuleLoadData(void** m, const void*) { *m = &g_module_token; return OK; }
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
}
