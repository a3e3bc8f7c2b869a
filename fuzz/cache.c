/* cache.c — libFuzzer harness: the input is a data cache file (made for the
 * key "fuzz") read by kbl_data_cache_read. */
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    kbl_tensor *out[16] = {0};
    int n = kbl_data_cache_read(path, "fuzz", 16, out);
    if (n == 0) fuzz_check_error(path);
    for (int i = 0; i < n; i++) {
        (void)fuzz_touch(out[i]);
        kbl_tensor_release(out[i]);
    }
    return 0;
}
