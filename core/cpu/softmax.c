/* softmax.c — the CPU's softmax and log_softmax of each row of a contiguous
 * [rows, cols] buffer: float32 softmax through oneDNN (dnnl_softmax.c, measured
 * faster), float32 log_softmax with oneDNN's exp (kbl_cpu_exp_rows), float64
 * here; shifted by the row's max, summed in double. */
#include "cpu.h"
#include "dnnl.h"

#include <math.h>
#include <omp.h>

#define SOFTMAX_ROWS(T)                                                              \
    do {                                                                             \
        const T *in = (const T *)src;                                                \
        T *o = (T *)dst;                                                             \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                 \
        for (int64_t r = 0; r < rows; r++) {                                         \
            const T *x = in + r * cols;                                              \
            T *y = o + r * cols;                                                     \
            T m = x[0];                                                              \
            for (int64_t c = 1; c < cols; c++) m = x[c] > m ? x[c] : m;             \
            if (m == -(T)INFINITY) m = 0;                                            \
            double s = 0;                                                            \
            for (int64_t c = 0; c < cols; c++) {                                     \
                T e = (T)exp((double)(x[c] - m));                                    \
                if (!log_form) y[c] = e;                                             \
                s += e;                                                              \
            }                                                                        \
            if (log_form) { /* (x - m) - log s: exact where x is the max */          \
                T l = (T)log(s);                                                     \
                for (int64_t c = 0; c < cols; c++) y[c] = (x[c] - m) - l;            \
            } else {                                                                 \
                T inv = (T)(1.0 / s);                                                \
                for (int64_t c = 0; c < cols; c++) y[c] *= inv;                      \
            }                                                                        \
        }                                                                            \
    } while (0)

/* A row's max in LANES running parts, so that the loop vectorizes, in one
 * fixed order. */
enum { LANES = 8 };

static float row_max(const float *x, int64_t n) {
    float part[LANES];
    for (int k = 0; k < LANES; k++) part[k] = x[0];
    int64_t c = 0;
    for (; c + LANES <= n; c += LANES)
        for (int k = 0; k < LANES; k++) part[k] = x[c + k] > part[k] ? x[c + k] : part[k];
    float m = part[0];
    for (int k = 1; k < LANES; k++) m = part[k] > m ? part[k] : m;
    for (; c < n; c++) m = x[c] > m ? x[c] : m;
    return m;
}

double kbl_cpu_row_sum(const float *x, int64_t n) {
    double part[LANES] = {0};
    int64_t c = 0;
    for (; c + LANES <= n; c += LANES)
        for (int k = 0; k < LANES; k++) part[k] += x[c + k];
    double s = 0;
    for (int k = 0; k < LANES; k++) s += part[k];
    for (; c < n; c++) s += x[c];
    return s;
}

/* The exponentials of float32 rows on oneDNN's eltwise exp (kbl's loops call
 * libm's exp in double per element), over blocks of whole rows that fit one
 * eltwise chunk: for each block, shift[r] = the row's max (0 when it is -inf),
 * e = exp(x - shift), then each(ctx, r0, nr, e, shift, nt). Each row runs in
 * one fixed order and eltwise gives an element the same value wherever it
 * sits, so results repeat bit for bit at any thread count. */
int kbl_cpu_exp_rows(int64_t rows, int64_t cols, const float *x, kbl_exp_rows_fn each, void *ctx) {
    if (rows <= 0 || cols <= 0) return 0;
    int64_t block = cols >= KBL_ELTWISE_CHUNK ? 1 : KBL_ELTWISE_CHUNK / cols;
    if (block > rows) block = rows;
    int64_t bytes = block * cols * (int64_t)sizeof(float);
    float *e = kbl_alloc(bytes), *shift = kbl_alloc(block * (int64_t)sizeof(float));
    int rc = e && shift ? 0 : -1;
    int nt = block * cols >= KBL_PARALLEL_GRAIN && block > 1 ? kbl_threads() : 1;
    for (int64_t r0 = 0; rc == 0 && r0 < rows; r0 += block) {
        int64_t nr = rows - r0 < block ? rows - r0 : block;
        const float *xb = x + r0 * cols;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t r = 0; r < nr; r++) {
            const float *xr = xb + r * cols;
            float m = row_max(xr, cols);
            if (m == -INFINITY) m = 0;
            shift[r] = m;
            for (int64_t c = 0; c < cols; c++) e[r * cols + c] = xr[c] - m;
        }
        rc = kbl_dnnl_eltwise(KBL_EXP, nr * cols, e, e);
        if (rc == 0) each(ctx, r0, nr, e, shift, nt);
    }
    kbl_free(e, bytes);
    kbl_free(shift, block * (int64_t)sizeof(float));
    return rc;
}

/* Float32 log_softmax: y = (x - m) - log s, s = sum exp(x - m) summed in
 * double, so log s keeps the loop's precision (oneDNN's own log_softmax does
 * not: dnnl_softmax.c). `BENCH_CLOCK=cpu bin/kbl bench/cpu_ops.lua`,
 * 4096x1000, 1 thread, quiet 2-core Xeon: 22.3 ms on the loop, 3.98-4.23 ms
 * now (PyTorch 1.13's log_softmax on the same machine and shape: 3.18 ms).
 * Largest error against float64 on randn * 5 rows: the loop's, within 0.5
 * float32 ulps. */
typedef struct {
    int64_t cols;
    const float *x;
    float *y;
} lsm_ctx;

static void log_softmax_block(void *ctx, int64_t r0, int64_t nr, const float *e, const float *shift, int nt) {
    const lsm_ctx *c = ctx;
    int64_t cols = c->cols;
    const float *xb = c->x + r0 * cols;
    float *yb = c->y + r0 * cols;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < nr; r++) {
        float l = (float)log(kbl_cpu_row_sum(e + r * cols, cols)), m = shift[r];
        for (int64_t j = 0; j < cols; j++) yb[r * cols + j] = (xb[r * cols + j] - m) - l;
    }
}

int kbl_cpu_softmax_rows(int dtype, int log_form, int64_t rows, int64_t cols, const void *src, void *dst) {
    /* float32 on oneDNN, measured faster: softmax whole, log_softmax's exponentials */
    if (dtype == KBL_FLOAT32 && (rows == 0 || cols == 0)) return 0;
    if (dtype == KBL_FLOAT32)
        return log_form ? kbl_cpu_exp_rows(rows, cols, src, log_softmax_block, &(lsm_ctx){cols, src, dst})
                        : kbl_dnnl_softmax_rows(rows, cols, src, dst);
    int nt = rows * cols >= KBL_PARALLEL_GRAIN && rows > 1 ? kbl_threads() : 1;
    if (dtype == KBL_FLOAT64) SOFTMAX_ROWS(double);
    return 0;
}
