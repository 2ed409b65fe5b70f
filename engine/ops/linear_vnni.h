/* linear_vnni.h - fully connected layers with I8 weights in integer arithmetic (AVX-512
 * VNNI), for model files that ask for it ("compute" with "int8", FORMAT.md).
 *
 * Each input row is quantized to 8 bits when the layer runs, with a scale of its own
 * (dynamic quantization): s = max / 255 and zero point 0 when the row has no negative value
 * (the input of a layer after ReLU or max pool), else s = max|x| / 127 and zero point 128.
 * vpdpbusd multiplies the u8 inputs by the s8 weights and sums four products per 32-bit
 * lane; the result is  y[b, o] = s_b * scale[o] * (sum_i q[b, i] W[o, i] - zp_b * sum_i W[o, i])
 * + bias[o].  Per-row scales from the data being classified, rather than one scale per
 * tensor calibrated once on other clips, cannot clip a louder input and cost one pass over
 * the input (7,700 values for EnvNet's fc5, against 31.5 M weights).
 *
 * Thread-safety: pure functions of their arguments; ac_linear quantizes once, then its
 * threads call ac_linear_vnni_rows on disjoint rows.
 */
#ifndef AC_LINEAR_VNNI_H
#define AC_LINEAR_VNNI_H

#include <stdint.h>

#include "ops.h"

/* Inputs per layer at most: 255 * 127 * 65,536 < 2^31, so no 32-bit sum overflows. */
#define AC_VNNI_MAX_IN 65536
/* Items quantized and multiplied at a time (ac_linear). */
#define AC_VNNI_BATCH 16

/* 1 where the CPU has AVX-512 VNNI and BW (and the hand-written kernels are on). */
int ac_vnni_supported(void);

/* Bytes per quantized row: in rounded up to 64. */
int ac_vnni_row_bytes(int in);

/* q[b, 0..ldq) = x[b, :] quantized (padding: the zero point), scale[b], zp[b], for b < n. */
void ac_vnni_quantize(const float *x, int n, int in, uint8_t *q, int ldq, float *scale, int32_t *zp);

/* y[b, o] for b < n, r0 <= o < r1 (row stride W->rows), relu when asked; W is I8. */
void ac_linear_vnni_rows(const uint8_t *q, int ldq, const float *scale, const int32_t *zp, int n,
                         const ac_matrix *W, const float *bias, int relu, int r0, int r1, float *y);

#endif
