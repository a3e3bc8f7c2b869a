/* alloc.cu — the caching allocator over cudaMalloc: freed blocks are kept in
 * size classes (four per power of two from 512 bytes, as core/alloc.c does on
 * the host) and reused, so a training step's steady state never calls cudaMalloc
 * or cudaFree, which synchronize the device. When cudaMalloc runs out, the cache
 * is given back and the call tried once more. One stream means a freed block can
 * be reused at once: later work on it is ordered after earlier work. */
#include <mutex>
#include <new>

#include "ops.cuh"

namespace kblcuda {

namespace {

const int kClasses = 200;
const int64_t kMinBlock = 512;

struct Block { void *p; Block *next; };

std::mutex lock;
Block *free_lists[kClasses];
Block *spare;   /* list nodes, recycled */
int64_t live_bytes, peak_bytes, cached_bytes, alloc_count, total_memory;

/* class index of a request and the rounded size it gets; -1: too big to cache */
int size_class(int64_t nbytes, int64_t *rounded) {
    if (nbytes <= kMinBlock) {
        *rounded = kMinBlock;
        return 0;
    }
    int hb = 63 - __builtin_clzll((unsigned long long)(nbytes - 1)); /* 2^hb < nbytes <= 2^(hb+1) */
    int64_t quarter = (int64_t)1 << (hb - 2), base = (int64_t)1 << hb;
    int64_t q = (nbytes - base + quarter - 1) / quarter; /* 1..4 */
    *rounded = base + q * quarter;
    int c = (hb - 9) * 4 + (int)q;
    return c < kClasses ? c : -1;
}

Block *node_new() {
    if (spare) {
        Block *b = spare;
        spare = b->next;
        return b;
    }
    return new (std::nothrow) Block;
}

/* gives every cached block back; the caller holds the lock */
void release_cached() {
    cudaStreamSynchronize(stream());
    for (int c = 0; c < kClasses; c++) {
        while (Block *b = free_lists[c]) {
            free_lists[c] = b->next;
            cudaFree(b->p);
            b->next = spare;
            spare = b;
        }
    }
    cached_bytes = 0;
}

}  // namespace

void set_total_memory(int64_t bytes) { total_memory = bytes; }

void *alloc(int64_t nbytes) {
    int64_t rounded;
    int c = size_class(nbytes < 0 ? 0 : nbytes, &rounded);
    std::lock_guard<std::mutex> g(lock);
    void *p = nullptr;
    if (c >= 0 && free_lists[c]) {
        Block *b = free_lists[c];
        free_lists[c] = b->next;
        p = b->p;
        b->next = spare;
        spare = b;
        cached_bytes -= rounded;
    } else {
        cudaError_t e = cudaMalloc(&p, (size_t)rounded);
        if (e == cudaErrorMemoryAllocation && cached_bytes > 0) {
            cudaGetLastError();
            release_cached();
            e = cudaMalloc(&p, (size_t)rounded);
        }
        if (e != cudaSuccess) {
            cudaGetLastError();
            host->fail("cuda: cudaMalloc of %lld bytes failed: %s: %s (%lld bytes live in kbl tensors, device "
                       "memory %lld bytes)", (long long)rounded, cudaGetErrorName(e), cudaGetErrorString(e),
                       (long long)live_bytes, (long long)total_memory);
            return nullptr;
        }
        alloc_count++;
    }
    live_bytes += rounded;
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
    return p;
}

void free(void *p, int64_t nbytes) {
    if (!p) return;
    int64_t rounded;
    int c = size_class(nbytes < 0 ? 0 : nbytes, &rounded);
    std::lock_guard<std::mutex> g(lock);
    live_bytes -= rounded;
    Block *b = c >= 0 ? node_new() : nullptr;
    if (!b) { /* too big to cache, or no memory for the list node */
        cudaStreamSynchronize(stream());
        cudaFree(p);
        return;
    }
    b->p = p;
    b->next = free_lists[c];
    free_lists[c] = b;
    cached_bytes += rounded;
}

void memory_stats(int64_t out[5]) {
    std::lock_guard<std::mutex> g(lock);
    out[0] = live_bytes;
    out[1] = peak_bytes;
    out[2] = cached_bytes;
    out[3] = alloc_count;
    out[4] = total_memory;
}

void empty_cache() {
    std::lock_guard<std::mutex> g(lock);
    release_cached();
}

void reset_peak() {
    std::lock_guard<std::mutex> g(lock);
    peak_bytes = live_bytes;
}

}  // namespace kblcuda
