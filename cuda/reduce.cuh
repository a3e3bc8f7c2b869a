/* reduce.cuh — block-wide reductions shared by the row kernels (reduce.cu,
 * norm.cu): sums in a chosen accumulator type, maxima, and the block size for a
 * row of a given length. Blocks are a multiple of 32 threads, at most 1024. */
#ifndef KBL_CUDA_REDUCE_CUH
#define KBL_CUDA_REDUCE_CUH

#include "common.cuh"

namespace kblcuda {

template <typename A> __device__ inline A warp_sum(A v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* The sum of v over the block, returned to every thread. */
template <typename A> __device__ inline A block_sum(A v) {
    __shared__ A sh[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        v = lane < nw ? sh[lane] : (A)0;
        v = warp_sum(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

/* The maximum of v over the block (NaN-free inputs; a NaN may or may not win). */
template <typename T> __device__ inline T block_max(T v) {
    __shared__ T sh[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        T u = __shfl_down_sync(0xffffffffu, v, o);
        v = u > v ? u : v;
    }
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        v = lane < nw ? sh[lane] : sh[0];
        for (int o = 16; o > 0; o >>= 1) {
            T u = __shfl_down_sync(0xffffffffu, v, o);
            v = u > v ? u : v;
        }
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

/* Threads per block for a row of n elements. */
inline int row_threads(int64_t n) { return n >= 2048 ? 512 : n >= 256 ? 256 : n >= 64 ? 64 : 32; }

/* Blocks for rows processed one per block (the kernels loop when there are more). */
inline unsigned row_blocks(int64_t rows) { return (unsigned)(rows < 65535 * 16 ? (rows > 0 ? rows : 1) : 65535 * 16); }

}  // namespace kblcuda

#endif
