/* optim.cu — the fused optimizer updates: one kernel updates a parameter and
 * its state in one pass, element for element the arithmetic of core/cpu/optim.c
 * (which documents each kind's fields of kbl_optim_update): the scalars are
 * cast to the element type first, as there. */
#include <math.h>

#include "ops.cuh"

namespace kblcuda {

namespace {

#define FOR_EACH(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

template <typename T>
__global__ void sgd(int64_t n, kbl_optim_update u) {
    T *p = (T *)u.p, *buf = (T *)u.s0;
    const T *g = (const T *)u.g;
    const T wd = (T)u.wd, mom = (T)u.c0, damp = (T)(1 - u.c1), nlr = (T)(-u.lr);
    const int mode = u.mode;
    FOR_EACH(i, n) {
        if (mode == 0) {
            p[i] = p[i] + (g[i] + p[i] * wd) * nlr;
        } else if (mode == 1 || mode == 3) {
            const T nes = mode == 3 ? mom : (T)0;
            T d = g[i] + p[i] * wd;
            buf[i] = d;
            p[i] = p[i] + (mode == 3 ? d + d * nes : d) * nlr;
        } else if (mode == 2) {
            T bi = buf[i] * mom + (g[i] + p[i] * wd) * damp;
            buf[i] = bi;
            p[i] = p[i] + bi * nlr;
        } else {
            T d = g[i] + p[i] * wd;
            T bi = buf[i] * mom + d * damp;
            buf[i] = bi;
            p[i] = p[i] + (d + bi * mom) * nlr;
        }
    }
}

template <typename T>
__global__ void adam(int64_t n, kbl_optim_update u) {
    T *p = (T *)u.p, *m = (T *)u.s0, *v = (T *)u.s1, *vmax = (T *)u.s2;
    const T *g = (const T *)u.g;
    const T b1 = (T)u.c0, b2 = (T)u.c1, omb1 = (T)(1 - u.c0), omb2 = (T)(1 - u.c1);
    const T wd = u.mode ? (T)0 : (T)u.wd;
    const T decay = u.mode ? (T)(1 - u.lr * u.wd) : (T)1;
    const T bc2s = (T)u.c2, ep = (T)u.eps, nstep = (T)(-u.c3);
    FOR_EACH(i, n) {
        T pi = p[i] * decay, gi = g[i] + pi * wd;
        T mi = m[i] * b1 + gi * omb1;
        T vi = v[i] * b2 + omb2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        if (vmax) {
            vi = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = vi;
        }
        p[i] = pi + nstep * (mi / (sqrt(vi) / bc2s + ep));
    }
}

template <typename T>
__global__ void rmsprop(int64_t n, kbl_optim_update u) {
    T *p = (T *)u.p, *s = (T *)u.s0, *ga = (T *)u.s1, *buf = (T *)u.s2;
    const T *g = (const T *)u.g;
    const T a = (T)u.c0, oma = (T)(1 - u.c0), wd = (T)u.wd, ep = (T)u.eps;
    const T mom = (T)u.c1, nlr = (T)(-u.lr);
    FOR_EACH(i, n) {
        T gi = g[i] + p[i] * wd;
        T si = s[i] * a + oma * (gi * gi);
        s[i] = si;
        T avg;
        if (ga) {
            T gai = ga[i] * a + gi * oma;
            ga[i] = gai;
            avg = sqrt(si + (T)(-1) * (gai * gai));
        } else {
            avg = sqrt(si);
        }
        avg = avg + ep;
        if (buf) {
            T bi = buf[i] * mom + gi / avg;
            buf[i] = bi;
            p[i] = p[i] + bi * nlr;
        } else {
            p[i] = p[i] + nlr * (gi / avg);
        }
    }
}

template <typename T>
__global__ void adagrad(int64_t n, kbl_optim_update u) {
    T *p = (T *)u.p, *s = (T *)u.s0;
    const T *g = (const T *)u.g;
    const T wd = (T)u.wd, ep = (T)u.eps, nlr = (T)(-u.lr);
    FOR_EACH(i, n) {
        T gi = g[i] + p[i] * wd;
        T si = s[i] + gi * gi;
        s[i] = si;
        p[i] = p[i] + nlr * (gi / (sqrt(si) + ep));
    }
}

template <typename T> void launch(int kind, int64_t n, const kbl_optim_update &u) {
    unsigned nb = blocks_for(n);
    switch (kind) {
    case KBL_OPTIM_SGD: sgd<T><<<nb, 256, 0, stream()>>>(n, u); break;
    case KBL_OPTIM_ADAM: adam<T><<<nb, 256, 0, stream()>>>(n, u); break;
    case KBL_OPTIM_RMSPROP: rmsprop<T><<<nb, 256, 0, stream()>>>(n, u); break;
    default: adagrad<T><<<nb, 256, 0, stream()>>>(n, u); break;
    }
}

}  // namespace

int optim_step(int kind, int dtype, int64_t n, const kbl_optim_update *u) {
    if (n == 0) return 0;
    if (dtype == KBL_FLOAT32) launch<float>(kind, n, *u);
    else launch<double>(kind, n, *u);
    KBL_LAUNCHED("optimizer step");
    return 0;
}

}  // namespace kblcuda
