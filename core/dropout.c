/* dropout.c — inverted dropout and dropout2d. The keep-mask (0 or 1/(1-p)) is
 * drawn from the global Philox generator, four elements per counter, consuming
 * counters as core/random.c does: kbl_manual_seed reproduces a mask, whatever
 * the thread count. The op is x * mask, so its backward is mul's: g * mask. */
#include "internal.h"

#include <math.h>

/* The mask on device: every backend draws the same words from the same counters. */
static kbl_tensor *mask_on(int device, int ndim, const int64_t *shape, double p, int dtype) {
    if (!(p >= 0 && p <= 1)) {
        kbl_fail("dropout: p must be in [0, 1], got %g", p);
        return NULL;
    }
    if (!kbl_is_float(dtype)) {
        kbl_fail("dropout: the mask must be float32 or float64, got dtype %s", kbl_dtype_name(dtype));
        return NULL;
    }
    kbl_tensor *m = kbl_empty_on(device, ndim, shape, dtype);
    if (!m) return NULL;
    int64_t n = kbl_numel(m), nblocks = (n + 3) / 4;
    if (p >= 1) {
        if (kbl_fill_(m, 0)) kbl_tensor_release(m), m = NULL;
        return m;
    }
    uint64_t seed, base;
    kbl_generator_get_state(&seed, &base);
    kbl_generator_set_state(seed, base + (uint64_t)nblocks);
    /* keep when the 32-bit word, as a fraction of 2^32, is at least p */
    uint32_t threshold = (uint32_t)fmin(ceil(p * 4294967296.0), 4294967295.0);
    double scale = 1.0 / (1.0 - p);
    if (n && kbl_backend_of(m)->dropout_mask(dtype, n, seed, base, threshold, scale, kbl_base(m)))
        kbl_tensor_release(m), m = NULL;
    return m;
}

kbl_tensor *kbl_dropout_mask(int ndim, const int64_t *shape, double p, int dtype) {
    return mask_on(KBL_CPU, ndim, shape, p, dtype);
}

static kbl_tensor *dropout_impl(const char *op, kbl_tensor *x, double p, int training, bool channels) {
    if (kbl_check_dev(op, x, "input") || kbl_check_float(op, x)) return NULL;
    if (!(p >= 0 && p <= 1)) {
        kbl_fail("%s: p must be in [0, 1], got %g", op, p);
        return NULL;
    }
    if (channels && x->ndim < 2) {
        kbl_fail("%s: input must be [N, C, ...], got %s", op, KBL_DESC(x));
        return NULL;
    }
    if (!training || p == 0) return kbl_tensor_retain(x);
    int64_t shape[KBL_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    if (channels)
        for (int d = 2; d < x->ndim; d++) shape[d] = 1;
    kbl_tensor *mask = mask_on(x->device, x->ndim, shape, p, x->dtype);
    kbl_tensor *y = mask ? kbl_mul(x, mask) : NULL;
    kbl_tensor_release(mask);
    return y;
}

kbl_tensor *kbl_dropout(kbl_tensor *x, double p, int training) {
    return dropout_impl("dropout", x, p, training, false);
}

kbl_tensor *kbl_dropout2d(kbl_tensor *x, double p, int training) {
    return dropout_impl("dropout2d", x, p, training, true);
}
