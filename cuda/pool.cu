/* pool.cu — 2-D pooling and resampling on [planes, h, w]: max pooling with
 * its argmax positions and their scatter backward, average pooling, adaptive
 * average pooling and nearest upsampling with their backward. kbl's max_pool2d
 * returns the positions its backward scatters to, which cuDNN's pooling does not
 * give, so these are kernels of their own, written as core/cpu/pool.c: one thread
 * per output (forward) or per input element (backward, gathering the outputs
 * that read it, in the CPU's order and without atomics; max pooling's backward
 * knows only the positions, so it scatters with atomics). */
#include <math.h>

#include "ops.cuh"

namespace kblcuda {

namespace {

#define FOR_EACH(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* core/cpu/pool.c's window: output o's rows [*a, *b), clipped to the input */
__device__ inline void window(int64_t o, int64_t s, int64_t p, int64_t k, int64_t size, int64_t *a, int64_t *b) {
    int64_t lo = o * s - p, hi = lo + k;
    *a = lo < 0 ? 0 : lo;
    *b = hi > size ? size : hi;
}

template <typename T>
__global__ void max_fwd(kbl_pool_desc d, const T *x, T *y, int64_t *idx) {
    FOR_EACH(i, d.planes * d.oh * d.ow) {
        int64_t ox = i % d.ow, oy = (i / d.ow) % d.oh, pl = i / (d.ow * d.oh);
        int64_t y0, y1, x0, x1;
        window(oy, d.sh, d.ph, d.kh, d.h, &y0, &y1);
        window(ox, d.sw, d.pw, d.kw, d.w, &x0, &x1);
        const T *src = x + pl * d.h * d.w;
        T m = src[y0 * d.w + x0];
        int64_t best = y0 * d.w + x0;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) {
                T v = src[iy * d.w + ix];
                if ((v > m || v != v) && m == m) m = v, best = iy * d.w + ix;
            }
        y[i] = m;
        idx[i] = best;
    }
}

__device__ inline void add_at(float *p, float v) { atomicAdd(p, v); }
__device__ inline void add_at(double *p, double v) { atomicAdd(p, v); }

template <typename T>
__global__ void max_bwd(kbl_pool_desc d, const T *g, T *dx, const int64_t *idx) {
    int64_t hw = d.h * d.w, ohw = d.oh * d.ow;
    FOR_EACH(i, d.planes * ohw) {
        int64_t j = idx[i];
        if (j >= 0 && j < hw) add_at(&dx[(i / ohw) * hw + j], g[i]);
    }
}

/* core/cpu/pool.c's avg_divisor */
__device__ inline int64_t avg_divisor(const kbl_pool_desc &g, int64_t oy, int64_t ox) {
    if (g.count_include_pad) {
        int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
        int64_t y1 = y0 + g.kh < g.h + g.ph ? y0 + g.kh : g.h + g.ph;
        int64_t x1 = x0 + g.kw < g.w + g.pw ? x0 + g.kw : g.w + g.pw;
        return (y1 - y0) * (x1 - x0);
    }
    int64_t a, b, c, e;
    window(oy, g.sh, g.ph, g.kh, g.h, &a, &b);
    window(ox, g.sw, g.pw, g.kw, g.w, &c, &e);
    return (b - a) * (e - c);
}

template <typename T>
__global__ void avg_fwd(kbl_pool_desc d, const T *x, T *y) {
    FOR_EACH(i, d.planes * d.oh * d.ow) {
        int64_t ox = i % d.ow, oy = (i / d.ow) % d.oh, pl = i / (d.ow * d.oh);
        int64_t y0, y1, x0, x1, div = avg_divisor(d, oy, ox);
        window(oy, d.sh, d.ph, d.kh, d.h, &y0, &y1);
        window(ox, d.sw, d.pw, d.kw, d.w, &x0, &x1);
        const T *src = x + pl * d.h * d.w;
        T s = 0;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) s += src[iy * d.w + ix];
        y[i] = div > 0 ? s / (T)div : (T)0;
    }
}

/* the outputs along one axis whose window holds input position i: [*lo, *hi] */
__device__ inline void covering(int64_t i, int64_t s, int64_t p, int64_t k, int64_t outn, int64_t *lo, int64_t *hi) {
    int64_t a = i + p - k + 1; /* o * s >= a */
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    int64_t b = (i + p) / s;   /* o * s <= i + p */
    *hi = b < outn - 1 ? b : outn - 1;
}

template <typename T>
__global__ void avg_bwd(kbl_pool_desc d, const T *g, T *dx) {
    FOR_EACH(i, d.planes * d.h * d.w) {
        int64_t ix = i % d.w, iy = (i / d.w) % d.h, pl = i / (d.w * d.h);
        int64_t oy0, oy1, ox0, ox1;
        covering(iy, d.sh, d.ph, d.kh, d.oh, &oy0, &oy1);
        covering(ix, d.sw, d.pw, d.kw, d.ow, &ox0, &ox1);
        const T *gp = g + pl * d.oh * d.ow;
        T s = 0;
        for (int64_t oy = oy0; oy <= oy1; oy++)
            for (int64_t ox = ox0; ox <= ox1; ox++) s += gp[oy * d.ow + ox] / (T)avg_divisor(d, oy, ox);
        dx[i] = s;
    }
}

template <typename T>
__global__ void adaptive_fwd(kbl_pool_desc d, const T *x, T *y) {
    FOR_EACH(i, d.planes * d.oh * d.ow) {
        int64_t ox = i % d.ow, oy = (i / d.ow) % d.oh, pl = i / (d.ow * d.oh);
        int64_t y0 = oy * d.h / d.oh, y1 = ((oy + 1) * d.h + d.oh - 1) / d.oh;
        int64_t x0 = ox * d.w / d.ow, x1 = ((ox + 1) * d.w + d.ow - 1) / d.ow;
        const T *src = x + pl * d.h * d.w;
        T s = 0;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) s += src[iy * d.w + ix];
        y[i] = s / (T)((y1 - y0) * (x1 - x0));
    }
}

template <typename T>
__global__ void adaptive_bwd(kbl_pool_desc d, const T *g, T *dx) {
    FOR_EACH(i, d.planes * d.h * d.w) {
        int64_t ix = i % d.w, iy = (i / d.w) % d.h, pl = i / (d.w * d.h);
        int64_t oylo = iy * d.oh / d.h - 1, oyhi = (iy + 1) * d.oh / d.h;
        int64_t oxlo = ix * d.ow / d.w - 1, oxhi = (ix + 1) * d.ow / d.w;
        const T *gp = g + pl * d.oh * d.ow;
        T s = 0;
        for (int64_t oy = oylo < 0 ? 0 : oylo; oy <= oyhi && oy < d.oh; oy++) {
            int64_t y0 = oy * d.h / d.oh, y1 = ((oy + 1) * d.h + d.oh - 1) / d.oh;
            if (iy < y0 || iy >= y1) continue;
            for (int64_t ox = oxlo < 0 ? 0 : oxlo; ox <= oxhi && ox < d.ow; ox++) {
                int64_t x0 = ox * d.w / d.ow, x1 = ((ox + 1) * d.w + d.ow - 1) / d.ow;
                if (ix < x0 || ix >= x1) continue;
                s += gp[oy * d.ow + ox] / (T)((y1 - y0) * (x1 - x0));
            }
        }
        dx[i] = s;
    }
}

/* core/cpu/pool.c's nearest_src, in float as there */
__device__ inline int64_t nearest_src(int64_t dst, int64_t in, int64_t out, double scale) {
    float s = scale > 0 ? (float)scale : (float)in / (float)out;
    int64_t i = (int64_t)floorf((float)dst * s);
    return i < in - 1 ? i : in - 1;
}

/* the first output along an axis that may read input i (a little before it) */
__device__ inline int64_t nearest_first(int64_t i, int64_t in, int64_t out, double scale) {
    float s = scale > 0 ? (float)scale : (float)in / (float)out;
    int64_t o = (int64_t)floorf((float)(i - 1) / s) - 1;
    return o < 0 ? 0 : o;
}

template <typename T>
__global__ void upsample_fwd(kbl_pool_desc d, const T *x, T *y) {
    FOR_EACH(i, d.planes * d.oh * d.ow) {
        int64_t ox = i % d.ow, oy = (i / d.ow) % d.oh, pl = i / (d.ow * d.oh);
        int64_t iy = nearest_src(oy, d.h, d.oh, d.scale_h), ix = nearest_src(ox, d.w, d.ow, d.scale_w);
        y[i] = x[pl * d.h * d.w + iy * d.w + ix];
    }
}

template <typename T>
__global__ void upsample_bwd(kbl_pool_desc d, const T *g, T *dx) {
    FOR_EACH(i, d.planes * d.h * d.w) {
        int64_t ix = i % d.w, iy = (i / d.w) % d.h, pl = i / (d.w * d.h);
        const T *gp = g + pl * d.oh * d.ow;
        T s = 0;
        int64_t ox0 = nearest_first(ix, d.w, d.ow, d.scale_w);
        for (int64_t oy = nearest_first(iy, d.h, d.oh, d.scale_h); oy < d.oh; oy++) {
            int64_t sy = nearest_src(oy, d.h, d.oh, d.scale_h);
            if (sy > iy) break;
            if (sy < iy) continue;
            for (int64_t ox = ox0; ox < d.ow; ox++) {
                int64_t sx = nearest_src(ox, d.w, d.ow, d.scale_w);
                if (sx > ix) break;
                if (sx == ix) s += gp[oy * d.ow + ox];
            }
        }
        dx[i] = s;
    }
}

template <typename T> int run(const kbl_pool_desc *d) {
    int64_t nout = d->planes * d->oh * d->ow, nin = d->planes * d->h * d->w;
    const T *in = (const T *)d->in;
    T *out = (T *)d->out;
    cudaStream_t st = stream();
    switch (d->kind) {
    case KBL_POOL_MAX:
        if (!d->backward) {
            max_fwd<T><<<blocks_for(nout), 256, 0, st>>>(*d, in, out, d->indices);
        } else {
            KBL_CU(cudaMemsetAsync(out, 0, (size_t)nin * sizeof(T), st));
            max_bwd<T><<<blocks_for(nout), 256, 0, st>>>(*d, in, out, d->indices);
        }
        break;
    case KBL_POOL_AVG:
        if (!d->backward) avg_fwd<T><<<blocks_for(nout), 256, 0, st>>>(*d, in, out);
        else avg_bwd<T><<<blocks_for(nin), 256, 0, st>>>(*d, in, out);
        break;
    case KBL_POOL_ADAPTIVE_AVG:
        if (!d->backward) adaptive_fwd<T><<<blocks_for(nout), 256, 0, st>>>(*d, in, out);
        else adaptive_bwd<T><<<blocks_for(nin), 256, 0, st>>>(*d, in, out);
        break;
    default:
        if (!d->backward) upsample_fwd<T><<<blocks_for(nout), 256, 0, st>>>(*d, in, out);
        else upsample_bwd<T><<<blocks_for(nin), 256, 0, st>>>(*d, in, out);
        break;
    }
    KBL_LAUNCHED("pooling");
    return 0;
}

}  // namespace

int pool(const kbl_pool_desc *d) {
    if (d->planes == 0) return 0;
    return d->dtype == KBL_FLOAT32 ? run<float>(d) : run<double>(d);
}

}  // namespace kblcuda
