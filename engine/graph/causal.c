/* causal.c - decides whether a planned graph can run over a stream piece by piece, and how
 * each value flows (graph.h, ac_flow_info): which values carry time and along which axis,
 * where time is reduced away, which steps form the head.
 *
 * A step may take TIME inputs when its new output frames depend only on frames already seen:
 * convolutions and pools along time that pad on the left only (a right pad would need the
 * future), per-frame ops (elementwise, affine, linear/layernorm/softmax over a non-time
 * axis, concat/slice/mean over other axes, permutes), unidirectional RNNs over time, and two
 * reductions: a mean over time and x.select(time, -1). Anything else that touches the time
 * axis (a flatten across it, a linear over it, an index from the start) makes the graph
 * non-causal, and g->causal_why names the node. */
#include "graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void layout(ac_shape s, int tax, size_t *outer, size_t *inner)
{
    const size_t d[3] = {(size_t)s.c, (size_t)s.h, (size_t)s.w};
    *outer = *inner = 1;
    for (int a = 0; a < tax; a++) *outer *= d[a];
    for (int a = tax + 1; a < 3; a++) *inner *= d[a];
}

/* Item axis (PyTorch numbering without the batch) of storage axis `st` at rank `rank`. */
static int item_axis(int rank, int st) { return rank == 3 && st == 2 ? 1 : st; }

static int dim_at(ac_shape s, int a) { return a == 0 ? s.c : a == 1 ? s.h : s.w; }

static int refuse(ac_graph *g, const ac_node *nd, const char *fmt, ...)
{
    int n = snprintf(g->causal_why, sizeof g->causal_why, "node %s (%s): ", nd->id, nd->kind);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof g->causal_why)
        vsnprintf(g->causal_why + n, sizeof g->causal_why - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* The storage axis of `to` that holds the same frames as axis `tax` of `from` (same size,
 * same floats before and after it), or -1: a reshape that keeps time intact. */
static int same_time_axis(ac_shape from, int tax, ac_shape to)
{
    size_t o, i, o2, i2;
    layout(from, tax, &o, &i);
    for (int a = 2; a >= 0; a--) {
        layout(to, a, &o2, &i2);
        if (dim_at(to, a) == dim_at(from, tax) && o2 == o && i2 == i) return a;
    }
    return -1;
}

/* Conv node i pads on the right, and its one reader is a slice along time that keeps frames
 * [0, L - pad_r): with stride 1 those are exactly the outputs of the same conv padded on the
 * left only (x[:, :, :-pad] after conv(padding=pad), the TCN reference's Chomp1d). */
static int chomped(const ac_graph *g, int i)
{
    const ac_node *nd = &g->nodes[i];
    if (nd->conv.sw != 1 || nd->conv.pool_w || nd->relu || nd->consumers != 1 || g->output == i) return 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const ac_node *r = &g->nodes[k];
        if (r->n_in != 1 || r->in[0] != i) continue;
        return r->op == AC_OP_SLICE && strcmp(r->kind, "select") && r->alias < 0 &&
               ac_storage_axis(nd->out.rank, r->axis) == 2 && r->start == 0 && r->step == 1 &&
               r->count == nd->out.w - nd->conv.pad_r;
    }
    return 0;
}

static ac_flow_info input_flow(const ac_graph *g)
{
    ac_flow_info f = {.flow = AC_FLOW_TIME, .tax = 2};
    layout(g->input, 2, &f.outer, &f.inner);
    return f;
}

/* The flow of node i from its op and its inputs' flows; -1 with g->causal_why when a TIME
 * input reaches an op that cannot take it. */
static int classify(ac_graph *g, int i)
{
    ac_node *nd = &g->nodes[i];
    ac_flow_info *f = &g->flow[i], in[AC_MAX_INPUTS];
    int any_time = 0, any_reduced = 0;
    for (int j = 0; j < nd->n_in; j++) {
        in[j] = nd->in[j] == AC_GRAPH_INPUT ? g->input_flow : g->flow[nd->in[j]];
        any_time |= in[j].flow == AC_FLOW_TIME;
        any_reduced |= in[j].flow == AC_FLOW_REDUCED;
    }
    memset(f, 0, sizeof *f);
    if (nd->alias >= 0 && nd->op != AC_OP_IDENTITY && nd->op != AC_OP_RESHAPE) {
        /* folded or fused into the step that computes it (a batch norm, relu or pool after
         * a conv): that step's value and flow */
        *f = g->flow[ac_graph_root(g, i)];
        return 0;
    }
    if (nd->op == AC_OP_IDENTITY || nd->op == AC_OP_RESHAPE) {
        /* the same bytes as its input: time must stay one axis with the same layout */
        int src = nd->in[0];
        *f = src == AC_GRAPH_INPUT ? g->input_flow : g->flow[src];
        if (f->flow != AC_FLOW_TIME) return 0;
        ac_shape from = src == AC_GRAPH_INPUT ? g->input : g->nodes[src].out;
        int a = same_time_axis(from, f->tax, nd->out);
        if (a < 0) return refuse(g, nd, "reshapes the time axis into others");
        f->tax = a;
        layout(nd->out, a, &f->outer, &f->inner);
        return 0;
    }
    if (!any_time) {
        f->flow = any_reduced ? AC_FLOW_REDUCED : AC_FLOW_CONST;
        return 0;
    }
    for (int j = 0; j < nd->n_in; j++)
        if (in[j].flow == AC_FLOW_REDUCED)
            return refuse(g, nd, "combines a value over time with one reduced over the whole stream");
    const ac_flow_info x = in[0];
    const ac_shape xs = nd->in[0] == AC_GRAPH_INPUT ? g->input : g->nodes[nd->in[0]].out;
    const int rank = xs.rank;
    const int last = ac_storage_axis(rank, rank - 2); /* storage axis of the last item axis */
    int axis_st = ac_storage_axis(rank, nd->axis);
    f->flow = AC_FLOW_TIME;
    f->tax = x.tax;
    switch (nd->op) {
    case AC_OP_CONV:
        if (x.tax != 2) return refuse(g, nd, "convolves over an axis other than time");
        if (nd->conv.pad_r && !(f->chomp = chomped(g, i)))
            return refuse(g, nd, "pads %d on the right: it would read the future", nd->conv.pad_r);
        break;
    case AC_OP_MAXPOOL: case AC_OP_AVGPOOL:
        if (x.tax != 2) return refuse(g, nd, "pools over an axis other than time");
        if (nd->pool.pw) return refuse(g, nd, "pads over time on both sides: it would read the future");
        break;
    case AC_OP_PAD:
        if (x.tax == 2 && nd->pads[1]) return refuse(g, nd, "pads %d on the right of time: it would read the future", nd->pads[1]);
        if (x.tax != 2 && (x.tax != 1 || rank != 4) && (nd->pads[2] || nd->pads[3]))
            return refuse(g, nd, "pads the time axis");
        if (x.tax == 1 && (nd->pads[2] || nd->pads[3])) return refuse(g, nd, "pads the time axis");
        break;
    case AC_OP_UNARY:
        break;
    case AC_OP_BATCHNORM:
        if (x.tax == 0) return refuse(g, nd, "normalises per channel along the time axis");
        break;
    case AC_OP_BINARY:
        for (int j = 0; j < 2; j++) {
            if (in[j].flow == AC_FLOW_CONST) {
                ac_shape s = g->nodes[nd->in[j]].out;
                int d[3], r = ac_shape_dims(s, d), off = (nd->out.rank - 1) - r, item_t = -1;
                for (int a = 0; a < nd->out.rank - 1; a++)
                    if (ac_storage_axis(nd->out.rank, a) == x.tax) item_t = a;
                if (item_t - off >= 0 && d[item_t - off] != 1)
                    return refuse(g, nd, "a constant operand varies along time");
            } else if (in[j].tax != x.tax || in[j].outer * in[j].inner != x.outer * x.inner) {
                return refuse(g, nd, "its operands have time on different axes or differ per frame");
            }
        }
        for (int j = 0; j < 2; j++)
            if (in[j].flow == AC_FLOW_TIME) f->tax = in[j].tax;
        break;
    case AC_OP_CONCAT:
        for (int j = 0; j < nd->n_in; j++)
            if (in[j].flow != AC_FLOW_TIME || in[j].tax != x.tax)
                return refuse(g, nd, "concatenates values that are not all frames along one time axis");
        if (axis_st == x.tax) return refuse(g, nd, "concatenates along time");
        break;
    case AC_OP_SLICE:
        if (axis_st == x.tax && x.chomp) { /* cuts the right pad off again: the frames stay */
            f->chomp = 1;
            layout(nd->out, f->tax, &f->outer, &f->inner);
            return 0;
        }
        if (axis_st == x.tax) {
            if (!strcmp(nd->kind, "select") && nd->from_end && nd->start == dim_at(xs, x.tax) - 1) {
                f->flow = AC_FLOW_REDUCED, f->reduce = AC_REDUCE_LAST;
                return 0;
            }
            return refuse(g, nd, "indexes time from the start (only x.select(time, -1), the last frame, streams)");
        }
        if (!strcmp(nd->kind, "select")) { /* an axis disappears: time's item index may shift */
            int it = item_axis(rank, x.tax);
            f->tax = ac_storage_axis(rank - 1, it - (nd->axis < it));
        }
        break;
    case AC_OP_MEAN:
        if (axis_st == x.tax) {
            f->flow = AC_FLOW_REDUCED, f->reduce = AC_REDUCE_MEAN;
            return 0;
        }
        return refuse(g, nd, "a mean over an axis other than time");
    case AC_OP_GLOBAL_AVGPOOL:
        if (x.tax != 2) return refuse(g, nd, "pools over time on a value whose time is not the last axis");
        f->flow = AC_FLOW_REDUCED, f->reduce = AC_REDUCE_MEAN;
        return 0;
    case AC_OP_LINEAR: case AC_OP_SOFTMAX: case AC_OP_LOG_SOFTMAX:
        if (x.tax == last) return refuse(g, nd, "works across the time axis (its last axis)");
        break;
    case AC_OP_LAYERNORM:
        if ((nd->axis == rank - 2 && x.tax == last) || (nd->axis != rank - 2 && x.tax == 0))
            return refuse(g, nd, "normalises across the time axis");
        break;
    case AC_OP_PERMUTE:
        for (int a = 0; a < 3; a++)
            if (nd->perm[a] == x.tax) f->tax = a;
        break;
    case AC_OP_RNN:
        if (x.tax != 0 || rank != 3) return refuse(g, nd, "needs time as its sequence axis ([N, T, features])");
        if (nd->rnn.dirs != 1) return refuse(g, nd, "is bidirectional: it reads the future");
        break;
    default:
        return refuse(g, nd, "cannot run over a stream");
    }
    layout(nd->out, f->tax, &f->outer, &f->inner);
    /* per-frame ops keep the frame count; their output must still have a time axis */
    if (dim_at(nd->out, f->tax) != dim_at(xs, x.tax) && nd->op != AC_OP_CONV && nd->op != AC_OP_MAXPOOL &&
        nd->op != AC_OP_AVGPOOL && nd->op != AC_OP_PAD)
        return refuse(g, nd, "changes the number of frames");
    return 0;
}

ac_status ac_graph_causal(ac_graph *g, char *err)
{
    free(g->flow);
    g->flow = calloc((size_t)g->n_nodes, sizeof *g->flow);
    if (!g->flow) return ac_fail(err, AC_ERR_NOMEM, "out of memory for the stream analysis");
    g->causal = 0, g->running_mean = 0, g->causal_why[0] = 0;
    g->input_flow = input_flow(g); /* read by classify() and the stream executor */
    for (int k = 0; k < g->n_nodes; k++)
        if (classify(g, g->order[k])) return AC_OK;
    int out = g->output;
    ac_flow_info fo = out == AC_GRAPH_INPUT ? g->input_flow : g->flow[out];
    if (fo.flow != AC_FLOW_REDUCED) {
        snprintf(g->causal_why, sizeof g->causal_why, "the output %s %s", out >= 0 ? g->nodes[out].id : "",
                 fo.flow == AC_FLOW_TIME ? "still has a time axis (end the network with x[..., -1] or "
                                           "a mean over time)" : "does not depend on the input");
        return AC_OK;
    }
    for (int i = 0; i < g->n_nodes; i++) g->running_mean |= g->flow[i].reduce == AC_REDUCE_MEAN;
    /* the streams' 1-D convolutions get their weights in the small-run kernel's layout */
    for (int i = 0; i < g->n_nodes; i++) {
        ac_node *nd = &g->nodes[i];
        const ac_conv_params *p = &nd->conv;
        if (nd->op != AC_OP_CONV || nd->alias >= 0 || g->flow[i].flow != AC_FLOW_TIME || p->groups != 1 ||
            p->kh != 1 || nd->out.h != 1 || p->cout > AC_FRAMES_MAX_COUT || nd->frames_w)
            continue;
        if (!(nd->frames_w = ac_alloc_floats((size_t)p->cout * p->cin * p->kw)))
            return ac_fail(err, AC_ERR_NOMEM, "out of memory for node %s's stream weights", nd->id);
        ac_conv1d_frames_pack(nd->weight, p->cout, p->cin, p->kw, nd->frames_w);
    }
    g->causal = 1;
    return AC_OK;
}
