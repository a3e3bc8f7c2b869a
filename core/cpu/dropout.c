/* dropout.c — the CPU's inverted-dropout keep-mask: element i is scale where
 * the Philox word for it (four per counter, from `counter` on) is at least
 * threshold, else 0; the same words as the CUDA kernel, whatever the threads. */
#include "cpu.h"
#include "../philox.h"

#define MASK_FILL(T)                                                                   \
    do {                                                                               \
        T *mp = out;                                                                   \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                   \
        for (int64_t blk = 0; blk < nblocks; blk++) {                                  \
            uint32_t w[4];                                                             \
            kbl_philox4x32(seed, 0, counter + (uint64_t)blk, w);                       \
            for (int k = 0; k < 4 && blk * 4 + k < n; k++)                             \
                mp[blk * 4 + k] = w[k] >= threshold ? (T)scale : (T)0;                 \
        }                                                                              \
    } while (0)

int kbl_cpu_dropout_mask(int dtype, int64_t n, uint64_t seed, uint64_t counter, uint32_t threshold, double scale,
                         void *out) {
    int64_t nblocks = (n + 3) / 4;
    int nt = n >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
    KBL_FLOAT_CASES(dtype, MASK_FILL)
    return 0;
}
