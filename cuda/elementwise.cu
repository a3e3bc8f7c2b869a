/* elementwise.cu — the kernels over a kbl_iter (up to three strided operands,
 * broadcast dims at stride 0, operand 0 the output): copies with dtype
 * conversion, fills, binary ops, in-place add, where, unary ops; and the fused
 * backward of the unary ops over contiguous data. The arithmetic is the CPU's, element
 * for element: the op tables core/ops_unary.def (through core/ops_scalar.h) and
 * core/ops_binary.def. */
#include <math.h>

#include "ops.cuh"
#include "../core/ops_scalar.h"

namespace kblcuda {

namespace {

/* What a C cast does on the host: to uint8 through int64 (wrapping), else direct. */
template <typename TD, typename TS> __device__ inline TD convert(TS v) { return (TD)v; }
template <> __device__ inline uint8_t convert<uint8_t, float>(float v) { return (uint8_t)(int64_t)v; }
template <> __device__ inline uint8_t convert<uint8_t, double>(double v) { return (uint8_t)(int64_t)v; }
template <> __device__ inline uint8_t convert<uint8_t, int32_t>(int32_t v) { return (uint8_t)(int64_t)v; }
template <> __device__ inline uint8_t convert<uint8_t, int64_t>(int64_t v) { return (uint8_t)v; }

template <typename TD, typename TS>
__global__ void copy_kernel(kbl_iter it, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[2];
        iter_offsets<2>(it, i, off);
        ((TD *)it.base[0])[off[0]] = convert<TD, TS>(((const TS *)it.base[1])[off[1]]);
    }
}

template <typename T>
__global__ void fill_kernel(kbl_iter it, int64_t n, T v) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[1];
        iter_offsets<1>(it, i, off);
        ((T *)it.base[0])[off[0]] = v;
    }
}

/* op's forward from core/ops_binary.def, into T or (comparisons, logic) uint8 */
#define CU_STORE_SAME(FWD) ((T *)it.base[0])[off[0]] = (T)(FWD)
#define CU_STORE_FLOAT(FWD) ((T *)it.base[0])[off[0]] = (T)(FWD)
#define CU_STORE_U8(FWD) ((uint8_t *)it.base[0])[off[0]] = (uint8_t)(FWD)
template <typename T>
__global__ void binary_kernel(kbl_iter it, int64_t n, int op) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[3];
        iter_offsets<3>(it, i, off);
        T x = ((const T *)it.base[1])[off[1]], y = ((const T *)it.base[2])[off[2]];
        switch (op) {
#define KBL_BINARY(NAME, name, out, saves, FWD, rule) case KBL_##NAME: CU_STORE_##out(FWD); break;
#include "../core/ops_binary.def"
#undef KBL_BINARY
        default: break;
        }
    }
}

template <typename T>
__global__ void axpy_kernel(kbl_iter it, int64_t n, T alpha) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[2];
        iter_offsets<2>(it, i, off);
        ((T *)it.base[0])[off[0]] += alpha * ((const T *)it.base[1])[off[1]];
    }
}

template <typename T>
__global__ void where_kernel(kbl_iter it, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[3];
        iter_offsets<3>(it, i, off);
        if (((const uint8_t *)it.base[1])[off[1]]) ((T *)it.base[0])[off[0]] = ((const T *)it.base[2])[off[2]];
    }
}

/* f(x) for every op of core/ops_unary.def: the scalar functions of
 * core/ops_scalar.h, the same the CPU's kernels call */
__device__ inline float unary_op(int op, float x, float p0, float p1) {
    switch (op) {
#define KBL_UNARY(NAME, name, ...) case KBL_##NAME: return kbl_f32_##name(x, p0, p1);
#include "../core/ops_unary.def"
#undef KBL_UNARY
    default: return x;
    }
}

__device__ inline double unary_op(int op, double x, double p0, double p1) {
    switch (op) {
#define KBL_UNARY(NAME, name, ...) case KBL_##NAME: return kbl_f64_##name(x, p0, p1);
#include "../core/ops_unary.def"
#undef KBL_UNARY
    default: return x;
    }
}

template <typename T>
__global__ void unary_float_kernel(kbl_iter it, int64_t n, int op, T p0, T p1) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[2];
        iter_offsets<2>(it, i, off);
        ((T *)it.base[0])[off[0]] = unary_op(op, ((const T *)it.base[1])[off[1]], p0, p1);
    }
}

/* integer inputs and logical_not, through double, as core/cpu/unary.c's run_int */
__global__ void unary_int_kernel(kbl_iter it, int64_t n, int op, int in_dtype, int out_dtype, double p0, double p1) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[2];
        iter_offsets<2>(it, i, off);
        double x = load_as_double(it.base[1], in_dtype, off[1]);
        store_from_double(it.base[0], out_dtype, off[0], unary_op(op, x, p0, p1));
    }
}

/* g * f'(x), with y = f(x), for every op of core/ops_unary.def */
__device__ inline float unary_grad_op(int op, float g, float x, float y, float p0, float p1) {
    switch (op) {
#define KBL_UNARY(NAME, name, ...) case KBL_##NAME: return kbl_f32_d_##name(g, x, y, p0, p1);
#include "../core/ops_unary.def"
#undef KBL_UNARY
    default: return 0;
    }
}

__device__ inline double unary_grad_op(int op, double g, double x, double y, double p0, double p1) {
    switch (op) {
#define KBL_UNARY(NAME, name, ...) case KBL_##NAME: return kbl_f64_d_##name(g, x, y, p0, p1);
#include "../core/ops_unary.def"
#undef KBL_UNARY
    default: return 0;
    }
}

template <typename T>
__global__ void unary_grad_kernel(int64_t n, int op, T *out, const T *g, const T *x, const T *y, T p0, T p1) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = unary_grad_op(op, g[i], x ? x[i] : (T)0, y ? y[i] : (T)0, p0, p1);
}

}  // namespace

int copy(const kbl_iter *it, int dst_dtype, int src_dtype) {
    int64_t n = iter_numel(*it);
    if (n == 0) return 0;
    unsigned nb = blocks_for(n);
#define COPY_TO(TD)                                                                      \
    switch (src_dtype) {                                                                 \
    case KBL_FLOAT32: copy_kernel<TD, float><<<nb, 256, 0, stream()>>>(*it, n); break;    \
    case KBL_FLOAT64: copy_kernel<TD, double><<<nb, 256, 0, stream()>>>(*it, n); break;   \
    case KBL_INT32: copy_kernel<TD, int32_t><<<nb, 256, 0, stream()>>>(*it, n); break;    \
    case KBL_INT64: copy_kernel<TD, int64_t><<<nb, 256, 0, stream()>>>(*it, n); break;    \
    default: copy_kernel<TD, uint8_t><<<nb, 256, 0, stream()>>>(*it, n); break;           \
    }
    KBL_CU_ALL(dst_dtype, COPY_TO(T))
#undef COPY_TO
    KBL_LAUNCHED("copy");
    return 0;
}

int fill(const kbl_iter *it, int dtype, double value) {
    int64_t n = iter_numel(*it);
    if (n == 0) return 0;
    unsigned nb = blocks_for(n);
    if (dtype == KBL_UINT8)
        fill_kernel<uint8_t><<<nb, 256, 0, stream()>>>(*it, n, (uint8_t)(int64_t)value);
    else
        KBL_CU_ALL(dtype, fill_kernel<T><<<nb, 256, 0, stream()>>>(*it, n, (T)value))
    KBL_LAUNCHED("fill");
    return 0;
}

int binary(const kbl_iter *it, int op, int dtype) {
    int64_t n = iter_numel(*it);
    if (n == 0) return 0;
    KBL_CU_ALL(dtype, binary_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(*it, n, op))
    KBL_LAUNCHED("binary");
    return 0;
}

int axpy(const kbl_iter *it, int dtype, double alpha) {
    int64_t n = iter_numel(*it);
    if (n == 0) return 0;
    KBL_CU_ALL(dtype, axpy_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(*it, n, (T)alpha))
    KBL_LAUNCHED("add_");
    return 0;
}

int where(const kbl_iter *it, int dtype) {
    int64_t n = iter_numel(*it);
    if (n == 0) return 0;
    KBL_CU_ALL(dtype, where_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(*it, n))
    KBL_LAUNCHED("where");
    return 0;
}

int unary(const kbl_iter *it, int op, int in_dtype, int out_dtype, double p0, double p1) {
    int64_t n = iter_numel(*it);
    if (n == 0) return 0;
    unsigned nb = blocks_for(n);
    bool float_op = (in_dtype == KBL_FLOAT32 || in_dtype == KBL_FLOAT64) && out_dtype == in_dtype; /* not logical_not */
    if (!float_op)
        unary_int_kernel<<<nb, 256, 0, stream()>>>(*it, n, op, in_dtype, out_dtype, p0, p1);
    else if (in_dtype == KBL_FLOAT32)
        unary_float_kernel<float><<<nb, 256, 0, stream()>>>(*it, n, op, (float)p0, (float)p1);
    else
        unary_float_kernel<double><<<nb, 256, 0, stream()>>>(*it, n, op, p0, p1);
    KBL_LAUNCHED("unary");
    return 0;
}

int unary_grad(int op, int dtype, int64_t n, void *out, const void *g, const void *x, const void *y, double p0,
               double p1) {
    if (n == 0) return 0;
    KBL_CU_FLOAT(dtype, unary_grad_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(
                            n, op, (T *)out, (const T *)g, (const T *)x, (const T *)y, (T)p0, (T)p1))
    KBL_LAUNCHED("unary_grad");
    return 0;
}

}  // namespace kblcuda
