/* testutil.h - helpers shared by the criterion tests. */
#ifndef AC_TESTUTIL_H
#define AC_TESTUTIL_H

#include <stddef.h>

/* Deterministic uniform floats in [-1, 1) from a seed. */
void tu_fill_random(float *x, size_t n, unsigned seed);
/* Max |a - b| over n values. */
double tu_max_abs_diff(const float *a, const float *b, size_t n);
/* Path under the source tree: tu_src_path("models/x") -> "<src>/models/x" (static buffer). */
const char *tu_src_path(const char *rel);

#endif
