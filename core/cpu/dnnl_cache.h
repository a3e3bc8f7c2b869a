/* dnnl_cache.h — a small map from a key (up to 16 int64_t) to a oneDNN primitive
 * with one input and one output memory, for the one-input kernels (average
 * pooling, softmax): made on a miss, kept, replaced in turn when full. The
 * primitive runs with a user scratchpad from kbl_alloc (the caching allocator),
 * so cached primitives hold no memory between calls. */
#ifndef KBL_CPU_DNNL_CACHE_H
#define KBL_CPU_DNNL_CACHE_H

#include "../internal.h"
#include "dnnl_common.h"

#define KBL_DNNL_KEY 16
#define KBL_DNNL_SLOTS 16

typedef struct kbl_dnnl_prim {
    dnnl_primitive_t prim;
    dnnl_memory_t in, out, scratch; /* data handles set per call */
    int64_t scratch_bytes;
} kbl_dnnl_prim;

typedef struct kbl_dnnl_cache {
    struct {
        bool used;
        int64_t key[KBL_DNNL_KEY];
        kbl_dnnl_prim p;
    } slot[KBL_DNNL_SLOTS];
    int next;
} kbl_dnnl_cache;

/* Makes p->prim from primitive descriptor pd (taking pd over: it is destroyed
 * here) with in and out memory of the descs pd reports for in_id and out_id,
 * and the scratchpad's; 0, or -1 after kbl_fail naming `what`. */
int kbl_dnnl_prim_init(kbl_dnnl_prim *p, dnnl_primitive_desc_t pd, int in_id, int out_id, const char *what);

/* *pd for oneDNN op descriptor desc (hint: the forward pd of a backward one, or
 * NULL), made with a user scratchpad as kbl_dnnl_prim_run expects. */
dnnl_status_t kbl_dnnl_pd_create(dnnl_primitive_desc_t *pd, const_dnnl_op_desc_t desc, const_dnnl_primitive_desc_t hint);

/* The primitive for key[0..n) (n <= KBL_DNNL_KEY), made by make(p, key) on a
 * miss (make calls kbl_dnnl_prim_init); NULL after a failure. */
kbl_dnnl_prim *kbl_dnnl_cache_get(kbl_dnnl_cache *c, const int64_t *key, int n,
                                  int (*make)(kbl_dnnl_prim *p, const int64_t *key));

/* Runs p on in -> out (arguments in_id, out_id), waits for it; 0 or -1. */
int kbl_dnnl_prim_run(const kbl_dnnl_prim *p, int in_id, const void *in, int out_id, void *out, const char *what);

#endif /* KBL_CPU_DNNL_CACHE_H */
