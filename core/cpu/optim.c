/* optim.c — the CPU's fused optimizer updates (core/optim.c documents the
 * fields of each kind): one pass updates a parameter and its state in place,
 * following torch.optim's single-tensor arithmetic step for step, split over
 * threads in whole vectors when large. Compiled with -fno-math-errno (see
 * CMakeLists.txt), so the loops calling sqrt vectorize. */
#include "cpu.h"

#include <omp.h>
#include <tgmath.h>

/* One update: the data of the parameter, its gradient and up to three state
 * buffers, and the step's scalars as double (each kernel casts them to its
 * element type first, as PyTorch casts Python scalars to the tensor's dtype). */
typedef kbl_optim_update update;
typedef void (*update_fn)(const update *u, int64_t begin, int64_t end);

/* Runs fn over [0, n), split over threads when n is large. */
static void run(update_fn fn, const update *u, int64_t n) {
    int nt = n >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
    if (nt <= 1) {
        fn(u, 0, n);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), k = omp_get_num_threads();
        int64_t chunk = ((n + k - 1) / k + 15) / 16 * 16; /* whole vectors per thread */
        int64_t b = t * chunk, e = b + chunk < n ? b + chunk : n;
        if (b < e) fn(u, b, e);
    }
}


/* ---- SGD ----------------------------------------------------------------------
 * d = g + wd*p; with momentum: buf = d on the first step, else buf = m*buf + (1-damp)*d;
 * d = nesterov ? d + m*buf : buf; then p -= lr*d.
 * mode: 0 no momentum, 1 first momentum step, 2 momentum, 3 first nesterov, 4 nesterov. */
#define SGD_RANGE(T, NAME)                                                                 \
    static void NAME(const update *u, int64_t b, int64_t e) {                              \
        T *p = u->p, *buf = u->s0;                                                         \
        const T *g = u->g;                                                                 \
        const T wd = (T)u->wd, mom = (T)u->c0, damp = (T)(1 - u->c1), nlr = (T)(-u->lr);   \
        const int mode = u->mode;                                                          \
        if (mode == 0) {                                                                   \
            for (int64_t i = b; i < e; i++) p[i] = p[i] + (g[i] + p[i] * wd) * nlr;        \
        } else if (mode == 1 || mode == 3) {                                               \
            const T nes = mode == 3 ? mom : 0;                                             \
            for (int64_t i = b; i < e; i++) {                                              \
                T d = g[i] + p[i] * wd;                                                    \
                buf[i] = d;                                                                \
                p[i] = p[i] + (mode == 3 ? d + d * nes : d) * nlr;                         \
            }                                                                              \
        } else if (mode == 2) {                                                            \
            for (int64_t i = b; i < e; i++) {                                              \
                T bi = buf[i] * mom + (g[i] + p[i] * wd) * damp;                           \
                buf[i] = bi;                                                               \
                p[i] = p[i] + bi * nlr;                                                    \
            }                                                                              \
        } else {                                                                           \
            for (int64_t i = b; i < e; i++) {                                              \
                T d = g[i] + p[i] * wd;                                                    \
                T bi = buf[i] * mom + d * damp;                                            \
                buf[i] = bi;                                                               \
                p[i] = p[i] + (d + bi * mom) * nlr;                                        \
            }                                                                              \
        }                                                                                  \
    }
SGD_RANGE(float, sgd_f32)
SGD_RANGE(double, sgd_f64)

/* ---- Adam and AdamW ----------------------------------------------------------
 * Adam: g += wd*p. AdamW (decoupled, mode 1): p *= 1 - lr*wd. Then m = b1*m + (1-b1)*g,
 * v = b2*v + (1-b2)*g*g, (amsgrad: vmax = max(vmax, v), used for v below),
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * One loop serves both: decay is 1 for Adam (exact) and wd is 0 for AdamW.
 * c0, c1: the betas; c2: sqrt(1 - b2^t); c3: the step size lr / (1 - b1^t). */
#define ADAM_LOOP(T, AMS)                                                                  \
    for (int64_t i = b; i < e; i++) {                                                      \
        T pi = p[i] * decay, gi = g[i] + pi * wd;                                          \
        T mi = m[i] * b1 + gi * omb1;                                                      \
        T vi = v[i] * b2 + omb2 * (gi * gi);                                               \
        m[i] = mi;                                                                         \
        v[i] = vi;                                                                         \
        if (AMS) {                                                                         \
            vi = vmax[i] > vi ? vmax[i] : vi;                                              \
            vmax[i] = vi;                                                                  \
        }                                                                                  \
        p[i] = pi + nstep * (mi / (sqrt(vi) / bc2s + ep));                                 \
    }
#define ADAM_RANGE(T, NAME)                                                                \
    static void NAME(const update *u, int64_t b, int64_t e) {                              \
        T *p = u->p, *m = u->s0, *v = u->s1, *vmax = u->s2;                                \
        const T *g = u->g;                                                                 \
        const T b1 = (T)u->c0, b2 = (T)u->c1, omb1 = (T)(1 - u->c0), omb2 = (T)(1 - u->c1); \
        const T wd = u->mode ? 0 : (T)u->wd;                                               \
        const T decay = u->mode ? (T)(1 - u->lr * u->wd) : 1;                              \
        const T bc2s = (T)u->c2, ep = (T)u->eps, nstep = (T)(-u->c3);                      \
        if (vmax) {                                                                        \
            ADAM_LOOP(T, 1)                                                                \
        } else {                                                                           \
            ADAM_LOOP(T, 0)                                                                \
        }                                                                                  \
    }
ADAM_RANGE(float, adam_f32)
ADAM_RANGE(double, adam_f64)

/* ---- RMSprop -----------------------------------------------------------------
 * g += wd*p; s = a*s + (1-a)*g*g; centered: ga = a*ga + (1-a)*g, avg = sqrt(s - ga*ga),
 * else avg = sqrt(s); avg += eps; momentum: buf = m*buf + g/avg, p -= lr*buf;
 * otherwise p -= lr * g/avg. c0: alpha; c1: momentum; s0, s1, s2: square_avg,
 * grad_avg, momentum_buffer (those in use). */
#define RMSPROP_LOOP(T, CENTERED, MOMENTUM)                                                \
    for (int64_t i = b; i < e; i++) {                                                      \
        T gi = g[i] + p[i] * wd;                                                           \
        T si = s[i] * a + oma * (gi * gi);                                                 \
        s[i] = si;                                                                         \
        T avg;                                                                             \
        if (CENTERED) {                                                                    \
            T gai = ga[i] * a + gi * oma;                                                  \
            ga[i] = gai;                                                                   \
            avg = sqrt(si + (T)(-1) * (gai * gai));                                        \
        } else {                                                                           \
            avg = sqrt(si);                                                                \
        }                                                                                  \
        avg = avg + ep;                                                                    \
        if (MOMENTUM) {                                                                    \
            T bi = buf[i] * mom + gi / avg;                                                \
            buf[i] = bi;                                                                   \
            p[i] = p[i] + bi * nlr;                                                        \
        } else {                                                                           \
            p[i] = p[i] + nlr * (gi / avg);                                                \
        }                                                                                  \
    }
#define RMSPROP_RANGE(T, NAME)                                                             \
    static void NAME(const update *u, int64_t b, int64_t e) {                              \
        T *p = u->p, *s = u->s0, *ga = u->s1, *buf = u->s2;                                \
        const T *g = u->g;                                                                 \
        const T a = (T)u->c0, oma = (T)(1 - u->c0), wd = (T)u->wd, ep = (T)u->eps;         \
        const T mom = (T)u->c1, nlr = (T)(-u->lr);                                         \
        if (ga && buf) {                                                                   \
            RMSPROP_LOOP(T, 1, 1)                                                          \
        } else if (ga) {                                                                   \
            RMSPROP_LOOP(T, 1, 0)                                                          \
        } else if (buf) {                                                                  \
            RMSPROP_LOOP(T, 0, 1)                                                          \
        } else {                                                                           \
            RMSPROP_LOOP(T, 0, 0)                                                          \
        }                                                                                  \
    }
RMSPROP_RANGE(float, rmsprop_f32)
RMSPROP_RANGE(double, rmsprop_f64)

/* ---- Adagrad -----------------------------------------------------------------
 * g += wd*p; sum += g*g; p -= clr * g / (sqrt(sum) + eps), where the caller gives
 * clr = lr / (1 + (step-1)*lr_decay). */
#define ADAGRAD_RANGE(T, NAME)                                                             \
    static void NAME(const update *u, int64_t b, int64_t e) {                              \
        T *p = u->p, *s = u->s0;                                                           \
        const T *g = u->g;                                                                 \
        const T wd = (T)u->wd, ep = (T)u->eps, nlr = (T)(-u->lr);                          \
        for (int64_t i = b; i < e; i++) {                                                  \
            T gi = g[i] + p[i] * wd;                                                       \
            T si = s[i] + gi * gi;                                                         \
            s[i] = si;                                                                     \
            p[i] = p[i] + nlr * (gi / (sqrt(si) + ep));                                    \
        }                                                                                  \
    }
ADAGRAD_RANGE(float, adagrad_f32)
ADAGRAD_RANGE(double, adagrad_f64)

int kbl_cpu_optim_step(int kind, int dtype, int64_t n, const kbl_optim_update *u) {
    bool f32 = dtype == KBL_FLOAT32;
    switch (kind) {
    case KBL_OPTIM_SGD: run(f32 ? sgd_f32 : sgd_f64, u, n); break;
    case KBL_OPTIM_ADAM: run(f32 ? adam_f32 : adam_f64, u, n); break;
    case KBL_OPTIM_RMSPROP: run(f32 ? rmsprop_f32 : rmsprop_f64, u, n); break;
    case KBL_OPTIM_ADAGRAD: run(f32 ? adagrad_f32 : adagrad_f64, u, n); break;
    default: return kbl_fail("cpu: unknown optimizer kernel %d", kind);
    }
    return 0;
}
