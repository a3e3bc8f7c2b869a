/* data_image.c — image files for data pipelines: decoding PNG, JPEG and BMP with
 * stb_image into float32 batches (resized bilinearly, center-cropped) on the
 * prefetch threads, writing PNG with stb_image_write, and listing directories. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/stat.h>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <stb/stb_image.h>
#ifndef __clang_analyzer__
#include <stb/stb_image_write.h>
#else
/* Only under clang-tidy's analyzer, never in a build: the analyzer reports
 * findings inside stb_image_write.h, third-party code kbl does not change, so
 * kbl's callers are analyzed against these stand-ins of the same signatures. */
typedef void stbi_write_func(void *context, void *data, int size);
static int stbi_write_png_to_func(stbi_write_func *f, void *c, int w, int h, int n, const void *d, int s) {
    (void)f, (void)c, (void)w, (void)h, (void)n, (void)d, (void)s;
    return 0;
}
static int stbi_write_bmp_to_func(stbi_write_func *f, void *c, int w, int h, int n, const void *d) {
    (void)f, (void)c, (void)w, (void)h, (void)n, (void)d;
    return 0;
}
#endif
#pragma GCC diagnostic pop
/* stb declares static functions it leaves undefined in our configuration */
#pragma GCC diagnostic ignored "-Wunused-function"

/* Files larger than this are refused before reading (no image kbl decodes is). */
#define MAX_IMAGE_FILE (1ll << 30)
#define MAX_IMAGE_SIDE 65536

/* ---- bilinear resize ------------------------------------------------------------------
 * PyTorch's interpolate(mode='bilinear', align_corners=False, antialias=False):
 * source coordinate (dst + 0.5) * in / out - 0.5, clamped at 0, in float. */

static void resize_plane(const float *in, int64_t H, int64_t W, float *out, int64_t h, int64_t w) {
    float sy = (float)H / (float)h, sx = (float)W / (float)w;
    for (int64_t i = 0; i < h; i++) {
        float fy = sy * ((float)i + 0.5f) - 0.5f;
        if (fy < 0) fy = 0;
        int64_t y0 = (int64_t)fy, dy = y0 < H - 1 ? 1 : 0;
        float ly = fy - (float)y0, ly0 = 1.0f - ly;
        const float *r0 = in + y0 * W, *r1 = r0 + dy * W;
        for (int64_t j = 0; j < w; j++) {
            float fx = sx * ((float)j + 0.5f) - 0.5f;
            if (fx < 0) fx = 0;
            int64_t x0 = (int64_t)fx, dx = x0 < W - 1 ? 1 : 0;
            float lx = fx - (float)x0, lx0 = 1.0f - lx;
            out[i * w + j] = ly0 * (lx0 * r0[x0] + lx * r0[x0 + dx]) + ly * (lx0 * r1[x0] + lx * r1[x0 + dx]);
        }
    }
}

kbl_tensor *kbl_data_resize(kbl_tensor *x, int64_t h, int64_t w) {
    if (kbl_check_tensor("resize", x, "x")) return NULL;
    if (x->dtype != KBL_FLOAT32 || x->ndim < 2 || x->device != KBL_CPU) {
        kbl_fail("resize: expects a float32 CPU tensor [..., H, W], got %s", KBL_DESC(x));
        return NULL;
    }
    if (h < 1 || w < 1 || h > MAX_IMAGE_SIDE || w > MAX_IMAGE_SIDE) {
        kbl_fail("resize: the size must be 1..%d on each side, got %lldx%lld", MAX_IMAGE_SIDE, (long long)h,
                 (long long)w);
        return NULL;
    }
    kbl_tensor *c = kbl_contiguous(x);
    if (!c) return NULL;
    int nd = c->ndim;
    int64_t H = c->shape[nd - 2], W = c->shape[nd - 1], shape[KBL_MAX_DIMS];
    memcpy(shape, c->shape, sizeof shape);
    shape[nd - 2] = h, shape[nd - 1] = w;
    kbl_tensor *out = H > 0 && W > 0 ? kbl_empty(nd, shape, KBL_FLOAT32) : NULL;
    if (!out && H > 0 && W > 0) {
        kbl_tensor_release(c);
        return NULL;
    }
    if (!out) {
        kbl_tensor_release(c);
        kbl_fail("resize: cannot resize an empty image (%s)", KBL_DESC(x));
        return NULL;
    }
    int64_t planes = H * W > 0 ? kbl_numel(c) / (H * W) : 0;
    const float *in = kbl_base(c);
    float *o = kbl_base(out);
    for (int64_t p = 0; p < planes; p++) resize_plane(in + p * H * W, H, W, o + p * h * w, h, w);
    kbl_tensor_release(c);
    return out;
}

/* ---- reading and decoding one file ------------------------------------------------------ */

/* The whole file in a malloc'ed buffer, or NULL with the reason in err. */
static unsigned char *read_file(const char *path, int64_t *size, char *err, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, cap, "%s: not a regular file", path);
        (void)fclose(f);
        return NULL;
    }
    if (st.st_size <= 0 || st.st_size > MAX_IMAGE_FILE) {
        snprintf(err, cap, "%s: %s (%lld bytes)", path, st.st_size <= 0 ? "empty file" : "file too large",
                 (long long)st.st_size);
        (void)fclose(f);
        return NULL;
    }
    unsigned char *buf = malloc((size_t)st.st_size);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    (void)fclose(f);
    if (!buf || got != (size_t)st.st_size) {
        snprintf(err, cap, "%s: %s", path, buf ? "read error" : "out of memory");
        free(buf);
        return NULL;
    }
    *size = (int64_t)got;
    return buf;
}

/* Pixels of path as 8-bit, interleaved, with `channels` channels (1 grey, 3 RGB). */
static unsigned char *decode_file(const char *path, int channels, int *h, int *w, char *err, size_t cap) {
    int64_t size = 0;
    unsigned char *buf = read_file(path, &size, err, cap);
    if (!buf) return NULL;
    int c = 0;
    if (!stbi_info_from_memory(buf, (int)size, w, h, &c)) {
        snprintf(err, cap, "%s: not a PNG, JPEG or BMP image, or a corrupt one (%s)", path, stbi_failure_reason());
        free(buf);
        return NULL;
    }
    if (*w < 1 || *h < 1 || *w > MAX_IMAGE_SIDE || *h > MAX_IMAGE_SIDE) {
        snprintf(err, cap, "%s: image size %dx%d is out of range", path, *w, *h);
        free(buf);
        return NULL;
    }
    unsigned char *px = stbi_load_from_memory(buf, (int)size, w, h, &c, channels);
    free(buf);
    if (!px) snprintf(err, cap, "%s: corrupt image (%s)", path, stbi_failure_reason());
    return px;
}

kbl_tensor *kbl_data_image_read(const char *path, int channels) {
    if (channels != 1 && channels != 3) {
        kbl_fail("image: channels must be 1 or 3, got %d", channels);
        return NULL;
    }
    char err[1200];
    int h = 0, w = 0;
    unsigned char *px = decode_file(path, channels, &h, &w, err, sizeof err);
    if (!px) {
        kbl_fail("%s", err);
        return NULL;
    }
    int64_t shape[3] = {channels, h, w};
    kbl_tensor *t = kbl_empty(3, shape, KBL_UINT8);
    if (t) {
        uint8_t *o = kbl_base(t);
        for (int64_t k = 0; k < (int64_t)h * w; k++)
            for (int ch = 0; ch < channels; ch++) o[ch * (int64_t)h * w + k] = px[k * channels + ch];
    }
    stbi_image_free(px);
    return t;
}

int kbl_data_image_info(const char *path, int64_t out[3]) {
    char err[1200];
    int64_t size = 0;
    unsigned char *buf = read_file(path, &size, err, sizeof err);
    if (!buf) return kbl_fail("%s", err);
    int w = 0, h = 0, c = 0;
    int ok = stbi_info_from_memory(buf, (int)size, &w, &h, &c);
    free(buf);
    if (!ok) return kbl_fail("%s: not a PNG, JPEG or BMP image, or a corrupt one (%s)", path, stbi_failure_reason());
    out[0] = c, out[1] = h, out[2] = w;
    return 0;
}

/* ---- writing PNG ------------------------------------------------------------------------ */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} membuf;

static void mem_write(void *ctx, void *data, int size) {
    membuf *m = ctx;
    if (m->oom || size <= 0) return;
    if (m->n + (size_t)size > m->cap) {
        size_t cap = (m->cap ? m->cap * 2 : 4096) + (size_t)size;
        unsigned char *p = realloc(m->p, cap);
        if (!p) {
            m->oom = 1;
            return;
        }
        m->p = p, m->cap = cap;
    }
    memcpy(m->p + m->n, data, (size_t)size);
    m->n += (size_t)size;
}

enum { FMT_PNG, FMT_BMP };

/* img uint8 [C, H, W] or [H, W] (C 1, 3 or 4) encoded (PNG or BMP) into a membuf. (No JPEG:
 * stb_image_write's JPEG coder shifts signed ints past their range, which UBSan reports.) */
static int encode(kbl_tensor *img, int fmt, membuf *m) {
    if (kbl_check_tensor("image", img, "image")) return -1;
    if (img->dtype != KBL_UINT8 || (img->ndim != 2 && img->ndim != 3) || img->device != KBL_CPU)
        return kbl_fail("image: expects a uint8 CPU image [C, H, W] or [H, W], got %s", KBL_DESC(img));
    int64_t c = img->ndim == 3 ? img->shape[0] : 1, h = img->shape[img->ndim - 2], w = img->shape[img->ndim - 1];
    if ((c != 1 && c != 3 && c != 4) || h < 1 || w < 1 || h > MAX_IMAGE_SIDE || w > MAX_IMAGE_SIDE)
        return kbl_fail("image: expects 1, 3 or 4 channels and 1..%d pixels a side, got %s", MAX_IMAGE_SIDE,
                        KBL_DESC(img));
    kbl_tensor *t = kbl_contiguous(img);
    if (!t) return -1;
    unsigned char *px = malloc((size_t)(c * h * w));
    int rc = -1;
    if (px) {
        const uint8_t *s = kbl_base(t);
        for (int64_t k = 0; k < h * w; k++)
            for (int64_t ch = 0; ch < c; ch++) px[k * c + ch] = s[ch * h * w + k];
        int ok = fmt == FMT_BMP ? stbi_write_bmp_to_func(mem_write, m, (int)w, (int)h, (int)c, px)
                                : stbi_write_png_to_func(mem_write, m, (int)w, (int)h, (int)c, px, (int)(w * c));
        if (ok && !m->oom) rc = 0;
        else kbl_fail("image: cannot encode the image (out of memory)");
    } else {
        kbl_fail("image: out of memory");
    }
    free(px);
    kbl_tensor_release(t);
    return rc;
}

int64_t kbl_data_image_png(kbl_tensor *img, uint8_t *buf, int64_t cap) {
    membuf m = {0};
    if (encode(img, FMT_PNG, &m)) {
        free(m.p);
        return -1;
    }
    int64_t n = (int64_t)m.n;
    if (buf && cap >= n) memcpy(buf, m.p, m.n);
    free(m.p);
    return n;
}

int kbl_data_image_write(const char *path, kbl_tensor *img) {
    const char *dot = strrchr(path, '.');
    int fmt = -1;
    if (dot && (!strcasecmp(dot, ".png"))) fmt = FMT_PNG;
    if (dot && (!strcasecmp(dot, ".bmp"))) fmt = FMT_BMP;
    if (fmt < 0) return kbl_fail("image: %s: the name must end in .png or .bmp", path);
    membuf m = {0};
    if (encode(img, fmt, &m)) {
        free(m.p);
        return -1;
    }
    /* plain writes: an export makes tens of thousands of files, an fsync each would crawl */
    FILE *f = fopen(path, "wb");
    int rc = f ? 0 : kbl_fail("image: %s: cannot write: %s", path, strerror(errno));
    if (f && fwrite(m.p, 1, m.n, f) != m.n) rc = kbl_fail("image: %s: write error: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && rc == 0) rc = kbl_fail("image: %s: write error: %s", path, strerror(errno));
    free(m.p);
    return rc;
}

/* ---- listing a directory ------------------------------------------------------------------ */

int64_t kbl_data_list_dir(const char *path, char *buf, int64_t cap) {
    DIR *d = opendir(path);
    if (!d) return kbl_fail("%s: cannot list the directory: %s", path, strerror(errno));
    int64_t need = 0;
    struct dirent *e;
    char full[4096];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ., .. and hidden files */
        char kind = 'f';
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) kind = 'd';
        int64_t len = (int64_t)strlen(e->d_name) + 2;
        if (buf && need + len <= cap) {
            buf[need] = kind;
            memcpy(buf + need + 1, e->d_name, (size_t)len - 2);
            buf[need + len - 1] = '\n';
        }
        need += len;
    }
    closedir(d);
    return need;
}

/* ---- a set of image files, decoded into batches ------------------------------------------ */

struct kbl_data_images {
    atomic_int refs;
    int64_t n;
    char **paths;
    int channels, resize, skip_bad;
    int64_t h, w, crop_h, crop_w; /* decoded size, then the center crop (0: none) */
    pthread_mutex_t mu;
    int64_t skipped;
    char first_bad[1200];
};

kbl_data_images *kbl_data_images_new(int64_t n, const char *const *paths, int channels, int64_t h, int64_t w,
                                     int resize, int64_t crop_h, int64_t crop_w, int skip_bad) {
    if (n < 0 || (n > 0 && !paths)) {
        kbl_fail("image_folder: bad file list (%lld files)", (long long)n);
        return NULL;
    }
    if (channels != 1 && channels != 3) {
        kbl_fail("image_folder: channels must be 1 or 3, got %d", channels);
        return NULL;
    }
    if (h < 1 || w < 1 || h > MAX_IMAGE_SIDE || w > MAX_IMAGE_SIDE || crop_h < 0 || crop_w < 0 || crop_h > h ||
        crop_w > w) {
        kbl_fail("image_folder: bad sizes: %lldx%lld cropped to %lldx%lld", (long long)h, (long long)w,
                 (long long)crop_h, (long long)crop_w);
        return NULL;
    }
    kbl_data_images *im = calloc(1, sizeof *im);
    if (im) im->paths = calloc((size_t)(n > 0 ? n : 1), sizeof *im->paths);
    if (!im || !im->paths) {
        if (im) free(im->paths);
        free(im);
        kbl_fail("image_folder: out of memory");
        return NULL;
    }
    atomic_init(&im->refs, 1);
    im->n = n;
    for (int64_t i = 0; i < n; i++) {
        im->paths[i] = strdup(paths[i] ? paths[i] : "");
        if (!im->paths[i]) {
            im->n = i;
            kbl_data_images_free(im);
            kbl_fail("image_folder: out of memory");
            return NULL;
        }
    }
    im->channels = channels, im->resize = resize, im->skip_bad = skip_bad;
    im->h = h, im->w = w, im->crop_h = crop_h ? crop_h : h, im->crop_w = crop_w ? crop_w : w;
    pthread_mutex_init(&im->mu, NULL);
    return im;
}

kbl_data_images *kbl_data_images_retain(kbl_data_images *im) {
    if (im) atomic_fetch_add(&im->refs, 1);
    return im;
}

void kbl_data_images_free(kbl_data_images *im) {
    if (!im || atomic_fetch_sub(&im->refs, 1) != 1) return;
    for (int64_t i = 0; i < im->n; i++) free(im->paths[i]);
    free(im->paths);
    pthread_mutex_destroy(&im->mu);
    free(im);
}

int64_t kbl_data_images_take_skipped(kbl_data_images *im, char *buf, int64_t cap) {
    pthread_mutex_lock(&im->mu);
    int64_t n = im->skipped;
    if (buf && cap > 0) snprintf(buf, (size_t)cap, "%s", im->first_bad);
    im->skipped = 0;
    im->first_bad[0] = 0;
    pthread_mutex_unlock(&im->mu);
    return n;
}

/* Scratch floats for decoding, grown as needed. */
typedef struct {
    float *p;
    int64_t n;
} scratch;

static float *scratch_get(scratch *s, int64_t n) {
    if (n > s->n) {
        free(s->p);
        s->p = malloc((size_t)n * sizeof(float));
        s->n = s->p ? n : 0;
    }
    return s->p;
}

/* Decodes file id into dst [C, crop_h, crop_w] floats in [0, 1]. Returns 0, or
 * -1 with the reason in err (-2: out of memory). */
static int decode_into(kbl_data_images *im, int64_t id, float *dst, scratch *sc, char *err, size_t cap) {
    const char *path = im->paths[id];
    int h = 0, w = 0, C = im->channels;
    unsigned char *px = decode_file(path, C, &h, &w, err, cap);
    if (!px) return -1;
    if (!im->resize && (h != im->h || w != im->w)) {
        snprintf(err, cap, "%s: image is %dx%d, the folder's first image %lldx%lld: give size = {h, w} to resize",
                 path, h, w, (long long)im->h, (long long)im->w);
        stbi_image_free(px);
        return -1;
    }
    int64_t hw = (int64_t)h * w, oh = im->h, ow = im->w;
    float *planes = scratch_get(sc, C * (hw + oh * ow));
    if (!planes) {
        stbi_image_free(px);
        return -2;
    }
    float *sized = planes + C * hw;
    for (int64_t k = 0; k < hw; k++)
        for (int c = 0; c < C; c++) planes[c * hw + k] = (float)px[k * C + c] * (1.0f / 255.0f);
    stbi_image_free(px);
    if (h != oh || w != ow) {
        for (int c = 0; c < C; c++) resize_plane(planes + c * hw, h, w, sized + c * oh * ow, oh, ow);
        planes = sized;
    }
    int64_t ch = im->crop_h, cw = im->crop_w, y0 = (oh - ch) / 2, x0 = (ow - cw) / 2;
    for (int c = 0; c < C; c++)
        for (int64_t i = 0; i < ch; i++)
            memcpy(dst + (c * ch + i) * cw, planes + c * oh * ow + (y0 + i) * ow + x0, (size_t)cw * sizeof(float));
    return 0;
}

/* A batch job whose rows are image files: decode, gather the labels of the
 * rows kept, then the ops. */
int kbl_data_images_job_run(const kbl_data_job *job, kbl_tensor **x_out, kbl_tensor **y_out) {
    kbl_data_images *im = job->images;
    *x_out = NULL;
    if (y_out) *y_out = NULL;
    int64_t n = job->n, C = im->channels, ch = im->crop_h, cw = im->crop_w, per = C * ch * cw;
    if (n < 0 || (n > 0 && !job->ids)) return kbl_fail("image_folder: bad row list (%lld rows)", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (job->ids[i] < 0 || job->ids[i] >= im->n)
            return kbl_fail("image_folder: row %lld is out of range for %lld files", (long long)job->ids[i],
                            (long long)im->n);
    int64_t shape[4] = {n, C, ch, cw};
    kbl_tensor *x = kbl_empty(4, shape, KBL_FLOAT32), *y = NULL;
    size_t nb = (size_t)(n > 0 ? n : 1) * sizeof(int64_t);
    int64_t *ids = malloc(nb), *eps = malloc(nb), kept = 0;
    scratch sc = {0};
    char err[1200];
    if (!x || !ids || !eps) goto oom;
    float *o = kbl_base(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t id = job->ids[i];
        int rc = decode_into(im, id, o + kept * per, &sc, err, sizeof err);
        if (rc == -2) goto oom;
        if (rc == 0) {
            ids[kept] = id;
            eps[kept] = job->epochs ? job->epochs[i] : 0;
            kept++;
            continue;
        }
        if (!im->skip_bad) {
            kbl_fail("image_folder: %s", err);
            goto fail;
        }
        pthread_mutex_lock(&im->mu);
        if (im->skipped++ == 0) snprintf(im->first_bad, sizeof im->first_bad, "%s", err);
        pthread_mutex_unlock(&im->mu);
    }
    free(sc.p);
    sc.p = NULL;
    if (kept < n) { /* the rows kept, as a tensor of their own */
        int64_t s2[4] = {kept, C, ch, cw};
        kbl_tensor *x2 = kbl_empty(4, s2, KBL_FLOAT32);
        if (!x2) goto fail;
        if (kept > 0) memcpy(kbl_base(x2), kbl_base(x), (size_t)(kept * per) * sizeof(float));
        kbl_tensor_release(x);
        x = x2;
    }
    if (job->y) {
        y = kbl_data_gather(job->y, kept, ids, job->y->dtype, 1.0);
        if (!y) goto fail;
    }
    for (int i = 0; i < job->nops; i++) {
        kbl_tensor *xn, *yn;
        if (kbl_data_augment(&job->ops[i], x, y, ids, eps, 1, &xn, &yn)) goto fail;
        kbl_release_n(2, x, y);
        x = xn, y = yn;
    }
    free(ids), free(eps);
    *x_out = x;
    if (y_out) *y_out = y;
    else kbl_tensor_release(y);
    return 0;
oom:
    kbl_fail("image_folder: out of memory");
fail:
    free(sc.p), free(ids), free(eps);
    kbl_release_n(2, x, y);
    return -1;
}
