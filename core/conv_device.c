/* conv_device.c — 2-D convolution and its two adjoints on a device's conv
 * kernel (cuDNN through the CUDA backend, oneDNN or plain loops on the CPU,
 * core/cpu/dnnl_conv.c). Those kernels take one padding per axis and an output
 * of exactly the geometry's size; kbl's convolutions also allow padding that
 * differs before and after (top/bottom, left/right) and outputs cropped from the
 * full one (conv_transpose2d's output_padding, the public backward ops), so those
 * cases become an explicit zero pad of the input, a zero pad of the output's
 * gradient, or a crop of the result, with ops, around the kernel call. */
#include "internal.h"

/* The kernel's geometry over an input of h x w already padded by the excess of the
 * larger pad over the smaller, which the kernel then pads on both sides. */
static kbl_conv_desc desc_of(int dtype, const int64_t *xs, int64_t o, int64_t kh, int64_t kw,
                             const kbl_conv_opts *op) {
    int64_t ph = op->pad[0] < op->pad[1] ? op->pad[0] : op->pad[1];
    int64_t pw = op->pad[2] < op->pad[3] ? op->pad[2] : op->pad[3];
    int64_t h = xs[2] + op->pad[0] + op->pad[1] - 2 * ph, w = xs[3] + op->pad[2] + op->pad[3] - 2 * pw;
    int64_t sh = op->dil[0] * (kh - 1) + 1, sw = op->dil[1] * (kw - 1) + 1;
    kbl_conv_desc d = {dtype, xs[0], xs[1], h, w, o, kh, kw,
                       h + 2 * ph >= sh ? (h + 2 * ph - sh) / op->stride[0] + 1 : 0,
                       w + 2 * pw >= sw ? (w + 2 * pw - sw) / op->stride[1] + 1 : 0,
                       {op->stride[0], op->stride[1]}, {ph, pw}, {op->dil[0], op->dil[1]}, op->groups, NULL};
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

/* y += bias [c] over channels, in place (grad mode is off here) */
static int add_bias(kbl_tensor *y, kbl_tensor *bias) {
    kbl_tensor *bv = kbl_view(bias, 3, (int64_t[]){bias->shape[0], 1, 1});
    int rc = bv ? kbl_add_(y, bv, 1.0) : -1;
    kbl_tensor_release(bv);
    return rc;
}

kbl_tensor *kbl_conv_device_forward(kbl_tensor *x, kbl_tensor *w, kbl_tensor *bias, const kbl_conv_opts *op,
                                    int64_t oh, int64_t ow) {
    int prev = kbl_set_grad_enabled(0);
    const kbl_backend *be = kbl_backend_of(x);
    kbl_conv_desc d = desc_of(x->dtype, x->shape, w->shape[0], w->shape[2], w->shape[3], op);
    kbl_tensor *xp = padded_input(x, op), *wc = kbl_contiguous(w), *full = NULL, *y = NULL, *bc = NULL;
    if (!xp || !wc) goto done;
    if (d.n == 0 || d.o == 0 || oh == 0 || ow == 0 || d.c == 0) { /* nothing for the kernel to do: zeros */
        y = kbl_zeros_on(x->device, 4, (int64_t[]){d.n, d.o, oh, ow}, x->dtype);
    } else {
        /* a fused bias: measured on the CPU (bench/conv.lua's shapes, 1 thread) the
         * separate add cost 1.3 ms on a 1.7 ms conv and 1.6 ms on a 9.5 ms one */
        if (bias && be->conv_bias) {
            if (!(bc = kbl_contiguous(bias))) goto done;
            d.bias = kbl_base(bc);
        }
        full = kbl_empty_on(x->device, 4, (int64_t[]){d.n, d.o, d.oh, d.ow}, x->dtype);
        if (!full || be->conv(KBL_CONV_FORWARD, &d, kbl_base(xp), kbl_base(wc), kbl_base(full))) goto done;
        y = crop(full, 0, oh, 0, ow);
    }
    if (y && bias && !d.bias && add_bias(y, bias)) kbl_tensor_release(y), y = NULL;
done:
    kbl_release_n(4, xp, wc, full, bc);
    kbl_set_grad_enabled(prev);
    return y;
}

/* The body of both: bias_in (with dx only) is added to dx */
static int grads(kbl_tensor *gy, kbl_tensor *x, const int64_t *xs, kbl_tensor *w, int64_t kh, int64_t kw,
                 const kbl_conv_opts *op, kbl_tensor **dx, kbl_tensor **dw, kbl_tensor **db, kbl_tensor *bias_in) {
    int prev = kbl_set_grad_enabled(0);
    const kbl_backend *be = kbl_backend_of(gy);
    int dev = gy->device;
    kbl_conv_desc d = desc_of(gy->dtype, xs, gy->shape[1], kh, kw, op);
    int64_t ph = op->pad[0] < op->pad[1] ? op->pad[0] : op->pad[1];
    int64_t pw = op->pad[2] < op->pad[3] ? op->pad[2] : op->pad[3];
    kbl_tensor *gp = NULL, *wc = NULL, *xp = NULL, *full = NULL, *rx = NULL, *rw = NULL, *rb = NULL;
    int rc = -1;
    bool empty = d.n == 0 || d.o == 0 || d.c == 0 || gy->shape[2] == 0 || gy->shape[3] == 0;
    if (empty) { /* nothing flows: zeros */
        if (dx && !(rx = kbl_zeros_on(dev, 4, xs, gy->dtype))) goto done;
        if (dx && bias_in && add_bias(rx, bias_in)) goto done;
        if (dw && !(rw = kbl_zeros_on(dev, 4, (int64_t[]){d.o, d.c / d.groups, kh, kw}, gy->dtype))) goto done;
        rc = 0;
        goto done;
    }
    /* gy covers the top-left of the full output; the rest of it had no effect: zeros */
    int64_t pads[4] = {0, d.ow - gy->shape[3], 0, d.oh - gy->shape[2]};
    gp = pads[1] || pads[3] ? kbl_pad(gy, 2, pads, 0) : kbl_contiguous(gy);
    if (!gp) goto done;
    if (dx) {
        wc = kbl_contiguous(w);
        full = wc ? kbl_empty_on(dev, 4, (int64_t[]){d.n, d.c, d.h, d.w}, gy->dtype) : NULL;
        if (!full || be->conv(KBL_CONV_BACKWARD_DATA, &d, kbl_base(full), kbl_base(wc), kbl_base(gp))) goto done;
        if (!(rx = crop(full, op->pad[0] - ph, xs[2], op->pad[2] - pw, xs[3]))) goto done;
        /* conv_transpose2d's bias, added apart: oneDNN 2.6.3's deconvolution
         * primitive fuses it but measured slower than backward-data and this add
         * (1 thread, CPU time, Intel Xeon AVX-512 KVM guest, busy machine, batch
         * 128, ms with bias / without): x 64x7x7, w 64x32x4x4, stride 2:
         * deconvolution 5.82-5.87 / 3.11-3.23, backward-data + add 3.15-4.11 /
         * 2.92-3.54; x 32x14x14, w 32x64x3x3: 12.15-12.32 / 6.88-7.77 against
         * 7.77-9.04 / 7.49-7.60 (bench/conv_transpose.lua) */
        if (bias_in && add_bias(rx, bias_in)) goto done;
    }
    if (dw) {
        /* the bias gradient with the weight's where the kernel fuses it (oneDNN
         * reads gy once for both; the separate sum cost 2.2 ms on bench/conv.lua's
         * 128x64x14x14 gradient, 1 thread) */
        if (db && be->conv_bias) {
            if (!(rb = kbl_empty_on(dev, 1, &d.o, gy->dtype))) goto done;
            d.bias = kbl_base(rb);
        }
        xp = padded_input(x, op);
        rw = xp ? kbl_empty_on(dev, 4, (int64_t[]){d.o, d.c / d.groups, kh, kw}, gy->dtype) : NULL;
        if (!rw || be->conv(KBL_CONV_BACKWARD_FILTER, &d, kbl_base(xp), kbl_base(rw), kbl_base(gp))) goto done;
    }
    rc = 0;
done:
    kbl_release_n(4, gp, wc, xp, full);
    if (rc) {
        kbl_release_n(3, rx, rw, rb);
        rx = rw = rb = NULL;
    }
    if (dx) *dx = rx;
    if (dw) *dw = rw;
    if (db) *db = rb;
    kbl_set_grad_enabled(prev);
    return rc;
}

int kbl_conv_device_grads(kbl_tensor *gy, kbl_tensor *x, const int64_t *xs, kbl_tensor *w, int64_t kh, int64_t kw,
                          const kbl_conv_opts *op, kbl_tensor **dx, kbl_tensor **dw, kbl_tensor **db) {
    return grads(gy, x, xs, w, kh, kw, op, dx, dw, db, NULL);
}

kbl_tensor *kbl_conv_device_transpose(kbl_tensor *gy, kbl_tensor *w, kbl_tensor *bias, const int64_t *xs,
                                      const kbl_conv_opts *op) {
    kbl_tensor *dx = NULL;
    grads(gy, NULL, xs, w, w->shape[2], w->shape[3], op, &dx, NULL, NULL, bias);
    return dx;
}
