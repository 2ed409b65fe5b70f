/* conv_direct.h - direct (no im2col, no BLAS) AVX-512 kernel for one-row, stride-1
 * convolutions: EnvNet's conv1 and conv2, M5's conv2..conv4.
 *
 * Why: these layers have a short inner dimension (EnvNet conv1: K = 8 taps; conv2:
 * K = 40 x 8) and a long time axis. Through im2col + SGEMM the input is copied K times and
 * the GEMM runs with M = 40 output rows, a shape OpenBLAS handles at 33 (K = 8) and 159
 * (K = 320) GFLOP/s on two cores. Here each output block of 8 channels x 48 time steps
 * stays in 24 AVX-512 registers while the kernel walks the taps: every input vector is
 * loaded once per tap and feeds 8 FMAs, weights are broadcast straight from memory.
 *
 * ops.c owns the choice: it calls this kernel when the direct kernels are on (ac_ops_direct:
 * the CPU has AVX-512F and they were not switched off) and ac_conv_direct_fits() (one row,
 * stride 1, no dilation, no padding). Bias and ReLU are applied as the block is stored; a fused
 * max pool reads the stored chunk once more (ac_conv_direct_maxpool).
 */
#ifndef AC_CONV_DIRECT_H
#define AC_CONV_DIRECT_H

#include "ops.h"

/* 1 when `p` on an input of height h is a shape the kernel computes. */
int ac_conv_direct_fits(const ac_conv_params *p, int h);

/* y[o, j] = act(bias[o] + sum_ci sum_k w[o, ci, k] * x[ci, j + k]) for o < cout, j < cols;
 * act = ReLU when relu != 0, identity otherwise; bias may be NULL.
 * x: cin rows of row stride x_stride, each holding at least cols + kw - 1 values;
 * w: [cout, cin, kw]; y: [cout, ld]. */
void ac_conv_direct_rows(const float *x, int x_stride, const float *w, const float *bias,
                         int relu, int cout, int cin, int kw, int cols, float *y, int ld);

/* The fused max pool's epilogue, vectorised: out[r, j] = max of y[r, j*pw .. j*pw+pw-1]
 * for r < rows, j < cols / pw (floor mode). */
void ac_conv_direct_maxpool(const float *y, int rows, int ld, int cols, int pw, float *out,
                            int out_ld);

#endif
