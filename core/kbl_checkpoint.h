/* kbl_checkpoint.h — atomic files and checkpoint files (checkpoint.c).
 *
 * kbl.h includes this header, so a C user of kbl.h sees it; the region between
 * KBL_CDEF_BEGIN and KBL_CDEF_END is plain C that the build appends to the
 * Lua binding's ffi.cdef text after kbl.h's own (cmake/gen_cdef.cmake).
 */
#ifndef KBL_CHECKPOINT_H
#define KBL_CHECKPOINT_H

#include "kbl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* KBL_CDEF_BEGIN */

/* Atomic files: written to "<path>.tmp.<pid>", fsync'd, renamed over path and
 * the directory fsync'd on commit; abort removes the temporary file. */
typedef struct kbl_atomic_file kbl_atomic_file;
kbl_atomic_file *kbl_atomic_open(const char *path);
int kbl_atomic_write(kbl_atomic_file *f, const void *data, size_t n);
int kbl_atomic_commit(kbl_atomic_file *f);   /* frees f, whatever the result */
void kbl_atomic_abort(kbl_atomic_file *f);    /* frees f */
int kbl_write_file_atomic(const char *path, const void *data, size_t n);
/* Checkpoint files: header (magic, version, sizes, CRC-32s), then a zstd frame
 * of the JSON metadata and the named tensors. level 0 means zstd's level 3. */
typedef struct kbl_checkpoint kbl_checkpoint;
int kbl_checkpoint_save(const char *path, const char *meta, size_t meta_len, int n,
                        const char **names, kbl_tensor **tensors, int level);
int kbl_checkpoint_verify(const char *path);  /* header and checksums, no decompression */
kbl_checkpoint *kbl_checkpoint_open(const char *path);   /* verified and decompressed */
const char *kbl_checkpoint_meta(const kbl_checkpoint *c, size_t *len);
int kbl_checkpoint_count(const kbl_checkpoint *c);
const char *kbl_checkpoint_name(const kbl_checkpoint *c, int i);
kbl_tensor *kbl_checkpoint_tensor(const kbl_checkpoint *c, int i);   /* a new copy */
void kbl_checkpoint_close(kbl_checkpoint *c);
int kbl_checkpoint_format_version(void);

/* KBL_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* KBL_CHECKPOINT_H */
