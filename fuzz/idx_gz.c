/* idx_gz.c — libFuzzer harness: the input, gzip-compressed, as an IDX file, so
 * that every mutation reaches the IDX parser through a valid gzip stream. */
#include "fuzz_file.h"

#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort(); /* 15 + 16: gzip */
    size_t cap = deflateBound(&z, size) + 32;
    unsigned char *gz = malloc(cap);
    if (!gz) abort();
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)size;
    z.next_out = gz;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    size_t n = z.total_out;
    deflateEnd(&z);
    const char *path = fuzz_file(gz, n);
    free(gz);
    kbl_tensor *t = kbl_data_idx_read(path);
    if (!t) fuzz_check_error(path);
    else (void)fuzz_touch(t);
    kbl_tensor_release(t);
    return 0;
}
