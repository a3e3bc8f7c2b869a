/* kbl_dist.h — the public header of libkbl_mpi.so, kbl's data-parallel layer
 * over MPI (Open MPI), loaded at run time by lua/kbl/dist.lua so that libkbl
 * runs without MPI. Collectives act in place on whole tensors (CPU tensors
 * through MPI, CUDA tensors through NCCL in libkbl_nccl.so, dlopened on first
 * use); each waits at most the timeout (kbl_dist_set_timeout) and then fails
 * naming the collective, so a rank that died never hangs the others. Calls
 * return 0, or -1 with a message in kbl_dist_last_error().
 *
 *   kbl_dist_init();                              // under mpirun: MPI_Init_thread
 *   kbl_dist_all_reduce(t, KBL_DIST_SUM);         // every rank now holds the sum
 *   kbl_dist_buckets *b = kbl_dist_buckets_new(n, params, 1 << 20);
 *   kbl_dist_buckets_begin(b, 0.5);               // then backward: buckets start as grads become ready
 *   kbl_dist_buckets_finish(b, stats);            // waits; params' grads hold the weighted sum
 *
 * Everything between the markers is plain C for LuaJIT's ffi.cdef (made into
 * lua/kbl/dist_cdef.lua by the build). */
#ifndef KBL_DIST_H
#define KBL_DIST_H

#include "kbl.h"

/* KBL_CDEF_BEGIN */
typedef enum kbl_dist_op { KBL_DIST_SUM = 0, KBL_DIST_MAX = 1, KBL_DIST_MIN = 2, KBL_DIST_AVG = 3 } kbl_dist_op;

int kbl_dist_init(void);              /* once; later calls return 0 */
int kbl_dist_initialized(void);
int kbl_dist_rank(void);              /* 0 and 1 before init */
int kbl_dist_world_size(void);
int kbl_dist_local_rank(void);
const char *kbl_dist_last_error(void);
const char *kbl_dist_library_version(void);   /* MPI_Get_library_version's first line */
void kbl_dist_set_timeout(double seconds);    /* default 300 s; <= 0 waits forever */
double kbl_dist_get_timeout(void);

/* t contiguous, float32/float64/int32/int64 (AVG: float only), on the CPU or CUDA */
int kbl_dist_all_reduce(kbl_tensor *t, int op);
int kbl_dist_broadcast(kbl_tensor *t, int root);
int kbl_dist_barrier(void);
/* Every rank's n bytes: *out (free with kbl_dist_free) holds them in rank order,
 * lens[r] the length of rank r's (lens has world_size entries). */
int kbl_dist_allgather_bytes(const void *data, int64_t n, int64_t *lens, char **out);
void kbl_dist_free(void *p);
/* Prints "kbl dist: rank R: message" on stderr and ends every rank (MPI_Abort). */
void kbl_dist_abort(const char *message, int code);
int kbl_dist_finalize(void);

/* Gradient buckets: params grouped (from the last, where backward starts) into
 * buckets of at most bucket_bytes (a larger one alone); a bucket's all-reduce starts as soon as
 * backward has made all its gradients, in bucket order on every rank. */
typedef struct kbl_dist_buckets kbl_dist_buckets;
kbl_dist_buckets *kbl_dist_buckets_new(int n, kbl_tensor **params, int64_t bucket_bytes);
int kbl_dist_buckets_count(const kbl_dist_buckets *b);
/* Arms the grad-ready hook: each rank's gradients are multiplied by scale
 * (its share of the global batch) before the sum. overlap 0 waits for
 * finish to start every bucket (for measuring the overlap). */
int kbl_dist_buckets_begin(kbl_dist_buckets *b, double scale, int overlap);
/* Starts what backward did not, waits, writes the sums into the params' grads.
 * stats (may be NULL): [0] seconds waited here, [1] buckets started during
 * backward, [2] buckets, [3] bytes reduced. */
int kbl_dist_buckets_finish(kbl_dist_buckets *b, double *stats);
void kbl_dist_buckets_free(kbl_dist_buckets *b);
/* KBL_CDEF_END */

#endif /* KBL_DIST_H */
