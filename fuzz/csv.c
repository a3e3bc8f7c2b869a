/* csv.c — libFuzzer harness: the first byte picks the delimiter and whether
 * there is a header row; the rest is the CSV text read by kbl_data_csv_read. */
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const char delims[] = {',', ';', '\t', ' '};
    char delim = delims[data[0] & 3];
    int header = (data[0] >> 2) & 1;
    const char *path = fuzz_file(data + 1, size - 1);
    kbl_tensor *t = kbl_data_csv_read(path, delim, header);
    if (!t) fuzz_check_error(path);
    else (void)fuzz_touch(t);
    kbl_tensor_release(t);
    return 0;
}
