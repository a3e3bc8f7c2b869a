/* loss.c — the CPU's fused cross entropy on rows of contiguous logits with
 * int64 labels (core/loss.c states the formula and backend.h the arguments):
 * the forward checks every label first, then computes each row's loss and the
 * total label weight; the backward writes dx. Rows run over OpenMP threads. */
#include "cpu.h"

#include <math.h>
#include <omp.h>

/* One row's loss from its log-sum-exp lse, its label's logit xy, the label's
 * weight wy and smooth = sum_c w_c (lse - x_c); and one element's gradient
 * from its probability p: the float64 loops and the float32 blocks share them. */
static double ce_row_loss(double e, int64_t cols, double lse, double xy, double wy, double smooth) {
    return (1 - e) * wy * (lse - xy) + e / (double)cols * smooth;
}

/* e and cols as values, not read through the args in the loop: the stores
 * to dx could alias them as far as the compiler knows */
static double ce_grad(double e, int64_t cols, double p, bool at_y, double wy, double wc, double wall) {
    return (1 - e) * wy * (p - at_y) + e / (double)cols * (wall * p - wc);
}

/* per-row loss into loss[r] (0 for ignored rows); the weight total into wsum */
#define CE_FORWARD(T)                                                                    \
    do {                                                                                 \
        const T *x = (const T *)A->logits;                                               \
        const T *w = (const T *)A->weight;                                               \
        T *loss = (T *)A->out;                                                           \
        _Pragma("omp parallel for num_threads(nt) schedule(static) reduction(+ : wsum)") \
        for (int64_t r = 0; r < A->rows; r++) {                                          \
            int64_t y = A->labels[r];                                                    \
            if (y == A->ignore) { loss[r] = 0; continue; }                               \
            const T *row = x + r * A->cols;                                              \
            T m = row[0];                                                                \
            for (int64_t c = 1; c < A->cols; c++) m = row[c] > m ? row[c] : m;          \
            double s = 0, smooth = 0, wall = 0;                                          \
            for (int64_t c = 0; c < A->cols; c++) s += exp((double)(row[c] - m));        \
            double lse = (double)m + log(s);                                             \
            if (A->smoothing > 0)                                                        \
                for (int64_t c = 0; c < A->cols; c++) {                                  \
                    double wc = w ? (double)w[c] : 1.0;                                  \
                    smooth += wc * (lse - (double)row[c]);                               \
                    wall += wc;                                                          \
                }                                                                        \
            double wy = w ? (double)w[y] : 1.0;                                          \
            loss[r] = (T)ce_row_loss(A->smoothing, A->cols, lse, (double)row[y], wy, smooth); \
            wsum += wy;                                                                  \
        }                                                                                \
    } while (0)

/* dx[r, c] = scale_r * ((1-e) w_y (p_c - [c==y]) + e/C (W p_c - w_c)) */
#define CE_BACKWARD(T)                                                                   \
    do {                                                                                 \
        const T *x = (const T *)A->logits;                                               \
        const T *w = (const T *)A->weight;                                               \
        const T *gp = (const T *)A->grad;                                                \
        T *dx = (T *)A->out;                                                             \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                     \
        for (int64_t r = 0; r < A->rows; r++) {                                          \
            int64_t y = A->labels[r];                                                    \
            T *drow = dx + r * A->cols;                                                  \
            if (y == A->ignore) {                                                        \
                for (int64_t c = 0; c < A->cols; c++) drow[c] = 0;                       \
                continue;                                                                \
            }                                                                            \
            const T *row = x + r * A->cols;                                              \
            T m = row[0];                                                                \
            for (int64_t c = 1; c < A->cols; c++) m = row[c] > m ? row[c] : m;          \
            double s = 0, wall = 0;                                                      \
            for (int64_t c = 0; c < A->cols; c++) {                                      \
                double e = exp((double)(row[c] - m));                                    \
                drow[c] = (T)e;                                                          \
                s += e;                                                                  \
                wall += w ? (double)w[c] : 1.0;                                          \
            }                                                                            \
            double scale = (double)(A->per_row ? gp[r] : gp[0]) * A->gscale;             \
            double wy = w ? (double)w[y] : 1.0, inv = 1.0 / s, e = A->smoothing;         \
            int64_t cols = A->cols;                                                      \
            for (int64_t c = 0; c < cols; c++) {                                         \
                double p = (double)drow[c] * inv, wc = w ? (double)w[c] : 1.0;           \
                drow[c] = (T)(scale * ce_grad(e, cols, p, c == y, wy, wc, wall));        \
            }                                                                            \
        }                                                                                \
    } while (0)

/* Float32: the same formulas, each row's exponentials from oneDNN's eltwise
 * exp in blocks of rows (kbl_cpu_exp_rows, as log_softmax) instead of libm's
 * exp in double per element, summed in double; the label weights' total in
 * row order. `BENCH_CLOCK=cpu bin/kbl bench/cpu_ops.lua`, [4096, 1000], 1
 * thread, quiet 2-core Xeon, ms, forward / backward: 18.7-19.4 / 29.1-30.5
 * on the loops, 3.48 / 8.19-8.23 now (PyTorch 1.13's cross_entropy on the
 * same machine: 4.06 / 6.68). */
typedef struct {
    const kbl_ce_args *A;
    double wall; /* the sum of the class weights (cols without weights) */
} ce_ctx;

static void ce_forward_block(void *ctx, int64_t r0, int64_t nr, const float *e, const float *shift, int nt) {
    const kbl_ce_args *A = ((const ce_ctx *)ctx)->A;
    const float *x = A->logits, *w = A->weight;
    float *loss = A->out;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < nr; r++) {
        int64_t row_i = r0 + r, y = A->labels[row_i];
        if (y == A->ignore) {
            loss[row_i] = 0;
            continue;
        }
        const float *row = x + row_i * A->cols;
        double lse = (double)shift[r] + log(kbl_cpu_row_sum(e + r * A->cols, A->cols)), smooth = 0;
        if (A->smoothing > 0)
            for (int64_t c = 0; c < A->cols; c++) smooth += (w ? (double)w[c] : 1.0) * (lse - (double)row[c]);
        loss[row_i] = (float)ce_row_loss(A->smoothing, A->cols, lse, (double)row[y], w ? (double)w[y] : 1.0, smooth);
    }
}

static void ce_backward_block(void *ctx, int64_t r0, int64_t nr, const float *e, const float *shift, int nt) {
    (void)shift;
    const ce_ctx *cc = ctx;
    const kbl_ce_args *A = cc->A;
    const float *w = A->weight, *gp = A->grad;
    float *dx = A->out;
    int64_t cols = A->cols;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < nr; r++) {
        int64_t row_i = r0 + r, y = A->labels[row_i];
        float *drow = dx + row_i * cols;
        if (y == A->ignore) {
            for (int64_t c = 0; c < cols; c++) drow[c] = 0;
            continue;
        }
        const float *er = e + r * cols;
        double inv = 1.0 / kbl_cpu_row_sum(er, cols), e = A->smoothing, wall = cc->wall;
        double scale = (double)(A->per_row ? gp[row_i] : gp[0]) * A->gscale, wy = w ? (double)w[y] : 1.0;
        for (int64_t c = 0; c < cols; c++) {
            double p = (double)er[c] * inv, wc = w ? (double)w[c] : 1.0;
            drow[c] = (float)(scale * ce_grad(e, cols, p, c == y, wy, wc, wall));
        }
    }
}

int kbl_cpu_cross_entropy(const kbl_ce_args *A) {
    int nt = A->rows * A->cols >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
    ce_ctx ctx = {A, 0};
    if (A->grad) {
        if (A->cols > 0 && A->dtype == KBL_FLOAT32) {
            const float *w = A->weight;
            for (int64_t c = 0; c < A->cols; c++) ctx.wall += w ? (double)w[c] : 1.0;
            return kbl_cpu_exp_rows(A->rows, A->cols, A->logits, ce_backward_block, &ctx);
        }
        if (A->cols > 0 && A->dtype == KBL_FLOAT64) CE_BACKWARD(double);
        return 0;
    }
    *A->bad_host = -1;
    for (int64_t r = 0; r < A->rows; r++)
        if (A->labels[r] != A->ignore && (A->labels[r] < 0 || A->labels[r] >= A->cols)) {
            *A->bad_host = r;
            return 0;
        }
    double wsum = 0;
    if (A->cols > 0 && A->dtype == KBL_FLOAT32) {
        if (kbl_cpu_exp_rows(A->rows, A->cols, A->logits, ce_forward_block, &ctx)) return -1;
        const float *w = A->weight;
        for (int64_t r = 0; r < A->rows; r++)
            if (A->labels[r] != A->ignore) wsum += w ? (double)w[A->labels[r]] : 1.0;
    } else if (A->cols > 0 && A->dtype == KBL_FLOAT64) {
        CE_FORWARD(double);
    }
    *A->wsum_host = wsum;
    return 0;
}
