/* norm_cuda.c — batch_norm, layer_norm and group_norm on CUDA: the backend's
 * kernels do the passes over x (statistics, apply, the fused backward), and the
 * per-channel arithmetic between them (running statistics, scale and shift) is
 * written with ops on float64 [C] tensors on the device, as norm.c does it in
 * double on the host, so no step waits for the device. Shapes and arguments are
 * checked by norm.c before these run; gradients are recorded there too. */
#include "internal.h"

/* t as float64 and contiguous, on its device (no graph) */
static kbl_tensor *as_f64(kbl_tensor *t) {
    return t->dtype == KBL_FLOAT64 ? kbl_contiguous(t) : kbl_to_dtype(t, KBL_FLOAT64);
}

/* dst (a running statistic, updated in place) = (1 - m) dst + k stat */
static int blend_(kbl_tensor *dst, kbl_tensor *stat, double m, double k) {
    kbl_tensor *d64 = as_f64(dst);
    kbl_tensor *a = d64 ? kbl_unary(KBL_AFFINE, d64, 1 - m, 0) : NULL;
    kbl_tensor *b = a ? kbl_unary(KBL_AFFINE, stat, k, 0) : NULL;
    kbl_tensor *s = b ? kbl_add(a, b) : NULL;
    int rc = s ? kbl_copy_(dst, s) : -1;
    kbl_release_n(4, d64, a, b, s);
    return rc;
}

kbl_tensor *kbl_batch_norm_cuda(kbl_tensor *x, kbl_tensor *rm, kbl_tensor *rv, kbl_tensor *w, kbl_tensor *b,
                                int training, double momentum, double eps, kbl_tensor **mt, kbl_tensor **it) {
    const kbl_backend *be = kbl_backend_of(x);
    int64_t n = x->shape[0], c = x->shape[1], cnt = c ? kbl_numel(x) / c : 0, sp = n ? cnt / n : 0;
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *xc = kbl_contiguous(x), *mean = NULL, *var = NULL, *y = NULL;
    kbl_tensor *inv = NULL, *scale = NULL, *ms = NULL, *shift = NULL, *w64 = NULL, *b64 = NULL, *t = NULL;
    *mt = *it = NULL;
    if (!xc) goto done;
    if (training) {
        mean = kbl_empty_on(KBL_CUDA, 1, &c, KBL_FLOAT64);
        var = mean ? kbl_empty_on(KBL_CUDA, 1, &c, KBL_FLOAT64) : NULL;
        if (!var) goto done;
        kbl_norm_args a = {.dtype = x->dtype, .kind = KBL_BN_STATS, .n = n, .c = c, .sp = sp, .x = kbl_base(xc),
                           .dmean_out = kbl_base(mean), .dvar = kbl_base(var)};
        if (c && be->norm(&a)) goto done;
        double unbias = (double)cnt / (double)(cnt - 1);
        if (rm && blend_(rm, mean, momentum, momentum)) goto done;
        if (rv && blend_(rv, var, momentum, momentum * unbias)) goto done;
    } else {
        mean = as_f64(rm);
        var = mean ? as_f64(rv) : NULL;
        if (!var) goto done;
    }
    /* inv = 1 / sqrt(var + eps); scale = inv w; shift = b - mean scale */
    t = kbl_unary(KBL_AFFINE, var, 1, eps);
    inv = t ? kbl_unary(KBL_RSQRT, t, 0, 0) : NULL;
    w64 = w ? as_f64(w) : NULL;
    b64 = b ? as_f64(b) : NULL;
    if (!inv || (w && !w64) || (b && !b64)) goto done;
    scale = w64 ? kbl_mul(inv, w64) : kbl_tensor_retain(inv);
    ms = scale ? kbl_mul(mean, scale) : NULL;
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
    kbl_release_n(11, xc, mean, var, t, inv, scale, ms, shift, w64, b64, NULL);
    kbl_set_grad_enabled(prev);
    return y;
}

kbl_tensor *kbl_batch_norm_backward_cuda(kbl_tensor *grad, kbl_tensor *x, kbl_tensor *w, kbl_tensor *mean_t,
                                         kbl_tensor *invstd_t, int training, kbl_tensor **grad_weight,
                                         kbl_tensor **grad_bias) {
    int64_t n = x->shape[0], c = x->shape[1], cnt = c ? kbl_numel(x) / c : 0, sp = n ? cnt / n : 0;
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *gc = kbl_contiguous(grad), *xc = kbl_contiguous(x), *m64 = as_f64(mean_t), *i64 = as_f64(invstd_t);
    kbl_tensor *w64 = w ? as_f64(w) : kbl_full_on(KBL_CUDA, 1, &c, 1.0, KBL_FLOAT64);
    kbl_tensor *sums = kbl_empty_on(KBL_CUDA, 1, (int64_t[]){2 * c}, KBL_FLOAT64);
    kbl_tensor *dx = gc && xc && m64 && i64 && w64 && sums ? kbl_empty_like(xc, -1) : NULL;
    kbl_tensor *part = NULL;
    if (dx) {
        kbl_norm_args a = {.dtype = x->dtype, .kind = KBL_BN_BACKWARD, .training = training, .n = n, .c = c,
                           .sp = sp, .x = kbl_base(xc), .grad = kbl_base(gc), .y = kbl_base(dx),
                           .dmean = kbl_base(m64), .dinvstd = kbl_base(i64), .dweight = kbl_base(w64),
                           .sums = kbl_base(sums)};
        if (c && kbl_backend_of(x)->norm(&a)) kbl_tensor_release(dx), dx = NULL;
    }
    if (dx && grad_bias) {
        part = kbl_narrow(sums, 0, 0, c);
        if (!part || !(*grad_bias = kbl_to_dtype(part, x->dtype))) kbl_tensor_release(dx), dx = NULL;
        kbl_tensor_release(part);
    }
    if (dx && grad_weight) {
        part = kbl_narrow(sums, 0, c, c);
        if (!part || !(*grad_weight = kbl_to_dtype(part, x->dtype))) kbl_tensor_release(dx), dx = NULL;
        kbl_tensor_release(part);
    }
    kbl_release_n(6, gc, xc, m64, i64, w64, sums);
    kbl_set_grad_enabled(prev);
    return dx;
}

int kbl_norm_rows_cuda(kbl_tensor *xc, kbl_tensor *wc, kbl_tensor *bc, kbl_tensor *y, kbl_tensor *mt,
                       kbl_tensor *rt, int64_t rows, int64_t d, int64_t groups, int64_t inner, double eps) {
    kbl_norm_args a = {.dtype = xc->dtype, .kind = KBL_ROWS_FORWARD, .rows = rows, .d = d, .groups = groups,
                       .inner = inner, .eps = eps, .x = kbl_base(xc), .weight = wc ? kbl_base(wc) : NULL,
                       .bias = bc ? kbl_base(bc) : NULL, .y = kbl_base(y), .mean_out = kbl_base(mt),
                       .rstd_out = kbl_base(rt)};
    return rows && d ? kbl_backend_of(xc)->norm(&a) : 0;
}

/* A float64 device vector of nparam sums as a parameter gradient of pshape in dtype. */
static kbl_tensor *param_grad(kbl_tensor *sums, int pnd, const int64_t *pshape, int dtype) {
    kbl_tensor *c = kbl_to_dtype(sums, dtype);
    kbl_tensor *r = c ? kbl_reshape(c, pnd, pshape) : NULL;
    kbl_tensor_release(c);
    return r;
}

kbl_tensor *kbl_norm_rows_backward_cuda(kbl_tensor *gc, kbl_tensor *xc, kbl_tensor *wc, kbl_tensor *mc,
                                        kbl_tensor *rc, int64_t rows, int64_t d, int64_t groups, int64_t inner,
                                        int pnd, const int64_t *pshape, kbl_tensor **grad_weight,
                                        kbl_tensor **grad_bias) {
    int64_t nparam = groups * d / inner;
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *dx = kbl_empty_like(xc, -1);
    kbl_tensor *gw = dx && grad_weight ? kbl_empty_on(KBL_CUDA, 1, &nparam, KBL_FLOAT64) : NULL;
    kbl_tensor *gb = dx && grad_bias ? kbl_empty_on(KBL_CUDA, 1, &nparam, KBL_FLOAT64) : NULL;
    if (dx && (gw || !grad_weight) && (gb || !grad_bias)) {
        kbl_norm_args a = {.dtype = xc->dtype, .kind = KBL_ROWS_BACKWARD, .rows = rows, .d = d, .groups = groups,
                           .inner = inner, .nparam = nparam, .x = kbl_base(xc), .grad = kbl_base(gc),
                           .weight = wc ? kbl_base(wc) : NULL, .mean = kbl_base(mc), .rstd = kbl_base(rc),
                           .y = kbl_base(dx), .gw = gw ? kbl_base(gw) : NULL, .gb = gb ? kbl_base(gb) : NULL};
        if (rows && d && kbl_backend_of(xc)->norm(&a)) kbl_tensor_release(dx), dx = NULL;
    } else {
        kbl_tensor_release(dx);
        dx = NULL;
    }
    if (dx && gw && !(*grad_weight = param_grad(gw, pnd, pshape, xc->dtype))) kbl_tensor_release(dx), dx = NULL;
    if (dx && gb && !(*grad_bias = param_grad(gb, pnd, pshape, xc->dtype))) kbl_tensor_release(dx), dx = NULL;
    kbl_release_n(2, gw, gb);
    kbl_set_grad_enabled(prev);
    return dx;
}
