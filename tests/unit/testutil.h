/* testutil.h - helpers shared by the criterion tests. */
#ifndef AC_TESTUTIL_H
#define AC_TESTUTIL_H

#include <stddef.h>

/* Deterministic uniform floats in [-1, 1) from a seed. */
void tu_fill_random(float *x, size_t n, unsigned seed);
/* Max |a - b| over n values. */
double tu_max_abs_diff(const float *a, const float *b, size_t n);
/* Calls fn(path) for each file in dir whose name ends with suffix; returns how many. */
int tu_for_each_file(const char *dir, const char *suffix, void (*fn)(const char *path));

/* A copy (malloc'd, the caller frees it) of F32 tensor `name` of a fixture file: the mapping
 * need not be aligned. Asserts that it exists and is F32; `what` names the fixture in the
 * message. */
#include "weights.h"
float *tu_fixture_f32(ac_weights *fx, const char *what, const char *name, int64_t *numel);

/* Path under the source tree: tu_src_path("models/x") -> "<src>/models/x" (static buffer). */
const char *tu_src_path(const char *rel);


/* Builds a safetensors file in memory from F32 tensors and string metadata, for tests that
 * need a model with chosen weights. */
#include <jansson.h>
#include <stdint.h>
typedef struct tu_st tu_st;
tu_st *tu_st_new(void);
void tu_st_add(tu_st *b, const char *name, int ndim, const int64_t *shape, const float *data);
/* meta: JSON object of strings (borrowed). Returns malloc'd bytes; frees the builder. */
unsigned char *tu_st_finish(tu_st *b, json_t *meta, size_t *len);

#endif
