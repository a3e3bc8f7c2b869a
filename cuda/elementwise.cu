/* elementwise.cu — the kernels over a kbl_iter (up to three strided operands,
 * broadcast dims at stride 0, operand 0 the output): copies with dtype
 * conversion, fills, binary ops, in-place add, where, unary ops; and the fused
 * backward of the unary ops over contiguous data. The arithmetic is core/binary.c's
 * and core/unary.c's, element for element. */
#include <math.h>

#include "ops.cuh"

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

template <typename T> __device__ inline bool is_nan(T x) { return x != x; }

template <typename T>
__global__ void binary_kernel(kbl_iter it, int64_t n, int op, bool is_float) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[3];
        iter_offsets<3>(it, i, off);
        T x = ((const T *)it.base[1])[off[1]], y = ((const T *)it.base[2])[off[2]];
        if (op >= KBL_EQ) {
            bool r;
            switch (op) {
            case KBL_EQ: r = x == y; break;
            case KBL_NE: r = x != y; break;
            case KBL_LT: r = x < y; break;
            case KBL_LE: r = x <= y; break;
            case KBL_GT: r = x > y; break;
            case KBL_GE: r = x >= y; break;
            case KBL_LOGICAL_AND: r = (x != 0) && (y != 0); break;
            case KBL_LOGICAL_OR: r = (x != 0) || (y != 0); break;
            default: r = (x != 0) != (y != 0); break;
            }
            ((uint8_t *)it.base[0])[off[0]] = r;
            continue;
        }
        T r;
        switch (op) {
        case KBL_ADD: r = x + y; break;
        case KBL_SUB: r = x - y; break;
        case KBL_MUL: r = x * y; break;
        case KBL_DIV: r = (y == 0 && !is_float) ? (T)0 : (T)(x / y); break;
        case KBL_POW: r = (T)pow((double)x, (double)y); break;
        case KBL_MAXIMUM: r = (x > y || is_nan(x)) ? x : y; break;
        default: r = (x < y || is_nan(x)) ? x : y; break;
        }
        ((T *)it.base[0])[off[0]] = r;
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

#define SQRT_2_OVER_PI 0.7978845608028654
#define INV_SQRT_2 0.7071067811865476
#define INV_SQRT_2PI 0.3989422804014327

/* unary.c's UNARY_SWITCH */
template <typename T>
__device__ inline T unary_op(int op, T x, T p0, T p1) {
    switch (op) {
    case KBL_NEG: return -x;
    case KBL_ABS: return fabs(x);
    case KBL_EXP: return exp(x);
    case KBL_LOG: return log(x);
    case KBL_LOG1P: return log1p(x);
    case KBL_SQRT: return sqrt(x);
    case KBL_RSQRT: return (T)1 / sqrt(x);
    case KBL_SQUARE: return x * x;
    case KBL_RELU: return x > 0 ? x : (T)0;
    case KBL_LEAKY_RELU: return x > 0 ? x : x * p0;
    case KBL_ELU: return x > 0 ? x : p0 * expm1(x);
    case KBL_GELU: return (T)0.5 * x * (1 + erf(x * (T)INV_SQRT_2));
    case KBL_GELU_TANH: return (T)0.5 * x * (1 + tanh((T)SQRT_2_OVER_PI * (x + (T)0.044715 * x * x * x)));
    case KBL_SIGMOID: return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    case KBL_TANH: return tanh(x);
    case KBL_SOFTPLUS: return x * p0 > p1 ? x : log1p(exp(x * p0)) / p0;
    case KBL_SILU: return x / (1 + exp(-x));
    case KBL_AFFINE: return x * p0 + p1;
    case KBL_POW_SCALAR: return p0 == 2 ? x * x : pow(x, p0);
    case KBL_RPOW_SCALAR: return pow(p0, x);
    case KBL_CLAMP: return (x < p0 ? p0 : x) > p1 ? p1 : (x < p0 ? p0 : x);
    case KBL_RECIPROCAL: return 1 / x;
    case KBL_SIGN: return (T)((x > 0) - (x < 0));
    case KBL_SIN: return sin(x);
    case KBL_COS: return cos(x);
    default: return x;
    }
}

template <typename T>
__global__ void unary_float_kernel(kbl_iter it, int64_t n, int op, T p0, T p1) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[2];
        iter_offsets<2>(it, i, off);
        ((T *)it.base[0])[off[0]] = unary_op<T>(op, ((const T *)it.base[1])[off[1]], p0, p1);
    }
}

/* unary.c's run_int: integer inputs and logical_not, through double */
__global__ void unary_int_kernel(kbl_iter it, int64_t n, int op, int in_dtype, int out_dtype, double p0, double p1) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[2];
        iter_offsets<2>(it, i, off);
        double x = load_as_double(it.base[1], in_dtype, off[1]), r;
        switch (op) {
        case KBL_NEG: r = -x; break;
        case KBL_ABS: r = fabs(x); break;
        case KBL_SQUARE: r = x * x; break;
        case KBL_SIGN: r = (x > 0) - (x < 0); break;
        case KBL_RELU: r = x > 0 ? x : 0; break;
        case KBL_AFFINE: r = x * p0 + p1; break;
        case KBL_LOGICAL_NOT: r = x == 0; break;
        case KBL_POW_SCALAR: r = pow(x, p0); break;
        default: r = x < p0 ? p0 : x, r = r > p1 ? p1 : r; break;
        }
        store_from_double(it.base[0], out_dtype, off[0], r);
    }
}

/* unary.c's GRAD_SWITCH: g * f'(x), with y = f(x) */
template <typename T>
__device__ inline T unary_grad_op(int op, T g, T x, T y, T p0, T p1) {
    switch (op) {
    case KBL_NEG: return -g;
    case KBL_ABS: return g * (T)((x > 0) - (x < 0));
    case KBL_EXP: return g * y;
    case KBL_LOG: return g / x;
    case KBL_LOG1P: return g / (1 + x);
    case KBL_SQRT: return g * (T)0.5 / y;
    case KBL_RSQRT: return g * (T)-0.5 * y * y * y;
    case KBL_SQUARE: return 2 * g * x;
    case KBL_RELU: return x > 0 ? g : (T)0;
    case KBL_LEAKY_RELU: return x > 0 ? g : g * p0;
    case KBL_ELU: return x > 0 ? g : g * (y + p0);
    case KBL_GELU:
        return g * ((T)0.5 * (1 + erf(x * (T)INV_SQRT_2)) + x * (T)INV_SQRT_2PI * exp((T)-0.5 * x * x));
    case KBL_GELU_TANH: {
        T t = tanh((T)SQRT_2_OVER_PI * (x + (T)0.044715 * x * x * x));
        return g * ((T)0.5 * (1 + t) + (T)0.5 * x * (1 - t * t) * (T)SQRT_2_OVER_PI * (1 + 3 * (T)0.044715 * x * x));
    }
    case KBL_SIGMOID: return g * y * (1 - y);
    case KBL_TANH: return g * (1 - y * y);
    case KBL_SOFTPLUS: return x * p0 > p1 ? g : g / (1 + exp(-x * p0));
    case KBL_SILU: return g * (1 / (1 + exp(-x))) * (1 + x * (1 - 1 / (1 + exp(-x))));
    case KBL_AFFINE: return g * p0;
    case KBL_POW_SCALAR: return p0 == 2 ? 2 * g * x : p0 == 0 ? (T)0 : g * p0 * pow(x, p0 - 1);
    case KBL_RPOW_SCALAR: return g * y * log(p0);
    case KBL_CLAMP: return x >= p0 && x <= p1 ? g : (T)0;
    case KBL_RECIPROCAL: return -g * y * y;
    case KBL_SIN: return g * cos(x);
    case KBL_COS: return -g * sin(x);
    default: return 0 * g;
    }
}

template <typename T>
__global__ void unary_grad_kernel(int64_t n, int op, T *out, const T *g, const T *x, const T *y, T p0, T p1) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = unary_grad_op<T>(op, g[i], x ? x[i] : (T)0, y ? y[i] : (T)0, p0, p1);
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
    bool is_float = dtype == KBL_FLOAT32 || dtype == KBL_FLOAT64;
    KBL_CU_ALL(dtype, binary_kernel<T><<<blocks_for(n), 256, 0, stream()>>>(*it, n, op, is_float))
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
    bool float_op = (in_dtype == KBL_FLOAT32 || in_dtype == KBL_FLOAT64) && op != KBL_LOGICAL_NOT;
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
