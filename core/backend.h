/* backend.h — the device backend interface: one table of functions each device
 * fills (ggml's backend idea), through which every op dispatches by its inputs'
 * device (kbl_backend_of): op entry point -> table -> kernel. The CPU's table is
 * core/cpu/backend.c, built into libkbl. libkbl_cuda.so exports
 *
 *   const kbl_backend *kbl_cuda_backend(void);
 *
 * and core/backend.c dlopens it the first time CUDA is asked for, so libkbl
 * itself never links CUDA and runs on machines without a GPU or a driver.
 * Adding a device means filling this table.
 *
 * The header is plain C that both sides include: the core (C11) and the backend
 * (nvcc, C++). It holds no CUDA type. Pointers are the device's pointers (host
 * pointers on the CPU) unless their name says host; sizes and strides count
 * elements. Every int function returns 0 on success, or -1 after reporting
 * what failed (naming the CUDA, cuBLAS, cuDNN or oneDNN call) through
 * host->fail, which is kbl_fail. The core has checked
 * shapes, dtypes and devices before it calls; the backend only computes.
 * Everything runs on the backend's one stream; functions that hand values to
 * the host (memcpy to host, the *_host outputs) synchronize it first.
 */
#ifndef KBL_BACKEND_H
#define KBL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever the table changes, so a stale libkbl_cuda.so is refused. */
#define KBL_BACKEND_ABI 2

#ifndef KBL_MAX_DIMS
#define KBL_MAX_DIMS 8
#endif

/* Up to 3 operands walked together over `shape` (strides in elements, dims
 * coalesced by kbl_iter_init in iter.c); operand 0 is the output. */
typedef struct kbl_iter {
    int ndim;
    int nops;
    int64_t shape[KBL_MAX_DIMS];
    int64_t strides[3][KBL_MAX_DIMS];
    char *base[3];
    size_t esize[3];
} kbl_iter;

/* What the core lends the backend. */
typedef struct kbl_backend_host {
    int (*fail)(const char *fmt, ...);
} kbl_backend_host;

enum { KBL_COPY_H2D = 0, KBL_COPY_D2H = 1, KBL_COPY_D2D = 2 };

/* Cross entropy on rows of contiguous logits [rows, cols] with int64 labels.
 * Forward (grad == NULL): loss[r] per row (0 where ignored), *wsum_host the sum
 * of the label weights of the rows not ignored, *bad_host the first row whose
 * label is out of range (or -1; then nothing is computed). Backward: dx from
 * grad (one value, or one per row when per_row) times gscale. */
typedef struct kbl_ce_args {
    int dtype;
    int per_row;
    int64_t rows, cols, ignore;
    double smoothing, gscale;
    const void *logits;
    const int64_t *labels;
    const void *weight;         /* [cols] or NULL */
    const void *grad;           /* backward only */
    void *out;                  /* loss [rows], or dx [rows, cols] */
    double *wsum_host;
    int64_t *bad_host;
} kbl_ce_args;

/* A convolution: x [n, c, h, w], w [o, c/groups, kh, kw], y [n, o, oh, ow]
 * with oh, ow the exact output of the geometry (symmetric padding). bias, when
 * not NULL, is [o]: FORWARD adds it to y; BACKWARD_FILTER writes y's sum over
 * n, oh, ow into it (the bias gradient) beside w. Set only for a backend whose
 * table says conv_bias (the CPU's: oneDNN fuses both); for the others
 * core/conv_device.c adds and sums the bias with ops. */
typedef struct kbl_conv_desc {
    int dtype;
    int64_t n, c, h, w, o, kh, kw, oh, ow;
    int64_t stride[2], pad[2], dil[2], groups;
    void *bias;
} kbl_conv_desc;
enum { KBL_CONV_FORWARD = 0, KBL_CONV_BACKWARD_DATA = 1, KBL_CONV_BACKWARD_FILTER = 2 };

/* 2-D pooling and resampling over planes [planes, h, w] -> [planes, oh, ow]. */
typedef struct kbl_pool_desc {
    int dtype;
    int kind;                   /* KBL_POOL_* */
    int backward;               /* 0: in is x, out is y; 1: in is grad y, out is grad x */
    int count_include_pad;
    int64_t planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
    double scale_h, scale_w;    /* upsample_nearest: source = floor(dst * scale) */
    const void *in;
    void *out;
    int64_t *indices;           /* max: written forward, read backward */
} kbl_pool_desc;
enum { KBL_POOL_MAX = 0, KBL_POOL_AVG = 1, KBL_POOL_ADAPTIVE_AVG = 2, KBL_POOL_UPSAMPLE_NEAREST = 3 };

/* Normalization kernels over contiguous x.
 * BN_STATS: x [n, c, sp] -> mean, var (biased) [c] as double (device buffers).
 * BN_APPLY: y = x * scale[ch] + shift[ch] (scale, shift double [c]).
 * BN_BACKWARD: from grad, x, mean, invstd, wvals (double [c]) -> dx, and
 *   sums [2c] double: sum g, and sum g (x - mean) invstd (the weight gradient).
 * ROWS_FORWARD: x [rows, d] -> y, mean, rstd [rows] (layer/group norm); the
 *   parameter of element j of row r is ((r % groups) * d + j) / inner.
 * ROWS_BACKWARD: dx, and (if asked) param grads gw, gb as double [nparam]. */
typedef struct kbl_norm_args {
    int dtype;
    int kind;
    int training;
    int64_t n, c, sp;           /* batch norm */
    int64_t rows, d, groups, inner, nparam;   /* row norms */
    double eps;
    const void *x, *grad, *weight, *bias;     /* weight, bias in x's dtype or NULL */
    const void *mean, *rstd;                  /* row norms: in x's dtype */
    void *y, *mean_out, *rstd_out;
    const double *dmean, *dinvstd, *dscale, *dshift, *dweight;   /* batch norm: double [c] */
    double *dvar, *dmean_out, *sums, *gw, *gb;
} kbl_norm_args;
enum { KBL_BN_STATS = 0, KBL_BN_APPLY = 1, KBL_BN_BACKWARD = 2, KBL_ROWS_FORWARD = 3, KBL_ROWS_BACKWARD = 4 };

/* One fused optimizer update (the arithmetic of core/optim.c, which documents
 * the fields per kind): p, g and up to three state buffers, n elements. */
typedef struct kbl_optim_update {
    void *p, *g, *s0, *s1, *s2;
    double lr, c0, c1, c2, c3, eps, wd;
    int mode;
} kbl_optim_update;
enum { KBL_OPTIM_SGD = 0, KBL_OPTIM_ADAM = 1, KBL_OPTIM_RMSPROP = 2, KBL_OPTIM_ADAGRAD = 3 };

/* Indexing on contiguous data (elements of esize bytes, or of dtype).
 * INDEX_SELECT: out[o, j, i] = src[o, idx[j], i]     (outer, n, size, inner)
 * INDEX_ADD:    dst[o, idx[j], i] += src[o, j, i]    (dst pre-zeroed; float dtypes)
 * EMBEDDING_BACKWARD: dst[idx[j], i] += src[j, i], skipping idx[j] == skip
 * ONE_HOT:      out[j, idx[j]] = 1 (int64 out pre-zeroed; size = classes)
 * GATHER:       out[i] = src[off(i)], off with dim `dim` replaced by idx[i]
 * SCATTER_ADD:  out[off(i)] += src[soff(i)]  (idx_shape, strides below) */
typedef struct kbl_index_args {
    int kind;
    int dtype;
    int ndim, dim;
    int64_t outer, n, size, inner, skip;
    int64_t idx_shape[KBL_MAX_DIMS];
    int64_t a_strides[KBL_MAX_DIMS];      /* of src (gather) or out (scatter_add) */
    int64_t s_strides[KBL_MAX_DIMS];      /* of src (scatter_add) */
    const int64_t *idx;
    const void *src;
    void *out;
} kbl_index_args;
enum { KBL_INDEX_SELECT = 0, KBL_INDEX_ADD = 1, KBL_EMBEDDING_BACKWARD = 2, KBL_ONE_HOT = 3,
       KBL_GATHER = 4, KBL_SCATTER_ADD = 5 };

typedef struct kbl_backend {
    int abi;                     /* KBL_BACKEND_ABI */
    const char *name;
    /* Starts the device (0) or says why it cannot (-1, reason filled). */
    int (*init)(const kbl_backend_host *host, char *reason, size_t reason_size);
    int (*device_count)(void);
    const char *(*device_name)(void);
    int (*synchronize)(void);
    /* caching allocator (over cudaMalloc; over malloc on the CPU) */
    void *(*alloc)(int64_t nbytes);
    void (*free)(void *p, int64_t nbytes);
    /* live, peak, cached, allocations (calls that reached cudaMalloc), device total */
    void (*memory_stats)(int64_t out[5]);
    void (*empty_cache)(void);
    void (*reset_peak)(void);
    int (*memcpy)(void *dst, const void *src, int64_t nbytes, int kind);
    /* elementwise over an iterator whose operand 0 is the output */
    int (*copy)(const kbl_iter *it, int dst_dtype, int src_dtype);
    int (*fill)(const kbl_iter *it, int dtype, double value);
    int (*binary)(const kbl_iter *it, int op, int dtype);          /* inputs of dtype */
    int (*axpy)(const kbl_iter *it, int dtype, double alpha);      /* o += alpha * s */
    int (*where)(const kbl_iter *it, int dtype);                   /* o = m ? a : o */
    int (*unary)(const kbl_iter *it, int op, int in_dtype, int out_dtype, double p0, double p1);
    /* contiguous: out = g * f'(x) (x or y = f(x) may be NULL) */
    int (*unary_grad)(int op, int dtype, int64_t n, void *out, const void *g, const void *x,
                      const void *y, double p0, double p1);
    /* reductions over contiguous rows [rows, inner] or columns [outer, cols] */
    int (*sum_rows)(int dtype, int64_t rows, int64_t inner, const void *src, void *dst);
    int (*sum_cols)(int dtype, int64_t outer, int64_t cols, const void *src, void *dst);
    int (*extreme_rows)(int dtype, int is_max, int64_t rows, int64_t inner, const void *src,
                        void *values, int64_t *indices);
    int (*softmax_rows)(int dtype, int log_form, int64_t rows, int64_t cols, const void *src, void *dst);
    int (*cross_entropy)(const kbl_ce_args *a);
    /* row-major C[m, n] = op(A) op(B) + beta C, through cuBLAS */
    int (*gemm)(int dtype, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const void *a,
                int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);
    /* The first i with idx[i] outside [0, size) and idx[i] != skip, into
     * *bad_pos_host (-1 if none) and its value into *bad_val_host. */
    int (*index_check)(const int64_t *idx, int64_t n, int64_t size, int64_t skip,
                       int64_t *bad_pos_host, int64_t *bad_val_host);
    int (*index)(const kbl_index_args *a);
    /* Inverted dropout's keep-mask from Philox (core/philox.h), four per counter. */
    int (*dropout_mask)(int dtype, int64_t n, uint64_t seed, uint64_t counter, uint32_t threshold,
                        double scale, void *out);
    /* Convolution (cuDNN; oneDNN on the CPU): FORWARD y = conv(x, w); BACKWARD_DATA
     * x = dgrad(y, w); BACKWARD_FILTER w = wgrad(x, y). The result is overwritten. */
    int (*conv)(int which, const kbl_conv_desc *d, void *x, void *w, void *y);
    int (*pool)(const kbl_pool_desc *d);
    int (*norm)(const kbl_norm_args *a);
    int (*optim_step)(int kind, int dtype, int64_t n, const kbl_optim_update *u);
    /* 1 when conv takes kbl_conv_desc.bias (fused bias and bias gradient); 0
     * (a table filled positionally without it): the core adds and sums the bias. */
    int conv_bias;
} kbl_backend;

typedef const kbl_backend *(*kbl_backend_entry)(void);

#ifdef __cplusplus
}
#endif

#endif /* KBL_BACKEND_H */
