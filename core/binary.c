/* binary.c — elementwise ops of two tensors with NumPy broadcasting and type
 * promotion (arithmetic, maximum/minimum, comparisons, logic), where(), in-place
 * add_, and their backward rules written with ops. */
#include "internal.h"

#include <math.h>

static const char *binary_names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                     "eq", "ne", "lt", "le", "gt", "ge",
                                     "logical_and", "logical_or", "logical_xor"};

static bool is_compare(int op) { return op >= KBL_EQ; }

typedef struct { int op; double alpha; } bin_ctx;

/* One strided run: o = f(x, y), with a unit-stride fast path the compiler vectorizes. */
#define BIN_RUN(TO, TI, EXPR)                                                           \
    do {                                                                                \
        TO *o = (TO *)ptrs[0];                                                          \
        const TI *pa = (const TI *)ptrs[1], *pb = (const TI *)ptrs[2];                  \
        int64_t so = st[0], sa = st[1], sb = st[2];                                     \
        if (so == 1 && sa == 1 && sb == 1) {                                            \
            for (int64_t i = 0; i < n; i++) { TI x = pa[i], y = pb[i]; o[i] = (TO)(EXPR); } \
        } else if (so == 1 && sa == 1 && sb == 0) {                                     \
            TI y = pb[0];                                                               \
            for (int64_t i = 0; i < n; i++) { TI x = pa[i]; o[i] = (TO)(EXPR); }         \
        } else {                                                                        \
            for (int64_t i = 0; i < n; i++) {                                           \
                TI x = pa[i * sa], y = pb[i * sb];                                      \
                o[i * so] = (TO)(EXPR);                                                 \
            }                                                                           \
        }                                                                               \
    } while (0)

#define FPOW(T, x, y) ((T)pow((double)(x), (double)(y)))
#define BIN_ARITH(T)                                                         \
    switch (c->op) {                                                         \
    case KBL_ADD: BIN_RUN(T, T, x + y); break;                               \
    case KBL_SUB: BIN_RUN(T, T, x - y); break;                               \
    case KBL_MUL: BIN_RUN(T, T, x * y); break;                               \
    case KBL_DIV: BIN_RUN(T, T, y == 0 && !kbl_is_float(dt) ? 0 : x / y); break; \
    case KBL_POW: BIN_RUN(T, T, FPOW(T, x, y)); break;                       \
    case KBL_MAXIMUM: BIN_RUN(T, T, (x > y || x != x) ? x : y); break;       \
    case KBL_MINIMUM: BIN_RUN(T, T, (x < y || x != x) ? x : y); break;       \
    case KBL_EQ: BIN_RUN(uint8_t, T, x == y); break;                         \
    case KBL_NE: BIN_RUN(uint8_t, T, x != y); break;                         \
    case KBL_LT: BIN_RUN(uint8_t, T, x < y); break;                          \
    case KBL_LE: BIN_RUN(uint8_t, T, x <= y); break;                         \
    case KBL_GT: BIN_RUN(uint8_t, T, x > y); break;                          \
    case KBL_GE: BIN_RUN(uint8_t, T, x >= y); break;                         \
    case KBL_LOGICAL_AND: BIN_RUN(uint8_t, T, (x != 0) && (y != 0)); break;  \
    case KBL_LOGICAL_OR: BIN_RUN(uint8_t, T, (x != 0) || (y != 0)); break;   \
    case KBL_LOGICAL_XOR: BIN_RUN(uint8_t, T, (x != 0) != (y != 0)); break;  \
    default: break;                                                          \
    }

typedef struct { int op; int dtype; } run_ctx;

static void binary_run(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const run_ctx *c = ctx;
    int dt = c->dtype;
    KBL_ALL_CASES(dt, BIN_ARITH)
}

/* Runs op into out (already shaped as the broadcast) from a, b of the same dtype. */
static int binary_kernel(int op, kbl_tensor *out, const kbl_tensor *a, const kbl_tensor *b) {
    int64_t strides[3][KBL_MAX_DIMS];
    memcpy(strides[0], out->strides, sizeof out->strides);
    kbl_broadcast_strides(a, out->ndim, out->shape, strides[1]);
    kbl_broadcast_strides(b, out->ndim, out->shape, strides[2]);
    char *base[3] = {kbl_base(out), kbl_base(a), kbl_base(b)};
    size_t es[3] = {kbl_dtype_size(out->dtype), kbl_dtype_size(a->dtype), kbl_dtype_size(b->dtype)};
    kbl_iter it;
    kbl_iter_init(&it, out->ndim, out->shape, 3, base, strides, es);
    if (kbl_on_cuda(out)) return kbl_backend_of(out)->binary(&it, op, a->dtype);
    run_ctx c = {op, a->dtype};
    kbl_iter_run(&it, binary_run, &c);
    return 0;
}

/* ---- backward rules ---------------------------------------------------- */

static kbl_tensor *mask_as(kbl_tensor *mask, int dtype) {
    kbl_tensor *m = kbl_to_dtype(mask, dtype);
    kbl_tensor_release(mask);
    return m;
}

static int binary_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    int op = (int)n->ip[0];
    kbl_tensor *a = n->inputs[0], *b = n->inputs[1], *out = n->saved[0];
    bool ga = kbl_needs_grad(a), gb = kbl_needs_grad(b);
    switch (op) {
    case KBL_ADD:
        if (ga) gin[0] = kbl_tensor_retain(g);
        if (gb) gin[1] = kbl_tensor_retain(g);
        break;
    case KBL_SUB:
        if (ga) gin[0] = kbl_tensor_retain(g);
        if (gb) gin[1] = kbl_unary(KBL_NEG, g, 0, 0);
        break;
    case KBL_MUL:
        if (ga) gin[0] = kbl_mul(g, b);
        if (gb) gin[1] = kbl_mul(g, a);
        break;
    case KBL_DIV:
        if (ga) gin[0] = kbl_div(g, b);
        if (gb) { /* -g * out / b */
            kbl_tensor *t = kbl_mul(g, out), *u = t ? kbl_div(t, b) : NULL;
            gin[1] = u ? kbl_unary(KBL_NEG, u, 0, 0) : NULL;
            kbl_release_n(2, t, u);
        }
        break;
    case KBL_POW:
        if (ga) { /* g * b * a^(b-1) */
            kbl_tensor *bm1 = kbl_unary(KBL_AFFINE, b, 1, -1), *p = bm1 ? kbl_pow(a, bm1) : NULL;
            kbl_tensor *q = p ? kbl_mul(p, b) : NULL;
            gin[0] = q ? kbl_mul(g, q) : NULL;
            kbl_release_n(3, bm1, p, q);
        }
        if (gb) { /* g * out * log(a), and 0 where a == 0 and b >= 0 (the limit, as PyTorch) */
            kbl_tensor *la = kbl_unary(KBL_LOG, a, 0, 0), *p = la ? kbl_mul(out, la) : NULL;
            kbl_tensor *z = kbl_zeros_on(g->device, 0, NULL, g->dtype);
            kbl_tensor *a0 = z ? kbl_binary(KBL_EQ, a, z) : NULL, *bp = z ? kbl_binary(KBL_GE, b, z) : NULL;
            kbl_tensor *m = a0 && bp ? kbl_binary(KBL_LOGICAL_AND, a0, bp) : NULL;
            kbl_tensor *q = p && m ? kbl_where(m, z, p) : NULL;
            gin[1] = q ? kbl_mul(g, q) : NULL;
            kbl_release_n(7, la, p, z, a0, bp, m, q);
        }
        break;
    case KBL_MAXIMUM:
    case KBL_MINIMUM: { /* the larger (smaller) input takes the gradient; ties share it */
        kbl_tensor *win = mask_as(kbl_binary(op == KBL_MAXIMUM ? KBL_GT : KBL_LT, a, b), g->dtype);
        kbl_tensor *tie = mask_as(kbl_binary(KBL_EQ, a, b), g->dtype);
        kbl_tensor *half = tie ? kbl_unary(KBL_AFFINE, tie, 0.5, 0) : NULL;
        kbl_tensor *wa = win && half ? kbl_add(win, half) : NULL;
        if (ga && wa) gin[0] = kbl_mul(g, wa);
        if (gb && wa) {
            kbl_tensor *wb = kbl_unary(KBL_AFFINE, wa, -1, 1);
            gin[1] = wb ? kbl_mul(g, wb) : NULL;
            kbl_tensor_release(wb);
        }
        kbl_release_n(4, win, tie, half, wa);
        break;
    }
    default:
        return 0;
    }
    if ((ga && !gin[0]) || (gb && !gin[1])) return -1;
    return 0;
}

/* Converts t to dtype, or retains it when it already is. */
static kbl_tensor *as_dtype(kbl_tensor *t, int dtype) {
    return t->dtype == dtype ? kbl_tensor_retain(t) : kbl_to_dtype(t, dtype);
}

kbl_tensor *kbl_binary(int op, kbl_tensor *a, kbl_tensor *b) {
    if (op < 0 || op > KBL_LOGICAL_XOR) {
        kbl_fail("binary: unknown op %d", op);
        return NULL;
    }
    const char *name = binary_names[op];
    if (kbl_check_dev(name, a, "first input") || kbl_check_dev(name, b, "second input")) return NULL;
    int64_t shape[KBL_MAX_DIMS];
    int nd = kbl_broadcast_shape(name, a, b, shape);
    if (nd < 0) return NULL;
    int dtype = kbl_promote(a->dtype, b->dtype);
    if (op == KBL_DIV && !kbl_is_float(dtype)) dtype = KBL_FLOAT32; /* true division, as PyTorch */
    int device = a->ndim == 0 && a->device == KBL_CPU ? b->device : a->device;
    kbl_tensor *da = kbl_operand_on(name, a, device), *db = da ? kbl_operand_on(name, b, device) : NULL;
    kbl_tensor *ca = db ? as_dtype(da, dtype) : NULL, *cb = ca ? as_dtype(db, dtype) : NULL;
    kbl_release_n(2, da, db);
    kbl_tensor *out = ca && cb ? kbl_empty_on(device, nd, shape, is_compare(op) ? KBL_UINT8 : dtype) : NULL;
    if (out && binary_kernel(op, out, ca, cb)) {
        kbl_tensor_release(out);
        out = NULL;
    }
    if (out) {
        if (!is_compare(op) && kbl_is_float(dtype)) {
            kbl_tensor *in[2] = {ca, cb};
            kbl_node *node = kbl_record(name, binary_backward, out, 2, in);
            if (node) {
                node->ip[0] = op;
                if (op == KBL_DIV || op == KBL_POW) kbl_node_save(node, 0, out);
            }
        }
    }
    kbl_release_n(2, ca, cb);
    return out;
}

kbl_tensor *kbl_add(kbl_tensor *a, kbl_tensor *b) { return kbl_binary(KBL_ADD, a, b); }
kbl_tensor *kbl_sub(kbl_tensor *a, kbl_tensor *b) { return kbl_binary(KBL_SUB, a, b); }
kbl_tensor *kbl_mul(kbl_tensor *a, kbl_tensor *b) { return kbl_binary(KBL_MUL, a, b); }
kbl_tensor *kbl_div(kbl_tensor *a, kbl_tensor *b) { return kbl_binary(KBL_DIV, a, b); }
kbl_tensor *kbl_pow(kbl_tensor *a, kbl_tensor *b) { return kbl_binary(KBL_POW, a, b); }
kbl_tensor *kbl_maximum(kbl_tensor *a, kbl_tensor *b) { return kbl_binary(KBL_MAXIMUM, a, b); }
kbl_tensor *kbl_minimum(kbl_tensor *a, kbl_tensor *b) { return kbl_binary(KBL_MINIMUM, a, b); }

/* ---- in-place accumulate: dst += alpha * src ----------------------------- */

#define AXPY(T)                                                                      \
    do {                                                                             \
        T *o = (T *)ptrs[0];                                                         \
        const T *s = (const T *)ptrs[1];                                             \
        T al = (T)c->alpha;                                                          \
        int64_t so = st[0], ss = st[1];                                              \
        if (so == 1 && ss == 1) for (int64_t i = 0; i < n; i++) o[i] += al * s[i];   \
        else for (int64_t i = 0; i < n; i++) o[i * so] += al * s[i * ss];            \
    } while (0)

static void axpy_run(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const bin_ctx *c = ctx;
    KBL_ALL_CASES(c->op, AXPY)
}

int kbl_add_(kbl_tensor *dst, kbl_tensor *src, double alpha) {
    if (kbl_check_dev("add_", dst, "destination") || kbl_check_dev("add_", src, "source")) return -1;
    kbl_tensor *ds = kbl_operand_on("add_", src, dst->device);
    kbl_tensor *s = ds ? as_dtype(ds, dst->dtype) : NULL;
    kbl_tensor_release(ds);
    if (!s) return -1;
    int64_t shape[KBL_MAX_DIMS];
    int nd = kbl_broadcast_shape("add_", dst, s, shape);
    if (nd < 0 || nd != dst->ndim || memcmp(shape, dst->shape, (size_t)nd * sizeof(int64_t)) != 0) {
        kbl_tensor_release(s);
        if (nd < 0) return -1;
        char a[96], b[96];
        return kbl_fail("add_: %s does not broadcast to destination %s", kbl_describe(src, a, 96),
                        kbl_describe(dst, b, 96));
    }
    int64_t strides[3][KBL_MAX_DIMS];
    memcpy(strides[0], dst->strides, sizeof dst->strides);
    kbl_broadcast_strides(s, nd, shape, strides[1]);
    char *base[2] = {kbl_base(dst), kbl_base(s)};
    size_t es[2] = {kbl_dtype_size(dst->dtype), kbl_dtype_size(dst->dtype)};
    kbl_iter it;
    kbl_iter_init(&it, nd, shape, 2, base, strides, es);
    int rc = 0;
    if (kbl_on_cuda(dst)) {
        rc = kbl_backend_of(dst)->axpy(&it, dst->dtype, alpha);
    } else {
        bin_ctx c = {dst->dtype, alpha};
        kbl_iter_run(&it, axpy_run, &c);
    }
    kbl_tensor_release(s);
    return rc;
}

/* ---- where(cond, a, b) ---------------------------------------------------- */

static kbl_tensor *where_on(kbl_tensor *cond, kbl_tensor *a, kbl_tensor *b);

static int where_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *cond = n->saved[0];
    kbl_tensor *z = kbl_zeros_on(g->device, 0, NULL, g->dtype);
    if (!z) return -1;
    if (kbl_needs_grad(n->inputs[0])) gin[0] = kbl_where(cond, g, z);
    if (kbl_needs_grad(n->inputs[1])) gin[1] = kbl_where(cond, z, g);
    kbl_tensor_release(z);
    return 0;
}

#define WHERE_RUN(T)                                                                  \
    do {                                                                              \
        T *o = (T *)ptrs[0];                                                          \
        const uint8_t *m = (const uint8_t *)ptrs[1];                                  \
        const T *pa = (const T *)ptrs[2];                                             \
        for (int64_t i = 0; i < n; i++) o[i * st[0]] = m[i * st[1]] ? pa[i * st[2]] : o[i * st[0]]; \
    } while (0)

static void where_run(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const bin_ctx *c = ctx;
    KBL_ALL_CASES(c->op, WHERE_RUN)
}

kbl_tensor *kbl_where(kbl_tensor *cond_in, kbl_tensor *a_in, kbl_tensor *b_in) {
    if (kbl_check_dev("where", cond_in, "condition") || kbl_check_dev("where", a_in, "first input") ||
        kbl_check_dev("where", b_in, "second input"))
        return NULL;
    int device = cond_in->device == KBL_CUDA || a_in->device == KBL_CUDA || b_in->device == KBL_CUDA ? KBL_CUDA
                                                                                                      : KBL_CPU;
    kbl_tensor *cond = kbl_operand_on("where", cond_in, device);
    kbl_tensor *a = cond ? kbl_operand_on("where", a_in, device) : NULL;
    kbl_tensor *b = a ? kbl_operand_on("where", b_in, device) : NULL;
    kbl_tensor *r = b ? where_on(cond, a, b) : NULL;
    kbl_release_n(3, cond, a, b);
    return r;
}

static kbl_tensor *where_on(kbl_tensor *cond, kbl_tensor *a, kbl_tensor *b) {
    int64_t s1[KBL_MAX_DIMS], shape[KBL_MAX_DIMS];
    int n1 = kbl_broadcast_shape("where", a, b, s1);
    if (n1 < 0) return NULL;
    kbl_tensor tmp = {.ndim = n1};
    memcpy(tmp.shape, s1, sizeof s1);
    int nd = kbl_broadcast_shape("where", cond, &tmp, shape);
    if (nd < 0) return NULL;
    int dtype = kbl_promote(a->dtype, b->dtype);
    kbl_tensor *ca = as_dtype(a, dtype), *cb = as_dtype(b, dtype);
    kbl_tensor *m = cond->dtype == KBL_UINT8 ? kbl_tensor_retain(cond) : NULL;
    if (!m) { /* any nonzero is true */
        kbl_tensor *z = kbl_zeros_on(cond->device, 0, NULL, cond->dtype);
        m = z ? kbl_binary(KBL_NE, cond, z) : NULL;
        kbl_tensor_release(z);
    }
    kbl_tensor *out = ca && cb && m ? kbl_empty_on(a->device, nd, shape, dtype) : NULL;
    if (out && kbl_copy_(out, cb) == 0) {
        int64_t strides[3][KBL_MAX_DIMS];
        memcpy(strides[0], out->strides, sizeof out->strides);
        kbl_broadcast_strides(m, nd, shape, strides[1]);
        kbl_broadcast_strides(ca, nd, shape, strides[2]);
        char *base[3] = {kbl_base(out), kbl_base(m), kbl_base(ca)};
        size_t es[3] = {kbl_dtype_size(dtype), 1, kbl_dtype_size(dtype)};
        kbl_iter it;
        kbl_iter_init(&it, nd, shape, 3, base, strides, es);
        if (kbl_on_cuda(out)) {
            if (kbl_backend_of(out)->where(&it, dtype)) {
                kbl_release_n(4, ca, cb, m, out);
                return NULL;
            }
        } else {
            bin_ctx c = {dtype, 0};
            kbl_iter_run(&it, where_run, &c);
        }
        if (kbl_is_float(dtype)) {
            kbl_tensor *in[2] = {ca, cb};
            kbl_node *node = kbl_record("where", where_backward, out, 2, in);
            if (node) kbl_node_save(node, 0, m);
        }
    }
    kbl_release_n(3, ca, cb, m);
    return out;
}
