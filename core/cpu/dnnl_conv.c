/* dnnl_conv.c — kbl_cpu_conv: 2-D convolution, its backward-data and its
 * backward-weights on the CPU. Float32 runs oneDNN primitives, made once per
 * geometry and thread count and kept in a small hash map; float64 (oneDNN has
 * none) runs plain loops, for the gradient checks' small shapes. */
#include "../internal.h"
#include "dnnl.h"
#include "dnnl_common.h"

/* ---- float64: direct loops, one output element summed in one fixed order ---- */

typedef struct geo {
    int64_t n, c, h, w, o, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, cg, og;
} geo;

static geo geo_of(const kbl_conv_desc *d) {
    return (geo){d->n, d->c, d->h, d->w, d->o, d->kh, d->kw, d->oh, d->ow, d->stride[0], d->stride[1],
                 d->pad[0], d->pad[1], d->dil[0], d->dil[1], d->c / d->groups, d->o / d->groups};
}

/* y[n, o] = bias[o] + the sum over the group's channels c and taps (i, j) of x * w */
static void forward64(const geo *gg, const double *x, const double *w, const double *bias, double *y) {
    geo G = *gg;
    int nt = G.n * G.o * G.oh * G.ow * G.cg * G.kh * G.kw >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
#pragma omp parallel for collapse(2) num_threads(nt) schedule(static) firstprivate(G)
    for (int64_t b = 0; b < G.n; b++)
        for (int64_t o = 0; o < G.o; o++) {
            double *yp = y + (b * G.o + o) * G.oh * G.ow;
            const double *xb = x + (b * G.c + (o / G.og) * G.cg) * G.h * G.w;
            for (int64_t p = 0; p < G.oh * G.ow; p++) yp[p] = bias ? bias[o] : 0;
            for (int64_t c = 0; c < G.cg; c++)
                for (int64_t i = 0; i < G.kh; i++)
                    for (int64_t j = 0; j < G.kw; j++) {
                        double wv = w[((o * G.cg + c) * G.kh + i) * G.kw + j];
                        for (int64_t oy = 0; oy < G.oh; oy++) {
                            int64_t iy = oy * G.sh - G.ph + i * G.dh;
                            if (iy < 0 || iy >= G.h) continue;
                            for (int64_t ox = 0; ox < G.ow; ox++) {
                                int64_t ix = ox * G.sw - G.pw + j * G.dw;
                                if (ix >= 0 && ix < G.w) yp[oy * G.ow + ox] += xb[(c * G.h + iy) * G.w + ix] * wv;
                            }
                        }
                    }
        }
}

/* dx[n, c] = the sum of dy * w over every (o, i, j) that read it */
static void backward_data64(const geo *gg, double *dx, const double *w, const double *dy) {
    geo G = *gg;
    int nt = G.n * G.o * G.oh * G.ow * G.cg * G.kh * G.kw >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
#pragma omp parallel for collapse(2) num_threads(nt) schedule(static) firstprivate(G)
    for (int64_t b = 0; b < G.n; b++)
        for (int64_t c = 0; c < G.c; c++) {
            double *xp = dx + (b * G.c + c) * G.h * G.w;
            int64_t gr = c / G.cg, cl = c % G.cg;
            for (int64_t p = 0; p < G.h * G.w; p++) xp[p] = 0;
            for (int64_t o = gr * G.og; o < (gr + 1) * G.og; o++)
                for (int64_t i = 0; i < G.kh; i++)
                    for (int64_t j = 0; j < G.kw; j++) {
                        double wv = w[((o * G.cg + cl) * G.kh + i) * G.kw + j];
                        const double *gp = dy + (b * G.o + o) * G.oh * G.ow;
                        for (int64_t oy = 0; oy < G.oh; oy++) {
                            int64_t iy = oy * G.sh - G.ph + i * G.dh;
                            if (iy < 0 || iy >= G.h) continue;
                            for (int64_t ox = 0; ox < G.ow; ox++) {
                                int64_t ix = ox * G.sw - G.pw + j * G.dw;
                                if (ix >= 0 && ix < G.w) xp[iy * G.w + ix] += gp[oy * G.ow + ox] * wv;
                            }
                        }
                    }
        }
}

/* dw[o, c, i, j] = the sum over images and output positions of dy * x; db[o]
 * the sum of dy[., o] (when db is not NULL) */
static void backward_weights64(const geo *gg, const double *x, double *dw, double *db, const double *dy) {
    geo G = *gg;
    int nt = G.n * G.o * G.oh * G.ow * G.cg * G.kh * G.kw >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
#pragma omp parallel for collapse(2) num_threads(nt) schedule(static) firstprivate(G)
    for (int64_t o = 0; o < G.o; o++)
        for (int64_t c = 0; c < G.cg; c++)
            for (int64_t i = 0; i < G.kh; i++)
                for (int64_t j = 0; j < G.kw; j++) {
                    double acc = 0;
                    for (int64_t b = 0; b < G.n; b++) {
                        const double *gp = dy + (b * G.o + o) * G.oh * G.ow;
                        const double *xp = x + (b * G.c + (o / G.og) * G.cg + c) * G.h * G.w;
                        for (int64_t oy = 0; oy < G.oh; oy++) {
                            int64_t iy = oy * G.sh - G.ph + i * G.dh;
                            if (iy < 0 || iy >= G.h) continue;
                            for (int64_t ox = 0; ox < G.ow; ox++) {
                                int64_t ix = ox * G.sw - G.pw + j * G.dw;
                                if (ix >= 0 && ix < G.w) acc += gp[oy * G.ow + ox] * xp[iy * G.w + ix];
                            }
                        }
                    }
                    dw[((o * G.cg + c) * G.kh + i) * G.kw + j] = acc;
                }
    if (db)
        for (int64_t o = 0; o < G.o; o++) {
            double acc = 0;
            for (int64_t b = 0; b < G.n; b++)
                for (int64_t p = 0; p < G.oh * G.ow; p++) acc += dy[(b * G.o + o) * G.oh * G.ow + p];
            db[o] = acc;
        }
}

/* ---- float32: cached oneDNN primitives ----------------------------------------- */

/* What a primitive depends on. Thread count included: oneDNN sizes a kernel's
 * work split when the primitive is made. All int64_t: no padding for memcmp. */
typedef struct conv_key {
    int64_t which, nthreads, bias;
    int64_t n, c, h, w, o, kh, kw, oh, ow, stride[2], pad[2], dil[2], groups;
} conv_key;

/* One of x, w, y as the caller holds it (plain NCHW / [g]OIHW) and as the
 * primitive wants it; when those differ, a reorder between them each call. */
typedef struct conv_arg {
    int id;                        /* DNNL_ARG_* */
    bool out;                      /* written by the primitive */
    dnnl_memory_t user, prim;      /* handles set per call */
    dnnl_primitive_t reorder;      /* user -> prim for inputs, prim -> user for outputs; NULL: none */
    int64_t prim_bytes;
} conv_arg;

typedef struct conv_entry {
    bool used;
    conv_key key;
    dnnl_primitive_t prim;
    conv_arg arg[3];               /* x, w, y */
    dnnl_memory_t bias;            /* [o], plain; NULL without one */
    dnnl_memory_t scratch;
    int64_t scratch_bytes;
} conv_entry;

/* A training run meets a few geometries per conv layer (forward, two
 * backwards, the last smaller batch, evaluation); 64 holds several models. */
#define CACHE_SLOTS 64
static conv_entry cache[CACHE_SLOTS];

#define DNNL_TRY(call, what)                                                                        \
    do {                                                                                            \
        dnnl_status_t st_ = (call);                                                                 \
        if (st_ != dnnl_success) {                                                                  \
            kbl_fail("conv2d: oneDNN %s failed (%s) for %s", what, kbl_dnnl_status(st_), geom);     \
            goto fail;                                                                              \
        }                                                                                           \
    } while (0)

static const char *which_name(int which) {
    return which == KBL_CONV_FORWARD         ? "forward"
           : which == KBL_CONV_BACKWARD_DATA ? "backward-data"
                                             : "backward-weights";
}

static void entry_clear(conv_entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    for (int i = 0; i < 3; i++) {
        conv_arg *a = &e->arg[i];
        if (a->user) dnnl_memory_destroy(a->user);
        if (a->prim) dnnl_memory_destroy(a->prim);
        if (a->reorder) dnnl_primitive_destroy(a->reorder);
    }
    if (e->bias) dnnl_memory_destroy(e->bias);
    if (e->scratch) dnnl_memory_destroy(e->scratch);
    memset(e, 0, sizeof *e);
}

/* The memory objects of one argument, and its reorder when the layouts differ. */
static int arg_init(conv_arg *a, int id, bool out, const dnnl_memory_desc_t *user_md, const_dnnl_primitive_desc_t pd,
                    const char *geom) {
    dnnl_engine_t eng = kbl_dnnl_engine();
    dnnl_primitive_desc_t rpd = NULL;
    a->id = id;
    a->out = out;
    const dnnl_memory_desc_t *pmd = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, id);
    DNNL_TRY(dnnl_memory_create(&a->user, user_md, eng, DNNL_MEMORY_NONE), "dnnl_memory_create");
    if (!pmd || dnnl_memory_desc_equal(pmd, user_md)) return 0;
    a->prim_bytes = (int64_t)dnnl_memory_desc_get_size(pmd);
    DNNL_TRY(dnnl_memory_create(&a->prim, pmd, eng, DNNL_MEMORY_NONE), "dnnl_memory_create");
    DNNL_TRY(out ? dnnl_reorder_primitive_desc_create(&rpd, pmd, eng, user_md, eng, NULL)
                 : dnnl_reorder_primitive_desc_create(&rpd, user_md, eng, pmd, eng, NULL),
             "reorder primitive desc");
    DNNL_TRY(dnnl_primitive_create(&a->reorder, rpd), "reorder primitive");
    dnnl_primitive_desc_destroy(rpd);
    return 0;
fail:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return -1;
}

static int entry_make(conv_entry *e, const conv_key *k, const char *geom) {
    dnnl_engine_t eng = kbl_dnnl_engine();
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t fwd = NULL, pd = NULL;
    dnnl_memory_desc_t xu, wu, yu, xa, wa, ya, bu;
    bool grouped = k->groups > 1;
    dnnl_dims_t xd = {k->n, k->c, k->h, k->w}, yd = {k->n, k->o, k->oh, k->ow};
    dnnl_dims_t wd = {k->o, k->c, k->kh, k->kw}, gwd = {k->groups, k->o / k->groups, k->c / k->groups, k->kh, k->kw};
    dnnl_dims_t strides = {k->stride[0], k->stride[1]}, dil = {k->dil[0] - 1, k->dil[1] - 1};
    dnnl_dims_t pad = {k->pad[0], k->pad[1]};
    int wn = grouped ? 5 : 4;
    dnnl_format_tag_t wtag = grouped ? dnnl_goihw : dnnl_oihw;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&xu, 4, xd, dnnl_f32, dnnl_nchw), "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&yu, 4, yd, dnnl_f32, dnnl_nchw), "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&wu, wn, grouped ? gwd : wd, dnnl_f32, wtag), "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&bu, 1, (dnnl_dims_t){k->o}, dnnl_f32, dnnl_a), "memory desc");
    /* The primitive picks its layouts ('any'), and x, w, y are reordered from and
     * to kbl's plain NCHW / OIHW around it, every call. Measured (1 thread, CPU
     * time, AMD EPYC Zen 4, oneDNN 2.6.3, batch 128), reorders included:
     *   32->64 3x3 on 14x14: fwd / bwd-data / bwd-weights 9.5 / 9.8 / 10.2 ms
     *     with 'any' (jit:avx512_core on blocked nChw16c), 12.8 / 15.1 / 13.3 ms
     *     with x, y held plain (gemm-based), 13.5 / 14.9 / 13.5 ms all plain;
     *   1->32 3x3 on 28x28: fwd / bwd-weights 1.94 / 2.25 ms with 'any', 1.78 /
     *     3.18 ms with x, y plain.
     * The weight's reorder to its blocked layout costs 0.02 ms of a 9.5 ms
     * forward, so keeping weights blocked between calls (and tracking when they
     * change) would save 0.2%: not done. */
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&xa, 4, xd, dnnl_f32, dnnl_format_tag_any), "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&ya, 4, yd, dnnl_f32, dnnl_format_tag_any), "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&wa, wn, grouped ? gwd : wd, dnnl_f32, dnnl_format_tag_any), "memory desc");
    DNNL_TRY(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create");
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    DNNL_TRY(dnnl_primitive_attr_set_fpmath_mode(attr, dnnl_fpmath_mode_strict), "fpmath mode");
    dnnl_convolution_desc_t fd, bd;
    DNNL_TRY(dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &xa, &wa,
                                                        k->bias && k->which == KBL_CONV_FORWARD ? &bu : NULL, &ya,
                                                        strides, dil, pad, pad),
             "convolution forward desc");
    DNNL_TRY(dnnl_primitive_desc_create(&fwd, &fd, attr, eng, NULL), "convolution forward primitive desc");
    if (k->which == KBL_CONV_FORWARD) {
        pd = fwd;
        fwd = NULL;
    } else if (k->which == KBL_CONV_BACKWARD_DATA) {
        DNNL_TRY(dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &xa, &wa, &ya, strides,
                                                                  dil, pad, pad),
                 "convolution backward-data desc");
        DNNL_TRY(dnnl_primitive_desc_create(&pd, &bd, attr, eng, fwd), "convolution backward-data primitive desc");
    } else {
        DNNL_TRY(dnnl_dilated_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &xa, &wa,
                                                                     k->bias ? &bu : NULL, &ya, strides, dil, pad,
                                                                     pad),
                 "convolution backward-weights desc");
        DNNL_TRY(dnnl_primitive_desc_create(&pd, &bd, attr, eng, fwd), "convolution backward-weights primitive desc");
    }
    int ids[3][3] = {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
                     {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST},
                     {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST}};
    const dnnl_memory_desc_t *users[3] = {&xu, &wu, &yu};
    int written[3] = {2, 0, 1}; /* forward writes y, backward-data x, backward-weights w */
    for (int i = 0; i < 3; i++)
        if (arg_init(&e->arg[i], ids[k->which][i], i == written[k->which], users[i], pd, geom)) goto fail;
    if (k->bias) DNNL_TRY(dnnl_memory_create(&e->bias, &bu, eng, DNNL_MEMORY_NONE), "dnnl_memory_create");
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    e->scratch_bytes = smd ? (int64_t)dnnl_memory_desc_get_size(smd) : 0;
    if (e->scratch_bytes) DNNL_TRY(dnnl_memory_create(&e->scratch, smd, eng, DNNL_MEMORY_NONE), "dnnl_memory_create");
    DNNL_TRY(dnnl_primitive_create(&e->prim, pd), "convolution primitive");
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    e->key = *k;
    e->used = true;
    return 0;
fail:
    if (fwd) dnnl_primitive_desc_destroy(fwd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    entry_clear(e);
    return -1;
}

/* The cached entry for k, made on a miss (evicting whatever sat in its slot
 * when the probe finds no free one). */
static conv_entry *entry_get(const conv_key *k, const char *geom) {
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)k;
    /* every byte of the key is set: its fields are all int64_t (no padding) */
    for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 1099511628211ull; // NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult)
    size_t home = (size_t)(h % CACHE_SLOTS);
    for (size_t probe = 0; probe < 8; probe++) {
        conv_entry *e = &cache[(home + probe) % CACHE_SLOTS];
        if (e->used && memcmp(&e->key, k, sizeof *k) == 0) return e;
        if (!e->used) return entry_make(e, k, geom) ? NULL : e;
    }
    entry_clear(&cache[home]);
    return entry_make(&cache[home], k, geom) ? NULL : &cache[home];
}

static int conv32(int which, const kbl_conv_desc *d, void *x, void *w, void *y) {
    char geom[256];
    snprintf(geom, sizeof geom,
             "%s of x [%lld, %lld, %lld, %lld], w [%lld, %lld, %lld, %lld], y [%lld, %lld, %lld, %lld], stride (%lld, "
             "%lld), padding (%lld, %lld), dilation (%lld, %lld), groups %lld",
             which_name(which), (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w, (long long)d->o,
             (long long)(d->c / d->groups), (long long)d->kh, (long long)d->kw, (long long)d->n, (long long)d->o,
             (long long)d->oh, (long long)d->ow, (long long)d->stride[0], (long long)d->stride[1],
             (long long)d->pad[0], (long long)d->pad[1], (long long)d->dil[0], (long long)d->dil[1],
             (long long)d->groups);
    if (kbl_dnnl_init()) return -1;
    bool has_bias = d->bias && which != KBL_CONV_BACKWARD_DATA;
    conv_key k = {which, kbl_threads(), has_bias, d->n, d->c, d->h, d->w, d->o, d->kh, d->kw, d->oh, d->ow,
                   {d->stride[0], d->stride[1]}, {d->pad[0], d->pad[1]}, {d->dil[0], d->dil[1]}, d->groups};
    conv_entry *e = entry_get(&k, geom);
    if (!e) return -1;
    dnnl_stream_t s = kbl_dnnl_stream();
    void *bufs[3] = {NULL, NULL, NULL}, *user[3] = {x, w, y}, *scratch = NULL;
    dnnl_exec_arg_t args[5];
    int rc = -1;
    for (int i = 0; i < 3; i++) {
        conv_arg *a = &e->arg[i];
        DNNL_TRY(dnnl_memory_set_data_handle(a->user, user[i]), "dnnl_memory_set_data_handle");
        args[i] = (dnnl_exec_arg_t){a->id, a->user};
        if (!a->reorder) continue;
        if (!(bufs[i] = kbl_alloc(a->prim_bytes))) goto fail;
        DNNL_TRY(dnnl_memory_set_data_handle(a->prim, bufs[i]), "dnnl_memory_set_data_handle");
        args[i].memory = a->prim;
        if (!a->out) {
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->prim}};
            DNNL_TRY(dnnl_primitive_execute(a->reorder, s, 2, r), "reorder");
        }
    }
    int nargs = 3;
    if (e->bias) {
        DNNL_TRY(dnnl_memory_set_data_handle(e->bias, d->bias), "dnnl_memory_set_data_handle");
        args[nargs++] = (dnnl_exec_arg_t){which == KBL_CONV_FORWARD ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS, e->bias};
    }
    if (e->scratch_bytes) {
        if (!(scratch = kbl_alloc(e->scratch_bytes))) goto fail;
        DNNL_TRY(dnnl_memory_set_data_handle(e->scratch, scratch), "dnnl_memory_set_data_handle");
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    }
    DNNL_TRY(dnnl_primitive_execute(e->prim, s, nargs, args), "execute");
    for (int i = 0; i < 3; i++) {
        conv_arg *a = &e->arg[i];
        if (!a->reorder || !a->out) continue;
        dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->prim}, {DNNL_ARG_TO, a->user}};
        DNNL_TRY(dnnl_primitive_execute(a->reorder, s, 2, r), "reorder");
    }
    DNNL_TRY(dnnl_stream_wait(s), "dnnl_stream_wait");
    rc = 0;
fail:
    for (int i = 0; i < 3; i++) kbl_free(bufs[i], e->arg[i].prim_bytes);
    kbl_free(scratch, e->scratch_bytes);
    return rc;
}

int kbl_cpu_conv(int which, const kbl_conv_desc *d, void *x, void *w, void *y) {
    if (d->dtype == KBL_FLOAT32) return conv32(which, d, x, w, y);
    geo g = geo_of(d);
    if (which == KBL_CONV_FORWARD) forward64(&g, x, w, d->bias, y);
    else if (which == KBL_CONV_BACKWARD_DATA) backward_data64(&g, x, w, y);
    else backward_weights64(&g, x, w, d->bias, y);
    return 0;
}
