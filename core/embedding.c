/* embedding.c — embedding lookup: rows of a weight table [num, dim] gathered at
 * int64 indices of any shape, and its backward kernel, which adds the gradient
 * rows into a zero table (the padding row, if any, gets none); both are indexing
 * kernels of the backend (core/cpu/index.c on the CPU). */
#include "internal.h"

typedef struct { int64_t padding_idx, num; } embedding_args;
KBL_ARGS_FIT(embedding_args);

static int embedding_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    const embedding_args *a = KBL_ARGS(n, embedding_args);
    gin[1] = kbl_embedding_backward(g, n->saved[0], a->num, a->padding_idx);
    return gin[1] ? 0 : -1;
}

/* indices as contiguous int64, each checked against [0, num) */
static kbl_tensor *checked_indices(const char *op, kbl_tensor *indices, int64_t num) {
    if (kbl_check_dev(op, indices, "indices")) return NULL;
    if (indices->dtype != KBL_INT64 && indices->dtype != KBL_INT32) {
        kbl_fail("%s: indices must be int64, got %s", op, KBL_DESC(indices));
        return NULL;
    }
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *ic = indices->dtype == KBL_INT64 ? kbl_contiguous(indices) : kbl_to_dtype(indices, KBL_INT64);
    kbl_set_grad_enabled(prev);
    if (!ic) return NULL;
    int64_t bad = -1, val = 0, n = kbl_numel(ic);
    if (n && kbl_backend_of(ic)->index_check(kbl_base(ic), n, num, INT64_MIN, &bad, &val)) {
        kbl_tensor_release(ic);
        return NULL;
    }
    if (bad >= 0) {
        kbl_fail("%s: index %lld at position %lld is out of range for a table of %lld rows "
                 "(indices count from 1 in Lua: 1..%lld)",
                 op, (long long)val + 1, (long long)bad + 1, (long long)num, (long long)num);
        kbl_tensor_release(ic);
        return NULL;
    }
    return ic;
}

kbl_tensor *kbl_embedding(kbl_tensor *indices, kbl_tensor *weight, int64_t padding_idx) {
    const char *op = "embedding";
    if (kbl_check_dev(op, weight, "weight") || kbl_check_dev(op, indices, "indices") ||
        kbl_check_same_device(op, indices, weight))
        return NULL;
    if (weight->ndim != 2 || !kbl_is_float(weight->dtype)) {
        kbl_fail("%s: weight must be a float table [num, dim], got %s", op, KBL_DESC(weight));
        return NULL;
    }
    int64_t num = weight->shape[0], dim = weight->shape[1];
    if (padding_idx < -1 || padding_idx >= num) {
        kbl_fail("%s: padding_idx %lld is out of range for %lld rows", op, (long long)padding_idx, (long long)num);
        return NULL;
    }
    kbl_tensor *ic = checked_indices(op, indices, num);
    if (!ic) return NULL;
    if (ic->ndim >= KBL_MAX_DIMS) {
        kbl_fail("%s: indices %s have too many dims", op, KBL_DESC(ic));
        kbl_tensor_release(ic);
        return NULL;
    }
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *wc = kbl_contiguous(weight);
    kbl_set_grad_enabled(prev);
    int64_t shape[KBL_MAX_DIMS];
    memcpy(shape, ic->shape, sizeof(int64_t) * (size_t)ic->ndim);
    shape[ic->ndim] = dim;
    kbl_tensor *y = wc ? kbl_empty_on(weight->device, ic->ndim + 1, shape, weight->dtype) : NULL;
    if (y && kbl_numel(y)) {
        kbl_index_args a = {.kind = KBL_INDEX_SELECT, .dtype = weight->dtype, .outer = 1, .n = kbl_numel(ic),
                            .size = num, .inner = dim, .idx = kbl_base(ic), .src = kbl_base(wc), .out = kbl_base(y)};
        if (kbl_backend_of(y)->index(&a)) kbl_tensor_release(y), y = NULL;
    }
    if (y) {
        kbl_node *node = kbl_record(op, embedding_backward, y, 2, (kbl_tensor *[]){indices, weight});
        if (node) {
            kbl_node_save(node, 0, ic);
            *KBL_ARGS(node, embedding_args) = (embedding_args){padding_idx, num};
        }
    }
    kbl_release_n(2, ic, wc);
    return y;
}

kbl_tensor *kbl_embedding_backward(kbl_tensor *grad, kbl_tensor *indices, int64_t num, int64_t padding_idx) {
    const char *op = "embedding_backward";
    if (kbl_check_dev(op, grad, "grad") || kbl_check_float(op, grad) || kbl_check_dev(op, indices, "indices") ||
        kbl_check_same_device(op, grad, indices))
        return NULL;
    kbl_tensor *ic = checked_indices(op, indices, num);
    if (!ic) return NULL;
    int64_t n = kbl_numel(ic), dim = grad->ndim ? grad->shape[grad->ndim - 1] : 0;
    if (grad->ndim != ic->ndim + 1 || memcmp(grad->shape, ic->shape, sizeof(int64_t) * (size_t)ic->ndim) != 0) {
        char s1[96], s2[96];
        kbl_fail("%s: grad %s must be the indices' shape %s plus the embedding dim", op, kbl_describe(grad, s1, 96),
                 kbl_describe(ic, s2, 96));
        kbl_tensor_release(ic);
        return NULL;
    }
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *gc = kbl_contiguous(grad);
    kbl_set_grad_enabled(prev);
    kbl_tensor *dw = gc ? kbl_zeros_on(grad->device, 2, (int64_t[]){num, dim}, grad->dtype) : NULL;
    if (dw && n * dim > 0) {
        kbl_index_args a = {.kind = KBL_EMBEDDING_BACKWARD, .dtype = grad->dtype, .outer = 1, .n = n, .size = num,
                            .inner = dim, .skip = padding_idx, .idx = kbl_base(ic), .src = kbl_base(gc),
                            .out = kbl_base(dw)};
        if (kbl_backend_of(dw)->index(&a)) kbl_tensor_release(dw), dw = NULL;
    }
    kbl_release_n(2, ic, gc);
    return dw;
}
