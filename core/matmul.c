/* matmul.c — matrix products: matmul (1-D, 2-D and batched with broadcast batch
 * dims) and linear (x·Wᵀ + b, fused bias), on the device's GEMM (oneDNN on the
 * CPU, core/cpu/dnnl_gemm.c; cuBLAS on CUDA). Transposed operands are passed to
 * GEMM as transposes, never copied. */
#include "internal.h"

/* How a [rows, cols] matrix view is handed to row-major GEMM, or false if its
 * strides need a copy first. */
static bool gemm_layout(const kbl_tensor *t, int d0, int d1, bool *trans, int64_t *ld) {
    int64_t rows = t->shape[d0], cols = t->shape[d1], s0 = t->strides[d0], s1 = t->strides[d1];
    int64_t minr = rows > 1 ? rows : 1, minc = cols > 1 ? cols : 1;
    if ((cols == 1 || s1 == 1) && (rows == 1 || s0 >= minc)) {
        *trans = false;
        *ld = rows == 1 ? minc : s0;
        return true;
    }
    if ((rows == 1 || s0 == 1) && (cols == 1 || s1 >= minr)) {
        *trans = true;
        *ld = cols == 1 ? minr : s1;
        return true;
    }
    return false;
}

/* c[m,n] = a[m,k] · b[k,n] + beta * c, for one matrix of each (offsets in elements) */
static int gemm(const kbl_tensor *a, int64_t aoff, const kbl_tensor *b, int64_t boff, kbl_tensor *c,
                int64_t coff, int64_t m, int64_t n, int64_t k, double beta) {
    bool ta = false, tb = false;
    int64_t lda = 1, ldb = 1;
    int ad = a->ndim, bd = b->ndim;
    gemm_layout(a, ad - 2, ad - 1, &ta, &lda);
    gemm_layout(b, bd - 2, bd - 1, &tb, &ldb);
    int64_t ldc = n > 0 ? n : 1;
    size_t es = kbl_dtype_size(c->dtype);
    return kbl_backend_of(c)->gemm(c->dtype, ta, tb, m, n, k, (const char *)kbl_base(a) + aoff * (int64_t)es, lda,
                                   (const char *)kbl_base(b) + boff * (int64_t)es, ldb, beta,
                                   (char *)kbl_base(c) + coff * (int64_t)es, ldc);
}

/* a copy of t (or t retained) whose last two dims GEMM can read */
static kbl_tensor *gemm_ready(kbl_tensor *t) {
    bool tr;
    int64_t ld;
    if (gemm_layout(t, t->ndim - 2, t->ndim - 1, &tr, &ld)) return kbl_tensor_retain(t);
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *c = kbl_empty_like(t, -1);
    if (c && kbl_copy_(c, t)) {
        kbl_tensor_release(c);
        c = NULL;
    }
    kbl_set_grad_enabled(prev);
    return c;
}

static int matmul_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *a = n->inputs[0], *b = n->inputs[1];
    if (kbl_needs_grad(a)) {
        kbl_tensor *bt = kbl_transpose(b, -1, -2);
        gin[0] = bt ? kbl_matmul(g, bt) : NULL;
        kbl_tensor_release(bt);
        if (!gin[0]) return -1;
    }
    if (kbl_needs_grad(b)) {
        kbl_tensor *at = kbl_transpose(a, -1, -2);
        gin[1] = at ? kbl_matmul(at, g) : NULL;
        kbl_tensor_release(at);
        if (!gin[1]) return -1;
    }
    return 0;
}

/* both inputs have at least 2 dims and the same float dtype */
static kbl_tensor *matmul_nd(kbl_tensor *a, kbl_tensor *b) {
    int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
    int64_t k2 = b->shape[b->ndim - 2], n = b->shape[b->ndim - 1];
    if (k != k2) {
        char x[96], y[96];
        kbl_fail("matmul: inner dimensions differ: %s times %s (%lld vs %lld)", kbl_describe(a, x, 96),
                 kbl_describe(b, y, 96), (long long)k, (long long)k2);
        return NULL;
    }
    /* batch dims broadcast */
    kbl_tensor ba = {.ndim = a->ndim - 2}, bb = {.ndim = b->ndim - 2};
    memcpy(ba.shape, a->shape, sizeof(int64_t) * (size_t)ba.ndim);
    memcpy(bb.shape, b->shape, sizeof(int64_t) * (size_t)bb.ndim);
    ba.dtype = a->dtype, bb.dtype = b->dtype;
    int64_t batch_shape[KBL_MAX_DIMS], out_shape[KBL_MAX_DIMS];
    int nb = kbl_broadcast_shape("matmul", &ba, &bb, batch_shape);
    if (nb < 0 || nb + 2 > KBL_MAX_DIMS) {
        if (nb >= 0) kbl_fail("matmul: result would have more than 8 dims");
        return NULL;
    }
    memcpy(out_shape, batch_shape, sizeof(int64_t) * (size_t)nb);
    out_shape[nb] = m, out_shape[nb + 1] = n;
    kbl_tensor *out = kbl_empty_on(a->device, nb + 2, out_shape, a->dtype);
    kbl_tensor *ca = gemm_ready(a), *cb = gemm_ready(b);
    if (!out || !ca || !cb) goto fail;
    int64_t nbatch = kbl_shape_numel(nb, batch_shape);
    if (k == 0 || m == 0 || n == 0) {
        if (kbl_fill_(out, 0)) goto fail;
    } else if (nbatch == 1) {
        if (gemm(ca, 0, cb, 0, out, 0, m, n, k, 0)) goto fail;
    } else if (cb->ndim == 2 && kbl_is_contiguous(ca) && a->ndim == nb + 2) {
        /* [..., m, k] · [k, n]: one GEMM over the flattened rows */
        kbl_tensor *a2 = kbl_alias(ca);
        if (!a2) goto fail;
        a2->ndim = 2, a2->shape[0] = nbatch * m, a2->shape[1] = k, a2->strides[0] = k, a2->strides[1] = 1;
        int rc = gemm(a2, 0, cb, 0, out, 0, nbatch * m, n, k, 0);
        kbl_tensor_release(a2);
        if (rc) goto fail;
    } else {
        int64_t sa[KBL_MAX_DIMS], sb[KBL_MAX_DIMS];
        kbl_tensor bshape = {.ndim = nb};
        memcpy(bshape.shape, batch_shape, sizeof batch_shape);
        kbl_tensor va = *ca, vb = *cb;
        va.ndim -= 2, vb.ndim -= 2;
        kbl_broadcast_strides(&va, nb, batch_shape, sa);
        kbl_broadcast_strides(&vb, nb, batch_shape, sb);
        for (int64_t i = 0; i < nbatch; i++) {
            int64_t rem = i, oa = 0, ob = 0;
            for (int d = nb - 1; d >= 0; d--) {
                int64_t j = rem % batch_shape[d];
                rem /= batch_shape[d];
                oa += j * sa[d], ob += j * sb[d];
            }
            if (gemm(ca, oa, cb, ob, out, i * m * n, m, n, k, 0)) goto fail;
        }
    }
    kbl_tensor *in[2] = {a, b};
    kbl_record("matmul", matmul_backward, out, 2, in);
    kbl_release_n(2, ca, cb);
    return out;
fail:
    kbl_release_n(3, out, ca, cb);
    return NULL;
}

kbl_tensor *kbl_matmul(kbl_tensor *a, kbl_tensor *b) {
    if (kbl_check_dev("matmul", a, "first input") || kbl_check_dev("matmul", b, "second input") ||
        kbl_check_same_device("matmul", a, b))
        return NULL;
    if (a->ndim == 0 || b->ndim == 0) {
        kbl_fail("matmul: both inputs need at least one dim, got %s and %s", KBL_DESC(a), KBL_DESC(b));
        return NULL;
    }
    if (!kbl_is_float(a->dtype) || a->dtype != b->dtype) {
        char x[96], y[96];
        kbl_fail("matmul: inputs must both be float32 or both float64, got %s and %s",
                 kbl_describe(a, x, 96), kbl_describe(b, y, 96));
        return NULL;
    }
    int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim == 1 ? 0 : b->ndim - 2];
    if (ka != kb) { /* checked here too, so that the message names the shapes as given */
        char x[96], y[96];
        kbl_fail("matmul: inner dimensions differ: %s times %s (%lld vs %lld)", kbl_describe(a, x, 96),
                 kbl_describe(b, y, 96), (long long)ka, (long long)kb);
        return NULL;
    }
    /* 1-D operands become matrices through recorded views, so gradients follow */
    kbl_tensor *a2 = a->ndim == 1 ? kbl_unsqueeze(a, 0) : kbl_tensor_retain(a);
    kbl_tensor *b2 = b->ndim == 1 ? kbl_unsqueeze(b, 1) : kbl_tensor_retain(b);
    kbl_tensor *r = a2 && b2 ? matmul_nd(a2, b2) : NULL;
    kbl_release_n(2, a2, b2);
    if (r && b->ndim == 1) {
        kbl_tensor *s = kbl_squeeze(r, -1, 0);
        kbl_tensor_release(r);
        r = s;
    }
    if (r && a->ndim == 1) {
        kbl_tensor *s = kbl_squeeze(r, b->ndim == 1 ? -1 : -2, 0);
        kbl_tensor_release(r);
        r = s;
    }
    return r;
}

/* ---- linear -------------------------------------------------------------------- */

static int linear_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *x = n->inputs[0], *w = n->inputs[1], *b = n->ninputs > 2 ? n->inputs[2] : NULL;
    int64_t in_f = w->shape[1], out_f = w->shape[0], rows = kbl_numel(g) / (out_f ? out_f : 1);
    kbl_tensor *g2 = kbl_reshape(g, 2, (int64_t[]){rows, out_f});
    if (!g2) return -1;
    int rc = 0;
    if (kbl_needs_grad(x)) { /* gx = g · W */
        kbl_tensor *gx = kbl_matmul(g2, w);
        gin[0] = gx ? kbl_reshape(gx, x->ndim, x->shape) : NULL;
        kbl_tensor_release(gx);
        if (!gin[0]) rc = -1;
    }
    if (kbl_needs_grad(w)) { /* gW = gᵀ · x */
        kbl_tensor *x2 = kbl_reshape(x, 2, (int64_t[]){rows, in_f});
        kbl_tensor *gt = kbl_transpose(g2, 0, 1);
        gin[1] = x2 && gt ? kbl_matmul(gt, x2) : NULL;
        kbl_release_n(2, x2, gt);
        if (!gin[1]) rc = -1;
    }
    if (b && kbl_needs_grad(b)) {
        gin[2] = kbl_sum(g2, 1, (int[]){0}, 0);
        if (!gin[2]) rc = -1;
    }
    kbl_tensor_release(g2);
    return rc;
}

kbl_tensor *kbl_linear(kbl_tensor *x, kbl_tensor *w, kbl_tensor *b) {
    if (kbl_check_dev("linear", x, "input") || kbl_check_dev("linear", w, "weight") ||
        (b && kbl_check_dev("linear", b, "bias")) || kbl_check_same_device("linear", x, w) ||
        (b && kbl_check_same_device("linear", x, b)))
        return NULL;
    char s1[96], s2[96];
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1]) {
        kbl_fail("linear: input %s does not match weight %s (weight is [out, in]; the input's last dim must be in)",
                 kbl_describe(x, s1, 96), kbl_describe(w, s2, 96));
        return NULL;
    }
    if (!kbl_is_float(x->dtype) || x->dtype != w->dtype || (b && b->dtype != x->dtype)) {
        kbl_fail("linear: input %s and weight %s must share one float dtype", kbl_describe(x, s1, 96),
                 kbl_describe(w, s2, 96));
        return NULL;
    }
    int64_t out_f = w->shape[0], in_f = w->shape[1];
    if (b && (b->ndim != 1 || b->shape[0] != out_f)) {
        kbl_fail("linear: bias %s does not match weight %s (bias is [out])", kbl_describe(b, s1, 96),
                 kbl_describe(w, s2, 96));
        return NULL;
    }
    int64_t rows = kbl_numel(x) / (in_f ? in_f : 1);
    int64_t out_shape[KBL_MAX_DIMS];
    memcpy(out_shape, x->shape, sizeof out_shape);
    out_shape[x->ndim - 1] = out_f;
    kbl_tensor *out = kbl_empty_on(x->device, x->ndim, out_shape, x->dtype);
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *xc = kbl_contiguous(x), *wc = gemm_ready(w);
    kbl_set_grad_enabled(prev);
    if (!out || !xc || !wc) {
        kbl_release_n(3, out, xc, wc);
        return NULL;
    }
    double beta = 0;
    int rc = 0;
    if (b) { /* each row starts as the bias, then GEMM adds x·Wᵀ */
        kbl_tensor *o2 = kbl_alias(out);
        if (o2) {
            o2->ndim = 2, o2->shape[0] = rows, o2->shape[1] = out_f, o2->strides[0] = out_f, o2->strides[1] = 1;
            rc = kbl_copy_(o2, b);
        }
        rc = o2 ? rc : -1;
        kbl_tensor_release(o2);
        beta = 1;
    }
    if (rc) {
    } else if (in_f == 0) {
        if (!b) rc = kbl_fill_(out, 0);
    } else if (rows > 0 && out_f > 0) {
        kbl_tensor x2 = *xc, wt = *wc;
        x2.ndim = 2, x2.shape[0] = rows, x2.shape[1] = in_f, x2.strides[0] = in_f, x2.strides[1] = 1;
        wt.shape[0] = in_f, wt.shape[1] = out_f, wt.strides[0] = wc->strides[1], wt.strides[1] = wc->strides[0];
        rc = gemm(&x2, 0, &wt, 0, out, 0, rows, out_f, in_f, beta);
    }
    kbl_release_n(2, xc, wc);
    if (rc) {
        kbl_tensor_release(out);
        return NULL;
    }
    kbl_tensor *in[3] = {x, w, b};
    kbl_record("linear", linear_backward, out, b ? 3 : 2, in);
    return out;
}
