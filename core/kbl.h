/* kbl.h — the one public header of libkbl: tensors, ops, autograd and runtime.
 *
 *   kbl_tensor *x = kbl_randn(2, (int64_t[]){4, 3}, KBL_FLOAT32);
 *   kbl_tensor *w = kbl_randn(2, (int64_t[]){3, 2}, KBL_FLOAT32);
 *   kbl_set_requires_grad(w, 1);
 *   kbl_tensor *y = kbl_matmul(x, w);          // NULL on error: see kbl_last_error()
 *   kbl_tensor *loss = kbl_sum(y, 0, NULL, 0);
 *   kbl_backward(loss, NULL, 0);                // w->grad now holds d loss / d w
 *   kbl_tensor_release(loss); ...
 *
 * Conventions: functions that make a tensor return a new reference (release it);
 * on failure they return NULL (or a non-zero int) and leave a message in a
 * thread-local buffer read by kbl_last_error(). Dimensions count from 0 and may
 * be negative (from the end). The library never aborts or exits.
 *
 * Everything between KBL_CDEF_BEGIN and KBL_CDEF_END is plain C that LuaJIT's
 * ffi.cdef accepts: the build extracts it into the Lua binding, so keep
 * preprocessor directives and macros out of that region.
 */
#ifndef KBL_H
#define KBL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* KBL_CDEF_BEGIN */

typedef enum kbl_dtype {
    KBL_FLOAT32 = 0, KBL_FLOAT64 = 1, KBL_INT32 = 2, KBL_INT64 = 3, KBL_UINT8 = 4
} kbl_dtype;

typedef enum kbl_device { KBL_CPU = 0, KBL_CUDA = 1 } kbl_device;

typedef struct kbl_storage kbl_storage;
typedef struct kbl_node kbl_node;

/* A view (shape, strides in elements, offset) over refcounted storage. */
typedef struct kbl_tensor {
    int32_t dtype;
    int32_t device;
    int32_t ndim;
    int32_t requires_grad;
    int64_t shape[8];
    int64_t strides[8];
    int64_t offset;
    kbl_storage *storage;        /* NULL once freed by kbl_tensor_free_data */
    kbl_node *grad_fn;           /* the op that made it, when recorded */
    struct kbl_tensor *grad;     /* accumulated gradient of a leaf */
    int32_t refcount;
    int32_t is_leaf_retain;      /* reserved */
} kbl_tensor;

/* ---- errors and runtime ------------------------------------------------ */
const char *kbl_last_error(void);
void kbl_clear_error(void);
const char *kbl_version(void);
const char *kbl_blas_info(void);
void kbl_set_num_threads(int n);
int kbl_get_num_threads(void);
size_t kbl_sizeof_tensor(void);
size_t kbl_offsetof_tensor_storage(void);

/* ---- memory ------------------------------------------------------------ */
int64_t kbl_memory_live_bytes(void);     /* bytes held by live tensors */
int64_t kbl_memory_peak_bytes(void);
int64_t kbl_memory_cached_bytes(void);   /* freed blocks kept for reuse */
int64_t kbl_memory_alloc_count(void);    /* calls that reached malloc */
void kbl_memory_reset_peak(void);
void kbl_memory_empty_cache(void);

/* ---- tensor lifetime and metadata ------------------------------------- */
kbl_tensor *kbl_tensor_retain(kbl_tensor *t);
void kbl_tensor_release(kbl_tensor *t);
/* Drops the data, graph and gradient of t now, leaving an empty husk that
 * errors on use; the struct itself lives until its last release. */
void kbl_tensor_free_data(kbl_tensor *t);
int kbl_tensor_is_freed(const kbl_tensor *t);
int64_t kbl_numel(const kbl_tensor *t);
int kbl_is_contiguous(const kbl_tensor *t);
void *kbl_data_ptr(const kbl_tensor *t);   /* first element (CPU), or NULL */
size_t kbl_dtype_size(int dtype);
const char *kbl_dtype_name(int dtype);
int kbl_same_storage(const kbl_tensor *a, const kbl_tensor *b);

/* ---- creation ------------------------------------------------------------ */
kbl_tensor *kbl_empty(int ndim, const int64_t *shape, int dtype);
kbl_tensor *kbl_zeros(int ndim, const int64_t *shape, int dtype);
kbl_tensor *kbl_full(int ndim, const int64_t *shape, double value, int dtype);
kbl_tensor *kbl_arange(double start, double end, double step, int dtype);
kbl_tensor *kbl_linspace(double start, double end, int64_t steps, int dtype);
kbl_tensor *kbl_eye(int64_t n, int64_t m, int dtype);
kbl_tensor *kbl_from_doubles(int ndim, const int64_t *shape, const double *values, int dtype);

/* ---- random: Philox 4x32-10, a pure function of (seed, stream, counter) -- */
void kbl_manual_seed(uint64_t seed);
void kbl_generator_get_state(uint64_t *seed, uint64_t *offset);
void kbl_generator_set_state(uint64_t seed, uint64_t offset);
/* Four 32-bit words of the stream; the building block for data pipelines. */
void kbl_philox(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t out[4]);
kbl_tensor *kbl_rand(int ndim, const int64_t *shape, int dtype);
kbl_tensor *kbl_randn(int ndim, const int64_t *shape, int dtype);
kbl_tensor *kbl_uniform(int ndim, const int64_t *shape, double low, double high, int dtype);
kbl_tensor *kbl_normal(int ndim, const int64_t *shape, double mean, double std, int dtype);
kbl_tensor *kbl_randint(int ndim, const int64_t *shape, int64_t low, int64_t high, int dtype);
kbl_tensor *kbl_randperm(int64_t n, int dtype);
int kbl_uniform_(kbl_tensor *t, double low, double high);
int kbl_normal_(kbl_tensor *t, double mean, double std);

/* ---- copies, conversion, in-place fills (no gradient through the _ forms) */
int kbl_copy_(kbl_tensor *dst, const kbl_tensor *src);   /* src broadcast to dst */
int kbl_fill_(kbl_tensor *t, double value);
kbl_tensor *kbl_contiguous(kbl_tensor *t);     /* t itself (retained) if contiguous */
kbl_tensor *kbl_clone(kbl_tensor *t);
kbl_tensor *kbl_to_dtype(kbl_tensor *t, int dtype);
double kbl_item(const kbl_tensor *t, int *ok);

/* ---- views: share storage with their input, differentiable -------------- */
kbl_tensor *kbl_view(kbl_tensor *t, int ndim, const int64_t *shape);     /* -1 infers */
kbl_tensor *kbl_reshape(kbl_tensor *t, int ndim, const int64_t *shape);  /* copies if needed */
kbl_tensor *kbl_transpose(kbl_tensor *t, int d0, int d1);
kbl_tensor *kbl_permute(kbl_tensor *t, int ndim, const int *dims);
kbl_tensor *kbl_narrow(kbl_tensor *t, int dim, int64_t start, int64_t length);
kbl_tensor *kbl_select(kbl_tensor *t, int dim, int64_t index);
kbl_tensor *kbl_expand(kbl_tensor *t, int ndim, const int64_t *shape);   /* -1 keeps */
kbl_tensor *kbl_squeeze(kbl_tensor *t, int dim, int all);
kbl_tensor *kbl_unsqueeze(kbl_tensor *t, int dim);
kbl_tensor *kbl_alias(kbl_tensor *t);          /* same view, no graph (detach) */

/* ---- autograd ------------------------------------------------------------ */
int kbl_set_requires_grad(kbl_tensor *t, int flag);
kbl_tensor *kbl_detach(kbl_tensor *t);
int kbl_is_grad_enabled(void);
int kbl_set_grad_enabled(int flag);            /* returns the previous value */
kbl_tensor *kbl_get_grad(kbl_tensor *t);       /* new reference, or NULL */
int kbl_set_grad(kbl_tensor *t, kbl_tensor *grad);   /* grad may be NULL */
/* grad NULL means ones (t must have one element). */
int kbl_backward(kbl_tensor *t, kbl_tensor *grad, int retain_graph);
const char *kbl_grad_fn_name(const kbl_tensor *t);
/* Reduces g to shape (sums the broadcast dims): the adjoint of expand. */
kbl_tensor *kbl_sum_to(kbl_tensor *g, int ndim, const int64_t *shape);

/* ---- elementwise: NumPy broadcasting and type promotion ------------------ */
typedef enum kbl_binary_op {
    KBL_ADD, KBL_SUB, KBL_MUL, KBL_DIV, KBL_POW, KBL_MAXIMUM, KBL_MINIMUM,
    KBL_EQ, KBL_NE, KBL_LT, KBL_LE, KBL_GT, KBL_GE,
    KBL_LOGICAL_AND, KBL_LOGICAL_OR, KBL_LOGICAL_XOR
} kbl_binary_op;
kbl_tensor *kbl_binary(int op, kbl_tensor *a, kbl_tensor *b);
kbl_tensor *kbl_add(kbl_tensor *a, kbl_tensor *b);
kbl_tensor *kbl_sub(kbl_tensor *a, kbl_tensor *b);
kbl_tensor *kbl_mul(kbl_tensor *a, kbl_tensor *b);
kbl_tensor *kbl_div(kbl_tensor *a, kbl_tensor *b);
kbl_tensor *kbl_pow(kbl_tensor *a, kbl_tensor *b);
kbl_tensor *kbl_maximum(kbl_tensor *a, kbl_tensor *b);
kbl_tensor *kbl_minimum(kbl_tensor *a, kbl_tensor *b);
kbl_tensor *kbl_where(kbl_tensor *cond, kbl_tensor *a, kbl_tensor *b);
int kbl_add_(kbl_tensor *dst, kbl_tensor *src, double alpha);  /* dst += alpha*src */

/* Unary ops; p0 and p1 are the op's parameters (named in unary.c). */
typedef enum kbl_unary_op {
    KBL_NEG, KBL_ABS, KBL_EXP, KBL_LOG, KBL_LOG1P, KBL_SQRT, KBL_RSQRT, KBL_SQUARE,
    KBL_RELU, KBL_LEAKY_RELU, KBL_ELU, KBL_GELU, KBL_GELU_TANH, KBL_SIGMOID,
    KBL_TANH, KBL_SOFTPLUS, KBL_SILU, KBL_AFFINE, KBL_POW_SCALAR, KBL_RPOW_SCALAR,
    KBL_CLAMP, KBL_RECIPROCAL, KBL_SIGN, KBL_LOGICAL_NOT, KBL_SIN, KBL_COS,
    KBL_UNARY_COUNT
} kbl_unary_op;
kbl_tensor *kbl_unary(int op, kbl_tensor *a, double p0, double p1);
/* The backward kernel of every unary op: grad * f'(x) (out is f(x)). */
kbl_tensor *kbl_unary_grad(int op, kbl_tensor *grad, kbl_tensor *x, kbl_tensor *out,
                           double p0, double p1);

/* ---- reductions (dims NULL with ndims 0 means all dims) ------------------ */
kbl_tensor *kbl_sum(kbl_tensor *a, int ndims, const int *dims, int keepdim);
kbl_tensor *kbl_mean(kbl_tensor *a, int ndims, const int *dims, int keepdim);
kbl_tensor *kbl_var(kbl_tensor *a, int ndims, const int *dims, double correction, int keepdim);
kbl_tensor *kbl_std(kbl_tensor *a, int ndims, const int *dims, double correction, int keepdim);
kbl_tensor *kbl_logsumexp(kbl_tensor *a, int ndims, const int *dims, int keepdim);
kbl_tensor *kbl_norm(kbl_tensor *a, double p, int ndims, const int *dims, int keepdim);
/* Max/min along one dim: values and (if indices != NULL) int64 positions.
 * dim_all != 0 reduces over every element (indices then index the flat tensor). */
kbl_tensor *kbl_max(kbl_tensor *a, int dim, int dim_all, int keepdim, kbl_tensor **indices);
kbl_tensor *kbl_min(kbl_tensor *a, int dim, int dim_all, int keepdim, kbl_tensor **indices);
kbl_tensor *kbl_argmax(kbl_tensor *a, int dim, int dim_all, int keepdim);
kbl_tensor *kbl_argmin(kbl_tensor *a, int dim, int dim_all, int keepdim);

/* ---- linear algebra ------------------------------------------------------ */
kbl_tensor *kbl_matmul(kbl_tensor *a, kbl_tensor *b);
kbl_tensor *kbl_linear(kbl_tensor *x, kbl_tensor *weight, kbl_tensor *bias); /* bias may be NULL */

/* ---- softmax and losses ---------------------------------------------------- */
kbl_tensor *kbl_softmax(kbl_tensor *a, int dim);
kbl_tensor *kbl_log_softmax(kbl_tensor *a, int dim);
typedef enum kbl_reduction { KBL_REDUCE_NONE = 0, KBL_REDUCE_MEAN = 1, KBL_REDUCE_SUM = 2 } kbl_reduction;
/* logits [N, C] or [N, C, d...]; labels int64 class positions counting from 0;
 * weight [C] or NULL; labels equal to ignore_index add nothing. */
kbl_tensor *kbl_cross_entropy(kbl_tensor *logits, kbl_tensor *labels, kbl_tensor *weight,
                              int64_t ignore_index, double label_smoothing, int reduction);
kbl_tensor *kbl_binary_cross_entropy_with_logits(kbl_tensor *logits, kbl_tensor *target,
                                                 kbl_tensor *weight, kbl_tensor *pos_weight,
                                                 int reduction);

/* ---- indexing (indices are int64, counting from 0) ------------------------- */
kbl_tensor *kbl_index_select(kbl_tensor *a, int dim, kbl_tensor *index);
kbl_tensor *kbl_gather(kbl_tensor *a, int dim, kbl_tensor *index);
kbl_tensor *kbl_scatter_add(kbl_tensor *a, int dim, kbl_tensor *index, kbl_tensor *src);
kbl_tensor *kbl_masked_fill(kbl_tensor *a, kbl_tensor *mask, double value);
kbl_tensor *kbl_cat(int n, kbl_tensor **tensors, int dim);
kbl_tensor *kbl_stack(int n, kbl_tensor **tensors, int dim);
/* pads: (before, after) pairs from the last dim backwards, as torch.nn.functional.pad */
kbl_tensor *kbl_pad(kbl_tensor *a, int npairs, const int64_t *pads, double value);
kbl_tensor *kbl_one_hot(kbl_tensor *labels, int64_t num_classes);
kbl_tensor *kbl_flip(kbl_tensor *a, int ndims, const int *dims);

/* KBL_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* KBL_H */
