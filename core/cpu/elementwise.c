/* elementwise.c — the CPU's strided elementwise kernels over a kbl_iter: copies
 * with dtype conversion, fills, binary ops (arithmetic, comparisons, logic),
 * o += alpha * s, and where. Each run has a unit-stride loop the compiler
 * vectorizes; kbl_iter_run splits the outer runs over threads. */
#include "cpu.h"

#include <math.h>

/* ---- copy and fill --------------------------------------------------------- */

typedef struct { int dst, src; double value; } copy_ctx;

#define COPY_RUN(TD, TS)                                                    \
    do {                                                                    \
        TD *o = (TD *)ptrs[0];                                              \
        const TS *s = (const TS *)ptrs[1];                                  \
        int64_t so = st[0], ss = st[1];                                     \
        if (so == 1 && ss == 1)                                             \
            for (int64_t i = 0; i < n; i++) o[i] = (TD)s[i];                \
        else                                                                \
            for (int64_t i = 0; i < n; i++) o[i * so] = (TD)s[i * ss];      \
    } while (0)

/* To uint8 through int64: a float out of uint8's range converted directly is
 * undefined behaviour in C; through int64 it truncates and then wraps modulo 256
 * (as PyTorch does), the same on every path. */
#define COPY_RUN_U8(TS)                                                     \
    do {                                                                    \
        uint8_t *o = (uint8_t *)ptrs[0];                                    \
        const TS *s = (const TS *)ptrs[1];                                  \
        int64_t so = st[0], ss = st[1];                                     \
        for (int64_t i = 0; i < n; i++) o[i * so] = (uint8_t)(int64_t)s[i * ss]; \
    } while (0)

#define COPY_FROM(TS)                                           \
    switch (c->dst) {                                           \
    case KBL_FLOAT32: COPY_RUN(float, TS); break;               \
    case KBL_FLOAT64: COPY_RUN(double, TS); break;              \
    case KBL_INT32: COPY_RUN(int32_t, TS); break;               \
    case KBL_INT64: COPY_RUN(int64_t, TS); break;               \
    default: COPY_RUN_U8(TS); break;                            \
    }

static void copy_run(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const copy_ctx *c = ctx;
    KBL_ALL_CASES(c->src, COPY_FROM)
}

int kbl_cpu_copy(const kbl_iter *it, int dst_dtype, int src_dtype) {
    copy_ctx c = {dst_dtype, src_dtype, 0};
    kbl_iter_run(it, copy_run, &c);
    return 0;
}

#define FILL_RUN(T)                                                        \
    do {                                                                   \
        T *o = (T *)ptrs[0];                                               \
        T v = (T)c->value;                                                 \
        int64_t so = st[0];                                                \
        for (int64_t i = 0; i < n; i++) o[i * so] = v;                     \
    } while (0)

static void fill_run(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const copy_ctx *c = ctx;
    if (c->dst == KBL_UINT8) { /* wraps modulo 256, as COPY_RUN_U8 */
        uint8_t *o = (uint8_t *)ptrs[0];
        uint8_t v = (uint8_t)(int64_t)c->value;
        for (int64_t i = 0; i < n; i++) o[i * st[0]] = v;
        return;
    }
    KBL_ALL_CASES(c->dst, FILL_RUN)
}

int kbl_cpu_fill(const kbl_iter *it, int dtype, double value) {
    copy_ctx c = {dtype, dtype, value};
    kbl_iter_run(it, fill_run, &c);
    return 0;
}

/* ---- binary ops: o = f(x, y) ------------------------------------------------- */

/* One strided run, with unit-stride and scalar-second-operand fast paths. */
#define BIN_RUN(TO, TI, EXPR)                                                           \
    do {                                                                                \
        TO *o = (TO *)ptrs[0];                                                          \
        const TI *pa = (const TI *)ptrs[1], *pb = (const TI *)ptrs[2];                  \
        int64_t so = st[0], sa = st[1], sb = st[2];                                     \
        if (so == 1 && sa == 1 && sb == 1) {                                            \
            for (int64_t i = 0; i < n; i++) { TI x = pa[i], y = pb[i]; o[i] = (TO)(EXPR); } \
        } else if (so == 1 && sa == 1 && sb == 0) {                                     \
            TI y = pb[0];                                                               \
            for (int64_t i = 0; i < n; i++) { TI x = pa[i]; o[i] = (TO)(EXPR); }         \
        } else {                                                                        \
            for (int64_t i = 0; i < n; i++) {                                           \
                TI x = pa[i * sa], y = pb[i * sb];                                      \
                o[i * so] = (TO)(EXPR);                                                 \
            }                                                                           \
        }                                                                               \
    } while (0)

/* op's FWD (a line of core/ops_binary.def) on the inputs' dtype dt, into the
 * output type OUTK gives (the same, or uint8) */
#define BIN_OUT_SAME(T) T
#define BIN_OUT_FLOAT(T) T
#define BIN_OUT_U8(T) uint8_t
#define BIN_DTYPES(OUTK, FWD)                                                   \
    switch (dt) {                                                               \
    case KBL_FLOAT32: BIN_RUN(BIN_OUT_##OUTK(float), float, FWD); break;        \
    case KBL_FLOAT64: BIN_RUN(BIN_OUT_##OUTK(double), double, FWD); break;      \
    case KBL_INT32: BIN_RUN(BIN_OUT_##OUTK(int32_t), int32_t, FWD); break;      \
    case KBL_INT64: BIN_RUN(BIN_OUT_##OUTK(int64_t), int64_t, FWD); break;      \
    default: BIN_RUN(BIN_OUT_##OUTK(uint8_t), uint8_t, FWD); break;             \
    }

typedef struct { int op; int dtype; } bin_ctx;

static void binary_run(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const bin_ctx *c = ctx;
    int dt = c->dtype;
    switch (c->op) {
#define KBL_BINARY(NAME, name, out, saves, FWD, rule) case KBL_##NAME: BIN_DTYPES(out, FWD); break;
#include "../ops_binary.def"
#undef KBL_BINARY
    default: break;
    }
}

int kbl_cpu_binary(const kbl_iter *it, int op, int dtype) {
    bin_ctx c = {op, dtype};
    kbl_iter_run(it, binary_run, &c);
    return 0;
}

/* ---- o += alpha * s ---------------------------------------------------------- */

typedef struct { int dtype; double alpha; } axpy_ctx;

#define AXPY(T)                                                                      \
    do {                                                                             \
        T *o = (T *)ptrs[0];                                                         \
        const T *s = (const T *)ptrs[1];                                             \
        T al = (T)c->alpha;                                                          \
        int64_t so = st[0], ss = st[1];                                              \
        if (so == 1 && ss == 1) for (int64_t i = 0; i < n; i++) o[i] += al * s[i];   \
        else for (int64_t i = 0; i < n; i++) o[i * so] += al * s[i * ss];            \
    } while (0)

static void axpy_run(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const axpy_ctx *c = ctx;
    KBL_ALL_CASES(c->dtype, AXPY)
}

int kbl_cpu_axpy(const kbl_iter *it, int dtype, double alpha) {
    axpy_ctx c = {dtype, alpha};
    kbl_iter_run(it, axpy_run, &c);
    return 0;
}

/* ---- where: o = m ? a : o ------------------------------------------------------ */

#define WHERE_RUN(T)                                                                  \
    do {                                                                              \
        T *o = (T *)ptrs[0];                                                          \
        const uint8_t *m = (const uint8_t *)ptrs[1];                                  \
        const T *pa = (const T *)ptrs[2];                                             \
        for (int64_t i = 0; i < n; i++) o[i * st[0]] = m[i * st[1]] ? pa[i * st[2]] : o[i * st[0]]; \
    } while (0)

static void where_run(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const int *dtype = ctx;
    KBL_ALL_CASES(*dtype, WHERE_RUN)
}

int kbl_cpu_where(const kbl_iter *it, int dtype) {
    kbl_iter_run(it, where_run, &dtype);
    return 0;
}
