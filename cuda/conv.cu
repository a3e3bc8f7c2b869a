/* conv.cu — convolution through cuDNN: forward, backward data and backward
 * filter for NCHW float32/float64 with groups and dilation (core/conv_cuda.c
 * reduces kbl's padding and cropping to what cuDNN takes). The algorithm is
 * cuDNN's heuristic choice, preferring deterministic ones, with its workspace
 * from the caching allocator. float32 runs on FMA kernels only (no TF32 tensor
 * cores), so results agree with the CPU to float rounding; set KBL_CUDA_TF32=1
 * to allow TF32, which is faster on Ampere and later and less exact. */
#include <cudnn.h>
#include <mutex>
#include <stdlib.h>

#include "ops.cuh"

namespace kblcuda {

namespace {

cudnnHandle_t handle;
std::once_flag made;
cudnnStatus_t made_status = CUDNN_STATUS_NOT_INITIALIZED;
bool allow_tf32;

int dnn_fail(const char *what, cudnnStatus_t s) {
    host->fail("cuda: %s failed: %s", what, cudnnGetErrorString(s));
    return -1;
}

#define DNN(call)                                                    \
    do {                                                             \
        cudnnStatus_t s_ = (call);                                   \
        if (s_ != CUDNN_STATUS_SUCCESS) return dnn_fail(#call, s_);  \
    } while (0)

/* The descriptors of one call, destroyed with it. */
struct Descs {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t c = nullptr;
    ~Descs() {
        if (x) cudnnDestroyTensorDescriptor(x);
        if (y) cudnnDestroyTensorDescriptor(y);
        if (w) cudnnDestroyFilterDescriptor(w);
        if (c) cudnnDestroyConvolutionDescriptor(c);
    }
};

int describe(const kbl_conv_desc *d, Descs *ds) {
    cudnnDataType_t dt = d->dtype == KBL_FLOAT32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
    const int64_t lim = 2147483647;
    const int64_t vals[] = {d->n, d->c, d->h, d->w, d->o, d->kh, d->kw, d->oh, d->ow, d->n * d->c * d->h * d->w,
                            d->n * d->o * d->oh * d->ow};
    for (int64_t v : vals)
        if (v > lim) return host->fail("conv2d: the sizes of this convolution are past cuDNN's 32-bit limits");
    DNN(cudnnCreateTensorDescriptor(&ds->x));
    DNN(cudnnCreateTensorDescriptor(&ds->y));
    DNN(cudnnCreateFilterDescriptor(&ds->w));
    DNN(cudnnCreateConvolutionDescriptor(&ds->c));
    DNN(cudnnSetTensor4dDescriptor(ds->x, CUDNN_TENSOR_NCHW, dt, (int)d->n, (int)d->c, (int)d->h, (int)d->w));
    DNN(cudnnSetTensor4dDescriptor(ds->y, CUDNN_TENSOR_NCHW, dt, (int)d->n, (int)d->o, (int)d->oh, (int)d->ow));
    DNN(cudnnSetFilter4dDescriptor(ds->w, dt, CUDNN_TENSOR_NCHW, (int)d->o, (int)(d->c / d->groups), (int)d->kh,
                                   (int)d->kw));
    DNN(cudnnSetConvolution2dDescriptor(ds->c, (int)d->pad[0], (int)d->pad[1], (int)d->stride[0], (int)d->stride[1],
                                        (int)d->dil[0], (int)d->dil[1], CUDNN_CROSS_CORRELATION, dt));
    DNN(cudnnSetConvolutionGroupCount(ds->c, (int)d->groups));
    DNN(cudnnSetConvolutionMathType(ds->c, d->dtype == KBL_FLOAT32 && !allow_tf32 ? CUDNN_FMA_MATH
                                                                                   : CUDNN_DEFAULT_MATH));
    int n, c, h, w;
    DNN(cudnnGetConvolution2dForwardOutputDim(ds->c, ds->x, ds->w, &n, &c, &h, &w));
    if (n != d->n || c != d->o || h != d->oh || w != d->ow)
        return host->fail("conv2d: cuDNN gives an output of [%d, %d, %d, %d], kbl expected [%lld, %lld, %lld, %lld]",
                          n, c, h, w, (long long)d->n, (long long)d->o, (long long)d->oh, (long long)d->ow);
    return 0;
}

/* Picks among cuDNN's ranked algorithms (perf[0..count)): the first that ran,
 * keeps to FMA math when asked, and whose workspace can be had; deterministic
 * ones first. Returns the index, with *ws and *ws_bytes set, or -1. */
template <typename Perf>
int pick(const Perf *perf, int count, const kbl_conv_desc *d, void **ws, size_t *ws_bytes) {
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < count; i++) {
            const Perf &p = perf[i];
            if (p.status != CUDNN_STATUS_SUCCESS) continue;
            if (pass == 0 && p.determinism != CUDNN_DETERMINISTIC) continue;
            if (d->dtype == KBL_FLOAT32 && !allow_tf32 && p.mathType != CUDNN_FMA_MATH &&
                p.mathType != CUDNN_DEFAULT_MATH)
                continue;
            *ws_bytes = p.memory;
            *ws = p.memory ? scratch((int64_t)p.memory) : nullptr;
            if (p.memory && !*ws) continue;
            return i;
        }
    return -1;
}

}  // namespace

int conv(int which, const kbl_conv_desc *d, void *x, void *w, void *y) {
    std::call_once(made, [] {
        const char *tf = getenv("KBL_CUDA_TF32");
        allow_tf32 = tf && tf[0] == '1';
        made_status = cudnnCreate(&handle);
        if (made_status == CUDNN_STATUS_SUCCESS) made_status = cudnnSetStream(handle, stream());
    });
    if (made_status != CUDNN_STATUS_SUCCESS) return dnn_fail("cudnnCreate", made_status);
    Descs ds;
    if (describe(d, &ds)) return -1;
    float f1 = 1.0f, f0 = 0.0f;
    double d1 = 1.0, d0 = 0.0;
    const void *one = d->dtype == KBL_FLOAT32 ? (const void *)&f1 : (const void *)&d1;
    const void *zero = d->dtype == KBL_FLOAT32 ? (const void *)&f0 : (const void *)&d0;
    void *ws = nullptr;
    size_t wsb = 0;
    cudnnStatus_t s;
    const char *what;
    int count = 0;
    if (which == KBL_CONV_FORWARD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        DNN(cudnnGetConvolutionForwardAlgorithm_v7(handle, ds.x, ds.w, ds.c, ds.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                   &count, perf));
        int i = pick(perf, count, d, &ws, &wsb);
        if (i < 0) return host->fail("conv2d: cuDNN offers no usable forward algorithm for this convolution");
        s = cudnnSetConvolutionMathType(ds.c, perf[i].mathType);
        if (s != CUDNN_STATUS_SUCCESS) {
            if (ws) scratch_free(ws, (int64_t)wsb);
            return dnn_fail("cudnnSetConvolutionMathType", s);
        }
        what = "cudnnConvolutionForward";
        s = cudnnConvolutionForward(handle, one, ds.x, x, ds.w, w, ds.c, perf[i].algo, ws, wsb, zero, ds.y, y);
    } else if (which == KBL_CONV_BACKWARD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, ds.w, ds.y, ds.c, ds.x,
                                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
        int i = pick(perf, count, d, &ws, &wsb);
        if (i < 0) return host->fail("conv2d: cuDNN offers no usable backward-data algorithm for this convolution");
        s = cudnnSetConvolutionMathType(ds.c, perf[i].mathType);
        if (s != CUDNN_STATUS_SUCCESS) {
            if (ws) scratch_free(ws, (int64_t)wsb);
            return dnn_fail("cudnnSetConvolutionMathType", s);
        }
        what = "cudnnConvolutionBackwardData";
        s = cudnnConvolutionBackwardData(handle, one, ds.w, w, ds.y, y, ds.c, perf[i].algo, ws, wsb, zero, ds.x, x);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        DNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, ds.x, ds.y, ds.c, ds.w,
                                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
        int i = pick(perf, count, d, &ws, &wsb);
        if (i < 0)
            return host->fail("conv2d: cuDNN offers no usable backward-filter algorithm for this convolution");
        s = cudnnSetConvolutionMathType(ds.c, perf[i].mathType);
        if (s != CUDNN_STATUS_SUCCESS) {
            if (ws) scratch_free(ws, (int64_t)wsb);
            return dnn_fail("cudnnSetConvolutionMathType", s);
        }
        what = "cudnnConvolutionBackwardFilter";
        s = cudnnConvolutionBackwardFilter(handle, one, ds.x, x, ds.y, y, ds.c, perf[i].algo, ws, wsb, zero, ds.w, w);
    }
    if (ws) scratch_free(ws, (int64_t)wsb);
    return s == CUDNN_STATUS_SUCCESS ? 0 : dnn_fail(what, s);
}

}  // namespace kblcuda
