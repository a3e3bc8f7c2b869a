/* checkpoint.c — libFuzzer harness for kbl_checkpoint_open. An input that starts
 * with the magic "KBLCKPT" is a whole file; any other is a payload (what the
 * zstd frame holds), which the harness wraps in a frame and a header with
 * valid checksums, so that mutations reach the payload's parser. */
#include "fuzz_file.h"

#include <zlib.h>
#include <zstd.h>

static void put(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path;
    if (size >= 7 && memcmp(data, "KBLCKPT", 7) == 0) {
        path = fuzz_file(data, size);
    } else {
        size_t cap = 40 + ZSTD_compressBound(size);
        unsigned char *f = malloc(cap);
        if (!f) abort();
        size_t n = ZSTD_compress(f + 40, cap - 40, data, size, 1);
        if (ZSTD_isError(n)) abort();
        memcpy(f, "KBLCKPT", 8);
        put(f + 8, (uint64_t)kbl_checkpoint_format_version(), 4);
        put(f + 12, 40, 4);
        put(f + 16, n, 8);
        put(f + 24, size, 8);
        put(f + 32, crc32_z(0, f + 40, n), 4);
        put(f + 36, crc32_z(0, f, 36), 4);
        path = fuzz_file(f, 40 + n);
        free(f);
    }
    kbl_checkpoint *c = kbl_checkpoint_open(path);
    if (!c) {
        fuzz_check_error(path);
        return 0;
    }
    size_t len;
    const char *meta = kbl_checkpoint_meta(c, &len);
    uint64_t h = 0;
    for (size_t i = 0; i < len; i++) h += (unsigned char)meta[i];
    for (int i = 0; i < kbl_checkpoint_count(c); i++) {
        const char *name = kbl_checkpoint_name(c, i);
        if (!name) abort();
        h += strlen(name);
        kbl_tensor *t = kbl_checkpoint_tensor(c, i);
        if (!t) {
            /* only an allocation can fail once the file parsed */
            if (!strstr(kbl_last_error(), "out of memory")) abort();
            continue;
        }
        h += fuzz_touch(t);
        kbl_tensor_release(t);
    }
    kbl_checkpoint_close(c);
    return (int)(h & 0);
}
