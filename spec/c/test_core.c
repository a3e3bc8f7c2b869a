/* test_core.c — the core from C alone: creation, a matmul + sum forward and
 * backward checked against hand-computed gradients, an error that returns NULL
 * with a message naming the shapes, views sharing storage, and every byte
 * released at the end. Exits non-zero naming the first check that failed. */
#include "kbl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "test_core: FAILED %s:%d: ", __FILE__, __LINE__);   \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, " [%s]\n", #cond);                                  \
            failures++;                                                         \
        }                                                                       \
    } while (0)

/* A NULL result is fatal: later checks would dereference it. */
#define MUST(ptr, what)                                                                 \
    do {                                                                                \
        if (!(ptr)) {                                                                   \
            fprintf(stderr, "test_core: FAILED %s returned NULL: %s\n", what, kbl_last_error()); \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

static double at(const kbl_tensor *t, int64_t i, int64_t j) {
    const double *p = kbl_data_ptr(t);
    return p[i * t->strides[0] + j * t->strides[1]];
}

static void test_creation(void) {
    int64_t shape[2] = {2, 3};
    kbl_tensor *z = kbl_zeros(2, shape, KBL_FLOAT32);
    MUST(z, "kbl_zeros");
    CHECK(z->ndim == 2 && z->shape[0] == 2 && z->shape[1] == 3, "zeros has shape [2, 3]");
    CHECK(z->strides[0] == 3 && z->strides[1] == 1, "zeros is contiguous row-major");
    CHECK(kbl_numel(z) == 6 && kbl_is_contiguous(z), "zeros has 6 contiguous elements");
    const float *zp = kbl_data_ptr(z);
    for (int i = 0; i < 6; i++) CHECK(zp[i] == 0.0f, "zeros element %d is 0", i);

    kbl_tensor *f = kbl_full(2, shape, 2.5, KBL_FLOAT64);
    MUST(f, "kbl_full");
    int ok = 0;
    kbl_tensor *s = kbl_sum(f, 0, NULL, 0);
    MUST(s, "kbl_sum");
    CHECK(kbl_item(s, &ok) == 15.0 && ok, "sum of full(2.5) over 6 elements is 15");

    kbl_tensor *r = kbl_arange(0, 5, 1, KBL_INT64);
    MUST(r, "kbl_arange");
    CHECK(kbl_numel(r) == 5 && ((int64_t *)kbl_data_ptr(r))[4] == 4, "arange(0, 5) ends at 4");
    CHECK(strcmp(kbl_dtype_name(r->dtype), "int64") == 0, "arange is int64");

    kbl_tensor *e = kbl_eye(3, -1, KBL_FLOAT32);
    MUST(e, "kbl_eye");
    const float *ep = kbl_data_ptr(e);
    CHECK(ep[0] == 1 && ep[1] == 0 && ep[4] == 1 && ep[8] == 1, "eye(3) is the identity");

    kbl_tensor *u = kbl_to_dtype(f, KBL_UINT8);
    MUST(u, "kbl_to_dtype");
    CHECK(((uint8_t *)kbl_data_ptr(u))[0] == 2, "2.5 converts to uint8 2");

    kbl_tensor_release(z);
    kbl_tensor_release(f);
    kbl_tensor_release(s);
    kbl_tensor_release(r);
    kbl_tensor_release(e);
    kbl_tensor_release(u);
}

/* loss = sum(a · w) for a [2, 3], w [3, 2]:
 * d loss / d w[k][j] = sum_i a[i][k];  d loss / d a[i][k] = sum_j w[k][j]. */
static void test_forward_backward(void) {
    const double av[6] = {1, 2, 3, 4, 5, 6};
    const double wv[6] = {0.5, -1, 2, 0, -3, 1.5};
    kbl_tensor *a = kbl_from_doubles(2, (int64_t[]){2, 3}, av, KBL_FLOAT64);
    kbl_tensor *w = kbl_from_doubles(2, (int64_t[]){3, 2}, wv, KBL_FLOAT64);
    MUST(a, "kbl_from_doubles(a)");
    MUST(w, "kbl_from_doubles(w)");
    CHECK(kbl_set_requires_grad(a, 1) == 0, "a can require grad");
    CHECK(kbl_set_requires_grad(w, 1) == 0, "w can require grad");

    kbl_tensor *y = kbl_matmul(a, w);
    MUST(y, "kbl_matmul");
    CHECK(y->shape[0] == 2 && y->shape[1] == 2, "a·w has shape [2, 2]");
    /* y[0][0] = 1*0.5 + 2*2 + 3*(-3) = -4.5;  y[1][1] = 4*(-1) + 5*0 + 6*1.5 = 5 */
    CHECK(fabs(at(y, 0, 0) + 4.5) < 1e-12, "y[0][0] = -4.5, got %g", at(y, 0, 0));
    CHECK(fabs(at(y, 1, 1) - 5.0) < 1e-12, "y[1][1] = 5, got %g", at(y, 1, 1));
    CHECK(kbl_grad_fn_name(y) && strcmp(kbl_grad_fn_name(y), "matmul") == 0, "y was made by matmul");

    kbl_tensor *loss = kbl_sum(y, 0, NULL, 0);
    MUST(loss, "kbl_sum(y)");
    CHECK(kbl_backward(loss, NULL, 0) == 0, "backward succeeds: %s", kbl_last_error());

    kbl_tensor *gw = kbl_get_grad(w), *ga = kbl_get_grad(a);
    MUST(gw, "kbl_get_grad(w)");
    MUST(ga, "kbl_get_grad(a)");
    CHECK(gw->shape[0] == 3 && gw->shape[1] == 2, "grad of w has w's shape");
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 2; j++) {
            double want = av[k] + av[3 + k];
            CHECK(fabs(at(gw, k, j) - want) < 1e-12, "dloss/dw[%d][%d] = %g, got %g", k, j, want, at(gw, k, j));
        }
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 3; k++) {
            double want = wv[2 * k] + wv[2 * k + 1];
            CHECK(fabs(at(ga, i, k) - want) < 1e-12, "dloss/da[%d][%d] = %g, got %g", i, k, want, at(ga, i, k));
        }

    /* the graph is freed: a second backward fails with a message */
    CHECK(kbl_backward(loss, NULL, 0) != 0, "a second backward through a freed graph fails");
    CHECK(strstr(kbl_last_error(), "already freed") != NULL, "the message says the graph was freed: %s",
          kbl_last_error());

    kbl_tensor_release(gw);
    kbl_tensor_release(ga);
    kbl_tensor_release(loss);
    kbl_tensor_release(y);
    kbl_tensor_release(a);
    kbl_tensor_release(w);
}

static void test_errors(void) {
    int64_t shape[2] = {2, 3};
    kbl_tensor *a = kbl_zeros(2, shape, KBL_FLOAT32);
    kbl_tensor *b = kbl_zeros(2, (int64_t[]){4, 5}, KBL_FLOAT32);
    MUST(a, "kbl_zeros(a)");
    MUST(b, "kbl_zeros(b)");
    kbl_clear_error();
    kbl_tensor *bad = kbl_matmul(a, b);
    CHECK(bad == NULL, "matmul of [2, 3] and [4, 5] returns NULL");
    const char *msg = kbl_last_error();
    CHECK(strstr(msg, "matmul") != NULL, "the message names the op: %s", msg);
    CHECK(strstr(msg, "[2, 3]") != NULL && strstr(msg, "[4, 5]") != NULL, "the message names both shapes: %s", msg);
    CHECK(strstr(msg, "float32") != NULL, "the message names the dtype: %s", msg);

    kbl_tensor *v = kbl_view(a, 1, (int64_t[]){7});
    CHECK(v == NULL && strstr(kbl_last_error(), "view") != NULL, "view of 6 elements as [7] fails");
    kbl_tensor *s = kbl_select(a, 0, 5);
    CHECK(s == NULL && strstr(kbl_last_error(), "out of range") != NULL, "select past the end fails");
    kbl_tensor *ints = kbl_zeros(1, (int64_t[]){3}, KBL_INT64);
    MUST(ints, "kbl_zeros(int64)");
    CHECK(kbl_set_requires_grad(ints, 1) != 0, "an int64 tensor refuses requires_grad");
    int ok = 1;
    kbl_item(a, &ok);
    CHECK(!ok && strstr(kbl_last_error(), "item") != NULL, "item of 6 elements fails");

    /* a freed tensor errors on use and does not crash */
    kbl_tensor *c = kbl_zeros(2, shape, KBL_FLOAT32);
    MUST(c, "kbl_zeros(c)");
    kbl_tensor_free_data(c);
    CHECK(kbl_tensor_is_freed(c), "free_data marks the tensor freed");
    kbl_tensor *sum = kbl_sum(c, 0, NULL, 0);
    CHECK(sum == NULL && strstr(kbl_last_error(), "freed") != NULL, "using a freed tensor fails: %s",
          kbl_last_error());

    kbl_tensor_release(c);
    kbl_tensor_release(ints);
    kbl_tensor_release(a);
    kbl_tensor_release(b);
}

static void test_views(void) {
    kbl_tensor *base = kbl_arange(0, 12, 1, KBL_FLOAT32);
    MUST(base, "kbl_arange");
    kbl_tensor *m = kbl_view(base, 2, (int64_t[]){3, 4});
    MUST(m, "kbl_view");
    kbl_tensor *t = kbl_transpose(m, 0, 1);
    MUST(t, "kbl_transpose");
    kbl_tensor *row = kbl_select(m, 0, 1);
    MUST(row, "kbl_select");
    kbl_tensor *col = kbl_narrow(t, 1, 2, 1);
    MUST(col, "kbl_narrow");
    kbl_tensor *row1 = kbl_unsqueeze(row, 0);
    MUST(row1, "kbl_unsqueeze");
    kbl_tensor *e = kbl_expand(row1, 2, (int64_t[]){5, 4});
    MUST(e, "kbl_expand");

    CHECK(kbl_same_storage(base, m) && kbl_same_storage(base, t) && kbl_same_storage(base, row) &&
              kbl_same_storage(base, col) && kbl_same_storage(base, e),
          "every view shares the base's storage");
    CHECK(!kbl_is_contiguous(t) && t->strides[0] == 1 && t->strides[1] == 4, "the transpose swaps strides");
    CHECK(e->strides[0] == 0, "expand repeats with stride 0");

    /* writing through a view changes the base */
    float *rp = kbl_data_ptr(row);
    rp[2] = 100.0f;                                 /* m[1][2], base[6] */
    CHECK(((float *)kbl_data_ptr(base))[6] == 100.0f, "a write through select shows in the base");
    CHECK(kbl_fill_(col, -1.0) == 0, "fill_ through a narrow of a transpose");
    const float *bp = kbl_data_ptr(base);
    CHECK(bp[8] == -1.0f && bp[9] == -1.0f && bp[10] == -1.0f && bp[11] == -1.0f && bp[7] == 7.0f,
          "the narrow of the transpose is row 3 of the base");

    /* a view keeps the storage alive after the base is released */
    kbl_tensor_release(base);
    kbl_tensor_release(m);
    CHECK(((float *)kbl_data_ptr(row))[2] == 100.0f, "the view outlives its base");
    kbl_tensor *c = kbl_contiguous(t);
    MUST(c, "kbl_contiguous");
    CHECK(!kbl_same_storage(c, t) && kbl_is_contiguous(c), "contiguous of a transpose copies");

    kbl_tensor_release(e);
    kbl_tensor_release(row1);
    kbl_tensor_release(c);
    kbl_tensor_release(t);
    kbl_tensor_release(row);
    kbl_tensor_release(col);
}

int main(void) {
    CHECK(kbl_memory_live_bytes() == 0, "no bytes live at start");
    test_creation();
    test_forward_backward();
    test_errors();
    test_views();
    int64_t live = kbl_memory_live_bytes();
    CHECK(live == 0, "releasing everything leaves 0 live bytes, got %lld", (long long)live);
    if (failures) {
        fprintf(stderr, "test_core: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_core: all checks passed\n");
    return 0;
}
