/* reduce.c — reductions over any set of dims: sum (the one kernel), and mean,
 * var, std, logsumexp and norm composed from ops; max/min/argmax/argmin along a
 * dim with 0-based int64 indices. Results do not depend on the thread count. */
#include "internal.h"

#include <math.h>

/* Each reduction's node arguments. */
typedef struct { int64_t reduced; } sum_args;       /* bit d: dim d was reduced */
typedef struct { double count; } std_args;          /* count - correction */
typedef struct { double p; } norm_args;             /* finite, not 1 */
typedef struct { int dim, all; } extreme_args;
KBL_ARGS_FIT(sum_args);
KBL_ARGS_FIT(std_args);
KBL_ARGS_FIT(norm_args);
KBL_ARGS_FIT(extreme_args);

static int sum_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *in = n->inputs[0];
    int64_t keep[KBL_MAX_DIMS], reduced = KBL_ARGS(n, sum_args)->reduced;
    for (int d = 0; d < in->ndim; d++) keep[d] = (reduced >> d) & 1 ? 1 : in->shape[d];
    kbl_tensor *v = kbl_reshape(g, in->ndim, keep);
    gin[0] = v ? kbl_expand(v, in->ndim, in->shape) : NULL;
    kbl_tensor_release(v);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_sum(kbl_tensor *a, int ndims, const int *dims, int keepdim) {
    if (kbl_check_dev("sum", a, "input")) return NULL;
    bool mask[KBL_MAX_DIMS];
    int64_t out_shape[KBL_MAX_DIMS];
    int out_nd = kbl_reduce_shape("sum", a, ndims, dims, keepdim, mask, out_shape);
    if (out_nd < 0) return NULL;
    kbl_tensor *in = kbl_is_float(a->dtype) || a->dtype == KBL_INT64 ? kbl_tensor_retain(a)
                                                                      : kbl_to_dtype(a, KBL_INT64);
    if (!in) return NULL;
    int nd = in->ndim;
    int64_t kept = 1, reduced = 1;
    int nred = 0;
    bool prefix = true;
    for (int d = 0; d < nd; d++) {
        if (mask[d]) {
            reduced *= in->shape[d];
            if (d != nred) prefix = false;
            nred++;
        } else {
            kept *= in->shape[d];
        }
    }
    kbl_tensor *out = kbl_empty_on(in->device, out_nd, out_shape, in->dtype);
    kbl_tensor *src_t = NULL;
    if (!out) goto fail;
    const kbl_backend *dev = kbl_backend_of(in);
    if (prefix && nred > 0 && nred < nd && kbl_is_contiguous(in)) {
        src_t = kbl_tensor_retain(in);
        const void *src = kbl_base(src_t);
        void *dst = kbl_base(out);
        int64_t outer = reduced, cols = kept;
        if (dev->sum_cols(in->dtype, outer, cols, src, dst)) goto fail;
    } else {
        /* kept dims first, reduced dims last, then row sums */
        int perm[KBL_MAX_DIMS], k = 0;
        for (int d = 0; d < nd; d++)
            if (!mask[d]) perm[k++] = d;
        for (int d = 0; d < nd; d++)
            if (mask[d]) perm[k++] = d;
        int prev = kbl_set_grad_enabled(0);
        kbl_tensor *p = kbl_permute(in, nd, perm);
        src_t = p ? kbl_contiguous(p) : NULL;
        kbl_set_grad_enabled(prev);
        kbl_tensor_release(p);
        if (!src_t) goto fail;
        const void *src = kbl_base(src_t);
        void *dst = kbl_base(out);
        int64_t rows = kept, inner = reduced;
        if (dev->sum_rows(in->dtype, rows, inner, src, dst)) goto fail;
    }
    kbl_tensor_release(src_t);
    if (kbl_is_float(in->dtype)) {
        kbl_node *node = kbl_record("sum", sum_backward, out, 1, &in);
        if (node) {
            int64_t bits = 0;
            for (int d = 0; d < nd; d++)
                if (mask[d]) bits |= (int64_t)1 << d;
            KBL_ARGS(node, sum_args)->reduced = bits;
        }
    }
    kbl_tensor_release(in);
    return out;
fail:
    kbl_release_n(3, in, out, src_t);
    return NULL;
}

static int64_t reduced_count(const kbl_tensor *a, int ndims, const int *dims) {
    if (ndims == 0) return kbl_numel(a);
    int64_t n = 1;
    for (int i = 0; i < ndims; i++) {
        int d = dims[i] < 0 ? dims[i] + a->ndim : dims[i];
        if (d >= 0 && d < a->ndim) n *= a->shape[d];
    }
    return n;
}

kbl_tensor *kbl_mean(kbl_tensor *a, int ndims, const int *dims, int keepdim) {
    if (kbl_check_dev("mean", a, "input")) return NULL;
    kbl_tensor *af = kbl_is_float(a->dtype) ? kbl_tensor_retain(a) : kbl_to_dtype(a, KBL_FLOAT32);
    kbl_tensor *s = af ? kbl_sum(af, ndims, dims, keepdim) : NULL;
    kbl_tensor_release(af);
    if (!s) return NULL;
    int64_t n = reduced_count(a, ndims, dims);
    kbl_tensor *r = kbl_unary(KBL_AFFINE, s, n ? 1.0 / (double)n : NAN, 0);
    kbl_tensor_release(s);
    return r;
}

kbl_tensor *kbl_var(kbl_tensor *a, int ndims, const int *dims, double correction, int keepdim) {
    if (kbl_check_dev("var", a, "input") || kbl_check_float("var", a)) return NULL;
    kbl_tensor *mu = kbl_mean(a, ndims, dims, 1);
    kbl_tensor *d = mu ? kbl_sub(a, mu) : NULL;
    kbl_tensor *d2 = d ? kbl_unary(KBL_SQUARE, d, 0, 0) : NULL;
    kbl_tensor *s = d2 ? kbl_sum(d2, ndims, dims, keepdim) : NULL;
    double n = (double)reduced_count(a, ndims, dims) - correction;
    kbl_tensor *r = s ? kbl_unary(KBL_AFFINE, s, n > 0 ? 1.0 / n : NAN, 0) : NULL;
    kbl_release_n(4, mu, d, d2, s);
    return r;
}

/* std and p-norms end in a root, whose derivative is infinite at 0: their
 * backward is written whole, so that a zero result passes a zero gradient (as in
 * PyTorch) rather than 0 * inf = NaN. */

/* num / den, and 0 where den is 0 */
static kbl_tensor *div_or_zero(kbl_tensor *num, kbl_tensor *den) {
    if (!num || !den) return NULL; /* a failed operand: its message stands */
    kbl_temps s = {0};
    kbl_tensor *z = KBL_TMP(&s, kbl_zeros_on(den->device, 0, NULL, den->dtype));
    kbl_tensor *r = KBL_OUT(&s, kbl_where(KBL_TMP(&s, kbl_binary(KBL_EQ, den, z)), z, KBL_TMP(&s, kbl_div(num, den))));
    kbl_temps_release(&s);
    return r;
}

/* saved: std with reduced dims kept, the mean likewise */
static int std_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *a = n->inputs[0], *sk = n->saved[0], *mu = n->saved[1];
    kbl_temps s = {0};
    kbl_tensor *gk = KBL_TMP(&s, kbl_reshape(g, sk->ndim, sk->shape));
    kbl_tensor *den = KBL_TMP(&s, kbl_unary(KBL_AFFINE, sk, KBL_ARGS(n, std_args)->count, 0));
    /* (x - mean) g / ((n - c) std) */
    gin[0] = KBL_OUT(&s, kbl_mul(KBL_TMP(&s, kbl_sub(a, mu)), KBL_TMP(&s, div_or_zero(gk, den))));
    return kbl_temps_release(&s);
}

kbl_tensor *kbl_std(kbl_tensor *a, int ndims, const int *dims, double correction, int keepdim) {
    if (kbl_check_dev("std", a, "input") || kbl_check_float("std", a)) return NULL;
    bool mask[KBL_MAX_DIMS];
    int64_t shape[KBL_MAX_DIMS];
    int nd = kbl_reduce_shape("std", a, ndims, dims, keepdim, mask, shape);
    if (nd < 0) return NULL;
    double n = (double)reduced_count(a, ndims, dims) - correction;
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *mu = kbl_mean(a, ndims, dims, 1);
    kbl_tensor *d = mu ? kbl_sub(a, mu) : NULL;
    kbl_tensor *d2 = d ? kbl_unary(KBL_SQUARE, d, 0, 0) : NULL;
    kbl_tensor *s = d2 ? kbl_sum(d2, ndims, dims, 1) : NULL;
    kbl_tensor *v = s ? kbl_unary(KBL_AFFINE, s, n > 0 ? 1.0 / n : NAN, 0) : NULL;
    kbl_tensor *sk = v ? kbl_unary(KBL_SQRT, v, 0, 0) : NULL;
    kbl_tensor *out = sk ? kbl_reshape(sk, nd, shape) : NULL;
    kbl_set_grad_enabled(prev);
    kbl_node *node = kbl_record("std", std_backward, out, 1, &a);
    if (node) {
        KBL_ARGS(node, std_args)->count = n;
        kbl_node_save(node, 0, sk);
        kbl_node_save(node, 1, mu);
    }
    kbl_release_n(6, mu, d, d2, s, v, sk);
    return out;
}

/* saved: the norm with reduced dims kept */
static int norm_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *a = n->inputs[0], *rk = n->saved[0];
    double p = KBL_ARGS(n, norm_args)->p;
    kbl_temps s = {0};
    /* d|x|_p / dx = sign(x) |x|^(p-1) / |x|_p^(p-1) */
    kbl_tensor *num = p == 2 ? a
                             : KBL_TMP(&s, kbl_mul(KBL_TMP(&s, kbl_unary(KBL_SIGN, a, 0, 0)),
                                                   KBL_TMP(&s, kbl_unary(KBL_POW_SCALAR,
                                                                         KBL_TMP(&s, kbl_unary(KBL_ABS, a, 0, 0)),
                                                                         p - 1, 0))));
    kbl_tensor *den = p == 2 ? rk : KBL_TMP(&s, kbl_unary(KBL_POW_SCALAR, rk, p - 1, 0));
    kbl_tensor *gk = KBL_TMP(&s, kbl_reshape(g, rk->ndim, rk->shape));
    gin[0] = KBL_OUT(&s, kbl_mul(num, KBL_TMP(&s, div_or_zero(gk, den))));
    return kbl_temps_release(&s);
}

/* max over several dims (keepdim), without gradient: the shift of logsumexp */
static kbl_tensor *amax_detached(kbl_tensor *a, int ndims, const int *dims) {
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *m = kbl_alias(a);
    bool mask[KBL_MAX_DIMS];
    int64_t shape[KBL_MAX_DIMS];
    if (kbl_reduce_shape("logsumexp", a, ndims, dims, 1, mask, shape) < 0) {
        kbl_tensor_release(m);
        m = NULL;
    }
    for (int d = 0; m && d < a->ndim; d++) {
        if (!mask[d]) continue;
        kbl_tensor *next = kbl_max(m, d, 0, 1, NULL);
        kbl_tensor_release(m);
        m = next;
    }
    kbl_set_grad_enabled(prev);
    return m;
}

kbl_tensor *kbl_logsumexp(kbl_tensor *a, int ndims, const int *dims, int keepdim) {
    if (kbl_check_dev("logsumexp", a, "input") || kbl_check_float("logsumexp", a)) return NULL;
    kbl_tensor *m = amax_detached(a, ndims, dims);
    if (!m) return NULL;
    /* an all -inf slice would give inf - inf; shift by 0 there instead */
    kbl_tensor *fin = kbl_unary(KBL_ABS, m, 0, 0);
    kbl_tensor *inf = kbl_full_on(a->device, 0, NULL, INFINITY, a->dtype);
    kbl_tensor *isfin = fin && inf ? kbl_binary(KBL_LT, fin, inf) : NULL;
    kbl_tensor *zero = kbl_zeros_on(a->device, 0, NULL, a->dtype);
    kbl_tensor *shift = isfin && zero ? kbl_where(isfin, m, zero) : NULL;
    kbl_tensor *d = shift ? kbl_sub(a, shift) : NULL;
    kbl_tensor *e = d ? kbl_unary(KBL_EXP, d, 0, 0) : NULL;
    kbl_tensor *s = e ? kbl_sum(e, ndims, dims, 1) : NULL;
    kbl_tensor *l = s ? kbl_unary(KBL_LOG, s, 0, 0) : NULL;
    kbl_tensor *r = l ? kbl_add(l, shift) : NULL;
    kbl_release_n(10, m, fin, inf, isfin, zero, shift, d, e, s, l);
    if (!r || keepdim) return r;
    bool mask[KBL_MAX_DIMS];
    int64_t shape[KBL_MAX_DIMS];
    int nd = kbl_reduce_shape("logsumexp", a, ndims, dims, 0, mask, shape);
    kbl_tensor *v = kbl_view(r, nd, shape);
    kbl_tensor_release(r);
    return v;
}

kbl_tensor *kbl_norm(kbl_tensor *a, double p, int ndims, const int *dims, int keepdim) {
    if (kbl_check_dev("norm", a, "input") || kbl_check_float("norm", a)) return NULL;
    if (!(p > 0) && !isinf(p)) {
        kbl_fail("norm: p must be positive or infinite, got %g", p);
        return NULL;
    }
    bool mask[KBL_MAX_DIMS];
    int64_t shape[KBL_MAX_DIMS];
    int nd = kbl_reduce_shape("norm", a, ndims, dims, keepdim, mask, shape);
    if (nd < 0) return NULL;
    kbl_tensor *ab = kbl_unary(KBL_ABS, a, 0, 0);
    if (!ab) return NULL;
    kbl_tensor *r = NULL;
    if (isinf(p)) { /* through max/min, whose gradient goes to the arg position */
        r = kbl_tensor_retain(ab);
        for (int d = 0; r && d < a->ndim; d++) {
            if (!mask[d]) continue;
            kbl_tensor *next = p > 0 ? kbl_max(r, d, 0, 1, NULL) : kbl_min(r, d, 0, 1, NULL);
            kbl_tensor_release(r);
            r = next;
        }
        if (r && !keepdim) {
            kbl_tensor *v = kbl_reshape(r, nd, shape);
            kbl_tensor_release(r);
            r = v;
        }
    } else if (p == 1) {
        r = kbl_sum(ab, ndims, dims, keepdim);
    } else {
        int prev = kbl_set_grad_enabled(0);
        kbl_tensor *pw = p == 2 ? kbl_unary(KBL_SQUARE, a, 0, 0) : kbl_unary(KBL_POW_SCALAR, ab, p, 0);
        kbl_tensor *s = pw ? kbl_sum(pw, ndims, dims, 1) : NULL;
        kbl_tensor *rk = !s ? NULL : p == 2 ? kbl_unary(KBL_SQRT, s, 0, 0)
                                            : kbl_unary(KBL_POW_SCALAR, s, 1.0 / p, 0);
        r = rk ? kbl_reshape(rk, nd, shape) : NULL;
        kbl_set_grad_enabled(prev);
        kbl_node *node = kbl_record("norm", norm_backward, r, 1, &a);
        if (node) {
            KBL_ARGS(node, norm_args)->p = p;
            kbl_node_save(node, 0, rk);
        }
        kbl_release_n(3, pw, s, rk);
    }
    kbl_tensor_release(ab);
    return r;
}

/* ---- max / min with indices ---------------------------------------------------- */

static int extreme_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *in = n->inputs[0], *idx = n->saved[0];
    int dim = KBL_ARGS(n, extreme_args)->dim, all = KBL_ARGS(n, extreme_args)->all;
    kbl_temps s = {0};
    if (all) { /* g lands at the flat position idx */
        int64_t one[1] = {1}, numel[1] = {kbl_numel(in)};
        kbl_tensor *z = KBL_TMP(&s, kbl_zeros_on(g->device, 1, numel, g->dtype));
        kbl_tensor *flat = KBL_TMP(&s, kbl_scatter_add(z, 0, KBL_TMP(&s, kbl_reshape(idx, 1, one)),
                                                       KBL_TMP(&s, kbl_reshape(g, 1, one))));
        gin[0] = KBL_OUT(&s, kbl_reshape(flat, in->ndim, in->shape));
    } else { /* g lands at idx along dim */
        kbl_tensor *z = KBL_TMP(&s, kbl_zeros_on(g->device, in->ndim, in->shape, g->dtype));
        kbl_tensor *gk = g->ndim == in->ndim ? g : KBL_TMP(&s, kbl_unsqueeze(g, dim));
        kbl_tensor *ik = idx->ndim == in->ndim ? idx : KBL_TMP(&s, kbl_unsqueeze(idx, dim));
        gin[0] = KBL_OUT(&s, kbl_scatter_add(z, dim, ik, gk));
    }
    return kbl_temps_release(&s);
}

static kbl_tensor *extreme(const char *op, int is_max, kbl_tensor *a, int dim, int all, int keepdim,
                           kbl_tensor **indices, bool want_values) {
    if (kbl_check_dev(op, a, "input")) return NULL;
    if (kbl_numel(a) == 0) {
        kbl_fail("%s: cannot reduce an empty tensor %s", op, KBL_DESC(a));
        return NULL;
    }
    if (a->ndim == 0) all = 1;
    int d = all ? 0 : kbl_wrap_dim(op, dim, a->ndim);
    if (d < 0) return NULL;
    int64_t shape[KBL_MAX_DIMS];
    int nd = 0;
    if (all) {
        if (keepdim)
            for (int e = 0; e < a->ndim; e++) shape[nd++] = 1;
    } else {
        for (int e = 0; e < a->ndim; e++)
            if (e != d) shape[nd++] = a->shape[e];
            else if (keepdim) shape[nd++] = 1;
    }
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *src = NULL;
    if (all) {
        kbl_tensor *c = kbl_contiguous(a);
        src = c ? kbl_reshape(c, 1, (int64_t[]){kbl_numel(a)}) : NULL;
        kbl_tensor_release(c);
    } else {
        int perm[KBL_MAX_DIMS], k = 0;
        for (int e = 0; e < a->ndim; e++)
            if (e != d) perm[k++] = e;
        perm[k] = d;
        kbl_tensor *p = kbl_permute(a, a->ndim, perm);
        src = p ? kbl_contiguous(p) : NULL;
        kbl_tensor_release(p);
    }
    kbl_set_grad_enabled(prev);
    int64_t inner = all ? kbl_numel(a) : a->shape[d], rows = kbl_numel(a) / inner;
    kbl_tensor *values = want_values ? kbl_empty_on(a->device, nd, shape, a->dtype) : NULL;
    kbl_tensor *idx = kbl_empty_on(a->device, nd, shape, KBL_INT64);
    if (!src || (want_values && !values) || !idx) {
        kbl_release_n(3, src, values, idx);
        return NULL;
    }
    if (kbl_backend_of(a)->extreme_rows(a->dtype, is_max, rows, inner, kbl_base(src),
                                        values ? kbl_base(values) : NULL, kbl_base(idx))) {
        kbl_release_n(3, src, values, idx);
        return NULL;
    }
    kbl_tensor_release(src);
    if (values && kbl_is_float(a->dtype)) {
        kbl_node *node = kbl_record(op, extreme_backward, values, 1, &a);
        if (node) {
            *KBL_ARGS(node, extreme_args) = (extreme_args){d, all};
            kbl_node_save(node, 0, idx);
        }
    }
    if (!want_values) return idx;
    if (indices) *indices = idx;
    else kbl_tensor_release(idx);
    return values;
}

kbl_tensor *kbl_max(kbl_tensor *a, int dim, int dim_all, int keepdim, kbl_tensor **indices) {
    return extreme("max", 1, a, dim, dim_all, keepdim, indices, true);
}
kbl_tensor *kbl_min(kbl_tensor *a, int dim, int dim_all, int keepdim, kbl_tensor **indices) {
    return extreme("min", 0, a, dim, dim_all, keepdim, indices, true);
}
kbl_tensor *kbl_argmax(kbl_tensor *a, int dim, int dim_all, int keepdim) {
    return extreme("argmax", 1, a, dim, dim_all, keepdim, NULL, false);
}
kbl_tensor *kbl_argmin(kbl_tensor *a, int dim, int dim_all, int keepdim) {
    return extreme("argmin", 0, a, dim, dim_all, keepdim, NULL, false);
}
