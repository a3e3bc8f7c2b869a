/* philox.h — Philox 4x32-10 (Salmon et al. 2011), the one counter-based generator
 * of kbl, as an inline function both the CPU (random.c, dropout.c) and the CUDA
 * kernels (cuda/) compile, so a seed gives the same numbers on every device. */
#ifndef KBL_PHILOX_H
#define KBL_PHILOX_H

#include <stdint.h>

#ifdef __CUDACC__
#define KBL_HOST_DEVICE __host__ __device__
#else
#define KBL_HOST_DEVICE
#endif

/* Four 32-bit words for (seed, stream, counter). */
static inline KBL_HOST_DEVICE void kbl_philox4x32(uint64_t seed, uint64_t stream, uint64_t counter,
                                                  uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32);
    uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

#endif /* KBL_PHILOX_H */
