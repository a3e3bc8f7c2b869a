/* norm.c — the CPU's passes over x of batch_norm, layer_norm and group_norm
 * (kbl_norm_args in core/backend.h): per-channel statistics, the per-channel
 * scale and shift, the fused batch-norm backward with its per-channel sums,
 * and the row-norm forward and backward with the parameter gradients.
 * Statistics accumulate in double; channels or rows run over OpenMP threads. */
#include "cpu.h"

#include <math.h>

static int nthreads(int64_t work) { return work >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1; }

/* x [n, c, s]: per channel mean and biased variance (two passes, in double) */
#define BN_STATS(T)                                                                        \
    do {                                                                                   \
        const T *xp = A->x;                                                        \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t ch = 0; ch < c; ch++) {                                               \
            double s = 0, q = 0;                                                           \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *p = xp + (i * c + ch) * sp;                                       \
                for (int64_t j = 0; j < sp; j++) s += p[j];                                \
            }                                                                              \
            double m = s / (double)cnt;                                                    \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *p = xp + (i * c + ch) * sp;                                       \
                for (int64_t j = 0; j < sp; j++) q += ((double)p[j] - m) * ((double)p[j] - m); \
            }                                                                              \
            mean[ch] = m;                                                                  \
            var[ch] = q / (double)cnt;                                                     \
        }                                                                                  \
    } while (0)

/* y = x * scale[ch] + shift[ch] */
#define BN_APPLY(T)                                                                        \
    do {                                                                                   \
        const T *xp = A->x;                                                        \
        T *yp = A->y;                                                               \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t r = 0; r < n * c; r++) {                                              \
            T a = (T)scale[r % c], b = (T)shift[r % c];                                    \
            const T *p = xp + r * sp;                                                      \
            T *q = yp + r * sp;                                                            \
            for (int64_t j = 0; j < sp; j++) q[j] = p[j] * a + b;                          \
        }                                                                                  \
    } while (0)

/* per channel: sg = sum g, sgx = sum g (x - mean); then the input gradient */
#define BN_BWD(T)                                                                          \
    do {                                                                                   \
        const T *gp = A->grad, *xp = A->x;                                    \
        T *dp = A->y;                                                              \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t ch = 0; ch < c; ch++) {                                               \
            double sg = 0, sgx = 0, m = mean[ch];                                          \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *g = gp + (i * c + ch) * sp, *xv = xp + (i * c + ch) * sp;         \
                for (int64_t j = 0; j < sp; j++) {                                         \
                    sg += g[j];                                                            \
                    sgx += (double)g[j] * ((double)xv[j] - m);                             \
                }                                                                          \
            }                                                                              \
            double inv = invstd[ch], wv = wvals[ch];                                       \
            sums[ch] = sg;                                                                 \
            sums[c + ch] = sgx * inv;                                                      \
            T k = (T)(wv * inv), mg = (T)(training ? sg / (double)cnt : 0);                \
            T kx = (T)(training ? sgx * inv / (double)cnt : 0), mt = (T)m;                 \
            T it = (T)inv;                                                                 \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *g = gp + (i * c + ch) * sp, *xv = xp + (i * c + ch) * sp;         \
                T *d = dp + (i * c + ch) * sp;                                             \
                for (int64_t j = 0; j < sp; j++)                                           \
                    d[j] = k * (g[j] - mg - (xv[j] - mt) * it * kx);                       \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* Per row r: mean, rstd; y = xhat * w[p] + b[p], p = ((r % G) * D + d) / inner */
#define ROWS_FWD(T)                                                                        \
    do {                                                                                   \
        const T *xp = A->x, *wp = A->weight, *bp = A->bias; \
        T *yp = A->y, *mp = A->mean_out, *rp = A->rstd_out;                      \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t r = 0; r < rows; r++) {                                               \
            const T *p = xp + r * d;                                                       \
            T *q = yp + r * d;                                                             \
            double s = 0, v = 0;                                                           \
            for (int64_t j = 0; j < d; j++) s += p[j];                                     \
            double m = s / (double)d;                                                      \
            for (int64_t j = 0; j < d; j++) v += ((double)p[j] - m) * ((double)p[j] - m);  \
            double rs = 1.0 / sqrt(v / (double)d + eps);                                   \
            mp[r] = (T)m;                                                                  \
            rp[r] = (T)rs;                                                                 \
            T mm = (T)m, rr = (T)rs;                                                       \
            int64_t base = (r % groups) * d;                                               \
            for (int64_t j = 0; j < d; j++) {                                              \
                int64_t pi = (base + j) / inner;                                           \
                T h = (p[j] - mm) * rr;                                                    \
                q[j] = (wp ? h * wp[pi] : h) + (bp ? bp[pi] : 0);                          \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* gx = rstd (wg - mean(wg) - xhat mean(wg xhat)) per row, wg = g w[p] */
#define ROWS_BWD(T)                                                                        \
    do {                                                                                   \
        const T *gp = A->grad, *xp = A->x, *wp = A->weight;    \
        const T *mp = A->mean, *rp = A->rstd;                                    \
        T *dp = A->y;                                                              \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t r = 0; r < rows; r++) {                                               \
            const T *g = gp + r * d, *xv = xp + r * d;                                     \
            T *o = dp + r * d, m = mp[r], rs = rp[r];                                      \
            int64_t base = (r % groups) * d;                                               \
            double a = 0, bsum = 0;                                                        \
            for (int64_t j = 0; j < d; j++) {                                              \
                double wg = (double)g[j] * (wp ? (double)wp[(base + j) / inner] : 1.0);    \
                a += wg;                                                                   \
                bsum += wg * (double)((xv[j] - m) * rs);                                   \
            }                                                                              \
            T ma = (T)(a / (double)d), mb = (T)(bsum / (double)d);                         \
            for (int64_t j = 0; j < d; j++) {                                              \
                T wg = g[j] * (wp ? wp[(base + j) / inner] : 1);                           \
                o[j] = rs * (wg - ma - (xv[j] - m) * rs * mb);                             \
            }                                                                              \
        }                                                                                  \
        if (gwp || gbp) {                                                                  \
            int64_t nparam = groups * d / inner, per = groups * d;                         \
            _Pragma("omp parallel for num_threads(nt) schedule(static)")                   \
            for (int64_t pi = 0; pi < nparam; pi++) {                                      \
                double sw = 0, sb = 0;                                                     \
                int64_t row_in = pi * inner / d;                                           \
                for (int64_t s = 0; s < rows / groups; s++) {                              \
                    int64_t r = s * groups + row_in;                                       \
                    const T *g = gp + s * per + pi * inner, *xv = xp + s * per + pi * inner; \
                    for (int64_t e = 0; e < inner; e++) {                                  \
                        sb += g[e];                                                        \
                        sw += (double)g[e] * (double)((xv[e] - mp[r]) * rp[r]);            \
                    }                                                                      \
                }                                                                          \
                if (gwp) gwp[pi] = sw;                                                     \
                if (gbp) gbp[pi] = sb;                                                     \
            }                                                                              \
        }                                                                                  \
    } while (0)

int kbl_cpu_norm(const kbl_norm_args *A) {
    int64_t n = A->n, c = A->c, sp = A->sp, cnt = n * sp;
    int64_t rows = A->rows, d = A->d, groups = A->groups, inner = A->inner;
    double eps = A->eps;
    int training = A->training;
    switch (A->kind) {
    case KBL_BN_STATS: {
        double *mean = A->dmean_out, *var = A->dvar;
        int nt = nthreads(n * c * sp);
        KBL_FLOAT_CASES(A->dtype, BN_STATS)
        break;
    }
    case KBL_BN_APPLY: {
        const double *scale = A->dscale, *shift = A->dshift;
        int nt = nthreads(n * c * sp);
        KBL_FLOAT_CASES(A->dtype, BN_APPLY)
        break;
    }
    case KBL_BN_BACKWARD: {
        const double *mean = A->dmean, *invstd = A->dinvstd, *wvals = A->dweight;
        double *sums = A->sums;
        int nt = nthreads(n * c * sp);
        KBL_FLOAT_CASES(A->dtype, BN_BWD)
        break;
    }
    case KBL_ROWS_FORWARD: {
        int nt = nthreads(rows * d);
        KBL_FLOAT_CASES(A->dtype, ROWS_FWD)
        break;
    }
    case KBL_ROWS_BACKWARD: {
        double *gwp = A->gw, *gbp = A->gb;
        int nt = nthreads(rows * d);
        KBL_FLOAT_CASES(A->dtype, ROWS_BWD)
        break;
    }
    default:
        return kbl_fail("cpu: unknown normalization kernel %d", A->kind);
    }
    return 0;
}
