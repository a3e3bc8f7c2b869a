/* mpi.c — libkbl_mpi.so's start and collectives over MPI: init under mpirun,
 * rank and size, all-reduce, broadcast, barrier and allgather of bytes, each a
 * non-blocking MPI call polled until done or until the timeout, which fails
 * naming the collective (then lua/kbl/dist.lua aborts the job), so a rank that
 * died or hangs never leaves the others waiting for ever. */
#include "dist_internal.h"
#include "internal.h"   /* kbl_base: the address of a CUDA tensor's data */

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char error_text[1024];
static int rank_, size_ = 1, local_rank_, inited;
static double timeout_s = 300;
static char version[256];

int kbl_dist_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_text, sizeof error_text, fmt, ap);
    va_end(ap);
    return -1;
}

const char *kbl_dist_last_error(void) { return error_text; }
int kbl_dist_rank(void) { return rank_; }
int kbl_dist_world_size(void) { return size_; }
int kbl_dist_local_rank(void) { return local_rank_; }
int kbl_dist_initialized(void) { return inited; }
void kbl_dist_set_timeout(double seconds) { timeout_s = seconds; }
double kbl_dist_get_timeout(void) { return timeout_s; }

const char *kbl_dist_library_version(void) {
    if (!version[0]) {
        char v[MPI_MAX_LIBRARY_VERSION_STRING];
        int n = 0;
        MPI_Get_library_version(v, &n);
        v[sizeof v - 1] = 0;
        char *nl = strchr(v, '\n');
        if (nl) *nl = 0;
        char *comma = strchr(v, ',');   /* "Open MPI v4.1.4, package: ..." */
        if (comma) *comma = 0;
        snprintf(version, sizeof version, "%s", v);
    }
    return version;
}

/* mpirun counts a rank that exits without MPI_Finalize as failed */
static void finalize_at_exit(void) {
    int done = 0;
    if (inited && (MPI_Finalized(&done), !done)) MPI_Finalize();
}

static int sum_hook(kbl_tensor *t, void *ctx) {
    (void)ctx;
    if (kbl_dist_all_reduce(t, KBL_DIST_SUM) == 0) return 0;
    /* libkbl's message names the op; this one says why, on stderr, once */
    fprintf(stderr, "kbl dist: rank %d: %s\n", rank_, error_text);
    return -1;
}

int kbl_dist_init(void) {
    if (inited) return 0;
    int already = 0;
    MPI_Initialized(&already);
    if (!already) {
        /* Open MPI loads its components with dlopen; they need libmpi's
         * symbols global, and LuaJIT's ffi.load made this library local */
        void *h = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
        (void)h;
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return kbl_dist_fail("dist: MPI_Init_thread failed");
    }
    /* errors come back as codes, so a message can name the collective */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
    inited = 1;
    atexit(finalize_at_exit);
    /* libkbl's differentiable sum across processes (synchronized batch norm) */
    if (size_ > 1) kbl_set_all_reduce_hook(sum_hook, NULL);
    return 0;
}

int kbl_dist_finalize(void) {
    if (!inited) return 0;
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
    inited = 0;
    return 0;
}

void kbl_dist_abort(const char *message, int code) {
    fprintf(stderr, "kbl dist: rank %d of %d: %s\n", rank_, size_, message ? message : "aborting");
    (void)fflush(stderr);
    if (inited) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    _Exit(code ? code : 1);
}

bool kbl_dist_test(int n, MPI_Request *reqs) {
    int done = 0;
    if (MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) return true;
    return done != 0;
}

int kbl_dist_wait(int n, MPI_Request *reqs, const char *what) {
    double deadline = timeout_s > 0 ? kbl_profile_clock() + timeout_s : 0;
    for (long spins = 0;; spins++) {
        int done = 0;
        int rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) {
            char s[MPI_MAX_ERROR_STRING];
            int len = 0;
            MPI_Error_string(rc, s, &len);
            return kbl_dist_fail("dist: %s failed on rank %d of %d: %s", what, rank_, size_, s);
        }
        if (done) return 0;
        if (deadline > 0 && (spins & 255) == 0 && kbl_profile_clock() > deadline)
            return kbl_dist_fail("dist: %s did not complete within %g s on rank %d of %d: another rank has "
                                 "died or stopped calling it (the timeout is kbl.dist.set_timeout, "
                                 "KBL_DIST_TIMEOUT)", what, timeout_s, rank_, size_);
        /* a 2-core machine runs several ranks: give the others the CPU */
        if (spins > 1000) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
}

MPI_Datatype kbl_dist_mpi_type(int dtype) {
    switch (dtype) {
    case KBL_FLOAT32: return MPI_FLOAT;
    case KBL_FLOAT64: return MPI_DOUBLE;
    case KBL_INT32: return MPI_INT32_T;
    case KBL_INT64: return MPI_INT64_T;
    case KBL_UINT8: return MPI_UINT8_T;
    default: return MPI_DATATYPE_NULL;
    }
}

int kbl_dist_nccl_run(const char *what, kbl_tensor *t, int op, int root) {
    const kbl_nccl_api *nc = kbl_dist_nccl(what);
    char why[512] = "";
    if (!nc) return -1;
    int64_t n = kbl_numel(t);
    if (root >= 0 ? nc->broadcast(kbl_base(t), n, t->dtype, root, timeout_s, why, sizeof why)
                  : nc->all_reduce(kbl_base(t), n, t->dtype, op, timeout_s, why, sizeof why))
        return kbl_dist_fail("dist: %s on CUDA (NCCL): %s", what, why);
    return 0;
}

static const char *OP_NAMES[] = {"sum", "max", "min", "avg"};

static int check_tensor(const char *op, const kbl_tensor *t) {
    if (!inited) return kbl_dist_fail("dist: %s before kbl_dist_init", op);
    if (!t || !t->storage) return kbl_dist_fail("dist: %s: the tensor is missing or was freed", op);
    if (!kbl_is_contiguous(t)) return kbl_dist_fail("dist: %s needs a contiguous tensor (call :contiguous())", op);
    if (kbl_dist_mpi_type(t->dtype) == MPI_DATATYPE_NULL)
        return kbl_dist_fail("dist: %s: unsupported dtype %d", op, t->dtype);
    return 0;
}

static void divide(kbl_tensor *t, double by) {
    int64_t n = kbl_numel(t);
    if (t->dtype == KBL_FLOAT32) {
        float *p = kbl_base(t);
        for (int64_t i = 0; i < n; i++) p[i] = (float)(p[i] / by);
    } else {
        double *p = kbl_base(t);
        for (int64_t i = 0; i < n; i++) p[i] /= by;
    }
}

int kbl_dist_all_reduce(kbl_tensor *t, int op) {
    if (check_tensor("all_reduce", t)) return -1;
    if (op < 0 || op > KBL_DIST_AVG) return kbl_dist_fail("dist: all_reduce: unknown op %d (sum, max, min, avg)", op);
    if (op == KBL_DIST_AVG && t->dtype != KBL_FLOAT32 && t->dtype != KBL_FLOAT64)
        return kbl_dist_fail("dist: all_reduce: avg needs a float tensor");
    int64_t n = kbl_numel(t);
    if (n > 0x7fffffff) return kbl_dist_fail("dist: all_reduce: %lld elements, more than MPI's int count", (long long)n);
    if (n == 0) return 0;
    char what[64];
    snprintf(what, sizeof what, "all_reduce(%s) of %lld elements", OP_NAMES[op], (long long)n);
    if (t->device != KBL_CPU) return kbl_dist_nccl_run(what, t, op, -1);
    MPI_Op mop = op == KBL_DIST_MAX ? MPI_MAX : op == KBL_DIST_MIN ? MPI_MIN : MPI_SUM;
    MPI_Request req;
    if (MPI_Iallreduce(MPI_IN_PLACE, kbl_base(t), (int)n, kbl_dist_mpi_type(t->dtype), mop, MPI_COMM_WORLD,
                       &req) != MPI_SUCCESS)
        return kbl_dist_fail("dist: %s could not start", what);
    if (kbl_dist_wait(1, &req, what)) return -1;
    if (op == KBL_DIST_AVG) divide(t, size_);
    return 0;
}

int kbl_dist_broadcast(kbl_tensor *t, int root) {
    if (check_tensor("broadcast", t)) return -1;
    if (root < 0 || root >= size_) return kbl_dist_fail("dist: broadcast: root %d is not a rank (0..%d)", root, size_ - 1);
    int64_t n = kbl_numel(t);
    if (n == 0) return 0;
    char what[64];
    snprintf(what, sizeof what, "broadcast from rank %d of %lld elements", root, (long long)n);
    if (t->device != KBL_CPU) return kbl_dist_nccl_run(what, t, 0, root);
    int64_t bytes = n * (int64_t)kbl_dtype_size(t->dtype);
    if (bytes > 0x7fffffff) return kbl_dist_fail("dist: %s: more than 2 GiB", what);
    MPI_Request req;
    if (MPI_Ibcast(kbl_base(t), (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD, &req) != MPI_SUCCESS)
        return kbl_dist_fail("dist: %s could not start", what);
    return kbl_dist_wait(1, &req, what);
}

int kbl_dist_barrier(void) {
    if (!inited) return kbl_dist_fail("dist: barrier before kbl_dist_init");
    MPI_Request req;
    if (MPI_Ibarrier(MPI_COMM_WORLD, &req) != MPI_SUCCESS) return kbl_dist_fail("dist: barrier could not start");
    return kbl_dist_wait(1, &req, "barrier");
}

/* One round when every rank's bytes fit a slot (the per-step records of
 * kbl.dist.trainer): an allgather of fixed slots holding the length and the
 * bytes; a longer one on any rank takes a second round, an allgatherv, with
 * the lengths the first round gave every rank. */
#define SLOT 256
#define SLOT_DATA (SLOT - 8)

int kbl_dist_allgather_bytes(const void *data, int64_t n, int64_t *lens, char **out) {
    *out = NULL;
    if (!inited) return kbl_dist_fail("dist: allgather before kbl_dist_init");
    if (n < 0 || n > 0x7fffffff / 64) return kbl_dist_fail("dist: allgather: %lld bytes", (long long)n);
    char mine[SLOT] = {0};
    memcpy(mine, &n, 8);
    if (n <= SLOT_DATA && n > 0) memcpy(mine + 8, data, (size_t)n);
    char *slots = malloc((size_t)size_ * SLOT);
    int *counts = calloc((size_t)size_, sizeof *counts), *displs = calloc((size_t)size_, sizeof *displs);
    int rc = -1;
    MPI_Request req;
    if (!slots || !counts || !displs) {
        kbl_dist_fail("dist: allgather: out of memory");
        goto done;
    }
    if (MPI_Iallgather(mine, SLOT, MPI_BYTE, slots, SLOT, MPI_BYTE, MPI_COMM_WORLD, &req) != MPI_SUCCESS) {
        kbl_dist_fail("dist: allgather could not start");
        goto done;
    }
    if (kbl_dist_wait(1, &req, "allgather")) goto done;
    int64_t total = 0;
    bool fits = true;
    for (int r = 0; r < size_; r++) {
        memcpy(&lens[r], slots + (size_t)r * SLOT, 8);
        displs[r] = (int)total;
        counts[r] = (int)lens[r];
        total += lens[r];
        if (lens[r] > SLOT_DATA) fits = false;
    }
    *out = malloc((size_t)total + 1);
    if (!*out) {
        kbl_dist_fail("dist: allgather: out of memory");
        goto done;
    }
    if (fits) {
        for (int r = 0; r < size_; r++) memcpy(*out + displs[r], slots + (size_t)r * SLOT + 8, (size_t)lens[r]);
        rc = 0;
        goto done;
    }
    if (MPI_Iallgatherv(data, (int)n, MPI_BYTE, *out, counts, displs, MPI_BYTE, MPI_COMM_WORLD, &req) !=
        MPI_SUCCESS) {
        kbl_dist_fail("dist: allgather could not start");
        goto done;
    }
    rc = kbl_dist_wait(1, &req, "allgather (long)");
done:
    if (rc) free(*out), *out = NULL;
    free(slots);
    free(counts);
    free(displs);
    return rc;
}

void kbl_dist_free(void *p) { free(p); }

/* ---- NCCL, for CUDA tensors -------------------------------------------------- */

static const kbl_nccl_api *nccl;
static char nccl_why[512];

static void *open_beside(const char *name) {
    Dl_info info;
    char path[4096];
    if (dladdr((void *)&kbl_dist_init, &info) && info.dli_fname && strrchr(info.dli_fname, '/')) {
        const char *slash = strrchr(info.dli_fname, '/');
        snprintf(path, sizeof path, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname, name);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
    }
    return dlopen(name, RTLD_NOW | RTLD_LOCAL);
}

const kbl_nccl_api *kbl_dist_nccl(const char *op) {
    if (nccl) return nccl;
    if (nccl_why[0]) {
        kbl_dist_fail("dist: %s: CUDA tensors need NCCL: %s", op, nccl_why);
        return NULL;
    }
    void *h = open_beside("libkbl_nccl.so");
    kbl_nccl_entry entry = h ? (kbl_nccl_entry)dlsym(h, "kbl_nccl_api_get") : NULL;
    const kbl_nccl_api *api = entry ? entry() : NULL;
    char id[128] = {0};
    int bad = 0;
    if (!api) {
        const char *e = dlerror();
        snprintf(nccl_why, sizeof nccl_why, "cannot load libkbl_nccl.so (built when the CUDA toolkit has NCCL): %s",
                 e ? e : "no kbl_nccl_api_get");
        bad = 1;
    } else if (api->abi != KBL_NCCL_ABI) {
        snprintf(nccl_why, sizeof nccl_why, "libkbl_nccl.so speaks ABI %d, libkbl_mpi %d (rebuild both)", api->abi,
                 KBL_NCCL_ABI);
        bad = 1;
    } else if (rank_ == 0 && api->unique_id(id, nccl_why, sizeof nccl_why)) {
        bad = 1;
    }
    /* every rank learns whether any failed before joining, so none waits in join */
    int any = bad;
    MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any && !bad) snprintf(nccl_why, sizeof nccl_why, "NCCL is not usable on another rank");
    if (!any && api) {
        MPI_Bcast(id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (api->join(id, rank_, size_, local_rank_, nccl_why, sizeof nccl_why)) any = 1;
    }
    if (any) {
        kbl_dist_fail("dist: %s: CUDA tensors need NCCL: %s", op, nccl_why);
        return NULL;
    }
    nccl = api;
    return nccl;
}
