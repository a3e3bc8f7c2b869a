/* common.cuh — what the files of the CUDA backend share: the host's fail
 * function, the one stream, the error checks that turn a CUDA status into a kbl
 * error naming the call (never an abort), launch sizes, dtype dispatch, and the
 * strided walk over a kbl_iter. */
#ifndef KBL_CUDA_COMMON_CUH
#define KBL_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "backend.h"
#include "kbl.h"

namespace kblcuda {

extern const kbl_backend_host *host;   /* set by init (backend.cu) */
cudaStream_t stream();                 /* the device's one stream */

/* Reports "cuda: <what> failed: <error name>: <description>"; returns -1. */
int fail(const char *what, cudaError_t e);
/* Device scratch from the caching allocator (freed with scratch_free). */
void *scratch(int64_t nbytes);
void scratch_free(void *p, int64_t nbytes);
/* Waits for the stream; what names the operation whose result the host reads. */
int sync(const char *what);

/* Blocks for n items of work, at most a grid-stride loop's worth. */
inline unsigned blocks_for(int64_t n, int threads = 256) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535 * 8) b = 65535 * 8;
    return (unsigned)b;
}

__host__ __device__ inline int64_t iter_numel(const kbl_iter &it) {
    int64_t n = 1;
    for (int d = 0; d < it.ndim; d++) n *= it.shape[d];
    return n;
}

/* Element offsets (in elements) of linear position i in each operand. */
template <int NOPS>
__device__ inline void iter_offsets(const kbl_iter &it, int64_t i, int64_t *off) {
    for (int k = 0; k < NOPS; k++) off[k] = 0;
    if (it.ndim == 1) {
        for (int k = 0; k < NOPS; k++) off[k] = i * it.strides[k][0];
        return;
    }
    for (int d = it.ndim - 1; d >= 0; d--) {
        int64_t s = it.shape[d], c = i % s;
        i /= s;
        for (int k = 0; k < NOPS; k++) off[k] += c * it.strides[k][d];
    }
}

/* Any dtype read as double and written from double, as kbl_load_double does. */
__device__ inline double load_as_double(const void *p, int dtype, int64_t i) {
    switch (dtype) {
    case KBL_FLOAT32: return ((const float *)p)[i];
    case KBL_FLOAT64: return ((const double *)p)[i];
    case KBL_INT32: return ((const int32_t *)p)[i];
    case KBL_INT64: return (double)((const int64_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}
__device__ inline void store_from_double(void *p, int dtype, int64_t i, double v) {
    switch (dtype) {
    case KBL_FLOAT32: ((float *)p)[i] = (float)v; break;
    case KBL_FLOAT64: ((double *)p)[i] = v; break;
    case KBL_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case KBL_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
    default: ((uint8_t *)p)[i] = (uint8_t)(int64_t)v; break;
    }
}

}  // namespace kblcuda

/* Returns -1 with the call named when a CUDA runtime call fails. */
#define KBL_CU(call)                                                  \
    do {                                                              \
        cudaError_t kbl_e_ = (call);                                  \
        if (kbl_e_ != cudaSuccess) return kblcuda::fail(#call, kbl_e_); \
    } while (0)

/* After a kernel launch: a bad configuration is reported now, naming the kernel
 * (a fault while it runs surfaces at the next call that waits for the stream). */
#define KBL_LAUNCHED(name)                                                    \
    do {                                                                      \
        cudaError_t kbl_e_ = cudaGetLastError();                              \
        if (kbl_e_ != cudaSuccess) return kblcuda::fail("kernel " name, kbl_e_); \
    } while (0)

/* Runs BODY with T the element type of a float dtype (or of any dtype). */
#define KBL_CU_FLOAT(dtype, ...)                                  \
    switch (dtype) {                                              \
    case KBL_FLOAT32: { typedef float T; __VA_ARGS__; } break;     \
    case KBL_FLOAT64: { typedef double T; __VA_ARGS__; } break;    \
    default: break;                                               \
    }
#define KBL_CU_ALL(dtype, ...)                                    \
    switch (dtype) {                                              \
    case KBL_FLOAT32: { typedef float T; __VA_ARGS__; } break;     \
    case KBL_FLOAT64: { typedef double T; __VA_ARGS__; } break;    \
    case KBL_INT32: { typedef int32_t T; __VA_ARGS__; } break;     \
    case KBL_INT64: { typedef int64_t T; __VA_ARGS__; } break;     \
    case KBL_UINT8: { typedef uint8_t T; __VA_ARGS__; } break;     \
    default: break;                                               \
    }

#endif
