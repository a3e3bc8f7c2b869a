/* dnnl_pool.c — float32 average pooling, forward and backward, through oneDNN's
 * pooling primitives on kbl's plain NCHW planes (made once per geometry and
 * thread count, kept in a small map); max pooling and float64 stay on kbl's
 * loops (core/cpu/pool.c).
 *
 * Measured (1 thread, CPU time, Intel Xeon AVX-512 KVM guest, 2 cores shared
 * with other jobs, oneDNN 2.6.3 jit:avx512_core, 2x2 windows at stride 2, ms,
 * kbl's loops / oneDNN on nchw / oneDNN on blocked nChw16c without the reorders):
 *   avg fwd 128x32x28x28   6.22 / 2.73 / 1.13     avg bwd  4.88 / 3.32 / 2.82
 *   avg fwd 128x64x14x14   2.89 / 1.25 / 0.92     avg bwd  2.62 / 2.32 / 1.44
 *   max fwd 128x32x28x28   3.44 / 3.76 / 3.55     max bwd  2.41 / 4.54 / 3.70
 *   max fwd 128x64x14x14   3.26 / 1.55 / 1.41     max bwd  0.98 / 2.80 / 1.97
 * Average pooling is taken (on nchw: kbl's tensors are plain, and a reorder
 * each way would cost more than the blocked layout saves). Max pooling is not:
 * forward and backward together kbl's loops win (5.8 against 8.3 ms on the
 * first shape), its workspace holds window offsets where kbl's max_pool2d
 * returns flat int64 indices (a conversion pass each call), and it does not
 * propagate NaN as PyTorch (and kbl) do. oneDNN's results are deterministic:
 * one fixed summation order per window whatever the thread count. */
#include "dnnl.h"
#include "dnnl_cache.h"

/* key: bwd, count_include_pad, threads, planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw */
enum { K_BWD, K_CIP, K_THREADS, K_PLANES, K_H, K_W, K_OH, K_OW, K_KH, K_KW, K_SH, K_SW, K_PH, K_PW, K_N };

static int make(kbl_dnnl_prim *p, const int64_t *k) {
    const char *what = "avg_pool2d";
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    dnnl_memory_desc_t xm, ym;
    /* the planes as channels of one image: nchw is then kbl's layout */
    dnnl_dims_t xd = {1, k[K_PLANES], k[K_H], k[K_W]}, yd = {1, k[K_PLANES], k[K_OH], k[K_OW]};
    dnnl_dims_t kern = {k[K_KH], k[K_KW]}, str = {k[K_SH], k[K_SW]}, dil = {0, 0}, pad = {k[K_PH], k[K_PW]};
    dnnl_alg_kind_t alg = k[K_CIP] ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_v2_desc_t fd, bd;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&xm, 4, xd, dnnl_f32, dnnl_nchw);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&ym, 4, yd, dnnl_f32, dnnl_nchw);
    /* oneDNN's output size rule is kbl's (floor), so the padding stays symmetric */
    if (st == dnnl_success)
        st = dnnl_pooling_v2_forward_desc_init(&fd, dnnl_forward_training, alg, &xm, &ym, str, kern, dil, pad, pad);
    if (st == dnnl_success) st = kbl_dnnl_pd_create(&fpd, &fd, NULL);
    if (st == dnnl_success && k[K_BWD]) {
        st = dnnl_pooling_v2_backward_desc_init(&bd, alg, &xm, &ym, str, kern, dil, pad, pad);
        if (st == dnnl_success) st = kbl_dnnl_pd_create(&bpd, &bd, fpd);
    }
    if (st != dnnl_success) {
        if (fpd) dnnl_primitive_desc_destroy(fpd);
        return kbl_fail("avg_pool2d: oneDNN pooling %s primitive desc failed (%s) for %lld planes of %lldx%lld, "
                        "kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld", k[K_BWD] ? "backward" : "forward",
                        kbl_dnnl_status(st), (long long)k[K_PLANES], (long long)k[K_H], (long long)k[K_W],
                        (long long)k[K_KH], (long long)k[K_KW], (long long)k[K_SH], (long long)k[K_SW],
                        (long long)k[K_PH], (long long)k[K_PW]);
    }
    if (!k[K_BWD]) return kbl_dnnl_prim_init(p, fpd, DNNL_ARG_SRC, DNNL_ARG_DST, what);
    dnnl_primitive_desc_destroy(fpd);
    return kbl_dnnl_prim_init(p, bpd, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC, what);
}

static kbl_dnnl_cache cache;

int kbl_dnnl_avg_pool(const kbl_pool_desc *d) {
    int64_t key[K_N] = {d->backward, d->count_include_pad, kbl_threads(), d->planes, d->h, d->w, d->oh, d->ow,
                        d->kh, d->kw, d->sh, d->sw, d->ph, d->pw};
    kbl_dnnl_prim *p = kbl_dnnl_cache_get(&cache, key, K_N, make);
    if (!p) return -1;
    return d->backward ? kbl_dnnl_prim_run(p, DNNL_ARG_DIFF_DST, d->in, DNNL_ARG_DIFF_SRC, d->out, "avg_pool2d")
                       : kbl_dnnl_prim_run(p, DNNL_ARG_SRC, d->in, DNNL_ARG_DST, d->out, "avg_pool2d");
}
