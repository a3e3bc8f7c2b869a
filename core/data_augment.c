/* data_augment.c — the data pipeline's random choices and its batched
 * augmentation kernels (normalize, flip, crop with padding, translation,
 * gaussian noise, random erasing, mixup) over x [B, ..., H, W] float32.
 *
 * Every random number is kbl_philox(key, epoch, id << 24 | draw), key mixing the
 * pipeline's seed with the step's salt: a pure function of (seed, step, epoch,
 * element, draw), so batches do not depend on thread count, prefetch depth or
 * where a run was resumed. */
#include "internal.h"

#include <math.h>

#define DRAW_BITS 24

static inline uint64_t mix64(uint64_t x) { /* the murmur3 finalizer */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static inline uint64_t op_key(uint64_t seed, int32_t salt) {
    return mix64(seed ^ ((uint64_t)(uint32_t)salt + 1) * 0x9E3779B97F4A7C15ull);
}

static inline void draw(uint64_t key, int64_t epoch, int64_t id, uint64_t j, uint32_t w[4]) {
    kbl_philox(key, (uint64_t)epoch, ((uint64_t)id << DRAW_BITS) | j, w);
}

static inline uint64_t u64(const uint32_t w[4]) { return ((uint64_t)w[0] << 32) | w[1]; }
static inline double u01(uint32_t w) { return (double)w * (1.0 / 4294967296.0); }          /* [0, 1) */
static inline double u01_open(uint32_t w) { return ((double)w + 1.0) * (1.0 / 4294967296.0); } /* (0, 1] */

void kbl_data_draw(uint64_t seed, int32_t salt, uint64_t epoch, int64_t id, uint64_t j, uint32_t out[4]) {
    draw(op_key(seed, salt), (int64_t)epoch, id, j, out);
}

int64_t kbl_data_randint(uint64_t seed, int32_t salt, uint64_t epoch, int64_t id, int64_t j, int64_t n) {
    if (n <= 0) return 0;
    uint32_t w[4];
    draw(op_key(seed, salt), (int64_t)epoch, id, (uint64_t)j, w);
    return (int64_t)(u64(w) % (uint64_t)n);
}

kbl_tensor *kbl_data_permutation(int64_t n, uint64_t seed, int32_t salt, uint64_t epoch) {
    if (n < 0) {
        kbl_fail("permutation: negative size %lld", (long long)n);
        return NULL;
    }
    kbl_tensor *t = kbl_empty(1, &n, KBL_INT64);
    if (!t) return NULL;
    int64_t *p = kbl_base(t);
    for (int64_t i = 0; i < n; i++) p[i] = i;
    uint64_t key = op_key(seed, salt);
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates, draw i for position i */
        uint32_t w[4];
        kbl_philox(key, epoch, (uint64_t)i, w);
        int64_t j = (int64_t)(u64(w) % (uint64_t)(i + 1));
        int64_t tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    return t;
}

/* Standard normals from one draw: four of them (Box-Muller on two pairs). */
static inline void normals4(const uint32_t w[4], float z[4]) {
    double r0 = sqrt(-2.0 * log(u01_open(w[0]))), t0 = 6.283185307179586 * u01(w[1]);
    double r1 = sqrt(-2.0 * log(u01_open(w[2]))), t1 = 6.283185307179586 * u01(w[3]);
    z[0] = (float)(r0 * cos(t0)), z[1] = (float)(r0 * sin(t0));
    z[2] = (float)(r1 * cos(t1)), z[3] = (float)(r1 * sin(t1));
}

/* Gamma(a) by Marsaglia and Tsang (2000), drawing from *j upwards. */
static double gamma_draw(uint64_t key, int64_t epoch, int64_t id, uint64_t *j, double a) {
    uint32_t w[4];
    double boost = 1;
    if (a < 1) {
        draw(key, epoch, id, (*j)++, w);
        boost = pow(u01_open(w[0]), 1.0 / a);
        a += 1;
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (int tries = 0; tries < 1000; tries++) {
        draw(key, epoch, id, (*j)++, w);
        double z = sqrt(-2.0 * log(u01_open(w[0]))) * cos(6.283185307179586 * u01(w[1]));
        double v = 1 + c * z;
        if (v <= 0) continue;
        v = v * v * v;
        double u = u01_open(w[2]);
        if (log(u) < 0.5 * z * z + d - d * v + d * log(v)) return d * v * boost;
    }
    return d * boost; /* unreachable in practice: acceptance is above 95% */
}

/* ---- geometry ------------------------------------------------------------------- */

typedef struct {
    int64_t b, planes, h, w; /* x viewed as [b, planes, h, w] */
} geom;

static int spatial(const char *op, const kbl_tensor *x, geom *g) {
    *g = (geom){0};
    if (x->ndim < 3)
        return kbl_fail("%s: expects a batch [B, ..., H, W] (after batch()), got %s", op, KBL_DESC(x));
    g->b = x->shape[0];
    g->h = x->shape[x->ndim - 2];
    g->w = x->shape[x->ndim - 1];
    g->planes = g->b ? kbl_numel(x) / (g->b * g->h * g->w > 0 ? g->b * g->h * g->w : 1) : 0;
    return 0;
}

/* out [b, planes, oh, ow]: out(i, j) = x(oy + i - py, ox + j - px), or fill outside x. */
static void crop_one(const float *x, float *out, const geom *g, int64_t oh, int64_t ow, int64_t oy, int64_t ox,
                     int64_t py, int64_t px, float fill) {
    int64_t j0 = px - ox, j1 = g->w + px - ox; /* valid output columns [j0, j1) */
    if (j0 < 0) j0 = 0;
    if (j1 > ow) j1 = ow;
    for (int64_t p = 0; p < g->planes; p++) {
        const float *xp = x + p * g->h * g->w;
        float *op = out + p * oh * ow;
        for (int64_t i = 0; i < oh; i++) {
            float *row = op + i * ow;
            int64_t sy = oy + i - py;
            if (sy < 0 || sy >= g->h || j1 <= j0) {
                for (int64_t j = 0; j < ow; j++) row[j] = fill;
                continue;
            }
            for (int64_t j = 0; j < j0; j++) row[j] = fill;
            memcpy(row + j0, xp + sy * g->w + (ox + j0 - px), (size_t)(j1 - j0) * sizeof(float));
            for (int64_t j = j1; j < ow; j++) row[j] = fill;
        }
    }
}

static void flip_w(float *img, const geom *g) {
    for (int64_t r = 0; r < g->planes * g->h; r++) {
        float *row = img + r * g->w;
        for (int64_t a = 0, z = g->w - 1; a < z; a++, z--) {
            float t = row[a];
            row[a] = row[z];
            row[z] = t;
        }
    }
}

static void flip_h(float *img, const geom *g) {
    for (int64_t p = 0; p < g->planes; p++) {
        float *pl = img + p * g->h * g->w;
        for (int64_t a = 0, z = g->h - 1; a < z; a++, z--)
            for (int64_t j = 0; j < g->w; j++) {
                float t = pl[a * g->w + j];
                pl[a * g->w + j] = pl[z * g->w + j];
                pl[z * g->w + j] = t;
            }
    }
}

/* ---- the ops ---------------------------------------------------------------------- */

static int normalize(const kbl_data_op *op, kbl_tensor *o) {
    int64_t nchan = op->nchan < 1 ? 1 : op->nchan, b = o->ndim ? o->shape[0] : 1;
    if (nchan > 16) return kbl_fail("normalize: at most 16 channels, got %lld", (long long)nchan);
    if (nchan > 1 && (o->ndim < 2 || o->shape[1] != nchan))
        return kbl_fail("normalize: %lld channel means/stds given, but the batch %s has %lld channels in dim 2",
                        (long long)nchan, KBL_DESC(o), (long long)(o->ndim >= 2 ? o->shape[1] : 0));
    for (int64_t c = 0; c < nchan; c++)
        if (!(op->std[c] != 0)) return kbl_fail("normalize: std of channel %lld is zero", (long long)c + 1);
    int64_t inner = b ? kbl_numel(o) / b / nchan : 0;
    float *p = kbl_base(o);
    for (int64_t i = 0; i < b; i++)
        for (int64_t c = 0; c < nchan; c++) {
            float m = (float)op->mean[c], s = (float)(1.0 / op->std[c]);
            float *q = p + (i * nchan + c) * inner;
            for (int64_t k = 0; k < inner; k++) q[k] = (q[k] - m) * s;
        }
    return 0;
}

static int flip(const kbl_data_op *op, kbl_tensor *o, const int64_t *ids, const int64_t *ep, uint64_t key) {
    geom g;
    if (spatial("random_flip", o, &g)) return -1;
    float *p = kbl_base(o);
    int64_t per = g.planes * g.h * g.w;
    for (int64_t b = 0; b < g.b; b++) {
        uint32_t w[4];
        draw(key, ep[b], ids[b], 0, w);
        if ((op->flags & 1) && u01(w[0]) < op->prob) flip_w(p + b * per, &g);
        if ((op->flags & 2) && u01(w[1]) < op->prob) flip_h(p + b * per, &g);
    }
    return 0;
}

static kbl_tensor *crop(const kbl_data_op *op, kbl_tensor *x, const int64_t *ids, const int64_t *ep, uint64_t key) {
    const char *name = op->kind == KBL_AUG_CROP ? "random_crop" : "random_translate";
    geom g;
    if (spatial(name, x, &g)) return NULL;
    int64_t py = op->pad[0], px = op->pad[1];
    int64_t oh = op->kind == KBL_AUG_CROP ? op->size[0] : g.h, ow = op->kind == KBL_AUG_CROP ? op->size[1] : g.w;
    if (py < 0 || px < 0 || oh < 1 || ow < 1 || oh > g.h + 2 * py || ow > g.w + 2 * px) {
        kbl_fail("%s: cannot take %lldx%lld from images %lldx%lld padded by (%lld, %lld) (batch %s)", name,
                 (long long)oh, (long long)ow, (long long)g.h, (long long)g.w, (long long)py, (long long)px,
                 KBL_DESC(x));
        return NULL;
    }
    int64_t shape[KBL_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 2] = oh;
    shape[x->ndim - 1] = ow;
    kbl_tensor *out = kbl_empty(x->ndim, shape, KBL_FLOAT32);
    if (!out) return NULL;
    const float *xp = kbl_base(x);
    float *o = kbl_base(out);
    for (int64_t b = 0; b < g.b; b++) {
        uint32_t w[4];
        draw(key, ep[b], ids[b], 0, w);
        int64_t oy = (int64_t)(w[0] % (uint64_t)(g.h + 2 * py - oh + 1));
        int64_t ox = (int64_t)(w[1] % (uint64_t)(g.w + 2 * px - ow + 1));
        crop_one(xp + b * g.planes * g.h * g.w, o + b * g.planes * oh * ow, &g, oh, ow, oy, ox, py, px,
                 (float)op->fill);
    }
    return out;
}

static int noise(const kbl_data_op *op, kbl_tensor *o, const int64_t *ids, const int64_t *ep, uint64_t key) {
    int64_t b = o->ndim ? o->shape[0] : 1, per = b ? kbl_numel(o) / b : 0;
    if (per > ((int64_t)4 << DRAW_BITS))
        return kbl_fail("gaussian_noise: elements of %lld values are too large (at most %lld)", (long long)per,
                        (long long)4 << DRAW_BITS);
    float *p = kbl_base(o), s = (float)op->a;
    for (int64_t i = 0; i < b; i++) {
        float *q = p + i * per;
        for (int64_t k = 0; k < per; k += 4) {
            uint32_t w[4];
            float z[4];
            draw(key, ep[i], ids[i], (uint64_t)(k / 4), w);
            normals4(w, z);
            for (int64_t e = 0; e < 4 && k + e < per; e++) q[k + e] += s * z[e];
        }
    }
    return 0;
}

/* As torchvision's RandomErasing: with probability prob, up to 10 tries at a
 * rectangle of area fraction in [a, b] and aspect ratio in [c, d] (log-uniform). */
static int erase(const kbl_data_op *op, kbl_tensor *o, const int64_t *ids, const int64_t *ep, uint64_t key) {
    geom g;
    if (spatial("random_erasing", o, &g)) return -1;
    float *p = kbl_base(o);
    double area = (double)(g.h * g.w), lr0 = log(op->c), lr1 = log(op->d);
    for (int64_t b = 0; b < g.b; b++) {
        uint32_t w[4];
        draw(key, ep[b], ids[b], 0, w);
        if (u01(w[0]) >= op->prob) continue;
        for (uint64_t t = 1; t <= 10; t++) {
            draw(key, ep[b], ids[b], t, w);
            double target = area * (op->a + (op->b - op->a) * u01(w[0]));
            double ar = exp(lr0 + (lr1 - lr0) * u01(w[1]));
            int64_t eh = (int64_t)llround(sqrt(target * ar)), ew = (int64_t)llround(sqrt(target / ar));
            if (eh < 1 || ew < 1 || eh >= g.h || ew >= g.w) continue;
            int64_t top = (int64_t)(w[2] % (uint64_t)(g.h - eh + 1)), left = (int64_t)(w[3] % (uint64_t)(g.w - ew + 1));
            for (int64_t pl = 0; pl < g.planes; pl++) {
                float *q = p + ((b * g.planes + pl) * g.h + top) * g.w + left;
                for (int64_t i = 0; i < eh; i++)
                    for (int64_t j = 0; j < ew; j++) q[i * g.w + j] = (float)op->fill;
            }
            break;
        }
    }
    return 0;
}

/* x_i <- lam_i x_i + (1 - lam_i) x_partner(i), lam_i ~ Beta(alpha, alpha) and the
 * partner a random element of the batch, both drawn per element; y becomes soft
 * targets mixed the same way. */
static int mixup(const kbl_data_op *op, kbl_tensor *x, kbl_tensor *y, const int64_t *ids, const int64_t *ep,
                 uint64_t key, kbl_tensor **xo, kbl_tensor **yo) {
    int64_t b = x->ndim ? x->shape[0] : 0, per = b ? kbl_numel(x) / b : 0, nc = op->num_classes;
    if (!(op->a > 0)) return kbl_fail("mixup: alpha must be positive, got %g", op->a);
    if (!y) return kbl_fail("mixup: the batch has no labels y to mix");
    bool hard = y->dtype == KBL_INT64 || y->dtype == KBL_INT32;
    if (hard && (y->ndim != 1 || nc < 1))
        return kbl_fail("mixup: expects labels [B] with num_classes known, got y %s and num_classes %lld",
                        KBL_DESC(y), (long long)nc);
    if (!hard && (y->dtype != KBL_FLOAT32 || y->ndim != 2))
        return kbl_fail("mixup: y must be labels 1..C (int64 [B]) or soft targets (float32 [B, C]), got %s",
                        KBL_DESC(y));
    if (y->shape[0] != b) return kbl_fail("mixup: x %s and y %s differ in batch size", KBL_DESC(x), KBL_DESC(y));
    if (!hard) nc = y->shape[1];
    kbl_tensor *yc = kbl_contiguous(y);
    *xo = kbl_empty_like(x, -1);
    *yo = kbl_zeros(2, (int64_t[]){b, nc}, KBL_FLOAT32);
    if (!yc || !*xo || !*yo) {
        kbl_release_n(3, yc, *xo, *yo);
        *xo = *yo = NULL;
        return -1;
    }
    const float *xp = kbl_base(x);
    float *o = kbl_base(*xo), *t = kbl_base(*yo);
    for (int64_t i = 0; i < b; i++) {
        uint32_t w[4];
        uint64_t j = 1;
        draw(key, ep[i], ids[i], 0, w);
        int64_t k = (int64_t)(u64(w) % (uint64_t)b);
        double g1 = gamma_draw(key, ep[i], ids[i], &j, op->a), g2 = gamma_draw(key, ep[i], ids[i], &j, op->a);
        float lam = (float)(g1 / (g1 + g2));
        for (int64_t e = 0; e < per; e++) o[i * per + e] = lam * xp[i * per + e] + (1 - lam) * xp[k * per + e];
        if (hard) {
            int64_t li = (int64_t)kbl_load_double(kbl_base(yc), yc->dtype, i) - 1;
            int64_t lk = (int64_t)kbl_load_double(kbl_base(yc), yc->dtype, k) - 1;
            if (li < 0 || li >= nc || lk < 0 || lk >= nc) {
                kbl_fail("mixup: label %lld is outside 1..%lld", (long long)(li < 0 || li >= nc ? li : lk) + 1,
                         (long long)nc);
                kbl_release_n(3, yc, *xo, *yo);
                *xo = *yo = NULL;
                return -1;
            }
            t[i * nc + li] += lam;
            t[i * nc + lk] += 1 - lam;
        } else {
            const float *yp = kbl_base(yc);
            for (int64_t c = 0; c < nc; c++) t[i * nc + c] = lam * yp[i * nc + c] + (1 - lam) * yp[k * nc + c];
        }
    }
    kbl_tensor_release(yc);
    return 0;
}

static const char *op_names[] = {"normalize", "random_flip", "random_crop", "random_translate",
                                 "gaussian_noise", "random_erasing", "mixup"};
_Static_assert(sizeof op_names / sizeof *op_names == KBL_AUG_MIXUP + 1, "a name for every kbl_data_op_kind");

int kbl_data_augment(const kbl_data_op *op, kbl_tensor *x, kbl_tensor *y, const int64_t *ids,
                     const int64_t *epochs, int inplace, kbl_tensor **x_out, kbl_tensor **y_out) {
    *x_out = NULL;
    if (y_out) *y_out = NULL;
    if (!op || op->kind < 0 || op->kind > KBL_AUG_MIXUP) return kbl_fail("augment: unknown op kind %d", op ? op->kind : -1);
    const char *name = op_names[op->kind];
    if (kbl_check_tensor(name, x, "x")) return -1;
    if (x->dtype != KBL_FLOAT32)
        return kbl_fail("%s: expects a float32 batch x, got %s (convert with :to('float32') in a map)", name,
                        KBL_DESC(x));
    if (op->kind != KBL_AUG_NORMALIZE && (!ids || !epochs))
        return kbl_fail("%s: needs the elements' ids and epochs (a batched map that changes the batch size "
                        "drops them)", name);
    uint64_t key = op_key(op->seed, op->salt);
    kbl_tensor *src = inplace && kbl_is_contiguous(x) ? kbl_tensor_retain(x) : NULL;
    int rc = 0;
    kbl_tensor *out = NULL;
    if (op->kind == KBL_AUG_CROP || op->kind == KBL_AUG_TRANSLATE || op->kind == KBL_AUG_MIXUP) {
        src = src ? src : kbl_contiguous(x); /* read only: no copy needed */
        if (!src) return -1;
        if (op->kind == KBL_AUG_MIXUP) {
            kbl_tensor *yo = NULL;
            rc = mixup(op, src, y, ids, epochs, key, &out, &yo);
            if (rc == 0 && y_out) *y_out = yo;
            else kbl_tensor_release(yo);
        } else {
            out = crop(op, src, ids, epochs, key);
            rc = out ? 0 : -1;
        }
        kbl_tensor_release(src);
    } else {
        out = src ? src : kbl_clone(x);
        if (!out) return -1;
        switch (op->kind) {
        case KBL_AUG_NORMALIZE: rc = normalize(op, out); break;
        case KBL_AUG_FLIP: rc = flip(op, out, ids, epochs, key); break;
        case KBL_AUG_NOISE: rc = noise(op, out, ids, epochs, key); break;
        default: rc = erase(op, out, ids, epochs, key); break;
        }
    }
    if (rc) {
        kbl_tensor_release(out);
        return -1;
    }
    *x_out = out;
    if (y_out && !*y_out && y) *y_out = kbl_tensor_retain(y);
    return 0;
}
