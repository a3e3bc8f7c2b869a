/* data_cache.c — the files behind pipeline:cache(path): a key (the hash of the
 * source and of the steps before the cache) and tensors compressed with zstd.
 *
 * Layout, host byte order (little-endian on the machines kbl targets):
 *   "KBLCACHE" u32 version u32 key_len key u32 count
 *   count x { i32 dtype, i32 ndim, i64 shape[ndim], u64 raw_bytes, u64 zstd_bytes, zstd frame }
 * Written to "<path>.tmp.<pid>" and renamed, so a reader never sees half a file. */
#include "internal.h"

#include <errno.h>
#include <unistd.h>
#include <zstd.h>

#define CACHE_MAGIC "KBLCACHE"
#define CACHE_VERSION 1u

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

static int get(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n ? 0 : -1; }

int kbl_data_cache_read(const char *path, const char *key, int max, kbl_tensor **out) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        kbl_fail("cache: %s: absent (%s)", path, strerror(errno));
        return 0;
    }
    char magic[8];
    uint32_t version = 0, klen = 0, count = 0;
    int made = 0;
    void *z = NULL;
    char *k = NULL;
    if (get(f, magic, 8) || memcmp(magic, CACHE_MAGIC, 8) != 0 || get(f, &version, 4) || version != CACHE_VERSION ||
        get(f, &klen, 4) || klen > (1u << 20)) {
        kbl_fail("cache: %s: not a kbl cache file of version %u", path, CACHE_VERSION);
        goto fail;
    }
    k = malloc(klen + 1);
    if (!k || get(f, k, klen)) {
        kbl_fail("cache: %s: damaged header", path);
        goto fail;
    }
    k[klen] = 0;
    if (strcmp(k, key) != 0) {
        kbl_fail("cache: %s: stale (made for key %s, want %s)", path, k, key);
        goto fail;
    }
    if (get(f, &count, 4) || (int64_t)count > max) {
        kbl_fail("cache: %s: damaged header (%u tensors, room for %d)", path, count, max);
        goto fail;
    }
    for (; made < (int)count; made++) {
        int32_t head[2];
        int64_t shape[KBL_MAX_DIMS];
        uint64_t raw, zb;
        if (get(f, head, sizeof head) || head[1] < 0 || head[1] > KBL_MAX_DIMS || head[0] < 0 || head[0] > KBL_UINT8 ||
            get(f, shape, (size_t)head[1] * sizeof(int64_t)) || get(f, &raw, 8) || get(f, &zb, 8)) {
            kbl_fail("cache: %s: damaged entry %d", path, made + 1);
            goto fail;
        }
        out[made] = kbl_empty(head[1], shape, head[0]);
        if (!out[made]) goto fail;
        uint64_t want = (uint64_t)kbl_numel(out[made]) * kbl_dtype_size(head[0]);
        z = want == raw ? malloc(zb ? zb : 1) : NULL;
        if (!z || get(f, z, zb)) {
            made++;
            kbl_fail("cache: %s: damaged or truncated entry %d", path, made);
            goto fail;
        }
        size_t r = ZSTD_decompress(kbl_base(out[made]), want, z, zb);
        free(z);
        z = NULL;
        if (ZSTD_isError(r) || r != want) {
            made++;
            kbl_fail("cache: %s: entry %d does not decompress: %s", path, made,
                     ZSTD_isError(r) ? ZSTD_getErrorName(r) : "wrong size");
            goto fail;
        }
    }
    (void)fclose(f); /* read-only: nothing to flush */
    free(k);
    return made;
fail:
    for (int i = 0; i < made; i++) {
        kbl_tensor_release(out[i]);
        out[i] = NULL;
    }
    free(z);
    free(k);
    (void)fclose(f); /* read-only: nothing to flush */
    return 0;
}
