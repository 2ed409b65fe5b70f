/* exec.c - runs one step of a planned graph: the one switch over the ops. Kernels get
 * explicit inputs and outputs; shapes come from the nodes. */
#include "graph.h"

#include <string.h>

static ac_shape in_shape(const ac_graph *g, const ac_node *nd, int k)
{
    return nd->in[k] == AC_GRAPH_INPUT ? g->input : g->nodes[nd->in[k]].out;
}

void ac_axis_view(ac_shape s, int n, int axis, size_t *rows, int *k, size_t *inner)
{
    int d[3], r = ac_shape_dims(s, d);
    size_t outer = 1, in = 1;
    for (int i = 0; i < axis; i++) outer *= (size_t)d[i];
    for (int i = axis + 1; i < r; i++) in *= (size_t)d[i];
    *rows = (size_t)n * outer, *k = d[axis], *inner = in;
}

void ac_dims4(ac_shape s, int batch, int out[4])
{
    int d[3], r = ac_shape_dims(s, d);
    out[0] = batch, out[1] = out[2] = out[3] = 1;
    for (int i = 0; i < r; i++) out[4 - r + i] = d[i];
}

int ac_graph_chain_here(const ac_graph *g, int k)
{
    if (k < 0 || k + 1 >= g->n_steps || !g->steps[k].chained) return 0;
    const ac_node *a = &g->nodes[g->steps[k].node], *b = &g->nodes[g->steps[k + 1].node];
    const ac_shape x = a->n_in ? in_shape(g, a, 0) : g->input;
    return ac_conv2d_chain_fits(&a->conv, x.h, x.w, &b->conv);
}

void ac_exec_chain(const ac_graph *g, int k, const float *x, float *out, const struct ac_exec_ctx *ctx)
{
    const ac_node *a = &g->nodes[g->steps[k].node], *b = &g->nodes[g->steps[k + 1].node];
    const ac_shape xs = a->n_in ? in_shape(g, a, 0) : g->input;
    const ac_conv_layer la = {&a->conv, a->weight, a->bias, a->relu}, lb = {&b->conv, b->weight, b->bias, b->relu};
    ac_conv2d_chain(x, ctx->n, xs.h, xs.w, &la, &lb, out, ctx->scratch, ctx->threads);
}

void ac_exec_step(const ac_graph *g, int k, const float *const *in, float *out,
                  const struct ac_exec_ctx *ctx)
{
    const ac_step *s = &g->steps[k];
    const ac_node *nd = &g->nodes[s->node];
    const int n = ctx->n, T = ctx->threads;
    const ac_shape x = nd->n_in ? in_shape(g, nd, 0) : g->input;
    const size_t count = ac_shape_numel(nd->out) * (size_t)n;
    size_t rows = 0, inner = 0;
    int kk = 0;
    switch (nd->op) {
    case AC_OP_CONV: {
        ac_conv_params p = nd->conv;
        if (ctx->unfused) p.pool_w = 0;
        ac_conv2d(in[0], n, x.h, x.w, nd->weight, nd->bias, &p, nd->relu, out, ctx->scratch, T);
        return;
    }
    case AC_OP_BATCHNORM:
        ac_channel_affine(in[0], n, x.c, ac_shape_numel(x) / (size_t)x.c, nd->scale, nd->shift, out, T);
        return;
    case AC_OP_UNARY:
        ac_unary(nd->unary, in[0], out, count, T);
        return;
    case AC_OP_MAXPOOL:
        ac_maxpool2d(in[0], n, x.c, x.h, x.w, &nd->pool, out, T);
        return;
    case AC_OP_AVGPOOL:
        ac_avgpool2d(in[0], n, x.c, x.h, x.w, &nd->pool, out, T);
        return;
    case AC_OP_GLOBAL_AVGPOOL:
        ac_global_avgpool(in[0], n, x.c, x.h * x.w, out, T);
        return;
    case AC_OP_PERMUTE: {
        int d[3] = {x.c, x.h, x.w};
        ac_permute3(in[0], n, d, nd->perm, out, T);
        return;
    }
    case AC_OP_IDENTITY: case AC_OP_RESHAPE: /* a step only when it copies the network input */
        if (out != in[0]) memcpy(out, in[0], count * sizeof *out);
        return;
    case AC_OP_LINEAR:
        ac_linear(in[0], (int)(count / (size_t)nd->matrix.rows), &nd->matrix, nd->bias, nd->relu, out,
                  ctx->scratch, T);
        return;
    case AC_OP_SOFTMAX: case AC_OP_LOG_SOFTMAX: {
        int d[3], r = ac_shape_dims(nd->out, d);
        if (out != in[0]) memcpy(out, in[0], count * sizeof *out);
        if (nd->op == AC_OP_SOFTMAX) ac_softmax(out, (int)(count / (size_t)d[r - 1]), d[r - 1]);
        else ac_log_softmax(out, (int)(count / (size_t)d[r - 1]), d[r - 1]);
        return;
    }
    case AC_OP_BINARY: {
        int a[4], b[4], y[4];
        ac_dims4(in_shape(g, nd, 0), s->in_slot[0] == AC_SLOT_CONST ? 1 : n, a);
        ac_dims4(in_shape(g, nd, 1), s->in_slot[1] == AC_SLOT_CONST ? 1 : n, b);
        ac_dims4(nd->out, n, y);
        ac_binary(nd->binary, in[0], a, in[1], b, out, y, T);
        return;
    }
    case AC_OP_CONCAT: {
        int ks[AC_MAX_INPUTS];
        for (int i = 0; i < nd->n_in; i++) ac_axis_view(in_shape(g, nd, i), n, nd->axis, &rows, &ks[i], &inner);
        ac_concat(in, ks, nd->n_in, rows, inner, out, T);
        return;
    }
    case AC_OP_SLICE:
        ac_axis_view(x, n, nd->axis, &rows, &kk, &inner);
        ac_slice(in[0], rows, kk, inner, nd->start, nd->step, nd->count, out, T);
        return;
    case AC_OP_PAD: {
        int d[3], r = ac_shape_dims(x, d), four = nd->pads[2] || nd->pads[3];
        int w = d[r - 1], h = four ? d[r - 2] : 1;
        size_t planes = ac_shape_numel(x) * (size_t)n / ((size_t)h * (size_t)w);
        ac_pad2d(in[0], planes, h, w, four ? nd->pads[2] : 0, four ? nd->pads[3] : 0, nd->pads[0],
                 nd->pads[1], nd->pad_value, out, T);
        return;
    }
    case AC_OP_MEAN:
        ac_axis_view(x, n, nd->axis, &rows, &kk, &inner);
        ac_mean_axis(in[0], rows, kk, inner, out, T);
        return;
    case AC_OP_LAYERNORM: {
        int d[3], r = ac_shape_dims(x, d);
        if (nd->axis == r - 1)
            ac_layernorm_last(in[0], count / (size_t)d[r - 1], d[r - 1], nd->gamma, nd->beta, nd->eps, out, T);
        else
            ac_layernorm_channels(in[0], n, d[0], ac_shape_numel(x) / (size_t)d[0], nd->gamma, nd->beta,
                                  nd->eps, out, T);
        return;
    }
    case AC_OP_RNN: {
        int d[3];
        ac_shape_dims(x, d);
        ac_rnn(&nd->rnn, in[0], n, d[0], out, ctx->scratch, T);
        return;
    }
    case AC_OP_CONST:
        return; /* not a step: its value lives in the node */
    }
}
