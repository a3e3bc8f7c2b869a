/* norm.c — the CPU's passes over x of batch_norm, layer_norm and group_norm
 * (kbl_norm_args in core/backend.h): per-channel statistics, the per-channel
 * scale and shift, the fused batch-norm backward with its per-channel sums,
 * and the row-norm forward and backward with the parameter gradients.
 * Statistics accumulate in double; channels or rows run over OpenMP threads. */
#include "cpu.h"

#include <math.h>

static int nthreads(int64_t work) { return work >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1; }

/* x [n, c, s]: per channel mean and biased variance (two passes, in double).
 * Batch norm stays on these loops: measured against oneDNN 2.6.3's
 * (ncsp_bnorm on nchw; 1 thread, CPU time, Intel Xeon AVX-512 KVM guest, busy
 * machine), training forward / backward, ms: [128, 32, 28, 28] kbl 9.94 /
 * 7.74, oneDNN 9.25 / 11.06; [128, 64, 14, 14] kbl 4.92 / 5.03, oneDNN 4.25 /
 * 8.08: kbl wins forward+backward, with double statistics. Each channel's sums
 * now run in SUM4's four partial sums instead of one add chain
 * (`BENCH_CLOCK=cpu bin/kbl bench/cpu_ops.lua`, quiet 2-core Xeon, ms, before
 * / after): [128, 32, 28, 28] forward 6.80 / 2.70-2.80, backward 5.93 /
 * 3.18-3.73; [128, 64, 14, 14] 3.29 / 1.43-1.44, 3.01 / 1.84-1.85 (PyTorch
 * 1.13's BatchNorm2d in training, 1 thread, same machine: 4.95 / 4.90 and
 * 2.50 / 2.71). */
#define BN_STATS(T)                                                                        \
    do {                                                                                   \
        const T *xp = A->x;                                                        \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t ch = 0; ch < c; ch++) {                                               \
            double s = 0, q = 0, t;                                                        \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *p = xp + (i * c + ch) * sp;                                       \
                SUM4(t, sp, (double)p[j]);                                                 \
                s += t;                                                                    \
            }                                                                              \
            double m = s / (double)cnt;                                                    \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *p = xp + (i * c + ch) * sp;                                       \
                SUM4(t, sp, ((double)p[j] - m) * ((double)p[j] - m));                     \
                q += t;                                                                    \
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
            double sg = 0, sgx = 0, m = mean[ch], t;                                       \
            for (int64_t i = 0; i < n; i++) {                                              \
                const T *g = gp + (i * c + ch) * sp, *xv = xp + (i * c + ch) * sp;         \
                SUM4(t, sp, (double)g[j]);                                                 \
                sg += t;                                                                   \
                SUM4(t, sp, (double)g[j] * ((double)xv[j] - m));                           \
                sgx += t;                                                                  \
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
            double s, v;                                                                   \
            SUM4(s, d, (double)p[j]);                                                      \
            double m = s / (double)d;                                                      \
            SUM4(v, d, ((double)p[j] - m) * ((double)p[j] - m));                          \
            double rs = 1.0 / sqrt(v / (double)d + eps);                                   \
            mp[r] = (T)m;                                                                  \
            rp[r] = (T)rs;                                                                 \
            T mm = (T)m, rr = (T)rs;                                                       \
            int64_t base = (r % groups) * d;                                               \
            if (inner == 1 && wp && bp) { /* layer_norm's: no division, vectorized */      \
                const T *wr = wp + base, *br = bp + base;                                  \
                for (int64_t j = 0; j < d; j++) q[j] = (p[j] - mm) * rr * wr[j] + br[j];   \
                continue;                                                                  \
            }                                                                              \
            for (int64_t j = 0; j < d; j++) {                                              \
                int64_t pi = (base + j) / inner;                                           \
                T h = (p[j] - mm) * rr;                                                    \
                q[j] = (wp ? h * wp[pi] : h) + (bp ? bp[pi] : 0);                          \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* gx = rstd (wg - mean(wg) - xhat mean(wg xhat)) per row, wg = g w[p]; then the
 * parameter gradients, PB parameters at a time for layer_norm (inner 1).
 * Measured (1 thread, CPU time, Intel Xeon AVX-512 KVM guest, busy machine,
 * bench/cpu_ops.lua; oneDNN 2.6.3 by bench/dnnl_ops.c), layer_norm [4096, 256]
 * forward / backward: 4.55 / 21.40 ms before (a division per element, one add
 * chain per sum, the parameter sums read a column at a time), 0.71-0.75 /
 * 1.93-2.19 ms now; oneDNN's layer normalization 0.29 / 0.88 ms. Not taken:
 * its statistics are float32 where kbl's are double, it returns the variance
 * where kbl's backward keeps rstd, and group_norm shares these loops. */
#define PB 64
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
            if (inner == 1 && wp) { /* layer_norm's: no division per element */            \
                const T *wr = wp + base;                                                   \
                SUM4(a, d, (double)g[j] * (double)wr[j]);                                  \
                SUM4(bsum, d, (double)g[j] * (double)wr[j] * (double)((xv[j] - m) * rs));  \
                T ma = (T)(a / (double)d), mb = (T)(bsum / (double)d);                     \
                for (int64_t j = 0; j < d; j++) o[j] = rs * (g[j] * wr[j] - ma - (xv[j] - m) * rs * mb); \
                continue;                                                                  \
            }                                                                              \
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
        if ((gwp || gbp) && inner == 1) {                                                  \
            /* layer_norm's: blocks of PB parameters, each summed over the rows in row  \
             * order (the order of the loop below, so the same bits), reading rows     \
             * contiguously instead of one column at a time */                         \
            int64_t nblk = (d + PB - 1) / PB, per = groups * d;                            \
            _Pragma("omp parallel for num_threads(nt) schedule(static)")                   \
            for (int64_t blk = 0; blk < groups * nblk; blk++) {                            \
                int64_t row_in = blk / nblk, j0 = blk % nblk * PB;                         \
                int64_t j1 = j0 + PB < d ? j0 + PB : d;                                    \
                double sw[PB] = {0}, sb[PB] = {0};                                         \
                for (int64_t s = 0; s < rows / groups; s++) {                              \
                    int64_t r = s * groups + row_in;                                       \
                    const T *g = gp + s * per + row_in * d, *xv = xp + s * per + row_in * d; \
                    T m = mp[r], rs = rp[r];                                               \
                    for (int64_t j = j0; j < j1; j++) {                                    \
                        sb[j - j0] += g[j];                                                \
                        sw[j - j0] += (double)g[j] * (double)((xv[j] - m) * rs);           \
                    }                                                                      \
                }                                                                          \
                for (int64_t j = j0; j < j1; j++) {                                        \
                    if (gwp) gwp[row_in * d + j] = sw[j - j0];                             \
                    if (gbp) gbp[row_in * d + j] = sb[j - j0];                             \
                }                                                                          \
            }                                                                              \
        } else if (gwp || gbp) {                                                           \
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
