/* dnnl_gemm.c — kbl_cpu_gemm: float32 GEMM through oneDNN's dnnl_sgemm (JIT
 * kernels picked by instruction set at run time), float64 through a plain
 * cache-blocked loop for the gradient checks.
 *
 * Why dnnl_sgemm and not a cached dnnl_matmul primitive: measured on the AMD
 * EPYC (Zen 4) development machine, 1 thread, CPU time, oneDNN 2.6.3 (the
 * matmul primitive runs brg:avx512_core there), ms per call, sgemm / matmul:
 *   1024^3                          20.5 / 21.6   (104.7 / 99.3 GFLOP/s)
 *   128x256x784, B transposed        0.517 / 0.480 (linear's forward, MLP layer 1)
 *   128x256x256, B transposed        0.166 / 0.154
 *   128x10x256,  B transposed        0.015 / 0.010
 *   128x784x256                      0.460 / 0.455 (linear's input gradient)
 *   256x784x128, A transposed        0.463 / 0.464 (linear's weight gradient)
 * The primitive wins 7% on linear's forward shapes, which is about 3% of the MLP
 * step, and loses 5% on the square product; it would need a cache keyed on
 * shapes, strides, beta and thread count. Not taken: dnnl_sgemm, no state. */
#include "../internal.h"
#include "dnnl.h"
#include "dnnl_common.h"

#include <oneapi/dnnl/dnnl.h>

/* The float64 loop: C's rows split over threads, each element summed in one
 * fixed order whatever the thread count (so results do not depend on it). B is
 * packed KC x NC at a time into a contiguous panel the inner loop streams. */
#define KC 128
#define NC 256

static int dgemm_plain(int ta, int tb, int64_t m, int64_t n, int64_t k, const double *a, int64_t lda,
                        const double *b, int64_t ldb, double beta, double *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
    if (k == 0) return 0;
    double *panel = kbl_alloc((int64_t)sizeof(double) * KC * NC);
    if (!panel) return -1;
    int nt = m * n * k >= KBL_PARALLEL_GRAIN && m > 1 ? kbl_threads() : 1;
    for (int64_t j0 = 0; j0 < n; j0 += NC) {
        int64_t nc = n - j0 < NC ? n - j0 : NC;
        for (int64_t p0 = 0; p0 < k; p0 += KC) {
            int64_t kc = k - p0 < KC ? k - p0 : KC;
            for (int64_t p = 0; p < kc; p++)
                for (int64_t j = 0; j < nc; j++)
                    panel[p * nc + j] = tb ? b[(j0 + j) * ldb + p0 + p] : b[(p0 + p) * ldb + j0 + j];
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t i = 0; i < m; i++) {
                double *ci = c + i * ldc + j0;
                for (int64_t p = 0; p < kc; p++) {
                    double av = ta ? a[(p0 + p) * lda + i] : a[i * lda + p0 + p];
                    const double *bp = panel + p * nc;
                    for (int64_t j = 0; j < nc; j++) ci[j] += av * bp[j];
                }
            }
        }
    }
    kbl_free(panel, (int64_t)sizeof(double) * KC * NC);
    return 0;
}

int kbl_cpu_gemm(int dtype, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                 const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
    if (m == 0 || n == 0) return 0;
    if (dtype == KBL_FLOAT64) {
        return dgemm_plain(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
    }
    if (kbl_dnnl_init()) return -1;
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb,
                                  (float)beta, c, ldc);
    if (st != dnnl_success)
        return kbl_fail("gemm: dnnl_sgemm(%c, %c, m=%lld, n=%lld, k=%lld, lda=%lld, ldb=%lld, ldc=%lld) failed: %s",
                        trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', (long long)m, (long long)n, (long long)k,
                        (long long)lda, (long long)ldb, (long long)ldc, kbl_dnnl_status(st));
    return 0;
}
