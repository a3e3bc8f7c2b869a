/* data_batch.c — batch assembly for data pipelines: gathering rows into one
 * contiguous tensor (converting bytes to floats on the way), running a batch
 * job (gather plus augmentation ops), and the prefetcher: background threads
 * that run jobs while the training step runs, handing results back in the
 * order they were submitted. */
#include "internal.h"

#include <pthread.h>

/* ---- gather ------------------------------------------------------------------------ */

/* The conversion of gathered values: out = v * mul[c] + add[c], c the channel
 * (dim 1 of the batch) when nchan > 1. A leading normalize folds in here. */
typedef struct {
    int64_t nchan;
    float mul[16], add[16];
} affine;

/* True when each row (dims 1..) of t is one contiguous block. */
static bool rows_contiguous(const kbl_tensor *t) {
    int64_t st = 1;
    for (int d = t->ndim - 1; d >= 1; d--) {
        if (t->shape[d] != 1 && t->strides[d] != st) return false;
        st *= t->shape[d];
    }
    return true;
}

static int check_ids(const char *op, const kbl_tensor *src, int64_t n, const int64_t *ids) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= src->shape[0])
            return kbl_fail("%s: row %lld is out of range for %lld rows (%s)", op, (long long)ids[i],
                            (long long)src->shape[0], KBL_DESC(src));
    return 0;
}

static int64_t row_numel(const kbl_tensor *t) { return kbl_shape_numel(t->ndim - 1, t->shape + 1); }

static const char *row_ptr(const kbl_tensor *s, int64_t id) {
    size_t es = kbl_dtype_size(s->dtype);
    return (const char *)s->storage->data + (s->offset + id * s->strides[0]) * (int64_t)es;
}

/* Asks for the next row while this one is converted: rows of a shuffled batch are
 * scattered over the whole split, so each would otherwise wait on memory. */
static void prefetch_row(const char *row, int64_t nbytes) {
    for (int64_t k = 0; k < nbytes; k += 64) __builtin_prefetch(row + k);
}

#define CONVERT_ROW(TS)                                                                   \
    do {                                                                                  \
        const TS *restrict r = (const TS *)row;                                           \
        for (int64_t c = 0; c < af->nchan; c++) {                                         \
            float m = af->mul[c], a = af->add[c];                                         \
            for (int64_t k = c * inner; k < (c + 1) * inner; k++) f[k] = (float)r[k] * m + a; \
        }                                                                                 \
    } while (0)

/* out[i] = src[ids[i]], converted through af when given (float32 out only). */
static void gather_rows(const kbl_tensor *src, kbl_tensor *out, int64_t n, const int64_t *ids, const affine *af) {
    int64_t per = row_numel(src), inner = af ? per / af->nchan : per;
    size_t ies = kbl_dtype_size(src->dtype), oes = kbl_dtype_size(out->dtype);
    char *o = kbl_base(out);
    for (int64_t i = 0; i < n; i++) {
        const char *row = row_ptr(src, ids[i]);
        char *orow = o + i * per * (int64_t)oes;
        if (i + 1 < n) prefetch_row(row_ptr(src, ids[i + 1]), per * (int64_t)ies);
        float *f = (float *)orow;
        if (!af && src->dtype == out->dtype) memcpy(orow, row, (size_t)per * ies);
        else if (af && src->dtype == KBL_UINT8) CONVERT_ROW(uint8_t);
        else if (af && src->dtype == KBL_FLOAT32) CONVERT_ROW(float);
        else
            for (int64_t k = 0; k < per; k++) {
                double v = kbl_load_double(row, src->dtype, k);
                if (af) v = v * af->mul[k / inner] + af->add[k / inner];
                kbl_store_double(orow, out->dtype, k, v);
            }
    }
}

/* src with rows as contiguous blocks (a copy when they are not). */
static kbl_tensor *row_source(const char *op, kbl_tensor *src) {
    if (kbl_check_tensor(op, src, "source")) return NULL;
    if (src->ndim < 1) {
        kbl_fail("%s: the source must have rows along dim 1, got %s", op, KBL_DESC(src));
        return NULL;
    }
    return rows_contiguous(src) ? kbl_tensor_retain(src) : kbl_contiguous(src);
}

static kbl_tensor *gather(const char *op, kbl_tensor *src, int64_t n, const int64_t *ids, int dtype, const affine *af) {
    if (dtype < 0 || dtype > KBL_UINT8 || (af && dtype != KBL_FLOAT32 && dtype != KBL_FLOAT64)) {
        kbl_fail("%s: cannot gather into dtype %s", op, kbl_dtype_name(dtype));
        return NULL;
    }
    if (n < 0 || (n > 0 && !ids)) {
        kbl_fail("%s: bad row list (%lld rows)", op, (long long)n);
        return NULL;
    }
    kbl_tensor *s = row_source(op, src);
    if (!s) return NULL;
    int64_t shape[KBL_MAX_DIMS];
    memcpy(shape, src->shape, sizeof shape);
    shape[0] = n;
    kbl_tensor *out = check_ids(op, s, n, ids) ? NULL : kbl_empty(src->ndim, shape, dtype);
    if (out) gather_rows(s, out, n, ids, af && dtype == KBL_FLOAT32 ? af : NULL);
    if (out && af && dtype != KBL_FLOAT32) /* rare: convert through double */
        for (int64_t i = 0, per = row_numel(src); i < n * per; i++) {
            double v = kbl_load_double(kbl_base(out), dtype, i);
            int64_t c = (i % per) / (per / af->nchan);
            kbl_store_double(kbl_base(out), dtype, i, v * af->mul[c] + af->add[c]);
        }
    kbl_tensor_release(s);
    return out;
}

kbl_tensor *kbl_data_gather(kbl_tensor *src, int64_t n, const int64_t *ids, int dtype, double scale) {
    affine af = {1, {(float)scale}, {0}};
    bool convert = scale != 1.0 || (src && src->dtype != dtype && (dtype == KBL_FLOAT32 || dtype == KBL_FLOAT64));
    return gather("gather", src, n, ids, dtype, convert ? &af : NULL);
}

/* ---- one pass: gather, convert, crop or translate, flip ------------------------------
 * The same draws and arithmetic as random_crop/random_translate and random_flip
 * in data_augment.c (a spec checks the two paths give equal batches), done while
 * converting each pixel once instead of in three passes over the batch. */

/* Converts one element (planes x n values of type TS) into dst through af. */
#define CONVERT_IMAGE(TS)                                                                 \
    do {                                                                                  \
        const TS *restrict sp = (const TS *)src_row;                                      \
        for (int64_t p = 0; p < planes; p++) {                                            \
            float m = af->mul[p / ppc], a = af->add[p / ppc];                             \
            const TS *restrict in = sp + p * h * w;                                       \
            float *restrict o = img + p * h * w;                                          \
            for (int64_t k = 0; k < h * w; k++) o[k] = (float)in[k] * m + a;              \
        }                                                                                 \
    } while (0)

static kbl_tensor *gather_fused(kbl_tensor *src, const kbl_data_job *job, const affine *af,
                                const kbl_data_op *crop, const kbl_data_op *flip) {
    kbl_tensor *s = row_source("batch", src);
    if (!s) return NULL;
    if (check_ids("batch", s, job->n, job->ids)) {
        kbl_tensor_release(s);
        return NULL;
    }
    int nd = s->ndim;
    int64_t h = s->shape[nd - 2], w = s->shape[nd - 1], per = row_numel(s), planes = per / (h * w);
    int64_t ppc = planes / af->nchan, py = 0, px = 0, oh = h, ow = w;
    float fill = 0;
    if (crop) {
        py = crop->pad[0], px = crop->pad[1], fill = (float)crop->fill;
        if (crop->kind == KBL_AUG_CROP) oh = crop->size[0], ow = crop->size[1];
    }
    int64_t shape[KBL_MAX_DIMS];
    memcpy(shape, s->shape, sizeof shape);
    shape[0] = job->n, shape[nd - 2] = oh, shape[nd - 1] = ow;
    kbl_tensor *out = kbl_empty(nd, shape, KBL_FLOAT32);
    float *img = out ? calloc((size_t)(per > 0 ? per : 1), sizeof(float)) : NULL; /* one element, converted */
    if (!img) {
        if (out) kbl_fail("batch: out of memory");
        kbl_release_n(2, s, out);
        return NULL;
    }
    float *o = kbl_base(out);
    int64_t row_bytes = per * (int64_t)kbl_dtype_size(s->dtype);
    for (int64_t b = 0; b < job->n; b++) {
        if (b + 1 < job->n) prefetch_row(row_ptr(s, job->ids[b + 1]), row_bytes);
        uint32_t r[4];
        int64_t oy = 0, ox = 0;
        bool fh = false, fv = false;
        if (crop) {
            kbl_data_draw(crop->seed, crop->salt, (uint64_t)job->epochs[b], job->ids[b], 0, r);
            oy = (int64_t)(r[0] % (uint64_t)(h + 2 * py - oh + 1));
            ox = (int64_t)(r[1] % (uint64_t)(w + 2 * px - ow + 1));
        }
        if (flip) {
            kbl_data_draw(flip->seed, flip->salt, (uint64_t)job->epochs[b], job->ids[b], 0, r);
            fh = (flip->flags & 1) && (double)r[0] * (1.0 / 4294967296.0) < flip->prob;
            fv = (flip->flags & 2) && (double)r[1] * (1.0 / 4294967296.0) < flip->prob;
        }
        const char *src_row = row_ptr(s, job->ids[b]);
        if (s->dtype == KBL_UINT8) CONVERT_IMAGE(uint8_t);
        else CONVERT_IMAGE(float);
        /* out(i, j) = img(oy + i - py, ox + j - px) before the flips; j0..j1 the columns inside img */
        int64_t j0 = px - ox, j1 = w + px - ox;
        if (j0 < 0) j0 = 0;
        if (j1 > ow) j1 = ow;
        for (int64_t p = 0; p < planes; p++) {
            const float *ip = img + p * h * w;
            for (int64_t i = 0; i < oh; i++) {
                float *restrict orow = o + ((b * planes + p) * oh + i) * ow;
                int64_t sy = oy + (fv ? oh - 1 - i : i) - py;
                if (sy < 0 || sy >= h || j1 <= j0) {
                    for (int64_t j = 0; j < ow; j++) orow[j] = fill;
                    continue;
                }
                const float *restrict srow = ip + sy * w + (ox - px);
                if (!fh) {
                    for (int64_t j = 0; j < j0; j++) orow[j] = fill;
                    for (int64_t j = j0; j < j1; j++) orow[j] = srow[j]; /* short rows: no memcpy call */
                    for (int64_t j = j1; j < ow; j++) orow[j] = fill;
                } else {
                    for (int64_t j = 0; j < ow - j1; j++) orow[j] = fill;
                    for (int64_t j = ow - j1; j < ow - j0; j++) orow[j] = srow[ow - 1 - j];
                    for (int64_t j = ow - j0; j < ow; j++) orow[j] = fill;
                }
            }
        }
    }
    free(img);
    kbl_tensor_release(s);
    return out;
}

/* ---- jobs -------------------------------------------------------------------------- */

static bool crop_fits(const kbl_data_op *op, const kbl_tensor *x) {
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    int64_t oh = op->kind == KBL_AUG_CROP ? op->size[0] : h, ow = op->kind == KBL_AUG_CROP ? op->size[1] : w;
    return op->pad[0] >= 0 && op->pad[1] >= 0 && oh >= 1 && ow >= 1 && oh <= h + 2 * op->pad[0] &&
           ow <= w + 2 * op->pad[1];
}

/* True when the job's rows are all of x (and y), in order, both contiguous:
 * a batch a streaming source assembled already. */
static bool is_whole_batch(const kbl_data_job *job) {
    const kbl_tensor *x = job->x, *y = job->y;
    if (x->ndim < 1 || x->shape[0] != job->n || !kbl_is_contiguous(x) ||
        (y && (y->ndim < 1 || y->shape[0] != job->n || !kbl_is_contiguous(y))))
        return false;
    for (int64_t i = 0; i < job->n; i++)
        if (job->ids[i] != i) return false;
    return true;
}

int kbl_data_job_run(const kbl_data_job *job, kbl_tensor **x_out, kbl_tensor **y_out) {
    *x_out = NULL;
    if (y_out) *y_out = NULL;
    if (job && job->images) return kbl_data_images_job_run(job, x_out, y_out); /* data_image.c */
    if (!job || !job->x) return kbl_fail("batch: job without a source");
    if (kbl_check_tensor("batch", job->x, "x")) return -1;
    const kbl_tensor *sx = job->x;
    int first = 0;
    affine af = {1, {0}, {0}};
    for (int c = 0; c < 16; c++) af.mul[c] = (float)job->x_scale;
    bool convert = job->x_scale != 1.0 || sx->dtype != job->x_dtype;
    if (job->x_is_batch && !convert && job->nops == 0 && is_whole_batch(job)) {
        *x_out = kbl_tensor_retain(job->x);
        if (y_out) *y_out = job->y ? kbl_tensor_retain(job->y) : NULL;
        return 0;
    }
    bool floats = job->x_dtype == KBL_FLOAT32 && (sx->dtype == KBL_UINT8 || sx->dtype == KBL_FLOAT32);
    /* a leading normalize folds into the conversion: (v*scale - mean) / std */
    if (job->nops > 0 && job->ops[0].kind == KBL_AUG_NORMALIZE && floats) {
        const kbl_data_op *op = &job->ops[0];
        int64_t nchan = op->nchan < 1 ? 1 : op->nchan;
        bool ok = nchan <= 16 && (nchan == 1 || (sx->ndim >= 2 && sx->shape[1] == nchan));
        for (int64_t c = 0; ok && c < nchan; c++) ok = op->std[c] != 0;
        if (ok) { /* otherwise the op itself reports the problem */
            af.nchan = nchan;
            for (int64_t c = 0; c < nchan; c++) {
                af.mul[c] = (float)(job->x_scale / op->std[c]);
                af.add[c] = (float)(-op->mean[c] / op->std[c]);
            }
            first = 1;
            convert = true;
        }
    }
    /* then crop or translate, and flip, fold into the same pass */
    const kbl_data_op *crop = NULL, *flip = NULL;
    int next = first;
    if (floats && sx->ndim >= 3 && job->ids && job->epochs && job->n > 0) {
        if (next < job->nops && (job->ops[next].kind == KBL_AUG_CROP || job->ops[next].kind == KBL_AUG_TRANSLATE) &&
            crop_fits(&job->ops[next], sx))
            crop = &job->ops[next++];
        if (next < job->nops && job->ops[next].kind == KBL_AUG_FLIP) flip = &job->ops[next++];
    }
    kbl_tensor *x;
    if (crop || flip) {
        x = gather_fused(job->x, job, &af, crop, flip);
        first = next;
    } else {
        x = gather("batch", job->x, job->n, job->ids, job->x_dtype, convert ? &af : NULL);
    }
    if (!x) return -1;
    kbl_tensor *y = NULL;
    if (job->y) {
        if (job->y->ndim < 1 || job->y->shape[0] != job->x->shape[0]) {
            char a[96], b[96];
            kbl_tensor_release(x);
            return kbl_fail("batch: x %s and y %s differ in their number of rows", kbl_describe(job->x, a, 96),
                            kbl_describe(job->y, b, 96));
        }
        y = gather("batch", job->y, job->n, job->ids, job->y->dtype, NULL);
        if (!y) {
            kbl_tensor_release(x);
            return -1;
        }
    }
    for (int i = first; i < job->nops; i++) {
        kbl_tensor *xn, *yn;
        if (kbl_data_augment(&job->ops[i], x, y, job->ids, job->epochs, 1, &xn, &yn)) {
            kbl_release_n(2, x, y);
            return -1;
        }
        kbl_release_n(2, x, y);
        x = xn;
        y = yn;
    }
    *x_out = x;
    if (y_out) *y_out = y;
    else kbl_tensor_release(y);
    return 0;
}

/* ---- the prefetcher ---------------------------------------------------------------- */

enum { SLOT_EMPTY, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE };

typedef struct {
    int state;
    kbl_data_job job;      /* with the arrays below, owned by the slot */
    int64_t *ids, *epochs;
    kbl_data_op *ops;
    kbl_tensor *x, *y;     /* results */
    int rc;
    char err[1024];
} slot;

struct kbl_data_prefetcher {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    slot *slots;
    int depth, nthreads, started, stop;
    int64_t head, tail;    /* next to hand back, next to fill */
    pthread_t *threads;
};

static void slot_clear(slot *s) {
    kbl_release_n(4, s->job.x, s->job.y, s->x, s->y);
    kbl_data_images_free(s->job.images);
    free(s->ids);
    free(s->epochs);
    free(s->ops);
    memset(s, 0, sizeof *s);
}

static void *worker(void *arg) {
    kbl_data_prefetcher *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        slot *s = NULL;
        for (int64_t k = p->head; k < p->tail && !s; k++)
            if (p->slots[k % p->depth].state == SLOT_QUEUED) s = &p->slots[k % p->depth];
        if (p->stop) break;
        if (!s) {
            pthread_cond_wait(&p->work, &p->mu);
            continue;
        }
        s->state = SLOT_RUNNING;
        pthread_mutex_unlock(&p->mu);
        kbl_tensor *x = NULL, *y = NULL;
        double t0 = kbl_profiling() ? kbl_profile_clock() : 0;
        int rc = kbl_data_job_run(&s->job, &x, &y);
        if (t0 != 0) kbl_profile_add("batch (prefetch thread)", KBL_PROFILE_DATA, t0, kbl_profile_clock());
        pthread_mutex_lock(&p->mu);
        s->x = x;
        s->y = y;
        s->rc = rc;
        if (rc) snprintf(s->err, sizeof s->err, "%s", kbl_last_error());
        s->state = SLOT_DONE;
        /* Woken after the unlock: a thread woken while the waker holds the
         * lock blocks on it at once, and each wake-up becomes three switches. */
        pthread_mutex_unlock(&p->mu);
        pthread_cond_broadcast(&p->done);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

kbl_data_prefetcher *kbl_data_prefetcher_new(int depth, int threads) {
    if (depth < 1 || threads < 1) {
        kbl_fail("prefetch: depth and threads must be at least 1, got %d and %d", depth, threads);
        return NULL;
    }
    kbl_data_prefetcher *p = calloc(1, sizeof *p);
    if (p) p->slots = calloc((size_t)depth, sizeof *p->slots);
    if (p) p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (!p || !p->slots || !p->threads) {
        if (p) free(p->slots), free(p->threads);
        free(p);
        kbl_fail("prefetch: out of memory");
        return NULL;
    }
    p->depth = depth;
    p->nthreads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (; p->started < threads; p->started++) {
        if (pthread_create(&p->threads[p->started], NULL, worker, p)) break;
        pthread_setname_np(p->threads[p->started], "kbl-prefetch"); /* for top -H and perf */
    }
    if (p->started == 0) {
        kbl_data_prefetcher_free(p);
        kbl_fail("prefetch: cannot start a thread");
        return NULL;
    }
    return p;
}

int kbl_data_prefetcher_submit(kbl_data_prefetcher *p, const kbl_data_job *job) {
    if (!p || !job || (!job->x && !job->images)) return kbl_fail("prefetch: submit needs a prefetcher and a job");
    if (job->n < 0 || (job->n > 0 && !job->ids) || job->nops < 0 || (job->nops > 0 && !job->ops))
        return kbl_fail("prefetch: malformed job (%lld rows, %d ops)", (long long)job->n, job->nops);
    size_t nb = (size_t)(job->n > 0 ? job->n : 1) * sizeof(int64_t);
    int64_t *ids = malloc(nb), *epochs = malloc(nb);
    kbl_data_op *ops = malloc((size_t)(job->nops > 0 ? job->nops : 1) * sizeof *ops);
    if (!ids || !epochs || !ops) {
        free(ids), free(epochs), free(ops);
        return kbl_fail("prefetch: out of memory");
    }
    if (job->n > 0) memcpy(ids, job->ids, (size_t)job->n * sizeof *ids);
    if (job->n > 0 && job->epochs) memcpy(epochs, job->epochs, (size_t)job->n * sizeof *epochs);
    if (job->nops > 0) memcpy(ops, job->ops, (size_t)job->nops * sizeof *ops);
    pthread_mutex_lock(&p->mu);
    slot *s = &p->slots[p->tail % p->depth];
    if (p->tail - p->head >= p->depth || s->state != SLOT_EMPTY) {
        pthread_mutex_unlock(&p->mu);
        free(ids), free(epochs), free(ops);
        return kbl_fail("prefetch: all %d slots are in use; take a result first", p->depth);
    }
    s->job = *job;
    s->job.x = kbl_tensor_retain(job->x);
    s->job.y = kbl_tensor_retain(job->y);
    s->job.images = kbl_data_images_retain(job->images);
    s->job.ids = s->ids = ids;
    s->job.epochs = job->epochs ? (s->epochs = epochs) : (free(epochs), NULL);
    s->job.ops = s->ops = ops;
    s->state = SLOT_QUEUED;
    p->tail++;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_signal(&p->work); /* after the unlock, as in worker */
    return 0;
}

int kbl_data_prefetcher_next(kbl_data_prefetcher *p, kbl_tensor **x_out, kbl_tensor **y_out) {
    *x_out = NULL;
    if (y_out) *y_out = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->head == p->tail) {
        pthread_mutex_unlock(&p->mu);
        return kbl_fail("prefetch: no batch was submitted");
    }
    slot *s = &p->slots[p->head % p->depth];
    while (s->state != SLOT_DONE) pthread_cond_wait(&p->done, &p->mu);
    int rc = s->rc;
    if (rc) kbl_fail("%s", s->err);
    *x_out = s->x;
    if (y_out) *y_out = s->y;
    else kbl_tensor_release(s->y);
    s->x = s->y = NULL;
    slot used = *s; /* cleared outside the lock, which the worker waits on */
    memset(s, 0, sizeof *s);
    p->head++;
    pthread_mutex_unlock(&p->mu);
    slot_clear(&used);
    return rc;
}

int kbl_data_prefetcher_pending(kbl_data_prefetcher *p) {
    pthread_mutex_lock(&p->mu);
    int n = (int)(p->tail - p->head);
    pthread_mutex_unlock(&p->mu);
    return n;
}

void kbl_data_prefetcher_free(kbl_data_prefetcher *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    for (int i = 0; i < p->depth; i++) slot_clear(&p->slots[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p->slots);
    free(p->threads);
    free(p);
}
