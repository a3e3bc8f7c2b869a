/* conv.c — 2-D convolution (conv2d), its two adjoints (the gradient with respect
 * to the input, which is also conv_transpose2d, and to the weight), each lowered
 * to OpenBLAS GEMM through im2col/col2im. Images go in chunks so the column
 * workspace, from the caching allocator, stays a few megabytes; the copies run
 * over OpenMP threads and every GEMM is called outside our parallel regions. */
#include "internal.h"

#include <cblas.h>

/* Bytes of im2col columns per chunk of images. On one thread, small enough to stay
 * in cache between im2col and GEMM (1 to 6 MB measured alike on bench/conv.lua's
 * conv, 16 MB and more 10-30% slower). On more, each GEMM call costs OpenBLAS a
 * round of thread synchronization, ruinous on a busy machine (2 MB chunks ran 10x
 * slower than whole-batch GEMMs there), so chunks grow with the thread count. */
#define COL_BUDGET_ONE ((int64_t)2 << 20)
#define COL_BUDGET_PER_THREAD ((int64_t)8 << 20)

/* stride (h, w), pads (top, bottom, left, right), dilation (h, w), groups */
typedef kbl_conv_opts conv_opts;   /* internal.h: conv_cuda.c takes it too */

/* x [n, c, h, w] and y [n, o, oh, ow] related by a weight [o, c/groups, kh, kw]. */
typedef struct conv_geom {
    int64_t n, c, h, w, o, oh, ow, kh, kw;
    int64_t sh, sw, pt, pl, dh, dw, groups;
    int64_t cg, og, k, ohw; /* channels per group in and out, GEMM depth, output plane */
} conv_geom;

static conv_geom geom_make(const int64_t *xs, int64_t o, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                           const conv_opts *op) {
    conv_geom g = {.n = xs[0], .c = xs[1], .h = xs[2], .w = xs[3], .o = o, .oh = oh, .ow = ow,
                   .kh = kh, .kw = kw, .sh = op->stride[0], .sw = op->stride[1], .pt = op->pad[0],
                   .pl = op->pad[2], .dh = op->dil[0], .dw = op->dil[1], .groups = op->groups};
    g.cg = g.c / g.groups;
    g.og = g.o / g.groups;
    g.k = g.cg * kh * kw;
    g.ohw = oh * ow;
    return g;
}

/* conv2d's output size along one axis, or < 1 when the kernel does not fit. */
static int64_t out_size(int64_t in, int64_t pa, int64_t pb, int64_t k, int64_t s, int64_t d) {
    int64_t span = d * (k - 1) + 1, padded = in + pa + pb;
    return padded < span ? 0 : (padded - span) / s + 1;
}

static void opts_save(kbl_node *n, const conv_opts *o) {
    if (!n) return;
    int64_t v[9] = {o->stride[0], o->stride[1], o->pad[0], o->pad[1], o->pad[2], o->pad[3],
                    o->dil[0], o->dil[1], o->groups};
    memcpy(n->ip, v, sizeof v);
    n->nip = 9;
}

static conv_opts opts_load(const kbl_node *n) {
    const int64_t *v = n->ip;
    return (conv_opts){{v[0], v[1]}, {v[2], v[3], v[4], v[5]}, {v[6], v[7]}, v[8]};
}

/* Images per chunk: as many as the workspace budget allows, balanced over chunks. */
static int64_t chunk_images(const conv_geom *g, size_t es) {
    int64_t per = g->k * g->ohw * (int64_t)es;
    int nt = kbl_threads();
    int64_t budget = nt > 1 ? COL_BUDGET_PER_THREAD * nt : COL_BUDGET_ONE;
    int64_t b = per > 0 ? budget / per : g->n;
    if (b < 1) b = 1;
    if (b > g->n) b = g->n;
    int64_t chunks = (g->n + b - 1) / b;
    return chunks > 0 ? (g->n + chunks - 1) / chunks : 1;
}

/* The range [*lo, *hi) of output columns whose input column ox*s + off lies in [0, size). */
static void valid_range(int64_t off, int64_t s, int64_t size, int64_t outn, int64_t *lo, int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = size - off > 0 ? (size - off + s - 1) / s : 0;
    if (b > outn) b = outn;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

/* The kernels, once per float type (each works on a private copy of the geometry:
 * the build's -fno-strict-aliasing would otherwise reload it after every store):
 * im2col: col [k, nb*ohw] from images n0.. of x, channels c0..c0+cg
 * col2im: the adjoint, planes of dx [n, c, h, w] overwritten with the sums
 * to_planes: y[n0+b, c0+o, :] = tmp[o, b*ohw + :] (+ bias[c0+o]); from_planes: its inverse */
#define CONV_KERNELS(T)                                                                         \
    static void im2col_##T(const conv_geom *gg, const T *x, int64_t n0, int64_t nb, int64_t c0,  \
                           T *col) {                                                            \
        conv_geom G = *gg; /* a local copy: stores through T * cannot alias it */   \
        if (!x || !col) return;                                                     \
        int64_t ld = nb * G.ohw, rows = G.k, hw = G.h * G.w;                                \
        int nt = rows * ld >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;                           \
        _Pragma("omp parallel for collapse(2) num_threads(nt) schedule(static) firstprivate(G)") \
        for (int64_t r = 0; r < rows; r++)                                                      \
            for (int64_t b = 0; b < nb; b++) {                                                  \
                int64_t c = r / (G.kh * G.kw), i = (r / G.kw) % G.kh, j = r % G.kw;        \
                const T *xp = x + ((n0 + b) * G.c + c0 + c) * hw;                              \
                T *cp = col + r * ld + b * G.ohw;                                              \
                int64_t ioff = i * G.dh - G.pt, joff = j * G.dw - G.pl, lo, hi;             \
                valid_range(joff, G.sw, G.w, G.ow, &lo, &hi);                                \
                for (int64_t oy = 0; oy < G.oh; oy++, cp += G.ow) {                           \
                    int64_t iy = oy * G.sh + ioff;                                             \
                    if (iy < 0 || iy >= G.h) {                                                 \
                        memset(cp, 0, sizeof(T) * (size_t)G.ow);                               \
                        continue;                                                               \
                    }                                                                           \
                    const T *row = xp + iy * G.w + joff;                                       \
                    for (int64_t ox = 0; ox < lo; ox++) cp[ox] = 0;                             \
                    if (G.sw == 1) memcpy(cp + lo, row + lo, sizeof(T) * (size_t)(hi - lo));   \
                    else for (int64_t ox = lo; ox < hi; ox++) cp[ox] = row[ox * G.sw];         \
                    for (int64_t ox = hi; ox < G.ow; ox++) cp[ox] = 0;                         \
                }                                                                               \
            }                                                                                   \
    }                                                                                           \
    static void col2im_##T(const conv_geom *gg, const T *col, int64_t n0, int64_t nb, int64_t c0, \
                           T *dx) {                                                             \
        conv_geom G = *gg; /* a local copy: stores through T * cannot alias it */   \
        if (!col || !dx) return;                                                    \
        int64_t ld = nb * G.ohw, hw = G.h * G.w, kk = G.kh * G.kw;                         \
        int nt = G.k * ld >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;                           \
        _Pragma("omp parallel for collapse(2) num_threads(nt) schedule(static) firstprivate(G)") \
        for (int64_t b = 0; b < nb; b++)                                                        \
            for (int64_t c = 0; c < G.cg; c++) {                                               \
                T *xp = dx + ((n0 + b) * G.c + c0 + c) * hw;                                   \
                memset(xp, 0, sizeof(T) * (size_t)hw);                                          \
                for (int64_t ij = 0; ij < kk; ij++) {                                           \
                    int64_t i = ij / G.kw, j = ij % G.kw, lo, hi;                             \
                    const T *cp = col + (c * kk + ij) * ld + b * G.ohw;                        \
                    int64_t ioff = i * G.dh - G.pt, joff = j * G.dw - G.pl;                 \
                    valid_range(joff, G.sw, G.w, G.ow, &lo, &hi);                            \
                    for (int64_t oy = 0; oy < G.oh; oy++, cp += G.ow) {                       \
                        int64_t iy = oy * G.sh + ioff;                                         \
                        if (iy < 0 || iy >= G.h) continue;                                     \
                        T *row = xp + iy * G.w + joff;                                         \
                        if (G.sw == 1)                                                         \
                            for (int64_t ox = lo; ox < hi; ox++) row[ox] += cp[ox];             \
                        else                                                                    \
                            for (int64_t ox = lo; ox < hi; ox++) row[ox * G.sw] += cp[ox];     \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
    }                                                                                           \
    static void to_planes_##T(const conv_geom *gg, const T *tmp, const T *bias, int64_t n0,      \
                              int64_t nb, int64_t c0, T *y) {                                   \
        conv_geom G = *gg; /* a local copy: stores through T * cannot alias it */   \
        if (!tmp || !y) return;                                                     \
        int64_t ld = nb * G.ohw;                                                               \
        int nt = G.og * ld >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;                          \
        _Pragma("omp parallel for collapse(2) num_threads(nt) schedule(static) firstprivate(G)") \
        for (int64_t b = 0; b < nb; b++)                                                        \
            for (int64_t o = 0; o < G.og; o++) {                                               \
                const T *src = tmp + o * ld + b * G.ohw;                                       \
                T *dst = y + ((n0 + b) * G.o + c0 + o) * G.ohw;                               \
                T bv = bias ? bias[c0 + o] : 0;                                                 \
                for (int64_t p = 0; p < G.ohw; p++) dst[p] = src[p] + bv;                      \
            }                                                                                   \
    }                                                                                           \
    static void from_planes_##T(const conv_geom *gg, const T *y, int64_t n0, int64_t nb,         \
                                int64_t c0, T *tmp) {                                           \
        conv_geom G = *gg; /* a local copy: stores through T * cannot alias it */   \
        if (!tmp || !y) return;                                                     \
        int64_t ld = nb * G.ohw;                                                               \
        int nt = G.og * ld >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;                          \
        _Pragma("omp parallel for collapse(2) num_threads(nt) schedule(static) firstprivate(G)") \
        for (int64_t b = 0; b < nb; b++)                                                        \
            for (int64_t o = 0; o < G.og; o++)                                                 \
                memcpy(tmp + o * ld + b * G.ohw, y + ((n0 + b) * G.o + c0 + o) * G.ohw,      \
                       sizeof(T) * (size_t)G.ohw);                                             \
    }

CONV_KERNELS(float)
CONV_KERNELS(double)

static void im2col(int dt, const conv_geom *g, const void *x, int64_t n0, int64_t nb, int64_t c0, void *col) {
    dt == KBL_FLOAT32 ? im2col_float(g, x, n0, nb, c0, col) : im2col_double(g, x, n0, nb, c0, col);
}
static void col2im(int dt, const conv_geom *g, const void *col, int64_t n0, int64_t nb, int64_t c0, void *dx) {
    dt == KBL_FLOAT32 ? col2im_float(g, col, n0, nb, c0, dx) : col2im_double(g, col, n0, nb, c0, dx);
}
static void to_planes(int dt, const conv_geom *g, const void *tmp, const void *bias, int64_t n0, int64_t nb,
                      int64_t c0, void *y) {
    dt == KBL_FLOAT32 ? to_planes_float(g, tmp, bias, n0, nb, c0, y) : to_planes_double(g, tmp, bias, n0, nb, c0, y);
}
static void from_planes(int dt, const conv_geom *g, const void *y, int64_t n0, int64_t nb, int64_t c0, void *tmp) {
    dt == KBL_FLOAT32 ? from_planes_float(g, y, n0, nb, c0, tmp) : from_planes_double(g, y, n0, nb, c0, tmp);
}

/* c[m, n] = op(a) · op(b) + beta c, row-major, element offsets already applied */
static void gemm(int dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                 const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
    CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (dt == KBL_FLOAT32)
        cblas_sgemm(CblasRowMajor, TA, TB, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb,
                    (float)beta, c, (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, TA, TB, (int)m, (int)n, (int)k, 1.0, a, (int)lda, b, (int)ldb, beta, c,
                    (int)ldc);
}

static kbl_tensor *contiguous_nograd(kbl_tensor *t) {
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *c = kbl_contiguous(t);
    kbl_set_grad_enabled(prev);
    return c;
}

/* Two workspaces from the caching allocator, released together. */
typedef struct workspace { void *col, *tmp; int64_t col_bytes, tmp_bytes; } workspace;

static int ws_get(workspace *ws, const conv_geom *g, int64_t nb, size_t es, bool need_tmp) {
    ws->col_bytes = g->k * nb * g->ohw * (int64_t)es;
    ws->tmp_bytes = need_tmp ? g->og * nb * g->ohw * (int64_t)es : 0;
    ws->col = ws->col_bytes ? kbl_alloc(ws->col_bytes) : NULL;
    ws->tmp = ws->tmp_bytes ? kbl_alloc(ws->tmp_bytes) : NULL;
    if ((ws->col_bytes && !ws->col) || (ws->tmp_bytes && !ws->tmp)) {
        kbl_free(ws->col, ws->col_bytes);
        kbl_free(ws->tmp, ws->tmp_bytes);
        return -1;
    }
    return 0;
}

static void ws_put(workspace *ws) {
    kbl_free(ws->col, ws->col_bytes);
    kbl_free(ws->tmp, ws->tmp_bytes);
}

/* ---- the three lowered kernels (no checks, no recording) ---------------------- */

/* y [n, o, oh, ow] = conv(x, w) + bias, for the given output size */
static kbl_tensor *conv_forward(kbl_tensor *x, kbl_tensor *w, kbl_tensor *bias, const conv_opts *op,
                                int64_t oh, int64_t ow) {
    if (kbl_on_cuda(x)) return kbl_conv_cuda_forward(x, w, bias, op, oh, ow);
    conv_geom g = geom_make(x->shape, w->shape[0], w->shape[2], w->shape[3], oh, ow, op);
    int dt = x->dtype;
    size_t es = kbl_dtype_size(dt);
    kbl_tensor *xc = contiguous_nograd(x), *wc = contiguous_nograd(w);
    kbl_tensor *bc = bias ? contiguous_nograd(bias) : NULL;
    kbl_tensor *y = xc && wc && (bc || !bias) ? kbl_empty(4, (int64_t[]){g.n, g.o, oh, ow}, dt) : NULL;
    int64_t nb = chunk_images(&g, es);
    workspace ws = {0};
    if (!y || kbl_numel(y) == 0) goto done;
    if (ws_get(&ws, &g, nb, es, true)) {
        kbl_tensor_release(y);
        y = NULL;
        goto done;
    }
    const char *xp = kbl_base(xc), *wp = kbl_base(wc);
    const void *bp = bc ? kbl_base(bc) : NULL;
    for (int64_t gr = 0; gr < g.groups; gr++)
        for (int64_t n0 = 0; n0 < g.n; n0 += nb) {
            int64_t m = g.n - n0 < nb ? g.n - n0 : nb, cols = m * g.ohw;
            if (g.k > 0) {
                im2col(dt, &g, xp, n0, m, gr * g.cg, ws.col);
                gemm(dt, false, false, g.og, cols, g.k, wp + (size_t)(gr * g.og * g.k) * es, g.k, ws.col, cols, 0,
                     ws.tmp, cols);
            } else {
                memset(ws.tmp, 0, (size_t)(g.og * cols) * es);
            }
            to_planes(dt, &g, ws.tmp, bp, n0, m, gr * g.og, kbl_base(y));
        }
    ws_put(&ws);
done:
    kbl_release_n(3, xc, wc, bc);
    return y;
}

/* The gradients of y = conv(x, w) from gy [n, o, oh, ow]: dx [n, c, h, w] (when
 * dx != NULL; needs w) and dw [o, c/groups, kh, kw] (when dw != NULL; needs x).
 * xs is x's shape. Both in one pass when both are asked: each chunk of gy is
 * gathered once, and the columns of x feed dw's GEMM before dx's GEMM reuses them. */
static int conv_grads(kbl_tensor *gy, kbl_tensor *x, const int64_t *xs, kbl_tensor *w, int64_t kh, int64_t kw,
                      const conv_opts *op, kbl_tensor **dx, kbl_tensor **dw) {
    if (kbl_on_cuda(gy)) return kbl_conv_cuda_grads(gy, x, xs, w, kh, kw, op, dx, dw);
    conv_geom g = geom_make(xs, gy->shape[1], kh, kw, gy->shape[2], gy->shape[3], op);
    int dt = gy->dtype;
    size_t es = kbl_dtype_size(dt);
    bool want_dx = dx != NULL, want_dw = dw != NULL;
    kbl_tensor *gc = contiguous_nograd(gy), *xc = want_dw ? contiguous_nograd(x) : NULL;
    kbl_tensor *wc = want_dx ? contiguous_nograd(w) : NULL;
    kbl_tensor *rx = NULL, *rw = NULL;
    int rc = -1;
    if (!gc || (want_dw && !xc) || (want_dx && !wc)) goto done;
    if (want_dx && !(rx = kbl_empty(4, xs, dt))) goto done;
    if (want_dw && !(rw = kbl_empty(4, (int64_t[]){g.o, g.cg, kh, kw}, dt))) goto done;
    if (g.ohw == 0 || g.og == 0 || g.n == 0 || g.k == 0) { /* nothing flows: zeros */
        if ((rx && kbl_fill_(rx, 0)) || (rw && kbl_fill_(rw, 0))) goto done;
        rc = 0;
        goto done;
    }
    int64_t nb = chunk_images(&g, es);
    workspace ws = {0};
    if (ws_get(&ws, &g, nb, es, nb > 1)) goto done;
    const char *gp = kbl_base(gc), *xp = xc ? kbl_base(xc) : NULL, *wp = wc ? kbl_base(wc) : NULL;
    char *dwp = rw ? kbl_base(rw) : NULL;
    for (int64_t gr = 0; gr < g.groups; gr++)
        for (int64_t n0 = 0; n0 < g.n; n0 += nb) {
            int64_t m = g.n - n0 < nb ? g.n - n0 : nb, cols = m * g.ohw;
            /* gy's chunk as [og, cols]: in place when the chunk is one image */
            const void *src = gp + (size_t)((n0 * g.o + gr * g.og) * g.ohw) * es;
            if (ws.tmp) {
                from_planes(dt, &g, gp, n0, m, gr * g.og, ws.tmp);
                src = ws.tmp;
            }
            if (want_dw) {
                im2col(dt, &g, xp, n0, m, gr * g.cg, ws.col);
                gemm(dt, false, true, g.og, g.k, cols, src, cols, ws.col, cols, n0 == 0 ? 0 : 1,
                     dwp + (size_t)(gr * g.og * g.k) * es, g.k);
            }
            if (want_dx) {
                gemm(dt, true, false, g.k, cols, g.og, wp + (size_t)(gr * g.og * g.k) * es, g.k, src, cols, 0,
                     ws.col, cols);
                col2im(dt, &g, ws.col, n0, m, gr * g.cg, kbl_base(rx));
            }
        }
    ws_put(&ws);
    rc = 0;
done:
    kbl_release_n(3, gc, xc, wc);
    if (rc) {
        kbl_release_n(2, rx, rw);
        rx = rw = NULL;
    }
    if (dx) *dx = rx;
    if (dw) *dw = rw;
    return rc;
}

/* dx [n, c, h, w] from gy [n, o, oh, ow] and w [o, c/groups, kh, kw] */
static kbl_tensor *conv_input_grad(kbl_tensor *gy, kbl_tensor *w, const conv_opts *op, int64_t h, int64_t wd) {
    int64_t xs[4] = {gy->shape[0], w->shape[1] * op->groups, h, wd};
    kbl_tensor *dx = NULL;
    conv_grads(gy, NULL, xs, w, w->shape[2], w->shape[3], op, &dx, NULL);
    return dx;
}

/* dw [o, c/groups, kh, kw] from gy [n, o, oh, ow] and x [n, c, h, w] */
static kbl_tensor *conv_weight_grad(kbl_tensor *gy, kbl_tensor *x, const conv_opts *op, int64_t kh, int64_t kw) {
    kbl_tensor *dw = NULL;
    conv_grads(gy, x, x->shape, NULL, kh, kw, op, NULL, &dw);
    return dw;
}

#define BIAS_GRAD(T)                                                                            \
    do {                                                                                        \
        const T *gp = kbl_base(gc);                                                             \
        T *bp = kbl_base(gb);                                                                   \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                            \
        for (int64_t ch = 0; ch < c; ch++) {                                                    \
            double acc = 0;                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                   \
                const T *p = gp + (i * c + ch) * hw;                                            \
                T s = 0;                                                                        \
                for (int64_t j = 0; j < hw; j++) s += p[j];                                     \
                acc += (double)s;                                                               \
            }                                                                                   \
            bp[ch] = (T)acc;                                                                    \
        }                                                                                       \
    } while (0)

/* The bias gradient: gy [n, c, oh, ow] summed to [c] (each plane in T, planes in double). */
static kbl_tensor *bias_grad(kbl_tensor *gy) {
    if (kbl_on_cuda(gy)) { /* a reduction like any other there */
        int prev = kbl_set_grad_enabled(0);
        kbl_tensor *r = kbl_sum(gy, 3, (int[]){0, 2, 3}, 0);
        kbl_set_grad_enabled(prev);
        return r;
    }
    kbl_tensor *gc = contiguous_nograd(gy);
    int64_t n = gy->shape[0], c = gy->shape[1], hw = gy->shape[2] * gy->shape[3];
    kbl_tensor *gb = gc ? kbl_empty(1, &c, gy->dtype) : NULL;
    if (gb) {
        int nt = n * c * hw >= KBL_PARALLEL_GRAIN && c > 1 ? kbl_threads() : 1;
        KBL_FLOAT_CASES(gy->dtype, BIAS_GRAD)
    }
    kbl_tensor_release(gc);
    return gb;
}

/* ---- argument checks ----------------------------------------------------------- */

static int check_opts(const char *op, const conv_opts *o) {
    if (o->stride[0] < 1 || o->stride[1] < 1)
        return kbl_fail("%s: stride must be at least 1, got (%lld, %lld)", op, (long long)o->stride[0],
                        (long long)o->stride[1]);
    if (o->dil[0] < 1 || o->dil[1] < 1)
        return kbl_fail("%s: dilation must be at least 1, got (%lld, %lld)", op, (long long)o->dil[0],
                        (long long)o->dil[1]);
    for (int i = 0; i < 4; i++)
        if (o->pad[i] < 0) return kbl_fail("%s: padding must not be negative, got %lld", op, (long long)o->pad[i]);
    if (o->groups < 1) return kbl_fail("%s: groups must be at least 1, got %lld", op, (long long)o->groups);
    return 0;
}

static conv_opts opts_of(const int64_t *stride, const int64_t *padding, const int64_t *dilation, int64_t groups) {
    conv_opts o = {{1, 1}, {0, 0, 0, 0}, {1, 1}, groups};
    if (stride) o.stride[0] = stride[0], o.stride[1] = stride[1];
    if (padding) memcpy(o.pad, padding, sizeof o.pad);
    if (dilation) o.dil[0] = dilation[0], o.dil[1] = dilation[1];
    return o;
}

/* The tensors are present, 4-D (bias 1-D), one float dtype. */
static int check_tensors(const char *op, const kbl_tensor *x, const char *xname, const kbl_tensor *w,
                         const char *wname, const kbl_tensor *b) {
    if (kbl_check_dev(op, x, xname) || kbl_check_dev(op, w, wname) || (b && kbl_check_dev(op, b, "bias")) ||
        kbl_check_same_device(op, x, w) || (b && kbl_check_same_device(op, x, b)))
        return -1;
    char s1[96], s2[96];
    if (x->ndim != 4)
        return kbl_fail("%s: %s must be 4-D [N, C, H, W], got %s", op, xname, kbl_describe(x, s1, 96));
    if (w->ndim != 4)
        return kbl_fail("%s: %s must be 4-D, got %s", op, wname, kbl_describe(w, s1, 96));
    if (!kbl_is_float(x->dtype) || x->dtype != w->dtype || (b && b->dtype != x->dtype))
        return kbl_fail("%s: %s %s and %s %s must share one float dtype", op, xname, kbl_describe(x, s1, 96),
                        wname, kbl_describe(w, s2, 96));
    return 0;
}

static int check_bias(const char *op, const kbl_tensor *b, int64_t channels, const kbl_tensor *w) {
    if (b && (b->ndim != 1 || b->shape[0] != channels)) {
        char s1[96], s2[96];
        return kbl_fail("%s: bias %s must be [%lld], one value per output channel of weight %s", op,
                        kbl_describe(b, s1, 96), (long long)channels, kbl_describe(w, s2, 96));
    }
    return 0;
}

/* x's channels against weight [o, c/groups, ...]; o divisible by groups */
static int check_channels(const char *op, const kbl_tensor *x, int64_t xc, const kbl_tensor *w, int64_t wo,
                          int64_t wi, int64_t groups, const char *layout) {
    char s1[96], s2[96];
    if (xc % groups)
        return kbl_fail("%s: input %s has %lld channels, not divisible by groups = %lld", op,
                        kbl_describe(x, s1, 96), (long long)xc, (long long)groups);
    if (wo % groups)
        return kbl_fail("%s: weight %s has %lld output channels, not divisible by groups = %lld", op,
                        kbl_describe(w, s1, 96), (long long)wo, (long long)groups);
    if (wi != xc / groups)
        return kbl_fail("%s: input %s has %lld channels but weight %s (%s) expects %lld = %lld x groups %lld",
                        op, kbl_describe(x, s1, 96), (long long)xc, kbl_describe(w, s2, 96), layout,
                        (long long)(wi * groups), (long long)wi, (long long)groups);
    return 0;
}

/* ---- conv2d ---------------------------------------------------------------------- */

static int conv2d_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *x = n->inputs[0], *w = n->inputs[1], *b = n->ninputs > 2 ? n->inputs[2] : NULL;
    conv_opts o = opts_load(n);
    bool gx = kbl_needs_grad(x), gw = kbl_needs_grad(w);
    if ((gx || gw) && conv_grads(g, x, x->shape, w, w->shape[2], w->shape[3], &o, gx ? &gin[0] : NULL,
                                 gw ? &gin[1] : NULL))
        return -1;
    if (kbl_needs_grad(b) && !(gin[2] = bias_grad(g))) return -1;
    return 0;
}

kbl_tensor *kbl_conv2d(kbl_tensor *x, kbl_tensor *w, kbl_tensor *b, const int64_t *stride, const int64_t *padding,
                       const int64_t *dilation, int64_t groups) {
    const char *op = "conv2d";
    conv_opts o = opts_of(stride, padding, dilation, groups);
    if (check_tensors(op, x, "input", w, "weight [out, in/groups, kh, kw]", b) || check_opts(op, &o) ||
        check_channels(op, x, x->shape[1], w, w->shape[0], w->shape[1], o.groups, "[out, in/groups, kh, kw]") ||
        check_bias(op, b, w->shape[0], w))
        return NULL;
    int64_t oh = out_size(x->shape[2], o.pad[0], o.pad[1], w->shape[2], o.stride[0], o.dil[0]);
    int64_t ow = out_size(x->shape[3], o.pad[2], o.pad[3], w->shape[3], o.stride[1], o.dil[1]);
    if (oh < 1 || ow < 1) {
        char s1[96], s2[96];
        kbl_fail("conv2d: kernel %lldx%lld (dilation %lldx%lld) is larger than the padded input: input %s, "
                 "padding (%lld, %lld, %lld, %lld), weight %s",
                 (long long)w->shape[2], (long long)w->shape[3], (long long)o.dil[0], (long long)o.dil[1],
                 kbl_describe(x, s1, 96), (long long)o.pad[0], (long long)o.pad[1], (long long)o.pad[2],
                 (long long)o.pad[3], kbl_describe(w, s2, 96));
        return NULL;
    }
    kbl_tensor *y = conv_forward(x, w, b, &o, oh, ow);
    kbl_tensor *in[3] = {x, w, b};
    opts_save(kbl_record(op, conv2d_backward, y, b ? 3 : 2, in), &o);
    return y;
}

/* ---- conv2d_backward_input, which is conv_transpose2d ----------------------------- */

/* y = conv_input_grad(x, w): dx = conv(dy, w) cropped to x's size; dw = the weight
 * gradient of a conv of dy by w whose output gradient is x */
static int transpose_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *x = n->inputs[0], *w = n->inputs[1], *b = n->ninputs > 2 ? n->inputs[2] : NULL;
    conv_opts o = opts_load(n);
    if (kbl_needs_grad(x) && !(gin[0] = conv_forward(g, w, NULL, &o, x->shape[2], x->shape[3]))) return -1;
    if (kbl_needs_grad(w) && !(gin[1] = conv_weight_grad(x, g, &o, w->shape[2], w->shape[3]))) return -1;
    if (kbl_needs_grad(b) && !(gin[2] = bias_grad(g))) return -1;
    return 0;
}

/* The shared body: x [n, o, ih, iw] (the conv's output side), w [o, c/groups, kh, kw],
 * result [n, c, h, w]; the conv of the result must give at least ih x iw. */
static kbl_tensor *transpose_impl(const char *op, kbl_tensor *x, kbl_tensor *w, kbl_tensor *b, const conv_opts *o,
                                  int64_t h, int64_t wd) {
    char s1[96], s2[96];
    if (x->shape[1] != w->shape[0]) {
        kbl_fail("%s: input %s has %lld channels but weight %s (layout [in, out/groups, kh, kw]) expects %lld", op,
                 kbl_describe(x, s1, 96), (long long)x->shape[1], kbl_describe(w, s2, 96), (long long)w->shape[0]);
        return NULL;
    }
    if (x->shape[1] % o->groups) {
        kbl_fail("%s: input %s has %lld channels, not divisible by groups = %lld", op, kbl_describe(x, s1, 96),
                 (long long)x->shape[1], (long long)o->groups);
        return NULL;
    }
    if (check_bias(op, b, w->shape[1] * o->groups, w)) return NULL;
    int64_t ch = out_size(h, o->pad[0], o->pad[1], w->shape[2], o->stride[0], o->dil[0]);
    int64_t cw = out_size(wd, o->pad[2], o->pad[3], w->shape[3], o->stride[1], o->dil[1]);
    if (h < 1 || wd < 1 || ch < x->shape[2] || cw < x->shape[3]) {
        kbl_fail("%s: input %s, weight %s, stride (%lld, %lld), padding (%lld, %lld, %lld, %lld) give no valid "
                 "output (%lld x %lld); the padding is too large for the kernel",
                 op, kbl_describe(x, s1, 96), kbl_describe(w, s2, 96), (long long)o->stride[0],
                 (long long)o->stride[1], (long long)o->pad[0], (long long)o->pad[1], (long long)o->pad[2],
                 (long long)o->pad[3], (long long)h, (long long)wd);
        return NULL;
    }
    kbl_tensor *y = conv_input_grad(x, w, o, h, wd);
    if (y && b) {
        int prev = kbl_set_grad_enabled(0);
        kbl_tensor *bv = kbl_view(b, 3, (int64_t[]){b->shape[0], 1, 1});
        int rc = bv ? kbl_add_(y, bv, 1.0) : -1;
        kbl_set_grad_enabled(prev);
        kbl_tensor_release(bv);
        if (rc) {
            kbl_tensor_release(y);
            return NULL;
        }
    }
    kbl_tensor *in[3] = {x, w, b};
    opts_save(kbl_record(op, transpose_backward, y, b ? 3 : 2, in), o);
    return y;
}

kbl_tensor *kbl_conv2d_backward_input(kbl_tensor *grad, kbl_tensor *weight, const int64_t *input_hw,
                                      const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                                      int64_t groups) {
    const char *op = "conv2d_backward_input";
    conv_opts o = opts_of(stride, padding, dilation, groups);
    if (check_tensors(op, grad, "grad", weight, "weight [out, in/groups, kh, kw]", NULL) || check_opts(op, &o))
        return NULL;
    return transpose_impl(op, grad, weight, NULL, &o, input_hw[0], input_hw[1]);
}

kbl_tensor *kbl_conv_transpose2d(kbl_tensor *x, kbl_tensor *w, kbl_tensor *b, const int64_t *stride,
                                 const int64_t *padding, const int64_t *output_padding, const int64_t *dilation,
                                 int64_t groups) {
    const char *op = "conv_transpose2d";
    conv_opts o = opts_of(stride, padding, dilation, groups);
    if (check_tensors(op, x, "input", w, "weight [in, out/groups, kh, kw]", b) || check_opts(op, &o)) return NULL;
    int64_t opad[2] = {output_padding ? output_padding[0] : 0, output_padding ? output_padding[1] : 0};
    for (int a = 0; a < 2; a++)
        if (opad[a] < 0 || (opad[a] >= o.stride[a] && opad[a] >= o.dil[a])) {
            kbl_fail("%s: output_padding (%lld, %lld) must be smaller than the stride (%lld, %lld) or the "
                     "dilation (%lld, %lld)",
                     op, (long long)opad[0], (long long)opad[1], (long long)o.stride[0], (long long)o.stride[1],
                     (long long)o.dil[0], (long long)o.dil[1]);
            return NULL;
        }
    int64_t h = (x->shape[2] - 1) * o.stride[0] - o.pad[0] - o.pad[1] + o.dil[0] * (w->shape[2] - 1) + opad[0] + 1;
    int64_t wd = (x->shape[3] - 1) * o.stride[1] - o.pad[2] - o.pad[3] + o.dil[1] * (w->shape[3] - 1) + opad[1] + 1;
    return transpose_impl(op, x, w, b, &o, h, wd);
}

/* ---- conv2d_backward_weight ---------------------------------------------------------- */

/* y = conv_weight_grad(g, x): d g = conv(x, dy); d x = conv_input_grad(g, dy) */
static int weight_grad_backward(kbl_node *n, kbl_tensor *gy, kbl_tensor **gin) {
    kbl_tensor *g = n->inputs[0], *x = n->inputs[1];
    conv_opts o = opts_load(n);
    if (kbl_needs_grad(g) && !(gin[0] = conv_forward(x, gy, NULL, &o, g->shape[2], g->shape[3]))) return -1;
    if (kbl_needs_grad(x) && !(gin[1] = conv_input_grad(g, gy, &o, x->shape[2], x->shape[3]))) return -1;
    return 0;
}

kbl_tensor *kbl_conv2d_backward_weight(kbl_tensor *grad, kbl_tensor *x, const int64_t *kernel_hw,
                                       const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                                       int64_t groups) {
    const char *op = "conv2d_backward_weight";
    conv_opts o = opts_of(stride, padding, dilation, groups);
    if (check_tensors(op, x, "input", grad, "grad", NULL) || check_opts(op, &o)) return NULL;
    char s1[96], s2[96];
    if (x->shape[1] % o.groups || grad->shape[1] % o.groups || grad->shape[0] != x->shape[0]) {
        kbl_fail("%s: input %s and grad %s: batch sizes must agree and both channel counts be divisible by "
                 "groups = %lld", op, kbl_describe(x, s1, 96), kbl_describe(grad, s2, 96), (long long)o.groups);
        return NULL;
    }
    int64_t oh = out_size(x->shape[2], o.pad[0], o.pad[1], kernel_hw[0], o.stride[0], o.dil[0]);
    int64_t ow = out_size(x->shape[3], o.pad[2], o.pad[3], kernel_hw[1], o.stride[1], o.dil[1]);
    if (kernel_hw[0] < 1 || kernel_hw[1] < 1 || oh < grad->shape[2] || ow < grad->shape[3]) {
        kbl_fail("%s: grad %s is larger than the output of a %lldx%lld conv over input %s", op,
                 kbl_describe(grad, s1, 96), (long long)kernel_hw[0], (long long)kernel_hw[1],
                 kbl_describe(x, s2, 96));
        return NULL;
    }
    kbl_tensor *dw = conv_weight_grad(grad, x, &o, kernel_hw[0], kernel_hw[1]);
    kbl_tensor *in[2] = {grad, x};
    opts_save(kbl_record(op, weight_grad_backward, dw, 2, in), &o);
    return dw;
}
