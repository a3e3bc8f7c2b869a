/* dropout.c — inverted dropout and dropout2d. The keep-mask (0 or 1/(1-p)) is
 * drawn from the global Philox generator, four elements per counter, consuming
 * counters as core/random.c does: kbl_manual_seed reproduces a mask, whatever
 * the thread count. The op is x * mask, so its backward is mul's: g * mask.
 * Under data-parallel training (kbl_set_batch_shard) a process draws only its
 * rows of the whole batch's mask, from the counters one process would use. */
#include "internal.h"

#include <math.h>

/* This process's rows of the global batch (kbl_set_batch_shard); total 0: none. */
static int64_t shard_offset, shard_count, shard_total;

void kbl_set_batch_shard(int64_t offset, int64_t count, int64_t total) {
    bool ok = total > 0 && offset >= 0 && count > 0 && offset + count <= total;
    shard_offset = ok ? offset : 0;
    shard_count = ok ? count : 0;
    shard_total = ok ? total : 0;
}

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
    int64_t n = kbl_shape_numel(ndim, shape);
    if (shard_total && ndim > 0 && shape[0] == shard_count && n > 0) {
        /* rows [offset, offset + count) of the [total, ...] mask: element e of the
         * whole mask is word e % 4 of counter base + e / 4 */
        int64_t row = n / shape[0], first = shard_offset * row, skip = first % 4, len = skip + n;
        int64_t whole = (shard_total * row + 3) / 4;
        uint64_t seed, base;
        kbl_generator_get_state(&seed, &base);
        kbl_generator_set_state(seed, base + (uint64_t)whole);
        if (p >= 1) return kbl_zeros_on(device, ndim, shape, dtype);
        uint32_t threshold = (uint32_t)fmin(ceil(p * 4294967296.0), 4294967295.0);
        kbl_tensor *flat = kbl_empty_on(device, 1, &len, dtype), *part = NULL, *m = NULL;
        if (flat && !kbl_backend_of(flat)->dropout_mask(dtype, len, seed, base + (uint64_t)(first / 4), threshold,
                                                         1.0 / (1.0 - p), kbl_base(flat)))
            part = kbl_narrow(flat, 0, skip, n);
        if (part) m = kbl_contiguous(part);
        kbl_tensor *r = m ? kbl_view(m, ndim, shape) : NULL;
        kbl_release_n(3, flat, part, m);
        return r;
    }
    kbl_tensor *m = kbl_empty_on(device, ndim, shape, dtype);
    if (!m) return NULL;
    int64_t nblocks = (n + 3) / 4;
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
