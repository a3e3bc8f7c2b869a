/* conv.c — 2-D convolution (conv2d), its two adjoints (the gradient with respect
 * to the input, which is also conv_transpose2d, and to the weight): argument
 * checks, output sizes and autograd records; the arithmetic is the device's conv
 * kernel (conv_device.c: oneDNN on the CPU, core/cpu/dnnl_conv.c; cuDNN on CUDA). */
#include "internal.h"

/* stride (h, w), pads (top, bottom, left, right), dilation (h, w), groups */
typedef kbl_conv_opts conv_opts;   /* internal.h: conv_device.c takes it too */

/* conv2d's output size along one axis, or < 1 when the kernel does not fit. */
static int64_t out_size(int64_t in, int64_t pa, int64_t pb, int64_t k, int64_t s, int64_t d) {
    int64_t span = d * (k - 1) + 1, padded = in + pa + pb;
    return padded < span ? 0 : (padded - span) / s + 1;
}

/* A convolution node's arguments are its conv_opts. */
KBL_ARGS_FIT(conv_opts);

static kbl_tensor *contiguous_nograd(kbl_tensor *t) {
    int prev = kbl_set_grad_enabled(0);
    kbl_tensor *c = kbl_contiguous(t);
    kbl_set_grad_enabled(prev);
    return c;
}

/* ---- the kernels (no checks, no recording): the device's, through conv_device.c ---- */

/* dx [n, c, h, w] from gy [n, o, oh, ow] and w [o, c/groups, kh, kw] */
static kbl_tensor *conv_input_grad(kbl_tensor *gy, kbl_tensor *w, const conv_opts *op, int64_t h, int64_t wd) {
    int64_t xs[4] = {gy->shape[0], w->shape[1] * op->groups, h, wd};
    kbl_tensor *dx = NULL;
    kbl_conv_device_grads(gy, NULL, xs, w, w->shape[2], w->shape[3], op, &dx, NULL, NULL);
    return dx;
}

/* dw [o, c/groups, kh, kw] from gy [n, o, oh, ow] and x [n, c, h, w] */
static kbl_tensor *conv_weight_grad(kbl_tensor *gy, kbl_tensor *x, const conv_opts *op, int64_t kh, int64_t kw) {
    kbl_tensor *dw = NULL;
    kbl_conv_device_grads(gy, x, x->shape, NULL, kh, kw, op, NULL, &dw, NULL);
    return dw;
}

#define BIAS_GRAD(T)                                                                            \
    do {                                                                                        \
        const T *gp = kbl_base(gc);                                                             \
        T *bp = kbl_base(gb);                                                                   \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                            \
        for (int64_t ch = 0; ch < c; ch++) {                                                    \
            double acc = 0;                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                   \
                const T *p = gp + (i * c + ch) * hw;                                            \
                T s = 0;                                                                        \
                for (int64_t j = 0; j < hw; j++) s += p[j];                                     \
                acc += (double)s;                                                               \
            }                                                                                   \
            bp[ch] = (T)acc;                                                                    \
        }                                                                                       \
    } while (0)

/* The bias gradient: gy [n, c, oh, ow] summed to [c] (each plane in T, planes in double). */
static kbl_tensor *bias_grad(kbl_tensor *gy) {
    if (kbl_on_cuda(gy)) { /* a reduction like any other there */
        int prev = kbl_set_grad_enabled(0);
        kbl_tensor *r = kbl_sum(gy, 3, (int[]){0, 2, 3}, 0);
        kbl_set_grad_enabled(prev);
        return r;
    }
    kbl_tensor *gc = contiguous_nograd(gy);
    int64_t n = gy->shape[0], c = gy->shape[1], hw = gy->shape[2] * gy->shape[3];
    kbl_tensor *gb = gc ? kbl_empty(1, &c, gy->dtype) : NULL;
    if (gb) {
        int nt = n * c * hw >= KBL_PARALLEL_GRAIN && c > 1 ? kbl_threads() : 1;
        KBL_FLOAT_CASES(gy->dtype, BIAS_GRAD)
    }
    kbl_tensor_release(gc);
    return gb;
}

/* ---- argument checks ----------------------------------------------------------- */

static int check_opts(const char *op, const conv_opts *o) {
    if (o->stride[0] < 1 || o->stride[1] < 1)
        return kbl_fail("%s: stride must be at least 1, got (%lld, %lld)", op, (long long)o->stride[0],
                        (long long)o->stride[1]);
    if (o->dil[0] < 1 || o->dil[1] < 1)
        return kbl_fail("%s: dilation must be at least 1, got (%lld, %lld)", op, (long long)o->dil[0],
                        (long long)o->dil[1]);
    for (int i = 0; i < 4; i++)
        if (o->pad[i] < 0) return kbl_fail("%s: padding must not be negative, got %lld", op, (long long)o->pad[i]);
    if (o->groups < 1) return kbl_fail("%s: groups must be at least 1, got %lld", op, (long long)o->groups);
    return 0;
}

static conv_opts opts_of(const int64_t *stride, const int64_t *padding, const int64_t *dilation, int64_t groups) {
    conv_opts o = {{1, 1}, {0, 0, 0, 0}, {1, 1}, groups};
    if (stride) o.stride[0] = stride[0], o.stride[1] = stride[1];
    if (padding) memcpy(o.pad, padding, sizeof o.pad);
    if (dilation) o.dil[0] = dilation[0], o.dil[1] = dilation[1];
    return o;
}

/* The tensors are present, 4-D (bias 1-D), one float dtype. */
static int check_tensors(const char *op, const kbl_tensor *x, const char *xname, const kbl_tensor *w,
                         const char *wname, const kbl_tensor *b) {
    if (kbl_check_dev(op, x, xname) || kbl_check_dev(op, w, wname) || (b && kbl_check_dev(op, b, "bias")) ||
        kbl_check_same_device(op, x, w) || (b && kbl_check_same_device(op, x, b)))
        return -1;
    char s1[96], s2[96];
    if (x->ndim != 4)
        return kbl_fail("%s: %s must be 4-D [N, C, H, W], got %s", op, xname, kbl_describe(x, s1, 96));
    if (w->ndim != 4)
        return kbl_fail("%s: %s must be 4-D, got %s", op, wname, kbl_describe(w, s1, 96));
    if (!kbl_is_float(x->dtype) || x->dtype != w->dtype || (b && b->dtype != x->dtype))
        return kbl_fail("%s: %s %s and %s %s must share one float dtype", op, xname, kbl_describe(x, s1, 96),
                        wname, kbl_describe(w, s2, 96));
    return 0;
}

static int check_bias(const char *op, const kbl_tensor *b, int64_t channels, const kbl_tensor *w) {
    if (b && (b->ndim != 1 || b->shape[0] != channels)) {
        char s1[96], s2[96];
        return kbl_fail("%s: bias %s must be [%lld], one value per output channel of weight %s", op,
                        kbl_describe(b, s1, 96), (long long)channels, kbl_describe(w, s2, 96));
    }
    return 0;
}

/* x's channels against weight [o, c/groups, ...]; o divisible by groups */
static int check_channels(const char *op, const kbl_tensor *x, int64_t xc, const kbl_tensor *w, int64_t wo,
                          int64_t wi, int64_t groups, const char *layout) {
    char s1[96], s2[96];
    if (xc % groups)
        return kbl_fail("%s: input %s has %lld channels, not divisible by groups = %lld", op,
                        kbl_describe(x, s1, 96), (long long)xc, (long long)groups);
    if (wo % groups)
        return kbl_fail("%s: weight %s has %lld output channels, not divisible by groups = %lld", op,
                        kbl_describe(w, s1, 96), (long long)wo, (long long)groups);
    if (wi != xc / groups)
        return kbl_fail("%s: input %s has %lld channels but weight %s (%s) expects %lld = %lld x groups %lld",
                        op, kbl_describe(x, s1, 96), (long long)xc, kbl_describe(w, s2, 96), layout,
                        (long long)(wi * groups), (long long)wi, (long long)groups);
    return 0;
}

/* ---- conv2d ---------------------------------------------------------------------- */

static int conv2d_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *x = n->inputs[0], *w = n->inputs[1], *b = n->ninputs > 2 ? n->inputs[2] : NULL;
    conv_opts o = *KBL_ARGS(n, conv_opts);
    bool gx = kbl_needs_grad(x), gw = kbl_needs_grad(w), gb = kbl_needs_grad(b);
    if ((gx || gw) && kbl_conv_device_grads(g, x, x->shape, w, w->shape[2], w->shape[3], &o, gx ? &gin[0] : NULL,
                                            gw ? &gin[1] : NULL, gb ? &gin[2] : NULL))
        return -1;
    if (gb && !gin[2] && !(gin[2] = bias_grad(g))) return -1;
    return 0;
}

kbl_tensor *kbl_conv2d(kbl_tensor *x, kbl_tensor *w, kbl_tensor *b, const int64_t *stride, const int64_t *padding,
                       const int64_t *dilation, int64_t groups) {
    const char *op = "conv2d";
    conv_opts o = opts_of(stride, padding, dilation, groups);
    if (check_tensors(op, x, "input", w, "weight [out, in/groups, kh, kw]", b) || check_opts(op, &o) ||
        check_channels(op, x, x->shape[1], w, w->shape[0], w->shape[1], o.groups, "[out, in/groups, kh, kw]") ||
        check_bias(op, b, w->shape[0], w))
        return NULL;
    int64_t oh = out_size(x->shape[2], o.pad[0], o.pad[1], w->shape[2], o.stride[0], o.dil[0]);
    int64_t ow = out_size(x->shape[3], o.pad[2], o.pad[3], w->shape[3], o.stride[1], o.dil[1]);
    if (oh < 1 || ow < 1) {
        char s1[96], s2[96];
        kbl_fail("conv2d: kernel %lldx%lld (dilation %lldx%lld) is larger than the padded input: input %s, "
                 "padding (%lld, %lld, %lld, %lld), weight %s",
                 (long long)w->shape[2], (long long)w->shape[3], (long long)o.dil[0], (long long)o.dil[1],
                 kbl_describe(x, s1, 96), (long long)o.pad[0], (long long)o.pad[1], (long long)o.pad[2],
                 (long long)o.pad[3], kbl_describe(w, s2, 96));
        return NULL;
    }
    kbl_tensor *y = kbl_conv_device_forward(x, w, b, &o, oh, ow);
    kbl_tensor *in[3] = {x, w, b};
    kbl_node *node = kbl_record(op, conv2d_backward, y, b ? 3 : 2, in);
    if (node) *KBL_ARGS(node, conv_opts) = o;
    return y;
}

/* ---- conv2d_backward_input, which is conv_transpose2d ----------------------------- */

/* y = conv_input_grad(x, w): dx = conv(dy, w) cropped to x's size; dw = the weight
 * gradient of a conv of dy by w whose output gradient is x */
static int transpose_backward(kbl_node *n, kbl_tensor *g, kbl_tensor **gin) {
    kbl_tensor *x = n->inputs[0], *w = n->inputs[1], *b = n->ninputs > 2 ? n->inputs[2] : NULL;
    conv_opts o = *KBL_ARGS(n, conv_opts);
    if (kbl_needs_grad(x) && !(gin[0] = kbl_conv_device_forward(g, w, NULL, &o, x->shape[2], x->shape[3]))) return -1;
    if (kbl_needs_grad(w) && !(gin[1] = conv_weight_grad(x, g, &o, w->shape[2], w->shape[3]))) return -1;
    if (kbl_needs_grad(b) && !(gin[2] = bias_grad(g))) return -1;
    return 0;
}

/* The shared body: x [n, o, ih, iw] (the conv's output side), w [o, c/groups, kh, kw],
 * result [n, c, h, w]; the conv of the result must give at least ih x iw. */
static kbl_tensor *transpose_impl(const char *op, kbl_tensor *x, kbl_tensor *w, kbl_tensor *b, const conv_opts *o,
                                  int64_t h, int64_t wd) {
    char s1[96], s2[96];
    if (x->shape[1] != w->shape[0]) {
        kbl_fail("%s: input %s has %lld channels but weight %s (layout [in, out/groups, kh, kw]) expects %lld", op,
                 kbl_describe(x, s1, 96), (long long)x->shape[1], kbl_describe(w, s2, 96), (long long)w->shape[0]);
        return NULL;
    }
    if (x->shape[1] % o->groups) {
        kbl_fail("%s: input %s has %lld channels, not divisible by groups = %lld", op, kbl_describe(x, s1, 96),
                 (long long)x->shape[1], (long long)o->groups);
        return NULL;
    }
    if (check_bias(op, b, w->shape[1] * o->groups, w)) return NULL;
    int64_t ch = out_size(h, o->pad[0], o->pad[1], w->shape[2], o->stride[0], o->dil[0]);
    int64_t cw = out_size(wd, o->pad[2], o->pad[3], w->shape[3], o->stride[1], o->dil[1]);
    if (h < 1 || wd < 1 || ch < x->shape[2] || cw < x->shape[3]) {
        kbl_fail("%s: input %s, weight %s, stride (%lld, %lld), padding (%lld, %lld, %lld, %lld) give no valid "
                 "output (%lld x %lld); the padding is too large for the kernel",
                 op, kbl_describe(x, s1, 96), kbl_describe(w, s2, 96), (long long)o->stride[0],
                 (long long)o->stride[1], (long long)o->pad[0], (long long)o->pad[1], (long long)o->pad[2],
                 (long long)o->pad[3], (long long)h, (long long)wd);
        return NULL;
    }
    int64_t xs[4] = {x->shape[0], w->shape[1] * o->groups, h, wd};
    kbl_tensor *y = kbl_conv_device_transpose(x, w, b, xs, o);
    kbl_tensor *in[3] = {x, w, b};
    kbl_node *node = kbl_record(op, transpose_backward, y, b ? 3 : 2, in);
    if (node) *KBL_ARGS(node, conv_opts) = *o;
    return y;
}

kbl_tensor *kbl_conv2d_backward_input(kbl_tensor *grad, kbl_tensor *weight, const int64_t *input_hw,
                                      const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                                      int64_t groups) {
    const char *op = "conv2d_backward_input";
    conv_opts o = opts_of(stride, padding, dilation, groups);
    if (check_tensors(op, grad, "grad", weight, "weight [out, in/groups, kh, kw]", NULL) || check_opts(op, &o))
        return NULL;
    return transpose_impl(op, grad, weight, NULL, &o, input_hw[0], input_hw[1]);
}

kbl_tensor *kbl_conv_transpose2d(kbl_tensor *x, kbl_tensor *w, kbl_tensor *b, const int64_t *stride,
                                 const int64_t *padding, const int64_t *output_padding, const int64_t *dilation,
                                 int64_t groups) {
    const char *op = "conv_transpose2d";
    conv_opts o = opts_of(stride, padding, dilation, groups);
    if (check_tensors(op, x, "input", w, "weight [in, out/groups, kh, kw]", b) || check_opts(op, &o)) return NULL;
    int64_t opad[2] = {output_padding ? output_padding[0] : 0, output_padding ? output_padding[1] : 0};
    for (int a = 0; a < 2; a++)
        if (opad[a] < 0 || (opad[a] >= o.stride[a] && opad[a] >= o.dil[a])) {
            kbl_fail("%s: output_padding (%lld, %lld) must be smaller than the stride (%lld, %lld) or the "
                     "dilation (%lld, %lld)",
                     op, (long long)opad[0], (long long)opad[1], (long long)o.stride[0], (long long)o.stride[1],
                     (long long)o.dil[0], (long long)o.dil[1]);
            return NULL;
        }
    int64_t h = (x->shape[2] - 1) * o.stride[0] - o.pad[0] - o.pad[1] + o.dil[0] * (w->shape[2] - 1) + opad[0] + 1;
    int64_t wd = (x->shape[3] - 1) * o.stride[1] - o.pad[2] - o.pad[3] + o.dil[1] * (w->shape[3] - 1) + opad[1] + 1;
    return transpose_impl(op, x, w, b, &o, h, wd);
}

/* ---- conv2d_backward_weight ---------------------------------------------------------- */

/* y = conv_weight_grad(g, x): d g = conv(x, dy); d x = conv_input_grad(g, dy) */
static int weight_grad_backward(kbl_node *n, kbl_tensor *gy, kbl_tensor **gin) {
    kbl_tensor *g = n->inputs[0], *x = n->inputs[1];
    conv_opts o = *KBL_ARGS(n, conv_opts);
    if (kbl_needs_grad(g) && !(gin[0] = kbl_conv_device_forward(x, gy, NULL, &o, g->shape[2], g->shape[3]))) return -1;
    if (kbl_needs_grad(x) && !(gin[1] = conv_input_grad(g, gy, &o, x->shape[2], x->shape[3]))) return -1;
    return 0;
}

kbl_tensor *kbl_conv2d_backward_weight(kbl_tensor *grad, kbl_tensor *x, const int64_t *kernel_hw,
                                       const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                                       int64_t groups) {
    const char *op = "conv2d_backward_weight";
    conv_opts o = opts_of(stride, padding, dilation, groups);
    if (check_tensors(op, x, "input", grad, "grad", NULL) || check_opts(op, &o)) return NULL;
    char s1[96], s2[96];
    if (x->shape[1] % o.groups || grad->shape[1] % o.groups || grad->shape[0] != x->shape[0]) {
        kbl_fail("%s: input %s and grad %s: batch sizes must agree and both channel counts be divisible by "
                 "groups = %lld", op, kbl_describe(x, s1, 96), kbl_describe(grad, s2, 96), (long long)o.groups);
        return NULL;
    }
    int64_t oh = out_size(x->shape[2], o.pad[0], o.pad[1], kernel_hw[0], o.stride[0], o.dil[0]);
    int64_t ow = out_size(x->shape[3], o.pad[2], o.pad[3], kernel_hw[1], o.stride[1], o.dil[1]);
    if (kernel_hw[0] < 1 || kernel_hw[1] < 1 || oh < grad->shape[2] || ow < grad->shape[3]) {
        kbl_fail("%s: grad %s is larger than the output of a %lldx%lld conv over input %s", op,
                 kbl_describe(grad, s1, 96), (long long)kernel_hw[0], (long long)kernel_hw[1],
                 kbl_describe(x, s2, 96));
        return NULL;
    }
    kbl_tensor *dw = conv_weight_grad(grad, x, &o, kernel_hw[0], kernel_hw[1]);
    kbl_tensor *in[2] = {grad, x};
    kbl_node *node = kbl_record(op, weight_grad_backward, dw, 2, in);
    if (node) *KBL_ARGS(node, conv_opts) = o;
    return dw;
}
