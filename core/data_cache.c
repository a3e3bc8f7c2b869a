/* data_cache.c — the files behind pipeline:cache(path): a key (the hash of the
 * source and of the steps before the cache) and tensors compressed with zstd.
 *
 * Layout, host byte order (little-endian on the machines kbl targets):
 *   "KBLCACHE" u32 version u32 key_len key u32 count
 *   count x { i32 dtype, i32 ndim, i64 shape[ndim], u64 raw_bytes, u64 zstd_bytes, zstd frame }
 * Written to "<path>.tmp.<pid>" and renamed, so a reader never sees half a file. */
#include "internal.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define CACHE_MAGIC "KBLCACHE"
#define CACHE_VERSION 1u
/* A zstd block makes at most 128 KiB from at least 4 bytes (an RLE block). */
#define ZSTD_MAX_RATIO 32768

static int put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

static int write_tensor(FILE *f, ZSTD_CCtx *cc, kbl_tensor *t) {
    kbl_tensor *c = kbl_contiguous(t);
    if (!c) return -1;
    int32_t head[2] = {c->dtype, c->ndim};
    uint64_t raw = (uint64_t)kbl_numel(c) * kbl_dtype_size(c->dtype);
    size_t bound = ZSTD_compressBound((size_t)raw);
    void *z = malloc(bound ? bound : 1);
    int rc = -1;
    if (z) {
        size_t zn = ZSTD_compress2(cc, z, bound, kbl_base(c), (size_t)raw);
        uint64_t zb = (uint64_t)zn;
        if (!ZSTD_isError(zn) && put(f, head, sizeof head) == 0 &&
            put(f, c->shape, (size_t)c->ndim * sizeof(int64_t)) == 0 && put(f, &raw, 8) == 0 &&
            put(f, &zb, 8) == 0 && put(f, z, zn) == 0)
            rc = 0;
        else if (ZSTD_isError(zn))
            kbl_fail("cache: zstd: %s", ZSTD_getErrorName(zn));
    }
    free(z);
    kbl_tensor_release(c);
    return rc;
}

int kbl_data_cache_write(const char *path, const char *key, int n, kbl_tensor **tensors, int level) {
    for (int i = 0; i < n; i++)
        if (kbl_check_tensor("cache", tensors[i], "tensor")) return -1;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return kbl_fail("cache: %s: cannot write: %s", path, strerror(errno));
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level > 0 ? level : 3);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_nbWorkers, kbl_threads() > 1 ? 2 : 0); /* ignored without MT */
    uint32_t version = CACHE_VERSION, klen = (uint32_t)strlen(key), count = (uint32_t)n;
    int rc = put(f, CACHE_MAGIC, 8) | put(f, &version, 4) | put(f, &klen, 4) | put(f, key, klen) | put(f, &count, 4);
    for (int i = 0; rc == 0 && i < n; i++) rc = write_tensor(f, cc, tensors[i]);
    ZSTD_freeCCtx(cc);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) rc = -1;
    if (fclose(f) != 0) rc = -1;
    if (rc == 0 && rename(tmp, path) != 0) rc = -1;
    if (rc) {
        int e = errno;
        (void)remove(tmp); /* best effort: the error reported is the write's */
        if (!strstr(kbl_last_error(), "zstd")) kbl_fail("cache: %s: write failed: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

/* A reader over the cache file that knows its offset and the bytes left, so a
 * size read from the file is checked against the file before it is used. */
typedef struct reader {
    FILE *f;
    const char *path;
    int64_t off, size;
} reader;

static int get(reader *r, void *p, size_t n) {
    if ((int64_t)n > r->size - r->off || fread(p, 1, n, r->f) != n) return -1;
    r->off += (int64_t)n;
    return 0;
}

/* A damaged file: the message names the file, the byte offset and the field. */
static int damaged(const reader *r, int64_t at, const char *what) {
    return kbl_fail("cache: %s: damaged at byte %lld: %s", r->path, (long long)at, what);
}

/* Reads entry i (from 1) into *out: header, shape, sizes, then the zstd frame,
 * each checked against what the file holds before anything is allocated. */
static int read_entry(reader *r, int i, kbl_tensor **out) {
    char what[320], sb[8 * 24];
    int32_t head[2];
    int64_t shape[KBL_MAX_DIMS], at = r->off;
    uint64_t raw, zb;
    if (get(r, head, sizeof head)) {
        snprintf(what, sizeof what, "entry %d: truncated in its dtype and ndim", i);
        return damaged(r, at, what);
    }
    if (head[0] < 0 || head[0] > KBL_UINT8 || head[1] < 0 || head[1] > KBL_MAX_DIMS) {
        snprintf(what, sizeof what, "entry %d: dtype %d, ndim %d (kbl has dtypes 0-%d and 0-%d dims)", i, head[0],
                 head[1], KBL_UINT8, KBL_MAX_DIMS);
        return damaged(r, at, what);
    }
    at = r->off;
    if (get(r, shape, (size_t)head[1] * sizeof(int64_t)) || get(r, &raw, 8) || get(r, &zb, 8)) {
        snprintf(what, sizeof what, "entry %d: truncated in its shape and sizes", i);
        return damaged(r, at, what);
    }
    int64_t nbytes = 0;
    if (kbl_shape_size("the shape field", head[1], shape, head[0], NULL, &nbytes)) {
        snprintf(what, sizeof what, "entry %d: %s", i, kbl_last_error());
        return damaged(r, at, what);
    }
    kbl_shape_str(sb, sizeof sb, head[1], shape);
    if (raw != (uint64_t)nbytes) {
        snprintf(what, sizeof what, "entry %d: %s %s is %lld bytes, the size field says %llu", i, sb,
                 kbl_dtype_name(head[0]), (long long)nbytes, (unsigned long long)raw);
        return damaged(r, r->off - 16, what);
    }
    if (zb > (uint64_t)(r->size - r->off)) {
        snprintf(what, sizeof what, "entry %d: truncated: a zstd frame of %llu bytes, but the file holds %lld more", i,
                 (unsigned long long)zb, (long long)(r->size - r->off));
        return damaged(r, r->off - 8, what);
    }
    at = r->off;
    void *z = malloc(zb ? (size_t)zb : 1);
    if (!z) return kbl_fail("cache: %s: out of memory", r->path);
    int rc = -1;
    if (get(r, z, (size_t)zb)) {
        snprintf(what, sizeof what, "entry %d: cannot read its zstd frame", i);
        damaged(r, at, what);
    } else if (raw / ZSTD_MAX_RATIO > zb ||
               (ZSTD_getFrameContentSize(z, (size_t)zb) != raw &&
                ZSTD_getFrameContentSize(z, (size_t)zb) != ZSTD_CONTENTSIZE_UNKNOWN)) {
        snprintf(what, sizeof what, "entry %d: the zstd frame does not hold the %llu bytes of %s %s", i,
                 (unsigned long long)raw, sb, kbl_dtype_name(head[0]));
        damaged(r, at, what);
    } else if ((*out = kbl_empty(head[1], shape, head[0])) == NULL) {
        snprintf(what, sizeof what, "entry %d: %s", i, kbl_last_error());
        kbl_fail("cache: %s: %s", r->path, what);
    } else {
        size_t got = ZSTD_decompress(kbl_base(*out), (size_t)nbytes, z, (size_t)zb);
        if (ZSTD_isError(got) || got != (size_t)nbytes) {
            snprintf(what, sizeof what, "entry %d does not decompress: %s", i,
                     ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size");
            damaged(r, at, what);
            kbl_tensor_release(*out);
            *out = NULL;
        } else {
            rc = 0;
        }
    }
    free(z);
    return rc;
}

int kbl_data_cache_read(const char *path, const char *key, int max, kbl_tensor **out) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        kbl_fail("cache: %s: absent (%s)", path, strerror(errno));
        return 0;
    }
    struct stat st;
    reader r = {f, path, 0, fstat(fileno(f), &st) == 0 ? (int64_t)st.st_size : 0};
    char magic[8];
    uint32_t version = 0, klen = 0, count = 0;
    int made = 0;
    char *k = NULL;
    if (get(&r, magic, 8) || memcmp(magic, CACHE_MAGIC, 8) != 0 || get(&r, &version, 4) || version != CACHE_VERSION) {
        kbl_fail("cache: %s: not a kbl cache file of version %u (bytes 0-11: magic and version)", path, CACHE_VERSION);
        goto fail;
    }
    if (get(&r, &klen, 4) || klen > (1u << 20) || klen > r.size - r.off) {
        damaged(&r, 12, "the key length passes the end of the file");
        goto fail;
    }
    k = malloc(klen + 1);
    if (!k || get(&r, k, klen)) {
        damaged(&r, 16, "cannot read the key");
        goto fail;
    }
    k[klen] = 0;
    if (strcmp(k, key) != 0) {
        kbl_fail("cache: %s: stale (made for key %s, want %s)", path, k, key);
        goto fail;
    }
    if (get(&r, &count, 4) || count == 0 || (int64_t)count > max) {
        char what[96];
        snprintf(what, sizeof what, "the tensor count is %u, room for %d", count, max);
        damaged(&r, 16 + (int64_t)klen, what);
        goto fail;
    }
    for (; made < (int)count; made++)
        if (read_entry(&r, made + 1, &out[made])) goto fail;
    if (r.off != r.size) {
        damaged(&r, r.off, "bytes after the last entry");
        goto fail;
    }
    (void)fclose(f); /* read-only: nothing to flush */
    free(k);
    return made;
fail:
    for (int i = 0; i < made; i++) {
        kbl_tensor_release(out[i]);
        out[i] = NULL;
    }
    free(k);
    (void)fclose(f); /* read-only: nothing to flush */
    return 0;
}
