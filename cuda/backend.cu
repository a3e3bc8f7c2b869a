/* backend.cu — the CUDA backend's entry point: kbl_cuda_backend() returns the
 * function table core/backend.c loads; init starts device 0 and its one stream
 * (every kernel, cuBLAS and cuDNN call runs on it, in order, so blocks freed to
 * the caching allocator are safe to reuse at once); copies between host and
 * device; and the error reporting every file uses. */
#include <stdio.h>
#include <string.h>

#include "ops.cuh"

namespace kblcuda {

const kbl_backend_host *host;
static cudaStream_t the_stream;
static char device_label[512];
static int device_total;

cudaStream_t stream() { return the_stream; }

int fail(const char *what, cudaError_t e) {
    if (host) host->fail("cuda: %s failed: %s: %s", what, cudaGetErrorName(e), cudaGetErrorString(e));
    return -1;
}

int sync(const char *what) {
    cudaError_t e = cudaStreamSynchronize(the_stream);
    if (e != cudaSuccess) {
        if (host)
            host->fail("cuda: %s: the device reported %s: %s (an earlier kernel may have failed; CUDA errors of "
                       "this kind leave the device unusable until the process restarts)",
                       what, cudaGetErrorName(e), cudaGetErrorString(e));
        return -1;
    }
    return 0;
}

void *scratch(int64_t nbytes) { return alloc(nbytes); }
void scratch_free(void *p, int64_t nbytes) { free(p, nbytes); }

static int init(const kbl_backend_host *h, char *reason, size_t reason_size) {
    host = h;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaErrorInsufficientDriver) {
        snprintf(reason, reason_size, "no CUDA driver (libcuda.so.1) is installed, or it is older than the CUDA %d.%d "
                 "runtime kbl was built with (%s)", CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10,
                 cudaGetErrorName(e));
        cudaGetLastError();
        return -1;
    }
    if (e != cudaSuccess || count == 0) {
        snprintf(reason, reason_size, "no CUDA device found (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports 0 devices");
        cudaGetLastError();
        return -1;
    }
    device_total = count;
    cudaDeviceProp prop;
    if ((e = cudaSetDevice(0)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&the_stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(reason, reason_size, "the CUDA device could not start: %s: %s", cudaGetErrorName(e),
                 cudaGetErrorString(e));
        cudaGetLastError();
        return -1;
    }
    snprintf(device_label, sizeof device_label, "%.256s (compute capability %d.%d, %.1f GiB)", prop.name, prop.major,
             prop.minor, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    set_total_memory((int64_t)prop.totalGlobalMem);
    return 0;
}

static int device_count() { return device_total; }
static const char *device_name() { return device_label; }
static int synchronize() { return sync("synchronize"); }

/* Host reads wait for the stream; a copy from the host returns once the source
 * is staged, so the caller may free it. */
static int memcpy_kind(void *dst, const void *src, int64_t nbytes, int kind) {
    if (nbytes <= 0) return 0;
    static const cudaMemcpyKind kinds[] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice};
    static const char *names[] = {"cudaMemcpyAsync (host to device)", "cudaMemcpyAsync (device to host)",
                                  "cudaMemcpyAsync (device to device)"};
    if (kind < 0 || kind > 2) return host->fail("cuda: unknown copy kind %d", kind);
    cudaError_t e = cudaMemcpyAsync(dst, src, (size_t)nbytes, kinds[kind], the_stream);
    if (e != cudaSuccess) return fail(names[kind], e);
    if (kind == KBL_COPY_D2H || kind == KBL_COPY_H2D) return sync(names[kind]);
    return 0;
}

static const kbl_backend table = {
    KBL_BACKEND_ABI, "cuda", init, device_count, device_name, synchronize,
    alloc, free, memory_stats, empty_cache, reset_peak, memcpy_kind,
    copy, fill, binary, axpy, where, unary, unary_grad,
    sum_rows, sum_cols, extreme_rows, softmax_rows, cross_entropy,
    gemm, index_check, index, dropout_mask, conv, pool, norm, optim_step,
    0,  // conv_bias: conv.cu takes no fused bias; the core adds it
};

}  // namespace kblcuda

extern "C" __attribute__((visibility("default"))) const kbl_backend *kbl_cuda_backend(void) {
    return &kblcuda::table;
}
