/* dnnl_cache.c — the small primitive map of dnnl_cache.h. */
#include "dnnl_cache.h"

static void prim_clear(kbl_dnnl_prim *p) {
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->in) dnnl_memory_destroy(p->in);
    if (p->out) dnnl_memory_destroy(p->out);
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    memset(p, 0, sizeof *p);
}

#define TRY(call, step)                                                                           \
    do {                                                                                          \
        dnnl_status_t st_ = (call);                                                               \
        if (st_ != dnnl_success) {                                                                \
            kbl_fail("%s: oneDNN %s failed (%s)", what, step, kbl_dnnl_status(st_));              \
            goto fail;                                                                            \
        }                                                                                         \
    } while (0)

int kbl_dnnl_prim_init(kbl_dnnl_prim *p, dnnl_primitive_desc_t pd, int in_id, int out_id, const char *what) {
    dnnl_engine_t eng = kbl_dnnl_engine();
    const dnnl_memory_desc_t *imd = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, in_id);
    const dnnl_memory_desc_t *omd = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, out_id);
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    TRY(dnnl_memory_create(&p->in, imd, eng, DNNL_MEMORY_NONE), "dnnl_memory_create");
    TRY(dnnl_memory_create(&p->out, omd, eng, DNNL_MEMORY_NONE), "dnnl_memory_create");
    p->scratch_bytes = smd ? (int64_t)dnnl_memory_desc_get_size(smd) : 0;
    if (p->scratch_bytes) TRY(dnnl_memory_create(&p->scratch, smd, eng, DNNL_MEMORY_NONE), "dnnl_memory_create");
    TRY(dnnl_primitive_create(&p->prim, pd), "dnnl_primitive_create");
    dnnl_primitive_desc_destroy(pd);
    return 0;
fail:
    dnnl_primitive_desc_destroy(pd);
    prim_clear(p);
    return -1;
}

dnnl_status_t kbl_dnnl_pd_create(dnnl_primitive_desc_t *pd, const_dnnl_op_desc_t desc, const_dnnl_primitive_desc_t hint) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, desc, attr, kbl_dnnl_engine(), hint);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

kbl_dnnl_prim *kbl_dnnl_cache_get(kbl_dnnl_cache *c, const int64_t *key, int n,
                                  int (*make)(kbl_dnnl_prim *p, const int64_t *key)) {
    int64_t k[KBL_DNNL_KEY] = {0};
    memcpy(k, key, sizeof(int64_t) * (size_t)n);
    int free_slot = -1;
    for (int i = 0; i < KBL_DNNL_SLOTS; i++) {
        if (c->slot[i].used && memcmp(c->slot[i].key, k, sizeof k) == 0) return &c->slot[i].p;
        if (!c->slot[i].used && free_slot < 0) free_slot = i;
    }
    int i = free_slot;
    if (i < 0) { /* full: replace in turn */
        i = c->next;
        c->next = (c->next + 1) % KBL_DNNL_SLOTS;
        prim_clear(&c->slot[i].p);
        c->slot[i].used = false;
    }
    if (kbl_dnnl_init() || make(&c->slot[i].p, k)) return NULL;
    memcpy(c->slot[i].key, k, sizeof k);
    c->slot[i].used = true;
    return &c->slot[i].p;
}

int kbl_dnnl_prim_run(const kbl_dnnl_prim *p, int in_id, const void *in, int out_id, void *out, const char *what) {
    void *scratch = NULL;
    int rc = -1, nargs = 2;
    dnnl_exec_arg_t args[3] = {{in_id, p->in}, {out_id, p->out}};
    TRY(dnnl_memory_set_data_handle(p->in, (void *)in), "dnnl_memory_set_data_handle");
    TRY(dnnl_memory_set_data_handle(p->out, out), "dnnl_memory_set_data_handle");
    if (p->scratch_bytes) {
        if (!(scratch = kbl_alloc(p->scratch_bytes))) goto fail;
        TRY(dnnl_memory_set_data_handle(p->scratch, scratch), "dnnl_memory_set_data_handle");
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
    }
    TRY(dnnl_primitive_execute(p->prim, kbl_dnnl_stream(), nargs, args), "execute");
    TRY(dnnl_stream_wait(kbl_dnnl_stream()), "dnnl_stream_wait");
    rc = 0;
fail:
    kbl_free(scratch, p->scratch_bytes);
    return rc;
}
