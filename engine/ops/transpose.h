/* transpose.h - internal to engine/ops/: the AVX-512 transpose of a 2-D block of floats, the
 * inner loop of ac_permute4 (shape.c) when an axis swap moves the input's last axis.
 *
 * Why: element by element, a transpose reads (or writes) one float per cache line visited
 * and runs the load and store ports at a sixteenth of their width; ConvNeXt's
 * [128, 2000] <-> [2000, 128] permutes ran 5-10x over their memory bound that way. Here 16
 * rows of 16 floats are loaded as 16 zmm registers, transposed in registers (64 shuffles:
 * unpack ps, unpack pd, two rounds of 128-bit lane shuffles) and stored as 16 rows, so
 * every load and store is a whole vector.
 *
 * shape.c calls them when ac_ops_direct() says the AVX-512 kernels are on; otherwise its
 * scalar tile loop runs. Any thread may call them; they touch only x and y.
 */
#ifndef AC_TRANSPOSE_H
#define AC_TRANSPOSE_H

#include <stddef.h>

/* y[j * ldy + i] = x[i * ldx + j] for i < rows, j < cols: x [rows, cols] with row stride ldx,
 * y [cols, rows] with row stride ldy. Any sizes (partial 16 x 16 tiles are masked: nothing
 * outside the block is read or written); x and y must not overlap. Needs AVX-512F. */
void ac_transpose_block(const float *x, size_t ldx, float *y, size_t ldy, int rows, int cols);

/* Prefetches rows x [rows, cols] (row stride ld) into L1, for writing when `write`: a hint
 * for the tile a transpose reaches next on its strided side, whose 64 rows are as many
 * streams, more than the hardware prefetcher follows. */
void ac_transpose_prefetch(const float *x, size_t ld, int rows, int cols, int write);

#endif
