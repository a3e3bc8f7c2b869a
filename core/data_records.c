/* data_records.c — the record shard format, for datasets larger than memory:
 * writing one shard, opening and checking one, reading one block back.
 * data_records_stream.c streams shards through a shuffle buffer.
 *
 * Shard layout, little-endian:
 *   "KBLRECS1" u32 version u32 nblocks u64 count u64 x_row_bytes u64 y_row_bytes
 *   nblocks x { u64 offset, u64 zstd_bytes, u64 rows, u64 hash of the raw block }
 *   blocks: zstd frames of rows x rows then their y rows.
 * The index (index.json, written by kbl.data.records) lists each shard with its
 * count, its size in bytes and the hash of its header and block table. */
#include "internal.h"
#include "data_records.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
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
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return kbl_fail("records: zstd level %d is outside zstd's %d..%d (0: its default)", level, ZSTD_minCLevel(),
                        ZSTD_maxCLevel());
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
        ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
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

int kbl_records_shard_open(kbl_records_shard *s, const char *path, int64_t count, int64_t size, uint64_t checksum,
                           int64_t xr, int64_t yr, char *err, size_t cap) {
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
    s->count = count, s->size = size;
    /* Mapped, blocks are decompressed straight from the page cache instead of
     * copied out of it first (a third of the reading thread's time with
     * pread). Where mapping fails, pread does the reading. */
    void *m = size > 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fileno(s->f), 0) : MAP_FAILED;
    if (m != MAP_FAILED) {
        s->map = m;
        (void)madvise(m, (size_t)size, MADV_SEQUENTIAL);
    }
    return 0;
}

void kbl_records_shard_close(kbl_records_shard *s) {
    if (s->map) (void)munmap((void *)s->map, (size_t)s->size);
    if (s->f) (void)fclose(s->f);
    free(s->table);
    memset(s, 0, sizeof *s);
}

/* ---- one block, read and checked ------------------------------------------------------------ */

/* Block buffers come from kbl's caching allocator: the next epoch's streamer
 * gets them back without faulting in fresh pages. */
static int grow(char **p, int64_t *cap, int64_t n) {
    if (n <= *cap) return 0;
    kbl_free(*p, *cap);
    *p = kbl_alloc(n);
    *cap = *p ? n : 0;
    return *p ? 0 : -1;
}

void kbl_records_block_free(kbl_records_block *bb) {
    kbl_free(bb->z, bb->zcap);
    kbl_free(bb->raw, bb->rawcap);
    memset(bb, 0, sizeof *bb);
}

static int read_at(int fd, char *p, uint64_t n, uint64_t off) {
    while (n > 0) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k, n -= (uint64_t)k, off += (uint64_t)k;
    }
    return 0;
}

/* pread, so that several threads share the file. */
int kbl_records_decode_block(ZSTD_DCtx *dc, kbl_records_block *bb, const kbl_records_shard *s, const uint64_t *e,
                             uint32_t b, int64_t row0, int64_t rowbytes, char *err, size_t cap) {
    int64_t rows = (int64_t)e[2], want = rows * rowbytes;
    const char *path = s->path;
    if ((!s->map && grow(&bb->z, &bb->zcap, (int64_t)e[1])) || grow(&bb->raw, &bb->rawcap, want))
        return snprintf(err, cap, "records: out of memory"), -1;
    /* A mapped shard cut short since it was opened would fault (SIGBUS) when
     * read past its new end: its size is checked before each block. */
    struct stat st;
    bool cut = s->map && (fstat(fileno(s->f), &st) != 0 || (uint64_t)st.st_size < e[0] + e[1]);
    if (cut || (!s->map && read_at(fileno(s->f), bb->z, e[1], e[0])))
        return snprintf(err, cap, "records: %s: damaged shard: cannot read block %u (records %lld..%lld)%s", path, b,
                        (long long)row0, (long long)(row0 + rows - 1), cut ? ": the file was cut short" : ""), -1;
    const char *z = s->map ? s->map + e[0] : bb->z;
    size_t got = ZSTD_decompressDCtx(dc, bb->raw, (size_t)want, z, e[1]);
    if (ZSTD_isError(got) || (int64_t)got != want || kbl_data_hash_bytes(bb->raw, want, 0) != e[3])
        return snprintf(err, cap, "records: %s: damaged shard: block %u (records %lld..%lld) %s", path, b,
                        (long long)row0, (long long)(row0 + rows - 1),
                        ZSTD_isError(got) ? ZSTD_getErrorName(got) : "fails its checksum"), -1;
    return 0;
}
