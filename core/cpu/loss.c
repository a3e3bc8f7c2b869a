/* loss.c — the CPU's fused cross entropy on rows of contiguous logits with
 * int64 labels (core/loss.c states the formula and backend.h the arguments):
 * the forward checks every label first, then computes each row's loss and the
 * total label weight; the backward writes dx. Rows run over OpenMP threads. */
#include "cpu.h"

#include <math.h>
#include <omp.h>

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
            loss[r] = (T)((1 - A->smoothing) * wy * (lse - (double)row[y]) +             \
                          A->smoothing / (double)A->cols * smooth);                      \
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
            double wy = w ? (double)w[y] : 1.0, e = A->smoothing, inv = 1.0 / s;         \
            for (int64_t c = 0; c < A->cols; c++) {                                      \
                double p = (double)drow[c] * inv, wc = w ? (double)w[c] : 1.0;           \
                double d = (1 - e) * wy * (p - (c == y)) + e / (double)A->cols * (wall * p - wc); \
                drow[c] = (T)(scale * d);                                                \
            }                                                                            \
        }                                                                                \
    } while (0)

int kbl_cpu_cross_entropy(const kbl_ce_args *A) {
    int nt = A->rows * A->cols >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
    if (A->grad) {
        if (A->cols > 0) KBL_FLOAT_CASES(A->dtype, CE_BACKWARD)
        return 0;
    }
    *A->bad_host = -1;
    for (int64_t r = 0; r < A->rows; r++)
        if (A->labels[r] != A->ignore && (A->labels[r] < 0 || A->labels[r] >= A->cols)) {
            *A->bad_host = r;
            return 0;
        }
    double wsum = 0;
    if (A->cols > 0) KBL_FLOAT_CASES(A->dtype, CE_FORWARD)
    *A->wsum_host = wsum;
    return 0;
}
