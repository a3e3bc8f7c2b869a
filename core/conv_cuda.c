/* conv_cuda.c — 2-D convolution and its two adjoints on CUDA, through the
 * backend's cuDNN calls. cuDNN takes one padding per axis and an output of
 * exactly the geometry's size; kbl's convolutions also allow padding that
 * differs before and after (top/bottom, left/right) and outputs cropped from the
 * full one (conv_transpose2d's output_padding, the public backward ops), so those
 * cases become an explicit zero pad of the input, a zero pad of the output's
 * gradient, or a crop of the result, with ops, around the cuDNN call. */
#include "internal.h"

/* The cuDNN geometry over an input of h x w already padded by the excess of the
 * larger pad over the smaller, which cuDNN then pads on both sides. */
static kbl_conv_desc desc_of(int dtype, const int64_t *xs, int64_t o, int64_t kh, int64_t kw,
                             const kbl_conv_opts *op) {
    int64_t ph = op->pad[0] < op->pad[1] ? op->pad[0] : op->pad[1];
    int64_t pw = op->pad[2] < op->pad[3] ? op->pad[2] : op->pad[3];
    int64_t h = xs[2] + op->pad[0] + op->pad[1] - 2 * ph, w = xs[3] + op->pad[2] + op->pad[3] - 2 * pw;
    int64_t sh = op->dil[0] * (kh - 1) + 1, sw = op->dil[1] * (kw - 1) + 1;
    kbl_conv_desc d = {dtype, xs[0], xs[1], h, w, o, kh, kw,
                       h + 2 * ph >= sh ? (h + 2 * ph - sh) / op->stride[0] + 1 : 0,
                       w + 2 * pw >= sw ? (w + 2 * pw - sw) / op->stride[1] + 1 : 0,
                       {op->stride[0], op->stride[1]}, {ph, pw}, {op->dil[0], op->dil[1]}, op->groups};
    return d;
}

static bool asymmetric(const kbl_conv_opts *op) { return op->pad[0] != op->pad[1] || op->pad[2] != op->pad[3]; }

/* x padded by the asymmetric excess (or x itself), contiguous */
static kbl_tensor *padded_input(kbl_tensor *x, const kbl_conv_opts *op) {
    if (!asymmetric(op)) return kbl_contiguous(x);
    int64_t ph = op->pad[0] < op->pad[1] ? op->pad[0] : op->pad[1];
    int64_t pw = op->pad[2] < op->pad[3] ? op->pad[2] : op->pad[3];
    int64_t pads[4] = {op->pad[2] - pw, op->pad[3] - pw, op->pad[0] - ph, op->pad[1] - ph};
    return kbl_pad(x, 2, pads, 0);
}

/* t [.., a, b] cropped to [.., oh, ow] from the top-left corner at (y0, x0), contiguous */
static kbl_tensor *crop(kbl_tensor *t, int64_t y0, int64_t oh, int64_t x0, int64_t ow) {
    if (y0 == 0 && x0 == 0 && t->shape[2] == oh && t->shape[3] == ow) return kbl_tensor_retain(t);
    kbl_tensor *a = kbl_narrow(t, 2, y0, oh), *b = a ? kbl_narrow(a, 3, x0, ow) : NULL;
    kbl_tensor *c = b ? kbl_contiguous(b) : NULL;
    kbl_release_n(2, a, b);
    return c;
}

kbl_tensor *kbl_conv_cuda_forward(kbl_tensor *x, kbl_tensor *w, kbl_tensor *bias, const kbl_conv_opts *op,
                                  int64_t oh, int64_t ow) {
    int prev = kbl_set_grad_enabled(0);
    kbl_conv_desc d = desc_of(x->dtype, x->shape, w->shape[0], w->shape[2], w->shape[3], op);
    kbl_tensor *xp = padded_input(x, op), *wc = kbl_contiguous(w), *full = NULL, *y = NULL;
    if (!xp || !wc) goto done;
    if (d.n == 0 || d.o == 0 || oh == 0 || ow == 0 || d.c == 0) { /* nothing for cuDNN to do: zeros */
        y = kbl_zeros_on(KBL_CUDA, 4, (int64_t[]){d.n, d.o, oh, ow}, x->dtype);
    } else {
        full = kbl_empty_on(KBL_CUDA, 4, (int64_t[]){d.n, d.o, d.oh, d.ow}, x->dtype);
        if (!full || kbl_backend_of(x)->conv(KBL_CONV_FORWARD, &d, kbl_base(xp), kbl_base(wc), kbl_base(full)))
            goto done;
        y = crop(full, 0, oh, 0, ow);
    }
    if (y && bias) {
        kbl_tensor *bv = kbl_view(bias, 3, (int64_t[]){bias->shape[0], 1, 1});
        if (!bv || kbl_add_(y, bv, 1.0)) kbl_tensor_release(y), y = NULL;
        kbl_tensor_release(bv);
    }
done:
    kbl_release_n(3, xp, wc, full);
    kbl_set_grad_enabled(prev);
    return y;
}

int kbl_conv_cuda_grads(kbl_tensor *gy, kbl_tensor *x, const int64_t *xs, kbl_tensor *w, int64_t kh, int64_t kw,
                        const kbl_conv_opts *op, kbl_tensor **dx, kbl_tensor **dw) {
    int prev = kbl_set_grad_enabled(0);
    const kbl_backend *be = kbl_backend_of(gy);
    kbl_conv_desc d = desc_of(gy->dtype, xs, gy->shape[1], kh, kw, op);
    int64_t ph = op->pad[0] < op->pad[1] ? op->pad[0] : op->pad[1];
    int64_t pw = op->pad[2] < op->pad[3] ? op->pad[2] : op->pad[3];
    kbl_tensor *gp = NULL, *wc = NULL, *xp = NULL, *full = NULL, *rx = NULL, *rw = NULL;
    int rc = -1;
    bool empty = d.n == 0 || d.o == 0 || d.c == 0 || gy->shape[2] == 0 || gy->shape[3] == 0;
    if (empty) { /* nothing flows: zeros */
        if (dx && !(rx = kbl_zeros_on(KBL_CUDA, 4, xs, gy->dtype))) goto done;
        if (dw && !(rw = kbl_zeros_on(KBL_CUDA, 4, (int64_t[]){d.o, d.c / d.groups, kh, kw}, gy->dtype))) goto done;
        rc = 0;
        goto done;
    }
    /* gy covers the top-left of the full output; the rest of it had no effect: zeros */
    int64_t pads[4] = {0, d.ow - gy->shape[3], 0, d.oh - gy->shape[2]};
    gp = pads[1] || pads[3] ? kbl_pad(gy, 2, pads, 0) : kbl_contiguous(gy);
    if (!gp) goto done;
    if (dx) {
        wc = kbl_contiguous(w);
        full = wc ? kbl_empty_on(KBL_CUDA, 4, (int64_t[]){d.n, d.c, d.h, d.w}, gy->dtype) : NULL;
        if (!full || be->conv(KBL_CONV_BACKWARD_DATA, &d, kbl_base(full), kbl_base(wc), kbl_base(gp))) goto done;
        if (!(rx = crop(full, op->pad[0] - ph, xs[2], op->pad[2] - pw, xs[3]))) goto done;
    }
    if (dw) {
        xp = padded_input(x, op);
        rw = xp ? kbl_empty_on(KBL_CUDA, 4, (int64_t[]){d.o, d.c / d.groups, kh, kw}, gy->dtype) : NULL;
        if (!rw || be->conv(KBL_CONV_BACKWARD_FILTER, &d, kbl_base(xp), kbl_base(rw), kbl_base(gp))) goto done;
    }
    rc = 0;
done:
    kbl_release_n(4, gp, wc, xp, full);
    if (rc) {
        kbl_release_n(2, rx, rw);
        rx = rw = NULL;
    }
    if (dx) *dx = rx;
    if (dw) *dw = rw;
    kbl_set_grad_enabled(prev);
    return rc;
}
