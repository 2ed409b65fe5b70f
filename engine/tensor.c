/* tensor.c - shape printing and aligned allocation. */
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ac_shape_str(ac_shape s, char *buf, size_t len)
{
    if (s.rank <= 2) snprintf(buf, len, "[%d]", s.c);
    else if (s.rank == 3) snprintf(buf, len, "[%d, %d]", s.c, s.w);
    else snprintf(buf, len, "[%d, %d, %d]", s.c, s.h, s.w);
}

float *ac_alloc_floats(size_t n)
{
    size_t bytes = (n ? n : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void ac_free_aligned(void *p) { free(p); }
