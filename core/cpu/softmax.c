/* softmax.c — the CPU's softmax and log_softmax of each row of a contiguous
 * [rows, cols] buffer: float32 softmax through oneDNN (dnnl_softmax.c, measured
 * faster); log_softmax and float64 here, shifted by the row's max, summed in double. */
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

int kbl_cpu_softmax_rows(int dtype, int log_form, int64_t rows, int64_t cols, const void *src, void *dst) {
    /* float32 softmax on oneDNN, measured faster; log_softmax stays here
     * (oneDNN's log is less precise: dnnl_softmax.c) */
    if (dtype == KBL_FLOAT32 && !log_form && rows > 0 && cols > 0) return kbl_dnnl_softmax_rows(rows, cols, src, dst);
    int nt = rows * cols >= KBL_PARALLEL_GRAIN && rows > 1 ? kbl_threads() : 1;
    KBL_FLOAT_CASES(dtype, SOFTMAX_ROWS)
    return 0;
}
