/* idx.c — libFuzzer harness: the input is an IDX file (plain, or gzip when it
 * starts with gzip's magic) read by kbl_data_idx_read. */
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    kbl_tensor *t = kbl_data_idx_read(path);
    if (!t) fuzz_check_error(path);
    else (void)fuzz_touch(t);
    kbl_tensor_release(t);
    return 0;
}
