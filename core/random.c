/* random.c — the counter-based generator (Philox 4x32-10, Salmon et al. 2011).
 * Element i of a random tensor is a pure function of (seed, stream, offset + i),
 * so values do not depend on thread count, and the generator state is two numbers. */
#include "internal.h"
#include "philox.h"

#include <math.h>

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

static inline double u01_53(const uint32_t w[4]) { /* [0, 1) */
    uint64_t x = ((uint64_t)w[0] << 21) ^ (w[1] >> 11);
    return (double)(x & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

static inline double normal_from(const uint32_t w[4]) {
    double u1 = 1.0 - u01_53(w);                         /* (0, 1] */
    double u2 = (double)w[2] * (1.0 / 4294967296.0);     /* [0, 1) */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

enum { DIST_UNIFORM, DIST_NORMAL, DIST_INT };

/* Fills t (any geometry) with the distribution, consuming numel counters. */
static int fill_random(kbl_tensor *t, int dist, double a, double b) {
    if (kbl_check_dev("random", t, "tensor")) return -1;
    if (kbl_on_cuda(t)) { /* drawn on the host: a seed gives the same values on every device */
        kbl_tensor *h = kbl_empty(t->ndim, t->shape, t->dtype);
        int rc = h ? fill_random(h, dist, a, b) : -1;
        if (rc == 0) rc = kbl_copy_(t, h);
        kbl_tensor_release(h);
        return rc;
    }
    int64_t n = kbl_numel(t);
    uint64_t seed = gen_seed, base = gen_offset;
    gen_offset += (uint64_t)n;
    kbl_tensor *c = kbl_is_contiguous(t) ? kbl_tensor_retain(t) : kbl_empty_like(t, -1);
    if (!c) return -1;
    void *p = kbl_base(c);
    int dtype = t->dtype;
#pragma omp parallel for if (n > 65536) num_threads(kbl_threads())
    for (int64_t i = 0; i < n; i++) {
        uint32_t w[4];
        kbl_philox(seed, 0, base + (uint64_t)i, w);
        double v;
        if (dist == DIST_UNIFORM) {
            v = a + (b - a) * u01_53(w);
            /* float32 would round values within 2^-25 of high up to high itself:
             * keep the interval half-open, [low, high), in every dtype */
            if (dtype == KBL_FLOAT32 && b > a && (float)v >= (float)b) v = nextafterf((float)b, (float)a);
        }
        else if (dist == DIST_NORMAL) v = a + b * normal_from(w);
        else v = a + (double)((((uint64_t)w[0] << 32) | w[1]) % (uint64_t)(b - a));
        kbl_store_double(p, dtype, i, v);
    }
    int rc = 0;
    if (c != t) rc = kbl_copy_(t, c);
    kbl_tensor_release(c);
    return rc;
}

int kbl_uniform_(kbl_tensor *t, double low, double high) { return fill_random(t, DIST_UNIFORM, low, high); }
int kbl_normal_(kbl_tensor *t, double mean, double std) { return fill_random(t, DIST_NORMAL, mean, std); }

static kbl_tensor *make_random(int ndim, const int64_t *shape, int dtype, int dist, double a, double b) {
    kbl_tensor *t = kbl_empty(ndim, shape, dtype);
    if (t && fill_random(t, dist, a, b)) {
        kbl_tensor_release(t);
        return NULL;
    }
    return t;
}

kbl_tensor *kbl_rand(int ndim, const int64_t *shape, int dtype) {
    return make_random(ndim, shape, dtype, DIST_UNIFORM, 0, 1);
}
kbl_tensor *kbl_randn(int ndim, const int64_t *shape, int dtype) {
    return make_random(ndim, shape, dtype, DIST_NORMAL, 0, 1);
}
kbl_tensor *kbl_uniform(int ndim, const int64_t *shape, double low, double high, int dtype) {
    return make_random(ndim, shape, dtype, DIST_UNIFORM, low, high);
}
kbl_tensor *kbl_normal(int ndim, const int64_t *shape, double mean, double std, int dtype) {
    if (std < 0) {
        kbl_fail("normal: std must be non-negative, got %g", std);
        return NULL;
    }
    return make_random(ndim, shape, dtype, DIST_NORMAL, mean, std);
}
kbl_tensor *kbl_randint(int ndim, const int64_t *shape, int64_t low, int64_t high, int dtype) {
    if (high <= low) {
        kbl_fail("randint: empty range [%lld, %lld)", (long long)low, (long long)high);
        return NULL;
    }
    return make_random(ndim, shape, dtype, DIST_INT, (double)low, (double)high);
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
