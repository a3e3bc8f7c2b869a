/* dist_internal.h — what the files of libkbl_mpi.so share: the error buffer,
 * the wait with a deadline, and the table libkbl_nccl.so (CUDA tensors) fills. */
#ifndef KBL_DIST_INTERNAL_H
#define KBL_DIST_INTERNAL_H

#include "kbl_dist.h"

#include <mpi.h>
#include <stdbool.h>

/* Sets the message kbl_dist_last_error() returns; returns -1. */
int kbl_dist_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Waits for n requests, progressing MPI, until the timeout: then fails naming what. */
int kbl_dist_wait(int n, MPI_Request *reqs, const char *what);
/* Whether the requests are done (progresses MPI; errors read as done and are
 * reported by the wait that follows). */
bool kbl_dist_test(int n, MPI_Request *reqs);
/* The MPI datatype of a kbl dtype, or MPI_DATATYPE_NULL. */
MPI_Datatype kbl_dist_mpi_type(int dtype);

/* CUDA tensors go through NCCL (dist/nccl.c, built as libkbl_nccl.so when the
 * CUDA toolkit ships it, dlopened on first use). */
#define KBL_NCCL_ABI 1
typedef struct kbl_nccl_api {
    int abi;
    /* rank 0 makes the id (128 bytes); every rank then joins with it */
    int (*unique_id)(char id[128], char *why, int n);
    int (*join)(const char id[128], int rank, int size, int local_rank, char *why, int n);
    int (*all_reduce)(void *data, int64_t count, int dtype, int op, double timeout, char *why, int n);
    int (*broadcast)(void *data, int64_t count, int dtype, int root, double timeout, char *why, int n);
} kbl_nccl_api;
typedef const kbl_nccl_api *(*kbl_nccl_entry)(void);
/* NCCL ready for this job, or NULL with the reason in kbl_dist_last_error(). */
const kbl_nccl_api *kbl_dist_nccl(const char *op);
/* The CUDA tensor t all-reduced with op (root < 0) or broadcast from root
 * through NCCL; fails with "dist: <what> on CUDA (NCCL): <why>". */
int kbl_dist_nccl_run(const char *what, kbl_tensor *t, int op, int root);

#endif
