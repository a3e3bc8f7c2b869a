/* pool.c — 2-D pooling and resampling on NCHW planes: max_pool2d (with the
 * argmax positions its backward scatters to), avg_pool2d, adaptive_avg_pool2d and
 * upsample_nearest2d, each with its backward kernel registered as an op (the
 * kernels are the backend's: core/cpu/pool.c on the CPU). Every forward/backward
 * pair is adjoint, so each backward op's own gradient is the forward op again
 * (or a gather, for max pooling). */
#include "internal.h"


static kbl_tensor *contiguous_nograd(kbl_tensor *t) {
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *c = kbl_contiguous(t);
    kbl_set_grad_enabled(prev);
    return c;
}

static int check_input(const char *op, const kbl_tensor *x, const char *what) {
    if (kbl_check_dev(op, x, what)) return -1;
    if (x->ndim != 4) return kbl_fail("%s: %s must be 4-D [N, C, H, W], got %s", op, what, KBL_DESC(x));
    if (!kbl_is_float(x->dtype)) return kbl_fail("%s: %s must be float32 or float64, got %s", op, what, KBL_DESC(x));
    return 0;
}

/* Pooling windows: kernel, stride, padding (h, w); output size as PyTorch (no ceil mode). */
typedef struct pool_geom {
    int64_t planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
} pool_geom;

static int pool_make(const char *op, const kbl_tensor *x, const int64_t *kernel, const int64_t *stride,
                     const int64_t *padding, pool_geom *g) {
    int64_t kh = kernel[0], kw = kernel[1];
    int64_t sh = stride ? stride[0] : kh, sw = stride ? stride[1] : kw;
    int64_t ph = padding ? padding[0] : 0, pw = padding ? padding[1] : 0;
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1)
        return kbl_fail("%s: kernel (%lld, %lld) and stride (%lld, %lld) must be at least 1", op, (long long)kh,
                        (long long)kw, (long long)sh, (long long)sw);
    if (ph < 0 || pw < 0 || 2 * ph > kh || 2 * pw > kw)
        return kbl_fail("%s: padding (%lld, %lld) must be between 0 and half the kernel (%lld, %lld)", op,
                        (long long)ph, (long long)pw, (long long)kh, (long long)kw);
    int64_t h = x->shape[2], w = x->shape[3];
    if (h + 2 * ph < kh || w + 2 * pw < kw)
        return kbl_fail("%s: kernel (%lld, %lld) is larger than the padded input %s (padding (%lld, %lld))", op,
                        (long long)kh, (long long)kw, KBL_DESC(x), (long long)ph, (long long)pw);
    *g = (pool_geom){x->shape[0] * x->shape[1], h, w, (h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1,
                     kh, kw, sh, sw, ph, pw};
    return 0;
}

/* An average pooling node's arguments: its window, and whether the padding counts. */
typedef struct {
    int64_t kernel[2], stride[2], padding[2];
    int count_include_pad;
} avgpool_args;
KBL_ARGS_FIT(avgpool_args);

/* An upsampling node's arguments: the source scale per axis. */
typedef struct { double scale_h, scale_w; } upsample_args;
KBL_ARGS_FIT(upsample_args);

static void pool_save(kbl_node *n, const pool_geom *g, int cip) {
    if (n) *KBL_ARGS(n, avgpool_args) = (avgpool_args){{g->kh, g->kw}, {g->sh, g->sw}, {g->ph, g->pw}, cip};
}

/* One pooling kernel on the device of out: in and out contiguous; h, w are the
 * input's (x's) plane and oh, ow the output's (y's), in either direction. */
static int pool_device(int kind, int bwd, const pool_geom *g, int cip, const kbl_tensor *in, kbl_tensor *out,
                       kbl_tensor *idx, double sh, double sw) {
    kbl_pool_desc d = {in->dtype, kind, bwd, cip, g->planes, g->h, g->w, g->oh, g->ow, g->kh, g->kw, g->sh,
                       g->sw, g->ph, g->pw, sh, sw, kbl_base(in), kbl_base(out), idx ? kbl_base(idx) : NULL};
    if (kbl_numel(out) == 0) return 0;
    return kbl_backend_of(out)->pool(&d);
}

/* ---- max_pool2d ------------------------------------------------------------------ */

static int maxpool_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *x = n->inputs[0];
    gin[0] = kbl_max_pool2d_backward(g, n->saved[0], x->shape + 2);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_max_pool2d(kbl_tensor *x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                           kbl_tensor **indices) {
    const char *op = "max_pool2d";
    pool_geom g = {0};
    if (indices) *indices = NULL;
    if (check_input(op, x, "input") || pool_make(op, x, kernel, stride, padding, &g)) return NULL;
    int64_t shape[4] = {x->shape[0], x->shape[1], g.oh, g.ow};
    kbl_tensor *xc = contiguous_nograd(x);
    kbl_tensor *y = xc ? kbl_empty_on(x->device, 4, shape, x->dtype) : NULL;
    kbl_tensor *idx = y ? kbl_empty_on(x->device, 4, shape, KBL_INT64) : NULL;
    if (!idx || pool_device(KBL_POOL_MAX, 0, &g, 0, xc, y, idx, 0, 0)) {
        kbl_release_n(3, xc, y, idx);
        return NULL;
    }
    kbl_tensor_release(xc);
    kbl_node *node = kbl_record(op, maxpool_backward, y, 1, &x);
    if (node) kbl_node_save(node, 0, idx);
    if (indices) *indices = idx;
    else kbl_tensor_release(idx);
    return y;
}

/* the adjoint of the scatter: gather gg at the indices */
static int maxpool_bwd_backward(kbl_node *n, kbl_tensor *gg, kbl_tensor **gin) {
    kbl_tensor *idx = n->saved[0];
    int64_t nb = idx->shape[0], c = idx->shape[1];
    kbl_tensor *flat = kbl_reshape(gg, 3, (int64_t[]){nb, c, gg->shape[2] * gg->shape[3]});
    kbl_tensor *fi = kbl_reshape(idx, 3, (int64_t[]){nb, c, idx->shape[2] * idx->shape[3]});
    kbl_tensor *r = flat && fi ? kbl_gather(flat, 2, fi) : NULL;
    gin[0] = r ? kbl_reshape(r, 4, idx->shape) : NULL;
    kbl_release_n(3, flat, fi, r);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_max_pool2d_backward(kbl_tensor *grad, kbl_tensor *indices, const int64_t *input_hw) {
    const char *op = "max_pool2d_backward";
    if (check_input(op, grad, "grad") || kbl_check_dev(op, indices, "indices") ||
        kbl_check_same_device(op, grad, indices))
        return NULL;
    if (indices->dtype != KBL_INT64 || !kbl_same_shape(grad, indices)) {
        char s1[96], s2[96];
        kbl_fail("%s: indices %s must be int64 of grad's shape %s", op, kbl_describe(indices, s1, 96),
                 kbl_describe(grad, s2, 96));
        return NULL;
    }
    int64_t planes = grad->shape[0] * grad->shape[1];
    kbl_tensor *gc = contiguous_nograd(grad), *ic = contiguous_nograd(indices);
    kbl_tensor *dx = gc && ic ? kbl_empty_on(grad->device, 4,
                                             (int64_t[]){grad->shape[0], grad->shape[1], input_hw[0], input_hw[1]},
                                             grad->dtype)
                              : NULL;
    if (dx) {
        pool_geom g = {planes, input_hw[0], input_hw[1], grad->shape[2], grad->shape[3], 0, 0, 0, 0, 0, 0};
        if (pool_device(KBL_POOL_MAX, 1, &g, 0, gc, dx, ic, 0, 0)) kbl_tensor_release(dx), dx = NULL;
    }
    if (dx) {
        kbl_node *node = kbl_record(op, maxpool_bwd_backward, dx, 1, &grad);
        if (node) kbl_node_save(node, 0, ic);
    }
    kbl_release_n(2, gc, ic);
    return dx;
}

/* ---- avg_pool2d ---------------------------------------------------------------------- */

static int avgpool_backward(kbl_node *n, kbl_tensor *gy, kbl_tensor **gin) {
    const avgpool_args *a = KBL_ARGS(n, avgpool_args);
    kbl_tensor *x = n->inputs[0];
    gin[0] = kbl_avg_pool2d_backward(gy, x->shape + 2, a->kernel, a->stride, a->padding, a->count_include_pad);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_avg_pool2d(kbl_tensor *x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                           int count_include_pad) {
    const char *op = "avg_pool2d";
    pool_geom g = {0};
    if (check_input(op, x, "input") || pool_make(op, x, kernel, stride, padding, &g)) return NULL;
    kbl_tensor *in = contiguous_nograd(x);
    kbl_tensor *out = in ? kbl_empty_on(x->device, 4, (int64_t[]){x->shape[0], x->shape[1], g.oh, g.ow}, x->dtype)
                         : NULL;
    int cip = count_include_pad != 0;
    if (!out || pool_device(KBL_POOL_AVG, 0, &g, cip, in, out, NULL, 0, 0)) {
        kbl_release_n(2, in, out);
        return NULL;
    }
    kbl_tensor_release(in);
    pool_save(kbl_record(op, avgpool_backward, out, 1, &x), &g, cip);
    return out;
}

static int avgpool_bwd_backward(kbl_node *n, kbl_tensor *gg, kbl_tensor **gin) {
    const avgpool_args *a = KBL_ARGS(n, avgpool_args);
    gin[0] = kbl_avg_pool2d(gg, a->kernel, a->stride, a->padding, a->count_include_pad);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_avg_pool2d_backward(kbl_tensor *grad, const int64_t *input_hw, const int64_t *kernel,
                                    const int64_t *stride, const int64_t *padding, int count_include_pad) {
    const char *op = "avg_pool2d_backward";
    pool_geom g = {0};
    if (check_input(op, grad, "grad")) return NULL;
    kbl_tensor shape_of_x = {.dtype = grad->dtype, .ndim = 4,
                             .shape = {grad->shape[0], grad->shape[1], input_hw[0], input_hw[1]}};
    if (pool_make(op, &shape_of_x, kernel, stride, padding, &g)) return NULL;
    if (g.oh != grad->shape[2] || g.ow != grad->shape[3]) {
        kbl_fail("%s: grad %s does not match the pooled size %lldx%lld of a %lldx%lld input", op, KBL_DESC(grad),
                 (long long)g.oh, (long long)g.ow, (long long)input_hw[0], (long long)input_hw[1]);
        return NULL;
    }
    kbl_tensor *in = contiguous_nograd(grad);
    kbl_tensor *out = in ? kbl_empty_on(grad->device, 4, shape_of_x.shape, grad->dtype) : NULL;
    int cip = count_include_pad != 0;
    if (!out || pool_device(KBL_POOL_AVG, 1, &g, cip, in, out, NULL, 0, 0)) {
        kbl_release_n(2, in, out);
        return NULL;
    }
    kbl_tensor_release(in);
    pool_save(kbl_record(op, avgpool_bwd_backward, out, 1, &grad), &g, cip);
    return out;
}

/* ---- adaptive_avg_pool2d ------------------------------------------------------------- */

/* One body for both directions: in [N, C, a, b] -> out [N, C, c, d]; bwd swaps roles. */
static kbl_tensor *adaptive_run(kbl_tensor *t, int64_t h, int64_t w, int64_t oh, int64_t ow, int bwd) {
    kbl_tensor *in = contiguous_nograd(t);
    int64_t os[4] = {t->shape[0], t->shape[1], bwd ? h : oh, bwd ? w : ow};
    kbl_tensor *out = in ? kbl_empty_on(t->device, 4, os, t->dtype) : NULL;
    if (out) {
        pool_geom g = {t->shape[0] * t->shape[1], h, w, oh, ow, 0, 0, 0, 0, 0, 0};
        if (pool_device(KBL_POOL_ADAPTIVE_AVG, bwd, &g, 0, in, out, NULL, 0, 0)) kbl_tensor_release(out), out = NULL;
    }
    kbl_tensor_release(in);
    return out;
}

static int adaptive_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    gin[0] = kbl_adaptive_avg_pool2d_backward(g, n->inputs[0]->shape + 2);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_adaptive_avg_pool2d(kbl_tensor *x, int64_t oh, int64_t ow) {
    const char *op = "adaptive_avg_pool2d";
    if (check_input(op, x, "input")) return NULL;
    if (oh < 1 || ow < 1) {
        kbl_fail("%s: output size (%lld, %lld) must be at least 1", op, (long long)oh, (long long)ow);
        return NULL;
    }
    kbl_tensor *y = adaptive_run(x, x->shape[2], x->shape[3], oh, ow, 0);
    kbl_record(op, adaptive_backward, y, 1, &x);
    return y;
}

static int adaptive_bwd_backward(kbl_node *n, kbl_tensor *gg, kbl_tensor **gin) {
    kbl_tensor *g = n->inputs[0];
    gin[0] = kbl_adaptive_avg_pool2d(gg, g->shape[2], g->shape[3]);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_adaptive_avg_pool2d_backward(kbl_tensor *grad, const int64_t *input_hw) {
    const char *op = "adaptive_avg_pool2d_backward";
    if (check_input(op, grad, "grad")) return NULL;
    if (input_hw[0] < 1 || input_hw[1] < 1) {
        kbl_fail("%s: input size (%lld, %lld) must be at least 1", op, (long long)input_hw[0], (long long)input_hw[1]);
        return NULL;
    }
    kbl_tensor *dx = adaptive_run(grad, input_hw[0], input_hw[1], grad->shape[2], grad->shape[3], 1);
    kbl_record(op, adaptive_bwd_backward, dx, 1, &grad);
    return dx;
}

/* ---- upsample_nearest2d ---------------------------------------------------------------- */

static kbl_tensor *upsample_run(kbl_tensor *t, int64_t h, int64_t w, int64_t oh, int64_t ow, double sh, double sw,
                                int bwd) {
    kbl_tensor *in = contiguous_nograd(t);
    int64_t os[4] = {t->shape[0], t->shape[1], bwd ? h : oh, bwd ? w : ow};
    kbl_tensor *out = in ? kbl_empty_on(t->device, 4, os, t->dtype) : NULL;
    if (out) {
        pool_geom g = {t->shape[0] * t->shape[1], h, w, oh, ow, 0, 0, 0, 0, 0, 0};
        if (pool_device(KBL_POOL_UPSAMPLE_NEAREST, bwd, &g, 0, in, out, NULL, sh, sw))
            kbl_tensor_release(out), out = NULL;
    }
    kbl_tensor_release(in);
    return out;
}

static int upsample_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    const upsample_args *a = KBL_ARGS(n, upsample_args);
    gin[0] = kbl_upsample_nearest2d_backward(g, n->inputs[0]->shape + 2, a->scale_h, a->scale_w);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_upsample_nearest2d(kbl_tensor *x, int64_t oh, int64_t ow, double scale_h, double scale_w) {
    const char *op = "upsample_nearest2d";
    if (check_input(op, x, "input")) return NULL;
    if (oh < 1 || ow < 1 || x->shape[2] < 1 || x->shape[3] < 1) {
        kbl_fail("%s: output size (%lld, %lld) of input %s must be at least 1", op, (long long)oh, (long long)ow,
                 KBL_DESC(x));
        return NULL;
    }
    kbl_tensor *y = upsample_run(x, x->shape[2], x->shape[3], oh, ow, scale_h, scale_w, 0);
    kbl_node *node = kbl_record(op, upsample_backward, y, 1, &x);
    if (node) *KBL_ARGS(node, upsample_args) = (upsample_args){scale_h, scale_w};
    return y;
}

static int upsample_bwd_backward(kbl_node *n, kbl_tensor *gg, kbl_tensor **gin) {
    kbl_tensor *g = n->inputs[0];
    const upsample_args *a = KBL_ARGS(n, upsample_args);
    gin[0] = kbl_upsample_nearest2d(gg, g->shape[2], g->shape[3], a->scale_h, a->scale_w);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_upsample_nearest2d_backward(kbl_tensor *grad, const int64_t *input_hw, double scale_h,
                                            double scale_w) {
    const char *op = "upsample_nearest2d_backward";
    if (check_input(op, grad, "grad")) return NULL;
    if (input_hw[0] < 1 || input_hw[1] < 1) {
        kbl_fail("%s: input size (%lld, %lld) must be at least 1", op, (long long)input_hw[0], (long long)input_hw[1]);
        return NULL;
    }
    kbl_tensor *dx = upsample_run(grad, input_hw[0], input_hw[1], grad->shape[2], grad->shape[3], scale_h, scale_w, 1);
    kbl_node *node = kbl_record(op, upsample_bwd_backward, dx, 1, &grad);
    if (node) *KBL_ARGS(node, upsample_args) = (upsample_args){scale_h, scale_w};
    return dx;
}
