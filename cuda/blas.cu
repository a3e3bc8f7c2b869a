/* blas.cu — matrix products through cuBLAS. kbl's matrices are row-major and
 * cuBLAS's column-major; a row-major matrix is the column-major view of its
 * transpose, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: the same
 * buffers and leading dimensions, with A and B swapped. The handle is made on
 * first use and bound to the backend's stream. Full float32 (no TF32), so
 * results agree with the CPU's OpenBLAS to float rounding. */
#include <cublas_v2.h>
#include <mutex>

#include "ops.cuh"

namespace kblcuda {

namespace {

cublasHandle_t handle;
std::once_flag made;
cublasStatus_t made_status = CUBLAS_STATUS_NOT_INITIALIZED;

int blas_fail(const char *what, cublasStatus_t s) {
    host->fail("cuda: %s failed: %s: %s", what, cublasGetStatusName(s), cublasGetStatusString(s));
    return -1;
}

}  // namespace

int gemm(int dtype, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
         const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
    std::call_once(made, [] {
        made_status = cublasCreate(&handle);
        if (made_status == CUBLAS_STATUS_SUCCESS) made_status = cublasSetStream(handle, stream());
    });
    if (made_status != CUBLAS_STATUS_SUCCESS) return blas_fail("cublasCreate", made_status);
    const int64_t lim = 2147483647;
    if (m > lim || n > lim || k > lim || lda > lim || ldb > lim || ldc > lim)
        return host->fail("cuda: matmul of %lld x %lld by %lld x %lld is past cuBLAS's 32-bit sizes", (long long)m,
                          (long long)k, (long long)k, (long long)n);
    cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t s;
    if (dtype == KBL_FLOAT32) {
        float al = 1.0f, be = (float)beta;
        s = cublasSgemm(handle, tb, ta, (int)n, (int)m, (int)k, &al, (const float *)b, (int)ldb, (const float *)a,
                        (int)lda, &be, (float *)c, (int)ldc);
        if (s != CUBLAS_STATUS_SUCCESS) return blas_fail("cublasSgemm", s);
    } else {
        double al = 1.0, be = beta;
        s = cublasDgemm(handle, tb, ta, (int)n, (int)m, (int)k, &al, (const double *)b, (int)ldb, (const double *)a,
                        (int)lda, &be, (double *)c, (int)ldc);
        if (s != CUBLAS_STATUS_SUCCESS) return blas_fail("cublasDgemm", s);
    }
    return 0;
}

}  // namespace kblcuda
