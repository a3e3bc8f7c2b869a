/* test_alloc.c — the caching allocator (core/alloc.c) and the shared argument
 * check (core/error.c): a freed block is reused without a new malloc, the live,
 * cached and peak byte counts add up, and in the sanitizer build a cached block
 * and the bytes past a block's requested size are poisoned, so that ASan reports
 * a use after kbl_free or an overflow however the cache recycles memory. */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#endif

static int failures;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "test_alloc: FAILED %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, " [%s]\n", #cond);                               \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static void test_reuse_and_counts(void) {
    kbl_memory_empty_cache();
    int64_t live0 = kbl_memory_live_bytes(), count0 = kbl_memory_alloc_count();
    unsigned char *p = kbl_alloc(100);
    CHECK(p != NULL, "kbl_alloc(100) returned NULL: %s", kbl_last_error());
    if (!p) return;
    CHECK(((uintptr_t)p & 63) == 0, "block %p is not 64-byte aligned", (void *)p);
    memset(p, 7, 100);
    CHECK(kbl_memory_alloc_count() == count0 + 1, "one malloc expected");
    CHECK(kbl_memory_live_bytes() == live0 + 112, "100 bytes take a 112-byte class, live grew by %lld",
          (long long)(kbl_memory_live_bytes() - live0));
    kbl_free(p, 100);
    CHECK(kbl_memory_live_bytes() == live0, "live bytes back to %lld, got %lld", (long long)live0,
          (long long)kbl_memory_live_bytes());
    CHECK(kbl_memory_cached_bytes() == 112, "the block is cached");
#ifdef HAVE_ASAN
    CHECK(__asan_address_is_poisoned(p) && __asan_address_is_poisoned(p + 111),
          "a cached block is poisoned");
#endif
    unsigned char *q = kbl_alloc(97); /* same class: the cached block comes back */
    CHECK(q == p, "the cached block is reused");
    CHECK(kbl_memory_alloc_count() == count0 + 1, "reuse does not malloc");
    CHECK(kbl_memory_cached_bytes() == 0, "the cache is empty again");
#ifdef HAVE_ASAN
    CHECK(!__asan_region_is_poisoned(q, 97), "the 97 bytes asked for are usable");
    CHECK(__asan_address_is_poisoned(q + 97), "the byte past the 97 asked for is poisoned");
#endif
    if (q) memset(q, 1, 97);
    kbl_free(q, 97);
    kbl_memory_empty_cache();
    CHECK(kbl_memory_cached_bytes() == 0, "empty_cache releases every cached byte");
}

static void test_zero_and_large(void) {
    void *z = kbl_alloc(0);
    CHECK(z != NULL, "kbl_alloc(0) gives a block");
    kbl_free(z, 0);
    int64_t big = (int64_t)3 << 20; /* 3 MiB */
    char *b = kbl_alloc(big);
    CHECK(b != NULL, "kbl_alloc(3 MiB) failed: %s", kbl_last_error());
    if (b) {
        b[0] = 1;
        b[big - 1] = 2;
        kbl_free(b, big);
    }
    kbl_memory_empty_cache();
}

static void test_check_tensor(void) {
    CHECK(kbl_check_tensor("my_op", NULL, "weight") == -1, "NULL tensor is refused");
    CHECK(strstr(kbl_last_error(), "my_op: weight is missing") != NULL, "message names op and argument: %s",
          kbl_last_error());
    kbl_tensor *t = kbl_zeros(1, (int64_t[]){3}, KBL_FLOAT32);
    CHECK(t != NULL, "kbl_zeros failed: %s", kbl_last_error());
    if (t) {
        CHECK(kbl_check_tensor("my_op", t, "input") == 0, "a live tensor passes");
        kbl_tensor_release(t);
    }
}

int main(void) {
    test_reuse_and_counts();
    test_zero_and_large();
    test_check_tensor();
    kbl_memory_empty_cache();
    if (failures) fprintf(stderr, "test_alloc: %d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
