/* norm.c — normalization layers: batch_norm (batch statistics and running
 * statistics updated in place when training, the running ones otherwise), and
 * layer_norm and group_norm, which normalize rows of x seen as [N, groups, D].
 * Each has one fused backward kernel, registered as an op. One path for every
 * device: the backend's norm kernels make the passes over x (statistics in
 * double, apply, the fused backward: core/cpu/norm.c on the CPU), and the
 * per-channel arithmetic between them (running statistics, scale and shift) is
 * written with ops on float64 [C] tensors on x's device, so no step waits for
 * a device and no value goes through the host. */
#include "internal.h"

static kbl_tensor *contiguous_nograd(kbl_tensor *t) {
    if (!t) return NULL;
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *c = kbl_contiguous(t);
    kbl_set_grad_enabled(prev);
    return c;
}

/* A per-channel parameter: NULL, or 1-D [c] of dtype. */
static int check_param(const char *op, const kbl_tensor *p, const char *what, int64_t c, const kbl_tensor *x) {
    if (!p) return 0;
    if (kbl_check_dev(op, p, what) || kbl_check_same_device(op, x, p)) return -1;
    if (p->ndim != 1 || p->shape[0] != c || p->dtype != x->dtype) {
        char s1[96], s2[96];
        return kbl_fail("%s: %s %s must be [%lld] of the input's dtype (input %s)", op, what,
                        kbl_describe(p, s1, 96), (long long)c, kbl_describe(x, s2, 96));
    }
    return 0;
}

/* t as float64 and contiguous, on its device (no graph: callers turn it off) */
static kbl_tensor *as_f64(kbl_tensor *t) {
    return t->dtype == KBL_FLOAT64 ? kbl_contiguous(t) : kbl_to_dtype(t, KBL_FLOAT64);
}

/* ---- batch_norm -------------------------------------------------------------------- */

/* Elements [start, start + len) of a float64 vector as a tensor of (nd, shape)
 * in dtype: a parameter gradient from the kernel's sums. */
static kbl_tensor *narrow_as(kbl_tensor *t, int64_t start, int64_t len, int nd, const int64_t *shape, int dtype) {
    kbl_tensor *part = kbl_narrow(t, 0, start, len);
    kbl_tensor *c = part ? kbl_to_dtype(part, dtype) : NULL;
    kbl_tensor *r = c ? kbl_reshape(c, nd, shape) : NULL;
    kbl_release_n(2, part, c);
    return r;
}

/* dst (a running statistic, updated in place) = (1 - m) dst + (m stat) k */
static int blend_(kbl_tensor *dst, kbl_tensor *stat, double m, double k) {
    kbl_tensor *d64 = as_f64(dst);
    kbl_tensor *a = d64 ? kbl_unary(KBL_AFFINE, d64, 1 - m, 0) : NULL;
    kbl_tensor *ms = a ? kbl_unary(KBL_AFFINE, stat, m, 0) : NULL;
    kbl_tensor *b = !ms ? NULL : k == 1 ? kbl_tensor_retain(ms) : kbl_unary(KBL_AFFINE, ms, k, 0);
    kbl_tensor *s = b ? kbl_add(a, b) : NULL;
    int rc = s ? kbl_copy_(dst, s) : -1;
    kbl_release_n(5, d64, a, ms, b, s);
    return rc;
}

/* y = batch_norm(x), and the statistics the backward needs (mean, invstd in
 * x's dtype) into *mt, *it; arguments checked by kbl_batch_norm. */
static kbl_tensor *bn_forward(kbl_tensor *x, kbl_tensor *rm, kbl_tensor *rv, kbl_tensor *w, kbl_tensor *b,
                              int training, double momentum, double eps, kbl_tensor **mt, kbl_tensor **it) {
    const kbl_backend *be = kbl_backend_of(x);
    int64_t n = x->shape[0], c = x->shape[1], cnt = c ? kbl_numel(x) / c : 0, sp = n ? cnt / n : 0;
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *xc = kbl_contiguous(x), *mean = NULL, *var = NULL, *y = NULL, *t = NULL, *inv = NULL;
    kbl_tensor *scale = NULL, *mi = NULL, *ms = NULL, *shift = NULL, *w64 = NULL, *b64 = NULL;
    *mt = *it = NULL;
    if (!xc) goto done;
    if (training) {
        mean = kbl_empty_on(x->device, 1, &c, KBL_FLOAT64);
        var = mean ? kbl_empty_on(x->device, 1, &c, KBL_FLOAT64) : NULL;
        if (!var) goto done;
        kbl_norm_args a = {.dtype = x->dtype, .kind = KBL_BN_STATS, .n = n, .c = c, .sp = sp, .x = kbl_base(xc),
                           .dmean_out = kbl_base(mean), .dvar = kbl_base(var)};
        if (c && be->norm(&a)) goto done;
        double unbias = (double)cnt / (double)(cnt - 1);
        if (rm && blend_(rm, mean, momentum, 1)) goto done;
        if (rv && blend_(rv, var, momentum, unbias)) goto done;
    } else {
        mean = as_f64(rm);
        var = mean ? as_f64(rv) : NULL;
        if (!var) goto done;
    }
    /* inv = 1 / sqrt(var + eps); scale = inv w; shift = b - (mean inv) w */
    t = kbl_unary(KBL_AFFINE, var, 1, eps);
    inv = t ? kbl_unary(KBL_RSQRT, t, 0, 0) : NULL;
    w64 = w ? as_f64(w) : NULL;
    b64 = b ? as_f64(b) : NULL;
    if (!inv || (w && !w64) || (b && !b64)) goto done;
    scale = w64 ? kbl_mul(inv, w64) : kbl_tensor_retain(inv);
    mi = scale ? kbl_mul(mean, inv) : NULL;
    ms = !mi ? NULL : w64 ? kbl_mul(mi, w64) : kbl_tensor_retain(mi);
    shift = !ms ? NULL : b64 ? kbl_sub(b64, ms) : kbl_unary(KBL_NEG, ms, 0, 0);
    y = shift ? kbl_empty_like(xc, -1) : NULL;
    if (!y) goto done;
    kbl_norm_args a = {.dtype = x->dtype, .kind = KBL_BN_APPLY, .n = n, .c = c, .sp = sp, .x = kbl_base(xc),
                       .y = kbl_base(y), .dscale = kbl_base(scale), .dshift = kbl_base(shift)};
    if (kbl_numel(y) && be->norm(&a)) {
        kbl_tensor_release(y);
        y = NULL;
        goto done;
    }
    *mt = kbl_to_dtype(mean, x->dtype);
    *it = *mt ? kbl_to_dtype(inv, x->dtype) : NULL;
    if (!*it) {
        kbl_release_n(2, *mt, y);
        *mt = y = NULL;
    }
done:
    kbl_release_n(12, xc, mean, var, t, inv, scale, mi, ms, shift, w64, b64, NULL);
    kbl_set_grad_enabled(prev);
    return y;
}

/* the nodes' arguments */
typedef struct { int training; } batch_norm_args;
typedef struct { int64_t groups, inner; } norm_rows_args;
KBL_ARGS_FIT(batch_norm_args);
KBL_ARGS_FIT(norm_rows_args);

static int bn_backward(kbl_node *nd, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *x = nd->inputs[0], *w = nd->inputs[1], *b = nd->inputs[2];
    kbl_tensor **gw = kbl_needs_grad(w) ? &gin[1] : NULL, **gb = kbl_needs_grad(b) ? &gin[2] : NULL;
    kbl_tensor *gx = kbl_batch_norm_backward(g, x, w, nd->saved[0], nd->saved[1], KBL_ARGS(nd, batch_norm_args)->training, gw, gb);
    if (!gx) return -1;
    if (kbl_needs_grad(x)) gin[0] = gx;
    else kbl_tensor_release(gx);
    return 0;
}

/* Records y's node, saving the statistics mt and it (whose references it takes). */
static kbl_tensor *bn_record(kbl_tensor *x, kbl_tensor *w, kbl_tensor *b, kbl_tensor *y, kbl_tensor *mt,
                             kbl_tensor *it, int training) {
    kbl_tensor *in[3] = {x, w, b};
    kbl_node *node = kbl_record("batch_norm", bn_backward, y, 3, in);
    if (node) {
        kbl_node_save(node, 0, mt);
        kbl_node_save(node, 1, it);
        KBL_ARGS(node, batch_norm_args)->training = training != 0;
    }
    kbl_release_n(2, mt, it);
    return y;
}

kbl_tensor *kbl_batch_norm(kbl_tensor *x, kbl_tensor *rm, kbl_tensor *rv, kbl_tensor *w, kbl_tensor *b,
                           int training, double momentum, double eps) {
    const char *op = "batch_norm";
    if (kbl_check_dev(op, x, "input") || kbl_check_float(op, x)) return NULL;
    if (x->ndim < 2) {
        kbl_fail("%s: input must be [N, C] or [N, C, ...], got %s", op, KBL_DESC(x));
        return NULL;
    }
    int64_t c = x->shape[1], cnt = c ? kbl_numel(x) / c : 0;
    if (check_param(op, rm, "running_mean", c, x) || check_param(op, rv, "running_var", c, x) ||
        check_param(op, w, "weight", c, x) || check_param(op, b, "bias", c, x))
        return NULL;
    if (!training && (!rm || !rv)) {
        kbl_fail("%s: evaluation mode needs running_mean and running_var (input %s)", op, KBL_DESC(x));
        return NULL;
    }
    if (training && cnt < 2) {
        kbl_fail("%s: training needs more than one value per channel, got input %s", op, KBL_DESC(x));
        return NULL;
    }
    if ((rm && rm->requires_grad) || (rv && rv->requires_grad)) {
        kbl_fail("%s: running_mean and running_var are buffers updated in place; they must not require grad", op);
        return NULL;
    }
    kbl_tensor *mc = NULL, *ic = NULL;
    kbl_tensor *y = bn_forward(x, rm, rv, w, b, training, momentum, eps, &mc, &ic);
    return y ? bn_record(x, w, b, y, mc, ic, training) : NULL;
}

kbl_tensor *kbl_batch_norm_backward(kbl_tensor *grad, kbl_tensor *x, kbl_tensor *w, kbl_tensor *mean_t,
                                    kbl_tensor *invstd_t, int training, kbl_tensor **grad_weight,
                                    kbl_tensor **grad_bias) {
    const char *op = "batch_norm_backward";
    if (grad_weight) *grad_weight = NULL;
    if (grad_bias) *grad_bias = NULL;
    if (kbl_check_dev(op, grad, "grad") || kbl_check_dev(op, x, "input") ||
        kbl_check_dev(op, mean_t, "mean") || kbl_check_dev(op, invstd_t, "invstd") || kbl_check_float(op, x) ||
        kbl_check_same_device(op, x, grad))
        return NULL;
    if (x->ndim < 2 || !kbl_same_shape(grad, x) || grad->dtype != x->dtype) {
        char s1[96], s2[96];
        kbl_fail("%s: grad %s must match input %s (at least 2-D)", op, kbl_describe(grad, s1, 96),
                 kbl_describe(x, s2, 96));
        return NULL;
    }
    int64_t n = x->shape[0], c = x->shape[1], cnt = c ? kbl_numel(x) / c : 0, sp = n ? cnt / n : 0;
    if (check_param(op, mean_t, "mean", c, x) || check_param(op, invstd_t, "invstd", c, x) ||
        check_param(op, w, "weight", c, x))
        return NULL;
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *gc = kbl_contiguous(grad), *xc = kbl_contiguous(x), *m64 = as_f64(mean_t), *i64 = as_f64(invstd_t);
    kbl_tensor *w64 = w ? as_f64(w) : kbl_full_on(x->device, 1, &c, 1.0, KBL_FLOAT64);
    kbl_tensor *sums = kbl_empty_on(x->device, 1, (int64_t[]){2 * c}, KBL_FLOAT64);
    kbl_tensor *dx = gc && xc && m64 && i64 && w64 && sums ? kbl_empty_like(xc, -1) : NULL;
    if (dx) { /* sums: sum g per channel, then sum g (x - mean) invstd (the weight gradient) */
        kbl_norm_args a = {.dtype = x->dtype, .kind = KBL_BN_BACKWARD, .training = training, .n = n, .c = c,
                           .sp = sp, .x = kbl_base(xc), .grad = kbl_base(gc), .y = kbl_base(dx),
                           .dmean = kbl_base(m64), .dinvstd = kbl_base(i64), .dweight = kbl_base(w64),
                           .sums = kbl_base(sums)};
        if (c && kbl_backend_of(x)->norm(&a)) kbl_tensor_release(dx), dx = NULL;
    }
    if (dx && grad_bias && !(*grad_bias = narrow_as(sums, 0, c, 1, &c, x->dtype))) kbl_tensor_release(dx), dx = NULL;
    if (dx && grad_weight && !(*grad_weight = narrow_as(sums, c, c, 1, &c, x->dtype)))
        kbl_tensor_release(dx), dx = NULL;
    kbl_release_n(6, gc, xc, m64, i64, w64, sums);
    kbl_set_grad_enabled(prev);
    if (!dx) {
        if (grad_weight) kbl_tensor_release(*grad_weight), *grad_weight = NULL;
        if (grad_bias) kbl_tensor_release(*grad_bias), *grad_bias = NULL;
    }
    return dx;
}

/* ---- layer_norm and group_norm: rows of x [N, G, D] ------------------------------------- */

static int rows_backward(kbl_node *nd, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *x = nd->inputs[0], *w = nd->inputs[1], *b = nd->inputs[2];
    kbl_tensor **gw = kbl_needs_grad(w) ? &gin[1] : NULL, **gb = kbl_needs_grad(b) ? &gin[2] : NULL;
    const norm_rows_args *a = KBL_ARGS(nd, norm_rows_args);
    kbl_tensor *gx = kbl_norm_rows_backward(g, x, w, nd->saved[0], nd->saved[1], a->groups, a->inner, gw, gb);
    if (!gx) return -1;
    if (kbl_needs_grad(x)) gin[0] = gx;
    else kbl_tensor_release(gx);
    if (gin[2] && !kbl_same_shape(gin[2], b)) { /* a bias without a weight: give it its own shape */
        kbl_tensor *r = kbl_reshape(gin[2], b->ndim, b->shape);
        kbl_tensor_release(gin[2]);
        if (!(gin[2] = r)) return -1;
    }
    return 0;
}

/* x [N, ...] normalized per (sample, group) row of d elements; weight/bias of P elements */
static kbl_tensor *rows_forward(const char *op, kbl_tensor *x, int64_t groups, int64_t d, int64_t inner,
                                kbl_tensor *w, kbl_tensor *b, double eps) {
    int64_t rows = d ? kbl_numel(x) / d : 0;
    kbl_tensor *xc = contiguous_nograd(x), *wc = contiguous_nograd(w), *bc = contiguous_nograd(b);
    kbl_tensor *y = xc && (wc || !w) && (bc || !b) ? kbl_empty_like(x, -1) : NULL;
    kbl_tensor *mt = y ? kbl_empty_on(x->device, 1, &rows, x->dtype) : NULL;
    kbl_tensor *rt = mt ? kbl_empty_on(x->device, 1, &rows, x->dtype) : NULL;
    if (rt && rows && d) {
        kbl_norm_args a = {.dtype = x->dtype, .kind = KBL_ROWS_FORWARD, .rows = rows, .d = d, .groups = groups,
                           .inner = inner, .eps = eps, .x = kbl_base(xc), .weight = wc ? kbl_base(wc) : NULL,
                           .bias = bc ? kbl_base(bc) : NULL, .y = kbl_base(y), .mean_out = kbl_base(mt),
                           .rstd_out = kbl_base(rt)};
        if (kbl_backend_of(x)->norm(&a)) kbl_tensor_release(rt), rt = NULL;
    }
    if (rt) {
        kbl_tensor *in[3] = {x, w, b};
        kbl_node *node = kbl_record(op, rows_backward, y, 3, in);
        if (node) {
            kbl_node_save(node, 0, mt);
            kbl_node_save(node, 1, rt);
            *KBL_ARGS(node, norm_rows_args) = (norm_rows_args){groups, inner};
        }
    } else {
        kbl_tensor_release(y);
        y = NULL;
    }
    kbl_release_n(5, xc, wc, bc, mt, rt);
    return y;
}

kbl_tensor *kbl_layer_norm(kbl_tensor *x, int ndims, kbl_tensor *w, kbl_tensor *b, double eps) {
    const char *op = "layer_norm";
    if (kbl_check_dev(op, x, "input") || kbl_check_float(op, x)) return NULL;
    if (ndims < 1 || ndims > x->ndim) {
        kbl_fail("%s: cannot normalize over the last %d dims of input %s", op, ndims, KBL_DESC(x));
        return NULL;
    }
    const int64_t *tail = x->shape + x->ndim - ndims;
    int64_t d = kbl_shape_numel(ndims, tail);
    const kbl_tensor *ps[2] = {w, b};
    for (int k = 0; k < 2; k++) {
        const kbl_tensor *p = ps[k];
        if (!p) continue;
        if (kbl_check_dev(op, p, k ? "bias" : "weight") || kbl_check_same_device(op, x, p)) return NULL;
        if (p->ndim != ndims || memcmp(p->shape, tail, sizeof(int64_t) * (size_t)ndims) != 0 || p->dtype != x->dtype) {
            char s1[96], s2[96];
            kbl_fail("%s: %s %s must have the normalized shape (the last %d dims of input %s) and its dtype", op,
                     k ? "bias" : "weight", kbl_describe(p, s1, 96), ndims, kbl_describe(x, s2, 96));
            return NULL;
        }
    }
    return rows_forward(op, x, 1, d, 1, w, b, eps);
}

kbl_tensor *kbl_group_norm(kbl_tensor *x, int64_t groups, kbl_tensor *w, kbl_tensor *b, double eps) {
    const char *op = "group_norm";
    if (kbl_check_dev(op, x, "input") || kbl_check_float(op, x)) return NULL;
    if (x->ndim < 2) {
        kbl_fail("%s: input must be [N, C, ...], got %s", op, KBL_DESC(x));
        return NULL;
    }
    int64_t c = x->shape[1];
    if (groups < 1 || c % groups) {
        kbl_fail("%s: input %s has %lld channels, not divisible by num_groups = %lld", op, KBL_DESC(x),
                 (long long)c, (long long)groups);
        return NULL;
    }
    if (check_param(op, w, "weight", c, x) || check_param(op, b, "bias", c, x)) return NULL;
    int64_t inner = kbl_shape_numel(x->ndim - 2, x->shape + 2);
    return rows_forward(op, x, groups, c / groups * inner, inner, w, b, eps);
}

kbl_tensor *kbl_norm_rows_backward(kbl_tensor *grad, kbl_tensor *x, kbl_tensor *w, kbl_tensor *mean,
                                   kbl_tensor *rstd, int64_t groups, int64_t inner, kbl_tensor **grad_weight,
                                   kbl_tensor **grad_bias) {
    const char *op = "norm_rows_backward";
    if (grad_weight) *grad_weight = NULL;
    if (grad_bias) *grad_bias = NULL;
    if (kbl_check_dev(op, grad, "grad") || kbl_check_dev(op, x, "input") || kbl_check_dev(op, mean, "mean") ||
        kbl_check_dev(op, rstd, "rstd") || kbl_check_float(op, x) || kbl_check_same_device(op, x, grad) ||
        kbl_check_same_device(op, x, mean) || kbl_check_same_device(op, x, rstd) ||
        (w && (kbl_check_dev(op, w, "weight") || kbl_check_same_device(op, x, w))))
        return NULL;
    /* n samples of per elements: groups rows of d each */
    int64_t n = groups > 0 ? kbl_numel(mean) / groups : 0, per = n ? kbl_numel(x) / n : 0;
    if (!kbl_same_shape(grad, x) || grad->dtype != x->dtype || groups < 1 || inner < 1 || n < 1 ||
        per * n != kbl_numel(x) || per % groups || (per / groups) % inner || kbl_numel(mean) != n * groups ||
        kbl_numel(rstd) != n * groups ||
        mean->dtype != x->dtype || rstd->dtype != x->dtype || (w && (w->dtype != x->dtype ||
                                                                    kbl_numel(w) * inner != per))) {
        char s1[96], s2[96];
        kbl_fail("%s: grad %s, input %s, statistics and weight do not fit %lld groups of blocks of %lld", op,
                 kbl_describe(grad, s1, 96), kbl_describe(x, s2, 96), (long long)groups, (long long)inner);
        return NULL;
    }
    int64_t d = per / groups, rows = n * groups, nparam = per / inner;
    kbl_tensor *gc = contiguous_nograd(grad), *xc = contiguous_nograd(x), *wc = contiguous_nograd(w);
    kbl_tensor *mc = contiguous_nograd(mean), *rc = contiguous_nograd(rstd);
    kbl_tensor *dx = gc && xc && mc && rc && (wc || !w) ? kbl_empty_like(xc, -1) : NULL;
    kbl_tensor *gw = dx && grad_weight ? kbl_empty_on(x->device, 1, &nparam, KBL_FLOAT64) : NULL;
    kbl_tensor *gb = dx && grad_bias ? kbl_empty_on(x->device, 1, &nparam, KBL_FLOAT64) : NULL;
    if (dx && (gw || !grad_weight) && (gb || !grad_bias)) {
        kbl_norm_args a = {.dtype = x->dtype, .kind = KBL_ROWS_BACKWARD, .rows = rows, .d = d, .groups = groups,
                           .inner = inner, .nparam = nparam, .x = kbl_base(xc), .grad = kbl_base(gc),
                           .weight = wc ? kbl_base(wc) : NULL, .mean = kbl_base(mc), .rstd = kbl_base(rc),
                           .y = kbl_base(dx), .gw = gw ? kbl_base(gw) : NULL, .gb = gb ? kbl_base(gb) : NULL};
        if (rows && d && kbl_backend_of(x)->norm(&a)) kbl_tensor_release(dx), dx = NULL;
    } else {
        kbl_tensor_release(dx);
        dx = NULL;
    }
    const int64_t *pshape = w ? w->shape : &nparam;
    int pnd = w ? w->ndim : 1;
    int prev = kbl_set_grad_enabled(0);
    if (dx && gw && !(*grad_weight = narrow_as(gw, 0, nparam, pnd, pshape, x->dtype))) kbl_tensor_release(dx), dx = NULL;
    if (dx && gb && !(*grad_bias = narrow_as(gb, 0, nparam, pnd, pshape, x->dtype))) kbl_tensor_release(dx), dx = NULL;
    kbl_set_grad_enabled(prev);
    kbl_release_n(7, gc, xc, wc, mc, rc, gw, gb);
    if (!dx) {
        if (grad_weight) kbl_tensor_release(*grad_weight), *grad_weight = NULL;
        if (grad_bias) kbl_tensor_release(*grad_bias), *grad_bias = NULL;
    }
    return dx;
}
