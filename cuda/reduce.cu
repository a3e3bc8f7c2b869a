/* reduce.cu — reductions over contiguous data: row sums (one block a row) and
 * column sums (tiles of columns, rows split over blocks and the partial sums
 * added in a fixed order, so results do not vary run to run), max/min with their
 * first position (a NaN wins, as on the CPU), softmax and log_softmax rows, and
 * the fused cross entropy, forward and backward: core/cpu/reduce.c, softmax.c
 * and loss.c, with float rows summed in double as there. */
#include <math.h>
#include <string.h>

#include "ops.cuh"
#include "reduce.cuh"

namespace kblcuda {

namespace {

template <typename T> struct Acc { typedef double type; };
template <> struct Acc<int64_t> { typedef int64_t type; };

template <typename T>
__global__ void sum_rows_kernel(int64_t rows, int64_t inner, const T *src, T *dst) {
    typedef typename Acc<T>::type A;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *p = src + r * inner;
        A acc = 0;
        for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) acc += (A)p[i];
        acc = block_sum<A>(acc);
        if (threadIdx.x == 0) dst[r] = (T)acc;
    }
}

/* Columns in tiles of 32; blockIdx.y takes rows [y0, y1); threadIdx.y strides them.
 * Writes dst (one chunk) or partial[chunk * cols + col]. */
template <typename T>
__global__ void sum_cols_kernel(int64_t outer, int64_t cols, int64_t chunk, const T *src, T *dst,
                                typename Acc<T>::type *partial) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[8][33];
    int64_t col = blockIdx.x * 32 + threadIdx.x;
    int64_t y0 = blockIdx.y * chunk, y1 = y0 + chunk < outer ? y0 + chunk : outer;
    A acc = 0;
    if (col < cols)
        for (int64_t r = y0 + threadIdx.y; r < y1; r += 8) acc += (A)src[r * cols + col];
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        for (int k = 1; k < 8; k++) acc += sh[k][threadIdx.x];
        if (partial) partial[blockIdx.y * cols + col] = acc;
        else dst[col] = (T)acc;
    }
}

template <typename T>
__global__ void sum_partials_kernel(int64_t parts, int64_t cols, const typename Acc<T>::type *partial, T *dst) {
    typedef typename Acc<T>::type A;
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols; c += (int64_t)gridDim.x * blockDim.x) {
        A acc = 0;
        for (int64_t p = 0; p < parts; p++) acc += partial[p * cols + c];
        dst[c] = (T)acc;
    }
}

/* (value, position) a beats b: a NaN first, then the larger (smaller), then the earlier. */
template <typename T> __device__ inline bool beats(T av, int64_t ai, T bv, int64_t bi, bool is_max) {
    bool an = av != av, bn = bv != bv;
    if (an || bn) return an && (!bn || ai < bi);
    if (av != bv) return is_max ? av > bv : av < bv;
    return ai < bi;
}

template <typename T>
__global__ void extreme_kernel(int64_t rows, int64_t inner, bool is_max, const T *src, T *values, int64_t *idx) {
    __shared__ T sv[1024];
    __shared__ int64_t si[1024];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *p = src + r * inner;
        T bv = p[0];
        int64_t bi = 0;
        for (int64_t i = threadIdx.x; i < inner; i += blockDim.x)
            if (beats(p[i], i, bv, bi, is_max)) bv = p[i], bi = i;
        __syncthreads();
        sv[threadIdx.x] = bv;
        si[threadIdx.x] = bi;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s && beats(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x], is_max)) {
                sv[threadIdx.x] = sv[threadIdx.x + s];
                si[threadIdx.x] = si[threadIdx.x + s];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            idx[r] = si[0];
            if (values) values[r] = sv[0];
        }
    }
}

/* the max of a row as the CPU takes it: -inf becomes 0 (an all -inf row) */
template <typename T> __device__ inline T row_max(const T *x, int64_t cols) {
    T m = x[0];
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = x[c] > m ? x[c] : m;
    m = block_max<T>(m);
    return m == -(T)INFINITY ? (T)0 : m;
}

template <typename T>
__global__ void softmax_kernel(int64_t rows, int64_t cols, bool log_form, const T *src, T *dst) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *x = src + r * cols;
        T *y = dst + r * cols;
        T m = row_max(x, cols);
        double s = 0;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += (double)(T)exp((double)(x[c] - m));
        s = block_sum<double>(s);
        if (log_form) {
            T l = (T)log(s);
            for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) y[c] = (x[c] - m) - l;
        } else {
            T inv = (T)(1.0 / s);
            for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) y[c] = (T)exp((double)(x[c] - m)) * inv;
        }
    }
}

/* loss.c's CE_FORWARD: loss per row; the label weights summed into *wsum; the
 * first row with a bad label into *bad (then nothing else counts) */
template <typename T>
__global__ void ce_forward_kernel(kbl_ce_args a, double *wsum, unsigned long long *bad) {
    const T *w = (const T *)a.weight;
    T *loss = (T *)a.out;
    for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
        int64_t y = a.labels[r];
        if (y == a.ignore || y < 0 || y >= a.cols) {
            if (threadIdx.x == 0) {
                loss[r] = 0;
                if (y != a.ignore) atomicMin(bad, (unsigned long long)r);
            }
            continue;
        }
        const T *row = (const T *)a.logits + r * a.cols;
        T m = row[0];
        for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) m = row[c] > m ? row[c] : m;
        m = block_max<T>(m);
        double s = 0, smooth = 0, wall = 0;
        for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) s += exp((double)(row[c] - m));
        s = block_sum<double>(s);
        double lse = (double)m + log(s);
        if (a.smoothing > 0) {
            for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) {
                double wc = w ? (double)w[c] : 1.0;
                smooth += wc * (lse - (double)row[c]);
                wall += wc;
            }
            smooth = block_sum<double>(smooth);
        }
        if (threadIdx.x == 0) {
            double wy = w ? (double)w[y] : 1.0;
            loss[r] = (T)((1 - a.smoothing) * wy * (lse - (double)row[y]) + a.smoothing / (double)a.cols * smooth);
            atomicAdd(wsum, wy);
        }
    }
}

/* loss.c's CE_BACKWARD */
template <typename T>
__global__ void ce_backward_kernel(kbl_ce_args a) {
    const T *w = (const T *)a.weight, *gp = (const T *)a.grad;
    for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
        int64_t y = a.labels[r];
        T *drow = (T *)a.out + r * a.cols;
        if (y == a.ignore) {
            for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) drow[c] = 0;
            continue;
        }
        const T *row = (const T *)a.logits + r * a.cols;
        T m = row[0];
        for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) m = row[c] > m ? row[c] : m;
        m = block_max<T>(m);
        double s = 0, wall = 0;
        for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) {
            s += (double)(T)exp((double)(row[c] - m));
            wall += w ? (double)w[c] : 1.0;
        }
        s = block_sum<double>(s);
        wall = block_sum<double>(wall);
        double scale = (double)(a.per_row ? gp[r] : gp[0]) * a.gscale;
        double wy = w ? (double)w[y] : 1.0, e = a.smoothing, inv = 1.0 / s;
        for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) {
            double p = (double)(T)exp((double)(row[c] - m)) * inv, wc = w ? (double)w[c] : 1.0;
            double d = (1 - e) * wy * (p - (c == y)) + e / (double)a.cols * (wall * p - wc);
            drow[c] = (T)(scale * d);
        }
    }
}

}  // namespace

int sum_rows(int dtype, int64_t rows, int64_t inner, const void *src, void *dst) {
    if (rows == 0) return 0;
    int th = row_threads(inner);
    switch (dtype) {
    case KBL_FLOAT32: sum_rows_kernel<float><<<row_blocks(rows), th, 0, stream()>>>(rows, inner, (const float *)src, (float *)dst); break;
    case KBL_FLOAT64: sum_rows_kernel<double><<<row_blocks(rows), th, 0, stream()>>>(rows, inner, (const double *)src, (double *)dst); break;
    default: sum_rows_kernel<int64_t><<<row_blocks(rows), th, 0, stream()>>>(rows, inner, (const int64_t *)src, (int64_t *)dst); break;
    }
    KBL_LAUNCHED("sum (rows)");
    return 0;
}

template <typename T> static int sum_cols_t(int64_t outer, int64_t cols, const T *src, T *dst) {
    typedef typename Acc<T>::type A;
    int64_t tiles = (cols + 31) / 32;
    /* enough row chunks to fill the device when there are few column tiles */
    int64_t parts = tiles >= 256 ? 1 : (256 + tiles - 1) / tiles;
    if (parts > (outer + 63) / 64) parts = (outer + 63) / 64;
    if (parts < 1) parts = 1;
    int64_t chunk = (outer + parts - 1) / parts;
    parts = (outer + chunk - 1) / chunk;
    if (parts < 1) parts = 1;
    A *partial = nullptr;
    int64_t pbytes = parts > 1 ? parts * cols * (int64_t)sizeof(A) : 0;
    if (pbytes && !(partial = (A *)scratch(pbytes))) return -1;
    dim3 grid((unsigned)tiles, (unsigned)parts), block(32, 8);
    sum_cols_kernel<T><<<grid, block, 0, stream()>>>(outer, cols, chunk, src, dst, partial);
    if (partial) sum_partials_kernel<T><<<blocks_for(cols), 256, 0, stream()>>>(parts, cols, partial, dst);
    cudaError_t e = cudaGetLastError();
    if (partial) scratch_free(partial, pbytes);
    return e == cudaSuccess ? 0 : fail("kernel sum (columns)", e);
}

int sum_cols(int dtype, int64_t outer, int64_t cols, const void *src, void *dst) {
    if (cols == 0) return 0;
    if (outer == 0) { /* a sum over nothing is zero */
        int64_t es = dtype == KBL_FLOAT32 ? 4 : 8;
        KBL_CU(cudaMemsetAsync(dst, 0, (size_t)(cols * es), stream()));
        return 0;
    }
    switch (dtype) {
    case KBL_FLOAT32: return sum_cols_t<float>(outer, cols, (const float *)src, (float *)dst);
    case KBL_FLOAT64: return sum_cols_t<double>(outer, cols, (const double *)src, (double *)dst);
    default: return sum_cols_t<int64_t>(outer, cols, (const int64_t *)src, (int64_t *)dst);
    }
}

int extreme_rows(int dtype, int is_max, int64_t rows, int64_t inner, const void *src, void *values,
                 int64_t *indices) {
    if (rows == 0) return 0;
    int th = row_threads(inner);
    KBL_CU_ALL(dtype, extreme_kernel<T><<<row_blocks(rows), th, 0, stream()>>>(rows, inner, is_max != 0,
                                                                             (const T *)src, (T *)values, indices))
    KBL_LAUNCHED("max/min");
    return 0;
}

int softmax_rows(int dtype, int log_form, int64_t rows, int64_t cols, const void *src, void *dst) {
    if (rows == 0 || cols == 0) return 0;
    int th = row_threads(cols);
    KBL_CU_FLOAT(dtype, softmax_kernel<T><<<row_blocks(rows), th, 0, stream()>>>(rows, cols, log_form != 0,
                                                                               (const T *)src, (T *)dst))
    KBL_LAUNCHED("softmax");
    return 0;
}

int cross_entropy(const kbl_ce_args *a) {
    if (a->rows == 0) return 0;
    int th = row_threads(a->cols);
    if (a->grad) {
        KBL_CU_FLOAT(a->dtype, ce_backward_kernel<T><<<row_blocks(a->rows), th, 0, stream()>>>(*a))
        KBL_LAUNCHED("cross_entropy backward");
        return 0;
    }
    /* [0]: the weight total (double), [1]: the first bad row (unsigned, all ones: none) */
    unsigned long long host_out[2];
    void *dev = scratch(16);
    if (!dev) return -1;
    int rc = 0;
    cudaError_t e = cudaMemsetAsync(dev, 0, 8, stream());
    if (e == cudaSuccess) e = cudaMemsetAsync((char *)dev + 8, 0xff, 8, stream());
    if (e == cudaSuccess) {
        KBL_CU_FLOAT(a->dtype, ce_forward_kernel<T><<<row_blocks(a->rows), th, 0, stream()>>>(
                                   *a, (double *)dev, (unsigned long long *)dev + 1))
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) e = cudaMemcpyAsync(host_out, dev, 16, cudaMemcpyDeviceToHost, stream());
    if (e != cudaSuccess) rc = fail("cross_entropy forward", e);
    else rc = sync("cross_entropy forward");
    scratch_free(dev, 16);
    if (rc) return rc;
    double wsum;
    memcpy(&wsum, &host_out[0], sizeof wsum);
    *a->wsum_host = wsum;
    *a->bad_host = host_out[1] == ~0ull ? -1 : (int64_t)host_out[1];
    return 0;
}

}  // namespace kblcuda
