/* kbl_profile.h — the profiler's C side (profile.c): while it is on, the
 * autograd backward loop records one event per graph node and the data
 * prefetch threads one per batch they assemble; kbl.profile (Lua) reads them
 * back and merges them with the events it records itself. Off, each place that
 * records costs one test of a flag.
 *
 * kbl.h includes this header, so a C user of kbl.h sees it; the region between
 * KBL_CDEF_BEGIN and KBL_CDEF_END is plain C that the build appends to the
 * Lua binding's ffi.cdef text after kbl.h's own (cmake/gen_cdef.cmake).
 */
#ifndef KBL_PROFILE_H
#define KBL_PROFILE_H

#include "kbl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* KBL_CDEF_BEGIN */

/* One event. Times are seconds on CLOCK_MONOTONIC, the clock of kbl.clock, so
 * they line up with the events Lua records. For a backward node, shape[0] is
 * the shape of the node's output and shape[1], shape[2] those of its first two
 * inputs (ndim -1: none), and bit i of needs_grad says input i+1 takes a
 * gradient: enough to count a matmul's or a convolution's flops. */
typedef struct kbl_profile_event {
    const char *name;        /* a string that lives as long as the library */
    int32_t kind;            /* KBL_PROFILE_BACKWARD or KBL_PROFILE_DATA */
    int32_t tid;             /* the OS thread id (gettid) */
    double start, end;
    int32_t ndim[3];
    int32_t needs_grad;
    int64_t shape[3][8];
} kbl_profile_event;

enum { KBL_PROFILE_BACKWARD = 1, KBL_PROFILE_DATA = 2 };

/* Turns recording on (1) or off (0); returns the previous setting. */
int kbl_profile_enable(int on);
int kbl_profile_enabled(void);
/* Moves up to max recorded events, oldest first, into out; returns how many. */
int64_t kbl_profile_take(kbl_profile_event *out, int64_t max);
/* Events recorded and not yet taken; events dropped for want of memory. */
int64_t kbl_profile_count(void);
int64_t kbl_profile_dropped(void);
/* Forgets every recorded event. */
void kbl_profile_clear(void);
/* The calling thread's OS id, and the clock events are timed with. */
int32_t kbl_profile_thread_id(void);
double kbl_profile_clock(void);
/* sizeof(kbl_profile_event) as the C compiler lays it out (checked from Lua). */
size_t kbl_profile_event_size(void);

/* KBL_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* KBL_PROFILE_H */
