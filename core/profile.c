/* profile.c — the profiler's event buffer: while kbl_profile_on is set, the
 * backward loop (autograd.c) and the data prefetch threads (data_batch.c) add
 * timed events here, under a mutex as several threads record; Lua takes them
 * out (kbl.profile). Off, nothing here runs: the recording places test the
 * flag first. */
#include "internal.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int kbl_profile_on;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static kbl_profile_event *events;
static int64_t count, cap, dropped;

int kbl_profile_enable(int on) {
    return __atomic_exchange_n(&kbl_profile_on, on != 0, __ATOMIC_SEQ_CST);
}

int kbl_profile_enabled(void) { return kbl_profiling(); }

double kbl_profile_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9; /* as kbl.clock computes it */
}

int32_t kbl_profile_thread_id(void) {
    static _Thread_local int32_t tid;
    if (!tid) tid = (int32_t)syscall(SYS_gettid);
    return tid;
}

size_t kbl_profile_event_size(void) { return sizeof(kbl_profile_event); }

/* A new event at the end of the buffer, its shapes absent; NULL (counted as
 * dropped) when the buffer cannot grow. Called with the lock held. */
static kbl_profile_event *push(const char *name, int kind, double start, double end, int32_t tid) {
    if (count == cap) {
        int64_t ncap = cap ? 2 * cap : 4096;
        kbl_profile_event *e = realloc(events, (size_t)ncap * sizeof *e);
        if (!e) {
            dropped++;
            return NULL;
        }
        events = e;
        cap = ncap;
    }
    kbl_profile_event *e = &events[count++];
    memset(e, 0, sizeof *e);
    for (int i = 0; i < 3; i++) e->ndim[i] = -1;
    e->name = name;
    e->kind = kind;
    e->tid = tid;
    e->start = start;
    e->end = end;
    return e;
}

void kbl_profile_add(const char *name, int kind, double start, double end) {
    int32_t tid = kbl_profile_thread_id();
    pthread_mutex_lock(&lock);
    push(name, kind, start, end, tid);
    pthread_mutex_unlock(&lock);
}

static void put_shape(kbl_profile_event *e, int slot, int ndim, const int64_t *shape) {
    e->ndim[slot] = ndim;
    memcpy(e->shape[slot], shape, (size_t)ndim * sizeof *shape);
}

void kbl_profile_node(const kbl_node *node, double start, double end) {
    int32_t tid = kbl_profile_thread_id();
    pthread_mutex_lock(&lock);
    kbl_profile_event *e = push(node->name, KBL_PROFILE_BACKWARD, start, end, tid);
    if (e) {
        put_shape(e, 0, node->out_ndim, node->out_shape);
        for (int i = 0; i < 2 && i < node->ninputs; i++) {
            const kbl_tensor *in = node->inputs[i];
            if (!in) continue;
            put_shape(e, i + 1, in->ndim, in->shape);
            if (in->requires_grad) e->needs_grad |= 1 << i;
        }
    }
    pthread_mutex_unlock(&lock);
}

int64_t kbl_profile_take(kbl_profile_event *out, int64_t max) {
    if (!out || max <= 0) return 0;
    pthread_mutex_lock(&lock);
    int64_t n = count < max ? count : max;
    if (n > 0) {
        memcpy(out, events, (size_t)n * sizeof *out);
        if (count > n) memmove(events, events + n, (size_t)(count - n) * sizeof *events);
        count -= n;
    }
    pthread_mutex_unlock(&lock);
    return n;
}

int64_t kbl_profile_count(void) {
    pthread_mutex_lock(&lock);
    int64_t n = count;
    pthread_mutex_unlock(&lock);
    return n;
}

int64_t kbl_profile_dropped(void) {
    pthread_mutex_lock(&lock);
    int64_t n = dropped;
    pthread_mutex_unlock(&lock);
    return n;
}

void kbl_profile_clear(void) {
    pthread_mutex_lock(&lock);
    free(events);
    events = NULL;
    count = cap = dropped = 0;
    pthread_mutex_unlock(&lock);
}
