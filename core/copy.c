/* copy.c — strided copies with dtype conversion and broadcasting, fills, and the
 * differentiable copies built on them: contiguous, clone, to_dtype. */
#include "internal.h"

typedef struct { int dst, src; double value; } copy_ctx;

#define COPY_RUN(TD, TS)                                                    \
    do {                                                                    \
        TD *o = (TD *)ptrs[0];                                              \
        const TS *s = (const TS *)ptrs[1];                                  \
        int64_t so = st[0], ss = st[1];                                     \
        if (so == 1 && ss == 1)                                             \
            for (int64_t i = 0; i < n; i++) o[i] = (TD)s[i];                \
        else                                                                \
            for (int64_t i = 0; i < n; i++) o[i * so] = (TD)s[i * ss];      \
    } while (0)

/* To uint8 through int64: a float out of uint8's range converted directly is
 * undefined behaviour in C; through int64 it truncates and then wraps modulo 256
 * (as PyTorch does), the same on every path. */
#define COPY_RUN_U8(TS)                                                     \
    do {                                                                    \
        uint8_t *o = (uint8_t *)ptrs[0];                                    \
        const TS *s = (const TS *)ptrs[1];                                  \
        int64_t so = st[0], ss = st[1];                                     \
        for (int64_t i = 0; i < n; i++) o[i * so] = (uint8_t)(int64_t)s[i * ss]; \
    } while (0)

#define COPY_FROM(TS)                                           \
    switch (c->dst) {                                           \
    case KBL_FLOAT32: COPY_RUN(float, TS); break;               \
    case KBL_FLOAT64: COPY_RUN(double, TS); break;              \
    case KBL_INT32: COPY_RUN(int32_t, TS); break;               \
    case KBL_INT64: COPY_RUN(int64_t, TS); break;               \
    default: COPY_RUN_U8(TS); break;                            \
    }

static void copy_run(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const copy_ctx *c = ctx;
    KBL_ALL_CASES(c->src, COPY_FROM)
}

/* dst = src broadcast and converted, when they live on different devices: the
 * conversion runs on src's device, then one contiguous transfer. */
static int copy_between(kbl_tensor *dst, const kbl_tensor *src) {
    kbl_tensor *tmp = kbl_empty_on(src->device, dst->ndim, dst->shape, dst->dtype);
    kbl_tensor *land = NULL;
    int rc = -1;
    if (!tmp || kbl_copy_(tmp, src)) goto done;
    land = kbl_is_contiguous(dst) ? kbl_tensor_retain(dst) : kbl_empty_like(dst, -1);
    if (!land) goto done;
    int64_t n = kbl_numel(dst) * (int64_t)kbl_dtype_size(dst->dtype);
    rc = kbl_device_memcpy(kbl_base(land), kbl_base(tmp), n, dst->device == KBL_CUDA ? KBL_COPY_H2D : KBL_COPY_D2H);
    if (rc == 0 && land != dst) rc = kbl_copy_(dst, land);
done:
    kbl_release_n(2, tmp, land);
    return rc;
}

int kbl_copy_(kbl_tensor *dst, const kbl_tensor *src) {
    if (kbl_check_dev("copy_", dst, "destination") || kbl_check_dev("copy_", src, "source"))
        return -1;
    int64_t bshape[KBL_MAX_DIMS];
    int nd = kbl_broadcast_shape("copy_", dst, src, bshape);
    if (nd < 0) return -1;
    /* the broadcast shape must be dst's own shape */
    for (int d = 0; d < nd; d++) {
        int dd = dst->ndim - nd + d;
        if (nd > dst->ndim || dd < 0 || dst->shape[dd] != bshape[d]) {
            char a[96], b[96];
            return kbl_fail("copy_: source %s does not broadcast to destination %s",
                            kbl_describe(src, b, 96), kbl_describe(dst, a, 96));
        }
    }
    if (dst->device != src->device) return copy_between(dst, src);
    int64_t strides[3][KBL_MAX_DIMS];
    memcpy(strides[0], dst->strides, sizeof dst->strides);
    kbl_broadcast_strides(src, dst->ndim, dst->shape, strides[1]);
    char *base[2] = {kbl_base(dst), kbl_base(src)};
    size_t es[2] = {kbl_dtype_size(dst->dtype), kbl_dtype_size(src->dtype)};
    kbl_iter it;
    kbl_iter_init(&it, dst->ndim, dst->shape, 2, base, strides, es);
    if (kbl_on_cuda(dst)) return kbl_backend_of(dst)->copy(&it, dst->dtype, src->dtype);
    copy_ctx c = {dst->dtype, src->dtype, 0};
    kbl_iter_run(&it, copy_run, &c);
    return 0;
}

#define FILL_RUN(T)                                                        \
    do {                                                                   \
        T *o = (T *)ptrs[0];                                               \
        T v = (T)c->value;                                                 \
        int64_t so = st[0];                                                \
        for (int64_t i = 0; i < n; i++) o[i * so] = v;                     \
    } while (0)

static void fill_run(char **ptrs, const int64_t *st, int64_t n, void *ctx) {
    const copy_ctx *c = ctx;
    if (c->dst == KBL_UINT8) { /* wraps modulo 256, as COPY_RUN_U8 */
        uint8_t *o = (uint8_t *)ptrs[0];
        uint8_t v = (uint8_t)(int64_t)c->value;
        for (int64_t i = 0; i < n; i++) o[i * st[0]] = v;
        return;
    }
    KBL_ALL_CASES(c->dst, FILL_RUN)
}

int kbl_fill_(kbl_tensor *t, double value) {
    if (kbl_check_dev("fill_", t, "tensor")) return -1;
    int64_t strides[3][KBL_MAX_DIMS];
    memcpy(strides[0], t->strides, sizeof t->strides);
    char *base[1] = {kbl_base(t)};
    size_t es[1] = {kbl_dtype_size(t->dtype)};
    kbl_iter it;
    kbl_iter_init(&it, t->ndim, t->shape, 1, base, strides, es);
    if (kbl_on_cuda(t)) return kbl_backend_of(t)->fill(&it, t->dtype, value);
    copy_ctx c = {t->dtype, t->dtype, value};
    kbl_iter_run(&it, fill_run, &c);
    return 0;
}

/* ---- differentiable copies ---------------------------------------------- */

static int copy_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    gin[0] = n->inputs[0]->dtype == g->dtype ? kbl_tensor_retain(g) : kbl_to_dtype(g, n->inputs[0]->dtype);
    return gin[0] ? 0 : -1;
}

static kbl_tensor *copy_as(const char *op, kbl_tensor *t, int dtype) {
    if (kbl_check_dev(op, t, "input")) return NULL;
    kbl_tensor *r = kbl_empty_like(t, dtype);
    if (!r) return NULL;
    if (kbl_copy_(r, t)) {
        kbl_tensor_release(r);
        return NULL;
    }
    if (kbl_is_float(dtype)) kbl_record(op, copy_backward, r, 1, &t);
    return r;
}

kbl_tensor *kbl_contiguous(kbl_tensor *t) {
    if (kbl_check_dev("contiguous", t, "input")) return NULL;
    if (kbl_is_contiguous(t)) return kbl_tensor_retain(t);
    return copy_as("contiguous", t, t->dtype);
}

kbl_tensor *kbl_clone(kbl_tensor *t) { return copy_as("clone", t, t ? t->dtype : 0); }

kbl_tensor *kbl_to_dtype(kbl_tensor *t, int dtype) {
    if (dtype < 0 || dtype > KBL_UINT8) {
        kbl_fail("to_dtype: unknown dtype %d", dtype);
        return NULL;
    }
    return copy_as("to_dtype", t, dtype);
}

double kbl_item(const kbl_tensor *t, int *ok) {
    *ok = 0;
    if (kbl_check_dev("item", t, "tensor")) return 0;
    if (kbl_numel(t) != 1) {
        kbl_fail("item: tensor %s has %lld elements, not one", KBL_DESC(t), (long long)kbl_numel(t));
        return 0;
    }
    if (kbl_on_cuda(t)) { /* one element to the host: waits for the work before it */
        uint64_t v = 0;
        if (kbl_device_memcpy(&v, kbl_base(t), (int64_t)kbl_dtype_size(t->dtype), KBL_COPY_D2H)) return 0;
        *ok = 1;
        return kbl_load_double(&v, t->dtype, 0);
    }
    *ok = 1;
    return kbl_load_double(kbl_base(t), t->dtype, 0);
}
