/* iter.c — walks up to three strided operands together, the engine under every
 * elementwise kernel: dims are coalesced, the innermost run goes to a tight loop,
 * the outer runs are split over threads when the work is large. */
#include "internal.h"

#include <omp.h>

void kbl_iter_init(kbl_iter *it, int ndim, const int64_t *shape, int nops, char **base,
                   int64_t strides[][KBL_MAX_DIMS], const size_t *esize) {
    it->nops = nops;
    for (int k = 0; k < nops; k++) {
        it->base[k] = base[k];
        it->esize[k] = esize[k];
    }
    /* drop size-1 dims, then merge a dim into the next when every operand allows */
    int nd = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        if (nd > 0) {
            bool merge = true;
            for (int k = 0; k < nops; k++)
                if (it->strides[k][nd - 1] != strides[k][d] * shape[d]) merge = false;
            if (merge) {
                it->shape[nd - 1] *= shape[d];
                for (int k = 0; k < nops; k++) it->strides[k][nd - 1] = strides[k][d];
                continue;
            }
        }
        it->shape[nd] = shape[d];
        for (int k = 0; k < nops; k++) it->strides[k][nd] = strides[k][d];
        nd++;
    }
    if (nd == 0) {
        bool empty = false;
        for (int d = 0; d < ndim; d++)
            if (shape[d] == 0) empty = true;
        it->shape[0] = empty ? 0 : 1;
        for (int k = 0; k < nops; k++) it->strides[k][0] = 1;
        nd = 1;
    }
    it->ndim = nd;
}

static void run_range(const kbl_iter *it, int64_t begin, int64_t end, kbl_run_fn fn, void *ctx) {
    int nd = it->ndim;
    int64_t inner = it->shape[nd - 1];
    int64_t inner_strides[3];
    for (int k = 0; k < it->nops; k++) inner_strides[k] = it->strides[k][nd - 1];
    for (int64_t o = begin; o < end; o++) {
        char *ptrs[3];
        int64_t rem = o;
        for (int k = 0; k < it->nops; k++) ptrs[k] = it->base[k];
        for (int d = nd - 2; d >= 0; d--) {
            int64_t i = rem % it->shape[d];
            rem /= it->shape[d];
            for (int k = 0; k < it->nops; k++)
                ptrs[k] += i * it->strides[k][d] * (int64_t)it->esize[k];
        }
        fn(ptrs, inner_strides, inner, ctx);
    }
}

void kbl_iter_run(const kbl_iter *it, kbl_run_fn fn, void *ctx) {
    int nd = it->ndim;
    int64_t outer = 1;
    for (int d = 0; d < nd - 1; d++) outer *= it->shape[d];
    int64_t inner = it->shape[nd - 1];
    if (inner == 0 || outer == 0) return;
    int nt = kbl_threads();
    if (nt <= 1 || outer * inner < KBL_PARALLEL_GRAIN) {
        run_range(it, 0, outer, fn, ctx);
        return;
    }
    if (outer == 1) {
        /* one long run: split it into chunks along the inner dim */
        int64_t chunk = (inner + nt - 1) / nt;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int t = 0; t < nt; t++) {
            int64_t b = t * chunk, e = b + chunk < inner ? b + chunk : inner;
            if (b >= e) continue;
            char *ptrs[3];
            for (int k = 0; k < it->nops; k++)
                ptrs[k] = it->base[k] + b * it->strides[k][0] * (int64_t)it->esize[k];
            int64_t st[3];
            for (int k = 0; k < it->nops; k++) st[k] = it->strides[k][0];
            fn(ptrs, st, e - b, ctx);
        }
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int64_t chunk = (outer + n - 1) / n;
        int64_t b = t * chunk, e = b + chunk < outer ? b + chunk : outer;
        if (b < e) run_range(it, b, e, fn, ctx);
    }
}
