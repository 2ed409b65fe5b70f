/* gemm_bf16.h - the BF16 matrix product of convolutions in a model file that opts into
 * bfloat16 compute ("compute": "bf16" in its metadata, FORMAT.md).
 *
 * C[M, N] = A[M, K] . B[K, N] with A (the weights) and B (im2col columns or the input)
 * rounded to bfloat16 (round to nearest even), products summed in FP32 by AVX-512 BF16's
 * vdpbf16ps: two products per FP32 lane per instruction, twice the FP32 FMA's work.
 *
 * A is packed once, when the model is loaded (ac_bf16_pack_a): panels of MR rows, each a
 * run of K/2 pairs, [panels][K/2][MR][2] bfloat16, zero-padded to whole panels and an even K.
 * B is converted and packed as it is used, 32 columns at a time, into the caller's scratch.
 *
 * Thread-safety: pure functions of their arguments; any number of threads may call them at
 * once with their own C and scratch. Only where ac_bf16_supported() says so.
 */
#ifndef AC_GEMM_BF16_H
#define AC_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

/* 1 where the CPU has AVX-512 BF16 (and AUDIOCLASS_KERNELS does not say "blas"). */
int ac_bf16_supported(void);

/* Rows per packed panel for an M-row matrix (8, 10 or 12: the least padding). */
int ac_bf16_panel_rows(int M);

/* bfloat16 elements of the packed A. */
size_t ac_bf16_packed_size(int M, int K);

/* out = A[M, K] (row stride lda) packed as above. */
void ac_bf16_pack_a(const float *A, int M, int K, int lda, uint16_t *out);

/* Layers with fewer products per output than this stay in FP32: with so short a sum the
 * product is bound by stores, not by the dot products (EnvNet's conv1, K = 8: 18 GFLOP/s in
 * BF16 vs 61 in the FP32 direct kernel). */
#define AC_BF16_MIN_K 32

/* bfloat16 elements of scratch ac_gemm_bf16 needs for K. */
size_t ac_bf16_scratch(int K);

/* C[M, N] (row stride ldc) = relu?(Ap . B + bias) where row k of B[K, N] starts at
 * brow[k] (rows anywhere: the im2col buffer, or for an unpadded stride-1 one-row conv,
 * shifted rows of the input itself); Ap from ac_bf16_pack_a; bias [M] or NULL. */
void ac_gemm_bf16(int M, int N, int K, const uint16_t *Ap, const float *const *brow, float *C,
                  int ldc, const float *bias, int relu, uint16_t *scratch);

/* out[n] = x[n] as bfloat16 (round to nearest even). */
void ac_bf16_convert(const float *x, int n, uint16_t *out);

/* One-row convolution, stride 1, dilation 1, unpadded, kw even, straight from the input:
 * C[M, N] (row stride ldc) = relu?(bias + Ap . B) with B[(ci, kx), j] = xb[ci * ldx + j + kx],
 * xb the group's input rows as bfloat16 (ac_bf16_convert), each readable for
 * (N rounded up to 32) + kw elements; Ap = ac_bf16_pack_a of the [M, cin * kw] weights. */
void ac_conv1d_bf16(int M, int N, int cin, int kw, const uint16_t *Ap, const uint16_t *xb, int ldx,
                    float *C, int ldc, const float *bias, int relu);

/* Round to nearest even, as the packing does (for tests and the reference). */
float ac_bf16_round(float x);

#endif
