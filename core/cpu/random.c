/* random.c — the CPU's draw of n values of a distribution from Philox words:
 * value i from counter `counter + i` (core/random.c keeps the generator state),
 * so a seed gives the same values whatever the thread count or the device the
 * tensor lives on (other devices receive a copy of these values). */
#include "cpu.h"
#include "../philox.h"

#include <math.h>

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

void kbl_cpu_random(int dist, int dtype, int64_t n, uint64_t seed, uint64_t counter, double a, double b, void *out) {
#pragma omp parallel for if (n > 65536) num_threads(kbl_threads())
    for (int64_t i = 0; i < n; i++) {
        uint32_t w[4];
        kbl_philox4x32(seed, 0, counter + (uint64_t)i, w);
        double v;
        if (dist == KBL_DIST_UNIFORM) {
            v = a + (b - a) * u01_53(w);
            /* float32 would round values within 2^-25 of high up to high itself:
             * keep the interval half-open, [low, high), in every dtype */
            if (dtype == KBL_FLOAT32 && b > a && (float)v >= (float)b) v = nextafterf((float)b, (float)a);
        }
        else if (dist == KBL_DIST_NORMAL) v = a + b * normal_from(w);
        else v = a + (double)((((uint64_t)w[0] << 32) | w[1]) % (uint64_t)(b - a));
        kbl_store_double(out, dtype, i, v);
    }
}
