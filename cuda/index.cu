/* index.cu — indexing kernels (core/cpu/index.c's, on the device):
 * the range check of int64 indices, index_select and its adjoint index_add,
 * the embedding backward, one_hot, gather and scatter_add; and dropout's
 * keep-mask, drawn with core/philox.h from the same counters as the CPU's.
 * Sums into one place (index_add, scatter_add, the embedding backward) use
 * atomicAdd, so their float results may differ from run to run in the last bits. */
#include "ops.cuh"
#include "philox.h"

namespace kblcuda {

namespace {

__global__ void index_check_kernel(const int64_t *idx, int64_t n, int64_t size, int64_t skip,
                                   unsigned long long *bad) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t v = idx[i];
        if (v != skip && (v < 0 || v >= size)) atomicMin(bad, (unsigned long long)i);
    }
}

/* rows of `inner` elements of esize bytes, copied in 4- or 8-byte words when aligned */
template <typename W>
__global__ void select_kernel(int64_t outer, int64_t n, int64_t size, int64_t inner, const int64_t *idx,
                              const W *src, W *out) {
    int64_t total = outer * n * inner;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t e = i % inner, j = (i / inner) % n, o = i / (inner * n);
        out[i] = src[(o * size + idx[j]) * inner + e];
    }
}

__device__ inline void add_at(float *p, float v) { atomicAdd(p, v); }
__device__ inline void add_at(double *p, double v) { atomicAdd(p, v); }
__device__ inline void add_at(int32_t *p, int32_t v) { atomicAdd((int *)p, (int)v); }
__device__ inline void add_at(int64_t *p, int64_t v) {   /* two's complement: unsigned adds are signed adds */
    atomicAdd((unsigned long long *)p, (unsigned long long)v);
}

/* dst[o, idx[j], e] += src[o, j, e], skipping idx[j] == skip */
template <typename T>
__global__ void index_add_kernel(int64_t outer, int64_t n, int64_t size, int64_t inner, int64_t skip,
                                 const int64_t *idx, const T *src, T *dst) {
    int64_t total = outer * n * inner;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t e = i % inner, j = (i / inner) % n, o = i / (inner * n);
        if (idx[j] == skip) continue;
        add_at(&dst[(o * size + idx[j]) * inner + e], src[i]);
    }
}

__global__ void one_hot_kernel(int64_t n, int64_t classes, const int64_t *idx, int64_t *out) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i * classes + idx[i]] = 1;
}

/* the offset of index position i (contiguous over idx_shape) in a tensor of the
 * given strides, dim `dim` replaced by the index value; soff: in src */
__device__ inline void indexed(const kbl_index_args &a, int64_t i, int64_t *off, int64_t *soff) {
    int64_t rem = i, o = 0, s = 0, v = a.idx[i];
    for (int e = a.ndim - 1; e >= 0; e--) {
        int64_t c = rem % a.idx_shape[e];
        rem /= a.idx_shape[e];
        o += (e == a.dim ? v : c) * a.a_strides[e];
        s += c * a.s_strides[e];
    }
    *off = o;
    *soff = s;
}

template <typename T>
__global__ void gather_kernel(kbl_index_args a, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off, soff;
        indexed(a, i, &off, &soff);
        ((T *)a.out)[i] = ((const T *)a.src)[off];
    }
}

template <typename T>
__global__ void scatter_add_kernel(kbl_index_args a, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off, soff;
        indexed(a, i, &off, &soff);
        add_at(&((T *)a.out)[off], ((const T *)a.src)[soff]);
    }
}

/* dropout.c's MASK_FILL: block b of four elements from counter + b */
template <typename T>
__global__ void dropout_kernel(int64_t n, uint64_t seed, uint64_t counter, uint32_t threshold, T scale, T *out) {
    int64_t nblocks = (n + 3) / 4;
    for (int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; b < nblocks; b += (int64_t)gridDim.x * blockDim.x) {
        uint32_t w[4];
        kbl_philox4x32(seed, 0, counter + (uint64_t)b, w);
        for (int k = 0; k < 4 && b * 4 + k < n; k++) out[b * 4 + k] = w[k] >= threshold ? scale : (T)0;
    }
}

}  // namespace

int index_check(const int64_t *idx, int64_t n, int64_t size, int64_t skip, int64_t *bad_pos_host,
                int64_t *bad_val_host) {
    *bad_pos_host = -1;
    if (n == 0) return 0;
    unsigned long long *bad = (unsigned long long *)scratch(8), found = ~0ull;
    if (!bad) return -1;
    cudaError_t e = cudaMemsetAsync(bad, 0xff, 8, stream());
    if (e == cudaSuccess) {
        index_check_kernel<<<blocks_for(n), 256, 0, stream()>>>(idx, n, size, skip, bad);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) e = cudaMemcpyAsync(&found, bad, 8, cudaMemcpyDeviceToHost, stream());
    int rc = e != cudaSuccess ? fail("index check", e) : sync("index check");
    if (rc == 0 && found != ~0ull) {
        *bad_pos_host = (int64_t)found;
        e = cudaMemcpyAsync(bad_val_host, idx + found, 8, cudaMemcpyDeviceToHost, stream());
        rc = e != cudaSuccess ? fail("index check", e) : sync("index check");
    }
    scratch_free(bad, 8);
    return rc;
}

int index(const kbl_index_args *a) {
    switch (a->kind) {
    case KBL_INDEX_SELECT: {
        int64_t es = a->dtype == KBL_FLOAT64 || a->dtype == KBL_INT64 ? 8 : a->dtype == KBL_UINT8 ? 1 : 4;
        int64_t total = a->outer * a->n * a->inner;
        if (total == 0) return 0;
        unsigned nb = blocks_for(total);
        if (es == 8)
            select_kernel<uint64_t><<<nb, 256, 0, stream()>>>(a->outer, a->n, a->size, a->inner, a->idx,
                                                              (const uint64_t *)a->src, (uint64_t *)a->out);
        else if (es == 4)
            select_kernel<uint32_t><<<nb, 256, 0, stream()>>>(a->outer, a->n, a->size, a->inner, a->idx,
                                                              (const uint32_t *)a->src, (uint32_t *)a->out);
        else
            select_kernel<uint8_t><<<nb, 256, 0, stream()>>>(a->outer, a->n, a->size, a->inner, a->idx,
                                                             (const uint8_t *)a->src, (uint8_t *)a->out);
        KBL_LAUNCHED("index_select");
        return 0;
    }
    case KBL_INDEX_ADD:
    case KBL_EMBEDDING_BACKWARD: {
        int64_t total = a->outer * a->n * a->inner;
        int64_t skip = a->kind == KBL_EMBEDDING_BACKWARD ? a->skip : INT64_MIN;
        if (total == 0) return 0;
        KBL_CU_FLOAT(a->dtype, index_add_kernel<T><<<blocks_for(total), 256, 0, stream()>>>(
                                   a->outer, a->n, a->size, a->inner, skip, a->idx, (const T *)a->src, (T *)a->out))
        KBL_LAUNCHED("index_add");
        return 0;
    }
    case KBL_ONE_HOT:
        if (a->n == 0) return 0;
        one_hot_kernel<<<blocks_for(a->n), 256, 0, stream()>>>(a->n, a->size, a->idx, (int64_t *)a->out);
        KBL_LAUNCHED("one_hot");
        return 0;
    case KBL_GATHER:
    case KBL_SCATTER_ADD: {
        int64_t n = 1;
        for (int d = 0; d < a->ndim; d++) n *= a->idx_shape[d];
        if (n == 0) return 0;
        if (a->kind == KBL_SCATTER_ADD && a->dtype == KBL_UINT8)
            return host->fail("scatter_add: no CUDA kernel for scatter_add on uint8 (CUDA has no 8-bit atomic "
                              "add); convert to int32 first");
        unsigned nb = blocks_for(n);
        if (a->kind == KBL_GATHER) KBL_CU_ALL(a->dtype, gather_kernel<T><<<nb, 256, 0, stream()>>>(*a, n))
        else if (a->dtype == KBL_FLOAT32) scatter_add_kernel<float><<<nb, 256, 0, stream()>>>(*a, n);
        else if (a->dtype == KBL_FLOAT64) scatter_add_kernel<double><<<nb, 256, 0, stream()>>>(*a, n);
        else if (a->dtype == KBL_INT32) scatter_add_kernel<int32_t><<<nb, 256, 0, stream()>>>(*a, n);
        else scatter_add_kernel<int64_t><<<nb, 256, 0, stream()>>>(*a, n);
        KBL_LAUNCHED("gather/scatter_add");
        return 0;
    }
    default:
        return host->fail("cuda: unknown indexing kernel %d", a->kind);
    }
}

int dropout_mask(int dtype, int64_t n, uint64_t seed, uint64_t counter, uint32_t threshold, double scale,
                 void *out) {
    if (n == 0) return 0;
    KBL_CU_FLOAT(dtype, dropout_kernel<T><<<blocks_for((n + 3) / 4), 256, 0, stream()>>>(
                            n, seed, counter, threshold, (T)scale, (T *)out))
    KBL_LAUNCHED("dropout");
    return 0;
}

}  // namespace kblcuda
