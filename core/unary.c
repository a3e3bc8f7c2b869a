/* unary.c — elementwise ops of one tensor (math and activations), each with up
 * to two scalar parameters, and kbl_unary_grad: their derivatives as one fused
 * backward kernel, registered as an op so that every device provides it (the
 * CPU's in core/cpu/unary.c). */
#include "internal.h"

#include "ops_scalar.h" /* KBL_WHOLE, and tgmath.h */

#define KBL_GRAD_NONE 0
#define KBL_GRAD_X 1
#define KBL_GRAD_Y 2
#define KBL_KIND_INTERNAL 0
#define KBL_KIND_API 1
#define KBL_KIND_ACT 2

static const kbl_op_info unary_info[] = {
#define KBL_UNARY(NAME, name, ints, out, grad, kind, p0, p1, ...) {#name, KBL_GRAD_##grad, KBL_KIND_##kind, p0, p1},
#include "ops_unary.def"
#undef KBL_UNARY
};
_Static_assert(sizeof unary_info / sizeof unary_info[0] == KBL_UNARY_COUNT, "ops_unary.def gives every op a line");

const kbl_op_info *kbl_unary_info(int op) { return op >= 0 && op < KBL_UNARY_COUNT ? &unary_info[op] : NULL; }

/* Whether an integer input keeps its dtype (the table's ints column); others compute in float32. */
static bool int_preserving(int op, double p0, double p1) {
    /* an array rather than a switch: the table's lines would be identical cases */
    const bool ints[] = {
#define KBL_UNARY(NAME, name, ints, ...) (ints),
#include "ops_unary.def"
#undef KBL_UNARY
    };
    return op >= 0 && op < KBL_UNARY_COUNT && ints[op];
}

static bool out_is_u8(int op) {
    static const bool u8[] = {
#define KBL_UNARY(NAME, name, ints, out, ...) KBL_OUT_##out,
#define KBL_OUT_SAME false
#define KBL_OUT_U8 true
#include "ops_unary.def"
#undef KBL_UNARY
    };
    return u8[op];
}

typedef struct { int op; double p0, p1; } unary_args;
KBL_ARGS_FIT(unary_args);

static int unary_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    const unary_args *a = KBL_ARGS(n, unary_args);
    gin[0] = kbl_unary_grad(a->op, g, n->inputs[0], n->saved[0], a->p0, a->p1);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_unary(int op, kbl_tensor *a, double p0, double p1) {
    if (op < 0 || op >= KBL_UNARY_COUNT) {
        kbl_fail("unary: unknown op %d", op);
        return NULL;
    }
    const char *name = unary_info[op].name;
    if (kbl_check_dev(name, a, "input")) return NULL;
    kbl_tensor *in = NULL;
    if (kbl_is_float(a->dtype) || int_preserving(op, p0, p1)) in = kbl_tensor_retain(a);
    else in = kbl_to_dtype(a, KBL_FLOAT32);
    if (!in) return NULL;
    int out_dtype = out_is_u8(op) ? KBL_UINT8 : in->dtype;
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
    if (kbl_backend_of(in)->unary(&it, op, in->dtype, out_dtype, p0, p1)) {
        kbl_release_n(2, in, out);
        return NULL;
    }
    int grad = unary_info[op].grad;
    if (kbl_is_float(in->dtype) && grad != KBL_GRAD_NONE) {
        kbl_node *node = kbl_record(name, unary_backward, out, 1, &in);
        if (node) {
            *KBL_ARGS(node, unary_args) = (unary_args){op, p0, p1};
            if (grad == KBL_GRAD_Y) kbl_node_save(node, 0, out);
        }
    }
    kbl_tensor_release(in);
    return out;
}

/* ---- the derivative: gi = g * f'(x), one kernel per device ---------------- */

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
        kbl_fail("unary_grad(%s): gradient %s does not match its input", unary_info[op].name, KBL_DESC(grad));
        return NULL;
    }
    kbl_tensor *cg = kbl_contiguous(grad);
    kbl_tensor *cx = x ? contiguous_as(x, grad->dtype) : NULL;
    kbl_tensor *cy = out ? contiguous_as(out, grad->dtype) : NULL;
    kbl_tensor *r = cg ? kbl_empty_like(grad, -1) : NULL;
    if (r && (!x || cx) && (!out || cy)) {
        if (kbl_backend_of(r)->unary_grad(op, grad->dtype, kbl_numel(r), kbl_base(r), kbl_base(cg),
                                          cx ? kbl_base(cx) : NULL, cy ? kbl_base(cy) : NULL, p0d, p1d)) {
            kbl_tensor_release(r);
            r = NULL;
        }
    } else {
        kbl_tensor_release(r);
        r = NULL;
    }
    kbl_release_n(3, cg, cx, cy);
    return r;
}
