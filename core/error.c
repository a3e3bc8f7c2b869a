/* error.c — the thread-local error message and the argument checks every op shares. */
#include "internal.h"

#include <stdio.h>

static _Thread_local char last_error[1024];

const char *kbl_last_error(void) { return last_error; }

void kbl_clear_error(void) { last_error[0] = 0; }

int kbl_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}

const char *kbl_describe(const kbl_tensor *t, char *buf, size_t n) {
    if (!t) {
        snprintf(buf, n, "(null)");
        return buf;
    }
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int d = 0; d < t->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (k < n) snprintf(buf + k, n - k, "] %s", kbl_dtype_name(t->dtype));
    return buf;
}

int kbl_check_tensor_data(const char *op, const kbl_tensor *t, const char *arg, int any_device) {
    if (!t->storage)
        return kbl_fail("%s: %s was freed (its data was released by kbl.scope or free())", op, arg);
    if (t->device == KBL_CUDA && !any_device)
        return kbl_fail("%s: no CUDA kernel for %s: %s %s is on cuda (move it with to('cpu'))", op, op, arg,
                        KBL_DESC(t));
    if (t->device != KBL_CPU && t->device != KBL_CUDA)
        return kbl_fail("%s: %s is on unknown device %d", op, arg, t->device);
    return 0;
}

const char *kbl_device_name(int device) {
    return device == KBL_CPU ? "cpu" : device == KBL_CUDA ? "cuda" : "unknown device";
}

int kbl_check_float(const char *op, const kbl_tensor *t) {
    if (!kbl_is_float(t->dtype))
        return kbl_fail("%s: expected a float32 or float64 tensor, got %s", op, KBL_DESC(t));
    return 0;
}

int kbl_check_same_device(const char *op, const kbl_tensor *a, const kbl_tensor *b) {
    if (a->device != b->device)
        return kbl_fail("%s: tensors on different devices: %s on %s and %s on %s (move one with to())", op,
                        KBL_DESC(a), kbl_device_name(a->device), KBL_DESC(b), kbl_device_name(b->device));
    return 0;
}

int kbl_wrap_dim(const char *op, int dim, int ndim) {
    int n = ndim > 0 ? ndim : 1;
    int d = dim < 0 ? dim + n : dim;
    if (d < 0 || d >= n) {
        kbl_fail("%s: dimension %d out of range for a tensor of %d dims (dims count from 1)", op,
                 dim >= 0 ? dim + 1 : dim, ndim);
        return -1;
    }
    return d;
}
