/* ops.cuh — the backend's functions, one group per file of cuda/, gathered
 * into the kbl_backend table by backend.cu. Arguments as in core/backend.h. */
#ifndef KBL_CUDA_OPS_CUH
#define KBL_CUDA_OPS_CUH

#include "common.cuh"

namespace kblcuda {

/* alloc.cu */
void *alloc(int64_t nbytes);
void free(void *p, int64_t nbytes);
void memory_stats(int64_t out[5]);
void empty_cache();
void reset_peak();
void set_total_memory(int64_t bytes);

/* elementwise.cu */
int copy(const kbl_iter *it, int dst_dtype, int src_dtype);
int fill(const kbl_iter *it, int dtype, double value);
int binary(const kbl_iter *it, int op, int dtype);
int axpy(const kbl_iter *it, int dtype, double alpha);
int where(const kbl_iter *it, int dtype);
int unary(const kbl_iter *it, int op, int in_dtype, int out_dtype, double p0, double p1);
int unary_grad(int op, int dtype, int64_t n, void *out, const void *g, const void *x, const void *y, double p0,
               double p1);

/* reduce.cu */
int sum_rows(int dtype, int64_t rows, int64_t inner, const void *src, void *dst);
int sum_cols(int dtype, int64_t outer, int64_t cols, const void *src, void *dst);
int extreme_rows(int dtype, int is_max, int64_t rows, int64_t inner, const void *src, void *values,
                 int64_t *indices);
int softmax_rows(int dtype, int log_form, int64_t rows, int64_t cols, const void *src, void *dst);
int cross_entropy(const kbl_ce_args *a);

/* blas.cu */
int gemm(int dtype, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
         const void *b, int64_t ldb, double beta, void *c, int64_t ldc);

/* index.cu */
int index_check(const int64_t *idx, int64_t n, int64_t size, int64_t skip, int64_t *bad_pos_host,
                int64_t *bad_val_host);
int index(const kbl_index_args *a);
int dropout_mask(int dtype, int64_t n, uint64_t seed, uint64_t counter, uint32_t threshold, double scale,
                 void *out);

/* conv.cu */
int conv(int which, const kbl_conv_desc *d, void *x, void *w, void *y);

/* pool.cu */
int pool(const kbl_pool_desc *d);

/* norm.cu */
int norm(const kbl_norm_args *a);

/* optim.cu */
int optim_step(int kind, int dtype, int64_t n, const kbl_optim_update *u);

}  // namespace kblcuda

#endif
