/* runtime.c — version, the CPU kernel library's identity and the one thread
 * count that governs both our OpenMP loops and oneDNN's (both run on libgomp:
 * Debian's oneDNN is built with DNNL_CPU_RUNTIME=OMP). */
#include "internal.h"
#include "cpu/dnnl.h"

#include <omp.h>

#ifndef KBL_VERSION
#define KBL_VERSION "0.1.0"
#endif

static int num_threads = 0;

const char *kbl_version(void) { return KBL_VERSION; }

const char *kbl_blas_info(void) { return kbl_dnnl_info(); }

int kbl_threads(void) {
    if (num_threads <= 0) num_threads = omp_get_max_threads();
    return num_threads;
}

/* oneDNN sizes its parallel regions by omp_get_max_threads() when a primitive is
 * made and when it runs; dnnl_conv.c keys its primitive cache on the count. */
void kbl_set_num_threads(int n) {
    if (n < 1) n = 1;
    num_threads = n;
    omp_set_num_threads(n);
}

int kbl_get_num_threads(void) { return kbl_threads(); }
