/* linear_direct.h - AVX-512 kernel for fully connected layers whose weights are stored in
 * I8 (per-row scale) or F16, and for small F32 ones, for small batches.
 *
 * Why: EnvNet's fc5/fc6 hold 90% of its weights. Dequantizing them to float tiles and
 * calling SGEMM with the 10 crops of one clip ran at 79-109 GFLOP/s on two cores: the
 * float tile is written and read once more for every batch. Here the stored weights are
 * widened in registers (16 at a time), each widened vector feeds up to 6 batch items, and
 * the per-row scale is applied once to the finished dot product.
 *
 * ops.c calls it for F16/I8 matrices when the CPU has AVX-512F, the direct kernels are
 * enabled (ac_ops_set_direct) and the batch is at most AC_LINEAR_DIRECT_MAX_BATCH; larger
 * batches amortise the dequantization and go through SGEMM. A small F32 matrix (at most
 * AC_LINEAR_DIRECT_F32_MAX weights: a classifier head such as M5's 128 -> 12) runs here
 * too: the BLAS call and its packing cost more than the product (M5 at batch 1: 2 us).
 */
#ifndef AC_LINEAR_DIRECT_H
#define AC_LINEAR_DIRECT_H

#include "ops.h"

#define AC_LINEAR_DIRECT_MAX_BATCH 16
#define AC_LINEAR_DIRECT_F32_MAX 65536

/* y[b, o] = act(scale[o] * sum_i W[o, i] x[b, i] + bias[o]) for b < n, r0 <= o < r1;
 * W: F16, I8 or F32 (scale: W->scale for I8, else 1); x: [n, W->cols]; y: [n, W->rows];
 * bias may be NULL; act = ReLU when relu != 0. */
void ac_linear_direct_rows(const float *x, int n, const ac_matrix *W, const float *bias, int relu,
                           int r0, int r1, float *y);

#endif
