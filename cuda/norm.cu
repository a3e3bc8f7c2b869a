/* norm.cu — the passes over x of batch_norm, layer_norm and group_norm, as
 * core/cpu/norm.c computes them: per-channel (batch norm) or per-row (the others)
 * statistics in double, one block per channel or row, and the fused backward.
 * The per-channel arithmetic between the passes is core/norm.c's, with ops,
 * for every device. */
#include <math.h>

#include "ops.cuh"
#include "reduce.cuh"

namespace kblcuda {

namespace {

/* x [n, c, sp]: mean and biased variance of each channel, two passes */
template <typename T>
__global__ void bn_stats(kbl_norm_args a) {
    const T *x = (const T *)a.x;
    int64_t cnt = a.n * a.sp;
    for (int64_t ch = blockIdx.x; ch < a.c; ch += gridDim.x) {
        double s = 0, q = 0;
        for (int64_t k = threadIdx.x; k < cnt; k += blockDim.x) s += (double)x[((k / a.sp) * a.c + ch) * a.sp + k % a.sp];
        double m = block_sum<double>(s) / (double)cnt;
        for (int64_t k = threadIdx.x; k < cnt; k += blockDim.x) {
            double v = (double)x[((k / a.sp) * a.c + ch) * a.sp + k % a.sp] - m;
            q += v * v;
        }
        q = block_sum<double>(q);
        if (threadIdx.x == 0) {
            a.dmean_out[ch] = m;
            a.dvar[ch] = q / (double)cnt;
        }
    }
}

template <typename T>
__global__ void bn_apply(kbl_norm_args a) {
    const T *x = (const T *)a.x;
    T *y = (T *)a.y;
    int64_t total = a.n * a.c * a.sp;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = (i / a.sp) % a.c;
        y[i] = x[i] * (T)a.dscale[ch] + (T)a.dshift[ch];
    }
}

/* per channel: sg = sum g, sgx = sum g (x - mean); sums and the input gradient */
template <typename T>
__global__ void bn_backward(kbl_norm_args a) {
    const T *x = (const T *)a.x, *g = (const T *)a.grad;
    T *dx = (T *)a.y;
    int64_t cnt = a.n * a.sp;
    for (int64_t ch = blockIdx.x; ch < a.c; ch += gridDim.x) {
        double m = a.dmean[ch], sg = 0, sgx = 0;
        for (int64_t k = threadIdx.x; k < cnt; k += blockDim.x) {
            int64_t i = ((k / a.sp) * a.c + ch) * a.sp + k % a.sp;
            sg += (double)g[i];
            sgx += (double)g[i] * ((double)x[i] - m);
        }
        sg = block_sum<double>(sg);
        sgx = block_sum<double>(sgx);
        double inv = a.dinvstd[ch], wv = a.dweight[ch];
        if (threadIdx.x == 0) {
            a.sums[ch] = sg;
            a.sums[a.c + ch] = sgx * inv;
        }
        T k_ = (T)(wv * inv), mg = (T)(a.training ? sg / (double)cnt : 0);
        T kx = (T)(a.training ? sgx * inv / (double)cnt : 0), mt = (T)m, it = (T)inv;
        for (int64_t k = threadIdx.x; k < cnt; k += blockDim.x) {
            int64_t i = ((k / a.sp) * a.c + ch) * a.sp + k % a.sp;
            dx[i] = k_ * (g[i] - mg - (x[i] - mt) * it * kx);
        }
    }
}

/* rows [rows, d]: mean, rstd; y = xhat * w[p] + b[p], p = ((r % groups) d + j) / inner */
template <typename T>
__global__ void rows_forward(kbl_norm_args a) {
    const T *xp = (const T *)a.x, *wp = (const T *)a.weight, *bp = (const T *)a.bias;
    T *yp = (T *)a.y, *mp = (T *)a.mean_out, *rp = (T *)a.rstd_out;
    for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
        const T *p = xp + r * a.d;
        T *q = yp + r * a.d;
        double s = 0, v = 0;
        for (int64_t j = threadIdx.x; j < a.d; j += blockDim.x) s += (double)p[j];
        double m = block_sum<double>(s) / (double)a.d;
        for (int64_t j = threadIdx.x; j < a.d; j += blockDim.x) v += ((double)p[j] - m) * ((double)p[j] - m);
        v = block_sum<double>(v);
        double rs = 1.0 / sqrt(v / (double)a.d + a.eps);
        if (threadIdx.x == 0) {
            mp[r] = (T)m;
            rp[r] = (T)rs;
        }
        T mm = (T)m, rr = (T)rs;
        int64_t base = (r % a.groups) * a.d;
        for (int64_t j = threadIdx.x; j < a.d; j += blockDim.x) {
            int64_t pi = (base + j) / a.inner;
            T h = (p[j] - mm) * rr;
            q[j] = (wp ? h * wp[pi] : h) + (bp ? bp[pi] : (T)0);
        }
    }
}

/* gx = rstd (wg - mean(wg) - xhat mean(wg xhat)) per row, wg = g w[p] */
template <typename T>
__global__ void rows_backward(kbl_norm_args a) {
    const T *gp = (const T *)a.grad, *xp = (const T *)a.x, *wp = (const T *)a.weight;
    const T *mp = (const T *)a.mean, *rp = (const T *)a.rstd;
    T *dp = (T *)a.y;
    for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
        const T *g = gp + r * a.d, *xv = xp + r * a.d;
        T *o = dp + r * a.d, m = mp[r], rs = rp[r];
        int64_t base = (r % a.groups) * a.d;
        double sa = 0, sb = 0;
        for (int64_t j = threadIdx.x; j < a.d; j += blockDim.x) {
            double wg = (double)g[j] * (wp ? (double)wp[(base + j) / a.inner] : 1.0);
            sa += wg;
            sb += wg * (double)((xv[j] - m) * rs);
        }
        sa = block_sum<double>(sa);
        sb = block_sum<double>(sb);
        T ma = (T)(sa / (double)a.d), mb = (T)(sb / (double)a.d);
        for (int64_t j = threadIdx.x; j < a.d; j += blockDim.x) {
            T wg = g[j] * (wp ? wp[(base + j) / a.inner] : (T)1);
            o[j] = rs * (wg - ma - (xv[j] - m) * rs * mb);
        }
    }
}

/* the weight and bias gradients: parameter pi sums its blocks of `inner` over the samples */
template <typename T>
__global__ void rows_param_grads(kbl_norm_args a) {
    const T *gp = (const T *)a.grad, *xp = (const T *)a.x, *mp = (const T *)a.mean, *rp = (const T *)a.rstd;
    int64_t per = a.groups * a.d, samples = a.rows / a.groups, work = samples * a.inner;
    for (int64_t pi = blockIdx.x; pi < a.nparam; pi += gridDim.x) {
        int64_t row_in = pi * a.inner / a.d;
        double sw = 0, sb = 0;
        for (int64_t k = threadIdx.x; k < work; k += blockDim.x) {
            int64_t s = k / a.inner, e = k % a.inner, r = s * a.groups + row_in;
            int64_t i = s * per + pi * a.inner + e;
            sb += (double)gp[i];
            sw += (double)gp[i] * (double)((xp[i] - mp[r]) * rp[r]);
        }
        sw = block_sum<double>(sw);
        sb = block_sum<double>(sb);
        if (threadIdx.x == 0) {
            if (a.gw) a.gw[pi] = sw;
            if (a.gb) a.gb[pi] = sb;
        }
    }
}

template <typename T> int run(const kbl_norm_args *a) {
    cudaStream_t st = stream();
    switch (a->kind) {
    case KBL_BN_STATS:
        bn_stats<T><<<row_blocks(a->c), row_threads(a->n * a->sp), 0, st>>>(*a);
        break;
    case KBL_BN_APPLY:
        bn_apply<T><<<blocks_for(a->n * a->c * a->sp), 256, 0, st>>>(*a);
        break;
    case KBL_BN_BACKWARD:
        bn_backward<T><<<row_blocks(a->c), row_threads(a->n * a->sp), 0, st>>>(*a);
        break;
    case KBL_ROWS_FORWARD:
        rows_forward<T><<<row_blocks(a->rows), row_threads(a->d), 0, st>>>(*a);
        break;
    case KBL_ROWS_BACKWARD:
        rows_backward<T><<<row_blocks(a->rows), row_threads(a->d), 0, st>>>(*a);
        if ((a->gw || a->gb) && a->nparam > 0)
            rows_param_grads<T><<<row_blocks(a->nparam), row_threads(a->rows / a->groups * a->inner), 0, st>>>(*a);
        break;
    default:
        return host->fail("cuda: unknown normalization kernel %d", a->kind);
    }
    KBL_LAUNCHED("normalization");
    return 0;
}

}  // namespace

int norm(const kbl_norm_args *a) { return a->dtype == KBL_FLOAT32 ? run<float>(a) : run<double>(a); }

}  // namespace kblcuda
