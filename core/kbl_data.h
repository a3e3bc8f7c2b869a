/* kbl_data.h — the data pipeline: readers, batches, augmentation, prefetch,
 * cache, image files and record shards (data_*.c).
 *
 * kbl.h includes this header, so a C user of kbl.h sees it; the region between
 * KBL_CDEF_BEGIN and KBL_CDEF_END is plain C that the build appends to the
 * Lua binding's ffi.cdef text after kbl.h's own (cmake/gen_cdef.cmake).
 */
#ifndef KBL_DATA_H
#define KBL_DATA_H

#include "kbl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* KBL_CDEF_BEGIN */

/* ---- data: readers, batches, augmentation, prefetch, cache (data_*.c) ---- */
/* Readers (data_io.c). An IDX file, gzip-compressed or plain (zlib reads both):
 * ubyte -> uint8, sbyte/short/int -> int32, float -> float32, double -> float64.
 * Values come as stored; labels are converted by kbl_data_labels. */
kbl_tensor *kbl_data_idx_read(const char *path);
int kbl_data_idx_write(const char *path, kbl_tensor *t, int gzip);
/* A numeric CSV file as float64 [rows, fields]; header != 0 skips the first line. */
kbl_tensor *kbl_data_csv_read(const char *path, char delimiter, int header);
/* Labels stored counting from 0 (any dtype, 1-D) as int64 labels 1..C, checking
 * each is a whole number in [0, num_classes) (num_classes <= 0: only >= 0).
 * Messages name `what` (the file) and the line first_line + row when
 * first_line > 0, else the position 1 + row. */
kbl_tensor *kbl_data_labels(kbl_tensor *t, int64_t num_classes, const char *what, int64_t first_line);
/* 64-bit hashes for cache keys: of bytes, and of a tensor's dtype, shape and values. */
uint64_t kbl_data_hash_bytes(const void *p, int64_t n, uint64_t h);
uint64_t kbl_data_hash_tensor(kbl_tensor *t, uint64_t h);

/* Random choices (data_augment.c): a pure function of (seed, salt, epoch, id, draw)
 * through kbl_philox; salt tells a pipeline's random steps apart. */
int64_t kbl_data_randint(uint64_t seed, int32_t salt, uint64_t epoch, int64_t id, int64_t draw, int64_t n);
/* The four words behind every such choice (draw < 2^24, id < 2^40). */
void kbl_data_draw(uint64_t seed, int32_t salt, uint64_t epoch, int64_t id, uint64_t draw, uint32_t out[4]);
/* A permutation of 0..n-1 (int64), the same for the same (seed, salt, epoch). */
kbl_tensor *kbl_data_permutation(int64_t n, uint64_t seed, int32_t salt, uint64_t epoch);

/* Batched augmentations on x [B, ..., H, W] float32; element b draws from
 * (seed, salt, epochs[b], ids[b]). Fields by kind: FLIP: prob, flags (1
 * horizontal, 2 vertical); CROP: size, pad, fill; TRANSLATE: pad (max shift),
 * fill; NOISE: a (std); ERASE: prob, a..b (area fraction), c..d (aspect ratio),
 * fill; MIXUP: a (alpha), num_classes; NORMALIZE: nchan (1 or x's dim 1), mean, std. */
typedef enum kbl_data_op_kind {
    KBL_AUG_NORMALIZE = 0, KBL_AUG_FLIP = 1, KBL_AUG_CROP = 2, KBL_AUG_TRANSLATE = 3,
    KBL_AUG_NOISE = 4, KBL_AUG_ERASE = 5, KBL_AUG_MIXUP = 6
} kbl_data_op_kind;
typedef struct kbl_data_op {
    int32_t kind;
    int32_t salt;
    uint64_t seed;
    double prob, a, b, c, d, fill;
    int64_t size[2];
    int64_t pad[2];
    int32_t flags;
    int32_t nchan;
    int64_t num_classes;
    double mean[16];
    double std[16];
} kbl_data_op;
/* Applies op; *x_out, *y_out are new references (y may be NULL: then *y_out is
 * NULL). inplace != 0 lets the op overwrite x (a batch the caller owns). Mixup
 * makes y soft targets float32 [B, num_classes] from labels 1..C or mixes soft y. */
int kbl_data_augment(const kbl_data_op *op, kbl_tensor *x, kbl_tensor *y, const int64_t *ids,
                     const int64_t *epochs, int inplace, kbl_tensor **x_out, kbl_tensor **y_out);

/* Batches (data_batch.c). Rows ids of src (rows along dim 0) gathered into one
 * contiguous tensor of dtype, values multiplied by scale when converted. */
kbl_tensor *kbl_data_gather(kbl_tensor *src, int64_t n, const int64_t *ids, int dtype, double scale);
/* One batch: gather rows ids of x (and y) and apply the ops in order. ids also
 * serve as the elements' random ids, with epochs their epochs. */
typedef struct kbl_data_job {
    kbl_tensor *x;
    kbl_tensor *y;             /* may be NULL */
    int32_t x_dtype;
    int32_t nops;
    double x_scale;
    int64_t n;
    const int64_t *ids;
    const int64_t *epochs;
    const kbl_data_op *ops;
    struct kbl_data_images *images; /* non-NULL: rows are these image files (x unused) */
    int32_t x_is_batch; /* 1: x (and y) hold just this batch's rows, in order, and
                         * nothing else holds them: with no conversion and no ops,
                         * the result is x itself rather than a copy */
} kbl_data_job;
int kbl_data_job_run(const kbl_data_job *job, kbl_tensor **x_out, kbl_tensor **y_out);
/* Background threads running jobs; results come back in submission order. */
typedef struct kbl_data_prefetcher kbl_data_prefetcher;
kbl_data_prefetcher *kbl_data_prefetcher_new(int depth, int threads);
int kbl_data_prefetcher_submit(kbl_data_prefetcher *p, const kbl_data_job *job); /* copies it */
int kbl_data_prefetcher_next(kbl_data_prefetcher *p, kbl_tensor **x_out, kbl_tensor **y_out);
int kbl_data_prefetcher_pending(kbl_data_prefetcher *p);
void kbl_data_prefetcher_free(kbl_data_prefetcher *p);   /* cancels and joins */

/* Cache files (data_cache.c): named tensors compressed with zstd under a key.
 * read returns how many tensors it read into out, or 0 when the file is absent,
 * stale (another key) or damaged, with the reason in kbl_last_error(). */
int kbl_data_cache_write(const char *path, const char *key, int n, kbl_tensor **tensors, int level);
int kbl_data_cache_read(const char *path, const char *key, int max, kbl_tensor **out);

/* ---- data: image files and record shards (data_image.c, data_records*.c) ---- */
/* Image files (PNG, JPEG, BMP through stb_image). read: uint8 [C, H, W] with
 * channels 1 (grey) or 3 (RGB); info: out = {channels in the file, H, W}. */
kbl_tensor *kbl_data_image_read(const char *path, int channels);
int kbl_data_image_info(const char *path, int64_t out[3]);
/* uint8 [C, H, W] or [H, W] (C 1, 3 or 4) written to path as PNG or BMP by
 * its extension; or as PNG into buf when cap is enough, returning the PNG's
 * size (or -1). */
int kbl_data_image_write(const char *path, kbl_tensor *img);
int64_t kbl_data_image_png(kbl_tensor *img, uint8_t *buf, int64_t cap);
/* float32 [..., H, W] resized to h x w as PyTorch's bilinear interpolate
 * (align_corners = False, no antialiasing). */
kbl_tensor *kbl_data_resize(kbl_tensor *x, int64_t h, int64_t w);
/* The entries of a directory (hidden ones left out) as lines "d<name>" or
 * "f<name>" in buf when cap is enough; returns the bytes needed, or -1. */
int64_t kbl_data_list_dir(const char *path, char *buf, int64_t cap);
/* n image files decoded to float32 [channels, h, w] in [0, 1] (resized when
 * resize != 0, else each must be h x w), then center-cropped to crop_h x crop_w
 * (0: no crop). A kbl_data_job with images set decodes its rows on the thread
 * running it; with skip_bad a bad file is left out of its batch and counted. */
typedef struct kbl_data_images kbl_data_images;
kbl_data_images *kbl_data_images_new(int64_t n, const char *const *paths, int channels, int64_t h, int64_t w,
                                     int resize, int64_t crop_h, int64_t crop_w, int skip_bad);
kbl_data_images *kbl_data_images_retain(kbl_data_images *im);
void kbl_data_images_free(kbl_data_images *im);   /* drops a reference */
/* How many files were skipped since the last call, the first one's message in buf. */
int64_t kbl_data_images_take_skipped(kbl_data_images *im, char *buf, int64_t cap);
int kbl_data_images_job_run(const kbl_data_job *job, kbl_tensor **x_out, kbl_tensor **y_out);
/* Record shards (data_records.c). write: one shard of x's rows (and y's), in
 * zstd blocks of block_rows with a checksum each; *checksum gets the hash of
 * its header and block table, which the index keeps. */
int kbl_data_records_write(const char *path, kbl_tensor *x, kbl_tensor *y, int64_t block_rows, int level,
                           uint64_t *checksum);
/* Where an epoch of a streamer stands: the next row to read is row offset of
 * shard number shard (0-based, in the read order; nshards: all read), draws
 * rows were drawn from the shuffle buffer, which holds count rows whose ids,
 * in draw order, a caller keeps in an array of its own. */
typedef struct kbl_data_records_pos {
    int64_t shard, offset, draws, count;
} kbl_data_records_pos;
/* A streamer (data_records_stream.c): reads the shards in the order given (threads worker threads
 * read and decompress blocks, 0: 2), checking each against the index and each
 * block against its checksum, draws rows through a shuffle buffer (buffer <=
 * 1: in order; draw t picks kbl_data_randint(seed, salt, epoch, t, 0, rows
 * held) and the last held row takes its place) and makes batches of x
 * (float32 times x_scale when x_scale != 1 and not raw) and y, up to depth
 * batches ahead, from start (NULL: the epoch's start; start_ids: the ids the
 * buffer held). A row's id is first_ids[k] + its row in shard k. next: *n = 0
 * at the end; -1 names the shard and records. */
typedef struct kbl_data_records_spec {
    int32_t nshards;
    int32_t x_dtype, y_dtype;   /* y_dtype -1: no y */
    int32_t xndim, yndim;
    int32_t drop_remainder, depth, salt;
    int32_t out_dtype;          /* x in the batches: x_dtype as stored (x_scale left to
                                 * the caller), or float32, times x_scale */
    int32_t threads;
    const char *const *paths;
    const int64_t *counts, *sizes, *first_ids;
    const uint64_t *checksums;
    int64_t xshape[8], yshape[8];
    double x_scale;
    int64_t batch, buffer;
    uint64_t seed, epoch;
    const kbl_data_records_pos *start;
    const int64_t *start_ids;
} kbl_data_records_spec;
typedef struct kbl_data_records kbl_data_records;
kbl_data_records *kbl_data_records_open(const kbl_data_records_spec *spec);
int kbl_data_records_next(kbl_data_records *r, kbl_tensor **x, kbl_tensor **y, int64_t *ids, int64_t *n);
/* Rows read and decompressed so far (a resumed epoch reads only what it needs). */
int64_t kbl_data_records_rows_read(kbl_data_records *r);
void kbl_data_records_close(kbl_data_records *r);   /* stops and joins the threads */
/* Moves *pos (and ids, room for buffer ids) on by rows handed out, reading
 * nothing: the ids alone follow the streamer's draws. -1 past the epoch's end. */
int kbl_data_records_locate(const kbl_data_records_spec *spec, int64_t rows, kbl_data_records_pos *pos,
                            int64_t *ids);

/* KBL_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* KBL_DATA_H */
