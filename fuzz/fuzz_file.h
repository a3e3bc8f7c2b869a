/* fuzz_file.h — what the harnesses share: the fuzz input as a file the readers
 * open by path (a memfd, so nothing touches the disk) and the checks every
 * reader's result must pass: a tensor whose bytes can all be read, or NULL
 * with a message that names the file. A failed check aborts, which libFuzzer
 * reports as a crash. */
#define _GNU_SOURCE
#include "kbl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *fuzz_file(const uint8_t *data, size_t size) {
    kbl_memory_empty_cache(); /* the last input's freed blocks: RSS stays flat over millions of runs */
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("kbl-fuzz", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    return path;
}

/* A reader's error names the file it read. */
static void fuzz_check_error(const char *path) {
    const char *e = kbl_last_error();
    if (!e || !strstr(e, path)) {
        fprintf(stderr, "error message does not name the file %s: %s\n", path, e ? e : "(none)");
        abort();
    }
}

/* Every byte of a tensor a reader returned is there (ASan sees a short one). */
static uint64_t fuzz_touch(kbl_tensor *t) {
    const unsigned char *p = kbl_data_ptr(t);
    int64_t n = kbl_numel(t) * (int64_t)kbl_dtype_size(t->dtype);
    if (n < 0 || (n > 0 && !p)) abort();
    uint64_t h = 0;
    for (int64_t i = 0; i < n; i++) h = h * 31 + p[i];
    return h;
}
