/* data_records_stream.c — streaming record shards (data_records.c has the
 * format): worker threads read and decompress blocks in the read order into a
 * ring, a producer thread takes them in that order, draws rows through a
 * seeded shuffle buffer and hands back ready batches; an epoch can start from
 * a saved position (shard, offset, the buffer's records), which
 * kbl_data_records_locate finds from the ids alone. */
#include "internal.h"
#include "data_records.h"

#include <pthread.h>

/* ---- the streamer ------------------------------------------------------------------------- */

/* Blocks are read and decompressed by worker threads into a ring of slots, in
 * the read order (shard by shard, block by block); the producer thread takes
 * them from the ring in that order, so what it makes does not depend on which
 * worker finished first. */
enum { SLOT_FREE, SLOT_BUSY, SLOT_READY, SLOT_FAILED };

typedef struct {
    int state;
    int shard;    /* its position in the read order */
    uint32_t block;
    int last;     /* the shard's last block: the shard is closed once it is taken */
    uint64_t e[4]; /* its entry in the block table */
    int64_t row0, skip; /* its first row in the shard; rows to pass over (a resumed start) */
    kbl_records_block bb;
    char err[1400];
} slot;

typedef struct {
    kbl_tensor *x, *y;
    int64_t *ids;
    int64_t n;
} outbatch;

struct kbl_data_records {
    /* what to read */
    int nshards;
    char **paths;
    int64_t *counts, *sizes, *first;
    uint64_t *checks;
    int x_dtype, y_dtype, out_dtype, xndim, yndim;
    int64_t xshape[KBL_MAX_DIMS], yshape[KBL_MAX_DIMS], xr, yr, xnumel;
    double scale;
    int64_t batch, bufsize;
    char *bx, *by; /* the shuffle buffer the producer uses (see producer) */
    int64_t bxn, byn; /* their sizes */
    int64_t *bid, *bslot;
    int drop;
    uint64_t seed, epoch;
    int32_t salt;
    kbl_data_records_pos start; /* where the epoch resumes */
    int64_t *start_ids;
    /* the threads; mu guards everything below */
    pthread_t th, *workers;
    int started, nworkers, stop, done, failed;
    pthread_mutex_t mu;
    pthread_cond_t ready, room; /* the batch ring: batches to take, space to push */
    int takers, pushers;        /* threads waiting on each */
    int64_t wake_at;            /* see push */
    pthread_cond_t bcv; /* the block slots */
    /* the batches made, up to depth ahead */
    outbatch *ring;
    int depth;
    int64_t head, tail;
    char err[1400];
    /* the blocks: planned (handed to a worker) and consumed count every block in read order */
    slot *slots;
    int nslots;
    int64_t planned, consumed, rows_read;
    kbl_records_shard *shards;
    int plan_shard, plan_open, plan_any, plan_done;
    uint32_t plan_block, plan_nblocks;
    int64_t plan_row;
};

/* Fills sl with the next block to read (opening its shard when the plan
 * reaches it): 0, 1 when none is left, -1 with sl->err when a shard fails its
 * checks. Called with mu held. */
static int plan_next(kbl_data_records *r, slot *sl) {
    while (r->plan_shard < r->nshards) {
        int k = r->plan_shard;
        kbl_records_shard *s = &r->shards[k];
        if (!r->plan_open) {
            if (kbl_records_shard_open(s, r->paths[k], r->counts[k], r->sizes[k], r->checks[k], r->xr, r->yr,
                                       sl->err, sizeof sl->err)) {
                kbl_records_shard_close(s);
                return -1;
            }
            r->plan_open = 1, r->plan_any = 0, r->plan_block = 0, r->plan_row = 0, r->plan_nblocks = s->nblocks;
            /* a resumed start: from the block holding the saved offset */
            while (k == r->start.shard && r->plan_block < s->nblocks &&
                   r->plan_row + (int64_t)s->table[4 * r->plan_block + 2] <= r->start.offset)
                r->plan_row += (int64_t)s->table[4 * r->plan_block++ + 2];
        }
        if (r->plan_block >= r->plan_nblocks) {
            /* nothing of it to read; else the taker of its last block closes it */
            if (!r->plan_any) kbl_records_shard_close(s);
            r->plan_shard++, r->plan_open = 0;
            continue;
        }
        const uint64_t *e = s->table + 4 * r->plan_block;
        memcpy(sl->e, e, sizeof sl->e);
        sl->shard = k, sl->block = r->plan_block, sl->row0 = r->plan_row;
        sl->skip = k == r->start.shard && r->plan_row < r->start.offset ? r->start.offset - r->plan_row : 0;
        sl->last = r->plan_block + 1 == r->plan_nblocks;
        r->plan_row += (int64_t)e[2];
        r->plan_block++, r->plan_any = 1;
        return 0;
    }
    return 1;
}

/* Plans the next block into a free slot and reads it (called with mu held,
 * released while reading): 0 when it read one (or reported a failure), 1
 * when there is nothing to read now (no free slot, or no block left). */
static int read_next(kbl_data_records *r, ZSTD_DCtx *dc) {
    if (r->stop || r->plan_done || r->planned - r->consumed >= r->nslots) return 1;
    slot *sl = &r->slots[r->planned % r->nslots];
    int rc = dc ? plan_next(r, sl) : (snprintf(sl->err, sizeof sl->err, "records: out of memory"), -1);
    if (rc == 1) {
        r->plan_done = 1;
        return 1;
    }
    r->planned++;
    if (rc < 0) {
        sl->state = SLOT_FAILED, r->plan_done = 1;
        return 0;
    }
    sl->state = SLOT_BUSY;
    pthread_mutex_unlock(&r->mu);
    rc = kbl_records_decode_block(dc, &sl->bb, &r->shards[sl->shard], sl->e, sl->block, sl->row0,
                                  r->xr + r->yr, sl->err, sizeof sl->err);
    pthread_mutex_lock(&r->mu);
    sl->state = rc ? SLOT_FAILED : SLOT_READY;
    return 0;
}

static void *worker_main(void *arg) {
    kbl_data_records *r = arg;
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    pthread_mutex_lock(&r->mu);
    while (!r->stop && !r->plan_done) {
        if (read_next(r, dc)) {
            if (!r->stop && !r->plan_done) pthread_cond_wait(&r->bcv, &r->mu);
            continue;
        }
        pthread_mutex_unlock(&r->mu);
        pthread_cond_broadcast(&r->bcv); /* after the unlock, as in push */
        pthread_mutex_lock(&r->mu);
    }
    pthread_cond_broadcast(&r->bcv);
    pthread_mutex_unlock(&r->mu);
    ZSTD_freeDCtx(dc);
    return NULL;
}

/* Block number seq of the read order, once it is read (ready or failed);
 * NULL at the end (*end = 1) or when the streamer is closing. Rather than
 * wait for a worker, the producer reads the next block itself (with dc):
 * while the shuffle buffer fills, and whenever the workers fall behind, two
 * threads decompress instead of one, in the same read order. */
static slot *take_block(kbl_data_records *r, int64_t seq, ZSTD_DCtx *dc, int *end) {
    slot *sl = NULL;
    *end = 0;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        if (seq < r->planned && r->slots[seq % r->nslots].state >= SLOT_READY) {
            sl = &r->slots[seq % r->nslots];
            break;
        }
        if (seq >= r->planned && r->plan_done) {
            *end = 1;
            break;
        }
        if (read_next(r, dc)) pthread_cond_wait(&r->bcv, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return sl;
}

static void give_block(kbl_data_records *r, slot *sl) {
    pthread_mutex_lock(&r->mu);
    if (sl->last) kbl_records_shard_close(&r->shards[sl->shard]);
    if (sl->state == SLOT_READY) r->rows_read += (int64_t)sl->e[2];
    sl->state = SLOT_FREE;
    r->consumed++;
    pthread_mutex_unlock(&r->mu);
    pthread_cond_broadcast(&r->bcv); /* after the unlock, as in push */
}

/* How many draws ahead the producer asks for a row's bytes from memory. */
enum { AHEAD = 8 };

/* The producer: the shuffle buffer holds rows in data slots bx/by/bid[s];
 * slot[0..count-1] lists the held ones in draw order, slot[count..] the free
 * ones, so a draw moves an index, not a row. */
typedef struct {
    kbl_data_records *r;
    char *bx, *by;
    int64_t *bid, *slot, count;
    int64_t draws;
    /* picks out of a full buffer, found AHEAD draws early (see draw):
     * ahead[d % AHEAD] is draw d's, for draws ahead_from..ahead_to-1 */
    int64_t ahead[AHEAD], ahead_from, ahead_to;
    outbatch cur;
    int64_t fill; /* rows in cur */
} producer;

static int push(producer *p, outbatch *b) {
    kbl_data_records *r = p->r;
    pthread_mutex_lock(&r->mu);
    while (!r->stop && r->tail - r->head >= r->depth) {
        r->pushers++;
        pthread_cond_wait(&r->room, &r->mu);
        r->pushers--;
    }
    if (r->stop) {
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    r->ring[r->tail % r->depth] = *b;
    r->tail++;
    /* A waiting taker is woken once wake_at batches (half the ring) are
     * ready, and a waiting pusher once half the ring is free: each wake-up
     * (an interrupt between cores, dear on a virtual machine) then moves a
     * run of batches instead of one. */
    bool wake = r->takers && r->tail - r->head >= r->wake_at;
    pthread_mutex_unlock(&r->mu);
    /* after the unlock: a thread woken while the waker holds the lock blocks
     * on it at once */
    if (wake) pthread_cond_signal(&r->ready);
    memset(b, 0, sizeof *b);
    return 0;
}

/* x [n, xshape...] (the output dtype) and y [n, yshape...] (NULL when there is
 * no y) for a batch of n rows; -1 with neither made. */
static int batch_tensors(const kbl_data_records *r, int64_t n, kbl_tensor **x, kbl_tensor **y) {
    int64_t xs[KBL_MAX_DIMS + 1], ys[KBL_MAX_DIMS + 1];
    xs[0] = ys[0] = n;
    memcpy(xs + 1, r->xshape, sizeof(int64_t) * (size_t)r->xndim);
    memcpy(ys + 1, r->yshape, sizeof(int64_t) * (size_t)r->yndim);
    *x = kbl_empty(r->xndim + 1, xs, r->out_dtype);
    *y = r->yr ? kbl_empty(r->yndim + 1, ys, r->y_dtype) : NULL;
    if (*x && (!r->yr || *y)) return 0;
    kbl_release_n(2, *x, *y);
    *x = *y = NULL;
    return -1;
}

/* Hands out the current batch. */
static int flush(producer *p) {
    kbl_data_records *r = p->r;
    if (p->fill == 0) return 0;
    outbatch b = p->cur;
    b.n = p->fill;
    p->cur = (outbatch){0}; /* b has it now */
    p->fill = 0;
    if (b.n < r->batch) { /* the last, short batch: tensors of its own size */
        kbl_tensor *x2, *y2;
        if (batch_tensors(r, b.n, &x2, &y2)) goto fail;
        memcpy(kbl_base(x2), kbl_base(b.x), (size_t)(b.n * r->xnumel) * kbl_dtype_size(r->out_dtype));
        if (y2 && b.y) memcpy(kbl_base(y2), kbl_base(b.y), (size_t)(b.n * r->yr));
        kbl_release_n(2, b.x, b.y);
        b.x = x2, b.y = y2;
    }
    if (push(p, &b) == 0) return 0;
fail:
    kbl_release_n(2, b.x, b.y);
    free(b.ids);
    return -1;
}

/* o = u * s: a loop of its own, so that it vectorizes. */
static void convert_u8(float *restrict o, const uint8_t *restrict u, int64_t n, float s) {
    for (int64_t k = 0; k < n; k++) o[k] = (float)u[k] * s;
}

/* One row into the batch being made (converted to the output dtype). */
static int emit(producer *p, const char *x, const char *y, int64_t id) {
    kbl_data_records *r = p->r;
    if (!p->cur.x) {
        int bad = batch_tensors(r, r->batch, &p->cur.x, &p->cur.y);
        p->cur.ids = bad ? NULL : malloc((size_t)r->batch * sizeof(int64_t));
        if (!p->cur.ids) {
            kbl_release_n(2, p->cur.x, p->cur.y);
            p->cur.x = p->cur.y = NULL;
            snprintf(r->err, sizeof r->err, "records: out of memory");
            return -1;
        }
    }
    int64_t i = p->fill;
    p->cur.ids[i] = id;
    if (r->out_dtype != KBL_FLOAT32 || (r->x_dtype == KBL_FLOAT32 && r->scale == 1.0)) {
        memcpy((char *)kbl_base(p->cur.x) + i * r->xr, x, (size_t)r->xr);
    } else { /* to float32, times x_scale: the batch job's arithmetic (data_batch.c: gather_rows) */
        float *o = (float *)kbl_base(p->cur.x) + i * r->xnumel, s = (float)r->scale;
        if (r->x_dtype == KBL_UINT8) {
            convert_u8(o, (const uint8_t *)x, r->xnumel, s);
        } else if (r->x_dtype == KBL_FLOAT32) {
            for (int64_t k = 0; k < r->xnumel; k++) {
                float v;
                memcpy(&v, x + 4 * k, 4);
                o[k] = v * s;
            }
        } else {
            for (int64_t k = 0; k < r->xnumel; k++) o[k] = (float)(kbl_load_double(x, r->x_dtype, k) * (double)s);
        }
    }
    if (p->cur.y) memcpy((char *)kbl_base(p->cur.y) + i * r->yr, y, (size_t)r->yr);
    p->fill++;
    return p->fill == r->batch ? flush(p) : 0;
}

/* Hands out one row drawn from the buffer; the last held row takes its place
 * in the draw order (kbl_data_records_locate follows the same rule). */
static int draw(producer *p) {
    kbl_data_records *r = p->r;
    bool full = p->count == r->bufsize;
    int64_t d = p->draws;
    if (full && !(d >= p->ahead_from && d < p->ahead_to)) p->ahead_from = p->ahead_to = d;
    /* While the buffer is full at each draw (all but an epoch's last rows),
     * draw d's pick depends on d alone and is found AHEAD draws early, and
     * the bytes of the row held there now are asked for from memory: the
     * buffer is larger than the caches and a row's wait would otherwise stall
     * the copy. A row that moves before its draw costs a wasted prefetch. */
    while (full && p->ahead_to < d + AHEAD) {
        int64_t k = kbl_data_randint(r->seed, r->salt, r->epoch, p->ahead_to, 0, r->bufsize);
        p->ahead[p->ahead_to++ % AHEAD] = k;
        if (k < p->count) {
            const char *row = p->bx + p->slot[k] * r->xr;
            for (int64_t b = 0; b < r->xr; b += 64) __builtin_prefetch(row + b);
        }
    }
    int64_t k = full ? p->ahead[d % AHEAD] : kbl_data_randint(r->seed, r->salt, r->epoch, d, 0, p->count);
    p->draws++;
    if (full) p->ahead_from = p->draws;
    int64_t s = p->slot[k];
    if (emit(p, p->bx + s * r->xr, p->by + s * r->yr, p->bid[s])) return -1;
    int64_t last = --p->count;
    p->slot[k] = p->slot[last];
    p->slot[last] = s;
    return 0;
}

static void hold(producer *p, const char *x, const char *y, int64_t id) {
    kbl_data_records *r = p->r;
    int64_t s = p->slot[p->count++];
    memcpy(p->bx + s * r->xr, x, (size_t)r->xr);
    if (r->yr) memcpy(p->by + s * r->yr, y, (size_t)r->yr);
    p->bid[s] = id;
}

static int take_rows(producer *p, const slot *sl) {
    kbl_data_records *r = p->r;
    int64_t rows = (int64_t)sl->e[2], id0 = r->first[sl->shard] + sl->row0;
    const char *raw = sl->bb.raw;
    for (int64_t i = sl->skip; i < rows; i++) {
        const char *x = raw + i * r->xr, *y = raw + rows * r->xr + i * r->yr;
        if (r->bufsize <= 1) {
            if (emit(p, x, y, id0 + i)) return -1;
            continue;
        }
        hold(p, x, y, id0 + i);
        if (p->count == r->bufsize && draw(p)) return -1;
    }
    return 0;
}

/* The shard of n (first ids, row counts) that holds record id; n when none. */
static int shard_of(int n, const int64_t *first, const int64_t *counts, int64_t id) {
    int k = 0;
    while (k < n && !(id >= first[k] && id < first[k] + counts[k])) k++;
    return k;
}

typedef struct {
    int64_t id, at;
} id_at;

static int by_id(const void *a, const void *b) {
    int64_t x = ((const id_at *)a)->id, y = ((const id_at *)b)->id;
    return (x > y) - (x < y);
}

/* A resumed epoch: reads back the rows the saved shuffle buffer held (in its
 * draw order), block by block in id order, before the read goes on. */
static int refill(producer *p, ZSTD_DCtx *dc) {
    kbl_data_records *r = p->r;
    int64_t n = r->start.count;
    id_at *want = malloc((size_t)n * sizeof *want);
    kbl_records_block bb = {0};
    kbl_records_shard s = {0};
    int rc = want && dc ? 0 : -1, k = -1;
    if (rc) snprintf(r->err, sizeof r->err, "records: out of memory");
    for (int64_t j = 0; rc == 0 && j < n; j++) want[j].id = r->start_ids[j], want[j].at = j;
    if (rc == 0) qsort(want, (size_t)n, sizeof *want, by_id);
    int64_t b = -1, brow0 = 0, brows = 0;
    for (int64_t j = 0; rc == 0 && j < n; j++) {
        int64_t id = want[j].id;
        if (k < 0 || id < r->first[k] || id >= r->first[k] + r->counts[k]) {
            kbl_records_shard_close(&s);
            k = shard_of(r->nshards, r->first, r->counts, id);
            if (k == r->nshards) { /* checked at open; here for the analyzer */
                rc = -1;
                break;
            }
            rc = kbl_records_shard_open(&s, r->paths[k], r->counts[k], r->sizes[k], r->checks[k], r->xr, r->yr,
                                        r->err, sizeof r->err);
            b = -1, brow0 = 0, brows = 0;
        }
        int64_t row = id - r->first[k];
        if (rc == 0 && (b < 0 || row >= brow0 + brows)) {
            if (b < 0) b = 0, brow0 = 0, brows = (int64_t)s.table[2];
            while (row >= brow0 + brows) brow0 += brows, brows = (int64_t)s.table[4 * ++b + 2];
            rc = kbl_records_decode_block(dc, &bb, &s, s.table + 4 * b, (uint32_t)b, brow0,
                                          r->xr + r->yr, r->err, sizeof r->err);
            if (rc == 0) {
                pthread_mutex_lock(&r->mu);
                r->rows_read += brows;
                pthread_mutex_unlock(&r->mu);
            }
        }
        if (rc == 0 && bb.raw) {
            int64_t i = row - brow0, at = want[j].at;
            memcpy(p->bx + at * r->xr, bb.raw + i * r->xr, (size_t)r->xr);
            if (r->yr) memcpy(p->by + at * r->yr, bb.raw + brows * r->xr + i * r->yr, (size_t)r->yr);
            p->bid[at] = id;
        }
    }
    if (rc == 0) p->count = n, p->draws = r->start.draws;
    kbl_records_shard_close(&s);
    kbl_records_block_free(&bb);
    free(want);
    return rc;
}

static void *producer_main(void *arg) {
    kbl_data_records *r = arg;
    producer p;
    memset(&p, 0, sizeof p);
    p.r = r;
    int64_t bs = r->bufsize > 1 ? r->bufsize : 1;
    p.bx = r->bx, p.by = r->by, p.bid = r->bid, p.slot = r->bslot;
    for (int64_t s = 0; s < bs; s++) p.slot[s] = s;
    p.draws = r->start.draws;
    ZSTD_DCtx *dc = ZSTD_createDCtx(); /* for the blocks it reads itself (take_block) */
    int rc = r->start.count > 0 ? refill(&p, dc) : 0;
    for (int64_t seq = 0; rc == 0; seq++) {
        int end;
        slot *sl = take_block(r, seq, dc, &end);
        if (!sl) {
            rc = end ? 0 : -1;
            break;
        }
        if (sl->state == SLOT_FAILED) {
            snprintf(r->err, sizeof r->err, "%s", sl->err);
            rc = -1;
        } else {
            rc = take_rows(&p, sl);
        }
        give_block(r, sl);
    }
    while (rc == 0 && p.count > 0) rc = draw(&p);
    if (rc == 0 && !r->drop) rc = flush(&p);
    kbl_release_n(2, p.cur.x, p.cur.y);
    free(p.cur.ids);
    ZSTD_freeDCtx(dc);
    pthread_mutex_lock(&r->mu);
    r->done = 1, r->plan_done = 1; /* the workers stop planning */
    if (rc && !r->stop) r->failed = 1;
    pthread_cond_broadcast(&r->ready);
    pthread_cond_broadcast(&r->bcv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- where an epoch stands ---------------------------------------------------------------- */

/* Checks a saved position against the read order of spec sp. */
static int check_pos(const kbl_data_records_spec *sp, const kbl_data_records_pos *pos, const int64_t *ids) {
    int64_t cap = sp->buffer > 1 ? sp->buffer - 1 : 0;
    if (pos->shard < 0 || pos->shard > sp->nshards || pos->offset < 0 ||
        pos->offset > (pos->shard < sp->nshards ? sp->counts[pos->shard] : 0))
        return kbl_fail("records: resume state: shard %lld, offset %lld is not in this split's %d shards",
                        (long long)pos->shard + 1, (long long)pos->offset, sp->nshards);
    if (pos->draws < 0 || pos->count < 0 || pos->count > cap || (pos->count > 0 && !ids))
        return kbl_fail("records: resume state: %lld buffered records, draw %lld, for a shuffle buffer of %lld",
                        (long long)pos->count, (long long)pos->draws, (long long)sp->buffer);
    for (int64_t j = 0; j < pos->count; j++)
        if (shard_of(sp->nshards, sp->first_ids, sp->counts, ids[j]) == sp->nshards)
            return kbl_fail("records: resume state: buffered record %lld is not in this split", (long long)ids[j]);
    return 0;
}

int kbl_data_records_locate(const kbl_data_records_spec *sp, int64_t rows, kbl_data_records_pos *pos,
                            int64_t *ids) {
    if (!sp || !pos || rows < 0) return kbl_fail("records: locate: bad arguments");
    if (check_pos(sp, pos, ids)) return -1;
    int64_t buf = sp->buffer > 1 ? sp->buffer : 0, sh = pos->shard, off = pos->offset, draws = pos->draws;
    int64_t count = pos->count;
    for (int64_t emitted = 0; emitted < rows;) {
        while (sh < sp->nshards && off >= sp->counts[sh]) sh++, off = 0;
        if (sh < sp->nshards) { /* the next row in read order */
            int64_t id = sp->first_ids[sh] + off++;
            if (!buf) {
                emitted++;
                continue;
            }
            ids[count++] = id;
            if (count < buf) continue;
        } else if (count == 0) {
            return kbl_fail("records: locate: the epoch ends %lld records early", (long long)(rows - emitted));
        }
        int64_t k = kbl_data_randint(sp->seed, sp->salt, sp->epoch, draws++, 0, count);
        ids[k] = ids[--count];
        emitted++;
    }
    while (sh < sp->nshards && off >= sp->counts[sh]) sh++, off = 0;
    pos->shard = sh, pos->offset = off, pos->draws = draws, pos->count = count;
    return 0;
}

/* ---- opening and closing ----------------------------------------------------------------- */

kbl_data_records *kbl_data_records_open(const kbl_data_records_spec *sp) {
    if (!sp || sp->nshards < 0 || (sp->nshards > 0 && (!sp->paths || !sp->counts || !sp->sizes || !sp->checksums ||
                                                         !sp->first_ids)) ||
        sp->xndim < 0 || sp->xndim > KBL_MAX_DIMS - 1 || sp->yndim < 0 || sp->yndim > KBL_MAX_DIMS - 1 ||
        sp->batch < 1 || sp->depth < 1 || sp->x_dtype < 0 || sp->x_dtype > KBL_UINT8 || sp->threads < 0 ||
        (sp->out_dtype != sp->x_dtype && sp->out_dtype != KBL_FLOAT32)) {
        kbl_fail("records: bad streamer settings");
        return NULL;
    }
    if (sp->start && check_pos(sp, sp->start, sp->start_ids)) return NULL;
    kbl_data_records *r = calloc(1, sizeof *r);
    if (!r) return kbl_fail("records: out of memory"), NULL;
    r->nshards = sp->nshards;
    r->paths = calloc((size_t)(sp->nshards + 1), sizeof *r->paths);
    r->counts = calloc((size_t)(sp->nshards + 1), sizeof(int64_t));
    r->sizes = calloc((size_t)(sp->nshards + 1), sizeof(int64_t));
    r->first = calloc((size_t)(sp->nshards + 1), sizeof(int64_t));
    r->checks = calloc((size_t)(sp->nshards + 1), sizeof(uint64_t));
    r->shards = calloc((size_t)(sp->nshards + 1), sizeof *r->shards);
    r->ring = calloc((size_t)sp->depth, sizeof *r->ring);
    /* Default: 2 workers, also on 2 cores, where the producer reads blocks
     * itself when it would wait: quiet 2-core Xeon, BENCH_PART=records
     * bin/kbl bench/data_image.lua, records at 81-107% of in-memory
     * batches/s with 2 workers (median 98%), 81-102% with 1 (median 88%),
     * eight runs each, taken in turn. */
    r->nworkers = sp->threads > 0 ? (sp->threads < 16 ? sp->threads : 16) : 2;
    r->nslots = 2 * r->nworkers + 1;
    r->slots = calloc((size_t)r->nslots, sizeof *r->slots);
    r->workers = calloc((size_t)r->nworkers, sizeof *r->workers);
    if (sp->start) r->start = *sp->start;
    r->start_ids = malloc((size_t)(r->start.count + 1) * sizeof(int64_t));
    bool ok = r->paths && r->counts && r->sizes && r->first && r->checks && r->shards && r->ring && r->slots &&
              r->workers && r->start_ids;
    for (int k = 0; ok && k < sp->nshards; k++) {
        r->paths[k] = strdup(sp->paths[k]);
        ok = r->paths[k] != NULL;
        r->counts[k] = sp->counts[k], r->sizes[k] = sp->sizes[k], r->first[k] = sp->first_ids[k];
        r->checks[k] = sp->checksums[k];
    }
    if (ok && r->start.count > 0) memcpy(r->start_ids, sp->start_ids, (size_t)r->start.count * sizeof(int64_t));
    r->x_dtype = sp->x_dtype, r->xndim = sp->xndim, r->yndim = sp->yndim;
    r->y_dtype = sp->y_dtype;
    memcpy(r->xshape, sp->xshape, sizeof(int64_t) * (size_t)sp->xndim);
    memcpy(r->yshape, sp->yshape, sizeof(int64_t) * (size_t)sp->yndim);
    r->xnumel = kbl_shape_numel(sp->xndim, r->xshape);
    r->xr = r->xnumel * (int64_t)kbl_dtype_size(sp->x_dtype);
    r->yr = sp->y_dtype >= 0 ? kbl_shape_numel(sp->yndim, r->yshape) * (int64_t)kbl_dtype_size(sp->y_dtype) : 0;
    /* the shuffle buffer: rows, their ids and the draw order (see producer) */
    int64_t bs = sp->buffer > 1 ? sp->buffer : 1;
    /* from kbl's caching allocator, as the block buffers (data_records.c: grow) */
    r->bxn = bs * (r->xr > 0 ? r->xr : 1), r->byn = bs * (r->yr > 0 ? r->yr : 1);
    r->bx = kbl_alloc(r->bxn);
    r->by = kbl_alloc(r->byn);
    r->bid = calloc((size_t)bs, sizeof(int64_t));
    r->bslot = calloc((size_t)bs, sizeof(int64_t));
    bool buf_ok = r->bx && r->by && r->bid && r->bslot;
    r->scale = sp->x_scale;
    r->out_dtype = sp->out_dtype;
    r->batch = sp->batch, r->drop = sp->drop_remainder, r->bufsize = sp->buffer;
    r->seed = sp->seed, r->salt = sp->salt, r->epoch = sp->epoch, r->depth = sp->depth;
    r->plan_shard = (int)r->start.shard;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->ready, NULL);
    pthread_cond_init(&r->room, NULL);
    r->wake_at = (r->depth + 1) / 2;
    pthread_cond_init(&r->bcv, NULL);
    if (!ok || !buf_ok || r->xr <= 0) {
        r->nworkers = 0;
        kbl_data_records_close(r);
        if (!ok) kbl_fail("records: out of memory");
        else if (!buf_ok) kbl_fail("records: out of memory for a shuffle buffer of %lld records", (long long)bs);
        else kbl_fail("records: empty record shape");
        return NULL;
    }
    int started = 0;
    /* named by their creator, so that the names are there as soon as open
     * returns (top -H and perf tell the threads apart) */
    while (started < r->nworkers && pthread_create(&r->workers[started], NULL, worker_main, r) == 0)
        pthread_setname_np(r->workers[started++], "kbl-records-rd");
    if (started == r->nworkers && pthread_create(&r->th, NULL, producer_main, r) == 0) {
        pthread_setname_np(r->th, "kbl-records");
        r->started = 1;
    }
    if (!r->started) {
        r->nworkers = started;
        kbl_data_records_close(r);
        kbl_fail("records: cannot start a thread");
        return NULL;
    }
    return r;
}

int kbl_data_records_next(kbl_data_records *r, kbl_tensor **x, kbl_tensor **y, int64_t *ids, int64_t *n) {
    *x = NULL, *y = NULL, *n = 0;
    pthread_mutex_lock(&r->mu);
    while (r->head == r->tail && !r->done) {
        r->takers++;
        pthread_cond_wait(&r->ready, &r->mu);
        r->takers--;
    }
    int rc = 0;
    bool wake = false;
    if (r->head < r->tail) {
        outbatch *b = &r->ring[r->head % r->depth];
        *x = b->x, *y = b->y, *n = b->n;
        if (ids) memcpy(ids, b->ids, (size_t)b->n * sizeof(int64_t));
        free(b->ids);
        memset(b, 0, sizeof *b);
        r->head++;
        wake = r->pushers && r->depth - (r->tail - r->head) >= r->wake_at;
    } else if (r->failed) {
        rc = kbl_fail("%s", r->err);
    }
    pthread_mutex_unlock(&r->mu);
    if (wake) pthread_cond_signal(&r->room); /* after the unlock, as in push */
    return rc;
}

int64_t kbl_data_records_rows_read(kbl_data_records *r) {
    pthread_mutex_lock(&r->mu);
    int64_t n = r->rows_read;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void kbl_data_records_close(kbl_data_records *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->ready);
    pthread_cond_broadcast(&r->room);
    pthread_cond_broadcast(&r->bcv);
    pthread_mutex_unlock(&r->mu);
    if (r->started) pthread_join(r->th, NULL);
    for (int w = 0; w < r->nworkers; w++) pthread_join(r->workers[w], NULL);
    for (int64_t k = r->head; k < r->tail; k++) {
        outbatch *b = &r->ring[k % r->depth];
        kbl_release_n(2, b->x, b->y);
        free(b->ids);
    }
    for (int k = 0; r->shards && k < r->nshards; k++) kbl_records_shard_close(&r->shards[k]);
    for (int s = 0; r->slots && s < r->nslots; s++) kbl_records_block_free(&r->slots[s].bb);
    for (int k = 0; r->paths && k < r->nshards; k++) free(r->paths[k]);
    free(r->paths), free(r->counts), free(r->sizes), free(r->first), free(r->checks), free(r->ring);
    free(r->shards), free(r->slots), free(r->workers), free(r->start_ids);
    kbl_free(r->bx, r->bxn), kbl_free(r->by, r->byn);
    free(r->bid), free(r->bslot);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->ready);
    pthread_cond_destroy(&r->room);
    pthread_cond_destroy(&r->bcv);
    free(r);
}
