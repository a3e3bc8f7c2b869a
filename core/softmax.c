/* softmax.c — softmax and log_softmax along one dim (a row kernel over the dim
 * moved last), their backward written with ops, and the fused, numerically stable
 * cross entropy on integer labels with its own backward kernel. */
#include "internal.h"

#include <math.h>
#include <omp.h>

/* rows x cols contiguous, out = softmax or log_softmax of each row */
#define SOFTMAX_ROWS(T)                                                              \
    do {                                                                             \
        const T *in = (const T *)kbl_base(src);                                      \
        T *o = (T *)kbl_base(dst);                                                   \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                 \
        for (int64_t r = 0; r < rows; r++) {                                         \
            const T *x = in + r * cols;                                              \
            T *y = o + r * cols;                                                     \
            T m = x[0];                                                              \
            for (int64_t c = 1; c < cols; c++) m = x[c] > m ? x[c] : m;             \
            if (m == -(T)INFINITY) m = 0;                                            \
            double s = 0;                                                            \
            for (int64_t c = 0; c < cols; c++) {                                     \
                T e = (T)exp((double)(x[c] - m));                                    \
                if (!log_form) y[c] = e;                                             \
                s += e;                                                              \
            }                                                                        \
            if (log_form) { /* (x - m) - log s: exact where x is the max */          \
                T l = (T)log(s);                                                     \
                for (int64_t c = 0; c < cols; c++) y[c] = (x[c] - m) - l;            \
            } else {                                                                 \
                T inv = (T)(1.0 / s);                                                \
                for (int64_t c = 0; c < cols; c++) y[c] *= inv;                      \
            }                                                                        \
        }                                                                            \
    } while (0)

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

static int softmax_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *y = n->saved[0];
    int dim = (int)n->ip[0];
    bool log_form = n->ip[1];
    kbl_tensor *r = NULL;
    if (log_form) { /* g - exp(y) * sum(g) */
        kbl_tensor *s = kbl_sum(g, 1, &dim, 1), *e = kbl_unary(KBL_EXP, y, 0, 0);
        kbl_tensor *p = s && e ? kbl_mul(e, s) : NULL;
        r = p ? kbl_sub(g, p) : NULL;
        kbl_release_n(3, s, e, p);
    } else { /* y * (g - sum(g * y)) */
        kbl_tensor *gy = kbl_mul(g, y), *s = gy ? kbl_sum(gy, 1, &dim, 1) : NULL;
        kbl_tensor *d = s ? kbl_sub(g, s) : NULL;
        r = d ? kbl_mul(y, d) : NULL;
        kbl_release_n(3, gy, s, d);
    }
    gin[0] = r;
    return r ? 0 : -1;
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
    int nt = rows * cols >= KBL_PARALLEL_GRAIN && rows > 1 ? kbl_threads() : 1;
    if (cols > 0 && kbl_on_cuda(a)) {
        if (kbl_backend_of(a)->softmax_rows(a->dtype, log_form, rows, cols, kbl_base(src), kbl_base(dst))) {
            kbl_release_n(2, src, dst);
            return NULL;
        }
    } else if (cols > 0) {
        KBL_FLOAT_CASES(a->dtype, SOFTMAX_ROWS)
    }
    kbl_tensor_release(src);
    for (int e = 0; e < a->ndim; e++) inv[perm[e]] = e;
    kbl_tensor *out = kbl_permute(dst, a->ndim, inv); /* a view back to a's dim order */
    kbl_tensor_release(dst);
    if (!out) return NULL;
    kbl_node *node = kbl_record(op, softmax_backward, out, 1, &a);
    if (node) {
        node->ip[0] = d;
        node->ip[1] = log_form;
        kbl_node_save(node, 0, out);
    }
    return out;
}

kbl_tensor *kbl_softmax(kbl_tensor *a, int dim) { return softmax_impl("softmax", a, dim, 0); }
kbl_tensor *kbl_log_softmax(kbl_tensor *a, int dim) { return softmax_impl("log_softmax", a, dim, 1); }
