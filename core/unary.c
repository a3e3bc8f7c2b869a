/* unary.c — elementwise ops of one tensor (math and activations), each with up
 * to two scalar parameters, and kbl_unary_grad: their derivatives as one fused
 * backward kernel, registered as an op so that every device provides it. */
#include "internal.h"

#include <omp.h>
#include <tgmath.h>

static const char *unary_names[] = {
    "neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt", "square", "relu", "leaky_relu", "elu",
    "gelu", "gelu_tanh", "sigmoid", "tanh", "softplus", "silu", "affine", "pow_scalar",
    "rpow_scalar", "clamp", "reciprocal", "sign", "logical_not", "sin", "cos"};

#define SQRT_2_OVER_PI 0.7978845608028654
#define INV_SQRT_2 0.7071067811865476
#define INV_SQRT_2PI 0.3989422804014327

typedef struct { int op; int dtype; double p0, p1; } unary_ctx;

/* A strided run of o = EXPR(x), with a unit-stride loop the compiler vectorizes. */
#define LOOP(T, EXPR)                                                                     \
    do {                                                                                  \
        T *o = (T *)ptrs[0];                                                              \
        const T *a = (const T *)ptrs[1];                                                  \
        int64_t so = st[0], sa = st[1];                                                   \
        if (so == 1 && sa == 1)                                                           \
            for (int64_t i = 0; i < n; i++) { T x = a[i]; o[i] = (T)(EXPR); }              \
        else                                                                              \
            for (int64_t i = 0; i < n; i++) { T x = a[i * sa]; o[i * so] = (T)(EXPR); }    \
    } while (0)

/* op's parameters: leaky_relu slope p0; elu alpha p0; softplus beta p0, threshold p1;
 * affine x*p0 + p1; pow_scalar x^p0; rpow_scalar p0^x; clamp to [p0, p1]. */
#define UNARY_SWITCH(T)                                                                  \
    switch (op) {                                                                        \
    case KBL_NEG: LOOP(T, -x); break;                                                    \
    case KBL_ABS: LOOP(T, fabs(x)); break;                                               \
    case KBL_EXP: LOOP(T, exp(x)); break;                                                \
    case KBL_LOG: LOOP(T, log(x)); break;                                                \
    case KBL_LOG1P: LOOP(T, log1p(x)); break;                                            \
    case KBL_SQRT: LOOP(T, sqrt(x)); break;                                              \
    case KBL_RSQRT: LOOP(T, 1 / sqrt(x)); break;                                         \
    case KBL_SQUARE: LOOP(T, x * x); break;                                              \
    case KBL_RELU: LOOP(T, x > 0 ? x : 0); break;                                        \
    case KBL_LEAKY_RELU: LOOP(T, x > 0 ? x : x * p0); break;                             \
    case KBL_ELU: LOOP(T, x > 0 ? x : p0 * expm1(x)); break;                             \
    case KBL_GELU: LOOP(T, (T)0.5 * x * (1 + erf(x * (T)INV_SQRT_2))); break;            \
    case KBL_GELU_TANH:                                                                  \
        LOOP(T, (T)0.5 * x * (1 + tanh((T)SQRT_2_OVER_PI * (x + (T)0.044715 * x * x * x)))); \
        break;                                                                           \
    case KBL_SIGMOID: LOOP(T, x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))); break; \
    case KBL_TANH: LOOP(T, tanh(x)); break;                                              \
    case KBL_SOFTPLUS: LOOP(T, x * p0 > p1 ? x : log1p(exp(x * p0)) / p0); break;        \
    case KBL_SILU: LOOP(T, x / (1 + exp(-x))); break;                                    \
    case KBL_AFFINE: LOOP(T, x * p0 + p1); break;                                        \
    case KBL_POW_SCALAR: LOOP(T, p0 == 2 ? x * x : pow(x, p0)); break;                   \
    case KBL_RPOW_SCALAR: LOOP(T, pow(p0, x)); break;                                    \
    case KBL_CLAMP: LOOP(T, (x < p0 ? p0 : x) > p1 ? p1 : (x < p0 ? p0 : x)); break;     \
    case KBL_RECIPROCAL: LOOP(T, 1 / x); break;                                          \
    case KBL_SIGN: LOOP(T, (x > 0) - (x < 0)); break;                                    \
    case KBL_SIN: LOOP(T, sin(x)); break;                                                \
    case KBL_COS: LOOP(T, cos(x)); break;                                                \
    default: break;                                                                      \
    }

static void run_float32(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const unary_ctx *c = ctx;
    int op = c->op;
    float p0 = (float)c->p0, p1 = (float)c->p1;
    UNARY_SWITCH(float)
}

static void run_float64(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const unary_ctx *c = ctx;
    int op = c->op;
    double p0 = c->p0, p1 = c->p1;
    UNARY_SWITCH(double)
}

/* Integer inputs keep their dtype for these ops; others compute in float32. */
static bool int_preserving(int op, double p0, double p1) {
    switch (op) {
    case KBL_NEG: case KBL_ABS: case KBL_SQUARE: case KBL_SIGN: case KBL_RELU: case KBL_LOGICAL_NOT:
        return true;
    case KBL_AFFINE:
        return p0 == floor(p0) && p1 == floor(p1) && !isinf(p0) && !isinf(p1);
    case KBL_CLAMP: /* whole bounds, or none (infinite) */
        return (p0 == floor(p0) || isinf(p0)) && (p1 == floor(p1) || isinf(p1));
    case KBL_POW_SCALAR: /* a whole power of an integer stays an integer, as PyTorch */
        return p0 == floor(p0) && p0 >= 0 && p0 < 64;
    default:
        return false;
    }
}

/* Integer and logical ops go through double; they are rare and never hot. */
static void run_int(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const unary_ctx *c = ctx;
    int out_dtype = c->op == KBL_LOGICAL_NOT ? KBL_UINT8 : c->dtype;
    for (int64_t i = 0; i < n; i++) {
        double x = kbl_load_double(ptrs[1], c->dtype, i * st[1]), r;
        switch (c->op) {
        case KBL_NEG: r = -x; break;
        case KBL_ABS: r = fabs(x); break;
        case KBL_SQUARE: r = x * x; break;
        case KBL_SIGN: r = (x > 0) - (x < 0); break;
        case KBL_RELU: r = x > 0 ? x : 0; break;
        case KBL_AFFINE: r = x * c->p0 + c->p1; break;
        case KBL_LOGICAL_NOT: r = x == 0; break;
        case KBL_POW_SCALAR: r = pow(x, c->p0); break;
        default: r = x < c->p0 ? c->p0 : x, r = r > c->p1 ? c->p1 : r; break; /* clamp: min(max(x, lo), hi) */
        }
        kbl_store_double(ptrs[0], out_dtype, i * st[0], r);
    }
}

static int unary_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    gin[0] = kbl_unary_grad((int)n->ip[0], g, n->inputs[0], n->saved[0], n->p[0], n->p[1]);
    return gin[0] ? 0 : -1;
}

/* ops whose derivative is written with their output rather than their input */
static bool grad_uses_output(int op) {
    switch (op) {
    case KBL_EXP: case KBL_SQRT: case KBL_RSQRT: case KBL_ELU: case KBL_SIGMOID: case KBL_TANH:
    case KBL_RPOW_SCALAR: case KBL_RECIPROCAL:
        return true;
    default:
        return false;
    }
}

kbl_tensor *kbl_unary(int op, kbl_tensor *a, double p0, double p1) {
    if (op < 0 || op >= KBL_UNARY_COUNT) {
        kbl_fail("unary: unknown op %d", op);
        return NULL;
    }
    const char *name = unary_names[op];
    if (kbl_check_dev(name, a, "input")) return NULL;
    kbl_tensor *in = NULL;
    if (kbl_is_float(a->dtype) || int_preserving(op, p0, p1)) in = kbl_tensor_retain(a);
    else in = kbl_to_dtype(a, KBL_FLOAT32);
    if (!in) return NULL;
    int out_dtype = op == KBL_LOGICAL_NOT ? KBL_UINT8 : in->dtype;
    kbl_tensor *out = kbl_empty_on(in->device, in->ndim, in->shape, out_dtype);
    if (!out) {
        kbl_tensor_release(in);
        return NULL;
    }
    int64_t strides[3][KBL_MAX_DIMS];
    kbl_contiguous_strides(out->ndim, out->shape, strides[0]);
    memcpy(strides[1], in->strides, sizeof in->strides);
    char *base[2] = {kbl_base(out), kbl_base(in)};
    size_t es[2] = {kbl_dtype_size(out_dtype), kbl_dtype_size(in->dtype)};
    kbl_iter it;
    kbl_iter_init(&it, out->ndim, out->shape, 2, base, strides, es);
    unary_ctx c = {op, in->dtype, p0, p1};
    bool float_op = kbl_is_float(in->dtype) && op != KBL_LOGICAL_NOT;
    if (kbl_on_cuda(in)) {
        if (kbl_backend_of(in)->unary(&it, op, in->dtype, out_dtype, p0, p1)) {
            kbl_release_n(2, in, out);
            return NULL;
        }
    } else {
        kbl_iter_run(&it, !float_op ? run_int : in->dtype == KBL_FLOAT32 ? run_float32 : run_float64, &c);
    }
    if (float_op && op != KBL_SIGN) {
        kbl_node *node = kbl_record(name, unary_backward, out, 1, &in);
        if (node) {
            node->ip[0] = op;
            node->p[0] = p0;
            node->p[1] = p1;
            if (grad_uses_output(op)) kbl_node_save(node, 0, out);
        }
    }
    kbl_tensor_release(in);
    return out;
}

/* ---- the backward kernel: gi = g * f'(x) ----------------------------------- */

#define GRAD_LOOP(T, EXPR) \
    for (int64_t i = b; i < e; i++) { T g = pg[i], x = px ? px[i] : 0, y = py ? py[i] : 0; (void)x, (void)y; pr[i] = (T)(EXPR); }

#define GRAD_SWITCH(T)                                                                    \
    switch (op) {                                                                         \
    case KBL_NEG: GRAD_LOOP(T, -g); break;                                                \
    case KBL_ABS: GRAD_LOOP(T, g * ((x > 0) - (x < 0))); break;                           \
    case KBL_EXP: GRAD_LOOP(T, g * y); break;                                             \
    case KBL_LOG: GRAD_LOOP(T, g / x); break;                                             \
    case KBL_LOG1P: GRAD_LOOP(T, g / (1 + x)); break;                                     \
    case KBL_SQRT: GRAD_LOOP(T, g * (T)0.5 / y); break;                                   \
    case KBL_RSQRT: GRAD_LOOP(T, g * (T)-0.5 * y * y * y); break;                         \
    case KBL_SQUARE: GRAD_LOOP(T, 2 * g * x); break;                                      \
    case KBL_RELU: GRAD_LOOP(T, x > 0 ? g : 0); break;                                    \
    case KBL_LEAKY_RELU: GRAD_LOOP(T, x > 0 ? g : g * p0); break;                         \
    case KBL_ELU: GRAD_LOOP(T, x > 0 ? g : g * (y + p0)); break;                          \
    case KBL_GELU:                                                                        \
        GRAD_LOOP(T, g * ((T)0.5 * (1 + erf(x * (T)INV_SQRT_2)) + x * (T)INV_SQRT_2PI * exp((T)-0.5 * x * x))); \
        break;                                                                            \
    case KBL_GELU_TANH:                                                                   \
        GRAD_LOOP(T, g * ((T)0.5 * (1 + tanh((T)SQRT_2_OVER_PI * (x + (T)0.044715 * x * x * x))) + \
                          (T)0.5 * x * (1 - tanh((T)SQRT_2_OVER_PI * (x + (T)0.044715 * x * x * x)) * \
                                            tanh((T)SQRT_2_OVER_PI * (x + (T)0.044715 * x * x * x))) * \
                              (T)SQRT_2_OVER_PI * (1 + 3 * (T)0.044715 * x * x)));        \
        break;                                                                            \
    case KBL_SIGMOID: GRAD_LOOP(T, g * y * (1 - y)); break;                               \
    case KBL_TANH: GRAD_LOOP(T, g * (1 - y * y)); break;                                  \
    case KBL_SOFTPLUS: GRAD_LOOP(T, x * p0 > p1 ? g : g / (1 + exp(-x * p0))); break;     \
    case KBL_SILU: GRAD_LOOP(T, g * (1 / (1 + exp(-x))) * (1 + x * (1 - 1 / (1 + exp(-x))))); break; \
    case KBL_AFFINE: GRAD_LOOP(T, g * p0); break;                                         \
    case KBL_POW_SCALAR: /* x^0 is constant: its gradient is 0 even at x = 0 */         \
        GRAD_LOOP(T, p0 == 2 ? 2 * g * x : p0 == 0 ? 0 : g * p0 * pow(x, p0 - 1)); break; \
    case KBL_RPOW_SCALAR: GRAD_LOOP(T, g * y * log(p0)); break;                           \
    case KBL_CLAMP: GRAD_LOOP(T, x >= p0 && x <= p1 ? g : 0); break;                      \
    case KBL_RECIPROCAL: GRAD_LOOP(T, -g * y * y); break;                                 \
    case KBL_SIN: GRAD_LOOP(T, g * cos(x)); break;                                        \
    case KBL_COS: GRAD_LOOP(T, -g * sin(x)); break;                                       \
    default: GRAD_LOOP(T, 0 * g); break;                                                  \
    }

static kbl_tensor *contiguous_as(kbl_tensor *t, int dtype) {
    return t->dtype == dtype ? kbl_contiguous(t) : kbl_to_dtype(t, dtype);
}

kbl_tensor *kbl_unary_grad(int op, kbl_tensor *grad, kbl_tensor *x, kbl_tensor *out, double p0d, double p1d) {
    if (op < 0 || op >= KBL_UNARY_COUNT) {
        kbl_fail("unary_grad: unknown op %d", op);
        return NULL;
    }
    if (kbl_check_dev("unary_grad", grad, "gradient") || kbl_check_float("unary_grad", grad) ||
        (x && kbl_check_dev("unary_grad", x, "input")) || (out && kbl_check_dev("unary_grad", out, "output")) ||
        (x && kbl_check_same_device("unary_grad", grad, x)) || (out && kbl_check_same_device("unary_grad", grad, out)))
        return NULL;
    if ((x && !kbl_same_shape(x, grad)) || (out && !kbl_same_shape(out, grad))) {
        kbl_fail("unary_grad(%s): gradient %s does not match its input", unary_names[op], KBL_DESC(grad));
        return NULL;
    }
    kbl_tensor *cg = kbl_contiguous(grad);
    kbl_tensor *cx = x ? contiguous_as(x, grad->dtype) : NULL;
    kbl_tensor *cy = out ? contiguous_as(out, grad->dtype) : NULL;
    kbl_tensor *r = cg ? kbl_empty_like(grad, -1) : NULL;
    if (r && (!x || cx) && (!out || cy) && kbl_on_cuda(r)) {
        if (kbl_backend_of(r)->unary_grad(op, grad->dtype, kbl_numel(r), kbl_base(r), kbl_base(cg),
                                          cx ? kbl_base(cx) : NULL, cy ? kbl_base(cy) : NULL, p0d, p1d)) {
            kbl_tensor_release(r);
            r = NULL;
        }
    } else if (r && (!x || cx) && (!out || cy)) {
        int64_t n = kbl_numel(r);
        int nt = n >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
#pragma omp parallel num_threads(nt)
        {
            int t = nt > 1 ? omp_get_thread_num() : 0;
            int64_t chunk = (n + nt - 1) / nt, b = t * chunk, e = b + chunk < n ? b + chunk : n;
            if (grad->dtype == KBL_FLOAT32) {
                const float *pg = kbl_base(cg), *px = cx ? kbl_base(cx) : NULL, *py = cy ? kbl_base(cy) : NULL;
                float *pr = kbl_base(r), p0 = (float)p0d, p1 = (float)p1d;
                (void)p1;
                GRAD_SWITCH(float)
            } else {
                const double *pg = kbl_base(cg), *px = cx ? kbl_base(cx) : NULL, *py = cy ? kbl_base(cy) : NULL;
                double *pr = kbl_base(r), p0 = p0d, p1 = p1d;
                (void)p1;
                GRAD_SWITCH(double)
            }
        }
    } else {
        kbl_tensor_release(r);
        r = NULL;
    }
    kbl_release_n(3, cg, cx, cy);
    return r;
}
