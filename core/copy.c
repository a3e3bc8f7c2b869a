/* copy.c — strided copies with dtype conversion and broadcasting (between
 * devices through core/backend.c), fills, and the differentiable copies built
 * on them: contiguous, clone, to_dtype. */
#include "internal.h"

int kbl_copy_(kbl_tensor *dst, const kbl_tensor *src) {
    if (kbl_check_dev("copy_", dst, "destination") || kbl_check_dev("copy_", src, "source"))
        return -1;
    int64_t bshape[KBL_MAX_DIMS];
    int nd = kbl_broadcast_shape("copy_", dst, src, bshape);
    if (nd < 0) return -1;
    /* the broadcast shape must be dst's own shape */
    for (int d = 0; d < nd; d++) {
        int dd = dst->ndim - nd + d;
        if (nd > dst->ndim || dd < 0 || dst->shape[dd] != bshape[d]) {
            char a[96], b[96];
            return kbl_fail("copy_: source %s does not broadcast to destination %s",
                            kbl_describe(src, b, 96), kbl_describe(dst, a, 96));
        }
    }
    if (dst->device != src->device) return kbl_copy_across(dst, src);
    int64_t strides[3][KBL_MAX_DIMS];
    memcpy(strides[0], dst->strides, sizeof dst->strides);
    kbl_broadcast_strides(src, dst->ndim, dst->shape, strides[1]);
    char *base[2] = {kbl_base(dst), kbl_base(src)};
    size_t es[2] = {kbl_dtype_size(dst->dtype), kbl_dtype_size(src->dtype)};
    kbl_iter it;
    kbl_iter_init(&it, dst->ndim, dst->shape, 2, base, strides, es);
    return kbl_backend_of(dst)->copy(&it, dst->dtype, src->dtype);
}

int kbl_fill_(kbl_tensor *t, double value) {
    if (kbl_check_dev("fill_", t, "tensor")) return -1;
    int64_t strides[3][KBL_MAX_DIMS];
    memcpy(strides[0], t->strides, sizeof t->strides);
    char *base[1] = {kbl_base(t)};
    size_t es[1] = {kbl_dtype_size(t->dtype)};
    kbl_iter it;
    kbl_iter_init(&it, t->ndim, t->shape, 1, base, strides, es);
    return kbl_backend_of(t)->fill(&it, t->dtype, value);
}

/* ---- differentiable copies ---------------------------------------------- */

static int copy_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    gin[0] = n->inputs[0]->dtype == g->dtype ? kbl_tensor_retain(g) : kbl_to_dtype(g, n->inputs[0]->dtype);
    return gin[0] ? 0 : -1;
}

static kbl_tensor *copy_as(const char *op, kbl_tensor *t, int dtype) {
    if (kbl_check_dev(op, t, "input")) return NULL;
    kbl_tensor *r = kbl_empty_like(t, dtype);
    if (!r) return NULL;
    if (kbl_copy_(r, t)) {
        kbl_tensor_release(r);
        return NULL;
    }
    if (kbl_is_float(dtype)) kbl_record(op, copy_backward, r, 1, &t);
    return r;
}

kbl_tensor *kbl_contiguous(kbl_tensor *t) {
    if (kbl_check_dev("contiguous", t, "input")) return NULL;
    if (kbl_is_contiguous(t)) return kbl_tensor_retain(t);
    return copy_as("contiguous", t, t->dtype);
}

kbl_tensor *kbl_clone(kbl_tensor *t) { return copy_as("clone", t, t ? t->dtype : 0); }

kbl_tensor *kbl_to_dtype(kbl_tensor *t, int dtype) {
    if (dtype < 0 || dtype > KBL_UINT8) {
        kbl_fail("to_dtype: unknown dtype %d", dtype);
        return NULL;
    }
    return copy_as("to_dtype", t, dtype);
}

double kbl_item(const kbl_tensor *t, int *ok) {
    *ok = 0;
    if (kbl_check_dev("item", t, "tensor")) return 0;
    if (kbl_numel(t) != 1) {
        kbl_fail("item: tensor %s has %lld elements, not one", KBL_DESC(t), (long long)kbl_numel(t));
        return 0;
    }
    /* one element to the host: waits for the work before it */
    uint64_t v = 0;
    if (kbl_backend_of(t)->memcpy(&v, kbl_base(t), (int64_t)kbl_dtype_size(t->dtype), KBL_COPY_D2H)) return 0;
    *ok = 1;
    return kbl_load_double(&v, t->dtype, 0);
}
