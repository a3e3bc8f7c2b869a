/* buckets.c — gradient buckets for data-parallel training: parameters are
 * grouped, from the last (whose gradient backward makes first), into buckets
 * of at most bucket_bytes (a larger parameter alone). libkbl calls the
 * grad-ready hook when a parameter's gradient is final; the gradient,
 * multiplied by this rank's share of the global batch, is copied into its
 * bucket, and a bucket whose gradients are all there starts its MPI_Iallreduce while backward goes on, in bucket order
 * on every rank (MPI needs one order of collectives). finish starts the rest,
 * waits with the timeout and writes the sums back into the gradients. Open MPI
 * progresses a started all-reduce only inside MPI calls, so each hook call
 * also tests the buckets in flight. CUDA buckets go through NCCL when started. */
#include "dist_internal.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct bucket {
    int first, count;       /* positions in order[] */
    kbl_tensor *buf;        /* flat, the params' dtype and device */
    int pending;
} bucket;

struct kbl_dist_buckets {
    int n, nb, next, armed, overlap, early;
    double scale;
    int64_t bytes;           /* of all the buckets, for finish's stats */
    kbl_tensor **params, **views;   /* views[i]: param i's place in its bucket */
    int *order, *bucket_of;
    bool *ready;
    bucket *b;
    MPI_Request *reqs;       /* reqs[k]: bucket k's all-reduce in flight, MPI_REQUEST_NULL when none or on CUDA */
    int hcap;                /* pointer -> param index, open addressing */
    kbl_tensor **hkey;
    int *hval;
};

static size_t slot(const kbl_dist_buckets *b, const kbl_tensor *p) {
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (size_t)(b->hcap - 1);
}

static int lookup(const kbl_dist_buckets *b, const kbl_tensor *p) {
    for (size_t s = slot(b, p);; s = (s + 1) & (size_t)(b->hcap - 1)) {
        if (b->hkey[s] == p) return b->hval[s];
        if (!b->hkey[s]) return -1;
    }
}

void kbl_dist_buckets_free(kbl_dist_buckets *b) {
    if (!b) return;
    if (b->armed) kbl_set_grad_ready_hook(NULL, NULL);
    for (int i = 0; i < b->n; i++) {
        kbl_tensor_release(b->params ? b->params[i] : NULL);
        kbl_tensor_release(b->views ? b->views[i] : NULL);
    }
    for (int k = 0; k < b->nb; k++) kbl_tensor_release(b->b[k].buf);
    free(b->params), free(b->views), free(b->order), free(b->bucket_of), free(b->ready), free(b->b), free(b->reqs);
    free(b->hkey), free(b->hval);
    free(b);
}

kbl_dist_buckets *kbl_dist_buckets_new(int n, kbl_tensor **params, int64_t bucket_bytes) {
    if (n <= 0) {
        kbl_dist_fail("dist: buckets need at least one parameter");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!params[i] || !params[i]->storage || (params[i]->dtype != KBL_FLOAT32 && params[i]->dtype != KBL_FLOAT64)) {
            kbl_dist_fail("dist: buckets: parameter %d is not a float32/float64 tensor", i + 1);
            return NULL;
        }
    }
    kbl_dist_buckets *b = calloc(1, sizeof *b);
    if (!b) goto oom;
    b->n = n;
    b->hcap = 16;
    while (b->hcap < 2 * n) b->hcap *= 2;
    b->params = calloc((size_t)n, sizeof *b->params);
    b->views = calloc((size_t)n, sizeof *b->views);
    b->order = calloc((size_t)n, sizeof *b->order);
    b->bucket_of = calloc((size_t)n, sizeof *b->bucket_of);
    b->ready = calloc((size_t)n, sizeof *b->ready);
    b->b = calloc((size_t)n, sizeof *b->b);
    b->hkey = calloc((size_t)b->hcap, sizeof *b->hkey);
    b->hval = calloc((size_t)b->hcap, sizeof *b->hval);
    if (!b->params || !b->views || !b->order || !b->bucket_of || !b->ready || !b->b || !b->hkey || !b->hval) goto oom;
    for (int i = 0; i < n; i++) {
        b->params[i] = kbl_tensor_retain(params[i]);
        b->order[i] = n - 1 - i;
        size_t s = slot(b, params[i]);
        while (b->hkey[s] && b->hkey[s] != params[i]) s = (s + 1) & (size_t)(b->hcap - 1);
        if (b->hkey[s]) {
            kbl_dist_fail("dist: buckets: parameter %d is given twice", i + 1);
            kbl_dist_buckets_free(b);
            return NULL;
        }
        b->hkey[s] = params[i];
        b->hval[s] = i;
    }
    /* group in backward's order; a bucket holds one dtype on one device */
    int64_t bytes = 0, numel = 0;
    for (int k = 0; k < n; k++) {
        kbl_tensor *p = b->params[b->order[k]];
        bucket *cur = b->nb ? &b->b[b->nb - 1] : NULL;
        kbl_tensor *head = cur ? b->params[b->order[cur->first]] : NULL;
        int64_t pbytes = kbl_numel(p) * (int64_t)kbl_dtype_size(p->dtype);
        /* a new bucket when p would take this one past bucket_bytes (one too big stands alone) */
        if (!cur || (bytes > 0 && bytes + pbytes > bucket_bytes) || head->dtype != p->dtype ||
            head->device != p->device) {
            b->b[b->nb++] = (bucket){.first = k};
            cur = &b->b[b->nb - 1];
            bytes = 0;
        }
        cur->count++;
        b->bucket_of[b->order[k]] = b->nb - 1;
        bytes += pbytes;
    }
    b->reqs = malloc((size_t)b->nb * sizeof *b->reqs);
    if (!b->reqs) goto oom;
    for (int j = 0; j < b->nb; j++) {
        bucket *bk = &b->b[j];
        kbl_tensor *head = b->params[b->order[bk->first]];
        numel = 0;
        for (int k = bk->first; k < bk->first + bk->count; k++) numel += kbl_numel(b->params[b->order[k]]);
        b->reqs[j] = MPI_REQUEST_NULL;
        bk->buf = kbl_zeros_on(head->device, 1, &numel, head->dtype);
        if (!bk->buf) goto fail;
        b->bytes += numel * (int64_t)kbl_dtype_size(head->dtype);
        int64_t off = 0;
        for (int k = bk->first; k < bk->first + bk->count; k++) {
            kbl_tensor *p = b->params[b->order[k]];
            kbl_tensor *flat = kbl_narrow(bk->buf, 0, off, kbl_numel(p));
            b->views[b->order[k]] = flat ? kbl_view(flat, p->ndim, p->shape) : NULL;
            kbl_tensor_release(flat);
            if (!b->views[b->order[k]]) goto fail;
            off += kbl_numel(p);
        }
    }
    return b;
oom:
    kbl_dist_fail("dist: buckets: out of memory");
    kbl_dist_buckets_free(b);
    return NULL;
fail:
    kbl_dist_fail("dist: buckets: %s", kbl_last_error());
    kbl_dist_buckets_free(b);
    return NULL;
}

int kbl_dist_buckets_count(const kbl_dist_buckets *b) { return b ? b->nb : 0; }

/* view = scale * grad (zeros without a gradient). */
static int stage(kbl_dist_buckets *b, int i) {
    kbl_tensor *v = b->views[i], *g = b->params[i]->grad;
    b->ready[i] = true;
    b->b[b->bucket_of[i]].pending--;
    if (!g) return kbl_fill_(v, 0) ? kbl_dist_fail("dist: %s", kbl_last_error()) : 0;
    if (kbl_copy_(v, g)) return kbl_dist_fail("dist: %s", kbl_last_error());
    if (b->scale == 1) return 0;
    if (v->device == KBL_CPU) {
        int64_t m = kbl_numel(v);
        if (v->dtype == KBL_FLOAT32) {
            float *p = kbl_base(v), s = (float)b->scale;
            for (int64_t k = 0; k < m; k++) p[k] *= s;
        } else {
            double *p = kbl_base(v);
            for (int64_t k = 0; k < m; k++) p[k] *= b->scale;
        }
        return 0;
    }
    /* on the device: v += (scale - 1) v, exact for scale 1/2^k */
    return kbl_add_(v, v, b->scale - 1) ? kbl_dist_fail("dist: %s", kbl_last_error()) : 0;
}

static int launch(bucket *bk, MPI_Request *req) {
    if (bk->buf->device != KBL_CPU) return kbl_dist_nccl_run("gradient all-reduce", bk->buf, KBL_DIST_SUM, -1);
    int64_t m = kbl_numel(bk->buf);
    if (MPI_Iallreduce(MPI_IN_PLACE, kbl_base(bk->buf), (int)m, kbl_dist_mpi_type(bk->buf->dtype), MPI_SUM,
                       MPI_COMM_WORLD, req) != MPI_SUCCESS)
        return kbl_dist_fail("dist: gradient all-reduce of %lld elements could not start", (long long)m);
    return 0;
}

/* Starts the full buckets at the head of the order. */
static int launch_ready(kbl_dist_buckets *b) {
    while (b->next < b->nb && b->b[b->next].pending == 0) {
        if (launch(&b->b[b->next], &b->reqs[b->next])) return -1;
        b->next++;
    }
    return 0;
}

static int on_ready(kbl_tensor *leaf, void *ctx) {
    kbl_dist_buckets *b = ctx;
    int i = lookup(b, leaf);
    if (i < 0 || b->ready[i]) return 0;
    if (stage(b, i)) return -1;
    if (!b->overlap) return 0;
    int before = b->next;
    if (launch_ready(b)) return -1;
    b->early += b->next - before;
    /* progress what is in flight */
    for (int k = 0; k < b->next; k++)
        if (b->reqs[k] != MPI_REQUEST_NULL) kbl_dist_test(1, &b->reqs[k]);
    return 0;
}

int kbl_dist_buckets_begin(kbl_dist_buckets *b, double scale, int overlap) {
    if (!b) return kbl_dist_fail("dist: buckets_begin: no buckets");
    if (!kbl_dist_initialized()) return kbl_dist_fail("dist: buckets_begin before kbl_dist_init");
    b->scale = scale;
    b->overlap = overlap;
    b->next = b->early = 0;
    for (int i = 0; i < b->n; i++) b->ready[i] = false;
    for (int k = 0; k < b->nb; k++) {
        b->b[k].pending = b->b[k].count;
        b->reqs[k] = MPI_REQUEST_NULL;
    }
    kbl_set_grad_ready_hook(on_ready, b);
    b->armed = 1;
    return 0;
}

int kbl_dist_buckets_finish(kbl_dist_buckets *b, double *stats) {
    if (!b || !b->armed) return kbl_dist_fail("dist: buckets_finish without buckets_begin");
    kbl_set_grad_ready_hook(NULL, NULL);
    b->armed = 0;
    double t0 = kbl_profile_clock();
    /* parameters backward did not reach (frozen paths, unused): zeros, or the grad as it is */
    for (int k = 0; k < b->n; k++)
        if (!b->ready[b->order[k]] && stage(b, b->order[k])) return -1;
    if (launch_ready(b)) return -1;
    int rc = kbl_dist_wait(b->nb, b->reqs, "all_reduce of the gradients");
    for (int k = 0; k < b->nb; k++) b->reqs[k] = MPI_REQUEST_NULL;
    if (rc) return -1;
    for (int i = 0; i < b->n && rc == 0; i++) {
        kbl_tensor *p = b->params[i];
        if (p->grad) {
            if (kbl_copy_(p->grad, b->views[i])) rc = kbl_dist_fail("dist: %s", kbl_last_error());
        } else {
            kbl_tensor *g = kbl_clone(b->views[i]);
            if (!g || kbl_set_grad(p, g)) rc = kbl_dist_fail("dist: %s", kbl_last_error());
            kbl_tensor_release(g);
        }
    }
    if (stats) {
        stats[0] = kbl_profile_clock() - t0;
        stats[1] = b->early;
        stats[2] = b->nb;
        stats[3] = (double)b->bytes;
    }
    return rc;
}
