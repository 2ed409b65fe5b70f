/* load_ops.c - one graph node from its JSON object: fields, tensors, output shape. */
#include "load_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ac_shape in_shape(const parse_ctx *c, const ac_node *nd, int i)
{
    int p = nd->in[i];
    return p == AC_GRAPH_INPUT ? c->g->input : c->g->nodes[p].out;
}

static int is_const_input(const parse_ctx *c, const ac_node *nd, int i)
{
    return nd->in[i] != AC_GRAPH_INPUT && c->g->nodes[nd->in[i]].op == AC_OP_CONST;
}

static int need_inputs(parse_ctx *c, const ac_node *nd, int lo, int hi)
{
    if (nd->n_in < lo || nd->n_in > hi) {
        if (lo == hi) return lu_fail(c, AC_ERR_BAD_MODEL, "takes %d input%s, got %d", lo, lo == 1 ? "" : "s", nd->n_in);
        return lu_fail(c, AC_ERR_BAD_MODEL, "takes %d to %d inputs, got %d", lo, hi, nd->n_in);
    }
    for (int i = 0; i < nd->n_in; i++)
        if (is_const_input(c, nd, i) && nd->op != AC_OP_BINARY)
            return lu_fail(c, AC_ERR_BAD_MODEL, "a const can only be an operand of add or mul");
    return 0;
}

static int need_name(parse_ctx *c, const ac_node *nd)
{
    if (!nd->name[0]) return lu_fail(c, AC_ERR_BAD_MODEL, "needs a \"name\" (its tensors' prefix)");
    return 0;
}

static const char *shape_s(ac_shape s, char *buf, size_t len)
{
    ac_shape_str(s, buf, len);
    return buf;
}

static int build_conv(parse_ctx *c, ac_node *nd, json_t *j, int two_d)
{
    ac_conv_params p = {0};
    int k[2], s[2], d[2], pad[4], bias, n = two_d ? 2 : 1;
    ac_shape x = in_shape(c, nd, 0);
    if (need_name(c, nd) || lu_int(c, j, "in_channels", 0, 1, 1, &p.cin) ||
        lu_int(c, j, "out_channels", 0, 1, 1, &p.cout) || lu_int(c, j, "groups", 1, 0, 1, &p.groups) ||
        lu_ints(c, j, "kernel_size", n, 1, 1, 1, k) || lu_ints(c, j, "stride", n, 1, 0, 1, s) ||
        lu_ints(c, j, "dilation", n, 1, 0, 1, d) || lu_ints(c, j, "padding", 2 * n, 0, 0, 0, pad) ||
        lu_bool(c, j, "bias", 1, &bias))
        return -1;
    if (two_d != (x.rank == 4))
        return lu_fail(c, AC_ERR_BAD_MODEL, "%s needs a rank-%d input, got rank %d", nd->kind,
                       two_d ? 4 : 3, x.rank);
    if (p.cin % p.groups || p.cout % p.groups)
        return lu_fail(c, AC_ERR_BAD_MODEL, "channels %d->%d not divisible by groups %d", p.cin,
                       p.cout, p.groups);
    if (p.cin != x.c)
        return lu_fail(c, AC_ERR_BAD_MODEL, "in_channels %d but the input has %d channels", p.cin, x.c);
    if (two_d) {
        p.kh = k[0], p.kw = k[1], p.sh = s[0], p.sw = s[1], p.dh = d[0], p.dw = d[1];
        p.pad_t = pad[0], p.pad_b = pad[1], p.pad_l = pad[2], p.pad_r = pad[3];
    } else {
        p.kh = 1, p.kw = k[0], p.sh = 1, p.sw = s[0], p.dh = 1, p.dw = d[0];
        p.pad_l = pad[0], p.pad_r = pad[1];
    }
    int ho = ac_out_size(x.h, p.kh, p.sh, p.dh, p.pad_t, p.pad_b);
    int wo = ac_out_size(x.w, p.kw, p.sw, p.dw, p.pad_l, p.pad_r);
    char sb[48];
    if (ho <= 0 || wo <= 0)
        return lu_fail(c, AC_ERR_BAD_MODEL, "input %s is smaller than the kernel", shape_s(x, sb, sizeof sb));
    int64_t wshape[4] = {p.cout, p.cin / p.groups, two_d ? p.kh : p.kw, p.kw};
    ac_tensor_ref *wt = lu_tensor(c, nd->name, "weight", two_d ? 4 : 3, wshape, 1);
    if (!wt) return -1;
    int64_t bshape[1] = {p.cout};
    ac_tensor_ref *bt = bias ? lu_tensor(c, nd->name, "bias", 1, bshape, 0) : NULL;
    if (bias && !bt) return -1;
    nd->conv = p;
    nd->raw_weight = wt;
    if (!(nd->weight = lu_to_f32(c, wt))) return -1;
    if (bias && !(nd->bias = lu_to_f32(c, bt))) return -1;
    nd->out = (ac_shape){p.cout, ho, wo, x.rank};
    nd->conv_out = nd->out;
    nd->flops = 2LL * p.cout * (p.cin / p.groups) * p.kh * p.kw * (int64_t)ho * wo;
    return 0;
}

/* Batch norm as scale/shift per channel: folded into its conv by the passes, or run as an
 * affine. y = (x - mean) * g / sqrt(var + eps) + beta = x * scale + shift. */
static int build_batchnorm(parse_ctx *c, ac_node *nd, json_t *j)
{
    int nf;
    double eps;
    ac_shape x = in_shape(c, nd, 0);
    if (need_name(c, nd) || lu_int(c, j, "num_features", 0, 1, 1, &nf) ||
        lu_num(c, j, "eps", 1e-5, 1e-12, 1, &eps))
        return -1;
    if (c->g->version == 1) { /* version 1: "must follow a conv, into which it is folded" */
        const ac_node *p = nd->in[0] == AC_GRAPH_INPUT ? NULL : &c->g->nodes[nd->in[0]];
        if (!p || p->op != AC_OP_CONV)
            return lu_fail(c, AC_ERR_BAD_MODEL, "batchnorm must directly follow a conv");
    }
    if (nf != x.c)
        return lu_fail(c, AC_ERR_BAD_MODEL, "num_features %d but the input has %d channels", nf, x.c);
    int64_t sh[1] = {nf};
    const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    ac_tensor_ref *t[4];
    for (int i = 0; i < 4; i++)
        if (!(t[i] = lu_tensor(c, nd->name, parts[i], 1, sh, 0))) return -1;
    nd->scale = ac_alloc_floats((size_t)nf);
    nd->shift = ac_alloc_floats((size_t)nf);
    if (!nd->scale || !nd->shift) return lu_fail(c, AC_ERR_NOMEM, "out of memory");
    for (int o = 0; o < nf; o++) {
        float gamma = lu_at(t[0], o), beta = lu_at(t[1], o), mean = lu_at(t[2], o), var = lu_at(t[3], o);
        if (!(var >= 0) || !isfinite(gamma) || !isfinite(beta) || !isfinite(mean) || !isfinite(var))
            return lu_fail(c, AC_ERR_BAD_MODEL, "channel %d has invalid statistics", o);
        double scale = gamma / sqrt((double)var + eps);
        nd->scale[o] = (float)scale;
        nd->shift[o] = (float)(beta - mean * scale);
    }
    nd->out = x;
    nd->eps = (float)eps;
    return 0;
}

static int build_pool(parse_ctx *c, ac_node *nd, json_t *j)
{
    const char *op = nd->kind;
    int two_d = strstr(op, "2d") != NULL, n = two_d ? 2 : 1, k[2], s[2], p[2];
    ac_shape x = in_shape(c, nd, 0);
    if (lu_ints(c, j, "kernel_size", n, 1, 1, 1, k) || lu_ints(c, j, "stride", n, 0, 0, 0, s) ||
        lu_ints(c, j, "padding", n, 0, 0, 0, p))
        return -1;
    if (two_d != (x.rank == 4))
        return lu_fail(c, AC_ERR_BAD_MODEL, "%s needs a rank-%d input, got rank %d", op, two_d ? 4 : 3, x.rank);
    ac_pool_params pp = {0};
    if (two_d) pp.kh = k[0], pp.kw = k[1], pp.sh = s[0], pp.sw = s[1], pp.ph = p[0], pp.pw = p[1];
    else pp.kh = 1, pp.kw = k[0], pp.sh = 1, pp.sw = s[0], pp.ph = 0, pp.pw = p[0];
    if (!pp.sh) pp.sh = pp.kh; /* stride defaults to the kernel, as in PyTorch */
    if (!pp.sw) pp.sw = pp.kw;
    if (2 * pp.ph > pp.kh || 2 * pp.pw > pp.kw)
        return lu_fail(c, AC_ERR_BAD_MODEL, "padding must be at most half the kernel");
    int ho = ac_out_size(x.h, pp.kh, pp.sh, 1, pp.ph, pp.ph);
    int wo = ac_out_size(x.w, pp.kw, pp.sw, 1, pp.pw, pp.pw);
    if (ho <= 0 || wo <= 0) return lu_fail(c, AC_ERR_BAD_MODEL, "input is smaller than the pooling window");
    nd->op = strncmp(op, "max", 3) ? AC_OP_AVGPOOL : AC_OP_MAXPOOL;
    nd->pool = pp;
    nd->out = (ac_shape){x.c, ho, wo, x.rank};
    return 0;
}

/* Linear over the last axis: [..., in] -> [..., out]. */
static int build_linear(parse_ctx *c, ac_node *nd, json_t *j)
{
    int in, out, bias, d[3];
    ac_shape x = in_shape(c, nd, 0);
    if (need_name(c, nd) || lu_int(c, j, "in_features", 0, 1, 1, &in) ||
        lu_int(c, j, "out_features", 0, 1, 1, &out) || lu_bool(c, j, "bias", 1, &bias))
        return -1;
    int r = ac_shape_dims(x, d);
    if (c->g->version == 1 && x.rank != 2)
        return lu_fail(c, AC_ERR_BAD_MODEL, "linear needs a flat input (add flatten)");
    if (in != d[r - 1])
        return lu_fail(c, AC_ERR_BAD_MODEL, "in_features %d but the input has %d features", in, d[r - 1]);
    int64_t wshape[2] = {out, in}, bshape[1] = {out};
    ac_tensor_ref *wt = lu_tensor(c, nd->name, "weight", 2, wshape, 1);
    if (!wt) return -1;
    ac_tensor_ref *bt = bias ? lu_tensor(c, nd->name, "bias", 1, bshape, 0) : NULL;
    if (bias && !bt) return -1;
    nd->raw_weight = wt;
    nd->matrix = (ac_matrix){.dtype = wt->dtype, .data = wt->data, .rows = out, .cols = in};
    if (wt->dtype == AC_I8) {
        char sname[176];
        snprintf(sname, sizeof sname, "%s_scale", wt->name);
        const ac_tensor_ref *s = ac_weights_find(c->file, sname);
        if ((uintptr_t)s->data % 4) return lu_fail(c, AC_ERR_BAD_MODEL, "%s is not 4-byte aligned", sname);
        nd->matrix.scale = s->data;
    } else if ((uintptr_t)wt->data % ac_dtype_size(wt->dtype)) {
        /* Unaligned bytes (another writer's layout): keep an aligned F32 copy instead. */
        if (!(nd->matrix_owned = lu_to_f32(c, wt))) return -1;
        nd->matrix.dtype = AC_F32;
        nd->matrix.data = nd->matrix_owned;
    }
    if (bias && !(nd->bias = lu_to_f32(c, bt))) return -1;
    d[r - 1] = out;
    nd->out = ac_shape_from_dims(r, d);
    nd->flops = 2LL * in * out * (int64_t)(ac_shape_numel(x) / (size_t)in);
    return 0;
}

/* swapaxes (two axes) or permute (all axes, dims[0] = 0): item axes only. */
static int build_permute(parse_ctx *c, ac_node *nd, json_t *j)
{
    ac_shape x = in_shape(c, nd, 0);
    int d[3], r = ac_shape_dims(x, d), ip[3] = {0, 1, 2}; /* item perm: out axis i = in axis ip[i] */
    if (!strcmp(nd->kind, "swapaxes")) {
        int s[2];
        if (lu_ints(c, j, "dims", 2, 0, 1, 1, s)) return -1;
        if (r < 2 || s[0] > r || s[1] > r || s[0] == s[1])
            return lu_fail(c, AC_ERR_BAD_MODEL, "dims must be two different axes in 1..%d (0 is the batch)", r);
        ip[s[0] - 1] = s[1] - 1, ip[s[1] - 1] = s[0] - 1;
    } else {
        json_t *v = json_object_get(j, "dims");
        if (!json_is_array(v) || (int)json_array_size(v) != r + 1)
            return lu_fail(c, AC_ERR_BAD_MODEL, "\"dims\" must list all %d axes (batch first)", r + 1);
        int seen = 0;
        for (int i = 0; i <= r; i++) {
            json_t *e = json_array_get(v, (size_t)i);
            json_int_t a = json_is_integer(e) ? json_integer_value(e) : -1;
            if (a < 0 || a > r || (seen >> a) & 1)
                return lu_fail(c, AC_ERR_BAD_MODEL, "\"dims\" must be a permutation of 0..%d", r);
            seen |= 1 << a;
            if (i == 0 && a != 0)
                return lu_fail(c, AC_ERR_BAD_MODEL, "\"dims\"[0] must be 0: the batch axis stays first");
            if (i > 0) ip[i - 1] = (int)a - 1;
        }
    }
    /* item axis -> storage axis (c, h, w): rank 3 items [c, w] live in (c, 1, w) */
    int st[3] = {0, 1, 2};
    if (r == 2) st[1] = 2;
    if (r == 1) return lu_fail(c, AC_ERR_BAD_MODEL, "a flat value has no axes to permute");
    nd->perm[0] = 0, nd->perm[1] = 1, nd->perm[2] = 2;
    for (int i = 0; i < r; i++) nd->perm[st[i]] = st[ip[i]];
    int od[3];
    for (int i = 0; i < r; i++) od[i] = d[ip[i]];
    nd->op = AC_OP_PERMUTE;
    nd->out = ac_shape_from_dims(r, od);
    return 0;
}

static int build_flatten(parse_ctx *c, ac_node *nd, json_t *j)
{
    ac_shape x = in_shape(c, nd, 0);
    int d[3], r = ac_shape_dims(x, d), s, e;
    if (lu_int(c, j, "start_dim", 1, 0, 1, &s) || lu_int(c, j, "end_dim", r, 0, 1, &e)) return -1;
    if (s > e || e > r)
        return lu_fail(c, AC_ERR_BAD_MODEL, "start_dim %d .. end_dim %d must be axes in 1..%d", s, e, r);
    int od[3], k = 0;
    for (int i = 0; i < r; i++) {
        if (i + 1 > s && i + 1 <= e) od[k - 1] *= d[i];
        else od[k++] = d[i];
    }
    nd->op = AC_OP_RESHAPE;
    nd->out = ac_shape_from_dims(k, od);
    return 0;
}

/* Right-aligned PyTorch broadcasting of two item shapes; a const may carry leading 1s. */
static int build_binary(parse_ctx *c, ac_node *nd)
{
    if (is_const_input(c, nd, 0) && is_const_input(c, nd, 1))
        return lu_fail(c, AC_ERR_BAD_MODEL, "both operands are consts (fold them at export)");
    int d[2][3], r[2];
    for (int i = 0; i < 2; i++) r[i] = ac_shape_dims(in_shape(c, nd, i), d[i]);
    for (int i = 0; i < 2; i++) { /* a const's leading 1s line up with the batch axis */
        int o = 1 - i;
        while (is_const_input(c, nd, i) && r[i] > r[o] && d[i][0] == 1) {
            memmove(d[i], d[i] + 1, sizeof(int) * 2);
            r[i]--;
        }
        if (is_const_input(c, nd, i) && r[i] > r[o])
            return lu_fail(c, AC_ERR_BAD_MODEL, "the const operand has more axes than the value");
    }
    if (r[0] != r[1] && !is_const_input(c, nd, 0) && !is_const_input(c, nd, 1))
        return lu_fail(c, AC_ERR_BAD_MODEL, "operands of rank %d and %d (broadcasting across the "
                       "batch axis is not supported)", r[0] + 1, r[1] + 1);
    int rank = r[0] > r[1] ? r[0] : r[1], od[3];
    for (int k = 0; k < rank; k++) {
        int a = k - (rank - r[0]) >= 0 ? d[0][k - (rank - r[0])] : 1;
        int b = k - (rank - r[1]) >= 0 ? d[1][k - (rank - r[1])] : 1;
        if (a != b && a != 1 && b != 1) {
            char s0[48], s1[48];
            return lu_fail(c, AC_ERR_BAD_MODEL, "shapes %s and %s do not broadcast",
                           shape_s(in_shape(c, nd, 0), s0, sizeof s0), shape_s(in_shape(c, nd, 1), s1, sizeof s1));
        }
        od[k] = a > b ? a : b;
    }
    nd->out = ac_shape_from_dims(rank, od);
    return 0;
}

static int build_const(parse_ctx *c, ac_node *nd)
{
    if (need_name(c, nd)) return -1;
    ac_tensor_ref *t = lu_tensor(c, nd->name, NULL, 0, NULL, 0);
    if (!t) return -1;
    int nd_ = t->ndim, d[3] = {1, 1, 1}, k = 0;
    for (int i = 0; i < nd_; i++) {
        if (nd_ - i > 3) {
            if (t->shape[i] != 1)
                return lu_fail(c, AC_ERR_BAD_MODEL, "tensor %s has more than 3 axes", t->name);
            continue;
        }
        d[k++] = (int)t->shape[i];
    }
    if (k == 0) d[k++] = 1; /* a scalar */
    if (!(nd->cvalue = lu_to_f32(c, t))) return -1;
    nd->out = ac_shape_from_dims(k, d);
    return 0;
}

static int build_concat(parse_ctx *c, ac_node *nd, json_t *j)
{
    ac_shape x = in_shape(c, nd, 0);
    int d[3], r = ac_shape_dims(x, d);
    if (lu_axis(c, j, "dim", r, &nd->axis)) return -1;
    int total = 0;
    for (int i = 0; i < nd->n_in; i++) {
        int e[3], ri = ac_shape_dims(in_shape(c, nd, i), e);
        int ok = ri == r;
        for (int k = 0; ok && k < r; k++) ok = k == nd->axis || e[k] == d[k];
        if (!ok) {
            char s0[48], s1[48];
            return lu_fail(c, AC_ERR_BAD_MODEL, "input %d %s does not fit input 0 %s along dim %d", i,
                           shape_s(in_shape(c, nd, i), s0, sizeof s0), shape_s(x, s1, sizeof s1), nd->axis + 1);
        }
        total += e[nd->axis];
    }
    d[nd->axis] = total;
    nd->out = ac_shape_from_dims(r, d);
    return 0;
}

/* slice: x[start:end:step] along dim; select: x.select(dim, index) (the axis disappears). */
static int build_slice(parse_ctx *c, ac_node *nd, json_t *j, int select)
{
    ac_shape x = in_shape(c, nd, 0);
    int d[3], r = ac_shape_dims(x, d);
    if (lu_axis(c, j, "dim", r, &nd->axis)) return -1;
    int k = d[nd->axis];
    if (select) {
        /* a negative index counts from the end, as in PyTorch: it stays "the last step" for
         * any input length, which is what the stream executor needs (stream.c) */
        if (lu_int(c, j, "index", 0, 1, -k, &nd->start)) return -1;
        if (nd->start >= k) return lu_fail(c, AC_ERR_BAD_MODEL, "index %d outside -%d..%d", nd->start, k, k - 1);
        nd->from_end = nd->start < 0;
        if (nd->from_end) nd->start += k;
        if (r == 1) return lu_fail(c, AC_ERR_BAD_MODEL, "select would leave no axis");
        nd->step = 1, nd->count = 1;
        memmove(d + nd->axis, d + nd->axis + 1, sizeof(int) * (size_t)(2 - nd->axis));
        nd->out = ac_shape_from_dims(r - 1, d);
        return 0;
    }
    int end;
    if (lu_int(c, j, "start", 0, 0, 0, &nd->start) || lu_int(c, j, "end", k, 0, 0, &end) ||
        lu_int(c, j, "step", 1, 0, 1, &nd->step))
        return -1;
    if (!(nd->start < end && end <= k))
        return lu_fail(c, AC_ERR_BAD_MODEL, "slice %d:%d must satisfy 0 <= start < end <= %d", nd->start, end, k);
    nd->count = (end - nd->start + nd->step - 1) / nd->step;
    d[nd->axis] = nd->count;
    nd->out = ac_shape_from_dims(r, d);
    return 0;
}

static int build_pad(parse_ctx *c, ac_node *nd, json_t *j)
{
    ac_shape x = in_shape(c, nd, 0);
    int d[3], r = ac_shape_dims(x, d);
    json_t *v = json_object_get(j, "pads");
    int n = json_is_array(v) ? (int)json_array_size(v) : 0;
    if (n != 2 && n != 4)
        return lu_fail(c, AC_ERR_BAD_MODEL, "\"pads\" must be [left, right] or [left, right, top, bottom]");
    if (n == 4 && r < 2) return lu_fail(c, AC_ERR_BAD_MODEL, "4 pads need a value with two axes");
    if (lu_ints(c, j, "pads", n, 0, 1, 0, nd->pads)) return -1;
    double value;
    if (lu_num(c, j, "value", 0, -1e30, 1e30, &value)) return -1;
    nd->pad_value = (float)value;
    d[r - 1] += nd->pads[0] + nd->pads[1];
    if (n == 4) d[r - 2] += nd->pads[2] + nd->pads[3];
    nd->out = ac_shape_from_dims(r, d);
    return 0;
}

static int build_mean(parse_ctx *c, ac_node *nd, json_t *j)
{
    ac_shape x = in_shape(c, nd, 0);
    int d[3], r = ac_shape_dims(x, d), keep;
    if (lu_axis(c, j, "dim", r, &nd->axis) || lu_bool(c, j, "keepdim", 0, &keep)) return -1;
    if (keep) d[nd->axis] = 1;
    else {
        if (r == 1) return lu_fail(c, AC_ERR_BAD_MODEL, "mean would leave no axis (use keepdim)");
        memmove(d + nd->axis, d + nd->axis + 1, sizeof(int) * (size_t)(2 - nd->axis));
        r--;
    }
    nd->out = ac_shape_from_dims(r, d);
    return 0;
}

static int build_layernorm(parse_ctx *c, ac_node *nd, json_t *j)
{
    ac_shape x = in_shape(c, nd, 0);
    int d[3], r = ac_shape_dims(x, d), dim, affine, D;
    double eps;
    json_t *ns = json_object_get(j, "normalized_shape");
    if (!json_is_array(ns) || json_array_size(ns) != 1 || !json_is_integer(json_array_get(ns, 0)))
        return lu_fail(c, AC_ERR_BAD_MODEL, "\"normalized_shape\" must be [D] (one axis)");
    D = (int)json_integer_value(json_array_get(ns, 0));
    if (lu_num(c, j, "eps", 1e-5, 1e-12, 1, &eps) || lu_bool(c, j, "elementwise_affine", 1, &affine))
        return -1;
    json_t *dv = json_object_get(j, "dim");
    dim = dv ? (int)json_integer_value(dv) : -1;
    if ((dv && !json_is_integer(dv)) || (dim != -1 && dim != 1))
        return lu_fail(c, AC_ERR_BAD_MODEL, "\"dim\" must be -1 (last axis) or 1 (channels)");
    nd->axis = dim == 1 ? 0 : r - 1;
    if (D != d[nd->axis])
        return lu_fail(c, AC_ERR_BAD_MODEL, "normalized_shape [%d] but the axis has %d values", D, d[nd->axis]);
    if (affine) {
        if (need_name(c, nd)) return -1;
        int64_t sh[1] = {D};
        ac_tensor_ref *w = lu_tensor(c, nd->name, "weight", 1, sh, 0);
        ac_tensor_ref *b = w ? lu_tensor(c, nd->name, "bias", 1, sh, 0) : NULL;
        if (!w || !b || !(nd->gamma = lu_to_f32(c, w)) || !(nd->beta = lu_to_f32(c, b))) return -1;
    }
    nd->eps = (float)eps;
    nd->out = x;
    return 0;
}

static int build_rnn(parse_ctx *c, ac_node *nd, json_t *j)
{
    ac_shape x = in_shape(c, nd, 0);
    int d[3], r = ac_shape_dims(x, d), in, H, L, bi, bias;
    if (need_name(c, nd) || lu_int(c, j, "input_size", 0, 1, 1, &in) ||
        lu_int(c, j, "hidden_size", 0, 1, 1, &H) || lu_int(c, j, "num_layers", 1, 0, 1, &L) ||
        lu_bool(c, j, "bidirectional", 0, &bi) || lu_bool(c, j, "bias", 1, &bias))
        return -1;
    if (r != 2) return lu_fail(c, AC_ERR_BAD_MODEL, "needs a batch-first [T, features] input (rank 3)");
    if (d[1] != in) return lu_fail(c, AC_ERR_BAD_MODEL, "input_size %d but the input has %d features", in, d[1]);
    if (L > 64 || H > 65536) return lu_fail(c, AC_ERR_BAD_MODEL, "num_layers/hidden_size too large");
    int gru = !strcmp(nd->kind, "gru"), G = gru ? 3 : 4, dirs = bi ? 2 : 1;
    nd->rnn = (ac_rnn_params){.cell = gru ? AC_RNN_GRU : AC_RNN_LSTM, .input_size = in, .hidden = H,
                              .layers = L, .dirs = dirs};
    int nt = L * dirs;
    nd->rnn_tables = calloc((size_t)4 * nt, sizeof *nd->rnn_tables);
    if (!nd->rnn_tables) return lu_fail(c, AC_ERR_NOMEM, "out of memory");
    for (int l = 0; l < L; l++)
        for (int dir = 0; dir < dirs; dir++) {
            int k = l * dirs + dir, in_l = l == 0 ? in : H * dirs;
            const char *sfx = dir ? "_reverse" : "";
            char nm[4][48];
            snprintf(nm[0], sizeof nm[0], "weight_ih_l%d%s", l, sfx);
            snprintf(nm[1], sizeof nm[1], "weight_hh_l%d%s", l, sfx);
            snprintf(nm[2], sizeof nm[2], "bias_ih_l%d%s", l, sfx);
            snprintf(nm[3], sizeof nm[3], "bias_hh_l%d%s", l, sfx);
            int64_t shp[4][2] = {{(int64_t)G * H, in_l}, {(int64_t)G * H, H}, {(int64_t)G * H, 0}, {(int64_t)G * H, 0}};
            for (int t = 0; t < (bias ? 4 : 2); t++) {
                ac_tensor_ref *tr = lu_tensor(c, nd->name, nm[t], t < 2 ? 2 : 1, shp[t], 0);
                if (!tr || !(nd->rnn_tables[t * nt + k] = lu_to_f32(c, tr))) return -1;
            }
            nd->flops += 2LL * G * H * (in_l + H) * d[0];
        }
    nd->rnn.w_ih = (const float *const *)nd->rnn_tables;
    nd->rnn.w_hh = (const float *const *)nd->rnn_tables + nt;
    nd->rnn.b_ih = bias ? (const float *const *)nd->rnn_tables + 2 * nt : NULL;
    nd->rnn.b_hh = bias ? (const float *const *)nd->rnn_tables + 3 * nt : NULL;
    d[1] = H * dirs;
    nd->out = ac_shape_from_dims(2, d);
    return 0;
}

static int build_softmax(parse_ctx *c, ac_node *nd)
{
    ac_shape x = in_shape(c, nd, 0);
    if (c->g->version == 1 && x.rank != 2) return lu_fail(c, AC_ERR_BAD_MODEL, "needs a flat input");
    nd->op = nd->kind[0] == 's' ? AC_OP_SOFTMAX : AC_OP_LOG_SOFTMAX;
    nd->out = x;
    return 0;
}

static int unary(ac_node *nd, ac_unary_op u, ac_shape x)
{
    nd->op = AC_OP_UNARY;
    nd->unary = u;
    nd->out = x;
    return 0;
}

int ac_graph_build_node(parse_ctx *c, ac_node *nd, json_t *j)
{
    const char *op = nd->kind;
    int one = strcmp(op, "add") && strcmp(op, "mul") && strcmp(op, "concat") && strcmp(op, "const");
    if (one && need_inputs(c, nd, 1, 1)) return -1;
    ac_shape x = nd->n_in ? in_shape(c, nd, 0) : c->g->input;
    if (!strcmp(op, "conv1d") || !strcmp(op, "conv2d")) {
        nd->op = AC_OP_CONV;
        return build_conv(c, nd, j, op[4] == '2');
    }
    if (!strcmp(op, "batchnorm")) { nd->op = AC_OP_BATCHNORM; return build_batchnorm(c, nd, j); }
    if (!strcmp(op, "linear")) { nd->op = AC_OP_LINEAR; return build_linear(c, nd, j); }
    if (!strcmp(op, "relu")) return unary(nd, AC_UNARY_RELU, x);
    if (!strcmp(op, "tanh")) return unary(nd, AC_UNARY_TANH, x);
    if (!strcmp(op, "sigmoid")) return unary(nd, AC_UNARY_SIGMOID, x);
    if (!strcmp(op, "gelu")) {
        const char *a = json_string_value(json_object_get(j, "approximate"));
        if (json_object_get(j, "approximate") && (!a || (strcmp(a, "none") && strcmp(a, "tanh"))))
            return lu_fail(c, AC_ERR_BAD_MODEL, "\"approximate\" must be \"none\" or \"tanh\"");
        return unary(nd, a && !strcmp(a, "tanh") ? AC_UNARY_GELU_TANH : AC_UNARY_GELU_ERF, x);
    }
    if (!strcmp(op, "dropout") || !strcmp(op, "identity")) {
        nd->op = AC_OP_IDENTITY;
        nd->out = x;
        return 0;
    }
    if (!strcmp(op, "maxpool1d") || !strcmp(op, "maxpool2d") || !strcmp(op, "avgpool1d") ||
        !strcmp(op, "avgpool2d"))
        return build_pool(c, nd, j);
    if (!strcmp(op, "global_avgpool")) {
        if (x.rank < 3) return lu_fail(c, AC_ERR_BAD_MODEL, "input is already flat");
        nd->op = AC_OP_GLOBAL_AVGPOOL;
        nd->out = (ac_shape){x.c, 1, 1, x.rank};
        return 0;
    }
    if (!strcmp(op, "swapaxes") || (!strcmp(op, "permute") && c->g->version >= 2)) return build_permute(c, nd, j);
    if (!strcmp(op, "flatten")) return build_flatten(c, nd, j);
    if (!strcmp(op, "softmax") || !strcmp(op, "log_softmax")) return build_softmax(c, nd);
    if (c->g->version >= 2) {
        if (!strcmp(op, "add") || !strcmp(op, "mul")) {
            nd->op = AC_OP_BINARY;
            nd->binary = op[0] == 'a' ? AC_BINARY_ADD : AC_BINARY_MUL;
            return need_inputs(c, nd, 2, 2) ? -1 : build_binary(c, nd);
        }
        if (!strcmp(op, "const")) {
            nd->op = AC_OP_CONST;
            return need_inputs(c, nd, 0, 0) ? -1 : build_const(c, nd);
        }
        if (!strcmp(op, "concat")) {
            nd->op = AC_OP_CONCAT;
            return need_inputs(c, nd, 2, AC_MAX_INPUTS) ? -1 : build_concat(c, nd, j);
        }
        if (!strcmp(op, "slice") || !strcmp(op, "select")) {
            nd->op = AC_OP_SLICE;
            return build_slice(c, nd, j, op[1] == 'e');
        }
        if (!strcmp(op, "pad")) { nd->op = AC_OP_PAD; return build_pad(c, nd, j); }
        if (!strcmp(op, "mean")) { nd->op = AC_OP_MEAN; return build_mean(c, nd, j); }
        if (!strcmp(op, "layernorm")) { nd->op = AC_OP_LAYERNORM; return build_layernorm(c, nd, j); }
        if (!strcmp(op, "gru") || !strcmp(op, "lstm")) { nd->op = AC_OP_RNN; return build_rnn(c, nd, j); }
    }
    return lu_fail(c, AC_ERR_BAD_MODEL, "unknown op \"%s\"%s", op,
                   c->g->version == 1 ? " (format version 1; version 2 has more ops)" : "");
}
