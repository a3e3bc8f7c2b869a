/* dnnl.h — the CPU's GEMM and convolution kernels (oneDNN for float32, plain
 * cache-blocked C for float64), with the signatures of core/backend.h's gemm
 * and conv entries so they slot into the CPU backend table. Pointers are host
 * pointers; the caller has checked shapes and dtypes. Return 0, or -1 after
 * kbl_fail naming the oneDNN call that failed. */
#ifndef KBL_CPU_DNNL_H
#define KBL_CPU_DNNL_H

#include <stdint.h>
#include "../backend.h"

/* Row-major C[m, n] = op(A) op(B) + beta C (beta 0 or 1; dtype KBL_FLOAT32 or
 * KBL_FLOAT64). */
int kbl_cpu_gemm(int dtype, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                 const void *a, int64_t lda, const void *b, int64_t ldb, double beta,
                 void *c, int64_t ldc);

/* KBL_CONV_FORWARD y = conv(x, w); KBL_CONV_BACKWARD_DATA x = dgrad(y, w);
 * KBL_CONV_BACKWARD_FILTER w = wgrad(x, y). Contiguous NCHW / OIHW; the result
 * is overwritten. */
int kbl_cpu_conv(int which, const kbl_conv_desc *d, void *x, void *w, void *y);

/* Float32 average pooling (KBL_POOL_AVG), forward or backward, on plain planes
 * (dnnl_pool.c: measured faster than core/cpu/pool.c's loops). */
int kbl_dnnl_avg_pool(const kbl_pool_desc *d);

/* Float32 softmax of each row of contiguous [rows, cols] (dnnl_softmax.c:
 * measured faster than core/cpu/softmax.c's loop). */
int kbl_dnnl_softmax_rows(int64_t rows, int64_t cols, const float *src, float *dst);

/* Float32 sigmoid (KBL_SIGMOID), tanh (KBL_TANH) or exp (KBL_EXP) forward of contiguous
 * src[0..n) into dst (may be src), in chunks of KBL_ELTWISE_CHUNK elements
 * (dnnl_eltwise.c: measured faster than core/cpu/unary.c's loops). */
#define KBL_ELTWISE_CHUNK 16384
int kbl_dnnl_eltwise(int op, int64_t n, const float *src, float *dst);

/* "oneDNN 2.6.3 (ISA: AVX-512 BF16; math: strict float32; threading: openmp)":
 * the library, the instruction set its JIT uses here, and its math mode. */
const char *kbl_dnnl_info(void);

#endif /* KBL_CPU_DNNL_H */
