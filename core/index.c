/* index.c — indexing ops with 0-based int64 indices: index_select, gather,
 * scatter_add, masked_fill, cat, stack, pad, one_hot, flip; each differentiable
 * op's backward is written with the others. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

/* Each op's node arguments. */
typedef struct { int dim; } dim_args;   /* index_select, gather, scatter_add, cat: the dim (wrapped) */
typedef struct { int npairs; int64_t pads[2 * KBL_MAX_DIMS]; } pad_args;   /* as kbl_pad's */
typedef struct { int ndims, dims[KBL_MAX_DIMS]; } flip_args;
KBL_ARGS_FIT(dim_args);
KBL_ARGS_FIT(pad_args);
KBL_ARGS_FIT(flip_args);

/* Checks every index of idx (int64, contiguous) lies in [0, size): the device
 * finds the first bad one and the host reads only it. */
static int check_indices(const char *op, const kbl_tensor *idx, int64_t size, int dim) {
    int64_t n = kbl_numel(idx), bad = -1, val = 0;
    if (n && kbl_backend_of(idx)->index_check(kbl_base(idx), n, size, INT64_MIN, &bad, &val)) return -1;
    if (bad >= 0)
        return kbl_fail("%s: index %lld at position %lld is out of range for dim %d of size %lld "
                        "(indices count from 0 in C, from 1 in Lua)",
                        op, (long long)val, (long long)bad, dim, (long long)size);
    return 0;
}

/* Runs an indexing kernel on the device of a->out. */
static int device_index(kbl_index_args a, const kbl_tensor *on) {
    return kbl_backend_of(on)->index(&a);
}

static kbl_tensor *index_tensor(const char *op, kbl_tensor *index) {
    if (kbl_check_dev(op, index, "index")) return NULL;
    if (index->dtype != KBL_INT64 && index->dtype != KBL_INT32) {
        kbl_fail("%s: index must be int64 (or int32), got %s", op, KBL_DESC(index));
        return NULL;
    }
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *r = index->dtype == KBL_INT64 ? kbl_contiguous(index) : kbl_to_dtype(index, KBL_INT64);
    kbl_set_grad_enabled(prev);
    return r;
}

static kbl_tensor *contiguous_nograd(kbl_tensor *t) {
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *c = kbl_contiguous(t);
    kbl_set_grad_enabled(prev);
    return c;
}

/* ---- index_select, and index_add (its adjoint, used by the backward) --------- */

/* dst[o, idx[j], i] += src[o, j, i]; dst contiguous, zero-initialised by caller */
static int index_add_kernel(kbl_tensor *dst, const kbl_tensor *src, const kbl_tensor *idx, int d) {
    int64_t outer = 1, inner = 1, n = kbl_numel(idx), size = dst->shape[d];
    for (int e = 0; e < d; e++) outer *= dst->shape[e];
    for (int e = d + 1; e < dst->ndim; e++) inner *= dst->shape[e];
    if (kbl_numel(src) == 0) return 0;
    return device_index((kbl_index_args){.kind = KBL_INDEX_ADD, .dtype = dst->dtype, .outer = outer, .n = n,
                                         .size = size, .inner = inner, .idx = kbl_base(idx), .src = kbl_base(src),
                                         .out = kbl_base(dst)}, dst);
}

static int index_select_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *a = n->inputs[0], *idx = n->saved[0];
    kbl_tensor *z = kbl_zeros_on(g->device, a->ndim, a->shape, g->dtype), *gc = kbl_contiguous(g);
    int rc = z && gc ? index_add_kernel(z, gc, idx, KBL_ARGS(n, dim_args)->dim) : -1;
    kbl_tensor_release(gc);
    if (rc) {
        kbl_tensor_release(z);
        return -1;
    }
    gin[0] = z;
    return 0;
}

kbl_tensor *kbl_index_select(kbl_tensor *a, int dim, kbl_tensor *index) {
    const char *op = "index_select";
    if (kbl_check_dev(op, a, "input") || (index && kbl_check_dev(op, index, "index")) ||
        (index && kbl_check_same_device(op, a, index)))
        return NULL;
    int d = kbl_wrap_dim(op, dim, a->ndim);
    if (d < 0) return NULL;
    if (index && index->ndim > 1) {
        kbl_fail("%s: index must be 1-D, got %s", op, KBL_DESC(index));
        return NULL;
    }
    if (a->ndim == 0) {
        kbl_fail("%s: cannot index a 0-dim tensor", op);
        return NULL;
    }
    kbl_tensor *idx = index_tensor(op, index);
    if (!idx) return NULL;
    if (check_indices(op, idx, a->shape[d], dim)) {
        kbl_tensor_release(idx);
        return NULL;
    }
    kbl_tensor *src = contiguous_nograd(a);
    int64_t shape[KBL_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[d] = kbl_numel(idx);
    kbl_tensor *out = src ? kbl_empty_on(a->device, a->ndim, shape, a->dtype) : NULL;
    if (out) {
        int64_t outer = 1, inner = 1, n = shape[d], size = a->shape[d];
        for (int e = 0; e < d; e++) outer *= a->shape[e];
        for (int e = d + 1; e < a->ndim; e++) inner *= a->shape[e];
        if (kbl_numel(out) && device_index((kbl_index_args){.kind = KBL_INDEX_SELECT, .dtype = a->dtype,
                                                            .outer = outer, .n = n, .size = size, .inner = inner,
                                                            .idx = kbl_base(idx), .src = kbl_base(src),
                                                            .out = kbl_base(out)}, out)) {
            kbl_release_n(3, src, idx, out);
            return NULL;
        }
        if (kbl_is_float(a->dtype)) {
            kbl_node *node = kbl_record(op, index_select_backward, out, 1, &a);
            if (node) {
                KBL_ARGS(node, dim_args)->dim = d;
                kbl_node_save(node, 0, idx);
            }
        }
    }
    kbl_release_n(2, src, idx);
    return out;
}

/* ---- gather and scatter_add ------------------------------------------------------- */

/* Shared shape check: index has a's ndim, and fits a outside dim d. */
static int check_gather_shape(const char *op, const kbl_tensor *a, const kbl_tensor *idx, int d) {
    char s1[96], s2[96];
    if (idx->ndim != a->ndim)
        return kbl_fail("%s: index %s must have as many dims as input %s", op, kbl_describe(idx, s1, 96),
                        kbl_describe(a, s2, 96));
    for (int e = 0; e < a->ndim; e++)
        if (e != d && idx->shape[e] > a->shape[e])
            return kbl_fail("%s: index %s is larger than input %s outside the indexed dim", op,
                            kbl_describe(idx, s1, 96), kbl_describe(a, s2, 96));
    return 0;
}

static int gather_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *a = n->inputs[0];
    kbl_tensor *z = kbl_zeros_on(g->device, a->ndim, a->shape, g->dtype);
    gin[0] = z ? kbl_scatter_add(z, KBL_ARGS(n, dim_args)->dim, n->saved[0], g) : NULL;
    kbl_tensor_release(z);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_gather(kbl_tensor *a, int dim, kbl_tensor *index) {
    const char *op = "gather";
    if (kbl_check_dev(op, a, "input")) return NULL;
    int d = kbl_wrap_dim(op, dim, a->ndim);
    kbl_tensor *idx = d >= 0 ? index_tensor(op, index) : NULL;
    if (!idx) return NULL;
    if (kbl_check_same_device(op, a, idx)) {
        kbl_tensor_release(idx);
        return NULL;
    }
    if (check_gather_shape(op, a, idx, d) || check_indices(op, idx, a->ndim ? a->shape[d] : 1, dim)) {
        kbl_tensor_release(idx);
        return NULL;
    }
    kbl_tensor *out = kbl_empty_on(a->device, idx->ndim, idx->shape, a->dtype);
    if (out) {
        kbl_index_args ga = {.kind = KBL_GATHER, .dtype = a->dtype, .ndim = idx->ndim, .dim = d,
                             .idx = kbl_base(idx), .src = kbl_base(a), .out = kbl_base(out)};
        memcpy(ga.idx_shape, idx->shape, sizeof ga.idx_shape);
        memcpy(ga.a_strides, a->strides, sizeof ga.a_strides);
        if (kbl_numel(out) && device_index(ga, out)) kbl_tensor_release(out), out = NULL;
    }
    if (out) {
        if (kbl_is_float(a->dtype)) {
            kbl_node *node = kbl_record(op, gather_backward, out, 1, &a);
            if (node) {
                KBL_ARGS(node, dim_args)->dim = d;
                kbl_node_save(node, 0, idx);
            }
        }
    }
    kbl_tensor_release(idx);
    return out;
}

static int scatter_add_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    if (kbl_needs_grad(n->inputs[0])) gin[0] = kbl_tensor_retain(g);
    if (kbl_needs_grad(n->inputs[1])) {
        kbl_tensor *src = n->inputs[1], *idx = n->saved[0];
        int64_t pads[2 * KBL_MAX_DIMS] = {0}; /* source elements past the index got no use: zeros */
        for (int k = 0; k < src->ndim; k++) {
            int d = src->ndim - 1 - k; /* pairs run from the last dim */
            pads[2 * k + 1] = src->shape[d] - idx->shape[d];
        }
        kbl_temps s = {0};
        kbl_tensor *gs = KBL_TMP(&s, kbl_gather(g, KBL_ARGS(n, dim_args)->dim, idx));
        gin[1] = KBL_OUT(&s, kbl_same_shape(idx, src) ? kbl_tensor_retain(gs) : kbl_pad(gs, src->ndim, pads, 0));
        return kbl_temps_release(&s);
    }
    return 0;
}

kbl_tensor *kbl_scatter_add(kbl_tensor *a, int dim, kbl_tensor *index, kbl_tensor *src) {
    const char *op = "scatter_add";
    if (kbl_check_dev(op, a, "input") || kbl_check_dev(op, src, "source") || kbl_check_same_device(op, a, src))
        return NULL;
    int d = kbl_wrap_dim(op, dim, a->ndim);
    kbl_tensor *idx = d >= 0 ? index_tensor(op, index) : NULL;
    if (!idx) return NULL;
    bool ok = kbl_check_same_device(op, a, idx) == 0 && check_gather_shape(op, a, idx, d) == 0 &&
              check_indices(op, idx, a->ndim ? a->shape[d] : 1, dim) == 0;
    if (ok && (src->ndim != idx->ndim || src->dtype != a->dtype)) {
        kbl_fail("%s: source %s must match the input's dtype and the index's dims", op, KBL_DESC(src));
        ok = false;
    }
    for (int e = 0; ok && e < idx->ndim; e++)
        if (idx->shape[e] > src->shape[e]) {
            kbl_fail("%s: index %s is larger than source %s", op, KBL_DESC(idx), KBL_DESC(src));
            ok = false;
        }
    kbl_tensor *out = ok ? kbl_empty_like(a, -1) : NULL;
    if (out && kbl_copy_(out, a)) ok = false;
    if (out && ok) {
        kbl_index_args sa = {.kind = KBL_SCATTER_ADD, .dtype = a->dtype, .ndim = idx->ndim, .dim = d,
                             .idx = kbl_base(idx), .src = kbl_base(src), .out = kbl_base(out)};
        memcpy(sa.idx_shape, idx->shape, sizeof sa.idx_shape);
        memcpy(sa.a_strides, out->strides, sizeof sa.a_strides);
        memcpy(sa.s_strides, src->strides, sizeof sa.s_strides);
        ok = kbl_numel(idx) == 0 || device_index(sa, out) == 0;
    }
    if (out && ok) {
        kbl_tensor *in[2] = {a, src};
        if (kbl_is_float(a->dtype)) {
            kbl_node *node = kbl_record(op, scatter_add_backward, out, 2, in);
            if (node) {
                KBL_ARGS(node, dim_args)->dim = d;
                kbl_node_save(node, 0, idx);
            }
        }
    } else {
        kbl_tensor_release(out);
        out = NULL;
    }
    kbl_tensor_release(idx);
    return out;
}

kbl_tensor *kbl_masked_fill(kbl_tensor *a, kbl_tensor *mask, double value) {
    if (kbl_check_dev("masked_fill", a, "input") || kbl_check_dev("masked_fill", mask, "mask") ||
        kbl_check_same_device("masked_fill", a, mask))
        return NULL;
    kbl_tensor *v = kbl_full_on(a->device, 0, NULL, value, a->dtype);
    kbl_tensor *r = v ? kbl_where(mask, v, a) : NULL;
    kbl_tensor_release(v);
    return r;
}

/* ---- cat and stack --------------------------------------------------------------------- */

static int cat_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    int d = KBL_ARGS(n, dim_args)->dim;
    int64_t start = 0;
    for (int i = 0; i < n->ninputs; i++) {
        kbl_tensor *in = n->inputs[i];
        int64_t len = in->ndim ? in->shape[d] : 0;
        if (kbl_needs_grad(in)) {
            gin[i] = kbl_narrow(g, d, start, len);
            if (!gin[i]) return -1;
        }
        start += len;
    }
    return 0;
}

kbl_tensor *kbl_cat(int n, kbl_tensor **ts, int dim) {
    const char *op = "cat";
    if (n < 1) {
        kbl_fail("cat: needs at least one tensor");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (kbl_check_dev(op, ts[i], "input") || kbl_check_same_device(op, ts[0], ts[i])) return NULL;
    kbl_tensor *first = ts[0];
    if (first->ndim == 0) {
        kbl_fail("cat: cannot concatenate 0-dim tensors (use stack)");
        return NULL;
    }
    int d = kbl_wrap_dim(op, dim, first->ndim);
    if (d < 0) return NULL;
    int64_t shape[KBL_MAX_DIMS];
    memcpy(shape, first->shape, sizeof shape);
    shape[d] = 0;
    int dtype = first->dtype;
    for (int i = 0; i < n; i++) {
        kbl_tensor *t = ts[i];
        bool ok = t->ndim == first->ndim;
        for (int e = 0; ok && e < t->ndim; e++) ok = e == d || t->shape[e] == first->shape[e];
        if (!ok) {
            char s1[96], s2[96];
            kbl_fail("cat: tensor %d %s does not match tensor 1 %s (shapes may differ only in the joined dim)",
                     i + 1, kbl_describe(t, s1, 96), kbl_describe(first, s2, 96));
            return NULL;
        }
        shape[d] += t->shape[d];
        dtype = kbl_promote(dtype, t->dtype);
    }
    kbl_tensor *out = kbl_empty_on(first->device, first->ndim, shape, dtype);
    if (!out) return NULL;
    int64_t start = 0;
    int prev = kbl_set_grad_enabled(0);
    for (int i = 0; i < n; i++) {
        kbl_tensor *part = kbl_narrow(out, d, start, ts[i]->shape[d]);
        int rc = part ? kbl_copy_(part, ts[i]) : -1;
        kbl_tensor_release(part);
        if (rc) {
            kbl_set_grad_enabled(prev);
            kbl_tensor_release(out);
            return NULL;
        }
        start += ts[i]->shape[d];
    }
    kbl_set_grad_enabled(prev);
    if (kbl_is_float(dtype)) {
        kbl_node *node = kbl_record(op, cat_backward, out, n, ts);
        if (node) KBL_ARGS(node, dim_args)->dim = d;
    }
    return out;
}

kbl_tensor *kbl_stack(int n, kbl_tensor **ts, int dim) {
    if (n < 1) {
        kbl_fail("stack: needs at least one tensor");
        return NULL;
    }
    if (kbl_check_dev("stack", ts[0], "input")) return NULL;
    int d = kbl_wrap_dim("stack", dim, ts[0]->ndim + 1);
    if (d < 0) return NULL;
    kbl_tensor *small[16], **u = n <= 16 ? small : calloc((size_t)n, sizeof *u);
    if (!u) return NULL;
    int made = 0;
    kbl_tensor *r = NULL;
    for (; made < n; made++) {
        if (!kbl_same_shape(ts[made], ts[0])) {
            kbl_fail("stack: tensor %d %s differs in shape from tensor 1 %s", made + 1, KBL_DESC(ts[made]),
                     KBL_DESC(ts[0]));
            break;
        }
        u[made] = kbl_unsqueeze(ts[made], d);
        if (!u[made]) break;
    }
    if (made == n) r = kbl_cat(n, u, d);
    for (int i = 0; i < made; i++) kbl_tensor_release(u[i]);
    if (u != small) free(u);
    return r;
}

/* ---- pad --------------------------------------------------------------------------------- */

/* pad's adjoint is pad by the negated amounts: padding is cut off again, and
 * what a negative pad cropped gets zeros */
static int pad_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    const pad_args *a = KBL_ARGS(n, pad_args);
    int64_t undo[2 * KBL_MAX_DIMS] = {0};
    for (int k = 0; k < 2 * a->npairs; k++) undo[k] = -a->pads[k];
    gin[0] = kbl_pad(g, a->npairs, undo, 0);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_pad(kbl_tensor *a, int npairs, const int64_t *pads, double value) {
    const char *op = "pad";
    if (kbl_check_dev(op, a, "input")) return NULL;
    if (npairs < 0 || npairs > a->ndim) {
        kbl_fail("pad: %d (before, after) pairs given for %s", npairs, KBL_DESC(a));
        return NULL;
    }
    int64_t shape[KBL_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    for (int k = 0; k < npairs; k++) {
        int d = a->ndim - 1 - k;
        shape[d] += pads[2 * k] + pads[2 * k + 1];
        if (shape[d] < 0 || a->shape[d] + (pads[2 * k] < 0 ? pads[2 * k] : 0) + (pads[2 * k + 1] < 0 ? pads[2 * k + 1] : 0) < 0) {
            kbl_fail("pad: padding (%lld, %lld) crops %s below size zero", (long long)pads[2 * k],
                     (long long)pads[2 * k + 1], KBL_DESC(a));
            return NULL;
        }
    }
    kbl_tensor *out = kbl_full_on(a->device, a->ndim, shape, value, a->dtype);
    if (!out) return NULL;
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *src = kbl_alias(a), *dst = kbl_alias(out);
    for (int k = 0; src && dst && k < npairs; k++) {
        int d = a->ndim - 1 - k;
        int64_t b = pads[2 * k], e = pads[2 * k + 1];
        int64_t len = a->shape[d] + (b < 0 ? b : 0) + (e < 0 ? e : 0);
        kbl_tensor *s2 = kbl_narrow(src, d, b < 0 ? -b : 0, len), *d2 = kbl_narrow(dst, d, b > 0 ? b : 0, len);
        kbl_release_n(2, src, dst);
        src = s2, dst = d2;
    }
    int rc = src && dst ? kbl_copy_(dst, src) : -1;
    kbl_release_n(2, src, dst);
    kbl_set_grad_enabled(prev);
    if (rc) {
        kbl_tensor_release(out);
        return NULL;
    }
    if (kbl_is_float(a->dtype)) {
        kbl_node *node = kbl_record(op, pad_backward, out, 1, &a);
        if (node) {
            pad_args *pa = KBL_ARGS(node, pad_args);
            pa->npairs = npairs;
            memcpy(pa->pads, pads, sizeof(int64_t) * 2 * (size_t)npairs);
        }
    }
    return out;
}

/* ---- one_hot and flip ------------------------------------------------------------------- */

kbl_tensor *kbl_one_hot(kbl_tensor *labels, int64_t num_classes) {
    const char *op = "one_hot";
    kbl_tensor *idx = index_tensor(op, labels);
    if (!idx) return NULL;
    if (num_classes <= 0 || check_indices(op, idx, num_classes, -1)) {
        if (num_classes <= 0) kbl_fail("one_hot: num_classes must be positive, got %lld", (long long)num_classes);
        kbl_tensor_release(idx);
        return NULL;
    }
    int64_t shape[KBL_MAX_DIMS];
    if (idx->ndim >= KBL_MAX_DIMS) {
        kbl_tensor_release(idx);
        kbl_fail("one_hot: labels %s already have 8 dims", KBL_DESC(labels));
        return NULL;
    }
    memcpy(shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    shape[idx->ndim] = num_classes;
    kbl_tensor *out = kbl_zeros_on(idx->device, idx->ndim + 1, shape, KBL_INT64);
    if (out && kbl_numel(idx) &&
        device_index((kbl_index_args){.kind = KBL_ONE_HOT, .dtype = KBL_INT64, .n = kbl_numel(idx),
                                      .size = num_classes, .idx = kbl_base(idx), .out = kbl_base(out)}, out))
        kbl_tensor_release(out), out = NULL;
    kbl_tensor_release(idx);
    return out;
}

static int flip_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    const flip_args *a = KBL_ARGS(n, flip_args);
    gin[0] = kbl_flip(g, a->ndims, a->dims);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_flip(kbl_tensor *a, int ndims, const int *dims) {
    if (kbl_check_dev("flip", a, "input")) return NULL;
    if (ndims < 0 || ndims > KBL_MAX_DIMS) {
        kbl_fail("flip: %d dims given (at most 8)", ndims);
        return NULL;
    }
    kbl_tensor *v = kbl_alias(a);
    if (!v) return NULL;
    int wrapped[KBL_MAX_DIMS];
    for (int k = 0; k < ndims; k++) {
        int d = kbl_wrap_dim("flip", dims[k], a->ndim);
        if (d < 0) {
            kbl_tensor_release(v);
            return NULL;
        }
        wrapped[k] = d;
        if (a->shape[d] > 0) v->offset += (a->shape[d] - 1) * v->strides[d];
        v->strides[d] = -v->strides[d]; /* a reversed view, copied below */
    }
    kbl_tensor *out = kbl_empty_like(a, -1);
    if (out && kbl_copy_(out, v)) {
        kbl_tensor_release(out);
        out = NULL;
    }
    kbl_tensor_release(v);
    if (out && kbl_is_float(a->dtype)) {
        kbl_node *node = kbl_record("flip", flip_backward, out, 1, &a);
        if (node) {
            flip_args *fa = KBL_ARGS(node, flip_args);
            fa->ndims = ndims;
            memcpy(fa->dims, wrapped, sizeof(int) * (size_t)ndims);
        }
    }
    return out;
}
