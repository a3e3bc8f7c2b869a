/* kbl.h — the public header of libkbl: tensors, ops, autograd and runtime (it
 * includes the other parts' headers, so including it is enough).
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
 * The data pipeline, checkpoint, signal and profiler declarations live in
 * kbl_data.h, kbl_checkpoint.h, kbl_signal.h and kbl_profile.h, included at the
 * end of this one.
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
/* Called once per leaf during backward when the last of its gradient has been
 * accumulated into leaf->grad (data-parallel training starts its all-reduce
 * there: dist/buckets.c). Non-zero fails the backward. fn NULL removes it. */
typedef int (*kbl_grad_ready_fn)(kbl_tensor *leaf, void *ctx);
void kbl_set_grad_ready_hook(kbl_grad_ready_fn fn, void *ctx);
/* The sum of x over the processes of a data-parallel job, differentiable (its
 * gradient is the sum of the gradients): synchronized batch norm's statistics.
 * libkbl_mpi.so sets the hook that sums a contiguous tensor in place; without
 * it (one process) the result is a copy of x. */
typedef int (*kbl_all_reduce_fn)(kbl_tensor *t, void *ctx);
void kbl_set_all_reduce_hook(kbl_all_reduce_fn fn, void *ctx);
kbl_tensor *kbl_all_reduce_sum(kbl_tensor *x);
const char *kbl_grad_fn_name(const kbl_tensor *t);
/* Reduces g to shape (sums the broadcast dims): the adjoint of expand. */
kbl_tensor *kbl_sum_to(kbl_tensor *g, int ndim, const int64_t *shape);

/* ---- elementwise: NumPy broadcasting and type promotion ------------------ */
/* Binary ops, one line each in core/ops_binary.def. */
typedef enum kbl_binary_op {
#define KBL_BINARY(NAME, ...) KBL_##NAME,
#include "ops_binary.def"
#undef KBL_BINARY
    KBL_BINARY_COUNT
} kbl_binary_op;
const char *kbl_binary_name(int op);  /* NULL for an unknown op */
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

/* Unary ops, one line each in core/ops_unary.def (with their parameters p0, p1). */
typedef enum kbl_unary_op {
#define KBL_UNARY(NAME, ...) KBL_##NAME,
#include "ops_unary.def"
#undef KBL_UNARY
    KBL_UNARY_COUNT
} kbl_unary_op;
/* An op's line of its table: name, what its derivative reads (0 none, 1 the
 * input, 2 the output), kind (0 internal, 1 a kbl function, 2 also an
 * activation) and its parameters' defaults. */
typedef struct kbl_op_info {
    const char *name;
    int grad, kind;
    double p0, p1;
} kbl_op_info;
const kbl_op_info *kbl_unary_info(int op);  /* NULL for an unknown op */
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

/* ---- optimizers (optim.c) ---- */
/* Fused updates, one call per parameter: param and its state tensors change in
 * place in one pass, following torch.optim's arithmetic. Every tensor is on one device,
 * contiguous, of the parameter's shape and float dtype; optional state is NULL. */
int kbl_sgd_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *momentum_buffer, double lr,
                 double momentum, double dampening, double weight_decay, int nesterov, int first_step);
/* decoupled != 0 is AdamW; max_exp_avg_sq non-NULL turns on amsgrad; step counts from 1. */
int kbl_adam_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *exp_avg, kbl_tensor *exp_avg_sq,
                  kbl_tensor *max_exp_avg_sq, double lr, double beta1, double beta2, double eps,
                  double weight_decay, int64_t step, int decoupled);
/* grad_avg non-NULL: centered; momentum_buffer is used when momentum > 0. */
int kbl_rmsprop_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *square_avg, kbl_tensor *grad_avg,
                     kbl_tensor *momentum_buffer, double lr, double alpha, double eps,
                     double weight_decay, double momentum);
/* clr is the step's learning rate, lr / (1 + (step - 1) * lr_decay). */
int kbl_adagrad_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *sum, double clr,
                     double weight_decay, double eps);

/* ---- conv: convolution, pooling, normalization, dropout, embedding (conv.c, pool.c,
 * norm.c, dropout.c, embedding.c) ---- */
/* NCHW, float32 or float64. stride[2] and dilation[2] are (h, w); padding[4] is
 * (top, bottom, left, right); NULL means 1 (stride, dilation) or 0 (padding).
 * conv2d: x [N, C, H, W], weight [O, C/groups, kh, kw], bias [O] or NULL. */
kbl_tensor *kbl_conv2d(kbl_tensor *x, kbl_tensor *weight, kbl_tensor *bias, const int64_t *stride,
                       const int64_t *padding, const int64_t *dilation, int64_t groups);
/* conv2d's backward kernels, differentiable ops themselves: the gradient with
 * respect to the input (of size input_hw[2]) and to the weight (kernel_hw[2]). */
kbl_tensor *kbl_conv2d_backward_input(kbl_tensor *grad, kbl_tensor *weight, const int64_t *input_hw,
                                      const int64_t *stride, const int64_t *padding,
                                      const int64_t *dilation, int64_t groups);
kbl_tensor *kbl_conv2d_backward_weight(kbl_tensor *grad, kbl_tensor *x, const int64_t *kernel_hw,
                                       const int64_t *stride, const int64_t *padding,
                                       const int64_t *dilation, int64_t groups);
/* x [N, C, H, W], weight [C, O/groups, kh, kw], bias [O] or NULL; output_padding[2]. */
kbl_tensor *kbl_conv_transpose2d(kbl_tensor *x, kbl_tensor *weight, kbl_tensor *bias,
                                 const int64_t *stride, const int64_t *padding,
                                 const int64_t *output_padding, const int64_t *dilation, int64_t groups);
/* Pooling on x [N, C, H, W]; kernel, stride, padding are (h, w) pairs (stride NULL:
 * the kernel). max_pool2d's indices (if asked) are int64 positions in each H*W
 * plane, counting from 0; its backward scatters grad to them. */
kbl_tensor *kbl_max_pool2d(kbl_tensor *x, const int64_t *kernel, const int64_t *stride,
                           const int64_t *padding, kbl_tensor **indices);
kbl_tensor *kbl_max_pool2d_backward(kbl_tensor *grad, kbl_tensor *indices, const int64_t *input_hw);
kbl_tensor *kbl_avg_pool2d(kbl_tensor *x, const int64_t *kernel, const int64_t *stride,
                           const int64_t *padding, int count_include_pad);
kbl_tensor *kbl_avg_pool2d_backward(kbl_tensor *grad, const int64_t *input_hw, const int64_t *kernel,
                                    const int64_t *stride, const int64_t *padding,
                                    int count_include_pad);
kbl_tensor *kbl_adaptive_avg_pool2d(kbl_tensor *x, int64_t oh, int64_t ow);
kbl_tensor *kbl_adaptive_avg_pool2d_backward(kbl_tensor *grad, const int64_t *input_hw);
/* Output (oh, ow); source row floor(y * scale_h) (scale <= 0: H / oh), as PyTorch. */
kbl_tensor *kbl_upsample_nearest2d(kbl_tensor *x, int64_t oh, int64_t ow, double scale_h, double scale_w);
kbl_tensor *kbl_upsample_nearest2d_backward(kbl_tensor *grad, const int64_t *input_hw,
                                            double scale_h, double scale_w);
/* batch_norm on x [N, C] or [N, C, ...]: training uses the batch statistics and, when
 * given, updates running_mean/var in place (unbiased variance) with momentum;
 * otherwise normalizes with the running statistics. weight and bias [C] or NULL. */
kbl_tensor *kbl_batch_norm(kbl_tensor *x, kbl_tensor *running_mean, kbl_tensor *running_var,
                           kbl_tensor *weight, kbl_tensor *bias, int training, double momentum,
                           double eps);
/* The fused backward: mean and invstd [C] are those the forward normalized with;
 * training != 0 adds the terms through the batch statistics. grad_weight and
 * grad_bias (may be NULL) receive new references. Returns the input's gradient. */
kbl_tensor *kbl_batch_norm_backward(kbl_tensor *grad, kbl_tensor *x, kbl_tensor *weight,
                                    kbl_tensor *mean, kbl_tensor *invstd, int training,
                                    kbl_tensor **grad_weight, kbl_tensor **grad_bias);
/* layer_norm over the last ndims dims (weight and bias of their shape or NULL);
 * group_norm over [N, C, ...] with C divisible by groups (weight, bias [C] or NULL). */
kbl_tensor *kbl_layer_norm(kbl_tensor *x, int ndims, kbl_tensor *weight, kbl_tensor *bias, double eps);
kbl_tensor *kbl_group_norm(kbl_tensor *x, int64_t groups, kbl_tensor *weight, kbl_tensor *bias,
                           double eps);
/* Their fused backward: x seen as [N, groups, D], each row normalized with mean and
 * rstd [N * groups]; weight element p scales blocks of `inner` elements. */
kbl_tensor *kbl_norm_rows_backward(kbl_tensor *grad, kbl_tensor *x, kbl_tensor *weight,
                                   kbl_tensor *mean, kbl_tensor *rstd, int64_t groups, int64_t inner,
                                   kbl_tensor **grad_weight, kbl_tensor **grad_bias);
/* Inverted dropout: zeroes elements (dropout2d: whole [N, C] planes of x [N, C, ...])
 * with probability p and scales the rest by 1/(1-p); masks come from the global
 * Philox generator. Not training, or p = 0: x itself. */
kbl_tensor *kbl_dropout(kbl_tensor *x, double p, int training);
kbl_tensor *kbl_dropout2d(kbl_tensor *x, double p, int training);
/* Data-parallel training: this process holds rows [offset, offset + count) of a
 * global batch of total rows. Dropout then draws each row's mask as the whole
 * batch's would be drawn in one process (keyed by the global row) and advances
 * the generator by the whole batch's draws, so masks do not depend on the
 * number of processes. Applies to inputs whose first dim is count; total 0 turns it off. */
void kbl_set_batch_shard(int64_t offset, int64_t count, int64_t total);
/* The scaled keep-mask of dropout: 0 or 1/(1-p) in dtype, from the global generator. */
kbl_tensor *kbl_dropout_mask(int ndim, const int64_t *shape, double p, int dtype);
/* weight [num, dim] rows at indices (int64, from 0, any shape) -> [..., dim];
 * the row padding_idx (-1: none) gets no gradient. */
kbl_tensor *kbl_embedding(kbl_tensor *indices, kbl_tensor *weight, int64_t padding_idx);
kbl_tensor *kbl_embedding_backward(kbl_tensor *grad, kbl_tensor *indices, int64_t num,
                                   int64_t padding_idx);

/* ---- cuda: the optional CUDA backend (backend.c; kernels in cuda/) ---- */
/* libkbl_cuda.so is loaded on the first of these calls; without it, a driver or
 * a device, is_available is 0 and the reason says why ("" when available).
 * Ops take their device from their inputs: KBL_CUDA tensors run there, and
 * mixing devices is an error naming both. Device 0 is the one CUDA device used. */
int kbl_cuda_is_available(void);
const char *kbl_cuda_unavailable_reason(void);
int kbl_cuda_device_count(void);
const char *kbl_cuda_device_name(void);
int kbl_cuda_synchronize(void);
/* live, peak and cached bytes, calls that reached cudaMalloc, the device's memory */
void kbl_cuda_memory_stats(int64_t out[5]);
void kbl_cuda_empty_cache(void);
void kbl_cuda_reset_peak(void);
/* Creation on a device (KBL_CPU or KBL_CUDA); the others make CPU tensors. */
kbl_tensor *kbl_empty_on(int device, int ndim, const int64_t *shape, int dtype);
kbl_tensor *kbl_zeros_on(int device, int ndim, const int64_t *shape, int dtype);
kbl_tensor *kbl_full_on(int device, int ndim, const int64_t *shape, double value, int dtype);
/* t's values on device (KBL_CPU or KBL_CUDA), or t itself (retained) when it is
 * there already; differentiable (the gradient goes back to t's device). */
kbl_tensor *kbl_to_device(kbl_tensor *t, int device);

/* KBL_CDEF_END */

#ifdef __cplusplus
}
#endif

/* The rest of the public API, one header a part; the FFI gets their regions
 * in this order after this one's. */
#include "kbl_checkpoint.h"
#include "kbl_signal.h"
#include "kbl_data.h"
#include "kbl_profile.h"

#endif /* KBL_H */
