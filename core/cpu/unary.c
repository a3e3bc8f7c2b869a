/* unary.c — the CPU's kernels for elementwise ops of one tensor (math and
 * activations, with up to two scalar parameters) over a kbl_iter, and their
 * derivatives as one fused pass: out = g * f'(x) on contiguous buffers.
 *
 * Measured against oneDNN 2.6.3's eltwise primitive (jit:avx512_core; 1M
 * float32, 1 thread, CPU time, Intel Xeon AVX-512 KVM guest, busy machine;
 * bench/cpu_ops.lua, bench/dnnl_ops.c), forward ms, kbl / oneDNN: relu 0.29 /
 * 0.29, sigmoid 2.39-2.56 / 0.47, tanh 9.76 / 0.42. oneDNN's float32 error
 * against double on [-20, 20) (2^20 points): sigmoid 3.4 ulp (libm's expf
 * form 2.5), tanh 1.2 ulp (tanhf 2.0). Taken for float32 sigmoid and tanh
 * forward of contiguous tensors (dnnl_eltwise.c, in chunks of a fixed size, so
 * no recompiling per shape): `BENCH_CLOCK=cpu bin/kbl bench/cpu_ops.lua`, 1M,
 * ms, before / after: sigmoid 2.36-2.81 / 0.44-0.46, tanh 9.70-9.78 /
 * 0.40-0.44 (busy machine, 6 December 2026). relu stays (level), as do strided
 * inputs, float64 (the gradient checks' type) and the backward (from the
 * output), on the fused scalar forms of ops_scalar.h shared with the CUDA
 * kernels. */
#include "cpu.h"
#include "dnnl.h"

#include <omp.h>

#include "../ops_scalar.h"

typedef struct { int op; int dtype, out_dtype; double p0, p1; } unary_ctx;

/* A strided run of o = EXPR(x), with a unit-stride loop the compiler vectorizes. */
#define LOOP(T, EXPR)                                                                     \
    do {                                                                                  \
        T *o = (T *)ptrs[0];                                                              \
        const T *a = (const T *)ptrs[1];                                                  \
        int64_t so = st[0], sa = st[1];                                                   \
        if (so == 1 && sa == 1)                                                           \
            for (int64_t i = 0; i < n; i++) { T x = a[i]; o[i] = (T)(EXPR); }              \
        else                                                                              \
            for (int64_t i = 0; i < n; i++) { T x = a[i * sa]; o[i * so] = (T)(EXPR); }    \
    } while (0)

/* o = f(x) for every op of ops_unary.def, on element type T with suffix SFX */
static void run_float32(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const unary_ctx *c = ctx;
    float p0 = (float)c->p0, p1 = (float)c->p1;
    switch (c->op) {
#define KBL_UNARY(NAME, name, ...) case KBL_##NAME: LOOP(float, kbl_f32_##name(x, p0, p1)); break;
#include "../ops_unary.def"
#undef KBL_UNARY
    default: break;
    }
}

static void run_float64(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const unary_ctx *c = ctx;
    double p0 = c->p0, p1 = c->p1;
    switch (c->op) {
#define KBL_UNARY(NAME, name, ...) case KBL_##NAME: LOOP(double, kbl_f64_##name(x, p0, p1)); break;
#include "../ops_unary.def"
#undef KBL_UNARY
    default: break;
    }
}

/* Integer inputs (of the ops that keep them) and logical_not go through double;
 * they are rare and never hot. */
static double unary_double(int op, double x, double p0, double p1) {
    switch (op) {
#define KBL_UNARY(NAME, name, ...) case KBL_##NAME: return kbl_f64_##name(x, p0, p1);
#include "../ops_unary.def"
#undef KBL_UNARY
    default: return x;
    }
}

static void run_int(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const unary_ctx *c = ctx;
    for (int64_t i = 0; i < n; i++) {
        double x = kbl_load_double(ptrs[1], c->dtype, i * st[1]);
        kbl_store_double(ptrs[0], c->out_dtype, i * st[0], unary_double(c->op, x, c->p0, c->p1));
    }
}

int kbl_cpu_unary(const kbl_iter *it, int op, int in_dtype, int out_dtype, double p0, double p1) {
    unary_ctx c = {op, in_dtype, out_dtype, p0, p1};
    bool float_op = kbl_is_float(in_dtype) && out_dtype == in_dtype; /* not logical_not */
    if (in_dtype == KBL_FLOAT32 && out_dtype == KBL_FLOAT32 && (op == KBL_SIGMOID || op == KBL_TANH) &&
        it->ndim == 1 && it->strides[0][0] == 1 && it->strides[1][0] == 1)
        return it->shape[0] ? kbl_dnnl_eltwise(op, it->shape[0], (const float *)it->base[1], (float *)it->base[0]) : 0;
    kbl_iter_run(it, !float_op ? run_int : in_dtype == KBL_FLOAT32 ? run_float32 : run_float64, &c);
    return 0;
}

/* ---- the backward kernel: gi = g * f'(x) ----------------------------------- */

#define GRAD_LOOP(T, EXPR) \
    for (int64_t i = b; i < e; i++) { T g = pg[i], x = px ? px[i] : 0, y = py ? py[i] : 0; pr[i] = (T)(EXPR); }

int kbl_cpu_unary_grad(int op, int dtype, int64_t n, void *out, const void *gv, const void *xv, const void *yv,
                       double p0d, double p1d) {
    int nt = n >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
#pragma omp parallel num_threads(nt)
    {
        int t = nt > 1 ? omp_get_thread_num() : 0;
        int64_t chunk = (n + nt - 1) / nt, b = t * chunk, e = b + chunk < n ? b + chunk : n;
        if (dtype == KBL_FLOAT32) {
            const float *pg = gv, *px = xv, *py = yv;
            float *pr = out, p0 = (float)p0d, p1 = (float)p1d;
            switch (op) {
#define KBL_UNARY(NAME, name, ...) case KBL_##NAME: GRAD_LOOP(float, kbl_f32_d_##name(g, x, y, p0, p1)); break;
#include "../ops_unary.def"
#undef KBL_UNARY
            default: break;
            }
        } else {
            const double *pg = gv, *px = xv, *py = yv;
            double *pr = out, p0 = p0d, p1 = p1d;
            switch (op) {
#define KBL_UNARY(NAME, name, ...) case KBL_##NAME: GRAD_LOOP(double, kbl_f64_d_##name(g, x, y, p0, p1)); break;
#include "../ops_unary.def"
#undef KBL_UNARY
            default: break;
            }
        }
    }
    return 0;
}
