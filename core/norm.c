/* norm.c — normalization layers: batch_norm (batch statistics and running
 * statistics updated in place when training, the running ones otherwise), and
 * layer_norm and group_norm, which normalize rows of x seen as [N, groups, D].
 * Each has one fused backward kernel, registered as an op. Statistics accumulate
 * in double; channels (batch_norm) and rows (the others) run over OpenMP threads. */
#include "internal.h"

#include <math.h>

static kbl_tensor *contiguous_nograd(kbl_tensor *t) {
    if (!t) return NULL;
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *c = kbl_contiguous(t);
    kbl_set_grad_enabled(prev);
    return c;
}

static int nthreads(int64_t work) { return work >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1; }

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

static double load1(const kbl_tensor *t, int64_t i) {
    return kbl_load_double(kbl_base(t), t->dtype, i * t->strides[0]);
}

/* ---- batch_norm -------------------------------------------------------------------- */

/* x [n, c, s]: per channel mean and biased variance (two passes, in double) */
#define BN_STATS(T)                                                                        \
    do {                                                                                   \
        const T *xp = kbl_base(xc);                                                        \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t ch = 0; ch < c; ch++) {                                               \
            double s = 0, q = 0;                                                           \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *p = xp + (i * c + ch) * sp;                                       \
                for (int64_t j = 0; j < sp; j++) s += p[j];                                \
            }                                                                              \
            double m = s / (double)cnt;                                                    \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *p = xp + (i * c + ch) * sp;                                       \
                for (int64_t j = 0; j < sp; j++) q += ((double)p[j] - m) * ((double)p[j] - m); \
            }                                                                              \
            mean[ch] = m;                                                                  \
            var[ch] = q / (double)cnt;                                                     \
        }                                                                                  \
    } while (0)

/* y = x * scale[ch] + shift[ch] */
#define BN_APPLY(T)                                                                        \
    do {                                                                                   \
        const T *xp = kbl_base(xc);                                                        \
        T *yp = kbl_base(y);                                                               \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t r = 0; r < n * c; r++) {                                              \
            T a = (T)scale[r % c], b = (T)shift[r % c];                                    \
            const T *p = xp + r * sp;                                                      \
            T *q = yp + r * sp;                                                            \
            for (int64_t j = 0; j < sp; j++) q[j] = p[j] * a + b;                          \
        }                                                                                  \
    } while (0)

static int bn_backward(kbl_node *nd, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *x = nd->inputs[0], *w = nd->inputs[1], *b = nd->inputs[2];
    kbl_tensor **gw = kbl_needs_grad(w) ? &gin[1] : NULL, **gb = kbl_needs_grad(b) ? &gin[2] : NULL;
    kbl_tensor *gx = kbl_batch_norm_backward(g, x, w, nd->saved[0], nd->saved[1], (int)nd->ip[0], gw, gb);
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
        node->ip[0] = training != 0;
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
    int64_t n = x->shape[0], c = x->shape[1], cnt = c ? kbl_numel(x) / c : 0, sp = n ? cnt / n : 0;
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
    if (kbl_on_cuda(x)) {
        kbl_tensor *mc = NULL, *ic = NULL;
        kbl_tensor *yc = kbl_batch_norm_cuda(x, rm, rv, w, b, training, momentum, eps, &mc, &ic);
        return yc ? bn_record(x, w, b, yc, mc, ic, training) : NULL;
    }
    double *buf = malloc(sizeof(double) * (size_t)(4 * (c > 0 ? c : 1)));
    kbl_tensor *xc = contiguous_nograd(x);
    kbl_tensor *y = xc && buf ? kbl_empty(x->ndim, x->shape, x->dtype) : NULL;
    kbl_tensor *mt = y ? kbl_empty(1, &c, x->dtype) : NULL, *it = mt ? kbl_empty(1, &c, x->dtype) : NULL;
    if (!it) {
        if (!buf) kbl_fail("%s: out of memory", op);
        free(buf);
        kbl_release_n(4, xc, y, mt, it);
        return NULL;
    }
    double *mean = buf, *var = buf + c, *scale = buf + 2 * c, *shift = buf + 3 * c;
    int nt = nthreads(n * c * sp);
    if (training) {
        KBL_FLOAT_CASES(x->dtype, BN_STATS)
        double unbias = (double)cnt / (double)(cnt - 1);
        for (int64_t ch = 0; ch < c; ch++) {
            if (rm) kbl_store_double(kbl_base(rm), rm->dtype, ch * rm->strides[0],
                                     (1 - momentum) * load1(rm, ch) + momentum * mean[ch]);
            if (rv) kbl_store_double(kbl_base(rv), rv->dtype, ch * rv->strides[0],
                                     (1 - momentum) * load1(rv, ch) + momentum * var[ch] * unbias);
        }
    } else {
        for (int64_t ch = 0; ch < c; ch++) mean[ch] = load1(rm, ch), var[ch] = load1(rv, ch);
    }
    for (int64_t ch = 0; ch < c; ch++) {
        double inv = 1.0 / sqrt(var[ch] + eps), wv = w ? load1(w, ch) : 1, bv = b ? load1(b, ch) : 0;
        scale[ch] = inv * wv;
        shift[ch] = bv - mean[ch] * inv * wv;
        kbl_store_double(kbl_base(mt), mt->dtype, ch, mean[ch]);
        kbl_store_double(kbl_base(it), it->dtype, ch, inv);
    }
    KBL_FLOAT_CASES(x->dtype, BN_APPLY)
    free(buf);
    kbl_tensor_release(xc);
    return bn_record(x, w, b, y, mt, it, training);
}

/* per channel: sg = sum g, sgx = sum g (x - mean); then the input gradient */
#define BN_BWD(T)                                                                          \
    do {                                                                                   \
        const T *gp = kbl_base(gc), *xp = kbl_base(xc);                                    \
        T *dp = kbl_base(dx);                                                              \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t ch = 0; ch < c; ch++) {                                               \
            double sg = 0, sgx = 0, m = mean[ch];                                          \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *g = gp + (i * c + ch) * sp, *xv = xp + (i * c + ch) * sp;         \
                for (int64_t j = 0; j < sp; j++) {                                         \
                    sg += g[j];                                                            \
                    sgx += (double)g[j] * ((double)xv[j] - m);                             \
                }                                                                          \
            }                                                                              \
            double inv = invstd[ch], wv = wvals[ch];                                       \
            sums[ch] = sg;                                                                 \
            sums[c + ch] = sgx * inv;                                                      \
            T k = (T)(wv * inv), mg = (T)(training ? sg / (double)cnt : 0);                \
            T kx = (T)(training ? sgx * inv / (double)cnt : 0), mt = (T)m;                 \
            T it = (T)inv;                                                                 \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *g = gp + (i * c + ch) * sp, *xv = xp + (i * c + ch) * sp;         \
                T *d = dp + (i * c + ch) * sp;                                             \
                for (int64_t j = 0; j < sp; j++)                                           \
                    d[j] = k * (g[j] - mg - (xv[j] - mt) * it * kx);                       \
            }                                                                              \
        }                                                                                  \
    } while (0)

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
    if (kbl_on_cuda(x))
        return kbl_batch_norm_backward_cuda(grad, x, w, mean_t, invstd_t, training, grad_weight, grad_bias);
    double *buf = malloc(sizeof(double) * (size_t)(5 * (c > 0 ? c : 1)));
    kbl_tensor *gc = contiguous_nograd(grad), *xc = contiguous_nograd(x);
    kbl_tensor *dx = gc && xc && buf ? kbl_empty(x->ndim, x->shape, x->dtype) : NULL;
    if (!dx) {
        if (!buf) kbl_fail("%s: out of memory", op);
        free(buf);
        kbl_release_n(2, gc, xc);
        return NULL;
    }
    double *mean = buf, *invstd = buf + c, *wvals = buf + 2 * c, *sums = buf + 3 * c;
    for (int64_t ch = 0; ch < c; ch++)
        mean[ch] = load1(mean_t, ch), invstd[ch] = load1(invstd_t, ch), wvals[ch] = w ? load1(w, ch) : 1;
    int nt = nthreads(n * c * sp);
    KBL_FLOAT_CASES(x->dtype, BN_BWD)
    kbl_release_n(2, gc, xc);
    int rc = 0;
    if (grad_weight && !(*grad_weight = kbl_from_doubles(1, &c, sums + c, x->dtype))) rc = -1;
    if (grad_bias && !(*grad_bias = kbl_from_doubles(1, &c, sums, x->dtype))) rc = -1;
    free(buf);
    if (rc) {
        kbl_tensor_release(dx);
        return NULL;
    }
    return dx;
}

/* ---- layer_norm and group_norm: rows of x [N, G, D] ------------------------------------- */

/* Per row r: mean, rstd; y = xhat * w[p] + b[p], p = ((r % G) * D + d) / inner */
#define ROWS_FWD(T)                                                                        \
    do {                                                                                   \
        const T *xp = kbl_base(xc), *wp = wc ? kbl_base(wc) : NULL, *bp = bc ? kbl_base(bc) : NULL; \
        T *yp = kbl_base(y), *mp = kbl_base(mt), *rp = kbl_base(rt);                      \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t r = 0; r < rows; r++) {                                               \
            const T *p = xp + r * d;                                                       \
            T *q = yp + r * d;                                                             \
            double s = 0, v = 0;                                                           \
            for (int64_t j = 0; j < d; j++) s += p[j];                                     \
            double m = s / (double)d;                                                      \
            for (int64_t j = 0; j < d; j++) v += ((double)p[j] - m) * ((double)p[j] - m);  \
            double rs = 1.0 / sqrt(v / (double)d + eps);                                   \
            mp[r] = (T)m;                                                                  \
            rp[r] = (T)rs;                                                                 \
            T mm = (T)m, rr = (T)rs;                                                       \
            int64_t base = (r % groups) * d;                                               \
            for (int64_t j = 0; j < d; j++) {                                              \
                int64_t pi = (base + j) / inner;                                           \
                T h = (p[j] - mm) * rr;                                                    \
                q[j] = (wp ? h * wp[pi] : h) + (bp ? bp[pi] : 0);                          \
            }                                                                              \
        }                                                                                  \
    } while (0)

static int rows_backward(kbl_node *nd, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *x = nd->inputs[0], *w = nd->inputs[1], *b = nd->inputs[2];
    kbl_tensor **gw = kbl_needs_grad(w) ? &gin[1] : NULL, **gb = kbl_needs_grad(b) ? &gin[2] : NULL;
    kbl_tensor *gx = kbl_norm_rows_backward(g, x, w, nd->saved[0], nd->saved[1], nd->ip[0], nd->ip[1], gw, gb);
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
    if (rt && kbl_on_cuda(x) && kbl_norm_rows_cuda(xc, wc, bc, y, mt, rt, rows, d, groups, inner, eps)) {
        kbl_tensor_release(rt);
        rt = NULL;
    }
    if (rt) {
        int nt = nthreads(rows * d);
        if (!kbl_on_cuda(x)) KBL_FLOAT_CASES(x->dtype, ROWS_FWD)
        kbl_tensor *in[3] = {x, w, b};
        kbl_node *node = kbl_record(op, rows_backward, y, 3, in);
        if (node) {
            kbl_node_save(node, 0, mt);
            kbl_node_save(node, 1, rt);
            node->ip[0] = groups;
            node->ip[1] = inner;
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

/* gx = rstd (wg - mean(wg) - xhat mean(wg xhat)) per row, wg = g w[p] */
#define ROWS_BWD(T)                                                                        \
    do {                                                                                   \
        const T *gp = kbl_base(gc), *xp = kbl_base(xc), *wp = wc ? kbl_base(wc) : NULL;    \
        const T *mp = kbl_base(mc), *rp = kbl_base(rc);                                    \
        T *dp = kbl_base(dx);                                                              \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t r = 0; r < rows; r++) {                                               \
            const T *g = gp + r * d, *xv = xp + r * d;                                     \
            T *o = dp + r * d, m = mp[r], rs = rp[r];                                      \
            int64_t base = (r % groups) * d;                                               \
            double a = 0, bsum = 0;                                                        \
            for (int64_t j = 0; j < d; j++) {                                              \
                double wg = (double)g[j] * (wp ? (double)wp[(base + j) / inner] : 1.0);    \
                a += wg;                                                                   \
                bsum += wg * (double)((xv[j] - m) * rs);                                   \
            }                                                                              \
            T ma = (T)(a / (double)d), mb = (T)(bsum / (double)d);                         \
            for (int64_t j = 0; j < d; j++) {                                              \
                T wg = g[j] * (wp ? wp[(base + j) / inner] : 1);                           \
                o[j] = rs * (wg - ma - (xv[j] - m) * rs * mb);                             \
            }                                                                              \
        }                                                                                  \
        if (gwp || gbp) {                                                                  \
            int64_t nparam = groups * d / inner, per = groups * d;                         \
            _Pragma("omp parallel for num_threads(nt) schedule(static)")                   \
            for (int64_t pi = 0; pi < nparam; pi++) {                                      \
                double sw = 0, sb = 0;                                                     \
                int64_t row_in = pi * inner / d;                                           \
                for (int64_t s = 0; s < rows / groups; s++) {                              \
                    int64_t r = s * groups + row_in;                                       \
                    const T *g = gp + s * per + pi * inner, *xv = xp + s * per + pi * inner; \
                    for (int64_t e = 0; e < inner; e++) {                                  \
                        sb += g[e];                                                        \
                        sw += (double)g[e] * (double)((xv[e] - mp[r]) * rp[r]);            \
                    }                                                                      \
                }                                                                          \
                if (gwp) gwp[pi] = sw;                                                     \
                if (gbp) gbp[pi] = sb;                                                     \
            }                                                                              \
        }                                                                                  \
    } while (0)

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
    if (kbl_on_cuda(x)) {
        kbl_tensor *dxc = gc && xc && mc && rc && (wc || !w)
                              ? kbl_norm_rows_backward_cuda(gc, xc, wc, mc, rc, rows, d, groups, inner,
                                                            w ? w->ndim : 1, w ? w->shape : &nparam, grad_weight,
                                                            grad_bias)
                              : NULL;
        kbl_release_n(5, gc, xc, wc, mc, rc);
        if (!dxc) {
            if (grad_weight) kbl_tensor_release(*grad_weight), *grad_weight = NULL;
            if (grad_bias) kbl_tensor_release(*grad_bias), *grad_bias = NULL;
        }
        return dxc;
    }
    kbl_tensor *dx = gc && xc && mc && rc && (wc || !w) ? kbl_empty(x->ndim, x->shape, x->dtype) : NULL;
    double *gwp = dx && grad_weight ? calloc((size_t)nparam + 1, sizeof(double)) : NULL;
    double *gbp = dx && grad_bias ? calloc((size_t)nparam + 1, sizeof(double)) : NULL;
    int ok = dx && (gwp || !grad_weight) && (gbp || !grad_bias);
    if (ok) {
        int nt = nthreads(rows * d);
        KBL_FLOAT_CASES(x->dtype, ROWS_BWD)
        const int64_t *pshape = w ? w->shape : &nparam;
        int pnd = w ? w->ndim : 1;
        if (gwp && !(*grad_weight = kbl_from_doubles(pnd, pshape, gwp, x->dtype))) ok = 0;
        if (gbp && !(*grad_bias = kbl_from_doubles(pnd, pshape, gbp, x->dtype))) ok = 0;
    } else if (dx) {
        kbl_fail("%s: out of memory", op);
    }
    free(gwp);
    free(gbp);
    kbl_release_n(5, gc, xc, wc, mc, rc);
    if (!ok) {
        if (grad_weight) kbl_tensor_release(*grad_weight), *grad_weight = NULL;
        if (grad_bias) kbl_tensor_release(*grad_bias), *grad_bias = NULL;
        kbl_tensor_release(dx);
        return NULL;
    }
    return dx;
}
