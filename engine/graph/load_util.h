/* load_util.h - what the graph loader's files share: the parse context, JSON field readers
 * and tensor lookups whose errors name the node being read. Internal to engine/graph/. */
#ifndef AC_LOAD_UTIL_H
#define AC_LOAD_UTIL_H

#include <jansson.h>

#include "graph.h"

typedef struct parse_ctx {
    ac_graph *g;
    ac_weights *file;
    char *err;
    ac_status status;  /* of the last lu_fail */
    char where[160];   /* "graph layer 3 (conv1d conv1)" / "graph node \"c1\" (conv1d ...)" */
} parse_ctx;

/* An integer field >= lo (and <= 2^28); absent: dflt, or an error when required. 0 or -1. */
int lu_int(parse_ctx *c, json_t *obj, const char *key, int dflt, int required, int lo, int *out);
/* An int, or a list of n ints (a scalar is repeated). */
int lu_ints(parse_ctx *c, json_t *obj, const char *key, int n, int dflt, int required, int lo,
            int *out);
/* A boolean field; absent: dflt. */
int lu_bool(parse_ctx *c, json_t *obj, const char *key, int dflt, int *out);
/* A number field in [lo, hi]; absent: dflt. */
int lu_num(parse_ctx *c, json_t *obj, const char *key, double dflt, double lo, double hi,
           double *out);
/* A PyTorch axis (>= 1, batch = 0) of a value with item rank `rank`; -> item axis 0..rank-1. */
int lu_axis(parse_ctx *c, json_t *obj, const char *key, int rank, int *axis);

/* Tensor `prefix.suffix` (suffix NULL: prefix is the whole name) with exactly this shape,
 * marked used; I8 only where allowed (then its _scale too). A tensor used twice is an error. */
ac_tensor_ref *lu_tensor(parse_ctx *c, const char *prefix, const char *suffix, int ndim,
                         const int64_t *want, int allow_i8);
/* The tensor's values as a new F32 buffer (I8 rows scaled), or NULL (message set). */
float *lu_to_f32(parse_ctx *c, const ac_tensor_ref *t);
float lu_at(const ac_tensor_ref *t, int64_t i);
int lu_finite(parse_ctx *c, const float *v, size_t n, const char *what);
/* Fails with the node context: always returns -1. */
int lu_fail(parse_ctx *c, ac_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* load_ops.c: fills node fields, tensors and the output shape from its JSON object, the
 * inputs' shapes being known. 0 or -1 (message set). */
int ac_graph_build_node(parse_ctx *c, ac_node *nd, json_t *j);

#endif
