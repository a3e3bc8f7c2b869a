/* autograd.c — define-by-run reverse mode: ops record nodes (backward function,
 * inputs, saved values); kbl_backward sorts the graph once, runs the backward
 * functions in reverse topological order, accumulates into leaves' .grad and
 * frees the graph. Backward functions are written with ops, in no-grad mode. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static _Thread_local int grad_disabled;
static uint32_t visit_epoch;

int kbl_is_grad_enabled(void) { return !grad_disabled; }

int kbl_set_grad_enabled(int flag) {
    int prev = !grad_disabled;
    grad_disabled = !flag;
    return prev;
}

kbl_node *kbl_record(const char *name, kbl_backward_fn fn, kbl_tensor *out, int n, kbl_tensor **inputs) {
    if (grad_disabled || !out) return NULL;
    bool any = false;
    for (int i = 0; i < n; i++)
        if (kbl_needs_grad(inputs[i])) any = true;
    if (!any) return NULL;
    kbl_node *node = calloc(1, sizeof *node);
    kbl_tensor **in = calloc((size_t)n, sizeof *in);
    if (!node || !in) {
        free(node);
        free(in);
        return NULL; /* out of memory: the result simply carries no graph */
    }
    node->name = name;
    node->backward = fn;
    node->ninputs = n;
    node->inputs = in;
    for (int i = 0; i < n; i++) in[i] = kbl_tensor_retain(inputs[i]);
    node->out_ndim = out->ndim;
    memcpy(node->out_shape, out->shape, sizeof out->shape);
    node->out_dtype = out->dtype;
    node->refcount = 1;
    out->grad_fn = node;
    out->requires_grad = 1;
    return node;
}

void kbl_node_save(kbl_node *n, int slot, kbl_tensor *t) {
    if (!n || slot < 0 || slot >= KBL_NODE_SAVED) return;
    kbl_tensor_release(n->saved[slot]);
    n->saved[slot] = t ? kbl_alias(t) : NULL;
}

kbl_tensor *kbl_temps_check(kbl_temps *s, kbl_tensor *t) {
    if (!t && !s->failed) {
        s->failed = 1;
        snprintf(s->error, sizeof s->error, "%s", kbl_last_error());
    }
    return t;
}

kbl_tensor *kbl_temps_keep(kbl_temps *s, kbl_tensor *t) {
    if (t && s->n == (int)(sizeof s->t / sizeof s->t[0])) {
        kbl_fail("internal: a backward rule keeps more than %d temporaries", s->n);
        kbl_tensor_release(t);
        t = NULL;
    }
    if (t) s->t[s->n++] = t;
    return kbl_temps_check(s, t);
}

int kbl_temps_release(kbl_temps *s) {
    for (int i = 0; i < s->n; i++) kbl_tensor_release(s->t[i]);
    s->n = 0;
    return s->failed ? kbl_fail("%s", s->error) : 0;
}

static void node_free_graph(kbl_node *n) {
    for (int i = 0; i < n->ninputs; i++) {
        kbl_tensor_release(n->inputs[i]);
        n->inputs[i] = NULL;
    }
    for (int i = 0; i < KBL_NODE_SAVED; i++) {
        kbl_tensor_release(n->saved[i]);
        n->saved[i] = NULL;
    }
    kbl_tensor_release(n->grad_accum);
    n->grad_accum = NULL;
    n->freed = 1;
}

void kbl_node_release(kbl_node *n) {
    if (!n || __atomic_sub_fetch(&n->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    node_free_graph(n);
    free(n->inputs);
    free(n);
}

int kbl_set_requires_grad(kbl_tensor *t, int flag) {
    if (kbl_check_dev("requires_grad", t, "tensor")) return -1;
    if (t->grad_fn && !flag)
        return kbl_fail("requires_grad: cannot turn off on a non-leaf tensor made by %s; use detach()",
                        t->grad_fn->name);
    if (flag && !kbl_is_float(t->dtype))
        return kbl_fail("requires_grad: only float tensors can require gradients, got %s", KBL_DESC(t));
    t->requires_grad = flag != 0;
    return 0;
}

kbl_tensor *kbl_detach(kbl_tensor *t) {
    if (kbl_check_dev("detach", t, "tensor")) return NULL;
    return kbl_alias(t);
}

kbl_tensor *kbl_get_grad(kbl_tensor *t) { return t ? kbl_tensor_retain(t->grad) : NULL; }

int kbl_set_grad(kbl_tensor *t, kbl_tensor *grad) {
    if (grad && (!kbl_same_shape(t, grad) || grad->dtype != t->dtype)) {
        char a[96], b[96];
        return kbl_fail("set_grad: gradient %s does not match tensor %s", kbl_describe(grad, a, 96),
                        kbl_describe(t, b, 96));
    }
    if (grad && kbl_check_same_device("set_grad", t, grad)) return -1;
    kbl_tensor *old = t->grad;
    t->grad = kbl_tensor_retain(grad);
    kbl_tensor_release(old);
    return 0;
}

const char *kbl_grad_fn_name(const kbl_tensor *t) { return t && t->grad_fn ? t->grad_fn->name : NULL; }

kbl_tensor *kbl_sum_to(kbl_tensor *g, int ndim, const int64_t *shape) {
    if (kbl_check_dev("sum_to", g, "gradient")) return NULL;
    int lead = g->ndim - ndim;
    if (lead < 0) {
        kbl_fail("sum_to: cannot reduce %s to %d dims", KBL_DESC(g), ndim);
        return NULL;
    }
    int dims[KBL_MAX_DIMS], nd = 0;
    for (int d = 0; d < g->ndim; d++) {
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1)) dims[nd++] = d;
        else if (shape[d - lead] != g->shape[d]) {
            kbl_fail("sum_to: %s does not reduce to the given shape (dim %d)", KBL_DESC(g), d + 1);
            return NULL;
        }
    }
    if (nd == 0) return kbl_tensor_retain(g);
    kbl_tensor *s = kbl_sum(g, nd, dims, 1);
    if (!s || lead == 0) return s;
    kbl_tensor *v = kbl_view(s, ndim, shape);
    kbl_tensor_release(s);
    return v;
}

/* Adds g into *acc (which may be NULL); takes ownership of g. */
static int accumulate(kbl_tensor **acc, kbl_tensor *g) {
    if (!*acc) {
        *acc = g;
        return 0;
    }
    kbl_tensor *s = kbl_add(*acc, g);
    kbl_tensor_release(g);
    if (!s) return -1;
    kbl_tensor_release(*acc);
    *acc = s;
    return 0;
}

/* Accumulates into a leaf's .grad, which kbl owns and may update in place. */
static int accumulate_leaf(kbl_tensor *leaf, kbl_tensor *g) {
    if (g->dtype != leaf->dtype) {
        kbl_tensor *c = kbl_to_dtype(g, leaf->dtype);
        kbl_tensor_release(g);
        if (!c) return -1;
        g = c;
    }
    if (leaf->grad) {
        int rc = kbl_add_(leaf->grad, g, 1.0);
        kbl_tensor_release(g);
        return rc;
    }
    bool owned = g->refcount == 1 && g->storage->refcount == 1 && kbl_is_contiguous(g) && !g->grad_fn;
    if (!owned) {
        kbl_tensor *c = kbl_empty_like(g, -1);
        if (!c || kbl_copy_(c, g)) {
            kbl_tensor_release(c);
            kbl_tensor_release(g);
            return -1;
        }
        kbl_tensor_release(g);
        g = c;
    }
    g->requires_grad = 0;
    leaf->grad = g;
    return 0;
}

/* Post-order of the graph below root, iteratively (deep graphs do not recurse). */
static kbl_node **topo_sort(kbl_node *root, int *count) {
    uint32_t epoch = ++visit_epoch;
    int cap = 64, n = 0, sp = 0, scap = 64;
    kbl_node **order = malloc((size_t)cap * sizeof *order);
    struct frame { kbl_node *node; int next; } *stack = malloc((size_t)scap * sizeof *stack);
    if (!order || !stack) goto oom;
    stack[sp++] = (struct frame){root, 0};
    root->mark = (int32_t)epoch;
    while (sp > 0) {
        struct frame *f = &stack[sp - 1];
        if (f->next < f->node->ninputs) {
            kbl_tensor *in = f->node->inputs[f->next++];
            kbl_node *child = in && in->requires_grad ? in->grad_fn : NULL;
            if (child && child->mark != (int32_t)epoch) {
                child->mark = (int32_t)epoch;
                if (sp == scap) {
                    scap *= 2;
                    struct frame *s2 = realloc(stack, (size_t)scap * sizeof *stack);
                    if (!s2) goto oom;
                    stack = s2;
                }
                stack[sp++] = (struct frame){child, 0};
            }
            continue;
        }
        if (n == cap) {
            cap *= 2;
            kbl_node **o2 = realloc(order, (size_t)cap * sizeof *order);
            if (!o2) goto oom;
            order = o2;
        }
        order[n++] = f->node;
        sp--;
    }
    free(stack);
    *count = n;
    return order;
oom:
    free(order);
    free(stack);
    kbl_fail("backward: out of memory sorting the graph");
    return NULL;
}

static int check_not_freed(kbl_node **order, int n) {
    for (int i = 0; i < n; i++)
        if (order[i]->freed)
            return kbl_fail("backward: the graph through '%s' was already freed by an earlier "
                            "backward; pass retain_graph to the first backward to go through it twice",
                            order[i]->name);
    return 0;
}

/* ---- the grad-ready hook ----------------------------------------------------
 * A leaf's gradient is final once every node that has it as an input has run:
 * the references are counted before the walk and counted down after each node
 * (a node that gets no gradient counts too). */
static kbl_grad_ready_fn ready_fn;
static void *ready_ctx;

void kbl_set_grad_ready_hook(kbl_grad_ready_fn fn, void *ctx) {
    ready_fn = fn;
    ready_ctx = fn ? ctx : NULL;
}

typedef struct leaf_counts {
    int cap;                 /* a power of two; 0 when no hook is set */
    kbl_tensor **key;
    int *left;
} leaf_counts;

static bool is_leaf_input(const kbl_tensor *in) { return in && in->requires_grad && !in->grad_fn; }

static int *leaf_slot(leaf_counts *lc, kbl_tensor *t) {
    uintptr_t h = (uintptr_t)t * 0x9E3779B97F4A7C15ull;
    for (size_t s = (size_t)(h >> 20) & (size_t)(lc->cap - 1);; s = (s + 1) & (size_t)(lc->cap - 1)) {
        if (lc->key[s] == t || !lc->key[s]) {
            lc->key[s] = t;
            return &lc->left[s];
        }
    }
}

static int leaf_counts_init(leaf_counts *lc, kbl_node **order, int n) {
    memset(lc, 0, sizeof *lc);
    if (!ready_fn) return 0;
    int64_t refs = 0;
    for (int k = 0; k < n; k++) refs += order[k]->ninputs;
    lc->cap = 16;
    while (lc->cap < 2 * refs) lc->cap *= 2;
    lc->key = calloc((size_t)lc->cap, sizeof *lc->key);
    lc->left = calloc((size_t)lc->cap, sizeof *lc->left);
    if (!lc->key || !lc->left) {
        free(lc->key), free(lc->left);
        lc->key = NULL, lc->left = NULL;
        lc->cap = 0;
        return kbl_fail("backward: out of memory counting the leaves");
    }
    for (int k = 0; k < n; k++)
        for (int i = 0; i < order[k]->ninputs; i++)
            if (is_leaf_input(order[k]->inputs[i])) ++*leaf_slot(lc, order[k]->inputs[i]);
    return 0;
}

static int call_ready(kbl_tensor *leaf) {
    if (!ready_fn || !leaf->grad || ready_fn(leaf, ready_ctx) == 0) return 0;
    return kbl_fail("backward: the grad-ready hook failed on the leaf %s", KBL_DESC(leaf));
}

/* node has run: its leaf inputs wait for one contribution fewer */
static int leaves_seen(leaf_counts *lc, kbl_node *node) {
    if (!lc->cap) return 0;
    for (int i = 0; i < node->ninputs; i++) {
        kbl_tensor *in = node->inputs[i];
        if (is_leaf_input(in) && --*leaf_slot(lc, in) == 0 && call_ready(in)) return -1;
    }
    return 0;
}

int kbl_backward(kbl_tensor *t, kbl_tensor *grad, int retain_graph) {
    if (kbl_check_dev("backward", t, "tensor")) return -1;
    if (!t->requires_grad)
        return kbl_fail("backward: tensor %s does not require grad and has no grad_fn", KBL_DESC(t));
    if (t->grad_fn && t->grad_fn->freed) {
        kbl_node *r = t->grad_fn;
        return check_not_freed(&r, 1);
    }
    kbl_tensor *g0;
    if (!grad) {
        if (kbl_numel(t) != 1)
            return kbl_fail("backward: grad can be implicit only for a tensor of one element; "
                            "%s needs an explicit gradient", KBL_DESC(t));
        g0 = kbl_full_on(t->device, t->ndim, t->shape, 1.0, t->dtype);
    } else {
        if (!kbl_same_shape(grad, t)) {
            char a[96], b[96];
            return kbl_fail("backward: gradient %s does not match tensor %s", kbl_describe(grad, a, 96),
                            kbl_describe(t, b, 96));
        }
        if (kbl_check_dev("backward", grad, "gradient") || kbl_check_same_device("backward", t, grad)) return -1;
        g0 = kbl_tensor_retain(grad);
    }
    if (!g0) return -1;
    int prev = kbl_set_grad_enabled(0);
    int rc = 0;
    if (!t->grad_fn) {
        rc = accumulate_leaf(t, g0);
        if (rc == 0) rc = call_ready(t);
        kbl_set_grad_enabled(prev);
        return rc;
    }
    int n = 0;
    kbl_node **order = topo_sort(t->grad_fn, &n);
    leaf_counts lc = {0};
    if (!order || check_not_freed(order, n) || leaf_counts_init(&lc, order, n)) {
        kbl_tensor_release(g0);
        free(order);
        kbl_set_grad_enabled(prev);
        return -1;
    }
    /* hold every node: freeing one node's inputs may drop the last reference to another */
    for (int k = 0; k < n; k++) __atomic_add_fetch(&order[k]->refcount, 1, __ATOMIC_ACQ_REL);
    t->grad_fn->grad_accum = g0;
    kbl_tensor *gin_small[8];
    for (int k = n - 1; k >= 0 && rc == 0; k--) {
        kbl_node *node = order[k];
        kbl_tensor *g = node->grad_accum;
        node->grad_accum = NULL;
        if (!g) {
            rc = leaves_seen(&lc, node);
            continue;
        }
        /* the profiler times each node: its rule and the accumulation of what it gives,
         * until the device has done them */
        const kbl_backend *timed = kbl_profiling() ? kbl_backend_of(g) : NULL;
        double t0 = timed ? kbl_profile_clock() : 0;
        kbl_tensor **gin = node->ninputs <= 8 ? gin_small : calloc((size_t)node->ninputs, sizeof *gin);
        if (!gin) {
            kbl_tensor_release(g);
            rc = kbl_fail("backward: out of memory");
            break;
        }
        memset(gin, 0, sizeof(*gin) * (size_t)(node->ninputs <= 8 ? 8 : node->ninputs));
        rc = node->backward(node, g, gin);
        if (rc) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", kbl_last_error());
            kbl_fail("backward of %s: %s", node->name, msg);
        }
        kbl_tensor_release(g);
        for (int i = 0; i < node->ninputs; i++) {
            kbl_tensor *in = node->inputs[i], *gi = gin[i];
            if (!gi) continue;
            if (rc || !in || !in->requires_grad) {
                kbl_tensor_release(gi);
                continue;
            }
            if (!kbl_same_shape(gi, in)) {
                kbl_tensor *r = kbl_sum_to(gi, in->ndim, in->shape);
                kbl_tensor_release(gi);
                if (!r) {
                    rc = -1;
                    continue;
                }
                gi = r;
            }
            if (in->grad_fn) rc = accumulate(&in->grad_fn->grad_accum, gi);
            else rc = accumulate_leaf(in, gi);
        }
        if (gin != gin_small) free(gin);
        if (timed) {
            timed->synchronize();
            kbl_profile_node(node, t0, kbl_profile_clock());
        }
        if (rc == 0) rc = leaves_seen(&lc, node);
    }
    free(lc.key);
    free(lc.left);
    for (int k = 0; k < n; k++) {
        kbl_tensor_release(order[k]->grad_accum);
        order[k]->grad_accum = NULL;
        if (!retain_graph) node_free_graph(order[k]);
    }
    for (int k = 0; k < n; k++) kbl_node_release(order[k]);
    free(order);
    kbl_set_grad_enabled(prev);
    return rc;
}
