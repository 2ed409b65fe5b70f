/* blas.h - the one matrix product the engine uses, from OpenBLAS loaded at run time.
 *
 * Why at run time: Debian's OpenBLAS picks its kernels by CPU model number, and a CPU newer
 * than the library (e.g. Emerald Rapids with OpenBLAS 0.3.21) falls back to the SSE3
 * "Prescott" kernel, 5x slower than the AVX-512 one (measured: 15 vs 77-114 GFLOP/s on one
 * core). OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded, so the engine sets it
 * from the CPU's features (unless the user did) and then loads the library. It also sets
 * OPENBLAS_NUM_THREADS=1: the engine's own OpenMP threads call the BLAS.
 *
 * Thread-safety: ac_blas_init is idempotent and thread-safe; ac_sgemm may be called from
 * any number of threads at once after it succeeded.
 */
#ifndef AC_BLAS_H
#define AC_BLAS_H

#include "status.h"

/* Loads the library (AUDIOCLASS_BLAS=path overrides "libopenblas.so.0"). */
ac_status ac_blas_init(char *err);

/* Row-major C[M, N] = A[M, K] . op(B) where op(B) = B[K, N] (trans_b = 0) or B[N, K]^T. */
void ac_sgemm(int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              float *C, int ldc);

/* "OpenBLAS 0.3.21 ... (core SkylakeX, chosen by audioclass)" for logs and `info`. */
const char *ac_blas_description(void);

#endif
