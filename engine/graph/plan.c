/* plan.c - the steps of a forward pass and where their values live: each value gets a
 * workspace slot from the slots free at its step (best fit), slots are freed after a value's
 * last reader, and elementwise ops write over an input whose last reader they are. Each
 * conv's kernel is chosen, and its weights packed for it, once here. */
#include "graph.h"

#include "conv_depthwise.h"
#include "conv_direct.h"
#include "gemm_bf16.h"

#include <stdlib.h>
#include <string.h>

static ac_shape input_shape(const ac_graph *g, const ac_node *nd, int k)
{
    return nd->in[k] == AC_GRAPH_INPUT ? g->input : g->nodes[nd->in[k]].out;
}

/* Ops whose kernel may write its output over input k (same size). */
static int may_overwrite(const ac_node *nd, int k)
{
    switch (nd->op) {
    case AC_OP_UNARY: case AC_OP_BATCHNORM: case AC_OP_LAYERNORM: case AC_OP_SOFTMAX:
    case AC_OP_LOG_SOFTMAX:
        return k == 0;
    case AC_OP_BINARY:
        return 1;
    default:
        return 0;
    }
}

/* Convolutions that the channel-vectorised direct kernel runs get their weights packed once
 * (ops.h: ac_conv_params.packed), not on every call: at batch 1 repacking M5's conv4 cost
 * more than computing it. */
static int pack_conv(const ac_graph *g, ac_node *nd, ac_shape in)
{
    if (g->bf16 && !ac_conv_is_depthwise(&nd->conv)) { /* BF16 weights for every other conv */
        const int G = nd->conv.groups, cout_g = nd->conv.cout / G;
        const int K = nd->conv.cin / G * nd->conv.kh * nd->conv.kw;
        const size_t per_group = ac_bf16_packed_size(cout_g, K);
        if (!(nd->bf16 = malloc(sizeof(uint16_t) * per_group * (size_t)G))) return -1;
        for (int gi = 0; gi < G; gi++)
            ac_bf16_pack_a(nd->weight + (size_t)gi * cout_g * K, cout_g, K, K, nd->bf16 + (size_t)gi * per_group);
        nd->conv.bf16 = nd->bf16;
    }
    nd->conv.kernel = ac_conv2d_choose(&nd->conv, in.h, in.w); /* once, not on every call */
    if (nd->conv.kernel != AC_CONV_DIRECT_CHANNELS) return 0;
    const int G = nd->conv.groups, cin_g = nd->conv.cin / G, cout_g = nd->conv.cout / G;
    const size_t per_group = ac_conv_direct_packed_floats(cout_g, cin_g, nd->conv.kw);
    nd->packed = ac_alloc_floats(per_group * (size_t)G);
    if (!nd->packed) return -1;
    for (int gi = 0; gi < G; gi++)
        ac_conv_direct_pack(nd->weight + (size_t)gi * cout_g * cin_g * nd->conv.kw, cout_g, cin_g,
                            nd->conv.kw, nd->packed + (size_t)gi * per_group);
    nd->conv.packed = nd->packed;
    return 0;
}

ac_status ac_graph_plan(ac_graph *g, char *err)
{
    const int n = g->n_nodes;
    int *slot_of = malloc(sizeof(int) * (size_t)n), *last_use = malloc(sizeof(int) * (size_t)n);
    int *live = malloc(sizeof(int) * (size_t)n); /* slot -> node whose value it holds, -1 free */
    g->steps = calloc((size_t)n, sizeof *g->steps);
    g->slot_floats = calloc((size_t)n, sizeof *g->slot_floats);
    g->probe_floats = calloc((size_t)n, sizeof *g->probe_floats);
    ac_status st = AC_OK;
    if (!slot_of || !last_use || !live || !g->steps || !g->slot_floats || !g->probe_floats) {
        st = ac_fail(err, AC_ERR_NOMEM, "out of memory planning the graph");
        goto out;
    }
    g->n_steps = 0;
    for (int pos = 0; pos < n; pos++) {
        const ac_node *nd = &g->nodes[g->order[pos]];
        if (nd->alias < 0 && nd->op != AC_OP_CONST) g->steps[g->n_steps++].node = g->order[pos];
    }
    for (int i = 0; i < n; i++) slot_of[i] = -1, last_use[i] = -1, live[i] = -1;
    for (int k = 0; k < g->n_steps; k++) {
        const ac_node *nd = &g->nodes[g->steps[k].node];
        for (int j = 0; j < nd->n_in; j++) {
            int r = nd->in[j] >= 0 ? ac_graph_root(g, nd->in[j]) : -1;
            if (r >= 0) last_use[r] = k;
        }
    }
    last_use[ac_graph_root(g, g->output)] = g->n_steps; /* the answer outlives every step */

    g->n_slots = 0;
    g->max_scratch = 0;
    for (int k = 0; k < g->n_steps; k++) {
        ac_step *s = &g->steps[k];
        ac_node *nd = &g->nodes[s->node];
        size_t need = ac_shape_numel(nd->out);
        size_t probe = nd->op == AC_OP_CONV ? ac_shape_numel(nd->conv_out) : need;
        int out = -1;
        for (int j = 0; j < nd->n_in; j++) {
            int r = nd->in[j] >= 0 ? ac_graph_root(g, nd->in[j]) : -1;
            s->in_slot[j] = r < 0 ? AC_SLOT_INPUT : g->nodes[r].op == AC_OP_CONST ? AC_SLOT_CONST : slot_of[r];
            if (out < 0 && r >= 0 && slot_of[r] >= 0 && last_use[r] == k && may_overwrite(nd, j) &&
                ac_shape_numel(input_shape(g, nd, j)) == need)
                out = slot_of[r];
        }
        if (out < 0) { /* best fit among free slots; else grow the largest free one; else a new one */
            int fit = -1, big = -1;
            for (int q = 0; q < g->n_slots; q++) {
                if (live[q] >= 0) continue;
                if (g->slot_floats[q] >= need && (fit < 0 || g->slot_floats[q] < g->slot_floats[fit])) fit = q;
                if (big < 0 || g->slot_floats[q] > g->slot_floats[big]) big = q;
            }
            out = fit >= 0 ? fit : big >= 0 ? big : g->n_slots++;
        }
        s->slot = out;
        slot_of[s->node] = out;
        if (need > g->slot_floats[out]) g->slot_floats[out] = need;
        size_t pf = probe > need ? probe : need;
        if (pf > g->probe_floats[out]) g->probe_floats[out] = pf;
        for (int j = 0; j < nd->n_in; j++) {
            int r = nd->in[j] >= 0 ? ac_graph_root(g, nd->in[j]) : -1;
            if (r >= 0 && slot_of[r] >= 0 && last_use[r] == k && slot_of[r] != out) live[slot_of[r]] = -1;
        }
        live[out] = s->node;

        ac_shape in = nd->n_in ? input_shape(g, nd, 0) : g->input;
        size_t scratch = 0;
        if (nd->op == AC_OP_CONV) {
            if (pack_conv(g, nd, in)) {
                st = ac_fail(err, AC_ERR_NOMEM, "out of memory packing %s", nd->name);
                goto out;
            }
            ac_conv_params unfused = nd->conv; /* the filter probe runs fused convs without their pool */
            unfused.pool_w = 0;
            size_t a = ac_conv2d_scratch(&nd->conv, in.h, in.w), b = ac_conv2d_scratch(&unfused, in.h, in.w);
            scratch = a > b ? a : b;
        } else if (nd->op == AC_OP_LINEAR) {
            scratch = ac_linear_scratch(&nd->matrix);
        }
        if (scratch > g->max_scratch) g->max_scratch = scratch;
    }
    /* chains: a one-row conv whose only reader is the next step's conv (EnvNet conv1 -> conv2) */
    for (int k = 0; k + 1 < g->n_steps; k++) {
        const int ai = g->steps[k].node;
        const ac_node *a = &g->nodes[ai], *b = &g->nodes[g->steps[k + 1].node];
        /* the chain reads a's input while it writes b's output, so they must not share a slot
         * (unchained, a's input slot is free again by b's step); and a step belongs to one
         * chain at most (three convs in a row: the first two) */
        if (a->op != AC_OP_CONV || b->op != AC_OP_CONV || b->n_in != 1 || b->in[0] < 0 ||
            ac_graph_root(g, b->in[0]) != ai || last_use[ai] != k + 1 ||
            g->steps[k + 1].slot == g->steps[k].in_slot[0] || (k > 0 && g->steps[k - 1].chained))
            continue;
        const ac_shape x = a->n_in ? input_shape(g, a, 0) : g->input, bx = input_shape(g, b, 0);
        if (bx.c != a->out.c || bx.h != a->out.h || bx.w != a->out.w ||
            !ac_conv2d_chain_shape(&a->conv, x.h, x.w, &b->conv))
            continue;
        g->steps[k].chained = 1;
        size_t scratch = ac_conv2d_chain_scratch(&a->conv, x.h, x.w, &b->conv);
        if (scratch > g->max_scratch) g->max_scratch = scratch;
    }
out:
    free(slot_of);
    free(last_use);
    free(live);
    return st;
}
