/* all_reduce.c — the differentiable sum across processes that synchronized
 * batch norm needs (lua/kbl/dist/sync_batch_norm.lua): y = the sum of x over
 * every process of a data-parallel job, and its gradient the sum of the
 * gradients (every process's loss reads y). libkbl has no MPI: libkbl_mpi.so
 * sets the hook that sums; without it, one process, y is a copy of x. */
#include "internal.h"

static kbl_all_reduce_fn sum_fn;
static void *sum_ctx;

void kbl_set_all_reduce_hook(kbl_all_reduce_fn fn, void *ctx) {
    sum_fn = fn;
    sum_ctx = fn ? ctx : NULL;
}

/* a new contiguous tensor: t summed over the processes; no graph */
static kbl_tensor *summed(kbl_tensor *t) {
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *c = kbl_clone(t);
    kbl_set_grad_enabled(prev);
    if (c && sum_fn && sum_fn(c, sum_ctx)) {
        kbl_tensor_release(c);
        kbl_fail("all_reduce_sum: the sum across processes of %s failed", KBL_DESC(t));
        return NULL;
    }
    return c;
}

static int all_reduce_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    (void)n;
    gin[0] = summed(g);
    return gin[0] ? 0 : -1;
}

kbl_tensor *kbl_all_reduce_sum(kbl_tensor *x) {
    if (kbl_check_dev("all_reduce_sum", x, "input") || kbl_check_float("all_reduce_sum", x)) return NULL;
    kbl_tensor *y = summed(x);
    if (y) kbl_record("all_reduce_sum", all_reduce_backward, y, 1, &x);
    return y;
}
