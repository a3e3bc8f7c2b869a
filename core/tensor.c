/* tensor.c — tensor and storage lifetime, geometry helpers and the creation functions. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

static const size_t dtype_sizes[] = {4, 8, 4, 8, 1};
static const char *dtype_names[] = {"float32", "float64", "int32", "int64", "uint8"};
_Static_assert(sizeof dtype_sizes / sizeof *dtype_sizes == KBL_UINT8 + 1, "a size for every dtype");
_Static_assert(sizeof dtype_names / sizeof *dtype_names == KBL_UINT8 + 1, "a name for every dtype");

size_t kbl_dtype_size(int dtype) { return dtype >= 0 && dtype <= KBL_UINT8 ? dtype_sizes[dtype] : 0; }
const char *kbl_dtype_name(int dtype) { return dtype >= 0 && dtype <= KBL_UINT8 ? dtype_names[dtype] : "?"; }
size_t kbl_sizeof_tensor(void) { return sizeof(kbl_tensor); }
size_t kbl_offsetof_tensor_storage(void) { return offsetof(kbl_tensor, storage); }

/* float64 > float32 > int64 > int32 > uint8 */
int kbl_promote(int a, int b) {
    static const int rank[] = {3, 4, 1, 2, 0};
    _Static_assert(sizeof rank / sizeof *rank == KBL_UINT8 + 1, "a rank for every dtype");
    return rank[a] >= rank[b] ? a : b;
}

kbl_storage *kbl_storage_new(int64_t nbytes, int device) {
    const kbl_backend *b = NULL;
    if (nbytes < 0) {
        kbl_fail("empty: negative byte count %lld", (long long)nbytes);
        return NULL;
    }
    if (device == KBL_CUDA && !(b = kbl_cuda_table("empty"))) return NULL;
    kbl_storage *s = malloc(sizeof *s);
    if (!s) {
        kbl_fail("out of memory");
        return NULL;
    }
    s->data = b ? b->alloc(nbytes) : kbl_alloc(nbytes);
    if (!s->data) {
        free(s);
        return NULL;
    }
    s->nbytes = nbytes;
    s->refcount = 1;
    s->device = device;
    return s;
}

void kbl_storage_release(kbl_storage *s) {
    if (!s || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (s->device == KBL_CUDA) kbl_cuda_table(NULL)->free(s->data, s->nbytes);
    else kbl_free(s->data, s->nbytes);
    free(s);
}

void kbl_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t st = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        strides[d] = st;
        /* shapes passed kbl_shape_size, so this never wraps; if one did not, stop at the wrap */
        if (__builtin_mul_overflow(st, shape[d], &st)) st = 0;
    }
}

int64_t kbl_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || __builtin_mul_overflow(n, shape[d], &n)) return -1;
    return n;
}

const char *kbl_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

int kbl_shape_size(const char *op, int ndim, const int64_t *shape, int dtype, int64_t *numel, int64_t *nbytes) {
    if (ndim < 0 || ndim > KBL_MAX_DIMS)
        return kbl_fail("%s: %d dims requested; kbl tensors have at most %d", op, ndim, KBL_MAX_DIMS);
    char sb[8 * 24];
    int64_t n = 1, span = 1; /* span: the product with zero sizes counted as 1, which bounds every stride */
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return kbl_fail("%s: negative size %lld in dim %d of shape %s", op, (long long)shape[d], d + 1,
                            kbl_shape_str(sb, sizeof sb, ndim, shape));
        if (__builtin_mul_overflow(span, shape[d] ? shape[d] : 1, &span))
            return kbl_fail("%s: shape %s is too large: its element count passes 2^63", op,
                            kbl_shape_str(sb, sizeof sb, ndim, shape));
        n *= shape[d]; /* n <= span: no overflow */
    }
    int64_t es = (int64_t)kbl_dtype_size(dtype), b = 0;
    if (es == 0) return kbl_fail("%s: unknown dtype %d", op, dtype);
    if (__builtin_mul_overflow(span, es, &b))
        return kbl_fail("%s: shape %s of %s is too large: %lld elements of %lld bytes pass 2^63 bytes", op,
                        kbl_shape_str(sb, sizeof sb, ndim, shape), kbl_dtype_name(dtype), (long long)n, (long long)es);
    if (numel) *numel = n;
    if (nbytes) *nbytes = n * es;
    return 0;
}

/* A tensor struct over s, taking over the caller's reference to s. */
static kbl_tensor *tensor_own(kbl_storage *s, int dtype, int ndim, const int64_t *shape,
                              const int64_t *strides, int64_t offset) {
    kbl_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        kbl_storage_release(s);
        kbl_fail("out of memory");
        return NULL;
    }
    t->dtype = dtype;
    t->device = s->device;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->strides[d] = strides[d];
    }
    t->offset = offset;
    t->storage = s;
    t->refcount = 1;
    return t;
}

kbl_tensor *kbl_tensor_wrap(kbl_storage *s, int dtype, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset) {
    if (kbl_shape_size("view", ndim, shape, dtype, NULL, NULL)) return NULL;
    __atomic_add_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL);
    return tensor_own(s, dtype, ndim, shape, strides, offset);
}

kbl_tensor *kbl_empty_on(int device, int ndim, const int64_t *shape, int dtype) {
    int64_t nbytes = 0;
    if (kbl_shape_size("empty", ndim, shape, dtype, NULL, &nbytes)) return NULL;
    if (device != KBL_CPU && device != KBL_CUDA) {
        kbl_fail("empty: unknown device %d", device);
        return NULL;
    }
    int64_t strides[KBL_MAX_DIMS];
    kbl_contiguous_strides(ndim, shape, strides);
    kbl_storage *s = kbl_storage_new(nbytes, device);
    if (!s) return NULL;
    return tensor_own(s, dtype, ndim, shape, strides, 0);
}

kbl_tensor *kbl_empty(int ndim, const int64_t *shape, int dtype) {
    return kbl_empty_on(KBL_CPU, ndim, shape, dtype);
}

kbl_tensor *kbl_empty_like(const kbl_tensor *t, int dtype) {
    return kbl_empty_on(t->device, t->ndim, t->shape, dtype >= 0 ? dtype : t->dtype);
}

kbl_tensor *kbl_tensor_retain(kbl_tensor *t) {
    if (t) __atomic_add_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL);
    return t;
}

void kbl_tensor_free_data(kbl_tensor *t) {
    if (!t) return;
    kbl_storage *s = t->storage;
    kbl_node *n = t->grad_fn;
    kbl_tensor *g = t->grad;
    t->storage = NULL;
    t->grad_fn = NULL;
    t->grad = NULL;
    kbl_storage_release(s);
    if (n) kbl_node_release(n);
    if (g) kbl_tensor_release(g);
}

void kbl_tensor_release(kbl_tensor *t) {
    if (!t || __atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    kbl_tensor_free_data(t);
    free(t);
}

void kbl_release_n(int n, ...) {
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) kbl_tensor_release(va_arg(ap, kbl_tensor *));
    va_end(ap);
}

int kbl_tensor_is_freed(const kbl_tensor *t) { return t->storage == NULL; }
int64_t kbl_numel(const kbl_tensor *t) { return kbl_shape_numel(t->ndim, t->shape); }

int kbl_is_contiguous(const kbl_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->strides[d] != st) return 0;
        st *= t->shape[d];
    }
    return 1;
}

void *kbl_data_ptr(const kbl_tensor *t) {
    if (!t || !t->storage || t->device != KBL_CPU) return NULL;
    return kbl_base(t);
}

int kbl_same_storage(const kbl_tensor *a, const kbl_tensor *b) {
    return a && b && a->storage && a->storage == b->storage;
}

bool kbl_same_shape(const kbl_tensor *a, const kbl_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

int kbl_broadcast_shape(const char *op, const kbl_tensor *a, const kbl_tensor *b, int64_t *out) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < nd; i++) {
        int da = a->ndim - nd + i, db = b->ndim - nd + i;
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char ba[96], bb[96];
            kbl_fail("%s: shapes %s and %s do not broadcast (dim %d: %lld vs %lld)", op,
                     kbl_describe(a, ba, 96), kbl_describe(b, bb, 96), i + 1, (long long)sa, (long long)sb);
            return -1;
        }
        out[i] = sa == 1 ? sb : sa;
    }
    return nd;
}

void kbl_broadcast_strides(const kbl_tensor *t, int ndim, const int64_t *shape, int64_t *strides) {
    for (int i = 0; i < ndim; i++) {
        int d = t->ndim - ndim + i;
        strides[i] = (d >= 0 && t->shape[d] == shape[i] && shape[i] != 1) ? t->strides[d] : 0;
    }
}

int kbl_reduce_shape(const char *op, const kbl_tensor *a, int ndims, const int *dims, int keepdim,
                     bool *mask, int64_t *out_shape) {
    for (int d = 0; d < a->ndim; d++) mask[d] = ndims == 0;
    for (int i = 0; i < ndims; i++) {
        int d = kbl_wrap_dim(op, dims[i], a->ndim);
        if (d < 0) return -1;
        if (a->ndim == 0) continue;
        if (mask[d]) return kbl_fail("%s: dimension %d listed twice", op, dims[i]);
        mask[d] = true;
    }
    int k = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (!mask[d]) out_shape[k++] = a->shape[d];
        else if (keepdim) out_shape[k++] = 1;
    }
    return k;
}

double kbl_load_double(const void *base, int dtype, int64_t i) {
    switch (dtype) {
    case KBL_FLOAT32: return ((const float *)base)[i];
    case KBL_FLOAT64: return ((const double *)base)[i];
    case KBL_INT32: return ((const int32_t *)base)[i];
    case KBL_INT64: return (double)((const int64_t *)base)[i];
    default: return ((const uint8_t *)base)[i];
    }
}

void kbl_store_double(void *base, int dtype, int64_t i, double v) {
    switch (dtype) {
    case KBL_FLOAT32: ((float *)base)[i] = (float)v; break;
    case KBL_FLOAT64: ((double *)base)[i] = v; break;
    case KBL_INT32: ((int32_t *)base)[i] = (int32_t)v; break;
    case KBL_INT64: ((int64_t *)base)[i] = (int64_t)v; break;
    default: ((uint8_t *)base)[i] = (uint8_t)(int64_t)v; break; /* wraps modulo 256 */
    }
}

/* ---- creation ------------------------------------------------------------ */

kbl_tensor *kbl_full_on(int device, int ndim, const int64_t *shape, double value, int dtype) {
    kbl_tensor *t = kbl_empty_on(device, ndim, shape, dtype);
    if (t && kbl_fill_(t, value)) {
        kbl_tensor_release(t);
        return NULL;
    }
    return t;
}

kbl_tensor *kbl_zeros_on(int device, int ndim, const int64_t *shape, int dtype) {
    if (device != KBL_CPU) return kbl_full_on(device, ndim, shape, 0, dtype);
    kbl_tensor *t = kbl_empty(ndim, shape, dtype);
    if (t) memset(t->storage->data, 0, (size_t)t->storage->nbytes);
    return t;
}

kbl_tensor *kbl_zeros(int ndim, const int64_t *shape, int dtype) { return kbl_zeros_on(KBL_CPU, ndim, shape, dtype); }

kbl_tensor *kbl_full(int ndim, const int64_t *shape, double value, int dtype) {
    return kbl_full_on(KBL_CPU, ndim, shape, value, dtype);
}

kbl_tensor *kbl_arange(double start, double end, double step, int dtype) {
    if (step == 0 || (end - start) / step < 0) {
        kbl_fail("arange: step %g cannot go from %g to %g", step, start, end);
        return NULL;
    }
    int64_t n = (int64_t)ceil((end - start) / step);
    kbl_tensor *t = kbl_empty(1, &n, dtype);
    if (!t) return NULL;
    void *p = kbl_base(t);
    for (int64_t i = 0; i < n; i++) kbl_store_double(p, dtype, i, start + (double)i * step);
    return t;
}

kbl_tensor *kbl_linspace(double start, double end, int64_t steps, int dtype) {
    if (steps < 0) {
        kbl_fail("linspace: steps must be non-negative, got %lld", (long long)steps);
        return NULL;
    }
    kbl_tensor *t = kbl_empty(1, &steps, dtype);
    if (!t) return NULL;
    void *p = kbl_base(t);
    double h = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
    for (int64_t i = 0; i < steps; i++)
        kbl_store_double(p, dtype, i, i == steps - 1 && steps > 1 ? end : start + (double)i * h);
    return t;
}

kbl_tensor *kbl_eye(int64_t n, int64_t m, int dtype) {
    if (m < 0) m = n;
    int64_t shape[2] = {n, m};
    kbl_tensor *t = kbl_zeros(2, shape, dtype);
    if (!t) return NULL;
    void *p = kbl_base(t);
    for (int64_t i = 0; i < n && i < m; i++) kbl_store_double(p, dtype, i * m + i, 1.0);
    return t;
}

kbl_tensor *kbl_from_doubles(int ndim, const int64_t *shape, const double *values, int dtype) {
    kbl_tensor *t = kbl_empty(ndim, shape, dtype);
    if (!t) return NULL;
    void *p = kbl_base(t);
    int64_t n = kbl_numel(t);
    for (int64_t i = 0; i < n; i++) kbl_store_double(p, dtype, i, values[i]);
    return t;
}
