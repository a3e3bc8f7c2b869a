/* backend.c — the CPU's kbl_backend table: the same function table as the CUDA
 * backend (core/backend.h), filled with the kernels of core/cpu/ and, for GEMM
 * and convolution, oneDNN's (dnnl.h). Memory is host memory from the caching
 * allocator (core/alloc.c); copies are memcpy; there is nothing to start or wait for. */
#include "cpu.h"
#include "dnnl.h"

#include <unistd.h>

static int init(const kbl_backend_host *host, char *reason, size_t reason_size) { // NOLINT(readability-non-const-parameter): the table's signature
    (void)host, (void)reason, (void)reason_size;
    return 0;
}
static int device_count(void) { return 1; }
static const char *device_name(void) { return "cpu"; }
static int synchronize(void) { return 0; }

static void memory_stats(int64_t out[5]) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    out[0] = kbl_memory_live_bytes();
    out[1] = kbl_memory_peak_bytes();
    out[2] = kbl_memory_cached_bytes();
    out[3] = kbl_memory_alloc_count();
    out[4] = pages > 0 && page > 0 ? (int64_t)pages * page : 0;
}

static int host_memcpy(void *dst, const void *src, int64_t nbytes, int kind) {
    (void)kind; /* every copy is host to host */
    if (nbytes > 0) memcpy(dst, src, (size_t)nbytes);
    return 0;
}

static const kbl_backend cpu = {
    .abi = KBL_BACKEND_ABI,
    .name = "cpu",
    .init = init,
    .device_count = device_count,
    .device_name = device_name,
    .synchronize = synchronize,
    .alloc = kbl_alloc,
    .free = kbl_free,
    .memory_stats = memory_stats,
    .empty_cache = kbl_memory_empty_cache,
    .reset_peak = kbl_memory_reset_peak,
    .memcpy = host_memcpy,
    .copy = kbl_cpu_copy,
    .fill = kbl_cpu_fill,
    .binary = kbl_cpu_binary,
    .axpy = kbl_cpu_axpy,
    .where = kbl_cpu_where,
    .unary = kbl_cpu_unary,
    .unary_grad = kbl_cpu_unary_grad,
    .sum_rows = kbl_cpu_sum_rows,
    .sum_cols = kbl_cpu_sum_cols,
    .extreme_rows = kbl_cpu_extreme_rows,
    .softmax_rows = kbl_cpu_softmax_rows,
    .cross_entropy = kbl_cpu_cross_entropy,
    .gemm = kbl_cpu_gemm,
    .index_check = kbl_cpu_index_check,
    .index = kbl_cpu_index,
    .dropout_mask = kbl_cpu_dropout_mask,
    .conv = kbl_cpu_conv,
    .pool = kbl_cpu_pool,
    .norm = kbl_cpu_norm,
    .optim_step = kbl_cpu_optim_step,
    .conv_bias = 1,
};

const kbl_backend *kbl_cpu_backend(void) { return &cpu; }
