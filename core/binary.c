/* binary.c — elementwise ops of two tensors with NumPy broadcasting and type
 * promotion (arithmetic, maximum/minimum, comparisons, logic), where(), in-place
 * add_, and their backward rules written with ops. */
#include "internal.h"

#include <math.h>

static const char *binary_names[] = {
#define KBL_BINARY(NAME, name, ...) #name,
#include "ops_binary.def"
#undef KBL_BINARY
};
_Static_assert(sizeof binary_names / sizeof binary_names[0] == KBL_BINARY_COUNT, "ops_binary.def names every op");

const char *kbl_binary_name(int op) { return op >= 0 && op < KBL_BINARY_COUNT ? binary_names[op] : NULL; }

enum { OUT_SAME, OUT_FLOAT, OUT_U8, SAVES_NONE = 0, SAVES_OUT = 1 };
static const struct { int out, saves; } binary_rows[] = {
#define KBL_BINARY(NAME, name, out, saves, ...) {OUT_##out, SAVES_##saves},
#include "ops_binary.def"
#undef KBL_BINARY
};

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
    return kbl_backend_of(out)->binary(&it, op, a->dtype);
}

/* ---- backward rules: gin[i] for the inputs that need a gradient ----------- */

#define NEEDS(i) kbl_needs_grad(n->inputs[i])

static int add_rule(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    if (NEEDS(0)) gin[0] = kbl_tensor_retain(g);
    if (NEEDS(1)) gin[1] = kbl_tensor_retain(g);
    return 0;
}

static int sub_rule(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    if (NEEDS(0)) gin[0] = kbl_tensor_retain(g);
    if (NEEDS(1) && !(gin[1] = kbl_unary(KBL_NEG, g, 0, 0))) return -1;
    return 0;
}

static int mul_rule(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    if (NEEDS(0) && !(gin[0] = kbl_mul(g, n->inputs[1]))) return -1;
    if (NEEDS(1) && !(gin[1] = kbl_mul(g, n->inputs[0]))) return -1;
    return 0;
}

static int div_rule(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *b = n->inputs[1], *out = n->saved[0];
    kbl_temps s = {0};
    if (NEEDS(0)) gin[0] = KBL_OUT(&s, kbl_div(g, b));
    if (NEEDS(1)) /* -g * out / b */
        gin[1] = KBL_OUT(&s, kbl_unary(KBL_NEG, KBL_TMP(&s, kbl_div(KBL_TMP(&s, kbl_mul(g, out)), b)), 0, 0));
    return kbl_temps_release(&s);
}

static int pow_rule(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *a = n->inputs[0], *b = n->inputs[1], *out = n->saved[0];
    kbl_temps s = {0};
    if (NEEDS(0)) { /* g * b * a^(b-1) */
        kbl_tensor *pw = KBL_TMP(&s, kbl_pow(a, KBL_TMP(&s, kbl_unary(KBL_AFFINE, b, 1, -1))));
        gin[0] = KBL_OUT(&s, kbl_mul(g, KBL_TMP(&s, kbl_mul(pw, b))));
    }
    if (NEEDS(1)) { /* g * out * log(a), and 0 where a == 0 and b >= 0 (the limit, as PyTorch) */
        kbl_tensor *z = KBL_TMP(&s, kbl_zeros_on(g->device, 0, NULL, g->dtype));
        kbl_tensor *a0 = KBL_TMP(&s, kbl_binary(KBL_EQ, a, z)), *bp = KBL_TMP(&s, kbl_binary(KBL_GE, b, z));
        kbl_tensor *d = KBL_TMP(&s, kbl_mul(out, KBL_TMP(&s, kbl_unary(KBL_LOG, a, 0, 0))));
        kbl_tensor *lim = KBL_TMP(&s, kbl_binary(KBL_LOGICAL_AND, a0, bp));
        gin[1] = KBL_OUT(&s, kbl_mul(g, KBL_TMP(&s, kbl_where(lim, z, d))));
    }
    return kbl_temps_release(&s);
}

/* The larger (smaller) input takes the gradient; ties share it. */
static int extremum_rule(kbl_node *n, kbl_tensor *g, kbl_tensor **gin, int win_op) {
    kbl_tensor *a = n->inputs[0], *b = n->inputs[1];
    kbl_temps s = {0};
    kbl_tensor *win = KBL_TMP(&s, kbl_to_dtype(KBL_TMP(&s, kbl_binary(win_op, a, b)), g->dtype));
    kbl_tensor *tie = KBL_TMP(&s, kbl_to_dtype(KBL_TMP(&s, kbl_binary(KBL_EQ, a, b)), g->dtype));
    kbl_tensor *wa = KBL_TMP(&s, kbl_add(win, KBL_TMP(&s, kbl_unary(KBL_AFFINE, tie, 0.5, 0))));
    if (NEEDS(0)) gin[0] = KBL_OUT(&s, kbl_mul(g, wa));
    if (NEEDS(1)) gin[1] = KBL_OUT(&s, kbl_mul(g, KBL_TMP(&s, kbl_unary(KBL_AFFINE, wa, -1, 1))));
    return kbl_temps_release(&s);
}

static int maximum_rule(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) { return extremum_rule(n, g, gin, KBL_GT); }
static int minimum_rule(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) { return extremum_rule(n, g, gin, KBL_LT); }

static const kbl_backward_fn binary_rules[] = {
#define KBL_BINARY(NAME, name, out, saves, forward, rule) rule,
#include "ops_binary.def"
#undef KBL_BINARY
};
_Static_assert(sizeof binary_rules / sizeof binary_rules[0] == KBL_BINARY_COUNT, "ops_binary.def gives every op a rule");

kbl_tensor *kbl_binary(int op, kbl_tensor *a, kbl_tensor *b) {
    if (op < 0 || op >= KBL_BINARY_COUNT) {
        kbl_fail("binary: unknown op %d", op);
        return NULL;
    }
    const char *name = binary_names[op];
    if (kbl_check_dev(name, a, "first input") || kbl_check_dev(name, b, "second input")) return NULL;
    int64_t shape[KBL_MAX_DIMS];
    int nd = kbl_broadcast_shape(name, a, b, shape);
    if (nd < 0) return NULL;
    int dtype = kbl_promote(a->dtype, b->dtype);
    if (binary_rows[op].out == OUT_FLOAT && !kbl_is_float(dtype)) dtype = KBL_FLOAT32;
    int device = kbl_common_device(2, (kbl_tensor *[]){a, b});
    kbl_tensor *ca = kbl_operand(name, a, device, dtype), *cb = ca ? kbl_operand(name, b, device, dtype) : NULL;
    kbl_tensor *out = ca && cb ? kbl_empty_on(device, nd, shape, binary_rows[op].out == OUT_U8 ? KBL_UINT8 : dtype) : NULL;
    if (out && binary_kernel(op, out, ca, cb)) {
        kbl_tensor_release(out);
        out = NULL;
    }
    if (out && binary_rules[op] && kbl_is_float(dtype)) {
        kbl_node *node = kbl_record(name, binary_rules[op], out, 2, (kbl_tensor *[]){ca, cb});
        if (node && binary_rows[op].saves == SAVES_OUT) kbl_node_save(node, 0, out);
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

int kbl_add_(kbl_tensor *dst, kbl_tensor *src, double alpha) {
    if (kbl_check_dev("add_", dst, "destination") || kbl_check_dev("add_", src, "source")) return -1;
    kbl_tensor *s = kbl_operand("add_", src, dst->device, dst->dtype);
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
    int rc = kbl_backend_of(dst)->axpy(&it, dst->dtype, alpha);
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

kbl_tensor *kbl_where(kbl_tensor *cond_in, kbl_tensor *a_in, kbl_tensor *b_in) {
    if (kbl_check_dev("where", cond_in, "condition") || kbl_check_dev("where", a_in, "first input") ||
        kbl_check_dev("where", b_in, "second input"))
        return NULL;
    int device = kbl_common_device(3, (kbl_tensor *[]){cond_in, a_in, b_in});
    kbl_tensor *cond = kbl_operand("where", cond_in, device, -1);
    kbl_tensor *a = cond ? kbl_operand("where", a_in, device, -1) : NULL;
    kbl_tensor *b = a ? kbl_operand("where", b_in, device, -1) : NULL;
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
    kbl_tensor *ca = kbl_operand("where", a, a->device, dtype), *cb = kbl_operand("where", b, b->device, dtype);
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
        if (kbl_backend_of(out)->where(&it, dtype)) {
            kbl_release_n(4, ca, cb, m, out);
            return NULL;
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
