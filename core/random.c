/* random.c — the counter-based generator (Philox 4x32-10, Salmon et al. 2011).
 * Element i of a random tensor is a pure function of (seed, stream, offset + i),
 * so values do not depend on thread count, and the generator state is two numbers.
 * Values are drawn on the host (core/cpu/random.c) for every device. */
#include "internal.h"
#include "cpu/cpu.h"
#include "philox.h"

static uint64_t gen_seed = 5489, gen_offset = 0;

void kbl_manual_seed(uint64_t seed) {
    gen_seed = seed;
    gen_offset = 0;
}

void kbl_generator_get_state(uint64_t *seed, uint64_t *offset) {
    *seed = gen_seed;
    *offset = gen_offset;
}

void kbl_generator_set_state(uint64_t seed, uint64_t offset) {
    gen_seed = seed;
    gen_offset = offset;
}

void kbl_philox(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t out[4]) {
    kbl_philox4x32(seed, stream, counter, out);
}

/* Fills t (any geometry) with the distribution, consuming numel counters. */
static int fill_random(kbl_tensor *t, int dist, double a, double b) {
    if (kbl_check_dev("random", t, "tensor")) return -1;
    /* drawn on the host, then copied: a seed gives the same values on every device */
    int64_t n = kbl_numel(t);
    uint64_t seed = gen_seed, base = gen_offset;
    gen_offset += (uint64_t)n;
    kbl_tensor *c = t->device == KBL_CPU && kbl_is_contiguous(t) ? kbl_tensor_retain(t)
                                                                 : kbl_empty(t->ndim, t->shape, t->dtype);
    if (!c) return -1;
    kbl_cpu_random(dist, t->dtype, n, seed, base, a, b, kbl_base(c));
    int rc = 0;
    if (c != t) rc = kbl_copy_(t, c);
    kbl_tensor_release(c);
    return rc;
}

int kbl_uniform_(kbl_tensor *t, double low, double high) { return fill_random(t, KBL_DIST_UNIFORM, low, high); }
int kbl_normal_(kbl_tensor *t, double mean, double std) { return fill_random(t, KBL_DIST_NORMAL, mean, std); }

static kbl_tensor *make_random(int ndim, const int64_t *shape, int dtype, int dist, double a, double b) {
    kbl_tensor *t = kbl_empty(ndim, shape, dtype);
    if (t && fill_random(t, dist, a, b)) {
        kbl_tensor_release(t);
        return NULL;
    }
    return t;
}

kbl_tensor *kbl_rand(int ndim, const int64_t *shape, int dtype) {
    return make_random(ndim, shape, dtype, KBL_DIST_UNIFORM, 0, 1);
}
kbl_tensor *kbl_randn(int ndim, const int64_t *shape, int dtype) {
    return make_random(ndim, shape, dtype, KBL_DIST_NORMAL, 0, 1);
}
kbl_tensor *kbl_uniform(int ndim, const int64_t *shape, double low, double high, int dtype) {
    return make_random(ndim, shape, dtype, KBL_DIST_UNIFORM, low, high);
}
kbl_tensor *kbl_normal(int ndim, const int64_t *shape, double mean, double std, int dtype) {
    if (std < 0) {
        kbl_fail("normal: std must be non-negative, got %g", std);
        return NULL;
    }
    return make_random(ndim, shape, dtype, KBL_DIST_NORMAL, mean, std);
}
kbl_tensor *kbl_randint(int ndim, const int64_t *shape, int64_t low, int64_t high, int dtype) {
    if (high <= low) {
        kbl_fail("randint: empty range [%lld, %lld)", (long long)low, (long long)high);
        return NULL;
    }
    return make_random(ndim, shape, dtype, KBL_DIST_INT, (double)low, (double)high);
}

kbl_tensor *kbl_randperm(int64_t n, int dtype) {
    kbl_tensor *t = kbl_arange(0, (double)n, 1, KBL_INT64);
    if (!t) return NULL;
    int64_t *p = (int64_t *)kbl_base(t);
    uint64_t seed = gen_seed, base = gen_offset;
    gen_offset += (uint64_t)n;
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        uint32_t w[4];
        kbl_philox(seed, 0, base + (uint64_t)i, w);
        int64_t j = (int64_t)((((uint64_t)w[0] << 32) | w[1]) % (uint64_t)(i + 1));
        int64_t tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    if (dtype == KBL_INT64) return t;
    kbl_tensor *r = kbl_to_dtype(t, dtype);
    kbl_tensor_release(t);
    return r;
}
