/* ops.h - float32 batched kernels of the forward pass (conv, pool, linear, softmax).
 *
 * Ops know raw buffers and shapes only (no model, no weights file). Layout is
 * [n, C, H, W] row-major. Each op runs its own OpenMP parallel region with `threads`
 * threads and must be called from outside any parallel region (the engine calls them
 * from one thread at a time per workspace). Matrix products go through CBLAS
 * (OpenBLAS, kept single-threaded: the parallelism is ours). Scratch is caller-owned:
 * `threads` slices of the size the op's *_scratch function reports; no op allocates.
 */
#ifndef AC_OPS_H
#define AC_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "weights.h"

typedef struct ac_conv_params {
    int cin, cout, groups;
    int kh, kw;       /* kernel */
    int sh, sw;       /* stride */
    int dh, dw;       /* dilation */
    int pad_t, pad_b, pad_l, pad_r; /* zero padding; left-only = causal */
    int pool_w;       /* fused max pool over time: non-overlapping windows of pool_w outputs
                         (floor mode), for one-row outputs only; 0 = none */
    const float *packed; /* optional: the weights already in the channel-vectorised direct
                            kernel's layout (ac_conv_direct_pack, done once at model load);
                            NULL: packed per call where that kernel runs */
    int kernel;       /* ac_conv_kernel: the kernel chosen once at model load with
                         ac_conv2d_choose; AC_CONV_AUTO (0): chosen on every call */
    const uint16_t *bf16; /* optional: the weights rounded to bfloat16 and packed for
                             ac_gemm_bf16, per group (gemm_bf16.h); set where the model file
                             asks for BF16 compute. Then the layer runs "im2col+bf16" where
                             the CPU has AVX-512 BF16, and in FP32 elsewhere. */
} ac_conv_params;

/* The kernels of a convolution. A preset kernel (ac_conv_params.kernel) is honoured where it
 * can compute the layer (its shape fits; the AVX-512 ones also need ac_ops_direct()), else
 * ac_conv2d falls back to choosing, so a preset never changes a result, only the speed. */
typedef enum ac_conv_kernel {
    AC_CONV_AUTO = 0,
    AC_CONV_IM2COL,          /* "im2col+sgemm": any convolution */
    AC_CONV_IM2ROW,          /* "im2row+sgemm": one-row, strided, undilated */
    AC_CONV_DIRECT_TIME,     /* "direct-time" (conv_direct.h, AVX-512) */
    AC_CONV_DIRECT_CHANNELS, /* "direct-channels" (conv_direct.h, AVX-512) */
    AC_CONV_DEPTHWISE,       /* "depthwise" (conv_depthwise.h): groups == cin > 1, cout a
                                multiple of cin; any stride, dilation, padding */
    AC_CONV_POINTWISE,       /* "pointwise+sgemm": 1x1, stride 1, unpadded: one SGEMM per
                                item and group straight on the input, no im2col copy (where
                                the direct kernels are off or do not take the layer) */
    AC_CONV_BF16             /* "im2col+bf16" (gemm_bf16.h): the params carry bf16 weights
                                and the CPU has AVX-512 BF16; any conv but depthwise */
} ac_conv_kernel;

typedef struct ac_pool_params {
    int kh, kw, sh, sw;
    int ph, pw;       /* symmetric padding, as PyTorch's pools */
} ac_pool_params;

/* A [rows, cols] weight matrix in F32, F16 or I8 (I8: value = q * scale[row]). */
typedef struct ac_matrix {
    ac_dtype dtype;
    const void *data;
    const float *scale; /* [rows], I8 only */
    int rows, cols;
    int vnni;           /* I8 only: multiply with inputs quantized to 8 bits (linear_vnni.h)
                           where the CPU has AVX-512 VNNI; set where the model file asks */
} ac_matrix;

/* Call before any op: loads the BLAS (blas.h). Idempotent, thread-safe. */
#include "status.h"
ac_status ac_ops_init(char *err);

/* The hand-written AVX-512 kernels (conv_direct.h, linear_direct.h) run where the CPU has
 * AVX-512F and a layer fits them; elsewhere im2col/dequantize + SGEMM. ac_ops_direct() says
 * whether they are on; ac_ops_set_direct(0) turns them off (1: back on where the CPU has
 * them) for tests and A/B measurements and returns the previous setting; not to be flipped
 * while ops run. AUDIOCLASS_KERNELS=blas in the environment starts with them off. */
int ac_ops_direct(void);
int ac_ops_set_direct(int on);

/* The best kernel for convolution p on an input [cin, h, w], for ac_conv_params.kernel: the
 * same choice ac_conv2d makes when the kernel is AC_CONV_AUTO. Depends on ac_ops_direct(), so
 * call it after ac_ops_set_direct / with AUDIOCLASS_KERNELS in its final state. */
ac_conv_kernel ac_conv2d_choose(const ac_conv_params *p, int h, int w);

/* The kernel ac_conv2d / ac_linear would use for this layer and batch, for profiles:
 * "direct-time", "direct-channels", "im2col+sgemm", "im2row+sgemm", "depthwise",
 * "pointwise+sgemm"; "direct-i8", "direct-f16", "dequant+sgemm", "sgemm". */
const char *ac_conv2d_kernel(const ac_conv_params *p, int h, int w);
const char *ac_linear_kernel(const ac_matrix *W, int n);

/* Output length along one axis: floor((in + lo + hi - dil*(k-1) - 1) / stride) + 1; <= 0
 * when the input is too small. */
int ac_out_size(int in, int k, int stride, int dil, int pad_lo, int pad_hi);

/* conv2d (and conv1d with h = kh = 1) with bias, optional fused relu and max pool.
 * x: [n, cin, h, w]; weight: [cout, cin/groups, kh, kw]; bias: [cout] or NULL;
 * y: [n, cout, ho, wo] (wo / pool_w with a fused pool); scratch: threads *
 * ac_conv2d_scratch(p, h, w) floats. The fused pool never writes the unpooled output. */
size_t ac_conv2d_scratch(const ac_conv_params *p, int h, int w);
void ac_conv2d(const float *x, int n, int h, int w, const float *weight, const float *bias,
               const ac_conv_params *p, int relu, float *y, float *scratch, int threads);

/* One convolution layer as its step holds it: params, weight [cout, cin/groups, kh, kw],
 * bias [cout] or NULL, and whether ReLU follows. */
typedef struct ac_conv_layer {
    const ac_conv_params *p;
    const float *weight, *bias;
    int relu;
} ac_conv_layer;

/* Two one-row convolutions in a row, y = b(a(x)) (EnvNet's conv1 -> conv2), as one pass in
 * which a's output never reaches memory: each of b's tasks (an item, a chunk of its
 * positions) first computes the span of a's output rows that it reads into its scratch slice
 * (b.cin x (chunk + (b.kw - 1) b.dw) floats, in L2), then b from there. The unchained pair
 * writes and rereads a's whole output (EnvNet at batch 10: 38 MB).
 * ac_conv2d_chain_shape: the shapes allow it (x [n, a.cin, 1, w], kh 1, groups 1, a without
 * a fused pool, both on the time-vectorised direct kernel's geometry); checked once, at
 * planning. ac_conv2d_chain_fits: and they run so now (a on that kernel, b on it or on the
 * one-row BF16 kernel, which converts its input rows chunk by chunk anyway; it depends on
 * ac_ops_direct() and the CPU), so the chain gives ac_conv2d's results bit for bit.
 * ac_conv2d_chain runs only where ac_conv2d_chain_fits holds (the caller checks; asserted).
 * x: [n, a.cin, 1, w], not overlapping y; y: as ac_conv2d(b) on a's output; scratch:
 * threads * ac_conv2d_chain_scratch floats. */
int ac_conv2d_chain_shape(const ac_conv_params *a, int h, int w, const ac_conv_params *b);
int ac_conv2d_chain_fits(const ac_conv_params *a, int h, int w, const ac_conv_params *b);
size_t ac_conv2d_chain_scratch(const ac_conv_params *a, int h, int w, const ac_conv_params *b);
void ac_conv2d_chain(const float *x, int n, int h, int w, const ac_conv_layer *a, const ac_conv_layer *b,
                     float *y, float *scratch, int threads);

/* A 1-D convolution (groups 1) of one item over a short run of frames, for the stream
 * executor (conv_frames.c): x [cin, w] already padded, wt [cin, kw, cout] from
 * ac_conv1d_frames_pack (weight [cout, cin, 1, kw]), y [cout, wo / pool_w] (pool_w 0: wo);
 * any stride and dilation; p's padding is ignored; fused relu and max pool as ac_conv2d.
 * Single-threaded, no OpenMP, no scratch. cout <= AC_FRAMES_MAX_COUT. */
#define AC_FRAMES_MAX_COUT 1024
void ac_conv1d_frames_pack(const float *weight, int cout, int cin, int kw, float *wt);
void ac_conv1d_frames(const float *x, int w, const float *wt, const float *bias, const ac_conv_params *p,
                      int relu, float *y);

/* Pools over [n, c, h, w] -> [n, c, ho, wo]. Max pads with -inf, average counts padding
 * (PyTorch's defaults). */
void ac_maxpool2d(const float *x, int n, int c, int h, int w, const ac_pool_params *p,
                  float *y, int threads);
void ac_avgpool2d(const float *x, int n, int c, int h, int w, const ac_pool_params *p,
                  float *y, int threads);
/* [n, c, h, w] -> [n, c]: mean over h*w. */
void ac_global_avgpool(const float *x, int n, int c, int hw, float *y, int threads);

/* Per item, permutes the axes of a [d0, d1, d2] block: out axis i = in axis perm[i]. */
void ac_permute3(const float *x, int n, const int dims[3], const int perm[3], float *y,
                 int threads);

/* y[n, out] = x[n, in] . W^T + bias, optional relu. W: [out, in] any dtype;
 * scratch: threads * ac_linear_scratch(W) floats (dequantized tiles of W). */
size_t ac_linear_scratch(const ac_matrix *W);
void ac_linear(const float *x, int n, const ac_matrix *W, const float *bias, int relu,
               float *y, float *scratch, int threads);

void ac_relu(float *x, size_t count, int threads);
/* Row-wise over [n, k], in place. */
void ac_softmax(float *x, int n, int k);
void ac_log_softmax(float *x, int n, int k);

#endif
