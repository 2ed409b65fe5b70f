/* conv_direct.h - direct (no im2col, no BLAS) AVX-512 convolution kernels for the layers
 * of raw-waveform CNNs: every convolution of EnvNet and M5.
 *
 * Why: these layers have a short inner dimension (EnvNet conv1: K = 8 taps; conv2:
 * K = 40 x 8) and a long time axis. Through im2col + SGEMM the input is copied K times and
 * the GEMM runs with M = 40 output rows, a shape OpenBLAS handles at 33 (K = 8) and 159
 * (K = 320) GFLOP/s on two cores. Two register-blocked kernels instead:
 * - TIME: a block of 8 output channels x 48 time steps stays in 24 zmm registers while the
 *   kernel walks the taps; every input vector is loaded once per tap and feeds 8 FMAs,
 *   weights are broadcast straight from memory (EnvNet conv1-conv4: 204-245 GFLOP/s);
 * - CHANNELS: lanes over 16 output channels, 12 positions per block, for strided and short
 *   rows where 48-step blocks would stay part empty (M5: 234-248 GFLOP/s at batch 64).
 * Bias and ReLU are applied as a block is stored; a fused max pool is folded into the
 * CHANNELS kernel's store and follows TIME blocks as a vectorised pass.
 *
 * ops.c owns the choice: it calls these kernels when the direct kernels are on
 * (ac_ops_direct: the CPU has AVX-512F and they were not switched off) as
 * ac_conv_direct_choose() says; the model packs CHANNELS weights once at load.
 */
#ifndef AC_CONV_DIRECT_H
#define AC_CONV_DIRECT_H

#include "ops.h"

/* Which kernel computes `p` on an input of [cin, h, w]: NONE (im2col + GEMM) unless the
 * convolution is unpadded, of stride 1 and undilated along the height. Then CHANNELS
 * (ac_conv_direct_cols) for one-row convolutions that are strided or shorter than
 * AC_CONV_DIRECT_SHORT_ROW outputs (all of M5's: its pools are fused in that kernel, and a
 * short row would leave TIME blocks part empty), else TIME (ac_conv_direct_rows, output row
 * by output row) for stride 1 and rows of at least AC_CONV_DIRECT_MIN_COLS outputs
 * (EnvNet's conv1-conv4), dilated ones too (WaveNet's and the TCNs' k = 3, d = 2 .. 16: the
 * kernel reads tap k at k dw; through im2col + SGEMM they ran at 2.2x their roofline bound);
 * a dilated one-row convolution that CHANNELS would take gets NONE. (Strided convolutions
 * as stride-1 convolutions over the input's phases, then TIME, measured 10% slower than
 * CHANNELS on M5's conv1.) */
#define AC_CONV_DIRECT_SHORT_ROW 128
#define AC_CONV_DIRECT_MIN_COLS 40 /* a row of 40 fills 5/6 of one block */
#define AC_CONV_DIRECT_BLOCK 48    /* time steps per register block of the TIME kernel */
typedef enum { AC_DIRECT_NONE, AC_DIRECT_TIME, AC_DIRECT_CHANNELS } ac_conv_direct_kind;
ac_conv_direct_kind ac_conv_direct_choose(const ac_conv_params *p, int h, int w);

/* Where the TIME kernel finds its input: cin channels x_stride floats apart, each with kh
 * kernel rows row_stride floats apart, kw taps per row, dw floats apart (the dilation). */
typedef struct ac_direct_geom {
    int cin, kh, kw;
    int x_stride, row_stride;
    int dw;
} ac_direct_geom;

/* One output row: y[o, j] = act(bias[o] + sum_ci sum_ky sum_k w[o, ci, ky, k] *
 * x[ci * x_stride + ky * row_stride + j + k * dw]) for o < cout, j < cols; act = ReLU when
 * relu != 0, identity otherwise; bias may be NULL. w: [cout, cin, kh, kw]; y: [cout, ld].
 * Each input row must hold at least cols + (kw - 1) dw values. */
void ac_conv_direct_rows(const float *x, const ac_direct_geom *g, const float *w,
                         const float *bias, int relu, int cout, int cols, float *y, int ld);

/* The fused max pool's epilogue, vectorised: out[r, j] = max of y[r, j*pw .. j*pw+pw-1]
 * for r < rows, j < cols / pw (floor mode). */
void ac_conv_direct_maxpool(const float *y, int rows, int ld, int cols, int pw, float *out,
                            int out_ld);

/* The channel-vectorised variant for strided (M5's conv1: 80 taps, stride 16) and narrow
 * (fewer than AC_CONV_DIRECT_MIN_COLS outputs) one-row convolutions: lanes run over output
 * channels, so a short time axis wastes nothing. Weights in its layout come from
 * ac_conv_direct_pack into ac_conv_direct_packed_floats(...) floats.
 * y[o, j] = act(bias[o] + sum_ci sum_k w[o, ci, k] * x[ci, stride * j + k]) for j < cols;
 * with pool > 0, y[o, i] = max of that over j in [i * pool, (i + 1) * pool) instead
 * (cols a multiple of pool), so the unpooled row is never stored. y: [cout, ld]. */
size_t ac_conv_direct_packed_floats(int cout, int cin, int kw);
void ac_conv_direct_pack(const float *w, int cout, int cin, int kw, float *packed);
void ac_conv_direct_cols(const float *x, int x_stride, int stride, const float *packed,
                         const float *bias, int relu, int cout, int cin, int kw, int cols, int pool,
                         float *y, int ld);

#endif
