/* index.c — the CPU's indexing kernels on contiguous data with 0-based int64
 * indices (core/backend.h describes each kind): index_select, index_add,
 * embedding_backward, one_hot, gather and scatter_add, and the range check of
 * an index buffer. */
#include "cpu.h"

int kbl_cpu_index_check(const int64_t *idx, int64_t n, int64_t size, int64_t skip, int64_t *bad_pos_host,
                        int64_t *bad_val_host) {
    *bad_pos_host = -1;
    *bad_val_host = 0;
    for (int64_t i = 0; i < n; i++)
        if (idx[i] != skip && (idx[i] < 0 || idx[i] >= size)) {
            *bad_pos_host = i;
            *bad_val_host = idx[i];
            break;
        }
    return 0;
}

/* out[o, j, i] = src[o, idx[j], i]: whole rows of inner elements */
static void index_select(const kbl_index_args *a) {
    size_t row = (size_t)a->inner * kbl_dtype_size(a->dtype);
    const char *s = a->src;
    char *o = a->out;
    const int64_t *ip = a->idx;
    int64_t outer = a->outer, n = a->n, size = a->size;
    int nt = outer * n * a->inner >= KBL_PARALLEL_GRAIN ? kbl_threads() : 1;
#pragma omp parallel for collapse(2) num_threads(nt) schedule(static)
    for (int64_t x = 0; x < outer; x++)
        for (int64_t j = 0; j < n; j++)
            memcpy(o + (size_t)(x * n + j) * row, s + (size_t)(x * size + ip[j]) * row, row);
}

/* dst[o, idx[j], i] += src[o, j, i]; dst zero-initialised by the caller */
#define INDEX_ADD(T)                                                                   \
    for (int64_t o = 0; o < a->outer; o++)                                             \
        for (int64_t j = 0; j < a->n; j++) {                                           \
            T *out = (T *)a->out + (o * a->size + a->idx[j]) * a->inner;               \
            const T *in = (const T *)a->src + (o * a->n + j) * a->inner;               \
            for (int64_t i = 0; i < a->inner; i++) out[i] += in[i];                    \
        }

/* dst[idx[j], :] += src[j, :], split over column blocks: no atomics, and sums
 * that do not depend on the thread count */
#define EMB_BWD(T)                                                                      \
    do {                                                                                \
        const T *gp = a->src;                                                           \
        T *dp = a->out;                                                                 \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                    \
        for (int64_t blk = 0; blk < nblk; blk++) {                                      \
            int64_t j0 = blk * 64, j1 = j0 + 64 < dim ? j0 + 64 : dim;                  \
            for (int64_t i = 0; i < n; i++) {                                           \
                if (ip[i] == a->skip) continue;                                         \
                T *d = dp + ip[i] * dim;                                                \
                const T *g = gp + i * dim;                                              \
                for (int64_t j = j0; j < j1; j++) d[j] += g[j];                         \
            }                                                                           \
        }                                                                               \
    } while (0)

static void embedding_backward(const kbl_index_args *a) {
    const int64_t *ip = a->idx;
    int64_t n = a->n, dim = a->inner, nblk = (dim + 63) / 64;
    int nt = n * dim >= KBL_PARALLEL_GRAIN && nblk > 1 ? kbl_threads() : 1;
    KBL_FLOAT_CASES(a->dtype, EMB_BWD)
}

/* The offset in a tensor of `strides` of each element i of an index of
 * idx_shape, with dim `dim` replaced by the index value; BODY sees i and off. */
#define FOR_INDEXED(a, strides, ...)                                                      \
    do {                                                                                  \
        int64_t n_ = 1;                                                                   \
        for (int e_ = 0; e_ < (a)->ndim; e_++) n_ *= (a)->idx_shape[e_];                  \
        for (int64_t i = 0; i < n_; i++) {                                                \
            int64_t rem_ = i, off = 0;                                                    \
            for (int e_ = (a)->ndim - 1; e_ >= 0; e_--) {                                 \
                int64_t c_ = rem_ % (a)->idx_shape[e_];                                   \
                rem_ /= (a)->idx_shape[e_];                                               \
                off += (e_ == (a)->dim ? (a)->idx[i] : c_) * (strides)[e_];               \
            }                                                                             \
            __VA_ARGS__;                                                                  \
        }                                                                                 \
    } while (0)

int kbl_cpu_index(const kbl_index_args *a) {
    switch (a->kind) {
    case KBL_INDEX_SELECT:
        index_select(a);
        break;
    case KBL_INDEX_ADD:
        if (a->dtype == KBL_FLOAT32) {
            INDEX_ADD(float)
        } else {
            INDEX_ADD(double)
        }
        break;
    case KBL_EMBEDDING_BACKWARD:
        embedding_backward(a);
        break;
    case KBL_ONE_HOT: {
        int64_t *o = a->out;
        for (int64_t i = 0; i < a->n; i++) o[i * a->size + a->idx[i]] = 1;
        break;
    }
    case KBL_GATHER: {
        const char *src = a->src;
        char *o = a->out;
        size_t es = kbl_dtype_size(a->dtype);
        FOR_INDEXED(a, a->a_strides, memcpy(o + (size_t)i * es, src + off * (int64_t)es, es));
        break;
    }
    case KBL_SCATTER_ADD: {
        char *o = a->out;
        const char *s = a->src;
        int dt = a->dtype;
        /* the source element matching index position i */
        FOR_INDEXED(a, a->a_strides, {
            int64_t rem = i, soff = 0;
            for (int e = a->ndim - 1; e >= 0; e--) {
                soff += (rem % a->idx_shape[e]) * a->s_strides[e];
                rem /= a->idx_shape[e];
            }
            kbl_store_double(o, dt, off, kbl_load_double(o, dt, off) + kbl_load_double(s, dt, soff));
        });
        break;
    }
    default:
        return kbl_fail("cpu: unknown indexing kernel %d", a->kind);
    }
    return 0;
}
