/* views.c — tensors that share storage with their input: view, reshape,
 * transpose, permute, narrow, select, expand, squeeze, unsqueeze, alias. */
#include "internal.h"

/* The node arguments of the views whose backward needs more than the input's shape. */
typedef struct { int d0, d1; } transpose_args;
typedef struct { int ndim, dims[KBL_MAX_DIMS]; } permute_args;   /* output dim d is input dim dims[d] */
typedef struct { int dim, select; int64_t start; } slice_args;  /* select: dim was dropped */
KBL_ARGS_FIT(transpose_args);
KBL_ARGS_FIT(permute_args);
KBL_ARGS_FIT(slice_args);

kbl_tensor *kbl_alias(kbl_tensor *t) {
    if (kbl_check_dev("alias", t, "tensor")) return NULL;
    return kbl_tensor_wrap(t->storage, t->dtype, t->ndim, t->shape, t->strides, t->offset);
}

/* backward of every view whose input has the gradient's numel: reshape it back */
static int reshape_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    gin[0] = kbl_reshape(g, n->inputs[0]->ndim, n->inputs[0]->shape);
    return gin[0] ? 0 : -1;
}

static kbl_tensor *make_view(const char *op, kbl_tensor *t, int ndim, const int64_t *shape,
                             const int64_t *strides, int64_t offset, kbl_backward_fn bw) {
    kbl_tensor *r = kbl_tensor_wrap(t->storage, t->dtype, ndim, shape, strides, offset);
    if (r && bw) kbl_record(op, bw, r, 1, &t);
    return r;
}

/* Resolves one -1 in shape against numel; checks the product. */
static int infer_shape(const char *op, const kbl_tensor *t, int ndim, const int64_t *in, int64_t *out) {
    if (ndim < 0 || ndim > KBL_MAX_DIMS) return kbl_fail("%s: %d dims requested (at most 8)", op, ndim);
    int infer = -1;
    int64_t prod = 1, numel = kbl_numel(t);
    for (int d = 0; d < ndim; d++) {
        out[d] = in[d];
        if (in[d] == -1) {
            if (infer >= 0) return kbl_fail("%s: only one dimension can be -1", op);
            infer = d;
        } else if (in[d] < 0) {
            return kbl_fail("%s: invalid size %lld in dim %d", op, (long long)in[d], d + 1);
        } else if (__builtin_mul_overflow(prod, in[d], &prod)) {
            return kbl_fail("%s: the sizes asked for are too large (their product passes 2^63)", op);
        }
    }
    if (infer >= 0) {
        if (prod == 0 || numel % prod != 0)
            return kbl_fail("%s: cannot infer the -1 dim of a view of %s", op, KBL_DESC(t));
        out[infer] = numel / prod;
        prod *= out[infer];
    }
    if (prod != numel) {
        char msg[160] = "[";
        size_t k = 1;
        for (int d = 0; d < ndim; d++) k += (size_t)snprintf(msg + k, sizeof msg - k, d ? ", %lld" : "%lld", (long long)in[d]);
        snprintf(msg + k, sizeof msg - k, "]");
        return kbl_fail("%s: shape %s is invalid for %s (%lld elements)", op, msg, KBL_DESC(t), (long long)numel);
    }
    return 0;
}

/* Strides for viewing t as shape without a copy, if any exist (PyTorch's computeStride). */
static bool view_strides(const kbl_tensor *t, int ndim, const int64_t *shape, int64_t *strides) {
    if (ndim > KBL_MAX_DIMS || t->ndim > KBL_MAX_DIMS) return false;
    if (kbl_numel(t) == 0 || kbl_is_contiguous(t)) {
        kbl_contiguous_strides(ndim, shape, strides);
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_base_stride = t->ndim ? t->strides[t->ndim - 1] : 1;
    int64_t tensor_numel = 1, view_numel = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        if (d == 0 || (t->shape[d - 1] != 1 && t->strides[d - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                strides[view_d] = view_numel * chunk_base_stride;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return false;
            if (d > 0) {
                chunk_base_stride = t->strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

kbl_tensor *kbl_view(kbl_tensor *t, int ndim, const int64_t *shape) {
    if (kbl_check_dev("view", t, "input")) return NULL;
    int64_t sh[KBL_MAX_DIMS] = {0}, st[KBL_MAX_DIMS] = {0};
    if (infer_shape("view", t, ndim, shape, sh)) return NULL;
    if (!view_strides(t, ndim, sh, st)) {
        kbl_fail("view: %s is not laid out compatibly with the requested shape (call contiguous() "
                 "first, or use reshape)", KBL_DESC(t));
        return NULL;
    }
    return make_view("view", t, ndim, sh, st, t->offset, reshape_backward);
}

kbl_tensor *kbl_reshape(kbl_tensor *t, int ndim, const int64_t *shape) {
    if (kbl_check_dev("reshape", t, "input")) return NULL;
    int64_t sh[KBL_MAX_DIMS] = {0}, st[KBL_MAX_DIMS] = {0};
    if (infer_shape("reshape", t, ndim, shape, sh)) return NULL;
    if (view_strides(t, ndim, sh, st)) return make_view("reshape", t, ndim, sh, st, t->offset, reshape_backward);
    kbl_tensor *c = kbl_contiguous(t);
    if (!c) return NULL;
    kbl_tensor *r = kbl_view(c, ndim, sh);
    kbl_tensor_release(c);
    return r;
}

static int transpose_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    const transpose_args *a = KBL_ARGS(n, transpose_args);
    gin[0] = kbl_transpose(g, a->d0, a->d1);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_transpose(kbl_tensor *t, int d0, int d1) {
    if (kbl_check_dev("transpose", t, "input")) return NULL;
    if (t->ndim == 0) return kbl_alias(t);
    int a = kbl_wrap_dim("transpose", d0, t->ndim), b = kbl_wrap_dim("transpose", d1, t->ndim);
    if (a < 0 || b < 0) return NULL;
    int64_t sh[KBL_MAX_DIMS], st[KBL_MAX_DIMS];
    memcpy(sh, t->shape, sizeof sh);
    memcpy(st, t->strides, sizeof st);
    sh[a] = t->shape[b], sh[b] = t->shape[a];
    st[a] = t->strides[b], st[b] = t->strides[a];
    kbl_tensor *r = make_view("transpose", t, t->ndim, sh, st, t->offset, transpose_backward);
    if (r && r->grad_fn) *KBL_ARGS(r->grad_fn, transpose_args) = (transpose_args){a, b};
    return r;
}

static int permute_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    const permute_args *a = KBL_ARGS(n, permute_args);
    int inv[KBL_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++) inv[a->dims[d]] = d;
    gin[0] = kbl_permute(g, a->ndim, inv);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_permute(kbl_tensor *t, int ndim, const int *dims) {
    if (kbl_check_dev("permute", t, "input")) return NULL;
    if (ndim != t->ndim) {
        kbl_fail("permute: %d dims given for %s", ndim, KBL_DESC(t));
        return NULL;
    }
    bool seen[KBL_MAX_DIMS] = {0};
    int64_t sh[KBL_MAX_DIMS], st[KBL_MAX_DIMS];
    int p[KBL_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        p[d] = kbl_wrap_dim("permute", dims[d], ndim);
        if (p[d] < 0) return NULL;
        if (seen[p[d]]) {
            kbl_fail("permute: dimension %d repeated", p[d] + 1);
            return NULL;
        }
        seen[p[d]] = true;
        sh[d] = t->shape[p[d]];
        st[d] = t->strides[p[d]];
    }
    kbl_tensor *r = make_view("permute", t, ndim, sh, st, t->offset, permute_backward);
    if (r && r->grad_fn) {
        permute_args *a = KBL_ARGS(r->grad_fn, permute_args);
        a->ndim = ndim;
        memcpy(a->dims, p, sizeof(int) * (size_t)ndim);
    }
    return r;
}

/* backward of narrow and select: the gradient zero-padded back to the input's
 * size along the dim (select's first given that dim back) */
static int slice_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    const slice_args *a = KBL_ARGS(n, slice_args);
    kbl_tensor *in = n->inputs[0];
    int k = in->ndim - 1 - a->dim; /* pad's pairs run from the last dim */
    int64_t pads[2 * KBL_MAX_DIMS] = {0};
    pads[2 * k] = a->start;
    pads[2 * k + 1] = in->shape[a->dim] - a->start - (a->select ? 1 : g->shape[a->dim]);
    kbl_temps s = {0};
    kbl_tensor *slab = a->select ? KBL_TMP(&s, kbl_unsqueeze(g, a->dim)) : g;
    gin[0] = KBL_OUT(&s, kbl_pad(slab, k + 1, pads, 0));
    return kbl_temps_release(&s);
}

kbl_tensor *kbl_narrow(kbl_tensor *t, int dim, int64_t start, int64_t length) {
    if (kbl_check_dev("narrow", t, "input")) return NULL;
    int d = kbl_wrap_dim("narrow", dim, t->ndim);
    if (d < 0) return NULL;
    if (t->ndim == 0) {
        kbl_fail("narrow: cannot narrow a 0-dim tensor");
        return NULL;
    }
    if (start < 0) start += t->shape[d];
    if (start < 0 || length < 0 || start + length > t->shape[d]) {
        kbl_fail("narrow: range [%lld, %lld) is out of bounds for dim %d of %s", (long long)start,
                 (long long)(start + length), dim, KBL_DESC(t));
        return NULL;
    }
    int64_t sh[KBL_MAX_DIMS];
    memcpy(sh, t->shape, sizeof sh);
    sh[d] = length;
    kbl_tensor *r = make_view("narrow", t, t->ndim, sh, t->strides, t->offset + start * t->strides[d], slice_backward);
    if (r && r->grad_fn) *KBL_ARGS(r->grad_fn, slice_args) = (slice_args){d, 0, start};
    return r;
}

kbl_tensor *kbl_select(kbl_tensor *t, int dim, int64_t index) {
    if (kbl_check_dev("select", t, "input")) return NULL;
    if (t->ndim == 0) {
        kbl_fail("select: cannot index a 0-dim tensor");
        return NULL;
    }
    int d = kbl_wrap_dim("select", dim, t->ndim);
    if (d < 0) return NULL;
    int64_t i = index < 0 ? index + t->shape[d] : index;
    if (i < 0 || i >= t->shape[d]) {
        kbl_fail("select: index %lld is out of range for dim %d of %s", (long long)index, dim, KBL_DESC(t));
        return NULL;
    }
    int64_t sh[KBL_MAX_DIMS], st[KBL_MAX_DIMS];
    int k = 0;
    for (int e = 0; e < t->ndim; e++)
        if (e != d) sh[k] = t->shape[e], st[k++] = t->strides[e];
    kbl_tensor *r = make_view("select", t, t->ndim - 1, sh, st, t->offset + i * t->strides[d], slice_backward);
    if (r && r->grad_fn) *KBL_ARGS(r->grad_fn, slice_args) = (slice_args){d, 1, i};
    return r;
}

/* expand's adjoint is a sum over the broadcast dims, which the engine applies
 * whenever a gradient's shape differs from its input's */
static int expand_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    (void)n;
    gin[0] = kbl_tensor_retain(g);
    return 0;
}

kbl_tensor *kbl_expand(kbl_tensor *t, int ndim, const int64_t *shape) {
    if (kbl_check_dev("expand", t, "input")) return NULL;
    if (ndim < t->ndim || ndim > KBL_MAX_DIMS) {
        kbl_fail("expand: cannot expand %s to %d dims", KBL_DESC(t), ndim);
        return NULL;
    }
    int64_t sh[KBL_MAX_DIMS], st[KBL_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        int s = d - lead;
        int64_t have = s >= 0 ? t->shape[s] : 1;
        int64_t want = shape[d] == -1 ? have : shape[d];
        if (s < 0 && shape[d] == -1) {
            kbl_fail("expand: -1 is not allowed for the new leading dim %d", d + 1);
            return NULL;
        }
        if (have != want && have != 1) {
            kbl_fail("expand: dim %d of %s has size %lld and cannot expand to %lld", s + 1, KBL_DESC(t),
                     (long long)have, (long long)want);
            return NULL;
        }
        sh[d] = want;
        st[d] = (s >= 0 && have == want) ? t->strides[s] : 0;
    }
    return make_view("expand", t, ndim, sh, st, t->offset, expand_backward);
}

kbl_tensor *kbl_squeeze(kbl_tensor *t, int dim, int all) {
    if (kbl_check_dev("squeeze", t, "input")) return NULL;
    int d = all ? -1 : kbl_wrap_dim("squeeze", dim, t->ndim);
    if (!all && d < 0) return NULL;
    int64_t sh[KBL_MAX_DIMS], st[KBL_MAX_DIMS];
    int k = 0;
    for (int e = 0; e < t->ndim; e++) {
        if (t->shape[e] == 1 && (all || e == d)) continue;
        sh[k] = t->shape[e], st[k++] = t->strides[e];
    }
    return make_view("squeeze", t, k, sh, st, t->offset, reshape_backward);
}

kbl_tensor *kbl_unsqueeze(kbl_tensor *t, int dim) {
    if (kbl_check_dev("unsqueeze", t, "input")) return NULL;
    if (t->ndim >= KBL_MAX_DIMS) {
        kbl_fail("unsqueeze: %s already has the maximum of 8 dims", KBL_DESC(t));
        return NULL;
    }
    int d = kbl_wrap_dim("unsqueeze", dim, t->ndim + 1);
    if (d < 0) return NULL;
    int64_t sh[KBL_MAX_DIMS], st[KBL_MAX_DIMS];
    int k = 0;
    for (int e = 0; e <= t->ndim; e++) {
        if (e == d) {
            sh[k] = 1;
            st[k++] = e < t->ndim ? t->shape[e] * t->strides[e] : 1;
        }
        if (e < t->ndim) sh[k] = t->shape[e], st[k++] = t->strides[e];
    }
    return make_view("unsqueeze", t, t->ndim + 1, sh, st, t->offset, reshape_backward);
}
