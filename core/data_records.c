/* data_records.c — sharded record files for datasets larger than memory: a
 * writer of one shard, and a streamer that reads shards in a given order on a
 * background thread, decompresses and checks each block, draws rows through a
 * seeded shuffle buffer and hands back ready batches.
 *
 * Shard layout, little-endian:
 *   "KBLRECS1" u32 version u32 nblocks u64 count u64 x_row_bytes u64 y_row_bytes
 *   nblocks x { u64 offset, u64 zstd_bytes, u64 rows, u64 hash of the raw block }
 *   blocks: zstd frames of rows x rows then their y rows.
 * The index (index.json, written by kbl.data.records) lists each shard with its
 * count, its size in bytes and the hash of its header and block table. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <zstd.h>

#define REC_MAGIC "KBLRECS1"
#define REC_VERSION 1u
#define HEAD_BYTES 40
#define ENTRY_BYTES 32
#define MAX_BLOCK_BYTES (1ll << 30)
#define ZSTD_MAX_RATIO 32768

/* ---- writing ------------------------------------------------------------------------ */

static int64_t row_bytes(const kbl_tensor *t) {
    return t ? kbl_numel(t) / (t->shape[0] > 0 ? t->shape[0] : 1) * (int64_t)kbl_dtype_size(t->dtype) : 0;
}

int kbl_data_records_write(const char *path, kbl_tensor *x, kbl_tensor *y, int64_t block_rows, int level,
                           uint64_t *checksum) {
    if (kbl_check_tensor("records", x, "x")) return -1;
    if (x->ndim < 1 || (y && (y->ndim < 1 || y->shape[0] != x->shape[0])))
        return kbl_fail("records: x and y must have the same rows along dim 1");
    if (block_rows < 1) return kbl_fail("records: block_rows must be at least 1");
    kbl_tensor *xc = kbl_contiguous(x), *yc = y ? kbl_contiguous(y) : NULL;
    if (!xc || (y && !yc)) {
        kbl_release_n(2, xc, yc);
        return -1;
    }
    int64_t n = x->shape[0], xr = row_bytes(xc), yr = row_bytes(yc);
    uint32_t nblocks = (uint32_t)((n + block_rows - 1) / block_rows);
    uint64_t *table = calloc((size_t)(nblocks ? nblocks : 1), ENTRY_BYTES);
    size_t cap = ZSTD_compressBound((size_t)(block_rows * (xr + yr)));
    char *raw = malloc((size_t)(block_rows * (xr + yr)) + 1), *z = malloc(cap);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = table && raw && z ? fopen(tmp, "wb") : NULL;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    int rc = f && cc ? 0 : kbl_fail("records: %s: cannot write: %s", path, f ? "out of memory" : strerror(errno));
    uint64_t head[4] = {0}; /* version | nblocks, count, xr, yr */
    uint32_t vn[2] = {REC_VERSION, nblocks};
    head[1] = (uint64_t)n, head[2] = (uint64_t)xr, head[3] = (uint64_t)yr;
    if (rc == 0) {
        ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level > 0 ? level : 3);
        /* header and table first (rewritten once the offsets are known) */
        if (fwrite(REC_MAGIC, 1, 8, f) != 8 || fwrite(vn, 4, 2, f) != 2 || fwrite(head + 1, 8, 3, f) != 3 ||
            fwrite(table, ENTRY_BYTES, nblocks, f) != nblocks)
            rc = kbl_fail("records: %s: write error: %s", path, strerror(errno));
    }
    uint64_t off = HEAD_BYTES + (uint64_t)nblocks * ENTRY_BYTES;
    for (uint32_t b = 0; rc == 0 && b < nblocks; b++) {
        int64_t r0 = (int64_t)b * block_rows, rows = n - r0 < block_rows ? n - r0 : block_rows;
        memcpy(raw, (char *)kbl_base(xc) + r0 * xr, (size_t)(rows * xr));
        if (yc) memcpy(raw + rows * xr, (char *)kbl_base(yc) + r0 * yr, (size_t)(rows * yr));
        size_t zn = ZSTD_compress2(cc, z, cap, raw, (size_t)(rows * (xr + yr)));
        if (ZSTD_isError(zn)) {
            rc = kbl_fail("records: zstd: %s", ZSTD_getErrorName(zn));
            break;
        }
        uint64_t *e = table + 4 * b;
        e[0] = off, e[1] = zn, e[2] = (uint64_t)rows, e[3] = kbl_data_hash_bytes(raw, rows * (xr + yr), 0);
        if (fwrite(z, 1, zn, f) != zn) rc = kbl_fail("records: %s: write error: %s", path, strerror(errno));
        off += zn;
    }
    if (rc == 0 && (fseek(f, HEAD_BYTES, SEEK_SET) != 0 || fwrite(table, ENTRY_BYTES, nblocks, f) != nblocks))
        rc = kbl_fail("records: %s: write error: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && rc == 0) rc = kbl_fail("records: %s: write error: %s", path, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0) rc = kbl_fail("records: %s: cannot rename: %s", path, strerror(errno));
    if (rc && f) (void)remove(tmp);
    if (rc == 0 && checksum) {
        uint64_t h = kbl_data_hash_bytes(REC_MAGIC, 8, 0);
        h = kbl_data_hash_bytes(vn, 8, h);
        h = kbl_data_hash_bytes(head + 1, 24, h);
        *checksum = kbl_data_hash_bytes(table, (int64_t)nblocks * ENTRY_BYTES, h);
    }
    ZSTD_freeCCtx(cc);
    free(table), free(raw), free(z);
    kbl_release_n(2, xc, yc);
    return rc;
}

/* ---- one shard, opened and checked ------------------------------------------------------ */

typedef struct {
    FILE *f;
    const char *path;
    uint32_t nblocks;
    uint64_t *table;
    int64_t count;
} shard;

/* Opens and checks a shard against what the index says (count, size, row
 * sizes, checksum): every size is checked against the file before allocating. */
static int shard_open(shard *s, const char *path, int64_t count, int64_t size, uint64_t checksum, int64_t xr,
                      int64_t yr, char *err, size_t cap) {
    memset(s, 0, sizeof *s);
    s->path = path;
    s->f = fopen(path, "rb");
    if (!s->f) return snprintf(err, cap, "records: %s: cannot open: %s", path, strerror(errno)), -1;
    struct stat st;
    char magic[8];
    uint32_t vn[2];
    uint64_t head[3];
    if (fstat(fileno(s->f), &st) != 0) return snprintf(err, cap, "records: %s: cannot stat", path), -1;
    if ((int64_t)st.st_size != size)
        return snprintf(err, cap, "records: %s: damaged shard: %lld bytes, the index says %lld", path,
                        (long long)st.st_size, (long long)size), -1;
    if (size < HEAD_BYTES || fread(magic, 1, 8, s->f) != 8 || memcmp(magic, REC_MAGIC, 8) != 0 ||
        fread(vn, 4, 2, s->f) != 2 || fread(head, 8, 3, s->f) != 3)
        return snprintf(err, cap, "records: %s: damaged shard: not a kbl record shard (bad header)", path), -1;
    if (vn[0] != REC_VERSION)
        return snprintf(err, cap, "records: %s: shard version %u, this kbl reads %u", path, vn[0], REC_VERSION), -1;
    if ((int64_t)head[0] != count || (int64_t)head[1] != xr || (int64_t)head[2] != yr)
        return snprintf(err, cap, "records: %s: damaged shard: header says %llu records of %llu+%llu bytes, the index "
                        "%lld of %lld+%lld", path, (unsigned long long)head[0], (unsigned long long)head[1],
                        (unsigned long long)head[2], (long long)count, (long long)xr, (long long)yr), -1;
    if ((uint64_t)vn[1] > (uint64_t)(size - HEAD_BYTES) / ENTRY_BYTES)
        return snprintf(err, cap, "records: %s: damaged shard: %u blocks do not fit in %lld bytes", path, vn[1],
                        (long long)size), -1;
    s->nblocks = vn[1];
    s->table = malloc((size_t)(s->nblocks ? s->nblocks : 1) * ENTRY_BYTES);
    if (!s->table) return snprintf(err, cap, "records: out of memory"), -1;
    if (fread(s->table, ENTRY_BYTES, s->nblocks, s->f) != s->nblocks)
        return snprintf(err, cap, "records: %s: damaged shard: truncated block table", path), -1;
    uint64_t h = kbl_data_hash_bytes(REC_MAGIC, 8, 0);
    h = kbl_data_hash_bytes(vn, 8, h);
    h = kbl_data_hash_bytes(head, 24, h);
    h = kbl_data_hash_bytes(s->table, (int64_t)s->nblocks * ENTRY_BYTES, h);
    if (h != checksum)
        return snprintf(err, cap, "records: %s: damaged shard: its header and block table do not match the index's "
                        "checksum", path), -1;
    uint64_t rows = 0, lo = HEAD_BYTES + (uint64_t)s->nblocks * ENTRY_BYTES;
    for (uint32_t b = 0; b < s->nblocks; b++) {
        uint64_t *e = s->table + 4 * b;
        if (e[0] < lo || e[1] > (uint64_t)size || e[0] > (uint64_t)size - e[1] || e[2] == 0 ||
            e[2] * (uint64_t)(xr + yr) > MAX_BLOCK_BYTES || e[2] * (uint64_t)(xr + yr) / ZSTD_MAX_RATIO > e[1])
            return snprintf(err, cap, "records: %s: damaged shard: block %u (records %llu..) is out of bounds", path,
                            b, (unsigned long long)rows), -1;
        rows += e[2];
    }
    if (rows != (uint64_t)count)
        return snprintf(err, cap, "records: %s: damaged shard: blocks hold %llu records, the header says %lld", path,
                        (unsigned long long)rows, (long long)count), -1;
    s->count = count;
    return 0;
}

static void shard_close(shard *s) {
    if (s->f) (void)fclose(s->f);
    free(s->table);
    memset(s, 0, sizeof *s);
}

/* ---- the streamer ------------------------------------------------------------------------- */

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
    int64_t batch, bufsize, skip;
    int drop;
    uint64_t seed, epoch;
    int32_t salt;
    /* the thread and its queue */
    pthread_t th;
    int started, stop, done, failed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    outbatch *ring;
    int depth;
    int64_t head, tail;
    char err[1400];
    char *bx, *by; /* the producer's shuffle buffer */
    int64_t *bid;
};

typedef struct {
    kbl_data_records *r;
    char *bx, *by;       /* the shuffle buffer's rows */
    int64_t *bid, count; /* their ids, how many */
    int64_t draws, emitted_batches;
    outbatch cur;
    int64_t fill; /* rows in cur */
} producer;

static int push(producer *p, outbatch *b) {
    kbl_data_records *r = p->r;
    pthread_mutex_lock(&r->mu);
    while (!r->stop && r->tail - r->head >= r->depth) pthread_cond_wait(&r->cv, &r->mu);
    if (r->stop) {
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    r->ring[r->tail % r->depth] = *b;
    r->tail++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    memset(b, 0, sizeof *b);
    return 0;
}

/* Ends the current batch: handed out, or dropped while skipping. */
static int flush(producer *p) {
    kbl_data_records *r = p->r;
    if (p->fill == 0) return 0;
    int64_t k = p->emitted_batches++;
    if (k < r->skip) {
        p->fill = 0;
        return 0;
    }
    outbatch b = p->cur;
    b.n = p->fill;
    if (b.n < r->batch) { /* the last, short batch: tensors of its own size */
        int64_t xs[KBL_MAX_DIMS + 1], ys[KBL_MAX_DIMS + 1];
        xs[0] = ys[0] = b.n;
        memcpy(xs + 1, r->xshape, sizeof(int64_t) * (size_t)r->xndim);
        memcpy(ys + 1, r->yshape, sizeof(int64_t) * (size_t)r->yndim);
        kbl_tensor *x2 = kbl_empty(r->xndim + 1, xs, r->out_dtype);
        kbl_tensor *y2 = r->yr ? kbl_empty(r->yndim + 1, ys, r->y_dtype) : NULL;
        if (!x2 || (r->yr && !y2)) {
            kbl_release_n(2, x2, y2);
            return -1;
        }
        memcpy(kbl_base(x2), kbl_base(b.x), (size_t)(b.n * r->xnumel) * kbl_dtype_size(r->out_dtype));
        if (y2) memcpy(kbl_base(y2), kbl_base(b.y), (size_t)(b.n * r->yr));
        kbl_release_n(2, b.x, b.y);
        b.x = x2, b.y = y2;
    }
    memset(&p->cur, 0, sizeof p->cur);
    p->fill = 0;
    if (push(p, &b)) {
        kbl_release_n(2, b.x, b.y);
        free(b.ids);
        return -1;
    }
    return 0;
}

/* o = u * s: a loop of its own, so that it vectorizes. */
static void convert_u8(float *restrict o, const uint8_t *restrict u, int64_t n, float s) {
    for (int64_t k = 0; k < n; k++) o[k] = (float)u[k] * s;
}

/* One row into the batch being made (converted to the output dtype). */
static int emit(producer *p, const char *x, const char *y, int64_t id) {
    kbl_data_records *r = p->r;
    bool skipping = p->emitted_batches < r->skip;
    if (!skipping && !p->cur.x) {
        int64_t xs[KBL_MAX_DIMS + 1], ys[KBL_MAX_DIMS + 1];
        xs[0] = ys[0] = r->batch;
        memcpy(xs + 1, r->xshape, sizeof(int64_t) * (size_t)r->xndim);
        memcpy(ys + 1, r->yshape, sizeof(int64_t) * (size_t)r->yndim);
        p->cur.x = kbl_empty(r->xndim + 1, xs, r->out_dtype);
        p->cur.y = r->yr ? kbl_empty(r->yndim + 1, ys, r->y_dtype) : NULL;
        p->cur.ids = malloc((size_t)r->batch * sizeof(int64_t));
        if (!p->cur.x || (r->yr && !p->cur.y) || !p->cur.ids) {
            kbl_release_n(2, p->cur.x, p->cur.y);
            free(p->cur.ids);
            memset(&p->cur, 0, sizeof p->cur);
            snprintf(r->err, sizeof r->err, "records: out of memory");
            return -1;
        }
    }
    if (!skipping) {
        int64_t i = p->fill;
        p->cur.ids[i] = id;
        if (r->out_dtype == r->x_dtype) {
            memcpy((char *)kbl_base(p->cur.x) + i * r->xr, x, (size_t)r->xr);
        } else { /* float32 out */
            float *o = (float *)kbl_base(p->cur.x) + i * r->xnumel;
            if (r->x_dtype == KBL_UINT8)
                convert_u8(o, (const uint8_t *)x, r->xnumel, (float)r->scale);
            else
                for (int64_t k = 0; k < r->xnumel; k++) o[k] = (float)(kbl_load_double(x, r->x_dtype, k) * r->scale);
        }
        if (r->yr) memcpy((char *)kbl_base(p->cur.y) + i * r->yr, y, (size_t)r->yr);
    }
    p->fill++;
    if (p->fill == r->batch) {
        if (flush(p)) return -1;
    }
    return 0;
}

/* Hands out one row drawn from the buffer (moving the last row into its place). */
static int draw(producer *p) {
    kbl_data_records *r = p->r;
    int64_t k = kbl_data_randint(r->seed, r->salt, r->epoch, p->draws++, 0, p->count);
    if (emit(p, p->bx + k * r->xr, p->by + k * r->yr, p->bid[k])) return -1;
    int64_t last = --p->count;
    if (k != last) {
        memcpy(p->bx + k * r->xr, p->bx + last * r->xr, (size_t)r->xr);
        if (r->yr) memcpy(p->by + k * r->yr, p->by + last * r->yr, (size_t)r->yr);
        p->bid[k] = p->bid[last];
    }
    return 0;
}

static int take_row(producer *p, const char *x, const char *y, int64_t id) {
    kbl_data_records *r = p->r;
    if (r->bufsize <= 1) return emit(p, x, y, id);
    memcpy(p->bx + p->count * r->xr, x, (size_t)r->xr);
    if (r->yr) memcpy(p->by + p->count * r->yr, y, (size_t)r->yr);
    p->bid[p->count++] = id;
    return p->count == r->bufsize ? draw(p) : 0;
}

static int read_shard(producer *p, int k, ZSTD_DCtx *dc, char **raw, int64_t *rawcap, char **z, int64_t *zcap) {
    kbl_data_records *r = p->r;
    shard s;
    if (shard_open(&s, r->paths[k], r->counts[k], r->sizes[k], r->checks[k], r->xr, r->yr, r->err, sizeof r->err)) {
        shard_close(&s);
        return -1;
    }
    int64_t row = 0;
    int rc = 0;
    for (uint32_t b = 0; b < s.nblocks && rc == 0; b++) {
        uint64_t *e = s.table + 4 * b;
        int64_t rows = (int64_t)e[2], want = rows * (r->xr + r->yr);
        if ((int64_t)e[1] > *zcap) {
            free(*z);
            *zcap = (int64_t)e[1];
            *z = malloc((size_t)*zcap);
        }
        if (want > *rawcap) {
            free(*raw);
            *rawcap = want;
            *raw = malloc((size_t)want);
        }
        if (!*z || !*raw) {
            snprintf(r->err, sizeof r->err, "records: out of memory");
            *zcap = *rawcap = 0;
            rc = -1;
            break;
        }
        if (fseek(s.f, (long)e[0], SEEK_SET) != 0 || fread(*z, 1, e[1], s.f) != e[1]) {
            snprintf(r->err, sizeof r->err, "records: %s: damaged shard: cannot read block %u (records %lld..%lld)",
                     s.path, b, (long long)row, (long long)(row + rows - 1));
            rc = -1;
            break;
        }
        size_t got = ZSTD_decompressDCtx(dc, *raw, (size_t)want, *z, e[1]);
        if (ZSTD_isError(got) || (int64_t)got != want || kbl_data_hash_bytes(*raw, want, 0) != e[3]) {
            snprintf(r->err, sizeof r->err, "records: %s: damaged shard: block %u (records %lld..%lld) %s", s.path, b,
                     (long long)row, (long long)(row + rows - 1),
                     ZSTD_isError(got) ? ZSTD_getErrorName(got) : "fails its checksum");
            rc = -1;
            break;
        }
        for (int64_t i = 0; i < rows && rc == 0; i++) {
            if (r->stop) {
                rc = -1;
                break;
            }
            rc = take_row(p, *raw + i * r->xr, *raw + rows * r->xr + i * r->yr, r->first[k] + row + i);
        }
        row += rows;
    }
    shard_close(&s);
    return rc;
}

static void *producer_main(void *arg) {
    kbl_data_records *r = arg;
    producer p;
    memset(&p, 0, sizeof p);
    p.r = r;
    int64_t bs = r->bufsize > 1 ? r->bufsize : 1;
    /* the buffer hangs off r too (it outlives no call, but r owns what its thread holds) */
    r->bx = p.bx = malloc((size_t)(bs * r->xr));
    r->by = p.by = malloc((size_t)(bs * (r->yr ? r->yr : 1)));
    r->bid = p.bid = malloc((size_t)bs * sizeof(int64_t));
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    char *raw = NULL, *z = NULL;
    int64_t rawcap = 0, zcap = 0;
    int rc = p.bx && p.by && p.bid && dc ? 0 : -1;
    if (rc) snprintf(r->err, sizeof r->err, "records: out of memory for a shuffle buffer of %lld records",
                     (long long)bs);
    for (int k = 0; rc == 0 && k < r->nshards; k++) rc = read_shard(&p, k, dc, &raw, &rawcap, &z, &zcap);
    while (rc == 0 && p.count > 0) rc = draw(&p);
    if (rc == 0 && !r->drop) rc = flush(&p);
    kbl_release_n(2, p.cur.x, p.cur.y);
    free(p.cur.ids);
    free(p.bx), free(p.by), free(p.bid), free(raw), free(z);
    r->bx = r->by = NULL, r->bid = NULL;
    ZSTD_freeDCtx(dc);
    pthread_mutex_lock(&r->mu);
    r->done = 1;
    if (rc && !r->stop) r->failed = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

kbl_data_records *kbl_data_records_open(const kbl_data_records_spec *sp) {
    if (!sp || sp->nshards < 0 || (sp->nshards > 0 && (!sp->paths || !sp->counts || !sp->sizes || !sp->checksums ||
                                                         !sp->first_ids)) ||
        sp->xndim < 0 || sp->xndim > KBL_MAX_DIMS - 1 || sp->yndim < 0 || sp->yndim > KBL_MAX_DIMS - 1 ||
        sp->batch < 1 || sp->depth < 1 || sp->x_dtype < 0 || sp->x_dtype > KBL_UINT8) {
        kbl_fail("records: bad streamer settings");
        return NULL;
    }
    kbl_data_records *r = calloc(1, sizeof *r);
    if (!r) return kbl_fail("records: out of memory"), NULL;
    r->nshards = sp->nshards;
    r->paths = calloc((size_t)(sp->nshards + 1), sizeof *r->paths);
    r->counts = calloc((size_t)(sp->nshards + 1), sizeof(int64_t));
    r->sizes = calloc((size_t)(sp->nshards + 1), sizeof(int64_t));
    r->first = calloc((size_t)(sp->nshards + 1), sizeof(int64_t));
    r->checks = calloc((size_t)(sp->nshards + 1), sizeof(uint64_t));
    r->ring = calloc((size_t)sp->depth, sizeof *r->ring);
    bool ok = r->paths && r->counts && r->sizes && r->first && r->checks && r->ring;
    for (int k = 0; ok && k < sp->nshards; k++) {
        r->paths[k] = strdup(sp->paths[k]);
        ok = r->paths[k] != NULL;
        r->counts[k] = sp->counts[k], r->sizes[k] = sp->sizes[k], r->first[k] = sp->first_ids[k];
        r->checks[k] = sp->checksums[k];
    }
    r->x_dtype = sp->x_dtype, r->xndim = sp->xndim, r->yndim = sp->yndim;
    r->y_dtype = sp->y_dtype;
    memcpy(r->xshape, sp->xshape, sizeof(int64_t) * (size_t)sp->xndim);
    memcpy(r->yshape, sp->yshape, sizeof(int64_t) * (size_t)sp->yndim);
    r->xnumel = kbl_shape_numel(sp->xndim, r->xshape);
    r->xr = r->xnumel * (int64_t)kbl_dtype_size(sp->x_dtype);
    r->yr = sp->y_dtype >= 0 ? kbl_shape_numel(sp->yndim, r->yshape) * (int64_t)kbl_dtype_size(sp->y_dtype) : 0;
    r->scale = sp->x_scale;
    r->out_dtype = sp->x_scale != 1.0 && !sp->raw ? KBL_FLOAT32 : sp->x_dtype;
    r->batch = sp->batch, r->drop = sp->drop_remainder, r->bufsize = sp->buffer, r->skip = sp->skip_batches;
    r->seed = sp->seed, r->salt = sp->salt, r->epoch = sp->epoch, r->depth = sp->depth;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (!ok || r->xr <= 0) {
        kbl_data_records_close(r);
        kbl_fail(ok ? "records: empty record shape" : "records: out of memory");
        return NULL;
    }
    if (pthread_create(&r->th, NULL, producer_main, r) != 0) {
        kbl_data_records_close(r);
        kbl_fail("records: cannot start a thread");
        return NULL;
    }
    r->started = 1;
    return r;
}

int kbl_data_records_next(kbl_data_records *r, kbl_tensor **x, kbl_tensor **y, int64_t *ids, int64_t *n) {
    *x = NULL, *y = NULL, *n = 0;
    pthread_mutex_lock(&r->mu);
    while (r->head == r->tail && !r->done) pthread_cond_wait(&r->cv, &r->mu);
    int rc = 0;
    if (r->head < r->tail) {
        outbatch *b = &r->ring[r->head % r->depth];
        *x = b->x, *y = b->y, *n = b->n;
        if (ids) memcpy(ids, b->ids, (size_t)b->n * sizeof(int64_t));
        free(b->ids);
        memset(b, 0, sizeof *b);
        r->head++;
        pthread_cond_broadcast(&r->cv);
    } else if (r->failed) {
        rc = kbl_fail("%s", r->err);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void kbl_data_records_close(kbl_data_records *r) {
    if (!r) return;
    if (r->started) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->th, NULL);
    }
    for (int64_t k = r->head; k < r->tail; k++) {
        outbatch *b = &r->ring[k % r->depth];
        kbl_release_n(2, b->x, b->y);
        free(b->ids);
    }
    for (int k = 0; r->paths && k < r->nshards; k++) free(r->paths[k]);
    free(r->paths), free(r->counts), free(r->sizes), free(r->first), free(r->checks), free(r->ring);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
