/* dnnl_eltwise.c — float32 sigmoid, tanh and exp forward of a contiguous buffer
 * through oneDNN's eltwise primitive. A primitive is JIT-compiled for one
 * element count, so one is made per (op, thread count, chunk) for a fixed chunk
 * of KBL_ELTWISE_CHUNK elements (KBL_ELTWISE_SMALL for an input shorter than
 * that: 7 elements then cost 1.3 us, not the 9 us of a 16384 chunk) and run
 * over the full chunks; the tail is copied into a chunk-sized scratch buffer,
 * run there and copied back. Every element goes through the same vector code,
 * so its result depends neither on its position nor on the thread count
 * (spec/cpu_kernels_spec.lua checks both).
 * Threads: the primitive splits each chunk over OpenMP threads itself; the
 * memory objects of a cached primitive are shared, so chunks run in turn. 1M
 * float32, wall, busy machine: 0.32-0.41 ms at 2 threads, 0.39-0.44 at 1;
 * chunks of 4096 lost (0.68 ms at 2), 65536 made short inputs dear (30 us for
 * 7 elements). An input under KBL_PARALLEL_GRAIN runs on one thread, as kbl's
 * loops do: a second thread woken for 7 elements cost 6 ms on the busy machine.
 * forward_inference and forward_training give the same forward values (the
 * choice matters only to the *_use_dst_for_bwd algorithms' backward).
 * Figures against kbl's loops: core/cpu/unary.c's opening comment. */
#include "dnnl.h"
#include "dnnl_cache.h"

#include <omp.h>

#define KBL_ELTWISE_SMALL 1024 /* the chunk of an input shorter than KBL_ELTWISE_CHUNK */

enum { K_ALG, K_THREADS, K_CHUNK, K_N };

static int make(kbl_dnnl_prim *p, const int64_t *k) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t md;
    dnnl_eltwise_desc_t ed;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&md, 1, (dnnl_dims_t){k[K_CHUNK]}, dnnl_f32, dnnl_a);
    if (st == dnnl_success)
        st = dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, (dnnl_alg_kind_t)k[K_ALG], &md, 0.f, 0.f);
    if (st == dnnl_success) st = kbl_dnnl_pd_create(&pd, &ed, NULL);
    if (st != dnnl_success)
        return kbl_fail("eltwise: oneDNN eltwise primitive desc failed (%s)", kbl_dnnl_status(st));
    return kbl_dnnl_prim_init(p, pd, DNNL_ARG_SRC, DNNL_ARG_DST, "eltwise");
}

static kbl_dnnl_cache cache;

/* src[0..n) -> dst through the primitive for chunks of `chunk` elements */
static int run(int op, int nt, int64_t chunk, int64_t n, const float *src, float *dst) {
    int64_t alg = op == KBL_TANH ? dnnl_eltwise_tanh : op == KBL_EXP ? dnnl_eltwise_exp : dnnl_eltwise_logistic;
    int64_t key[K_N] = {alg, nt, chunk};
    kbl_dnnl_prim *p = kbl_dnnl_cache_get(&cache, key, K_N, make);
    if (!p) return -1;
    int64_t full = n - n % chunk, tail = n - full;
    for (int64_t i = 0; i < full; i += chunk)
        if (kbl_dnnl_prim_run(p, DNNL_ARG_SRC, src + i, DNNL_ARG_DST, dst + i, "eltwise")) return -1;
    if (!tail) return 0;
    int64_t bytes = chunk * (int64_t)sizeof(float);
    float *buf = kbl_alloc(bytes);
    if (!buf) return -1;
    memcpy(buf, src + full, (size_t)tail * sizeof(float));
    memset(buf + tail, 0, (size_t)(chunk - tail) * sizeof(float)); /* computed, then dropped */
    int rc = kbl_dnnl_prim_run(p, DNNL_ARG_SRC, buf, DNNL_ARG_DST, buf, "eltwise");
    if (!rc) memcpy(dst + full, buf, (size_t)tail * sizeof(float));
    kbl_free(buf, bytes);
    return rc;
}

int kbl_dnnl_eltwise(int op, int64_t n, const float *src, float *dst) {
    /* oneDNN sizes its parallel regions by omp_get_max_threads() */
    int nt = n >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
    int64_t chunk = n < KBL_ELTWISE_CHUNK ? KBL_ELTWISE_SMALL : KBL_ELTWISE_CHUNK;
    if (nt == kbl_threads()) return run(op, nt, chunk, n, src, dst);
    omp_set_num_threads(nt);
    int rc = run(op, nt, chunk, n, src, dst);
    omp_set_num_threads(kbl_threads());
    return rc;
}
