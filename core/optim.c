/* optim.c — fused optimizer updates: one call updates one parameter and its state
 * in place in a single pass (SGD, Adam/AdamW, RMSprop, Adagrad), following the
 * arithmetic of torch.optim's single-tensor implementations step for step. */
#include "internal.h"

/* CMakeLists.txt compiles this file with -fno-math-errno: sqrt here never sees
 * a negative, and without errno the update loops vectorize. */
#include <omp.h>
#include <tgmath.h>

/* param, grad and every given state tensor: one device, contiguous, one float dtype and shape. */
static int check_args(const char *op, const kbl_tensor *param, const kbl_tensor *grad, int nstate,
                      const kbl_tensor *const *state, const char *const *names) {
    if (kbl_check_dev(op, param, "parameter") || kbl_check_dev(op, grad, "gradient") ||
        kbl_check_same_device(op, param, grad))
        return -1;
    if (kbl_check_float(op, param)) return -1;
    char a[96], b[96];
    if (grad->dtype != param->dtype || !kbl_same_shape(grad, param))
        return kbl_fail("%s: gradient %s does not match parameter %s", op, kbl_describe(grad, a, 96),
                        kbl_describe(param, b, 96));
    if (!kbl_is_contiguous(param) || !kbl_is_contiguous(grad))
        return kbl_fail("%s: parameter %s and its gradient must be contiguous", op, KBL_DESC(param));
    for (int i = 0; i < nstate; i++) {
        const kbl_tensor *s = state[i];
        if (!s) continue;
        if (kbl_check_dev(op, s, names[i]) || kbl_check_same_device(op, param, s)) return -1;
        if (s->dtype != param->dtype || !kbl_same_shape(s, param) || !kbl_is_contiguous(s))
            return kbl_fail("%s: state '%s' %s must be a contiguous tensor like the parameter %s", op,
                            names[i], kbl_describe(s, a, 96), kbl_describe(param, b, 96));
        if (kbl_same_storage(s, param) || kbl_same_storage(s, grad))
            return kbl_fail("%s: state '%s' shares storage with the parameter or its gradient", op, names[i]);
    }
    return 0;
}

/* One update: the data of the parameter, its gradient and up to three state
 * buffers, and the step's scalars as double (each kernel casts them to its
 * element type first, as PyTorch casts Python scalars to the tensor's dtype). */
typedef kbl_optim_update update;   /* backend.h: the CUDA kernels take the same */
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

static update_fn pick(int dtype, update_fn f32, update_fn f64) { return dtype == KBL_FLOAT32 ? f32 : f64; }

/* The update of param by kind: the fused CUDA kernel, or fn over threads. */
static int apply(int kind, const kbl_tensor *param, update_fn fn, const update *u) {
    if (kbl_on_cuda(param))
        return kbl_numel(param) ? kbl_backend_of(param)->optim_step(kind, param->dtype, kbl_numel(param), u) : 0;
    run(fn, u, kbl_numel(param));
    return 0;
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

int kbl_sgd_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *mbuf, double lr, double momentum,
                 double dampening, double weight_decay, int nesterov, int first_step) {
    const kbl_tensor *st[1] = {mbuf};
    const char *names[1] = {"momentum_buffer"};
    if (check_args("sgd_step", param, grad, 1, st, names)) return -1;
    if (momentum != 0 && !mbuf) return kbl_fail("sgd_step: momentum %g needs a momentum buffer", momentum);
    if (nesterov && (momentum <= 0 || dampening != 0))
        return kbl_fail("sgd_step: nesterov needs a positive momentum and zero dampening (got %g, %g)",
                        momentum, dampening);
    int mode = momentum == 0 ? 0 : (nesterov ? 3 : 1) + (first_step ? 0 : 1);
    update u = {kbl_base(param), kbl_base(grad), mode ? kbl_base(mbuf) : NULL, NULL, NULL,
                lr, momentum, dampening, 0, 0, 0, weight_decay, mode};
    return apply(KBL_OPTIM_SGD, param, pick(param->dtype, sgd_f32, sgd_f64), &u);
}

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

int kbl_adam_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *exp_avg, kbl_tensor *exp_avg_sq,
                  kbl_tensor *max_exp_avg_sq, double lr, double beta1, double beta2, double eps,
                  double weight_decay, int64_t step, int decoupled) {
    const char *op = decoupled ? "adamw_step" : "adam_step";
    const kbl_tensor *st[3] = {exp_avg, exp_avg_sq, max_exp_avg_sq};
    const char *names[3] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    if (check_args(op, param, grad, 3, st, names)) return -1;
    if (!exp_avg || !exp_avg_sq) return kbl_fail("%s: exp_avg and exp_avg_sq are required", op);
    if (step < 1) return kbl_fail("%s: step counts from 1, got %lld", op, (long long)step);
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
        return kbl_fail("%s: betas must lie in [0, 1), got (%g, %g)", op, beta1, beta2);
    update u = {kbl_base(param), kbl_base(grad), kbl_base(exp_avg), kbl_base(exp_avg_sq),
                max_exp_avg_sq ? kbl_base(max_exp_avg_sq) : NULL, lr, beta1, beta2,
                sqrt(1 - pow(beta2, (double)step)), lr / (1 - pow(beta1, (double)step)), eps, weight_decay,
                decoupled != 0};
    return apply(KBL_OPTIM_ADAM, param, pick(param->dtype, adam_f32, adam_f64), &u);
}

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

int kbl_rmsprop_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *square_avg, kbl_tensor *grad_avg,
                     kbl_tensor *mbuf, double lr, double alpha, double eps, double weight_decay,
                     double momentum) {
    const kbl_tensor *st[3] = {square_avg, grad_avg, mbuf};
    const char *names[3] = {"square_avg", "grad_avg", "momentum_buffer"};
    if (check_args("rmsprop_step", param, grad, 3, st, names)) return -1;
    if (!square_avg) return kbl_fail("rmsprop_step: square_avg is required");
    if (momentum > 0 && !mbuf) return kbl_fail("rmsprop_step: momentum %g needs a momentum buffer", momentum);
    update u = {kbl_base(param), kbl_base(grad), kbl_base(square_avg), grad_avg ? kbl_base(grad_avg) : NULL,
                momentum > 0 ? kbl_base(mbuf) : NULL, lr, alpha, momentum, 0, 0, eps, weight_decay, 0};
    return apply(KBL_OPTIM_RMSPROP, param, pick(param->dtype, rmsprop_f32, rmsprop_f64), &u);
}

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

int kbl_adagrad_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *sum, double clr,
                     double weight_decay, double eps) {
    const kbl_tensor *st[1] = {sum};
    const char *names[1] = {"sum"};
    if (check_args("adagrad_step", param, grad, 1, st, names)) return -1;
    if (!sum) return kbl_fail("adagrad_step: the sum state is required");
    update u = {kbl_base(param), kbl_base(grad), kbl_base(sum), NULL, NULL, clr, 0, 0, 0, 0, eps,
                weight_decay, 0};
    return apply(KBL_OPTIM_ADAGRAD, param, pick(param->dtype, adagrad_f32, adagrad_f64), &u);
}
