/* cpu.h — the CPU backend's kernels, one family a file of core/cpu/, gathered
 * into the kbl_backend table by core/cpu/backend.c. Arguments as in
 * core/backend.h; pointers are host pointers. A kernel sees buffers, shapes,
 * strides and the OpenMP thread pool (kbl_threads); it never calls an op,
 * makes a tensor or records a node (spec/backend_arrows_spec.lua checks). */
#ifndef KBL_CPU_H
#define KBL_CPU_H

#include "../internal.h"

/* the table (backend.c) */
const kbl_backend *kbl_cpu_backend(void);

/* elementwise.c: copies with conversion, fills, binary ops, axpy, where */
int kbl_cpu_copy(const kbl_iter *it, int dst_dtype, int src_dtype);
int kbl_cpu_fill(const kbl_iter *it, int dtype, double value);
int kbl_cpu_binary(const kbl_iter *it, int op, int dtype);
int kbl_cpu_axpy(const kbl_iter *it, int dtype, double alpha);
int kbl_cpu_where(const kbl_iter *it, int dtype);

/* unary.c: math and activations, and their derivatives */
int kbl_cpu_unary(const kbl_iter *it, int op, int in_dtype, int out_dtype, double p0, double p1);
int kbl_cpu_unary_grad(int op, int dtype, int64_t n, void *out, const void *g, const void *x, const void *y,
                       double p0, double p1);

/* reduce.c: row and column sums, max/min with their positions */
int kbl_cpu_sum_rows(int dtype, int64_t rows, int64_t inner, const void *src, void *dst);
int kbl_cpu_sum_cols(int dtype, int64_t outer, int64_t cols, const void *src, void *dst);
int kbl_cpu_extreme_rows(int dtype, int is_max, int64_t rows, int64_t inner, const void *src, void *values,
                         int64_t *indices);

/* out = the sum over j < n of expr (in j), in four interleaved partial sums
 * (one add chain would wait on each add's latency): a fixed order, so the
 * same bits every run */
#define SUM4(out, n, expr)                                                                 \
    do {                                                                                   \
        double a0_ = 0, a1_ = 0, a2_ = 0, a3_ = 0;                                         \
        int64_t j = 0;                                                                     \
        for (; j + 4 <= (n); j += 4) {                                                     \
            a0_ += (expr);                                                                 \
            j++;                                                                           \
            a1_ += (expr);                                                                 \
            j++;                                                                           \
            a2_ += (expr);                                                                 \
            j++;                                                                           \
            a3_ += (expr);                                                                 \
            j -= 3;                                                                        \
        }                                                                                  \
        for (; j < (n); j++) a0_ += (expr);                                                \
        (out) = (a0_ + a1_) + (a2_ + a3_);                                                 \
    } while (0)

/* softmax.c, loss.c */
int kbl_cpu_softmax_rows(int dtype, int log_form, int64_t rows, int64_t cols, const void *src, void *dst);
int kbl_cpu_cross_entropy(const kbl_ce_args *a);
/* Float32 rows' exponentials in blocks (softmax.c): each block's e = exp(x -
 * shift), shift the rows' maxima, handed to each; and a float row's sum in
 * double (SUM4). */
typedef void (*kbl_exp_rows_fn)(void *ctx, int64_t r0, int64_t nr, const float *e, const float *shift, int nt);
int kbl_cpu_exp_rows(int64_t rows, int64_t cols, const float *x, kbl_exp_rows_fn each, void *ctx);
double kbl_cpu_row_sum(const float *x, int64_t n);

/* index.c */
int kbl_cpu_index_check(const int64_t *idx, int64_t n, int64_t size, int64_t skip, int64_t *bad_pos_host,
                        int64_t *bad_val_host);
int kbl_cpu_index(const kbl_index_args *a);

/* dropout.c, pool.c, norm.c, optim.c */
int kbl_cpu_dropout_mask(int dtype, int64_t n, uint64_t seed, uint64_t counter, uint32_t threshold, double scale,
                         void *out);
int kbl_cpu_pool(const kbl_pool_desc *d);
int kbl_cpu_norm(const kbl_norm_args *a);
int kbl_cpu_optim_step(int kind, int dtype, int64_t n, const kbl_optim_update *u);

/* random.c: n values into a contiguous host buffer of dtype, value i from
 * Philox counter `counter + i`; uniform on [a, b), normal (mean a, std b), or
 * integers in [a, b). Every device's random values come from here. */
enum { KBL_DIST_UNIFORM = 0, KBL_DIST_NORMAL = 1, KBL_DIST_INT = 2 };
void kbl_cpu_random(int dist, int dtype, int64_t n, uint64_t seed, uint64_t counter, double a, double b, void *out);

#endif
