/* softmax.c — softmax and log_softmax along one dim (a row kernel over the dim
 * moved last, from the backend of the input's device), their backward written
 * with ops. */
#include "internal.h"


/* Returns t with dim moved last, contiguous; perm receives the permutation. */
static kbl_tensor *dim_last(kbl_tensor *t, int d, int *perm) {
    int k = 0;
    for (int e = 0; e < t->ndim; e++)
        if (e != d) perm[k++] = e;
    perm[k] = d;
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *p = kbl_permute(t, t->ndim, perm);
    kbl_tensor *c = p ? kbl_contiguous(p) : NULL;
    kbl_tensor_release(p);
    kbl_set_grad_enabled(prev);
    return c;
}

typedef struct { int dim; bool log_form; } softmax_args;
KBL_ARGS_FIT(softmax_args);

static int softmax_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *y = n->saved[0];
    int dim = KBL_ARGS(n, softmax_args)->dim;
    bool log_form = KBL_ARGS(n, softmax_args)->log_form;
    kbl_temps s = {0};
    if (log_form) /* g - exp(y) * sum(g) */
        gin[0] = KBL_OUT(&s, kbl_sub(g, KBL_TMP(&s, kbl_mul(KBL_TMP(&s, kbl_unary(KBL_EXP, y, 0, 0)),
                                                             KBL_TMP(&s, kbl_sum(g, 1, &dim, 1))))));
    else /* y * (g - sum(g * y)) */
        gin[0] = KBL_OUT(&s, kbl_mul(y, KBL_TMP(&s, kbl_sub(g, KBL_TMP(&s, kbl_sum(KBL_TMP(&s, kbl_mul(g, y)), 1,
                                                                                    &dim, 1))))));
    return kbl_temps_release(&s);
}

static kbl_tensor *softmax_impl(const char *op, kbl_tensor *a, int dim, int log_form) {
    if (kbl_check_dev(op, a, "input") || kbl_check_float(op, a)) return NULL;
    int d = kbl_wrap_dim(op, dim, a->ndim);
    if (d < 0) return NULL;
    if (a->ndim == 0) {
        kbl_tensor *r = kbl_full_on(a->device, 0, NULL, log_form ? 0.0 : 1.0, a->dtype);
        return r;
    }
    int perm[KBL_MAX_DIMS] = {0}, inv[KBL_MAX_DIMS] = {0};
    kbl_tensor *src = dim_last(a, d, perm);
    kbl_tensor *dst = src ? kbl_empty_like(src, -1) : NULL;
    if (!dst) {
        kbl_tensor_release(src);
        return NULL;
    }
    int64_t cols = a->shape[d], rows = cols ? kbl_numel(a) / cols : 0;
    if (cols > 0 && kbl_backend_of(a)->softmax_rows(a->dtype, log_form, rows, cols, kbl_base(src), kbl_base(dst))) {
        kbl_release_n(2, src, dst);
        return NULL;
    }
    kbl_tensor_release(src);
    for (int e = 0; e < a->ndim; e++) inv[perm[e]] = e;
    kbl_tensor *out = kbl_permute(dst, a->ndim, inv); /* a view back to a's dim order */
    kbl_tensor_release(dst);
    if (!out) return NULL;
    kbl_node *node = kbl_record(op, softmax_backward, out, 1, &a);
    if (node) {
        *KBL_ARGS(node, softmax_args) = (softmax_args){d, log_form};
        kbl_node_save(node, 0, out);
    }
    return out;
}

kbl_tensor *kbl_softmax(kbl_tensor *a, int dim) { return softmax_impl("softmax", a, dim, 0); }
kbl_tensor *kbl_log_softmax(kbl_tensor *a, int dim) { return softmax_impl("log_softmax", a, dim, 1); }
