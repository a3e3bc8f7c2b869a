/* reduce.c — the CPU's reduction kernels on contiguous data: row sums
 * [rows, inner] -> [rows] and column sums [outer, cols] -> [cols], each
 * accumulating in an order that does not depend on the thread count, and the
 * max/min of each row with its 0-based position (a NaN wins, as in PyTorch). */
#include "cpu.h"

#include <omp.h>

/* rows x inner contiguous -> rows: each row summed in double */
#define ROW_SUM(T)                                                                   \
    do {                                                                             \
        const T *in = (const T *)src;                                                \
        T *o = (T *)dst;                                                             \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                 \
        for (int64_t r = 0; r < rows; r++) {                                         \
            double acc = 0;                                                          \
            const T *p = in + r * inner;                                             \
            for (int64_t i = 0; i < inner; i++) acc += (double)p[i];                 \
            o[r] = (T)acc;                                                           \
        }                                                                            \
    } while (0)

int kbl_cpu_sum_rows(int dtype, int64_t rows, int64_t inner, const void *src, void *dst) {
    int nt = rows * inner >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
    if (dtype == KBL_FLOAT32) ROW_SUM(float);
    else if (dtype == KBL_FLOAT64) ROW_SUM(double);
    else ROW_SUM(int64_t);
    return 0;
}

/* outer x cols contiguous -> cols: columns summed, parallel over column blocks */
#define COL_SUM(T)                                                                   \
    do {                                                                             \
        const T *in = (const T *)src;                                                \
        T *o = (T *)dst;                                                             \
        int64_t nb = (cols + 255) / 256;                                             \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                 \
        for (int64_t blk = 0; blk < nb; blk++) {                                     \
            int64_t j0 = blk * 256, j1 = j0 + 256 < cols ? j0 + 256 : cols;          \
            for (int64_t j = j0; j < j1; j++) o[j] = 0;                              \
            for (int64_t r = 0; r < outer; r++) {                                    \
                const T *p = in + r * cols;                                          \
                for (int64_t j = j0; j < j1; j++) o[j] += p[j];                      \
            }                                                                        \
        }                                                                            \
    } while (0)

int kbl_cpu_sum_cols(int dtype, int64_t outer, int64_t cols, const void *src, void *dst) {
    int nt = outer * cols >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
    if (dtype == KBL_FLOAT32) COL_SUM(float);
    else if (dtype == KBL_FLOAT64) COL_SUM(double);
    else COL_SUM(int64_t);
    return 0;
}

#define EXTREME_ROWS(T)                                                              \
    do {                                                                             \
        const T *in = (const T *)src;                                                \
        T *vo = (T *)values;                                                         \
        int64_t *io = indices;                                                       \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                 \
        for (int64_t r = 0; r < rows; r++) {                                         \
            const T *p = in + r * inner;                                             \
            int64_t best = 0;                                                        \
            T bv = p[0];                                                             \
            for (int64_t i = 1; i < inner; i++) {                                    \
                T v = p[i];                                                          \
                if (bv != bv) break; /* NaN wins, as in PyTorch */                   \
                if ((is_max ? v > bv : v < bv) || v != v) bv = v, best = i;          \
            }                                                                        \
            io[r] = best;                                                            \
            if (vo) vo[r] = bv;                                                      \
        }                                                                            \
    } while (0)

int kbl_cpu_extreme_rows(int dtype, int is_max, int64_t rows, int64_t inner, const void *src, void *values,
                         int64_t *indices) {
    int nt = rows * inner >= KBL_PARALLEL_GRAIN && rows > 1 ? kbl_threads() : 1;
    KBL_ALL_CASES(dtype, EXTREME_ROWS)
    return 0;
}
