/* checkpoint.c — the checkpoint file (header, JSON metadata, named tensors,
 * zstd-compressed, CRC-checked) and the atomic file writer it is written with.
 *
 * Layout (all integers little-endian):
 *
 *   0  char     magic[8]      "KBLCKPT\0"
 *   8  uint32   version       KBL_CKPT_VERSION
 *  12  uint32   header_bytes  40
 *  16  uint64   compressed    bytes of the zstd frame that follows the header
 *  24  uint64   raw           bytes of the payload once decompressed
 *  32  uint32   payload_crc   CRC-32 (zlib's crc32) of the compressed bytes
 *  36  uint32   header_crc    CRC-32 of bytes 0..35
 *  40  one zstd frame (with zstd's own XXH64 content checksum) of the payload:
 *        uint64 meta_len, meta (JSON text made by Lua), uint32 ntensors, then
 *        per tensor: uint32 name_len, name, uint32 dtype, uint32 ndim,
 *        int64 shape[ndim], the elements in C order.
 *
 * Checksums: zlib's crc32 (a well-kept implementation kbl already links) over
 * the header and over the compressed bytes, so truncation and flipped bytes are
 * found before decompressing; zstd's frame checksum (XXH64) covers the content.
 * Writing goes to "<path>.tmp.<pid>" in the same directory, which is fsync'd,
 * renamed over path, and the directory fsync'd: a crash at any moment leaves
 * the previous file at path intact.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define CKPT_MAGIC "KBLCKPT"   /* with its terminating NUL: 8 bytes */
#define KBL_CKPT_VERSION 1
#define HEADER_BYTES 40
/* A zstd block makes at most 128 KiB from at least 4 bytes (an RLE block). */
#define ZSTD_MAX_RATIO 32768

/* ---- the atomic writer ---------------------------------------------------- */

struct kbl_atomic_file {
    int fd;
    char *path;
    char *tmp;
};

kbl_atomic_file *kbl_atomic_open(const char *path) {
    if (!path || !*path) {
        kbl_fail("atomic write: empty path");
        return NULL;
    }
    kbl_atomic_file *f = calloc(1, sizeof *f);
    size_t n = strlen(path);
    if (f) f->path = malloc(n + 1);
    if (f) f->tmp = malloc(n + 32);
    if (!f || !f->path || !f->tmp) {
        if (f) free(f->path), free(f->tmp);
        free(f);
        kbl_fail("atomic write %s: out of memory", path);
        return NULL;
    }
    memcpy(f->path, path, n + 1);
    snprintf(f->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        kbl_fail("cannot write %s: %s", path, strerror(errno));
        free(f->path), free(f->tmp), free(f);
        return NULL;
    }
    return f;
}

int kbl_atomic_write(kbl_atomic_file *f, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return kbl_fail("cannot write %s: %s", f->path, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_at(kbl_atomic_file *f, const void *data, size_t n, off_t at) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = pwrite(f->fd, p, n, at);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return kbl_fail("cannot write %s: %s", f->path, strerror(errno));
        p += w;
        n -= (size_t)w;
        at += w;
    }
    return 0;
}

void kbl_atomic_abort(kbl_atomic_file *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    free(f->path), free(f->tmp), free(f);
}

/* The directory that holds path, for the fsync that makes the rename durable. */
static int sync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof dir) return 0;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return kbl_fail("cannot open directory %s to sync it: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* some file systems cannot sync a directory; the rename is still atomic there */
    if (rc != 0 && err != EINVAL && err != EROFS)
        return kbl_fail("cannot sync directory %s: %s", dir, strerror(err));
    return 0;
}

int kbl_atomic_commit(kbl_atomic_file *f) {
    int rc = 0;
    if (fsync(f->fd) != 0) rc = kbl_fail("cannot sync %s: %s", f->tmp, strerror(errno));
    if (close(f->fd) != 0 && rc == 0) rc = kbl_fail("cannot close %s: %s", f->tmp, strerror(errno));
    f->fd = -1;
    if (rc == 0 && rename(f->tmp, f->path) != 0)
        rc = kbl_fail("cannot rename %s to %s: %s", f->tmp, f->path, strerror(errno));
    if (rc == 0) rc = sync_parent(f->path);
    else unlink(f->tmp);
    free(f->path), free(f->tmp), free(f);
    return rc;
}

int kbl_write_file_atomic(const char *path, const void *data, size_t n) {
    kbl_atomic_file *f = kbl_atomic_open(path);
    if (!f) return -1;
    if (kbl_atomic_write(f, data, n)) {
        kbl_atomic_abort(f);
        return -1;
    }
    return kbl_atomic_commit(f);
}

/* ---- writing a checkpoint ---------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t crc(uint32_t c, const void *p, size_t n) {
    return (uint32_t)crc32_z(c, p, n);
}

/* A zstd stream writing its frame through an atomic file, counting and
 * checksumming the compressed bytes. */
typedef struct zsink {
    ZSTD_CCtx *cctx;
    kbl_atomic_file *f;
    void *out;
    size_t out_cap;
    uint64_t written, raw;
    uint32_t crc;
} zsink;

static int zsink_push(zsink *z, const void *data, size_t n, ZSTD_EndDirective end) {
    ZSTD_inBuffer in = {data, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {z->out, z->out_cap, 0};
        size_t left = ZSTD_compressStream2(z->cctx, &out, &in, end);
        if (ZSTD_isError(left)) return kbl_fail("checkpoint %s: zstd: %s", z->f->path, ZSTD_getErrorName(left));
        if (out.pos) {
            if (kbl_atomic_write(z->f, z->out, out.pos)) return -1;
            z->crc = crc(z->crc, z->out, out.pos);
            z->written += out.pos;
        }
        bool done = end == ZSTD_e_end ? left == 0 : in.pos == in.size;
        if (done) break;
    }
    z->raw += n;
    return 0;
}

static int zsink_u32(zsink *z, uint32_t v) {
    unsigned char b[4];
    put_u32(b, v);
    return zsink_push(z, b, 4, ZSTD_e_continue);
}
static int zsink_u64(zsink *z, uint64_t v) {
    unsigned char b[8];
    put_u64(b, v);
    return zsink_push(z, b, 8, ZSTD_e_continue);
}

/* Bytes of the payload, pledged to zstd so the frame records its size. */
static uint64_t payload_bytes(size_t meta_len, int n, const char **names, kbl_tensor **tensors) {
    uint64_t b = 8 + meta_len + 4;
    for (int i = 0; i < n; i++)
        b += 4 + strlen(names[i]) + 8 + 8 * (uint64_t)tensors[i]->ndim +
             (uint64_t)kbl_numel(tensors[i]) * kbl_dtype_size(tensors[i]->dtype);
    return b;
}

static int write_payload(zsink *z, const char *meta, size_t meta_len, int n, const char **names,
                         kbl_tensor **tensors) {
    if (zsink_u64(z, meta_len) || zsink_push(z, meta, meta_len, ZSTD_e_continue)) return -1;
    if (zsink_u32(z, (uint32_t)n)) return -1;
    for (int i = 0; i < n; i++) {
        kbl_tensor *c = kbl_host_copy(tensors[i]); /* a CUDA tensor is saved from a host copy */
        if (!c) return -1;
        size_t len = strlen(names[i]);
        int rc = zsink_u32(z, (uint32_t)len) || zsink_push(z, names[i], len, ZSTD_e_continue) ||
                 zsink_u32(z, (uint32_t)c->dtype) || zsink_u32(z, (uint32_t)c->ndim);
        for (int d = 0; d < c->ndim && !rc; d++) rc = zsink_u64(z, (uint64_t)c->shape[d]);
        if (!rc)
            rc = zsink_push(z, kbl_base(c), (size_t)kbl_numel(c) * kbl_dtype_size(c->dtype), ZSTD_e_continue);
        kbl_tensor_release(c);
        if (rc) return -1;
    }
    return zsink_push(z, NULL, 0, ZSTD_e_end);
}

int kbl_checkpoint_save(const char *path, const char *meta, size_t meta_len, int n,
                        const char **names, kbl_tensor **tensors, int level) {
    if (!path) return kbl_fail("checkpoint save: path is NULL");
    if (n < 0 || (n > 0 && (!names || !tensors))) return kbl_fail("checkpoint save %s: bad tensor list", path);
    if (!meta) meta_len = 0;
    for (int i = 0; i < n; i++) {
        if (!names[i] || !*names[i]) return kbl_fail("checkpoint save %s: tensor %d has no name", path, i + 1);
        if (kbl_check_dev("checkpoint save", tensors[i], names[i])) return -1;
    }
    kbl_atomic_file *f = kbl_atomic_open(path);
    if (!f) return -1;
    zsink z = {ZSTD_createCCtx(), f, NULL, ZSTD_CStreamOutSize(), 0, 0, 0};
    z.out = malloc(z.out_cap);
    int rc = 0;
    if (!z.cctx || !z.out) rc = kbl_fail("checkpoint save %s: out of memory", path);
    if (!rc) {
        ZSTD_CCtx_setParameter(z.cctx, ZSTD_c_compressionLevel, level ? level : 3);
        ZSTD_CCtx_setParameter(z.cctx, ZSTD_c_checksumFlag, 1);
        ZSTD_CCtx_setPledgedSrcSize(z.cctx, payload_bytes(meta_len, n, names, tensors));
        unsigned char header[HEADER_BYTES] = {0};
        rc = kbl_atomic_write(f, header, HEADER_BYTES); /* placeholder, filled once sizes are known */
    }
    if (!rc) rc = write_payload(&z, meta, meta_len, n, names, tensors);
    if (!rc) {
        unsigned char h[HEADER_BYTES];
        memcpy(h, CKPT_MAGIC, 8);
        put_u32(h + 8, KBL_CKPT_VERSION);
        put_u32(h + 12, HEADER_BYTES);
        put_u64(h + 16, z.written);
        put_u64(h + 24, z.raw);
        put_u32(h + 32, z.crc);
        put_u32(h + 36, crc(0, h, 36));
        rc = write_at(f, h, HEADER_BYTES, 0);
    }
    ZSTD_freeCCtx(z.cctx);
    free(z.out);
    if (rc) {
        kbl_atomic_abort(f);
        return -1;
    }
    return kbl_atomic_commit(f);
}

/* ---- reading ----------------------------------------------------------------- */

struct kbl_checkpoint {
    char *path;
    unsigned char *raw;
    uint64_t raw_len;
    const char *meta;
    uint64_t meta_len;
    int n;
    const char **names;       /* point into raw; NUL-terminated copies below */
    char **name_copies;
    int32_t *dtypes;
    int32_t *ndims;
    int64_t (*shapes)[KBL_MAX_DIMS];
    const unsigned char **data;
};

/* Reads and checks the header and the compressed bytes; returns the compressed
 * bytes (malloc'd) and fills the sizes, or NULL with a message naming the file. */
static unsigned char *read_verified(const char *path, uint64_t *comp_len, uint64_t *raw_len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        kbl_fail("checkpoint %s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    unsigned char h[HEADER_BYTES];
    unsigned char *buf = NULL;
    const char *what = NULL;
    char msg[256];
    if (fstat(fd, &st) != 0) {
        snprintf(msg, sizeof msg, "cannot stat: %s", strerror(errno));
        what = msg;
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8 || pread(fd, h, 8, 0) != 8) {
        snprintf(msg, sizeof msg, "truncated: %llu bytes, too short for a checkpoint header",
                 (unsigned long long)size);
        what = msg;
        goto out;
    }
    if (memcmp(h, CKPT_MAGIC, 8) != 0) {
        what = "bad magic number: not a kbl checkpoint";
        goto out;
    }
    if (size < HEADER_BYTES || pread(fd, h, HEADER_BYTES, 0) != HEADER_BYTES) {
        snprintf(msg, sizeof msg, "truncated: %llu bytes, shorter than the %d-byte header",
                 (unsigned long long)size, HEADER_BYTES);
        what = msg;
        goto out;
    }
    uint32_t version = get_u32(h + 8);
    if (version > KBL_CKPT_VERSION) {
        snprintf(msg, sizeof msg,
                 "format version %u is newer than this kbl reads (%d): upgrade kbl (or the header is corrupt)",
                 version, KBL_CKPT_VERSION);
        what = msg;
        goto out;
    }
    if (crc(0, h, 36) != get_u32(h + 36) || version == 0 || get_u32(h + 12) != HEADER_BYTES) {
        what = "corrupt header (header checksum mismatch)";
        goto out;
    }
    *comp_len = get_u64(h + 16);
    *raw_len = get_u64(h + 24);
    if (size != HEADER_BYTES + *comp_len) {
        snprintf(msg, sizeof msg, "%s: the file is %llu bytes, its header says %llu",
                 size < HEADER_BYTES + *comp_len ? "truncated" : "trailing bytes",
                 (unsigned long long)size, (unsigned long long)(HEADER_BYTES + *comp_len));
        what = msg;
        goto out;
    }
    buf = malloc(*comp_len ? *comp_len : 1);
    if (!buf) {
        what = "out of memory reading it";
        goto out;
    }
    uint64_t got = 0;
    while (got < *comp_len) {
        ssize_t r = pread(fd, buf + got, *comp_len - got, (off_t)(HEADER_BYTES + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            snprintf(msg, sizeof msg, "read failed: %s", r < 0 ? strerror(errno) : "unexpected end of file");
            what = msg;
            goto out;
        }
        got += (uint64_t)r;
    }
    if (crc(0, buf, *comp_len) != get_u32(h + 32)) {
        what = "corrupt data (payload checksum mismatch)";
        goto out;
    }
out:
    close(fd);
    if (what) {
        free(buf);
        kbl_fail("checkpoint %s: %s", path, what);
        return NULL;
    }
    return buf;
}

int kbl_checkpoint_verify(const char *path) {
    if (!path) return kbl_fail("checkpoint verify: path is NULL");
    uint64_t comp, raw;
    unsigned char *buf = read_verified(path, &comp, &raw);
    if (!buf) return -1;
    free(buf);
    return 0;
}

void kbl_checkpoint_close(kbl_checkpoint *c) {
    if (!c) return;
    if (c->name_copies)
        for (int i = 0; i < c->n; i++) free(c->name_copies[i]);
    free(c->name_copies);
    free(c->names), free(c->dtypes), free(c->ndims), free(c->shapes), free(c->data);
    free(c->raw), free(c->path), free(c);
}

/* A bounds-checked cursor over the decompressed payload. */
typedef struct cursor { const unsigned char *p; uint64_t left; } cursor;
static bool take(cursor *cu, uint64_t n, const unsigned char **out) {
    if (n > cu->left) return false;
    *out = cu->p;
    cu->p += n;
    cu->left -= n;
    return true;
}

/* The message for a payload that does not parse: the file, the byte of the
 * decompressed payload where the field starts, and the field. */
static int malformed(const kbl_checkpoint *c, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int malformed(const kbl_checkpoint *c, const unsigned char *at, const char *fmt, ...) {
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return kbl_fail("checkpoint %s: malformed contents at byte %llu of the %llu decompressed bytes: %s (the "
                    "checksums matched, so it was written wrongly)", c->path, (unsigned long long)(at - c->raw),
                    (unsigned long long)c->raw_len, what);
}

typedef struct named { const char *name; int i; } named;
static int named_cmp(const void *a, const void *b) {
    const named *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x->i > y->i) - (x->i < y->i);
}

/* Two tensors of one name: the second would silently replace the first. */
static int check_unique(kbl_checkpoint *c) {
    named *v = malloc(((size_t)c->n + 1) * sizeof *v);
    if (!v) return kbl_fail("checkpoint %s: out of memory", c->path);
    for (int i = 0; i < c->n; i++) v[i] = (named){c->names[i], i};
    qsort(v, (size_t)c->n, sizeof *v, named_cmp);
    int rc = 0;
    for (int i = 1; i < c->n && rc == 0; i++)
        if (strcmp(v[i - 1].name, v[i].name) == 0)
            rc = kbl_fail("checkpoint %s: tensor name '%s' appears twice (tensors %d and %d of %d)", c->path,
                          v[i].name, v[i - 1].i + 1, v[i].i + 1, c->n);
    free(v);
    return rc;
}

static int parse_payload(kbl_checkpoint *c) {
    cursor cu = {c->raw, c->raw_len};
    const unsigned char *p;
    if (!take(&cu, 8, &p)) return malformed(c, cu.p, "no room for the metadata length");
    c->meta_len = get_u64(p);
    if (!take(&cu, c->meta_len, &p))
        return malformed(c, cu.p - 8, "the metadata length %llu passes the end", (unsigned long long)c->meta_len);
    c->meta = (const char *)p;
    if (!take(&cu, 4, &p)) return malformed(c, cu.p, "no room for the tensor count");
    uint32_t n = get_u32(p);
    if (n > cu.left / 12) /* every entry takes at least 12 bytes */
        return malformed(c, p, "a tensor count of %u cannot fit in the %llu bytes left", n,
                         (unsigned long long)cu.left);
    c->n = (int)n;
    c->names = calloc(n + 1, sizeof *c->names);
    c->name_copies = calloc(n + 1, sizeof *c->name_copies);
    c->dtypes = calloc(n + 1, sizeof *c->dtypes);
    c->ndims = calloc(n + 1, sizeof *c->ndims);
    c->shapes = calloc(n + 1, sizeof *c->shapes);
    c->data = calloc(n + 1, sizeof *c->data);
    if (!c->names || !c->name_copies || !c->dtypes || !c->ndims || !c->shapes || !c->data)
        return kbl_fail("checkpoint %s: out of memory", c->path);
    for (uint32_t i = 0; i < n; i++) {
        if (!take(&cu, 4, &p)) return malformed(c, cu.p, "tensor %u: no room for its name length", i + 1);
        uint32_t len = get_u32(p);
        if (!take(&cu, len, &p)) return malformed(c, p, "tensor %u: the name length %u passes the end", i + 1, len);
        if (len == 0 || memchr(p, 0, len))
            return malformed(c, p, "tensor %u: an empty name or one with a NUL byte", i + 1);
        c->name_copies[i] = malloc(len + 1);
        if (!c->name_copies[i]) return kbl_fail("checkpoint %s: out of memory", c->path);
        memcpy(c->name_copies[i], p, len);
        c->name_copies[i][len] = 0;
        c->names[i] = c->name_copies[i];
        const char *name = c->names[i];
        if (!take(&cu, 8, &p))
            return malformed(c, cu.p, "tensor %u ('%s'): no room for its dtype and ndim", i + 1, name);
        uint32_t dtype = get_u32(p), ndim = get_u32(p + 4);
        if (dtype > KBL_UINT8) return malformed(c, p, "tensor %u ('%s'): unknown dtype code %u", i + 1, name, dtype);
        if (ndim > KBL_MAX_DIMS)
            return malformed(c, p + 4, "tensor %u ('%s'): %u dims (kbl has at most %d)", i + 1, name, ndim,
                             KBL_MAX_DIMS);
        c->dtypes[i] = (int32_t)dtype;
        c->ndims[i] = (int32_t)ndim;
        const unsigned char *shape_at = cu.p;
        for (uint32_t d = 0; d < ndim; d++) {
            if (!take(&cu, 8, &p))
                return malformed(c, cu.p, "tensor %u ('%s'): no room for dim %u", i + 1, name, d + 1);
            uint64_t s = get_u64(p);
            if (s > INT64_MAX) return malformed(c, p, "tensor %u ('%s'): dim %u is %llu", i + 1, name, d + 1,
                                                (unsigned long long)s);
            c->shapes[i][d] = (int64_t)s;
        }
        int64_t nbytes = 0;
        if (kbl_shape_size("the shape field", (int)ndim, c->shapes[i], (int)dtype, NULL, &nbytes)) {
            char why[256];
            snprintf(why, sizeof why, "%s", kbl_last_error());
            return malformed(c, shape_at, "tensor %u ('%s'): %s", i + 1, name, why);
        }
        const unsigned char *data_at = cu.p;
        if (!take(&cu, (uint64_t)nbytes, &p)) {
            char sb[8 * 24];
            return malformed(c, data_at, "tensor %u ('%s'): %s %s needs %lld bytes, %llu are left", i + 1, name,
                             kbl_shape_str(sb, sizeof sb, (int)ndim, c->shapes[i]), kbl_dtype_name((int)dtype),
                             (long long)nbytes, (unsigned long long)cu.left);
        }
        c->data[i] = p;
    }
    if (cu.left != 0) return malformed(c, cu.p, "%llu bytes after the last tensor", (unsigned long long)cu.left);
    return check_unique(c);
}

kbl_checkpoint *kbl_checkpoint_open(const char *path) {
    if (!path) {
        kbl_fail("checkpoint open: path is NULL");
        return NULL;
    }
    uint64_t comp, raw;
    unsigned char *buf = read_verified(path, &comp, &raw);
    if (!buf) return NULL;
    /* the decompressed size the header promises, against the frame, before allocating it */
    unsigned long long fcs = ZSTD_getFrameContentSize(buf, comp);
    if (fcs != raw || raw / ZSTD_MAX_RATIO > comp) {
        free(buf);
        if (fcs != raw)
            kbl_fail("checkpoint %s: corrupt data (the zstd frame at byte %d holds %s, the header's field at byte 24 "
                     "says %llu bytes)", path, HEADER_BYTES,
                     fcs == ZSTD_CONTENTSIZE_ERROR ? "no valid frame header" :
                     fcs == ZSTD_CONTENTSIZE_UNKNOWN ? "no content size" : "another content size",
                     (unsigned long long)raw);
        else
            kbl_fail("checkpoint %s: corrupt header: the field at byte 24 says %llu decompressed bytes, more than "
                     "%llu compressed bytes can hold (zstd expands at most %d times)", path,
                     (unsigned long long)raw, (unsigned long long)comp, ZSTD_MAX_RATIO);
        return NULL;
    }
    kbl_checkpoint *c = calloc(1, sizeof *c);
    if (c) c->path = strdup(path);
    if (c && c->path) c->raw = malloc(raw ? raw : 1);
    if (!c || !c->path || !c->raw) {
        free(buf);
        kbl_checkpoint_close(c);
        kbl_fail("checkpoint %s: out of memory for %llu bytes", path, (unsigned long long)raw);
        return NULL;
    }
    c->raw_len = raw;
    size_t got = ZSTD_decompress(c->raw, raw ? raw : 1, buf, comp);
    free(buf);
    if (ZSTD_isError(got) || got != raw) {
        kbl_fail("checkpoint %s: corrupt data (%s)", path,
                 ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short zstd frame");
        kbl_checkpoint_close(c);
        return NULL;
    }
    if (parse_payload(c)) {
        kbl_checkpoint_close(c);
        return NULL;
    }
    return c;
}

const char *kbl_checkpoint_meta(const kbl_checkpoint *c, size_t *len) {
    if (len) *len = c ? (size_t)c->meta_len : 0;
    return c ? c->meta : NULL;
}

int kbl_checkpoint_count(const kbl_checkpoint *c) { return c ? c->n : 0; }

const char *kbl_checkpoint_name(const kbl_checkpoint *c, int i) {
    if (!c || i < 0 || i >= c->n) {
        kbl_fail("checkpoint: tensor position %d out of range", i);
        return NULL;
    }
    return c->names[i];
}

kbl_tensor *kbl_checkpoint_tensor(const kbl_checkpoint *c, int i) {
    if (!c || i < 0 || i >= c->n) {
        kbl_fail("checkpoint: tensor position %d out of range", i);
        return NULL;
    }
    kbl_tensor *t = kbl_empty(c->ndims[i], c->shapes[i], c->dtypes[i]);
    if (!t) {
        char why[256];
        snprintf(why, sizeof why, "%s", kbl_last_error());
        kbl_fail("checkpoint %s: tensor '%s': %s", c->path, c->names[i], why);
        return NULL;
    }
    memcpy(kbl_base(t), c->data[i], (size_t)kbl_numel(t) * kbl_dtype_size(t->dtype));
    return t;
}

int kbl_checkpoint_format_version(void) { return KBL_CKPT_VERSION; }

/* ---- interrupt requests -------------------------------------------------------
 * SIGINT and SIGTERM during fit ask for a checkpoint, not an abrupt exit: the
 * handler only records the signal; the training loop polls it between steps,
 * writes a checkpoint and stops. A second signal while one is pending takes
 * the default action (a second Ctrl-C kills a stuck run). */

static volatile sig_atomic_t pending_signal;
static struct sigaction old_int, old_term;
static int installed;

static void on_signal(int sig) {
    if (pending_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    pending_signal = sig;
}

int kbl_interrupt_install(void) {
    if (installed) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, &old_int) != 0 || sigaction(SIGTERM, &sa, &old_term) != 0)
        return kbl_fail("cannot install the SIGINT/SIGTERM handlers: %s", strerror(errno));
    pending_signal = 0;
    installed = 1;
    return 0;
}

int kbl_interrupt_pending(void) { return pending_signal; }

void kbl_interrupt_clear(void) { pending_signal = 0; }

void kbl_interrupt_restore(void) {
    if (!installed) return;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    installed = 0;
}
