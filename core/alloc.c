/* alloc.c — the CPU caching allocator: freed blocks are kept in size classes and
 * reused, so a training step's steady state does not reach malloc. It also counts
 * live bytes, which the Lua binding uses to step the garbage collector. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

/* Under AddressSanitizer (scripts/sanitize.sh) the cache would hide a use after
 * kbl_free and a write past the size asked for, so both are poisoned: a cached
 * block whole, a live block from its requested size to its size class's end. */
#if defined(__SANITIZE_ADDRESS__)
#define KBL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KBL_ASAN 1
#endif
#endif
#ifdef KBL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (size_t)(n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (size_t)(n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 64
#define NUM_CLASSES 256
/* Past this many cached bytes, freed blocks go back to the system. */
#define CACHE_LIMIT ((int64_t)2 << 30)

typedef struct block { struct block *next; } block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static block *free_lists[NUM_CLASSES];
static int64_t live_bytes, peak_bytes, cached_bytes, alloc_count;

/* The counters change under the lock and are read without it
 * (kbl_memory_live_bytes, ...): stores are atomic, so a reader sees a whole
 * value and C11 sees no data race. */
#define SET(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)
#define ADD(v, d) SET(v, (v) + (d))
static void count_live(int64_t d) {
    ADD(live_bytes, d);
    if (live_bytes > peak_bytes) SET(peak_bytes, live_bytes);
}

/* Size classes: four per power of two (at most 25% waste), from 64 bytes. */
static int size_class(int64_t nbytes, int64_t *rounded) {
    if (nbytes <= ALIGN) {
        *rounded = ALIGN;
        return 0;
    }
    int hb = 63 - __builtin_clzll((unsigned long long)(nbytes - 1)); /* 2^hb < nbytes <= 2^(hb+1) */
    int64_t quarter = (int64_t)1 << (hb - 2);
    int64_t base = (int64_t)1 << hb;
    int64_t q = (nbytes - base + quarter - 1) / quarter; /* 1..4 */
    *rounded = base + q * quarter;
    int c = (hb - 6) * 4 + (int)q;
    return c < NUM_CLASSES ? c : -1;
}

void *kbl_alloc(int64_t nbytes) {
    int64_t rounded;
    int c = size_class(nbytes, &rounded);
    void *p = NULL;
    pthread_mutex_lock(&lock);
    if (c >= 0 && free_lists[c]) {
        block *b = free_lists[c];
        UNPOISON(b, sizeof *b);
        free_lists[c] = b->next;
        ADD(cached_bytes, -rounded);
        p = b;
    }
    if (p) {
        count_live(rounded);
    }
    pthread_mutex_unlock(&lock);
    if (p) {
        UNPOISON(p, nbytes);
        POISON((char *)p + nbytes, rounded - nbytes);
        return p;
    }
    /* C11 wants the size a multiple of the alignment (ASan enforces it); the
     * small size classes (80, 96, 112 bytes) are not */
    p = aligned_alloc(ALIGN, ((size_t)rounded + ALIGN - 1) & ~(size_t)(ALIGN - 1));
    if (!p) {
        kbl_fail("out of memory allocating %lld bytes", (long long)nbytes);
        return NULL;
    }
    POISON((char *)p + nbytes, rounded - nbytes);
    pthread_mutex_lock(&lock);
    ADD(alloc_count, 1);
    count_live(rounded);
    pthread_mutex_unlock(&lock);
    return p;
}

void kbl_free(void *p, int64_t nbytes) {
    if (!p) return;
    int64_t rounded;
    int c = size_class(nbytes, &rounded);
    UNPOISON(p, rounded);
    pthread_mutex_lock(&lock);
    ADD(live_bytes, -rounded);
    if (c >= 0 && cached_bytes + rounded <= CACHE_LIMIT) {
        block *b = p;
        b->next = free_lists[c];
        free_lists[c] = b;
        POISON(b, rounded);
        ADD(cached_bytes, rounded);
        p = NULL;
    }
    pthread_mutex_unlock(&lock);
    free(p);
}

void kbl_memory_empty_cache(void) {
    pthread_mutex_lock(&lock);
    for (int c = 0; c < NUM_CLASSES; c++) {
        block *b = free_lists[c];
        while (b) {
            UNPOISON(b, sizeof *b);
            block *next = b->next;
            free(b);
            b = next;
        }
        free_lists[c] = NULL;
    }
    SET(cached_bytes, 0);
    pthread_mutex_unlock(&lock);
}

int64_t kbl_memory_live_bytes(void) { return __atomic_load_n(&live_bytes, __ATOMIC_RELAXED); }
int64_t kbl_memory_peak_bytes(void) { return __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED); }
int64_t kbl_memory_cached_bytes(void) { return __atomic_load_n(&cached_bytes, __ATOMIC_RELAXED); }
int64_t kbl_memory_alloc_count(void) { return __atomic_load_n(&alloc_count, __ATOMIC_RELAXED); }

void kbl_memory_reset_peak(void) {
    pthread_mutex_lock(&lock);
    SET(peak_bytes, live_bytes);
    pthread_mutex_unlock(&lock);
}
