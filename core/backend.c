/* backend.c — finds the CUDA backend at run time: dlopens libkbl_cuda.so (beside
 * libkbl.so, then on the default search path) the first time CUDA is asked for,
 * takes its function table (backend.h) and starts the device; otherwise keeps
 * the reason, so that the same libkbl runs without a GPU, a driver or the CUDA
 * libraries. kbl_backend_of gives an op the table of its inputs' device (the
 * CPU's is core/cpu/backend.c), and the rules for operands on several devices
 * live here. Also the public kbl_cuda_* functions, host<->device copies and the
 * differentiable kbl_to_device. Nothing here includes a CUDA header. */
#include "internal.h"
#include "cpu/cpu.h"

#include <dlfcn.h> /* dladdr and Dl_info need _GNU_SOURCE, which CMakeLists.txt sets for this file */
#include <pthread.h>
#include <unistd.h>

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static const kbl_backend *cuda;      /* set once a device is ready */
static char reason[512] = "CUDA was not probed";

static const kbl_backend_host host = {kbl_fail};

/* dlopen's message, or a plainer one when the file is simply absent. */
static void *open_at(const char *path, char *why, size_t n) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h && why[0] == 0) {
        const char *e = dlerror();
        bool absent = strchr(path, '/') ? access(path, F_OK) != 0
                                        : e && strncmp(e, path, strlen(path)) == 0 && strstr(e, "No such file");
        if (!absent) snprintf(why, n, "%s", e ? e : "dlopen failed");
    }
    return h;
}

static void probe(void) {
    const char *off = getenv("KBL_NO_CUDA");
    if (off && off[0] && strcmp(off, "0") != 0) {
        snprintf(reason, sizeof reason, "disabled by KBL_NO_CUDA=%s", off);
        return;
    }
    char why[400] = "", path[4096];
    void *h = NULL;
    Dl_info info;
    /* beside libkbl.so: the build tree, or the installed lib directory */
    if (dladdr((void *)&kbl_cuda_is_available, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        int dirlen = slash ? (int)(slash - info.dli_fname) : 1;
        snprintf(path, sizeof path, "%.*s/libkbl_cuda.so", dirlen, slash ? info.dli_fname : ".");
        h = open_at(path, why, sizeof why);
    }
    if (!h) h = open_at("libkbl_cuda.so", why, sizeof why);
    if (!h) {
        if (why[0]) snprintf(reason, sizeof reason, "cannot load libkbl_cuda.so: %s", why);
        else snprintf(reason, sizeof reason, "libkbl_cuda.so is not installed (libkbl was built without CUDA)");
        return;
    }
    kbl_backend_entry entry = (kbl_backend_entry)dlsym(h, "kbl_cuda_backend");
    const kbl_backend *b = entry ? entry() : NULL;
    if (!b) {
        snprintf(reason, sizeof reason, "libkbl_cuda.so has no kbl_cuda_backend table");
        return;
    }
    if (b->abi != KBL_BACKEND_ABI) {
        snprintf(reason, sizeof reason, "libkbl_cuda.so speaks backend ABI %d, libkbl expects %d (rebuild both)",
                 b->abi, KBL_BACKEND_ABI);
        return;
    }
    /* the library stays loaded even when the device fails: the CUDA runtime
     * registers exit handlers that must find their code */
    if (b->init(&host, reason, sizeof reason)) return;
    reason[0] = 0;
    cuda = b;
}

const kbl_backend *kbl_cuda_table(const char *op) {
    pthread_once(&probe_once, probe);
    if (!cuda) kbl_fail("%s: no CUDA device: %s", op ? op : "cuda", reason);
    return cuda;
}

const kbl_backend *kbl_backend_of(const kbl_tensor *t) {
    return t->device == KBL_CPU ? kbl_cpu_backend() : cuda;
}

/* ---- the public functions -------------------------------------------------- */

int kbl_cuda_is_available(void) {
    pthread_once(&probe_once, probe);
    return cuda != NULL;
}

const char *kbl_cuda_unavailable_reason(void) {
    pthread_once(&probe_once, probe);
    return reason;
}

int kbl_cuda_device_count(void) { return kbl_cuda_is_available() ? cuda->device_count() : 0; }

const char *kbl_cuda_device_name(void) { return kbl_cuda_is_available() ? cuda->device_name() : ""; }

int kbl_cuda_synchronize(void) {
    const kbl_backend *b = kbl_cuda_table("synchronize");
    return b ? b->synchronize() : -1;
}

void kbl_cuda_memory_stats(int64_t out[5]) {
    for (int i = 0; i < 5; i++) out[i] = 0;
    if (kbl_cuda_is_available()) cuda->memory_stats(out);
}

void kbl_cuda_empty_cache(void) {
    if (kbl_cuda_is_available()) cuda->empty_cache();
}

void kbl_cuda_reset_peak(void) {
    if (kbl_cuda_is_available()) cuda->reset_peak();
}

/* ---- copies between devices ---------------------------------------------------- */

int kbl_device_memcpy(void *dst, const void *src, int64_t nbytes, int kind) {
    if (nbytes == 0) return 0;
    const kbl_backend *b = kbl_cuda_table("copy");
    return b ? b->memcpy(dst, src, nbytes, kind) : -1;
}

/* dst (contiguous, on device) = src (contiguous, same shape and dtype, other device) */
static int copy_across(kbl_tensor *dst, const kbl_tensor *src) {
    int64_t n = kbl_numel(src) * (int64_t)kbl_dtype_size(src->dtype);
    int kind = dst->device == KBL_CUDA ? (src->device == KBL_CUDA ? KBL_COPY_D2D : KBL_COPY_H2D) : KBL_COPY_D2H;
    return kbl_device_memcpy(kbl_base(dst), kbl_base(src), n, kind);
}

static kbl_tensor *contiguous_nograd(kbl_tensor *t) {
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *c = kbl_contiguous(t);
    kbl_set_grad_enabled(prev);
    return c;
}

/* t's values on device, contiguous; no graph */
static kbl_tensor *moved(kbl_tensor *t, int device) {
    kbl_tensor *c = contiguous_nograd(t);
    kbl_tensor *r = c ? kbl_empty_on(device, t->ndim, t->shape, t->dtype) : NULL;
    if (r && copy_across(r, c)) {
        kbl_tensor_release(r);
        r = NULL;
    }
    kbl_tensor_release(c);
    return r;
}

kbl_tensor *kbl_host_copy(kbl_tensor *t) {
    if (kbl_check_dev("to('cpu')", t, "tensor")) return NULL;
    if (t->device == KBL_CPU) return contiguous_nograd(t);
    return moved(t, KBL_CPU);
}

static int to_device_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    gin[0] = kbl_to_device(g, n->inputs[0]->device);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_to_device(kbl_tensor *t, int device) {
    if (kbl_check_dev("to_device", t, "tensor")) return NULL;
    if (device != KBL_CPU && device != KBL_CUDA) {
        kbl_fail("to_device: unknown device %d (0 is the cpu, 1 cuda)", device);
        return NULL;
    }
    if (t->device == device) return kbl_tensor_retain(t);
    if (device == KBL_CUDA && !kbl_cuda_table("to('cuda')")) return NULL;
    kbl_tensor *r = moved(t, device);
    if (r && kbl_is_float(t->dtype)) kbl_record("to_device", to_device_backward, r, 1, &t);
    return r;
}

int kbl_common_device(int n, kbl_tensor *const *ts) {
    for (int i = 0; i < n; i++)
        if (!(ts[i]->ndim == 0 && ts[i]->device == KBL_CPU)) return ts[i]->device;
    return ts[0]->device;
}

/* dst (any geometry) = src broadcast and converted, on another device: the
 * conversion runs on src's device, then one contiguous transfer. */
int kbl_copy_across(kbl_tensor *dst, const kbl_tensor *src) {
    kbl_tensor *tmp = kbl_empty_on(src->device, dst->ndim, dst->shape, dst->dtype);
    kbl_tensor *land = NULL;
    int rc = -1;
    if (!tmp || kbl_copy_(tmp, src)) goto done;
    land = kbl_is_contiguous(dst) ? kbl_tensor_retain(dst) : kbl_empty_like(dst, -1);
    if (!land) goto done;
    rc = copy_across(land, tmp);
    if (rc == 0 && land != dst) rc = kbl_copy_(dst, land);
done:
    kbl_release_n(2, tmp, land);
    return rc;
}

kbl_tensor *kbl_operand(const char *op, kbl_tensor *t, int device, int dtype) {
    if (t->device == device) return t->dtype == dtype || dtype < 0 ? kbl_tensor_retain(t) : kbl_to_dtype(t, dtype);
    if (t->ndim == 0 && t->device == KBL_CPU) {
        kbl_tensor *c = dtype < 0 || t->dtype == dtype ? kbl_tensor_retain(t) : kbl_to_dtype(t, dtype);
        kbl_tensor *r = c ? kbl_to_device(c, device) : NULL;
        kbl_tensor_release(c);
        return r;
    }
    kbl_fail("%s: tensors on different devices: %s is on %s, the other inputs on %s (move it with to())", op,
             KBL_DESC(t), kbl_device_name(t->device), kbl_device_name(device));
    return NULL;
}
