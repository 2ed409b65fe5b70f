/* model.c - builds the executable layer list from a model file, runs it, cuts windows. */
#include "model.h"

#include "conv_direct.h"

#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ac_model {
    ac_weights *file;
    ac_model_info info;
    char path[512];
    char **labels;
    ac_shape input;        /* per item */
    ac_layer *layers;
    int n_layers;
    ac_op last_op;         /* decides how raw outputs become probabilities */
    size_t act_floats[2];  /* floats per item each ping-pong buffer needs (forward) */
    size_t probe_floats[2];/* the same when convs also run unfused (forward_conv_output) */
    size_t max_scratch;    /* floats per thread */
};

struct ac_workspace {
    const ac_model *m;
    int max_batch, threads;
    float *act[2];         /* [max_batch * act_cap[i]]: ping-pong activations */
    size_t act_cap[2];     /* floats per item of act[0] and act[1] */
    float *scratch;        /* [threads * max_scratch] */
    double *layer_s;       /* [n_layers] seconds spent per layer since creation (profiling) */
    /* ac_classify_many's batch assembly, allocated once: */
    float *batch;          /* [max_batch, window] cut windows */
    float *raw;            /* [max_batch, n_labels] outputs */
    int *owner;            /* [max_batch] clip of each window */
    size_t *index;         /* [max_batch] window index within its clip */
};

/* ---- small JSON helpers; `where` names the layer in messages ---- */

typedef struct parse_ctx {
    ac_model *m;
    char *err;
    char where[96];
} parse_ctx;

static int json_int_field(parse_ctx *c, json_t *obj, const char *key, int dflt, int required,
                          int lo, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required) {
            ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: missing field \"%s\"", c->where, key);
            return -1;
        }
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > (1 << 28)) {
        ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: \"%s\" must be an integer >= %d", c->where, key, lo);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

/* Reads an int or a list of n ints (a pair for 2-D ops); a scalar is repeated. */
static int json_ints(parse_ctx *c, json_t *obj, const char *key, int n, int dflt, int required,
                     int lo, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_integer(v)) {
        int x;
        if (json_int_field(c, obj, key, dflt, required, lo, &x)) return -1;
        for (int i = 0; i < n; i++) out[i] = x;
        return 0;
    }
    if (!json_is_array(v) || (int)json_array_size(v) != n) {
        ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: \"%s\" must be an integer or a list of %d", c->where,
                key, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < lo || json_integer_value(e) > (1 << 28)) {
            ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: \"%s\"[%d] must be an integer >= %d", c->where,
                    key, i, lo);
            return -1;
        }
        out[i] = (int)json_integer_value(e);
    }
    return 0;
}

/* Finds tensor `prefix.suffix`, checks dtype is allowed and shape equals want[ndim]. */
static ac_tensor_ref *need_tensor(parse_ctx *c, const char *prefix, const char *suffix,
                                  int ndim, const int64_t *want, int allow_i8)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    ac_tensor_ref *t = ac_weights_find(c->m->file, name);
    if (!t) {
        ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: tensor %s is missing", c->where, name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[96] = "", exp[96] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", i ? ", " : "",
                     (long long)want[i]);
        ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: tensor %s has shape [%s], expected [%s]", c->where,
                name, got, exp);
        return NULL;
    }
    if (t->dtype == AC_I8 && !allow_i8) {
        ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: tensor %s: dtype I8 is only allowed for weights",
                c->where, name);
        return NULL;
    }
    t->used = 1;
    if (t->dtype == AC_I8) { /* needs its per-row scale */
        char sname[176];
        snprintf(sname, sizeof sname, "%s_scale", name);
        ac_tensor_ref *s = ac_weights_find(c->m->file, sname);
        if (!s || s->dtype != AC_F32 || s->ndim != 1 || s->shape[0] != want[0]) {
            ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: I8 tensor %s needs %s, F32 [%lld]", c->where,
                    name, sname, (long long)want[0]);
            return NULL;
        }
        s->used = 1;
    }
    return t;
}

static float tensor_at(const ac_tensor_ref *t, int64_t i)
{
    if (t->dtype == AC_F32) {
        float f;
        memcpy(&f, (const char *)t->data + 4 * i, 4); /* the mapping may be unaligned */
        return f;
    }
    if (t->dtype == AC_F16) {
        uint16_t h;
        memcpy(&h, (const char *)t->data + 2 * i, 2);
        return ac_f16_to_f32(h);
    }
    return (float)((const int8_t *)t->data)[i]; /* scaled by the caller */
}

/* Copies a tensor to a new float buffer, dequantizing I8 rows with their scale. */
static float *tensor_to_f32(parse_ctx *c, const ac_tensor_ref *t)
{
    float *out = ac_alloc_floats((size_t)t->numel);
    if (!out) {
        ac_fail(c->err, AC_ERR_NOMEM, "out of memory loading %s", t->name);
        return NULL;
    }
    const float *scale = NULL;
    float *scale_buf = NULL;
    if (t->dtype == AC_I8) {
        char sname[176];
        snprintf(sname, sizeof sname, "%s_scale", t->name);
        const ac_tensor_ref *s = ac_weights_find(c->m->file, sname);
        scale_buf = malloc((size_t)s->numel * sizeof *scale_buf);
        if (!scale_buf) {
            ac_free_aligned(out);
            ac_fail(c->err, AC_ERR_NOMEM, "out of memory loading %s", t->name);
            return NULL;
        }
        for (int64_t i = 0; i < s->numel; i++) scale_buf[i] = tensor_at(s, i);
        scale = scale_buf;
    }
    int64_t row = t->shape[0] ? t->numel / t->shape[0] : 0;
    for (int64_t i = 0; i < t->numel; i++)
        out[i] = tensor_at(t, i) * (scale ? scale[i / row] : 1.f);
    free(scale_buf);
    return out;
}

/* ---- graph construction ---- */

static ac_layer *push_layer(parse_ctx *c, ac_op op, const char *kind)
{
    ac_model *m = c->m;
    ac_layer *L = &m->layers[m->n_layers++];
    memset(L, 0, sizeof *L);
    L->op = op;
    snprintf(L->kind, sizeof L->kind, "%s", kind);
    return L;
}

static int check_finite(parse_ctx *c, const float *v, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: %s holds a non-finite value at %zu", c->where,
                    what, i);
            return -1;
        }
    return 0;
}

static int build_conv(parse_ctx *c, json_t *j, const char *name, int two_d, ac_shape *cur)
{
    ac_conv_params p = {0};
    int k[2], s[2], d[2], pad[4], bias = 1;
    int n = two_d ? 2 : 1;
    if (json_int_field(c, j, "in_channels", 0, 1, 1, &p.cin) ||
        json_int_field(c, j, "out_channels", 0, 1, 1, &p.cout) ||
        json_int_field(c, j, "groups", 1, 0, 1, &p.groups) ||
        json_ints(c, j, "kernel_size", n, 1, 1, 1, k) || json_ints(c, j, "stride", n, 1, 0, 1, s) ||
        json_ints(c, j, "dilation", n, 1, 0, 1, d) || json_ints(c, j, "padding", 2 * n, 0, 0, 0, pad))
        return -1;
    json_t *b = json_object_get(j, "bias");
    if (b && !json_is_boolean(b))
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: \"bias\" must be true or false", c->where), -1;
    bias = b ? json_is_true(b) : 1;
    if (two_d != (cur->rank == 4))
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: %s needs a rank-%d input, got rank %d",
                       c->where, two_d ? "conv2d" : "conv1d", two_d ? 4 : 3, cur->rank), -1;
    if (p.cin % p.groups || p.cout % p.groups)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: channels %d->%d not divisible by groups %d",
                       c->where, p.cin, p.cout, p.groups), -1;
    if (p.cin != cur->c)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: in_channels %d but the input has %d channels",
                       c->where, p.cin, cur->c), -1;
    if (two_d) {
        p.kh = k[0], p.kw = k[1], p.sh = s[0], p.sw = s[1], p.dh = d[0], p.dw = d[1];
        p.pad_t = pad[0], p.pad_b = pad[1], p.pad_l = pad[2], p.pad_r = pad[3];
    } else {
        p.kh = 1, p.kw = k[0], p.sh = 1, p.sw = s[0], p.dh = 1, p.dw = d[0];
        p.pad_l = pad[0], p.pad_r = pad[1];
    }
    int ho = ac_out_size(cur->h, p.kh, p.sh, p.dh, p.pad_t, p.pad_b);
    int wo = ac_out_size(cur->w, p.kw, p.sw, p.dw, p.pad_l, p.pad_r);
    if (ho <= 0 || wo <= 0) {
        char sb[48];
        ac_shape_str(*cur, sb, sizeof sb);
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: input %s is smaller than the kernel",
                       c->where, sb), -1;
    }
    int64_t wshape[4] = {p.cout, p.cin / p.groups, p.kh, p.kw};
    if (!two_d) wshape[2] = p.kw;
    ac_tensor_ref *wt = need_tensor(c, name, "weight", two_d ? 4 : 3, wshape, 1);
    int64_t bshape[1] = {p.cout};
    ac_tensor_ref *bt = bias ? need_tensor(c, name, "bias", 1, bshape, 0) : NULL;
    if (!wt || (bias && !bt)) return -1;

    ac_layer *L = push_layer(c, AC_OP_CONV, two_d ? "conv2d" : "conv1d");
    snprintf(L->name, sizeof L->name, "%s", name);
    L->conv = p;
    L->in = *cur;
    L->raw_weight = wt;
    L->weight = tensor_to_f32(c, wt);
    if (!L->weight) return -1;
    if (bias && !(L->bias = tensor_to_f32(c, bt))) return -1;
    if (check_finite(c, L->weight, (size_t)wt->numel, "weight")) return -1;
    cur->c = p.cout, cur->h = ho, cur->w = wo;
    L->out = L->conv_out = *cur;
    L->flops = 2LL * p.cout * (p.cin / p.groups) * p.kh * p.kw * (int64_t)ho * wo;
    return 0;
}

/* Folds batch norm into the conv just built: w' = w * g / sqrt(v + eps),
 * b' = (b - mean) * g / sqrt(v + eps) + beta. */
static int fold_batchnorm(parse_ctx *c, json_t *j, const char *name, const ac_shape *cur)
{
    ac_model *m = c->m;
    ac_layer *L = m->n_layers ? &m->layers[m->n_layers - 1] : NULL;
    if (!L || L->op != AC_OP_CONV || L->relu || L->folded[0])
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: batchnorm must directly follow a conv",
                       c->where), -1;
    int nf;
    if (json_int_field(c, j, "num_features", 0, 1, 1, &nf)) return -1;
    json_t *e = json_object_get(j, "eps");
    double eps = e ? json_number_value(e) : 1e-5;
    if ((e && !json_is_number(e)) || !(eps > 0) || eps > 1)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: \"eps\" must be a number in (0, 1]",
                       c->where), -1;
    if (nf != cur->c)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: num_features %d but the input has %d channels",
                       c->where, nf, cur->c), -1;
    int64_t sh[1] = {nf};
    const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    ac_tensor_ref *t[4];
    for (int i = 0; i < 4; i++)
        if (!(t[i] = need_tensor(c, name, parts[i], 1, sh, 0))) return -1;
    if (!L->bias) {
        L->bias = ac_alloc_floats((size_t)nf);
        if (!L->bias) return ac_fail(c->err, AC_ERR_NOMEM, "out of memory"), -1;
    }
    size_t per_out = (size_t)(L->conv.cin / L->conv.groups) * L->conv.kh * L->conv.kw;
    for (int o = 0; o < nf; o++) {
        float gamma = tensor_at(t[0], o), beta = tensor_at(t[1], o);
        float mean = tensor_at(t[2], o), var = tensor_at(t[3], o);
        if (!(var >= 0) || !isfinite(gamma) || !isfinite(beta) || !isfinite(mean) || !isfinite(var))
            return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: channel %d has invalid statistics",
                           c->where, o), -1;
        double scale = gamma / sqrt((double)var + eps);
        for (size_t i = 0; i < per_out; i++) L->weight[o * per_out + i] *= (float)scale;
        L->bias[o] = (float)((L->bias[o] - mean) * scale + beta);
    }
    snprintf(L->folded, sizeof L->folded, "%s", name);
    return 0;
}

static int build_pool(parse_ctx *c, json_t *j, const char *op, ac_shape *cur)
{
    int two_d = strstr(op, "2d") != NULL, n = two_d ? 2 : 1, k[2], s[2], p[2];
    if (json_ints(c, j, "kernel_size", n, 1, 1, 1, k) || json_ints(c, j, "stride", n, 0, 0, 0, s) ||
        json_ints(c, j, "padding", n, 0, 0, 0, p))
        return -1;
    if (two_d != (cur->rank == 4))
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: %s needs a rank-%d input, got rank %d",
                       c->where, op, two_d ? 4 : 3, cur->rank), -1;
    ac_pool_params pp = {0};
    if (two_d) pp.kh = k[0], pp.kw = k[1], pp.sh = s[0], pp.sw = s[1], pp.ph = p[0], pp.pw = p[1];
    else pp.kh = 1, pp.kw = k[0], pp.sh = 1, pp.sw = s[0], pp.ph = 0, pp.pw = p[0];
    if (!pp.sh) pp.sh = pp.kh; /* stride defaults to the kernel, as in PyTorch */
    if (!pp.sw) pp.sw = pp.kw;
    if (2 * pp.ph > pp.kh || 2 * pp.pw > pp.kw)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: padding must be at most half the kernel",
                       c->where), -1;
    int ho = ac_out_size(cur->h, pp.kh, pp.sh, 1, pp.ph, pp.ph);
    int wo = ac_out_size(cur->w, pp.kw, pp.sw, 1, pp.pw, pp.pw);
    if (ho <= 0 || wo <= 0)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: input is smaller than the pooling window",
                       c->where), -1;
    ac_layer *L = push_layer(c, strncmp(op, "max", 3) ? AC_OP_AVGPOOL : AC_OP_MAXPOOL, op);
    L->pool = pp;
    L->in = *cur;
    cur->h = ho, cur->w = wo;
    L->out = *cur;
    return 0;
}

static int build_linear(parse_ctx *c, json_t *j, const char *name, ac_shape *cur)
{
    int in, out;
    if (json_int_field(c, j, "in_features", 0, 1, 1, &in) ||
        json_int_field(c, j, "out_features", 0, 1, 1, &out))
        return -1;
    json_t *b = json_object_get(j, "bias");
    if (b && !json_is_boolean(b))
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: \"bias\" must be true or false", c->where), -1;
    int bias = b ? json_is_true(b) : 1;
    if (cur->rank != 2)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: linear needs a flat input (add flatten)",
                       c->where), -1;
    if (in != cur->c)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: in_features %d but the input has %d features",
                       c->where, in, cur->c), -1;
    int64_t wshape[2] = {out, in}, bshape[1] = {out};
    ac_tensor_ref *wt = need_tensor(c, name, "weight", 2, wshape, 1);
    ac_tensor_ref *bt = bias ? need_tensor(c, name, "bias", 1, bshape, 0) : NULL;
    if (!wt || (bias && !bt)) return -1;
    ac_layer *L = push_layer(c, AC_OP_LINEAR, "linear");
    snprintf(L->name, sizeof L->name, "%s", name);
    L->in = *cur;
    L->raw_weight = wt;
    L->matrix = (ac_matrix){.dtype = wt->dtype, .data = wt->data, .rows = out, .cols = in};
    if (wt->dtype == AC_I8) {
        char sname[176];
        snprintf(sname, sizeof sname, "%s_scale", wt->name);
        const ac_tensor_ref *s = ac_weights_find(c->m->file, sname);
        if ((uintptr_t)s->data % 4) {
            ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: %s is not 4-byte aligned", c->where, sname);
            return -1;
        }
        L->matrix.scale = s->data;
    } else if ((uintptr_t)wt->data % ac_dtype_size(wt->dtype)) {
        /* Unaligned bytes (another writer's layout): keep an aligned F32 copy instead. */
        if (!(L->matrix_owned = tensor_to_f32(c, wt))) return -1;
        L->matrix.dtype = AC_F32;
        L->matrix.data = L->matrix_owned;
    }
    if (bias && !(L->bias = tensor_to_f32(c, bt))) return -1;
    cur->c = out;
    L->out = *cur;
    L->flops = 2LL * in * out;
    return 0;
}

static int build_permute(parse_ctx *c, json_t *j, ac_shape *cur)
{
    int dims[2];
    if (json_ints(c, j, "dims", 2, 0, 1, 1, dims)) return -1;
    if (cur->rank < 3 || dims[0] >= cur->rank || dims[1] >= cur->rank || dims[0] == dims[1])
        return ac_fail(c->err, AC_ERR_BAD_MODEL,
                       "%s: dims must be two different axes in 1..%d (0 is the batch)", c->where,
                       cur->rank - 1), -1;
    /* PyTorch axis -> internal (c, h, w) axis: rank 4 maps 1,2,3 -> 0,1,2; rank 3 maps 1,2 -> 0,2 */
    int ax[2];
    for (int i = 0; i < 2; i++) ax[i] = cur->rank == 4 ? dims[i] - 1 : (dims[i] == 1 ? 0 : 2);
    ac_layer *L = push_layer(c, AC_OP_PERMUTE, "swapaxes");
    L->perm[0] = 0, L->perm[1] = 1, L->perm[2] = 2;
    L->perm[ax[0]] = ax[1], L->perm[ax[1]] = ax[0];
    L->in = *cur;
    int d[3] = {cur->c, cur->h, cur->w};
    cur->c = d[L->perm[0]], cur->h = d[L->perm[1]], cur->w = d[L->perm[2]];
    L->out = *cur;
    return 0;
}

/* Adds file graph entry j to the executable list; cur is the running item shape. */
static int build_layer(parse_ctx *c, json_t *j, ac_shape *cur)
{
    ac_model *m = c->m;
    const char *op = json_string_value(json_object_get(j, "op"));
    json_t *nm = json_object_get(j, "name");
    const char *name = json_is_string(nm) ? json_string_value(nm) : "";
    if (!op)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: missing \"op\"", c->where), -1;
    snprintf(c->where + strlen(c->where), sizeof c->where - strlen(c->where), " (%s%s%s)", op,
             name[0] ? " " : "", name);
    int named = !strcmp(op, "conv1d") || !strcmp(op, "conv2d") || !strcmp(op, "linear") ||
                !strcmp(op, "batchnorm");
    if (named && (!name[0] || strlen(name) >= AC_NAME_LEN))
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: needs a \"name\" of 1..%d characters",
                       c->where, AC_NAME_LEN - 1), -1;
    ac_layer *prev = m->n_layers ? &m->layers[m->n_layers - 1] : NULL;

    if (!strcmp(op, "conv1d") || !strcmp(op, "conv2d")) return build_conv(c, j, name, op[4] == '2', cur);
    if (!strcmp(op, "batchnorm")) return fold_batchnorm(c, j, name, cur);
    if (!strcmp(op, "linear")) return build_linear(c, j, name, cur);
    if (!strcmp(op, "dropout")) return 0; /* identity at inference */
    if (!strcmp(op, "relu")) {
        if (prev && (prev->op == AC_OP_CONV || prev->op == AC_OP_LINEAR) && !prev->relu) {
            prev->relu = 1;
            return 0;
        }
        ac_layer *L = push_layer(c, AC_OP_RELU, op);
        L->in = L->out = *cur;
        return 0;
    }
    if (!strcmp(op, "maxpool1d") || !strcmp(op, "maxpool2d") || !strcmp(op, "avgpool1d") ||
        !strcmp(op, "avgpool2d"))
        return build_pool(c, j, op, cur);
    if (!strcmp(op, "global_avgpool")) {
        if (cur->rank < 3)
            return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: input is already flat", c->where), -1;
        ac_layer *L = push_layer(c, AC_OP_GLOBAL_AVGPOOL, op);
        L->in = *cur;
        cur->h = cur->w = 1;
        L->out = *cur;
        return 0;
    }
    if (!strcmp(op, "swapaxes")) return build_permute(c, j, cur);
    if (!strcmp(op, "flatten")) {
        ac_layer *L = push_layer(c, AC_OP_FLATTEN, op);
        L->in = *cur;
        *cur = (ac_shape){.c = (int)ac_shape_numel(*cur), .h = 1, .w = 1, .rank = 2};
        L->out = *cur;
        return 0;
    }
    if (!strcmp(op, "softmax") || !strcmp(op, "log_softmax")) {
        if (cur->rank != 2)
            return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: needs a flat input", c->where), -1;
        ac_layer *L = push_layer(c, op[0] == 's' ? AC_OP_SOFTMAX : AC_OP_LOG_SOFTMAX, op);
        L->in = L->out = *cur;
        return 0;
    }
    return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: unknown op \"%s\"", c->where, op), -1;
}

/* Layers that work in place keep their input buffer; the others write the other one. */
static int in_place(ac_op op)
{
    return op == AC_OP_RELU || op == AC_OP_FLATTEN || op == AC_OP_SOFTMAX || op == AC_OP_LOG_SOFTMAX;
}

/* Follows run_layers' ping-pong to size each buffer for what lands in it: EnvNet's 3.8 MB
 * conv1 output needs one big buffer, not two (every other activation is at most 0.9 MB). */
static void size_buffers(ac_model *m)
{
    int buf = 0; /* the input is copied into act[0] */
    m->act_floats[0] = m->probe_floats[0] = ac_shape_numel(m->input);
    m->act_floats[1] = m->probe_floats[1] = 1;
    for (int l = 0; l < m->n_layers; l++) {
        const ac_layer *L = &m->layers[l];
        if (in_place(L->op)) continue;
        buf = 1 - buf;
        size_t out = ac_shape_numel(L->out), unfused = L->op == AC_OP_CONV ? ac_shape_numel(L->conv_out) : out;
        if (out > m->act_floats[buf]) m->act_floats[buf] = out;
        if (unfused > m->probe_floats[buf]) m->probe_floats[buf] = unfused;
        if (out > m->probe_floats[buf]) m->probe_floats[buf] = out;
    }
}

/* Convolutions that the channel-vectorised direct kernel runs get their weights packed
 * once here (ops.h: ac_conv_params.packed), not on every call: at batch 1 repacking M5's
 * conv4 cost more than computing it. Returns -1 when out of memory. */
static int pack_conv_weights(ac_model *m)
{
    for (int l = 0; l < m->n_layers; l++) {
        ac_layer *L = &m->layers[l];
        if (L->op != AC_OP_CONV || ac_conv_direct_choose(&L->conv, L->in.h, L->in.w) != AC_DIRECT_CHANNELS)
            continue;
        const int G = L->conv.groups, cin_g = L->conv.cin / G, cout_g = L->conv.cout / G;
        const size_t per_group = ac_conv_direct_packed_floats(cout_g, cin_g, L->conv.kw);
        L->packed = ac_alloc_floats(per_group * (size_t)G);
        if (!L->packed) return -1;
        for (int g = 0; g < G; g++)
            ac_conv_direct_pack(L->weight + (size_t)g * cout_g * cin_g * L->conv.kw, cout_g, cin_g,
                                L->conv.kw, L->packed + (size_t)g * per_group);
        L->conv.packed = L->packed;
    }
    return 0;
}

/* A max pool over time right after a one-row conv (EnvNet conv2 -> pool (1,160), M5's
 * conv -> pool 4) is done in the conv's epilogue, chunk by chunk, so the large unpooled
 * activation is never written to memory. Only non-overlapping, unpadded windows. */
static void fuse_conv_maxpool(ac_model *m)
{
    int w = 0;
    for (int r = 0; r < m->n_layers; r++) {
        ac_layer *L = &m->layers[r], *P = r + 1 < m->n_layers ? &m->layers[r + 1] : NULL;
        m->layers[w] = *L;
        ac_layer *K = &m->layers[w++];
        if (K->op == AC_OP_CONV && P && P->op == AC_OP_MAXPOOL && K->out.h == 1 && P->pool.kh == 1 &&
            P->pool.ph == 0 && P->pool.pw == 0 && P->pool.sw == P->pool.kw && P->pool.kw > 1) {
            K->conv.pool_w = P->pool.kw;
            K->out = P->out;
            r++; /* the pool is now part of the conv */
        }
    }
    m->n_layers = w;
}

static ac_status parse_json_meta(parse_ctx *c, const char *key, json_t **out)
{
    const char *s = ac_weights_meta(c->m->file, key);
    if (!s) return ac_fail(c->err, AC_ERR_BAD_MODEL, "metadata \"%s\" is missing", key);
    json_error_t je;
    *out = json_loads(s, 0, &je);
    if (!*out)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "metadata \"%s\" is not valid JSON: %s", key, je.text);
    return AC_OK;
}

static ac_status parse_int_meta(parse_ctx *c, const char *key, int lo, int hi, int *out)
{
    const char *s = ac_weights_meta(c->m->file, key);
    if (!s) return ac_fail(c->err, AC_ERR_BAD_MODEL, "metadata \"%s\" is missing", key);
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return ac_fail(c->err, AC_ERR_BAD_MODEL, "metadata \"%s\" = \"%s\": expected an integer in %d..%d",
                       key, s, lo, hi);
    *out = (int)v;
    return AC_OK;
}

static ac_status build_model(ac_model *m, char *err)
{
    parse_ctx c = {.m = m, .err = err};
    ac_model_info *info = &m->info;
    json_t *shape = NULL, *labels = NULL, *graph = NULL, *policy = NULL;
    ac_status st;
    const char *fmt = ac_weights_meta(m->file, "format");
    if (!fmt || strcmp(fmt, "audioclass"))
        return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"format\" must be \"audioclass\" (got %s%s%s)",
                       fmt ? "\"" : "", fmt ? fmt : "none", fmt ? "\"" : "");
    if ((st = parse_int_meta(&c, "format_version", 1, 1000, &info->format_version))) return st;
    if (info->format_version != AC_FORMAT_VERSION)
        return ac_fail(err, AC_ERR_BAD_MODEL, "format_version %d is not supported (this build reads %d)",
                       info->format_version, AC_FORMAT_VERSION);
    if ((st = parse_int_meta(&c, "sample_rate", 1000, 384000, &info->sample_rate))) return st;
    info->name = ac_weights_meta(m->file, "name");
    if (!info->name || !info->name[0]) return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"name\" is missing");
#define OPT_META(field, key) info->field = ac_weights_meta(m->file, key) ? ac_weights_meta(m->file, key) : ""
    OPT_META(arch, "arch");
    OPT_META(description, "description");
    OPT_META(license, "license");
    OPT_META(training, "training");
#undef OPT_META

    if ((st = parse_json_meta(&c, "input_shape", &shape))) goto out;
    size_t rank = json_is_array(shape) ? json_array_size(shape) : 0;
    int dims[3] = {0};
    for (size_t i = 0; i < rank && i < 3; i++) {
        json_t *e = json_array_get(shape, i);
        dims[i] = json_is_integer(e) && json_integer_value(e) > 0 && json_integer_value(e) < (1 << 24)
                      ? (int)json_integer_value(e) : 0;
    }
    if ((rank != 2 && rank != 3) || !dims[0] || !dims[1] || (rank == 3 && !dims[2])) {
        st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"input_shape\" must be [C, L] or [C, H, W] of positive sizes");
        goto out;
    }
    m->input = rank == 2 ? (ac_shape){dims[0], 1, dims[1], 3} : (ac_shape){dims[0], dims[1], dims[2], 4};
    if (m->input.c != 1 || m->input.h != 1) {
        st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"input_shape\": the input must be one waveform ([1, L] or [1, 1, L])");
        goto out;
    }

    if ((st = parse_json_meta(&c, "policy", &policy))) goto out;
    c.where[0] = 0;
    snprintf(c.where, sizeof c.where, "metadata \"policy\"");
    if (!json_is_object(policy) || json_int_field(&c, policy, "window", 0, 1, 1, &info->window) ||
        json_int_field(&c, policy, "hop", 0, 1, 1, &info->hop) ||
        json_int_field(&c, policy, "pad", 0, 0, 0, &info->pad)) {
        st = json_is_object(policy) ? AC_ERR_BAD_MODEL
                                    : ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"policy\" is not an object");
        goto out;
    }
    if (info->window != m->input.w) {
        st = ac_fail(err, AC_ERR_BAD_MODEL, "policy window %d differs from the input length %d",
                     info->window, m->input.w);
        goto out;
    }

    if ((st = parse_json_meta(&c, "labels", &labels))) goto out;
    if (!json_is_array(labels) || json_array_size(labels) == 0 || json_array_size(labels) > 100000) {
        st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"labels\" must be a non-empty list of strings");
        goto out;
    }
    info->n_labels = (int)json_array_size(labels);
    m->labels = calloc((size_t)info->n_labels, sizeof *m->labels);
    if (!m->labels) { st = ac_fail(err, AC_ERR_NOMEM, "out of memory"); goto out; }
    for (int i = 0; i < info->n_labels; i++) {
        const char *s = json_string_value(json_array_get(labels, (size_t)i));
        if (!s || !s[0]) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"labels\"[%d] is not a non-empty string", i);
            goto out;
        }
        if (!(m->labels[i] = strdup(s))) { st = ac_fail(err, AC_ERR_NOMEM, "out of memory"); goto out; }
    }
    info->labels = (const char *const *)m->labels;

    if ((st = parse_json_meta(&c, "graph", &graph))) goto out;
    if (!json_is_array(graph) || json_array_size(graph) == 0 || json_array_size(graph) > 4096) {
        st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"graph\" must be a non-empty list of layers");
        goto out;
    }
    m->layers = calloc(json_array_size(graph), sizeof *m->layers);
    if (!m->layers) { st = ac_fail(err, AC_ERR_NOMEM, "out of memory"); goto out; }
    ac_shape cur = m->input;
    size_t i;
    json_t *layer;
    json_array_foreach(graph, i, layer) {
        snprintf(c.where, sizeof c.where, "graph layer %zu", i);
        if (!json_is_object(layer)) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "%s: not a JSON object", c.where);
            goto out;
        }
        if (build_layer(&c, layer, &cur)) { st = AC_ERR_BAD_MODEL; goto out; }
        if (ac_shape_numel(cur) > ((size_t)1 << 28)) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "%s: activation of %zu values is too large", c.where,
                         ac_shape_numel(cur));
            goto out;
        }
    }
    if (m->n_layers == 0) {
        st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"graph\" has no executable layer");
        goto out;
    }
    if (cur.rank != 2 || cur.c != info->n_labels) {
        char sb[48];
        ac_shape_str(cur, sb, sizeof sb);
        st = ac_fail(err, AC_ERR_BAD_MODEL, "the graph outputs %s but there are %d labels", sb,
                     info->n_labels);
        goto out;
    }
    m->last_op = m->layers[m->n_layers - 1].op;
    for (int t = 0; t < ac_weights_count(m->file); t++) {
        const ac_tensor_ref *tr = ac_weights_at(m->file, t);
        if (!tr->used) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "tensor %s is not used by the graph", tr->name);
            goto out;
        }
        /* parameters as PyTorch counts them: not the BN statistics, not quantization scales */
        size_t nl = strlen(tr->name);
        int buffer = (nl > 13 && !strcmp(tr->name + nl - 13, ".running_mean")) ||
                     (nl > 12 && !strcmp(tr->name + nl - 12, ".running_var")) ||
                     (nl > 6 && !strcmp(tr->name + nl - 6, "_scale"));
        if (!buffer) info->n_params += tr->numel;
    }
    fuse_conv_maxpool(m);
    size_buffers(m);
    if (pack_conv_weights(m)) { st = ac_fail(err, AC_ERR_NOMEM, "out of memory"); goto out; }
    for (int l = 0; l < m->n_layers; l++) {
        const ac_layer *L = &m->layers[l];
        info->flops += L->flops;
        size_t s = 0;
        if (L->op == AC_OP_CONV) { /* the probe also runs fused convs without their pool */
            ac_conv_params unfused = L->conv;
            unfused.pool_w = 0;
            s = ac_conv2d_scratch(&L->conv, L->in.h, L->in.w);
            size_t s2 = ac_conv2d_scratch(&unfused, L->in.h, L->in.w);
            s = s2 > s ? s2 : s;
        }
        if (L->op == AC_OP_LINEAR) s = ac_linear_scratch(&L->matrix);
        if (s > m->max_scratch) m->max_scratch = s;
    }
    info->file_bytes = ac_weights_file_size(m->file);
    info->sha256 = ac_weights_sha256(m->file);
    info->path = m->path;
out:
    json_decref(shape);
    json_decref(labels);
    json_decref(graph);
    json_decref(policy);
    return st;
}

static ac_status load_common(ac_weights *w, const char *path, ac_model **out, char *err)
{
    ac_model *m = calloc(1, sizeof *m);
    if (!m) {
        ac_weights_close(w);
        return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    }
    m->file = w;
    snprintf(m->path, sizeof m->path, "%s", path ? path : "");
    ac_status st = ac_ops_init(err);
    if (st == AC_OK) st = build_model(m, err);
    if (st != AC_OK) {
        ac_model_free(m);
        return st;
    }
    *out = m;
    return AC_OK;
}

ac_status ac_model_load(const char *path, ac_model **out, char *err)
{
    if (!out || !path) return ac_fail(err, AC_ERR_INVALID_ARG, "ac_model_load: NULL argument");
    *out = NULL;
    ac_weights *w;
    ac_status st = ac_weights_open(path, &w, err);
    return st ? st : load_common(w, path, out, err);
}

ac_status ac_model_load_memory(const void *buf, size_t len, const char *path, ac_model **out,
                               char *err)
{
    if (!out) return ac_fail(err, AC_ERR_INVALID_ARG, "ac_model_load_memory: NULL argument");
    *out = NULL;
    ac_weights *w;
    ac_status st = ac_weights_open_memory(buf, len, &w, err);
    return st ? st : load_common(w, path, out, err);
}

void ac_model_free(ac_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_layers; i++) {
        ac_free_aligned(m->layers[i].weight);
        ac_free_aligned(m->layers[i].bias);
        ac_free_aligned(m->layers[i].matrix_owned);
        ac_free_aligned(m->layers[i].packed);
    }
    free(m->layers);
    if (m->labels)
        for (int i = 0; i < m->info.n_labels; i++) free(m->labels[i]);
    free(m->labels);
    ac_weights_close(m->file);
    free(m);
}

const ac_model_info *ac_model_get_info(const ac_model *m) { return &m->info; }
int ac_model_layer_count(const ac_model *m) { return m->n_layers; }
const ac_layer *ac_model_layer(const ac_model *m, int i)
{
    return (i >= 0 && i < m->n_layers) ? &m->layers[i] : NULL;
}
const char *ac_model_meta(const ac_model *m, const char *key) { return ac_weights_meta(m->file, key); }
int ac_model_meta_all(const ac_model *m, const char **keys, const char **values, int max)
{
    return ac_weights_meta_all(m->file, keys, values, max);
}

void ac_model_layer_describe(const ac_model *m, int i, char *buf, size_t len)
{
    const ac_layer *L = &m->layers[i];
    char in[48], out[48], kind[64];
    ac_shape_str(L->in, in, sizeof in);
    ac_shape_str(L->out, out, sizeof out);
    snprintf(kind, sizeof kind, "%s%s%s%s", L->kind, L->folded[0] ? "+bn" : "", L->relu ? "+relu" : "",
             L->op == AC_OP_CONV && L->conv.pool_w ? "+maxpool" : "");
    if (L->op == AC_OP_LINEAR)
        snprintf(kind + strlen(kind), sizeof kind - strlen(kind), " (%s)", ac_dtype_name(L->matrix.dtype));
    snprintf(buf, len, "%-8s %-20s %-16s -> %-16s %10.3f MFLOP", L->name[0] ? L->name : "-", kind,
             in, out, (double)L->flops / 1e6);
}

/* ---- workspace and forward ---- */

static ac_status workspace_create(const ac_model *m, int max_batch, int threads, int probe,
                                  ac_workspace **out, char *err)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > 4096)
        return ac_fail(err, AC_ERR_INVALID_ARG, "max batch %d must be in 1..4096", max_batch);
    if (threads <= 0) threads = omp_get_max_threads();
    if (threads > 256) threads = 256;
    ac_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    ws->m = m;
    ws->max_batch = max_batch;
    ws->threads = threads;
    for (int i = 0; i < 2; i++) {
        ws->act_cap[i] = probe ? m->probe_floats[i] : m->act_floats[i];
        ws->act[i] = ac_alloc_floats(ws->act_cap[i] * (size_t)max_batch);
    }
    ws->scratch = ac_alloc_floats(m->max_scratch * (size_t)threads);
    ws->layer_s = calloc((size_t)m->n_layers, sizeof *ws->layer_s);
    ws->batch = ac_alloc_floats((size_t)max_batch * (size_t)m->info.window);
    ws->raw = ac_alloc_floats((size_t)max_batch * (size_t)m->info.n_labels);
    ws->owner = calloc((size_t)max_batch, sizeof *ws->owner);
    ws->index = calloc((size_t)max_batch, sizeof *ws->index);
    if (!ws->act[0] || !ws->act[1] || !ws->scratch || !ws->layer_s || !ws->batch || !ws->raw || !ws->owner ||
        !ws->index) {
        ac_workspace_free(ws);
        return ac_fail(err, AC_ERR_NOMEM, "out of memory for a workspace of batch %d", max_batch);
    }
    *out = ws;
    return AC_OK;
}

ac_status ac_workspace_create(const ac_model *m, int max_batch, int threads, ac_workspace **out,
                              char *err)
{
    return workspace_create(m, max_batch, threads, 0, out, err);
}

ac_status ac_workspace_create_probe(const ac_model *m, int max_batch, int threads,
                                    ac_workspace **out, char *err)
{
    return workspace_create(m, max_batch, threads, 1, out, err);
}

int ac_workspace_batch_for_budget(const ac_model *m, int max_batch, int threads, size_t budget_bytes)
{
    if (threads <= 0) threads = omp_get_max_threads();
    size_t fixed = m->max_scratch * (size_t)threads * sizeof(float);
    size_t per_item = (m->act_floats[0] + m->act_floats[1] + (size_t)m->info.window + (size_t)m->info.n_labels) * sizeof(float);
    size_t b = budget_bytes > fixed ? (budget_bytes - fixed) / per_item : 1;
    if (b < 1) b = 1;
    return b < (size_t)max_batch ? (int)b : max_batch;
}

void ac_workspace_free(ac_workspace *ws)
{
    if (!ws) return;
    ac_free_aligned(ws->act[0]);
    ac_free_aligned(ws->act[1]);
    ac_free_aligned(ws->scratch);
    free(ws->layer_s);
    ac_free_aligned(ws->batch);
    ac_free_aligned(ws->raw);
    free(ws->owner);
    free(ws->index);
    free(ws);
}

int ac_workspace_max_batch(const ac_workspace *ws) { return ws->max_batch; }
int ac_workspace_threads(const ac_workspace *ws) { return ws->threads; }
const double *ac_workspace_layer_seconds(const ac_workspace *ws) { return ws->layer_s; }

/* Runs layer L on cur [n, L->in] into nxt [n, L->out]; returns the buffer holding the result. */
static float *run_layer(const ac_layer *L, ac_workspace *ws, int n, float *cur, float *nxt)
{
    const int T = ws->threads;
    switch (L->op) {
    case AC_OP_CONV:
        ac_conv2d(cur, n, L->in.h, L->in.w, L->weight, L->bias, &L->conv, L->relu, nxt,
                  ws->scratch, T);
        return nxt;
    case AC_OP_RELU:
        ac_relu(cur, ac_shape_numel(L->in) * (size_t)n, T);
        return cur;
    case AC_OP_MAXPOOL:
        ac_maxpool2d(cur, n, L->in.c, L->in.h, L->in.w, &L->pool, nxt, T);
        return nxt;
    case AC_OP_AVGPOOL:
        ac_avgpool2d(cur, n, L->in.c, L->in.h, L->in.w, &L->pool, nxt, T);
        return nxt;
    case AC_OP_GLOBAL_AVGPOOL:
        ac_global_avgpool(cur, n, L->in.c, L->in.h * L->in.w, nxt, T);
        return nxt;
    case AC_OP_PERMUTE: {
        int dims[3] = {L->in.c, L->in.h, L->in.w};
        ac_permute3(cur, n, dims, L->perm, nxt, T);
        return nxt;
    }
    case AC_OP_FLATTEN:
        return cur; /* [C, H, W] and [C*H*W] are the same bytes */
    case AC_OP_LINEAR:
        ac_linear(cur, n, &L->matrix, L->bias, L->relu, nxt, ws->scratch, T);
        return nxt;
    case AC_OP_SOFTMAX:
        ac_softmax(cur, n, L->in.c);
        return cur;
    case AC_OP_LOG_SOFTMAX:
        ac_log_softmax(cur, n, L->in.c);
        return cur;
    }
    return cur;
}

/* Runs layers [0, upto) on x; returns the workspace buffer that holds the result. */
static float *run_layers(const ac_model *m, ac_workspace *ws, const float *x, int n, int upto)
{
    float *cur = ws->act[0];
    memcpy(cur, x, ac_shape_numel(m->input) * (size_t)n * sizeof *cur);
    for (int l = 0; l < upto; l++) {
        float *nxt = cur == ws->act[0] ? ws->act[1] : ws->act[0];
        double t0 = omp_get_wtime();
        cur = run_layer(&m->layers[l], ws, n, cur, nxt);
        ws->layer_s[l] += omp_get_wtime() - t0; /* ~20 ns; layers take microseconds or more */
    }
    return cur;
}

static ac_status check_forward_args(const ac_model *m, ac_workspace *ws, const float *x, int n,
                                    const float *out, char *err)
{
    if (!m || !ws || !x || !out || ws->m != m)
        return ac_fail(err, AC_ERR_INVALID_ARG, "forward: NULL argument or workspace of another model");
    if (n < 1 || n > ws->max_batch)
        return ac_fail(err, AC_ERR_INVALID_ARG, "forward: batch %d outside 1..%d", n, ws->max_batch);
    return AC_OK;
}

ac_status ac_model_forward_upto(const ac_model *m, ac_workspace *ws, const float *x, int n,
                                int upto, float *out, char *err)
{
    ac_status st = check_forward_args(m, ws, x, n, out, err);
    if (st != AC_OK) return st;
    if (upto < 0 || upto > m->n_layers) upto = m->n_layers;
    float *res = run_layers(m, ws, x, n, upto);
    ac_shape os = upto ? m->layers[upto - 1].out : m->input;
    memcpy(out, res, ac_shape_numel(os) * (size_t)n * sizeof *out);
    return AC_OK;
}

ac_status ac_model_forward_conv_output(const ac_model *m, ac_workspace *ws, const float *x, int n,
                                       int li, float *out, char *err)
{
    ac_status st = check_forward_args(m, ws, x, n, out, err);
    if (st != AC_OK) return st;
    if (li < 0 || li >= m->n_layers || m->layers[li].op != AC_OP_CONV)
        return ac_fail(err, AC_ERR_INVALID_ARG, "layer %d is not a conv layer", li);
    ac_layer unfused = m->layers[li];
    unfused.conv.pool_w = 0;
    unfused.out = unfused.conv_out;
    if (ws->act_cap[0] < m->probe_floats[0] || ws->act_cap[1] < m->probe_floats[1])
        return ac_fail(err, AC_ERR_INVALID_ARG,
                       "layer %d: unfused conv output needs a workspace from ac_workspace_create_probe", li);
    float *in = run_layers(m, ws, x, n, li);
    float *res = run_layer(&unfused, ws, n, in, in == ws->act[0] ? ws->act[1] : ws->act[0]);
    memcpy(out, res, ac_shape_numel(unfused.out) * (size_t)n * sizeof *out);
    return AC_OK;
}

ac_status ac_model_forward(const ac_model *m, ac_workspace *ws, const float *x, int n,
                           float *out, char *err)
{
    return ac_model_forward_upto(m, ws, x, n, -1, out, err);
}

void ac_model_probs(const ac_model *m, float *x, int n)
{
    size_t k = (size_t)m->info.n_labels;
    if (m->last_op == AC_OP_LOG_SOFTMAX)
        for (size_t i = 0; i < k * (size_t)n; i++) x[i] = expf(x[i]);
    else if (m->last_op != AC_OP_SOFTMAX)
        ac_softmax(x, n, (int)k);
}

/* ---- test-time policy ---- */

size_t ac_model_windows(const ac_model *m, size_t n, size_t *starts, size_t max_starts)
{
    const size_t w = (size_t)m->info.window, hop = (size_t)m->info.hop;
    const size_t len = n + 2 * (size_t)m->info.pad;
    if (len <= w) {
        if (starts && max_starts) starts[0] = 0;
        return 1;
    }
    size_t count = (len - w + hop - 1) / hop + 1;
    for (size_t i = 0; starts && i < count && i < max_starts; i++)
        starts[i] = (size_t)floor((double)i * (double)(len - w) / (double)(count - 1) + 0.5);
    return count;
}

void ac_model_cut_window(const ac_model *m, const float *samples, size_t n, size_t k, float *dst)
{
    const size_t w = (size_t)m->info.window, pad = (size_t)m->info.pad, len = n + 2 * pad;
    memset(dst, 0, w * sizeof *dst);
    if (len <= w) { /* one window; the padded clip sits in its centre */
        memcpy(dst + (w - len) / 2 + pad, samples, n * sizeof *dst);
        return;
    }
    size_t count = ac_model_windows(m, n, NULL, 0);
    size_t start = (size_t)floor((double)k * (double)(len - w) / (double)(count - 1) + 0.5);
    /* dst[j] = padded[start + j] = samples[start + j - pad] where that is inside the clip */
    size_t j0 = start < pad ? pad - start : 0;
    size_t j1 = start + w > pad + n ? pad + n - start : w;
    if (j1 > j0) memcpy(dst + j0, samples + (start + j0 - pad), (j1 - j0) * sizeof *dst);
}

double ac_model_window_time(const ac_model *m, size_t n, size_t k)
{
    const size_t w = (size_t)m->info.window, len = n + 2 * (size_t)m->info.pad;
    if (len <= w) return 0.0;
    size_t starts_k = 0, count = ac_model_windows(m, n, NULL, 0);
    starts_k = (size_t)floor((double)k * (double)(len - w) / (double)(count - 1) + 0.5);
    return ((double)starts_k - m->info.pad) / m->info.sample_rate;
}

ac_status ac_classify_many(const ac_model *m, ac_workspace *ws, const float *const *samples,
                           const size_t *n, int count, ac_prediction *out, char *err)
{
    const int k = m->info.n_labels, bmax = ws->max_batch;
    const size_t w = (size_t)m->info.window;
    size_t total = 0;
    ac_status st = AC_OK;
    memset(out, 0, (size_t)count * sizeof *out);
    for (int c = 0; c < count; c++) {
        if (n[c] == 0) return ac_fail(err, AC_ERR_AUDIO_EMPTY, "clip %d contains no samples", c);
        total += ac_model_windows(m, n[c], NULL, 0);
    }
    for (int c = 0; c < count && st == AC_OK; c++) {
        ac_prediction *p = &out[c];
        p->n_labels = k;
        p->n_windows = ac_model_windows(m, n[c], NULL, 0);
        p->probs = calloc((size_t)k, sizeof *p->probs);
        p->window_probs = malloc(p->n_windows * (size_t)k * sizeof *p->window_probs);
        p->window_output = malloc(p->n_windows * (size_t)k * sizeof *p->window_output);
        if (!p->probs || !p->window_probs || !p->window_output)
            st = ac_fail(err, AC_ERR_NOMEM, "out of memory for %zu windows", p->n_windows);
    }
    float *batch = ws->batch, *raw = ws->raw;
    int *owner = ws->owner;
    size_t *index = ws->index;
    /* Windows of all clips, in order, packed into batches of up to bmax. */
    int clip = 0;
    size_t win = 0;
    for (size_t done = 0; st == AC_OK && done < total;) {
        int nb = 0;
        while (nb < bmax && clip < count) {
            ac_model_cut_window(m, samples[clip], n[clip], win, batch + (size_t)nb * w);
            owner[nb] = clip, index[nb] = win, nb++;
            if (++win == out[clip].n_windows) clip++, win = 0;
        }
        if ((st = ac_model_forward(m, ws, batch, nb, raw, err))) break;
        for (int b = 0; b < nb; b++) {
            ac_prediction *p = &out[owner[b]];
            memcpy(p->window_output + index[b] * (size_t)k, raw + (size_t)b * k, (size_t)k * sizeof *raw);
        }
        ac_model_probs(m, raw, nb);
        for (int b = 0; b < nb; b++) {
            ac_prediction *p = &out[owner[b]];
            memcpy(p->window_probs + index[b] * (size_t)k, raw + (size_t)b * k, (size_t)k * sizeof *raw);
        }
        done += (size_t)nb;
    }
    for (int c = 0; c < count && st == AC_OK; c++) {
        ac_prediction *p = &out[c];
        for (size_t i = 0; i < p->n_windows; i++)
            for (int j = 0; j < k; j++) p->probs[j] += p->window_probs[i * (size_t)k + (size_t)j];
        for (int j = 0; j < k; j++) p->probs[j] /= (float)p->n_windows;
    }
    if (st != AC_OK)
        for (int c = 0; c < count; c++) ac_prediction_free(&out[c]);
    return st;
}

ac_status ac_classify(const ac_model *m, ac_workspace *ws, const float *samples, size_t n,
                      ac_prediction *out, char *err)
{
    return ac_classify_many(m, ws, &samples, &n, 1, out, err);
}

void ac_prediction_free(ac_prediction *p)
{
    if (!p) return;
    free(p->probs);
    free(p->window_probs);
    free(p->window_output);
    memset(p, 0, sizeof *p);
}

int ac_top_k(const float *probs, int n, int k, int *idx)
{
    if (k > n) k = n;
    for (int i = 0; i < k; i++) {
        int best = -1;
        for (int j = 0; j < n; j++) {
            int taken = 0;
            for (int t = 0; t < i && !taken; t++) taken = idx[t] == j;
            if (!taken && (best < 0 || probs[j] > probs[best])) best = j;
        }
        idx[i] = best;
    }
    return k;
}
