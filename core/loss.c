/* loss.c — cross entropy on integer labels, fused and numerically stable
 * (log-sum-exp per row, label smoothing, class weights, ignore_index, reductions),
 * with its own backward kernel; and binary cross entropy with logits, made of ops.
 *
 * With smoothing e over C classes and weights w (all 1 when absent), for row i
 * with label y: loss_i = (1-e) * w_y * (lse - x_y) + e/C * sum_c w_c (lse - x_c).
 * The mean divides by sum_i w_{y_i} over rows that are not ignored, as PyTorch. */
#include "internal.h"

/* cross_entropy's node arguments; inv_wsum is 1 / the total weight */
typedef struct { int64_t ignore; int reduction; double smoothing, inv_wsum; } ce_node_args;
KBL_ARGS_FIT(ce_node_args);

static int ce_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    const ce_node_args *na = KBL_ARGS(n, ce_node_args);
    kbl_tensor *labels = n->saved[0], *wt = n->saved[1];
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *lg = kbl_contiguous(n->inputs[0]); /* the kernel reads rows; logits may be a view */
    kbl_set_grad_enabled(prev);
    if (!lg) return -1;
    int64_t rows = lg->shape[0], cols = lg->shape[1];
    int reduction = na->reduction;
    double gscale = reduction == KBL_REDUCE_MEAN ? na->inv_wsum : 1.0;
    kbl_tensor *gc = kbl_contiguous(g);
    kbl_tensor *out = gc ? kbl_empty_on(lg->device, 2, lg->shape, lg->dtype) : NULL;
    kbl_ce_args ca = {lg->dtype, reduction == KBL_REDUCE_NONE, rows, cols, na->ignore, na->smoothing, gscale, kbl_base(lg),
                      kbl_base(labels), wt ? kbl_base(wt) : NULL, gc ? kbl_base(gc) : NULL,
                      out ? kbl_base(out) : NULL, NULL, NULL};
    if (out && rows * cols > 0 && kbl_backend_of(lg)->cross_entropy(&ca)) {
        kbl_tensor_release(out);
        out = NULL;
    }
    kbl_release_n(2, lg, gc);
    gin[0] = out;
    return out ? 0 : -1;
}

static kbl_tensor *bad_label(int64_t label, int64_t row, int64_t cols) {
    kbl_fail("cross_entropy: label %lld at position %lld is out of range for %lld classes "
             "(labels count from 0 in C, from 1 in Lua)",
             (long long)label, (long long)row, (long long)cols);
    return NULL;
}

/* [N, C] logits and [N] labels (0-based) */
static kbl_tensor *ce_2d(kbl_tensor *logits, kbl_tensor *labels, kbl_tensor *weight, int64_t ignore,
                         double smoothing, int reduction) {
    int64_t rows = logits->shape[0], cols = logits->shape[1];
    const int64_t *lab = kbl_base(labels);
    const kbl_backend *be = kbl_backend_of(logits);
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *lg = kbl_contiguous(logits);
    kbl_tensor *wt = weight ? kbl_contiguous(weight) : NULL;
    kbl_set_grad_enabled(prev);
    kbl_tensor *out_rows = kbl_empty_on(logits->device, 1, &rows, logits->dtype);
    if (!lg || (weight && !wt) || !out_rows) {
        kbl_release_n(3, lg, wt, out_rows);
        return NULL;
    }
    /* the kernel checks the labels first; the host needs wsum for the mean */
    double wsum = 0;
    int64_t bad = -1;
    kbl_ce_args ca = {logits->dtype, 0, rows, cols, ignore, smoothing, 1.0, kbl_base(lg), lab,
                      wt ? kbl_base(wt) : NULL, NULL, kbl_base(out_rows), &wsum, &bad};
    int rc = rows > 0 ? be->cross_entropy(&ca) : 0;
    if (rc == 0 && bad >= 0) {
        int64_t v = 0;
        rc = be->memcpy(&v, lab + bad, sizeof v, KBL_COPY_D2H);
        if (rc == 0) bad_label(v, bad, cols);
    }
    if (rc || bad >= 0) {
        kbl_release_n(3, lg, wt, out_rows);
        return NULL;
    }
    kbl_tensor *out = NULL;
    if (reduction == KBL_REDUCE_NONE) {
        out = kbl_tensor_retain(out_rows);
    } else {
        prev = kbl_set_grad_enabled(0);
        kbl_tensor *s = kbl_sum(out_rows, 0, NULL, 0);
        kbl_tensor *total = s && reduction == KBL_REDUCE_MEAN ? kbl_full_on(logits->device, 0, NULL, wsum, s->dtype) : NULL;
        out = total ? kbl_div(s, total) : kbl_tensor_retain(s);
        kbl_release_n(2, s, total);
        kbl_set_grad_enabled(prev);
    }
    kbl_tensor_release(out_rows);
    if (out) {
        kbl_tensor *in[1] = {logits};
        kbl_node *node = kbl_record("cross_entropy", ce_backward, out, 1, in);
        if (node) {
            *KBL_ARGS(node, ce_node_args) = (ce_node_args){ignore, reduction, smoothing, 1.0 / wsum};
            kbl_node_save(node, 0, labels);
            kbl_node_save(node, 1, wt);
        }
    }
    kbl_release_n(2, lg, wt);
    return out;
}

kbl_tensor *kbl_cross_entropy(kbl_tensor *logits, kbl_tensor *labels, kbl_tensor *weight, int64_t ignore_index,
                              double label_smoothing, int reduction) {
    const char *op = "cross_entropy";
    if (kbl_check_dev(op, logits, "logits") || kbl_check_dev(op, labels, "labels") ||
        (weight && kbl_check_dev(op, weight, "weight")) || kbl_check_float(op, logits) ||
        kbl_check_same_device(op, logits, labels) || (weight && kbl_check_same_device(op, logits, weight)))
        return NULL;
    char s1[96], s2[96];
    if (logits->ndim < 2) {
        kbl_fail("%s: logits must be [N, C] or [N, C, d...], got %s", op, KBL_DESC(logits));
        return NULL;
    }
    if (labels->dtype != KBL_INT64 && labels->dtype != KBL_INT32) {
        kbl_fail("%s: labels must be int64 (or int32) class indices, got %s", op, KBL_DESC(labels));
        return NULL;
    }
    bool match = labels->ndim == logits->ndim - 1 && labels->shape[0] == logits->shape[0];
    for (int d = 2; match && d < logits->ndim; d++) match = labels->shape[d - 1] == logits->shape[d];
    if (!match) {
        kbl_fail("%s: labels %s do not match logits %s (expected [N] for [N, C], [N, d...] for [N, C, d...])",
                 op, kbl_describe(labels, s1, 96), kbl_describe(logits, s2, 96));
        return NULL;
    }
    int64_t C = logits->shape[1];
    if (weight && (weight->ndim != 1 || weight->shape[0] != C || weight->dtype != logits->dtype)) {
        kbl_fail("%s: class weights %s must be [%lld] of the logits' dtype", op, KBL_DESC(weight), (long long)C);
        return NULL;
    }
    if (label_smoothing < 0 || label_smoothing > 1) {
        kbl_fail("%s: label_smoothing must be in [0, 1], got %g", op, label_smoothing);
        return NULL;
    }
    if (reduction < 0 || reduction > 2) {
        kbl_fail("%s: unknown reduction %d", op, reduction);
        return NULL;
    }
    /* [N, C, d...] -> [N*d..., C] through recorded views, so gradients follow */
    kbl_tensor *lg2 = NULL, *lab = NULL;
    int64_t rows = kbl_numel(labels);
    if (logits->ndim == 2) {
        lg2 = kbl_tensor_retain(logits);
    } else {
        int perm[KBL_MAX_DIMS], k = 0;
        perm[k++] = 0;
        for (int d = 2; d < logits->ndim; d++) perm[k++] = d;
        perm[k++] = 1;
        kbl_tensor *p = kbl_permute(logits, logits->ndim, perm);
        lg2 = p ? kbl_reshape(p, 2, (int64_t[]){rows, C}) : NULL;
        kbl_tensor_release(p);
    }
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *l64 = labels->dtype == KBL_INT64 ? kbl_contiguous(labels) : kbl_to_dtype(labels, KBL_INT64);
    kbl_set_grad_enabled(prev);
    lab = l64 ? kbl_reshape(l64, 1, &rows) : NULL;
    kbl_tensor_release(l64);
    kbl_tensor *r = lg2 && lab ? ce_2d(lg2, lab, weight, ignore_index, label_smoothing, reduction) : NULL;
    kbl_release_n(2, lg2, lab);
    if (r && reduction == KBL_REDUCE_NONE && labels->ndim != 1) {
        kbl_tensor *v = kbl_reshape(r, labels->ndim, labels->shape);
        kbl_tensor_release(r);
        r = v;
    }
    return r;
}

/* ---- binary cross entropy with logits, composed of ops ----------------------------
 * loss = (1 - t) x + (1 + (pw - 1) t) * softplus(-x), softplus(-x) = log1p(exp(-|x|)) + relu(-x) */
kbl_tensor *kbl_binary_cross_entropy_with_logits(kbl_tensor *x, kbl_tensor *t, kbl_tensor *weight,
                                                 kbl_tensor *pos_weight, int reduction) {
    const char *op = "binary_cross_entropy_with_logits";
    if (kbl_check_dev(op, x, "logits") || kbl_check_dev(op, t, "target") || kbl_check_float(op, x) ||
        kbl_check_same_device(op, x, t))
        return NULL;
    if (!kbl_same_shape(x, t)) {
        char s1[96], s2[96];
        kbl_fail("%s: target %s does not match logits %s", op, kbl_describe(t, s1, 96), kbl_describe(x, s2, 96));
        return NULL;
    }
    kbl_tensor *tf = t->dtype == x->dtype ? kbl_tensor_retain(t) : kbl_to_dtype(t, x->dtype);
    kbl_tensor *ab = kbl_unary(KBL_ABS, x, 0, 0);
    kbl_tensor *na = ab ? kbl_unary(KBL_NEG, ab, 0, 0) : NULL;
    kbl_tensor *ex = na ? kbl_unary(KBL_EXP, na, 0, 0) : NULL;
    kbl_tensor *l1 = ex ? kbl_unary(KBL_LOG1P, ex, 0, 0) : NULL;
    kbl_tensor *nx = kbl_unary(KBL_NEG, x, 0, 0);
    kbl_tensor *rl = nx ? kbl_unary(KBL_RELU, nx, 0, 0) : NULL;
    kbl_tensor *sp = l1 && rl ? kbl_add(l1, rl) : NULL;              /* softplus(-x) */
    kbl_tensor *omt = tf ? kbl_unary(KBL_AFFINE, tf, -1, 1) : NULL;   /* 1 - t */
    kbl_tensor *lin = omt ? kbl_mul(omt, x) : NULL;
    kbl_tensor *coef = NULL;
    if (pos_weight) {
        kbl_tensor *pm1 = kbl_unary(KBL_AFFINE, pos_weight, 1, -1), *q = pm1 && tf ? kbl_mul(pm1, tf) : NULL;
        coef = q ? kbl_unary(KBL_AFFINE, q, 1, 1) : NULL;
        kbl_release_n(2, pm1, q);
    }
    kbl_tensor *term = pos_weight ? (coef && sp ? kbl_mul(coef, sp) : NULL) : kbl_tensor_retain(sp);
    kbl_tensor *loss = lin && term ? kbl_add(lin, term) : NULL;
    kbl_release_n(11, tf, ab, na, ex, l1, nx, rl, sp, omt, lin, coef);
    kbl_tensor_release(term);
    if (loss && weight) {
        kbl_tensor *w = kbl_mul(loss, weight);
        kbl_tensor_release(loss);
        loss = w;
    }
    if (!loss || reduction == KBL_REDUCE_NONE) return loss;
    kbl_tensor *r = reduction == KBL_REDUCE_SUM ? kbl_sum(loss, 0, NULL, 0) : kbl_mean(loss, 0, NULL, 0);
    kbl_tensor_release(loss);
    return r;
}
