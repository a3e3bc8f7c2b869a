/* internal.h — what the core's files share and the public header hides:
 * error reporting, storage, the autograd node, shape helpers, dtype dispatch. */
#ifndef KBL_INTERNAL_H
#define KBL_INTERNAL_H

#include "backend.h"
#include "kbl.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KBL_MAX_DIMS 8

/* ---- errors (error.c) ---------------------------------------------------- */
/* Sets the thread-local message; always returns -1 so `return kbl_fail(...)` works. */
int kbl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Formats "[2, 3] float32" into buf, for messages. */
const char *kbl_describe(const kbl_tensor *t, char *buf, size_t n);
#define KBL_DESC(t) kbl_describe((t), (char[96]){0}, 96)
/* Checks a tensor argument is usable (present, with data, on the CPU); a CUDA
 * tensor fails with "no CUDA kernel for <op>", so an op without a device kernel
 * never reads device memory. op names the op in the message. The NULL test is
 * inline so that the caller's compiler, and clang-tidy's analyzer, which sees
 * one file at a time, know that a tensor which passed is not NULL. */
int kbl_check_tensor_data(const char *op, const kbl_tensor *t, const char *arg, int any_device);
static inline int kbl_check_tensor(const char *op, const kbl_tensor *t, const char *arg) {
    if (!t) {
        kbl_fail("%s: %s is missing (NULL tensor)", op, arg);
        return -1;
    }
    return kbl_check_tensor_data(op, t, arg, 0);
}
/* The same check for ops that run on every device (CPU and CUDA). */
static inline int kbl_check_dev(const char *op, const kbl_tensor *t, const char *arg) {
    if (!t) {
        kbl_fail("%s: %s is missing (NULL tensor)", op, arg);
        return -1;
    }
    return kbl_check_tensor_data(op, t, arg, 1);
}
int kbl_check_float(const char *op, const kbl_tensor *t);
int kbl_check_same_device(const char *op, const kbl_tensor *a, const kbl_tensor *b);
const char *kbl_device_name(int device);
/* Normalises a possibly negative dim against ndim; -1 (with a message) if out of range. */
int kbl_wrap_dim(const char *op, int dim, int ndim);

/* ---- storage and allocation (alloc.c, tensor.c) --------------------------- */
struct kbl_storage {
    void *data;
    int64_t nbytes;
    int32_t refcount;
    int32_t device;
};
void *kbl_alloc(int64_t nbytes);
void kbl_free(void *p, int64_t nbytes);
kbl_storage *kbl_storage_new(int64_t nbytes, int device);
void kbl_storage_release(kbl_storage *s);
/* A tensor struct over s (retained), with the given geometry. */
kbl_tensor *kbl_tensor_wrap(kbl_storage *s, int dtype, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset);
/* Empty tensor with the same shape and device (and dtype unless dtype >= 0). */
kbl_tensor *kbl_empty_like(const kbl_tensor *t, int dtype);
/* Creation on a device (KBL_CPU or KBL_CUDA): the outputs of ops. */
kbl_tensor *kbl_empty_on(int device, int ndim, const int64_t *shape, int dtype);
kbl_tensor *kbl_zeros_on(int device, int ndim, const int64_t *shape, int dtype);
kbl_tensor *kbl_full_on(int device, int ndim, const int64_t *shape, double value, int dtype);

/* ---- devices (backend.c) ---------------------------------------------------- */
/* The CUDA backend's table, loading it on first use; NULL (with the reason as
 * the message, naming op) when CUDA is not available. */
const kbl_backend *kbl_cuda_table(const char *op);
/* The backend table of t's device (the CPU's, or CUDA's: loaded, since the
 * tensor exists). Ops dispatch through it and hold no device branches. */
const kbl_backend *kbl_backend_of(const kbl_tensor *t);
static inline bool kbl_on_cuda(const kbl_tensor *t) { return t->device == KBL_CUDA; }
/* Copies n bytes between devices (kind KBL_COPY_*). */
int kbl_device_memcpy(void *dst, const void *src, int64_t nbytes, int kind);
/* A CPU copy of a (small) tensor of any device, contiguous: for host logic. */
kbl_tensor *kbl_host_copy(kbl_tensor *t);
/* t as an operand of an op running on device, in dtype (any when dtype < 0): t
 * itself (retained) when it fits; converted (recorded, so gradients follow);
 * a 0-dim CPU tensor is a scalar and moves (as in PyTorch); otherwise an error
 * naming both devices: the one place mixing devices is refused. */
kbl_tensor *kbl_operand(const char *op, kbl_tensor *t, int device, int dtype);
/* The device an op over ts runs on: the first operand's that is not a 0-dim
 * CPU tensor (a scalar, which kbl_operand moves), else ts[0]'s. */
int kbl_common_device(int n, kbl_tensor *const *ts);
/* dst = src (broadcast, converted) where the two are on different devices. */
int kbl_copy_across(kbl_tensor *dst, const kbl_tensor *src);
/* The one checked computation of sizes, which every constructor (kbl_empty_on,
 * kbl_tensor_wrap) runs: the element count and byte count of a contiguous
 * tensor of (ndim, shape) and dtype. 0, or -1 with a message naming op and the
 * shape when ndim is out of range, a size is negative, or a count (or a stride:
 * zero sizes count as 1 for the bound) passes 2^63. numel, nbytes may be NULL. */
int kbl_shape_size(const char *op, int ndim, const int64_t *shape, int dtype, int64_t *numel, int64_t *nbytes);
/* Strides of a contiguous tensor of shape, a shape that passed kbl_shape_size. */
void kbl_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
/* "[2, 3]" into buf (n bytes), for messages; returns buf. */
const char *kbl_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);
/* The product of shape: -1 (no message) when a size is negative or it passes 2^63. */
int64_t kbl_shape_numel(int ndim, const int64_t *shape);
bool kbl_same_shape(const kbl_tensor *a, const kbl_tensor *b);
/* Broadcast two shapes; returns the result ndim or -1 (message names op). */
int kbl_broadcast_shape(const char *op, const kbl_tensor *a, const kbl_tensor *b, int64_t *out);
/* Strides of t seen as a tensor of shape (ndim, shape): 0 on broadcast dims. */
void kbl_broadcast_strides(const kbl_tensor *t, int ndim, const int64_t *shape, int64_t *strides);
/* Output shape of a reduction; fills reduce_mask[d]=1 for reduced dims. */
int kbl_reduce_shape(const char *op, const kbl_tensor *a, int ndims, const int *dims, int keepdim,
                     bool *reduce_mask, int64_t *out_shape);

static inline void *kbl_base(const kbl_tensor *t) {
    return (char *)t->storage->data + t->offset * (int64_t)kbl_dtype_size(t->dtype);
}
static inline bool kbl_is_float(int dtype) { return dtype == KBL_FLOAT32 || dtype == KBL_FLOAT64; }
int kbl_promote(int a, int b);

/* ---- strided iteration (iter.c) ------------------------------------------- */
/* Up to 3 operands walked together over `shape`; dims coalesced where possible
 * (kbl_iter itself is in backend.h: the device kernels take it too). The
 * visitor gets runs of `n` elements with per-operand element strides. */
void kbl_iter_init(kbl_iter *it, int ndim, const int64_t *shape, int nops, char **base,
                   int64_t strides[][KBL_MAX_DIMS], const size_t *esize);
typedef void (*kbl_run_fn)(char **ptrs, const int64_t *strides, int64_t n, void *ctx);
/* Calls fn for every innermost run; splits the outer runs over threads when big. */
void kbl_iter_run(const kbl_iter *it, kbl_run_fn fn, void *ctx);

/* ---- threads (runtime.c) --------------------------------------------------- */
/* Worth splitting a loop of this many simple element operations over threads. */
#define KBL_PARALLEL_GRAIN 32768
int kbl_threads(void);

/* ---- autograd (autograd.c) -------------------------------------------------- */
#define KBL_NODE_SAVED 4
typedef int (*kbl_backward_fn)(kbl_node *node, kbl_tensor *grad, kbl_tensor **grad_inputs);
struct kbl_node {
    const char *name;
    kbl_backward_fn backward;
    int ninputs;
    kbl_tensor **inputs;          /* retained; the op's inputs, for values and shapes */
    kbl_tensor *saved[KBL_NODE_SAVED];   /* retained extras (an output alias, indices) */
    union { /* the op's arguments: a struct of its own, through KBL_ARGS */
        unsigned char args[4 * sizeof(double) + 2 * KBL_MAX_DIMS * sizeof(int64_t)];
        int64_t args_align; /* aligns args for any struct of doubles and int64s */
    };
    int64_t out_shape[KBL_MAX_DIMS];
    int out_ndim;
    int out_dtype;
    kbl_tensor *grad_accum;       /* gradient of the node's output, during backward */
    int32_t refcount;
    int32_t freed;
    int32_t mark;
};
/* Records `out` as made by an op over inputs when grad mode is on and one of
 * them requires grad; returns the node (to fill p, ip, saved) or NULL. */
kbl_node *kbl_record(const char *name, kbl_backward_fn fn, kbl_tensor *out, int n,
                     kbl_tensor **inputs);
void kbl_node_release(kbl_node *n);
/* Saves an alias of t (no grad_fn, so no reference cycle through an output). */
void kbl_node_save(kbl_node *n, int slot, kbl_tensor *t);
static inline bool kbl_needs_grad(const kbl_tensor *t) { return t && t->requires_grad; }
/* A node's arguments as the op's own struct T (KBL_ARGS_FIT(T) at file scope
 * checks that T fits): `unary_args *a = KBL_ARGS(node, unary_args);`. */
#define KBL_ARGS(node, T) ((T *)(void *)(node)->args)
#define KBL_ARGS_FIT(T) _Static_assert(sizeof(T) <= sizeof(((kbl_node *)0)->args), #T " fits a node's args")

/* A backward rule's temporaries, released together: KBL_TMP(&s, expr) keeps
 * expr's result, KBL_OUT(&s, expr) checks a result the rule hands on, so rules
 * nest ops freely: `gin[0] = KBL_OUT(&s, kbl_mul(g, KBL_TMP(&s, kbl_exp(x))))`.
 * Ops given the NULL of a failed one fail too; kbl_temps_release releases
 * every temporary and, if one failed, puts back the first failure's message
 * and returns -1. */
typedef struct kbl_temps {
    int n, failed;
    kbl_tensor *t[16];
    char error[256];
} kbl_temps;
kbl_tensor *kbl_temps_keep(kbl_temps *s, kbl_tensor *t);
kbl_tensor *kbl_temps_check(kbl_temps *s, kbl_tensor *t);
int kbl_temps_release(kbl_temps *s);
#define KBL_TMP(s, expr) kbl_temps_keep((s), (expr))
#define KBL_OUT(s, expr) kbl_temps_check((s), (expr))

/* ---- the profiler (profile.c; its public face is kbl_profile.h) ---------------- */
/* Set while recording; read by the places that record, one test each, so
 * that a library not profiling pays nothing more. */
extern int kbl_profile_on;
static inline bool kbl_profiling(void) { return __atomic_load_n(&kbl_profile_on, __ATOMIC_RELAXED) != 0; }
/* Records an event of the calling thread (name: a string that outlives the
 * library's use of it, a literal or a node's op name). */
void kbl_profile_add(const char *name, int kind, double start, double end);
/* Records one backward node's run, with its output's and first inputs' shapes. */
void kbl_profile_node(const kbl_node *node, double start, double end);

/* ---- convolution on a device's conv kernel (conv_device.c), called by conv.c ---- */
/* stride (h, w), pads (top, bottom, left, right), dilation (h, w), groups */
typedef struct kbl_conv_opts {
    int64_t stride[2], pad[4], dil[2], groups;
} kbl_conv_opts;
/* y [n, o, oh, ow] = conv(x, w) + bias, for an output of at most the conv's size */
kbl_tensor *kbl_conv_device_forward(kbl_tensor *x, kbl_tensor *w, kbl_tensor *bias, const kbl_conv_opts *o,
                                    int64_t oh, int64_t ow);
/* The gradients from gy: dx of shape xs (needs w), dw [o, c/groups, kh, kw] (needs
 * x), and with dw the bias gradient [o] into *db where the kernel fuses it (else
 * *db = NULL: the caller sums gy itself) */
int kbl_conv_device_grads(kbl_tensor *gy, kbl_tensor *x, const int64_t *xs, kbl_tensor *w, int64_t kh, int64_t kw,
                          const kbl_conv_opts *o, kbl_tensor **dx, kbl_tensor **dw, kbl_tensor **db);
/* conv_transpose2d's arithmetic: the input gradient of shape xs from gy and w,
 * plus bias [c] (or NULL) */
kbl_tensor *kbl_conv_device_transpose(kbl_tensor *gy, kbl_tensor *w, kbl_tensor *bias, const int64_t *xs,
                                      const kbl_conv_opts *o);

/* Release helpers: release every non-NULL argument. */
void kbl_release_n(int n, ...);

/* ---- dtype dispatch ---------------------------------------------------------- */
#define KBL_FLOAT_CASES(dtype, MACRO)                    \
    switch (dtype) {                                     \
    case KBL_FLOAT32: MACRO(float); break;               \
    case KBL_FLOAT64: MACRO(double); break;              \
    default: break;                                      \
    }
#define KBL_ALL_CASES(dtype, MACRO)                      \
    switch (dtype) {                                     \
    case KBL_FLOAT32: MACRO(float); break;               \
    case KBL_FLOAT64: MACRO(double); break;              \
    case KBL_INT32: MACRO(int32_t); break;               \
    case KBL_INT64: MACRO(int64_t); break;               \
    case KBL_UINT8: MACRO(uint8_t); break;               \
    default: break;                                      \
    }

/* Load element i of a buffer of any dtype as double (slow paths only). */
double kbl_load_double(const void *base, int dtype, int64_t i);
void kbl_store_double(void *base, int dtype, int64_t i, double v);

#endif
