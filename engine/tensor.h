/* tensor.h - per-item activation shapes and aligned scratch buffers.
 *
 * Activations are always stored as [batch, C, H, W] float32, row-major; a 1-D network's
 * [batch, C, L] is [batch, C, 1, L] and a flat [batch, F] is [batch, F, 1, 1]. `rank`
 * remembers the PyTorch rank (batch included) so that ops like swapaxes and flatten can
 * follow PyTorch's numbering.
 */
#ifndef AC_TENSOR_H
#define AC_TENSOR_H

#include <stddef.h>

typedef struct ac_shape {
    int c, h, w; /* per item */
    int rank;    /* PyTorch rank with batch: 2 = [N, F], 3 = [N, C, L], 4 = [N, C, H, W] */
} ac_shape;

static inline size_t ac_shape_numel(ac_shape s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

/* Writes "[C, L]" / "[C, H, W]" / "[F]" as PyTorch would print the item shape. */
void ac_shape_str(ac_shape s, char *buf, size_t len);

/* 64-byte aligned float buffer of n elements (zeroed), or NULL. Free with ac_free_aligned. */
float *ac_alloc_floats(size_t n);
void ac_free_aligned(void *p);

#endif
