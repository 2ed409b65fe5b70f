/* conv_depthwise.h - the depthwise convolution kernel (groups == cin > 1, cout a multiple of
 * cin): each output channel reads one input channel, so the work is a short filter per plane.
 *
 * Why: through the general paths a depthwise layer is cin GEMMs of one output row each
 * (im2col + SGEMM with M = 1), or the CHANNELS direct kernel with one vector lane of sixteen
 * in use. Here output positions are the vector lanes: a block of positions stays in
 * registers while the kernel walks all kh x kw taps. Two row kernels:
 * - AVX-512 (where ac_ops_direct() says the direct kernels are on), stride 1 and a kernel
 *   span (kw - 1) * dw of at most 16: 128 positions per block, each input vector loaded once
 *   per kernel row and every tap a lane shift (valignd) of two of them and an FMA; borders
 *   and tails are the same blocks with masked loads and stores;
 * - portable C (GCC vector extensions), cloned per ISA (AVX-512, AVX2, SSE2) for the rest
 *   and where the direct kernels are off: 64 positions per block, every tap one unaligned
 *   load and one FMA per 16 positions.
 *
 * ops.c owns the choice (ac_conv2d_choose -> AC_CONV_DEPTHWISE) and calls it; any thread may
 * call it, from outside a parallel region (it starts its own, as every op).
 */
#ifndef AC_CONV_DEPTHWISE_H
#define AC_CONV_DEPTHWISE_H

#include "ops.h"

/* Whether `p` is depthwise in this kernel's sense (and its kernel at most this tall). */
#define AC_DEPTHWISE_MAX_KH 64
int ac_conv_is_depthwise(const ac_conv_params *p);

/* Floats of scratch per thread (a row to pool from, when a max pool is fused). */
size_t ac_conv_depthwise_scratch(const ac_conv_params *p, int h, int w);

/* As ac_conv2d (ops.h) for a depthwise p: x [n, cin, h, w], weight [cout, 1, kh, kw], bias
 * [cout] or NULL, y [n, cout, ho, wo] (wo / pool_w with a fused pool; one-row outputs only),
 * any stride, dilation and padding. Output channel o reads input channel o / (cout / cin). */
void ac_conv_depthwise(const float *x, int n, int h, int w, const float *weight, const float *bias,
                       const ac_conv_params *p, int relu, float *y, float *scratch, int threads);

#endif
