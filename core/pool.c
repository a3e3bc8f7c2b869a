/* pool.c — 2-D pooling and resampling on NCHW planes: max_pool2d (with the
 * argmax positions its backward scatters to), avg_pool2d, adaptive_avg_pool2d and
 * upsample_nearest2d, each with its backward kernel registered as an op. Every
 * forward/backward pair is adjoint, so each backward op's own gradient is the
 * forward op again (or a gather, for max pooling). Planes run over OpenMP threads. */
#include "internal.h"

#include <math.h>

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

static void pool_save(kbl_node *n, const pool_geom *g, int64_t extra) {
    if (!n) return;
    int64_t v[8] = {g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, extra, 0};
    memcpy(n->ip, v, sizeof v);
    n->nip = 8;
}

static int nthreads(int64_t work) { return work >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1; }

/* One pooling kernel on CUDA: in and out contiguous on the device; h, w are the
 * input's (x's) plane and oh, ow the output's (y's), in either direction. */
static int pool_device(int kind, int bwd, const pool_geom *g, int cip, const kbl_tensor *in, kbl_tensor *out,
                       kbl_tensor *idx, double sh, double sw) {
    kbl_pool_desc d = {in->dtype, kind, bwd, cip, g->planes, g->h, g->w, g->oh, g->ow, g->kh, g->kw, g->sh,
                       g->sw, g->ph, g->pw, sh, sw, kbl_base(in), kbl_base(out), idx ? kbl_base(idx) : NULL};
    if (kbl_numel(out) == 0) return 0;
    return kbl_backend_of(out)->pool(&d);
}

/* The window of output o along one axis, clipped to the input: [*a, *b). */
static inline void window(int64_t o, int64_t s, int64_t p, int64_t k, int64_t size, int64_t *a, int64_t *b) {
    int64_t lo = o * s - p, hi = lo + k;
    *a = lo < 0 ? 0 : lo;
    *b = hi > size ? size : hi;
}

/* ---- max_pool2d ------------------------------------------------------------------ */

/* Branch-free updates (the maxima of random data are unpredictable); a NaN wins,
 * as in PyTorch. 2x2 windows at stride 2 without padding get their own loop. */
#define MAXPOOL(T)                                                                            \
    do {                                                                                      \
        const T *xp = kbl_base(xc);                                                           \
        T *yp = kbl_base(y);                                                                  \
        int64_t *ip = kbl_base(idx);                                                          \
        bool k22 = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0; \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                          \
        for (int64_t pl = 0; pl < g.planes; pl++) {                                           \
            const pool_geom gl = g; /* a private copy: stores through id cannot alias it */    \
            const T *src = xp + pl * gl.h * gl.w;                                             \
            T *dst = yp + pl * gl.oh * gl.ow;                                                 \
            int64_t *id = ip + pl * gl.oh * gl.ow;                                            \
            for (int64_t oy = 0; oy < gl.oh; oy++, dst += gl.ow, id += gl.ow) {               \
                int64_t y0, y1;                                                               \
                window(oy, gl.sh, gl.ph, gl.kh, gl.h, &y0, &y1);                                  \
                if (k22) {                                                                    \
                    const T *r0 = src + y0 * gl.w, *r1 = r0 + gl.w;                             \
                    for (int64_t ox = 0; ox < gl.ow; ox++) {                                   \
                        T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1]; \
                        int64_t ia = y0 * gl.w + 2 * ox, ib = ia + 1, ic = ia + gl.w, id_ = ic + 1; \
                        bool tb = b > a || b != b;                                            \
                        T m1 = tb ? b : a;                                                    \
                        int64_t i1 = tb ? ib : ia;                                            \
                        bool td = d > c || d != d;                                            \
                        T m2 = td ? d : c;                                                    \
                        int64_t i2 = td ? id_ : ic;                                           \
                        bool t2 = (m2 > m1 || m2 != m2) && m1 == m1;                          \
                        dst[ox] = t2 ? m2 : m1;                                               \
                        id[ox] = t2 ? i2 : i1;                                                \
                    }                                                                         \
                    continue;                                                                 \
                }                                                                             \
                for (int64_t ox = 0; ox < gl.ow; ox++) {                                       \
                    int64_t x0, x1;                                                           \
                    window(ox, gl.sw, gl.pw, gl.kw, gl.w, &x0, &x1);                              \
                    T m = src[y0 * gl.w + x0];                                                 \
                    int64_t best = y0 * gl.w + x0;                                             \
                    for (int64_t iy = y0; iy < y1; iy++)                                      \
                        for (int64_t ix = x0; ix < x1; ix++) {                                \
                            T v = src[iy * gl.w + ix];                                         \
                            bool take = (v > m || v != v) && m == m;                          \
                            m = take ? v : m;                                                 \
                            best = take ? iy * gl.w + ix : best;                               \
                        }                                                                     \
                    dst[ox] = m;                                                              \
                    id[ox] = best;                                                            \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)

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
    if (!idx || (kbl_on_cuda(x) && pool_device(KBL_POOL_MAX, 0, &g, 0, xc, y, idx, 0, 0))) {
        kbl_release_n(3, xc, y, idx);
        return NULL;
    }
    int nt = nthreads(g.planes * g.oh * g.ow * g.kh * g.kw);
    if (!kbl_on_cuda(x)) KBL_FLOAT_CASES(x->dtype, MAXPOOL)
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

#define MAXPOOL_BWD(T)                                                                        \
    do {                                                                                      \
        const T *gp = kbl_base(gc);                                                           \
        T *dp = kbl_base(dx);                                                                 \
        const int64_t *ip = kbl_base(ic);                                                     \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                          \
        for (int64_t pl = 0; pl < planes; pl++) {                                             \
            T *d = dp + pl * hw;                                                              \
            memset(d, 0, sizeof(T) * (size_t)hw);                                             \
            for (int64_t o = 0; o < ohw; o++) {                                               \
                int64_t i = ip[pl * ohw + o];                                                 \
                if (i >= 0 && i < hw) d[i] += gp[pl * ohw + o];                               \
            }                                                                                 \
        }                                                                                     \
    } while (0)

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
    int64_t planes = grad->shape[0] * grad->shape[1], hw = input_hw[0] * input_hw[1];
    int64_t ohw = grad->shape[2] * grad->shape[3];
    kbl_tensor *gc = contiguous_nograd(grad), *ic = contiguous_nograd(indices);
    kbl_tensor *dx = gc && ic ? kbl_empty_on(grad->device, 4,
                                             (int64_t[]){grad->shape[0], grad->shape[1], input_hw[0], input_hw[1]},
                                             grad->dtype)
                              : NULL;
    if (dx && kbl_on_cuda(dx)) {
        pool_geom g = {planes, input_hw[0], input_hw[1], grad->shape[2], grad->shape[3], 0, 0, 0, 0, 0, 0};
        if (pool_device(KBL_POOL_MAX, 1, &g, 0, gc, dx, ic, 0, 0)) kbl_tensor_release(dx), dx = NULL;
    } else if (dx) {
        int nt = nthreads(planes * (hw + ohw));
        KBL_FLOAT_CASES(grad->dtype, MAXPOOL_BWD)
    }
    if (dx) {
        kbl_node *node = kbl_record(op, maxpool_bwd_backward, dx, 1, &grad);
        if (node) kbl_node_save(node, 0, ic);
    }
    kbl_release_n(2, gc, ic);
    return dx;
}

/* ---- avg_pool2d ---------------------------------------------------------------------- */

/* PyTorch's divisor: the window clipped to the padded input, or to the input itself */
static inline int64_t avg_divisor(const pool_geom *g, int64_t oy, int64_t ox, int cip) {
    if (cip) {
        int64_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
        int64_t y1 = y0 + g->kh < g->h + g->ph ? y0 + g->kh : g->h + g->ph;
        int64_t x1 = x0 + g->kw < g->w + g->pw ? x0 + g->kw : g->w + g->pw;
        return (y1 - y0) * (x1 - x0);
    }
    int64_t a, b, c, d;
    window(oy, g->sh, g->ph, g->kh, g->h, &a, &b);
    window(ox, g->sw, g->pw, g->kw, g->w, &c, &d);
    return (b - a) * (d - c);
}

/* fwd: dst[o] = sum(window)/div; bwd: src[window] += g[o]/div (one plane per thread) */
#define AVGPOOL(T, BWD)                                                                       \
    do {                                                                                      \
        const T *ip = kbl_base(in);                                                           \
        T *op_ = kbl_base(out);                                                               \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                          \
        for (int64_t pl = 0; pl < g.planes; pl++) {                                           \
            const T *a = ip + pl * (BWD ? g.oh * g.ow : g.h * g.w);                           \
            T *b = op_ + pl * (BWD ? g.h * g.w : g.oh * g.ow);                                \
            if (BWD) memset(b, 0, sizeof(T) * (size_t)(g.h * g.w));                           \
            for (int64_t oy = 0; oy < g.oh; oy++)                                             \
                for (int64_t ox = 0; ox < g.ow; ox++) {                                       \
                    int64_t y0, y1, x0, x1, div = avg_divisor(&g, oy, ox, cip);               \
                    window(oy, g.sh, g.ph, g.kh, g.h, &y0, &y1);                              \
                    window(ox, g.sw, g.pw, g.kw, g.w, &x0, &x1);                              \
                    if (BWD) {                                                                \
                        T v = a[oy * g.ow + ox] / (T)div;                                     \
                        for (int64_t iy = y0; iy < y1; iy++)                                  \
                            for (int64_t ix = x0; ix < x1; ix++) b[iy * g.w + ix] += v;        \
                    } else {                                                                  \
                        T s = 0;                                                              \
                        for (int64_t iy = y0; iy < y1; iy++)                                  \
                            for (int64_t ix = x0; ix < x1; ix++) s += a[iy * g.w + ix];       \
                        b[oy * g.ow + ox] = div > 0 ? s / (T)div : 0;                         \
                    }                                                                         \
                }                                                                             \
        }                                                                                     \
    } while (0)
#define AVGPOOL_FWD(T) AVGPOOL(T, 0)
#define AVGPOOL_BWD(T) AVGPOOL(T, 1)

static int avgpool_backward(kbl_node *n, kbl_tensor *gy, kbl_tensor **gin) {
    const int64_t *v = n->ip;
    kbl_tensor *x = n->inputs[0];
    gin[0] = kbl_avg_pool2d_backward(gy, x->shape + 2, v, v + 2, v + 4, (int)v[6]);
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
    int cip = count_include_pad != 0, nt = nthreads(g.planes * g.oh * g.ow * g.kh * g.kw);
    if (!out || (kbl_on_cuda(x) && pool_device(KBL_POOL_AVG, 0, &g, cip, in, out, NULL, 0, 0))) {
        kbl_release_n(2, in, out);
        return NULL;
    }
    if (!kbl_on_cuda(x)) KBL_FLOAT_CASES(x->dtype, AVGPOOL_FWD)
    kbl_tensor_release(in);
    pool_save(kbl_record(op, avgpool_backward, out, 1, &x), &g, cip);
    return out;
}

static int avgpool_bwd_backward(kbl_node *n, kbl_tensor *gg, kbl_tensor **gin) {
    const int64_t *v = n->ip;
    gin[0] = kbl_avg_pool2d(gg, v, v + 2, v + 4, (int)v[6]);
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
    int cip = count_include_pad != 0, nt = nthreads(g.planes * g.oh * g.ow * g.kh * g.kw);
    if (!out || (kbl_on_cuda(grad) && pool_device(KBL_POOL_AVG, 1, &g, cip, in, out, NULL, 0, 0))) {
        kbl_release_n(2, in, out);
        return NULL;
    }
    if (!kbl_on_cuda(grad)) KBL_FLOAT_CASES(grad->dtype, AVGPOOL_BWD)
    kbl_tensor_release(in);
    pool_save(kbl_record(op, avgpool_bwd_backward, out, 1, &grad), &g, cip);
    return out;
}

/* ---- adaptive_avg_pool2d ------------------------------------------------------------- */

/* output i of n over an input of size s covers [floor(i s / n), ceil((i + 1) s / n)) */
#define ADAPTIVE(T, BWD)                                                                      \
    do {                                                                                      \
        const T *ip = kbl_base(in);                                                           \
        T *op_ = kbl_base(out);                                                               \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                          \
        for (int64_t pl = 0; pl < planes; pl++) {                                             \
            const T *a = ip + pl * (BWD ? oh * ow : h * w);                                   \
            T *b = op_ + pl * (BWD ? h * w : oh * ow);                                        \
            if (BWD) memset(b, 0, sizeof(T) * (size_t)(h * w));                               \
            for (int64_t oy = 0; oy < oh; oy++)                                               \
                for (int64_t ox = 0; ox < ow; ox++) {                                         \
                    int64_t y0 = oy * h / oh, y1 = ((oy + 1) * h + oh - 1) / oh;              \
                    int64_t x0 = ox * w / ow, x1 = ((ox + 1) * w + ow - 1) / ow;              \
                    T div = (T)((y1 - y0) * (x1 - x0));                                       \
                    if (BWD) {                                                                \
                        T v = a[oy * ow + ox] / div;                                          \
                        for (int64_t iy = y0; iy < y1; iy++)                                  \
                            for (int64_t ix = x0; ix < x1; ix++) b[iy * w + ix] += v;          \
                    } else {                                                                  \
                        T s = 0;                                                              \
                        for (int64_t iy = y0; iy < y1; iy++)                                  \
                            for (int64_t ix = x0; ix < x1; ix++) s += a[iy * w + ix];         \
                        b[oy * ow + ox] = s / div;                                            \
                    }                                                                         \
                }                                                                             \
        }                                                                                     \
    } while (0)
#define ADAPTIVE_FWD(T) ADAPTIVE(T, 0)
#define ADAPTIVE_BWD(T) ADAPTIVE(T, 1)

/* One body for both directions: in [N, C, a, b] -> out [N, C, c, d]; bwd swaps roles. */
static kbl_tensor *adaptive_run(kbl_tensor *t, int64_t h, int64_t w, int64_t oh, int64_t ow, int bwd) {
    kbl_tensor *in = contiguous_nograd(t);
    int64_t os[4] = {t->shape[0], t->shape[1], bwd ? h : oh, bwd ? w : ow};
    kbl_tensor *out = in ? kbl_empty_on(t->device, 4, os, t->dtype) : NULL;
    if (out && kbl_on_cuda(out)) {
        pool_geom g = {t->shape[0] * t->shape[1], h, w, oh, ow, 0, 0, 0, 0, 0, 0};
        if (pool_device(KBL_POOL_ADAPTIVE_AVG, bwd, &g, 0, in, out, NULL, 0, 0)) kbl_tensor_release(out), out = NULL;
    } else if (out) {
        int64_t planes = t->shape[0] * t->shape[1];
        int nt = nthreads(planes * h * w);
        if (bwd) KBL_FLOAT_CASES(t->dtype, ADAPTIVE_BWD)
        else KBL_FLOAT_CASES(t->dtype, ADAPTIVE_FWD)
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

/* PyTorch's source index: floor(dst * scale) in float, at most in - 1 */
static inline int64_t nearest_src(int64_t dst, int64_t in, int64_t out, double scale) {
    float s = scale > 0 ? (float)scale : (float)in / (float)out;
    int64_t i = (int64_t)floorf((float)dst * s);
    return i < in - 1 ? i : in - 1;
}

#define UPSAMPLE(T, BWD)                                                                      \
    do {                                                                                      \
        const T *ip = kbl_base(in);                                                           \
        T *op_ = kbl_base(out);                                                               \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                          \
        for (int64_t pl = 0; pl < planes; pl++) {                                             \
            const T *a = ip + pl * (BWD ? oh * ow : h * w);                                   \
            T *b = op_ + pl * (BWD ? h * w : oh * ow);                                        \
            if (BWD) memset(b, 0, sizeof(T) * (size_t)(h * w));                               \
            for (int64_t oy = 0; oy < oh; oy++) {                                             \
                int64_t iy = nearest_src(oy, h, oh, sh);                                      \
                for (int64_t ox = 0; ox < ow; ox++) {                                         \
                    int64_t ix = cols[ox];                                                    \
                    if (BWD) b[iy * w + ix] += a[oy * ow + ox];                               \
                    else b[oy * ow + ox] = a[iy * w + ix];                                    \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)
#define UPSAMPLE_FWD(T) UPSAMPLE(T, 0)
#define UPSAMPLE_BWD(T) UPSAMPLE(T, 1)

static kbl_tensor *upsample_run(kbl_tensor *t, int64_t h, int64_t w, int64_t oh, int64_t ow, double sh, double sw,
                                int bwd) {
    kbl_tensor *in = contiguous_nograd(t);
    int64_t os[4] = {t->shape[0], t->shape[1], bwd ? h : oh, bwd ? w : ow};
    kbl_tensor *out = in ? kbl_empty_on(t->device, 4, os, t->dtype) : NULL;
    if (out && kbl_on_cuda(out)) {
        pool_geom g = {t->shape[0] * t->shape[1], h, w, oh, ow, 0, 0, 0, 0, 0, 0};
        if (pool_device(KBL_POOL_UPSAMPLE_NEAREST, bwd, &g, 0, in, out, NULL, sh, sw))
            kbl_tensor_release(out), out = NULL;
        kbl_tensor_release(in);
        return out;
    }
    int64_t *cols = out ? malloc(sizeof(int64_t) * (size_t)(ow > 0 ? ow : 1)) : NULL;
    if (cols) {
        for (int64_t ox = 0; ox < ow; ox++) cols[ox] = nearest_src(ox, w, ow, sw);
        int64_t planes = t->shape[0] * t->shape[1];
        int nt = nthreads(planes * oh * ow);
        if (bwd) KBL_FLOAT_CASES(t->dtype, UPSAMPLE_BWD)
        else KBL_FLOAT_CASES(t->dtype, UPSAMPLE_FWD)
    } else if (out) {
        kbl_fail("upsample_nearest2d: out of memory");
        kbl_tensor_release(out);
        out = NULL;
    }
    free(cols);
    kbl_tensor_release(in);
    return out;
}

static int upsample_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    gin[0] = kbl_upsample_nearest2d_backward(g, n->inputs[0]->shape + 2, n->p[0], n->p[1]);
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
    if (node) node->p[0] = scale_h, node->p[1] = scale_w;
    return y;
}

static int upsample_bwd_backward(kbl_node *n, kbl_tensor *gg, kbl_tensor **gin) {
    kbl_tensor *g = n->inputs[0];
    gin[0] = kbl_upsample_nearest2d(gg, g->shape[2], g->shape[3], n->p[0], n->p[1]);
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
    if (node) node->p[0] = scale_h, node->p[1] = scale_w;
    return dx;
}
