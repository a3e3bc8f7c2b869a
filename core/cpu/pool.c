/* pool.c — the CPU's 2-D pooling and resampling kernels on contiguous NCHW
 * planes (kbl_pool_desc in core/backend.h): max pooling with its argmax
 * positions and their scatter back, average and adaptive average pooling,
 * nearest upsampling, each forward and backward. Planes run over OpenMP threads. */
#include "cpu.h"
#include "dnnl.h"

#include <math.h>

static int nthreads(int64_t work) { return work >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1; }

/* Pooling windows: kernel, stride, padding (h, w); output size as PyTorch (no ceil mode). */
typedef struct pool_geom {
    int64_t planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
} pool_geom;

/* The window of output o along one axis, clipped to the input: [*a, *b). */
static inline void window(int64_t o, int64_t s, int64_t p, int64_t k, int64_t size, int64_t *a, int64_t *b) {
    int64_t lo = o * s - p, hi = lo + k;
    *a = lo < 0 ? 0 : lo;
    *b = hi > size ? size : hi;
}

/* Branch-free updates (the maxima of random data are unpredictable); a NaN wins,
 * as in PyTorch. 2x2 windows at stride 2 without padding get their own loop. */
#define MAXPOOL(T)                                                                            \
    do {                                                                                      \
        const T *xp = d->in;                                                           \
        T *yp = d->out;                                                                  \
        int64_t *ip = d->indices;                                                          \
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

#define MAXPOOL_BWD(T)                                                                        \
    do {                                                                                      \
        const T *gp = d->in;                                                           \
        T *dp = d->out;                                                                 \
        const int64_t *ip = d->indices;                                                     \
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
        const T *ip = d->in;                                                           \
        T *op_ = d->out;                                                               \
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

/* output i of n over an input of size s covers [floor(i s / n), ceil((i + 1) s / n)) */
#define ADAPTIVE(T, BWD)                                                                      \
    do {                                                                                      \
        const T *ip = d->in;                                                           \
        T *op_ = d->out;                                                               \
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

/* PyTorch's source index: floor(dst * scale) in float, at most in - 1 */
static inline int64_t nearest_src(int64_t dst, int64_t in, int64_t out, double scale) {
    float s = scale > 0 ? (float)scale : (float)in / (float)out;
    int64_t i = (int64_t)floorf((float)dst * s);
    return i < in - 1 ? i : in - 1;
}

#define UPSAMPLE(T, BWD)                                                                      \
    do {                                                                                      \
        const T *ip = d->in;                                                           \
        T *op_ = d->out;                                                               \
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

static int max_pool(const kbl_pool_desc *d) {
    pool_geom g = {d->planes, d->h, d->w, d->oh, d->ow, d->kh, d->kw, d->sh, d->sw, d->ph, d->pw};
    if (!d->backward) {
        int nt = nthreads(g.planes * g.oh * g.ow * g.kh * g.kw);
        KBL_FLOAT_CASES(d->dtype, MAXPOOL)
        return 0;
    }
    int64_t planes = d->planes, hw = d->h * d->w, ohw = d->oh * d->ow;
    int nt = nthreads(planes * (hw + ohw));
    KBL_FLOAT_CASES(d->dtype, MAXPOOL_BWD)
    return 0;
}

static int avg_pool(const kbl_pool_desc *d) {
    if (d->dtype == KBL_FLOAT32) return kbl_dnnl_avg_pool(d); /* measured faster: dnnl_pool.c */
    pool_geom g = {d->planes, d->h, d->w, d->oh, d->ow, d->kh, d->kw, d->sh, d->sw, d->ph, d->pw};
    int cip = d->count_include_pad, nt = nthreads(g.planes * g.oh * g.ow * g.kh * g.kw);
    if (d->dtype == KBL_FLOAT64) {
        if (d->backward) AVGPOOL_BWD(double);
        else AVGPOOL_FWD(double);
    }
    return 0;
}

static int adaptive(const kbl_pool_desc *d) {
    int64_t planes = d->planes, h = d->h, w = d->w, oh = d->oh, ow = d->ow;
    int nt = nthreads(planes * h * w);
    if (d->backward) KBL_FLOAT_CASES(d->dtype, ADAPTIVE_BWD)
    else KBL_FLOAT_CASES(d->dtype, ADAPTIVE_FWD)
    return 0;
}

static int upsample(const kbl_pool_desc *d) {
    int64_t planes = d->planes, h = d->h, w = d->w, oh = d->oh, ow = d->ow;
    double sh = d->scale_h;
    int64_t *cols = malloc(sizeof(int64_t) * (size_t)(ow > 0 ? ow : 1));
    if (!cols) return kbl_fail("upsample_nearest2d: out of memory");
    for (int64_t ox = 0; ox < ow; ox++) cols[ox] = nearest_src(ox, w, ow, d->scale_w);
    int nt = nthreads(planes * oh * ow);
    if (d->backward) KBL_FLOAT_CASES(d->dtype, UPSAMPLE_BWD)
    else KBL_FLOAT_CASES(d->dtype, UPSAMPLE_FWD)
    free(cols);
    return 0;
}

int kbl_cpu_pool(const kbl_pool_desc *d) {
    switch (d->kind) {
    case KBL_POOL_MAX: return max_pool(d);
    case KBL_POOL_AVG: return avg_pool(d);
    case KBL_POOL_ADAPTIVE_AVG: return adaptive(d);
    case KBL_POOL_UPSAMPLE_NEAREST: return upsample(d);
    default: return kbl_fail("cpu: unknown pooling kernel %d", d->kind);
    }
}
