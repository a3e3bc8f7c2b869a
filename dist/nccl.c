/* nccl.c — libkbl_nccl.so: all-reduce and broadcast of CUDA tensors through
 * NCCL, for libkbl_mpi.so, which exchanges the NCCL id over MPI and dlopens
 * this file's library only when a CUDA tensor is reduced (a machine without
 * CUDA never loads it). Each call is queued on the default stream (ordered
 * after the kernels that made the data) and polled until done or until the
 * timeout, when the communicator is aborted so the call returns. */
#include "dist_internal.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static ncclComm_t comm;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int nccl_type(int dtype, ncclDataType_t *t) {
    switch (dtype) {
    case KBL_FLOAT32: *t = ncclFloat32; return 0;
    case KBL_FLOAT64: *t = ncclFloat64; return 0;
    case KBL_INT32: *t = ncclInt32; return 0;
    case KBL_INT64: *t = ncclInt64; return 0;
    case KBL_UINT8: *t = ncclUint8; return 0;
    default: return -1;
    }
}

static int unique_id(char id[128], char *why, int n) {
    ncclUniqueId u;
    ncclResult_t r = ncclGetUniqueId(&u);
    if (r != ncclSuccess) {
        snprintf(why, (size_t)n, "ncclGetUniqueId: %s", ncclGetErrorString(r));
        return -1;
    }
    memcpy(id, u.internal, sizeof u.internal < 128 ? sizeof u.internal : 128);
    return 0;
}

static int join(const char id[128], int rank, int size, int local_rank, char *why, int n) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        snprintf(why, (size_t)n, "no CUDA device: %s", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return -1;
    }
    cudaSetDevice(local_rank % count);
    ncclUniqueId u;
    memcpy(u.internal, id, sizeof u.internal < 128 ? sizeof u.internal : 128);
    ncclResult_t r = ncclCommInitRank(&comm, size, u, rank);
    if (r != ncclSuccess) {
        snprintf(why, (size_t)n, "ncclCommInitRank: %s", ncclGetErrorString(r));
        return -1;
    }
    return 0;
}

/* Polls the stream until the queued collective is done or the timeout passes. */
static int finish(ncclResult_t r, const char *what, double timeout, char *why, int n) {
    if (r != ncclSuccess) {
        snprintf(why, (size_t)n, "%s: %s", what, ncclGetErrorString(r));
        return -1;
    }
    double deadline = timeout > 0 ? now() + timeout : 0;
    for (;;) {
        cudaError_t e = cudaStreamQuery(0);
        if (e == cudaSuccess) return 0;
        if (e != cudaErrorNotReady) {
            snprintf(why, (size_t)n, "%s: %s", what, cudaGetErrorString(e));
            return -1;
        }
        if (deadline > 0 && now() > deadline) {
            ncclCommAbort(comm);
            comm = NULL;
            snprintf(why, (size_t)n, "%s did not complete within %g s: another rank has died or stopped calling it",
                     what, timeout);
            return -1;
        }
    }
}

static int all_reduce(void *data, int64_t count, int dtype, int op, double timeout, char *why, int n) {
    ncclDataType_t t;
    if (!comm || nccl_type(dtype, &t)) {
        snprintf(why, (size_t)n, comm ? "unsupported dtype" : "NCCL was aborted by an earlier timeout");
        return -1;
    }
    ncclRedOp_t o = op == KBL_DIST_MAX ? ncclMax : op == KBL_DIST_MIN ? ncclMin : op == KBL_DIST_AVG ? ncclAvg : ncclSum;
    return finish(ncclAllReduce(data, data, (size_t)count, t, o, comm, 0), "ncclAllReduce", timeout, why, n);
}

static int broadcast(void *data, int64_t count, int dtype, int root, double timeout, char *why, int n) {
    ncclDataType_t t;
    if (!comm || nccl_type(dtype, &t)) {
        snprintf(why, (size_t)n, comm ? "unsupported dtype" : "NCCL was aborted by an earlier timeout");
        return -1;
    }
    return finish(ncclBroadcast(data, data, (size_t)count, t, root, comm, 0), "ncclBroadcast", timeout, why, n);
}

static const kbl_nccl_api api = {KBL_NCCL_ABI, unique_id, join, all_reduce, broadcast};

__attribute__((visibility("default"))) const kbl_nccl_api *kbl_nccl_api_get(void) { return &api; }
