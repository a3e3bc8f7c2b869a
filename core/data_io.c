/* data_io.c — the data readers' heavy work: IDX files (gzip or plain, through
 * zlib), numeric CSV parsing, 0-based file labels to 1-based int64, and the
 * hashes that key cache files. IDX and CSV are parsed by hand: both are a few
 * lines of format and no well-kept C library reads them into our tensors. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

/* ---- IDX ------------------------------------------------------------------------
 * Big-endian: two zero bytes, a type code, the number of dims, one uint32 per dim,
 * then the values. Type codes: 0x08 ubyte, 0x09 sbyte, 0x0B short, 0x0C int,
 * 0x0D float, 0x0E double. */

static int idx_type(int code, int *dtype, int *esize) {
    switch (code) {
    case 0x08: *dtype = KBL_UINT8; *esize = 1; return 0;
    case 0x09: *dtype = KBL_INT32; *esize = 1; return 0;
    case 0x0B: *dtype = KBL_INT32; *esize = 2; return 0;
    case 0x0C: *dtype = KBL_INT32; *esize = 4; return 0;
    case 0x0D: *dtype = KBL_FLOAT32; *esize = 4; return 0;
    case 0x0E: *dtype = KBL_FLOAT64; *esize = 8; return 0;
    default: return -1;
    }
}

/* Reads up to n bytes (n may pass INT_MAX); returns the count read, and sets
 * *bad when the stream is corrupt (the count is then what came before). */
static int64_t gz_read_all(gzFile f, void *buf, int64_t n, int *bad) {
    int64_t got = 0;
    *bad = 0;
    while (got < n) {
        int64_t chunk = n - got > (1 << 30) ? (1 << 30) : n - got;
        int r = gzread(f, (char *)buf + got, (unsigned)chunk);
        if (r < 0) {
            *bad = 1;
            break;
        }
        if (r == 0) break;
        got += r;
    }
    return got;
}

/* zlib's reason for a corrupt stream. */
static const char *gz_reason(gzFile f) {
    int code;
    const char *m = gzerror(f, &code);
    return m && *m ? m : "unreadable data";
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Converts the big-endian body in place into host values of dtype. */
static void idx_decode(kbl_tensor *t, int code, int64_t n) {
    unsigned char *p = kbl_base(t);
    if (code == 0x09) { /* sbyte: widen from the end so nothing is overwritten early */
        int32_t *o = (int32_t *)p;
        for (int64_t i = n - 1; i >= 0; i--) o[i] = (int32_t)p[i] - (p[i] > 127 ? 256 : 0);
    } else if (code == 0x0B) {
        int32_t *o = (int32_t *)p;
        for (int64_t i = n - 1; i >= 0; i--) o[i] = (int16_t)(p[2 * i] << 8 | p[2 * i + 1]);
    } else if (code == 0x0C || code == 0x0D) {
        uint32_t *o = (uint32_t *)p;
        for (int64_t i = 0; i < n; i++) o[i] = __builtin_bswap32(o[i]);
    } else if (code == 0x0E) {
        uint64_t *o = (uint64_t *)p;
        for (int64_t i = 0; i < n; i++) o[i] = __builtin_bswap64(o[i]);
    }
}

/* Deflate, gzip's method, makes at most 1032 bytes from one compressed byte
 * (zlib's technical notes), so a gzip file of n bytes holds at most this many. */
static int64_t gzip_max_bytes(int64_t n) { return n > INT64_MAX / 1032 ? INT64_MAX : n * 1032; }

/* Checks the first 4 bytes: two zero bytes, a type code, 1 to 8 dims. */
static int idx_magic(const char *path, const unsigned char *head, int *dtype, int *esize) {
    unsigned magic = (unsigned)be32(head);
    if (head[0] != 0 || head[1] != 0)
        return kbl_fail("idx: %s: wrong magic number 0x%08x: bytes 0-1 must be zero (an IDX file starts with "
                        "two zero bytes, a type code and the number of dims)", path, magic);
    if (idx_type(head[2], dtype, esize))
        return kbl_fail("idx: %s: wrong magic number 0x%08x: byte 2 (the type code) is 0x%02x; IDX types are "
                        "0x08 ubyte, 0x09 sbyte, 0x0b short, 0x0c int, 0x0d float and 0x0e double",
                        path, magic, head[2]);
    if (head[3] < 1 || head[3] > KBL_MAX_DIMS)
        return kbl_fail("idx: %s: wrong magic number 0x%08x: byte 3 (the number of dims) is %d; kbl reads 1 to %d",
                        path, magic, head[3], KBL_MAX_DIMS);
    return 0;
}

kbl_tensor *kbl_data_idx_read(const char *path) {
    if (!path) {
        kbl_fail("idx: the path is NULL");
        return NULL;
    }
    struct stat st;
    int64_t file_size = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        kbl_fail("idx: %s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    gzbuffer(f, 1 << 17);
    unsigned char head[4 + 4 * KBL_MAX_DIMS];
    kbl_tensor *t = NULL;
    int dtype = 0, esize = 0, bad = 0;
    int64_t got = gz_read_all(f, head, 4, &bad);
    if (got < 4) {
        if (bad) kbl_fail("idx: %s: corrupt gzip data in the first 4 bytes of data: %s", path, gz_reason(f));
        else kbl_fail("idx: %s: file too short for an IDX header (%lld bytes; it takes at least 8)", path,
                      (long long)got);
        goto done;
    }
    if (idx_magic(path, head, &dtype, &esize)) goto done;
    int code = head[2], ndim = head[3], hb = 4 + 4 * ndim;
    got = gz_read_all(f, head + 4, 4 * ndim, &bad);
    if (got != 4 * ndim) {
        kbl_fail("idx: %s: truncated header: byte 3 says %d dims, so the dim sizes fill bytes 4-%d, but the %s "
                 "ends at byte %lld", path, ndim, hb - 1, gzdirect(f) ? "file" : "decompressed data",
                 (long long)(4 + got));
        goto done;
    }
    int64_t shape[KBL_MAX_DIMS], n = 0;
    for (int d = 0; d < ndim; d++) shape[d] = be32(head + 4 + 4 * d);
    char where[64], sb[8 * 24];
    snprintf(where, sizeof where, "the dim sizes at bytes 4-%d", hb - 1);
    kbl_shape_str(sb, sizeof sb, ndim, shape);
    {
        char op[4200];
        snprintf(op, sizeof op, "idx: %s: %s", path, where);
        if (kbl_shape_size(op, ndim, shape, dtype, &n, NULL)) goto done;
    }
    int64_t want = n * esize; /* esize <= the dtype's size: no overflow */
    /* the bytes the header promises against the bytes the file has, before allocating */
    if (file_size >= 0 && gzdirect(f) && want != file_size - hb) {
        if (want > file_size - hb)
            kbl_fail("idx: %s: truncated body: %s promise %s %s, %lld bytes of data, but the file holds %lld",
                     path, where, sb, kbl_dtype_name(dtype), (long long)want, (long long)(file_size - hb));
        else
            kbl_fail("idx: %s: bytes left after the %lld bytes of data for shape %s: the file holds %lld, "
                     "from byte %lld", path, (long long)want, sb, (long long)(file_size - hb), (long long)hb);
        goto done;
    }
    if (file_size >= 0 && !gzdirect(f) && want > gzip_max_bytes(file_size)) {
        kbl_fail("idx: %s: truncated body: %s promise %s %s, %lld bytes of data, but a gzip file of %lld bytes "
                 "holds at most %lld (deflate expands at most 1032 times)", path, where, sb, kbl_dtype_name(dtype),
                 (long long)want, (long long)file_size, (long long)gzip_max_bytes(file_size));
        goto done;
    }
    t = kbl_empty(ndim, shape, dtype);
    if (!t) {
        char why[512];
        snprintf(why, sizeof why, "%s", kbl_last_error());
        kbl_fail("idx: %s: %s %s: %s", path, sb, kbl_dtype_name(dtype), why);
        goto done;
    }
    got = gz_read_all(f, kbl_base(t), want, &bad);
    if (got != want) {
        if (bad)
            kbl_fail("idx: %s: corrupt gzip data after %lld of the %lld bytes of data: %s", path, (long long)got,
                     (long long)want, gz_reason(f));
        else
            kbl_fail("idx: %s: truncated body: %s promise %s %s, %lld bytes of data, but the file holds %lld",
                     path, where, sb, kbl_dtype_name(dtype), (long long)want, (long long)got);
        kbl_tensor_release(t);
        t = NULL;
        goto done;
    }
    unsigned char extra;
    int r = gzread(f, &extra, 1);
    if (r != 0) {
        if (r > 0)
            kbl_fail("idx: %s: bytes left after the %lld bytes of data for shape %s", path, (long long)want, sb);
        else
            kbl_fail("idx: %s: corrupt gzip data after the %lld bytes of data: %s", path, (long long)want,
                     gz_reason(f));
        kbl_tensor_release(t);
        t = NULL;
        goto done;
    }
    idx_decode(t, code, n);
done:
    gzclose(f);
    return t;
}

int kbl_data_idx_write(const char *path, kbl_tensor *t, int gzip) {
    if (kbl_check_tensor("idx write", t, "tensor")) return -1;
    static const int codes[] = {0x0D, 0x0E, 0x0C, 0, 0x08};
    if (t->dtype == KBL_INT64 || t->ndim < 1)
        return kbl_fail("idx write: %s: IDX holds uint8, int32, float32 or float64 with at least one dim, got %s",
                        path, KBL_DESC(t));
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] > (int64_t)UINT32_MAX)
            return kbl_fail("idx write: %s: dim %d of %s does not fit IDX's 32-bit sizes", path, d + 1, KBL_DESC(t));
    kbl_tensor *c = kbl_contiguous(t);
    if (!c) return -1;
    int64_t n = kbl_numel(c);
    size_t es = kbl_dtype_size(c->dtype);
    unsigned char *buf = malloc(4 + 4 * (size_t)c->ndim + (size_t)n * es);
    if (!buf) {
        kbl_tensor_release(c);
        return kbl_fail("idx write: %s: out of memory", path);
    }
    unsigned char *p = buf;
    *p++ = 0, *p++ = 0, *p++ = (unsigned char)codes[c->dtype], *p++ = (unsigned char)c->ndim;
    for (int d = 0; d < c->ndim; d++) {
        uint32_t v = (uint32_t)c->shape[d];
        *p++ = v >> 24, *p++ = v >> 16, *p++ = v >> 8, *p++ = (unsigned char)v;
    }
    memcpy(p, kbl_base(c), (size_t)n * es);
    for (int64_t i = 0; es > 1 && i < n; i++) { /* big-endian; the body is not aligned (header 4 + 4 ndim) */
        unsigned char *e = p + i * (int64_t)es;
        if (es == 4) {
            uint32_t v;
            memcpy(&v, e, 4);
            v = __builtin_bswap32(v);
            memcpy(e, &v, 4);
        } else {
            uint64_t v;
            memcpy(&v, e, 8);
            v = __builtin_bswap64(v);
            memcpy(e, &v, 8);
        }
    }
    size_t total = (size_t)(p - buf) + (size_t)n * es;
    kbl_tensor_release(c);
    int rc = 0;
    gzFile f = gzopen(path, gzip ? "wb6" : "wbT"); /* T: plain, no gzip wrapper */
    if (!f) rc = kbl_fail("idx write: %s: cannot open: %s", path, strerror(errno));
    else {
        size_t off = 0;
        while (rc == 0 && off < total) {
            unsigned chunk = total - off > (1u << 30) ? (1u << 30) : (unsigned)(total - off);
            if (gzwrite(f, buf + off, chunk) != (int)chunk) rc = kbl_fail("idx write: %s: write failed", path);
            off += chunk;
        }
        if (gzclose(f) != Z_OK && rc == 0) rc = kbl_fail("idx write: %s: close failed", path);
    }
    free(buf);
    return rc;
}

/* ---- CSV ------------------------------------------------------------------------- */

static char *read_file(const char *path, int64_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        kbl_fail("csv: %s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    int64_t n = fseeko(f, 0, SEEK_END) == 0 ? ftello(f) : -1;
    if (n >= 0 && fseeko(f, 0, SEEK_SET) != 0) n = -1;
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        kbl_fail("csv: %s: cannot read", path);
        free(buf);
        (void)fclose(f); /* read-only: nothing to flush */
        return NULL;
    }
    (void)fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Counts the fields of the line [s, e). */
static int64_t count_fields(const char *s, const char *e, char delim) {
    int64_t k = 1;
    for (; s < e; s++) k += *s == delim;
    return k;
}

/* Parses one field [s, e): surrounding blanks and double quotes are dropped. */
static int parse_field(const char *s, const char *e, double *v) {
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if (e - s >= 2 && *s == '"' && e[-1] == '"') s++, e--;
    if (s == e || e - s > 63) return -1;
    char tmp[64];
    memcpy(tmp, s, (size_t)(e - s));
    tmp[e - s] = 0;
    char *end;
    *v = strtod(tmp, &end);
    return *end == 0 ? 0 : -1;
}

kbl_tensor *kbl_data_csv_read(const char *path, char delim, int header) {
    int64_t len;
    char *text = read_file(path, &len);
    if (!text) return NULL;
    int64_t cols = -1, rows = 0, cap = 0, line = 0;
    int skip_header = header != 0;
    double *vals = NULL;
    kbl_tensor *out = NULL;
    const char *p = text, *end = text + len;
    if (len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF)
        p += 3; /* UTF-8 byte order mark */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        if (le > p && le[-1] == '\r') le--;
        line++;
        const char *q = p;
        while (q < le && (*q == ' ' || *q == '\t')) q++;
        if (q == le) { /* blank line */
            p = next;
            continue;
        }
        int64_t k = count_fields(p, le, delim);
        if (cols < 0) cols = k;
        else if (k != cols) {
            kbl_fail("csv: %s:%lld: %lld fields, expected %lld (as in %s)", path, (long long)line, (long long)k,
                     (long long)cols, header ? "the header" : "the first row");
            goto fail;
        }
        if (skip_header) {
            skip_header = 0;
            p = next;
            continue;
        }
        if ((rows + 1) * cols > cap) {
            cap = cap ? cap * 2 : 1024 * cols;
            double *nv = realloc(vals, (size_t)cap * sizeof *vals);
            if (!nv) {
                kbl_fail("csv: %s: out of memory", path);
                goto fail;
            }
            vals = nv;
        }
        const char *fs = p;
        for (int64_t c = 0; c < cols; c++) {
            const char *fe = fs;
            while (fe < le && *fe != delim) fe++;
            if (parse_field(fs, fe, &vals[rows * cols + c])) {
                kbl_fail("csv: %s:%lld: field %lld ('%.*s') is not a number", path, (long long)line, (long long)c + 1,
                         (int)(fe - fs > 40 ? 40 : fe - fs), fs);
                goto fail;
            }
            fs = fe + 1;
        }
        rows++;
        p = next;
    }
    if (rows == 0) {
        kbl_fail("csv: %s: no data rows", path);
        goto fail;
    }
    out = kbl_empty(2, (int64_t[]){rows, cols}, KBL_FLOAT64);
    if (out && rows * cols > 0) memcpy(kbl_base(out), vals, (size_t)(rows * cols) * sizeof *vals);
fail:
    free(vals);
    free(text);
    return out;
}

/* ---- labels ---------------------------------------------------------------------- */

kbl_tensor *kbl_data_labels(kbl_tensor *t, int64_t num_classes, const char *what, int64_t first_line) {
    if (kbl_check_tensor("labels", t, "labels")) return NULL;
    if (t->ndim != 1) {
        kbl_fail("%s: labels must be 1-D, got %s", what, KBL_DESC(t));
        return NULL;
    }
    kbl_tensor *c = kbl_contiguous(t);
    kbl_tensor *out = c ? kbl_empty(1, t->shape, KBL_INT64) : NULL;
    if (!out) {
        kbl_tensor_release(c);
        return NULL;
    }
    int64_t n = t->shape[0], *o = kbl_base(out);
    const void *base = kbl_base(c);
    for (int64_t i = 0; i < n; i++) {
        double v = kbl_load_double(base, c->dtype, i);
        const char *bad = NULL;
        if (v != floor(v)) bad = "is not a whole number";
        else if (v < 0) bad = "is negative";
        else if (num_classes > 0 && v >= (double)num_classes) bad = "is out of range";
        if (bad) {
            char where[48];
            if (first_line > 0) snprintf(where, sizeof where, "line %lld", (long long)(first_line + i));
            else snprintf(where, sizeof where, "position %lld", (long long)(i + 1));
            if (num_classes > 0)
                kbl_fail("%s: label %g at %s %s: labels in files count from 0 and must be below %lld (the number "
                         "of classes)", what, v, where, bad, (long long)num_classes);
            else
                kbl_fail("%s: label %g at %s %s: labels in files count from 0", what, v, where, bad);
            kbl_release_n(2, c, out);
            return NULL;
        }
        o[i] = (int64_t)v + 1;
    }
    kbl_tensor_release(c);
    return out;
}

/* ---- hashes ---------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x) { /* the murmur3 finalizer */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

uint64_t kbl_data_hash_bytes(const void *data, int64_t n, uint64_t h) {
    const unsigned char *p = data;
    /* four lanes of 8 bytes, so the multiplies overlap */
    uint64_t l[4] = {h ^ 0x9E3779B97F4A7C15ull, h + 1, h + 2, h + 3};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * k, 8);
            l[k] = (l[k] ^ w) * 0x9E3779B97F4A7C15ull;
            l[k] = (l[k] << 31) | (l[k] >> 33);
        }
    uint64_t r = mix64(l[0]) ^ mix64(l[1] + 0x1111) ^ mix64(l[2] + 0x2222) ^ mix64(l[3] + 0x3333);
    for (; i < n; i++) r = (r ^ p[i]) * 0x100000001b3ull;
    return mix64(r ^ (uint64_t)n);
}

uint64_t kbl_data_hash_tensor(kbl_tensor *t, uint64_t h) {
    if (kbl_check_tensor("hash", t, "tensor")) return 0;
    kbl_tensor *c = kbl_contiguous(t);
    if (!c) return 0;
    int64_t head[2 + KBL_MAX_DIMS] = {t->dtype, t->ndim};
    memcpy(head + 2, t->shape, (size_t)t->ndim * sizeof *head);
    h = kbl_data_hash_bytes(head, (int64_t)sizeof head, h);
    h = kbl_data_hash_bytes(kbl_base(c), kbl_numel(c) * (int64_t)kbl_dtype_size(c->dtype), h);
    kbl_tensor_release(c);
    return h;
}
