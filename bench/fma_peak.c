/* bench/fma_peak.c — the float32 FMA peak of one core: independent chains of
 * fused multiply-adds (AVX-512 or AVX2 plus FMA, chosen at run time with
 * __builtin_cpu_supports), timed in the thread's CPU time (so a busy machine
 * that takes the core away does not count). Prints one JSON object:
 * {"isa": ..., "gflops": ...}, the best of several timings. Built and run by
 * bench/mlp.lua:  cc -O2 -o fma_peak bench/fma_peak.c && ./fma_peak */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define CHAINS 16    /* enough independent FMAs to cover latency x throughput (4 x 2 on most cores) */
#define ITERS 20000000L

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Returns the sum of the accumulators (printed, so the work is not dropped). */
__attribute__((target("avx512f"))) static float run512(long iters) {
    __m512 acc[CHAINS], a = _mm512_set1_ps(0.9999999f), b = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
    __m512 s = acc[0];
    for (int k = 1; k < CHAINS; k++) s = _mm512_add_ps(s, acc[k]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float run256(long iters) {
    __m256 acc[CHAINS], a = _mm256_set1_ps(0.9999999f), b = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
    __m256 s = acc[0];
    for (int k = 1; k < CHAINS; k++) s = _mm256_add_ps(s, acc[k]);
    float v[8], t = 0;
    _mm256_storeu_ps(v, s);
    for (int k = 0; k < 8; k++) t += v[k];
    return t;
}

int main(void) {
    __builtin_cpu_init();
    int wide = __builtin_cpu_supports("avx512f");
    if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        printf("{\"isa\": \"none\", \"gflops\": null}\n");
        return 0;
    }
    int lanes = wide ? 16 : 8;
    double best = 0;
    float sink = 0;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now();
        sink += wide ? run512(ITERS) : run256(ITERS);
        double dt = now() - t0, gf = 2.0 * lanes * CHAINS * (double)ITERS / dt / 1e9;
        if (gf > best) best = gf;
    }
    printf("{\"isa\": \"%s\", \"gflops\": %.2f, \"sink\": %g}\n", wide ? "avx512" : "avx2", best, (double)sink);
    return 0;
}
