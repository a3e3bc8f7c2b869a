/* runtime.c — version, BLAS identity and the one thread count that governs both
 * our OpenMP loops and OpenBLAS. */
#include "internal.h"

#include <omp.h>
#include <stdio.h>

/* OpenBLAS extensions, declared here to avoid depending on its header layout. */
extern void openblas_set_num_threads(int n);
extern int openblas_get_num_threads(void);
extern char *openblas_get_config(void);
extern int openblas_get_parallel(void);

#ifndef KBL_VERSION
#define KBL_VERSION "0.1.0"
#endif

static int num_threads = 0;

const char *kbl_version(void) { return KBL_VERSION; }

const char *kbl_blas_info(void) {
    static char buf[256];
    static const char *par[] = {"sequential", "pthreads", "openmp"};
    int p = openblas_get_parallel();
    snprintf(buf, sizeof buf, "%s (threading: %s)", openblas_get_config(),
             p >= 0 && p <= 2 ? par[p] : "?");
    return buf;
}

int kbl_threads(void) {
    if (num_threads <= 0) num_threads = omp_get_max_threads();
    return num_threads;
}

void kbl_set_num_threads(int n) {
    if (n < 1) n = 1;
    num_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int kbl_get_num_threads(void) { return kbl_threads(); }
