// A stand-in for libcublasLt.so on the CPU, for the fake GPU of libcuda.cpp: the subset the engine uses
// (descriptors, layouts, preferences, the heuristic, and cublasLtMatmul), computing with cuBLASLt's
// documented column-major semantics written out independently of the engine's blas.rs:
//   D = alpha·op(A)·op(B) + beta·C (+ bias[i] per row i of D with the BIAS epilogue),
//   op(X) = X or Xᵀ by TRANSA/TRANSB; a layout (type, rows, cols, ld) holds element (i, j) at i + j·ld.
// Types: bf16 matrices and bias (CUDA_R_16BF = 14), f32 compute and scale; the result rounded to bf16
// once (round to nearest even). Anything else is refused, so an unexpected use shows up as an error.
#include "bf16.h"
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

typedef int cublasStatus_t;

namespace {
constexpr cublasStatus_t OK = 0, NOT_SUPPORTED = 15, INVALID_VALUE = 7;

struct Desc {
    int transa = 0, transb = 0, epilogue = 1;
    const uint16_t* bias = nullptr;
    int bias_type = 14;
    int compute = 0, scale = 0;
};
struct Layout {
    int type;
    uint64_t rows, cols;
    int64_t ld;
};

// Element (i, j) of op(X) for X in layout l.
float at(const uint16_t* x, const Layout& l, bool trans, uint64_t i, uint64_t j) {
    return trans ? bf(x[j + i * l.ld]) : bf(x[i + j * l.ld]);
}
}  // namespace

extern "C" {
cublasStatus_t cublasLtCreate(void** h) { static int token; *h = &token; return OK; }
cublasStatus_t cublasLtDestroy(void*) { return OK; }
cublasStatus_t cublasLtMatmulDescCreate(void** d, int compute, int scale) {
    auto* x = new Desc();
    x->compute = compute;
    x->scale = scale;
    *d = x;
    return OK;
}
cublasStatus_t cublasLtMatmulDescDestroy(void* d) { delete (Desc*)d; return OK; }
cublasStatus_t cublasLtMatmulDescSetAttribute(void* d, int attr, const void* buf, size_t size) {
    auto* x = (Desc*)d;
    switch (attr) {
        case 3: memcpy(&x->transa, buf, 4); break;
        case 4: memcpy(&x->transb, buf, 4); break;
        case 7: memcpy(&x->epilogue, buf, 4); break;
        case 8: memcpy(&x->bias, buf, sizeof(void*)); break;
        case 26: memcpy(&x->bias_type, buf, 4); break;
        default:
            fprintf(stderr, "fake cublasLt: unsupported matmul desc attribute %d (size %zu)\n", attr, size);
            return NOT_SUPPORTED;
    }
    return OK;
}
cublasStatus_t cublasLtMatrixLayoutCreate(void** l, int type, uint64_t rows, uint64_t cols, int64_t ld) {
    if (ld < (int64_t)rows) return INVALID_VALUE;
    *l = new Layout{type, rows, cols, ld};
    return OK;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(void* l) { delete (Layout*)l; return OK; }
cublasStatus_t cublasLtMatmulPreferenceCreate(void** p) { static int token; *p = &token; return OK; }
cublasStatus_t cublasLtMatmulPreferenceDestroy(void*) { return OK; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(void*, int, const void*, size_t) { return OK; }

// cublasLtMatmulHeuristicResult_t: algo (8 × u64), workspaceSize, state, wavesCount, reserved[4].
struct HeuristicResult {
    uint64_t algo[8];
    size_t workspace;
    int state;
    float waves;
    int reserved[4];
};

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(void*, void* d, void* a, void* b, void* c, void* dd, void*, int requested, HeuristicResult* out, int* count) {
    if (requested < 1) return INVALID_VALUE;
    memset(out, 0, sizeof(HeuristicResult));
    *count = 1;
    return OK;
}

cublasStatus_t cublasLtMatmul(void*, void* desc, const void* alpha, const void* A, void* Adesc, const void* B, void* Bdesc, const void* beta, const void* C,
                              void* Cdesc, void* D, void* Ddesc, const void*, void*, size_t, void*) {
    const Desc& x = *(Desc*)desc;
    const Layout &la = *(Layout*)Adesc, &lb = *(Layout*)Bdesc, &lc = *(Layout*)Cdesc, &ld = *(Layout*)Ddesc;
    if (la.type != 14 || lb.type != 14 || lc.type != 14 || ld.type != 14 || x.bias_type != 14) {
        fprintf(stderr, "fake cublasLt: only bf16 matrices are supported\n");
        return NOT_SUPPORTED;
    }
    const uint64_t m = ld.rows, n = ld.cols;
    const uint64_t k = x.transa ? la.rows : la.cols;
    const uint64_t am = x.transa ? la.cols : la.rows, bk = x.transb ? lb.cols : lb.rows, bn = x.transb ? lb.rows : lb.cols;
    if (am != m || bk != k || bn != n || lc.rows != m || lc.cols != n) {
        fprintf(stderr, "fake cublasLt: shapes disagree: op(A) %llux%llu, op(B) %llux%llu, D %llux%llu\n", (unsigned long long)am, (unsigned long long)k,
                (unsigned long long)bk, (unsigned long long)bn, (unsigned long long)m, (unsigned long long)n);
        return INVALID_VALUE;
    }
    if (x.epilogue != 1 && x.epilogue != 4) {
        fprintf(stderr, "fake cublasLt: unsupported epilogue %d\n", x.epilogue);
        return NOT_SUPPORTED;
    }
    const float al = *(const float*)alpha, be = *(const float*)beta;
    const auto *a = (const uint16_t*)A, *b = (const uint16_t*)B, *c = (const uint16_t*)C;
    auto* d = (uint16_t*)D;
    std::vector<float> out(m * n);
    for (uint64_t j = 0; j < n; j++)
        for (uint64_t i = 0; i < m; i++) {
            double acc = 0;
            for (uint64_t p = 0; p < k; p++) acc += (double)at(a, la, x.transa, i, p) * (double)at(b, lb, x.transb, p, j);
            float v = al * (float)acc;
            if (be != 0.f) v += be * bf(c[i + j * lc.ld]);
            if (x.epilogue == 4) v += bf(x.bias[i]);
            out[i + j * m] = v;
        }
    for (uint64_t j = 0; j < n; j++)
        for (uint64_t i = 0; i < m; i++) d[i + j * ld.ld] = to_bf(out[i + j * m]);
    return OK;
}
}
