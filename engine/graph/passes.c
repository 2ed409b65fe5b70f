/* passes.c - rewrites of a loaded graph that keep its values: identities become aliases,
 * batch norm is folded into the conv before it, relu and a max pool over time are fused into
 * the conv/linear before them. A fusion happens only where the producer's value has one
 * reader (the node being fused), so no other node ever sees a changed value. */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Readers of the bytes of node r: input edges of non-alias nodes that resolve to r, plus the
 * network output. Aliases pass their readers on to their root. */
static int readers(const ac_graph *g, int r)
{
    int count = ac_graph_root(g, g->output) == r;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].alias >= 0) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0 && ac_graph_root(g, g->nodes[i].in[k]) == r) count++;
    }
    return count;
}

/* nd becomes part of its producer's step: its value is the producer's, reported under nd's id. */
static void merge_into(ac_graph *g, ac_node *nd, int producer)
{
    nd->alias = producer;
    g->nodes[producer].report = (int)(nd - g->nodes);
}

static int fuse_batchnorm(ac_graph *g, ac_node *nd, ac_node *p, int pi)
{
    if (p->op != AC_OP_CONV || p->relu || p->conv.pool_w || p->folded[0]) return 0;
    if (!p->bias && !(p->bias = ac_alloc_floats((size_t)p->conv.cout))) return 0; /* stays an affine */
    size_t per_out = (size_t)(p->conv.cin / p->conv.groups) * p->conv.kh * p->conv.kw;
    for (int o = 0; o < p->conv.cout; o++) {
        for (size_t i = 0; i < per_out; i++) p->weight[(size_t)o * per_out + i] *= nd->scale[o];
        p->bias[o] = p->bias[o] * nd->scale[o] + nd->shift[o];
    }
    snprintf(p->folded, sizeof p->folded, "%s", nd->name);
    merge_into(g, nd, pi);
    return 1;
}

/* A max pool over time right after a one-row conv (EnvNet conv2 -> pool (1,160), M5's conv
 * -> pool 4) is done in the conv's epilogue, chunk by chunk, so the large unpooled value is
 * never written to memory. Only non-overlapping, unpadded windows. */
static int fuse_maxpool(ac_graph *g, ac_node *nd, ac_node *p, int pi)
{
    const ac_pool_params *q = &nd->pool;
    if (p->op != AC_OP_CONV || p->conv.pool_w || p->out.h != 1 || q->kh != 1 || q->ph || q->pw ||
        q->sw != q->kw || q->kw <= 1)
        return 0;
    p->conv.pool_w = q->kw;
    p->conv_out = p->out;
    p->out = nd->out;
    merge_into(g, nd, pi);
    return 1;
}

void ac_graph_passes(ac_graph *g)
{
    for (int pos = 0; pos < g->n_nodes; pos++) {
        int i = g->order[pos];
        ac_node *nd = &g->nodes[i];
        if (nd->op == AC_OP_IDENTITY || nd->op == AC_OP_RESHAPE) { /* same bytes */
            nd->alias = nd->in[0] >= 0 ? nd->in[0] : -1;
            if (nd->in[0] >= 0) continue;
            /* an identity of the network input stays a (copying) step */
        }
        if (nd->in[0] < 0 || nd->n_in != 1) continue;
        int pi = ac_graph_root(g, nd->in[0]);
        ac_node *p = &g->nodes[pi];
        /* the value seen through an alias must be the producer's own shape and bytes */
        if (nd->in[0] != pi && g->nodes[nd->in[0]].op == AC_OP_RESHAPE) continue;
        if (readers(g, pi) != 1) continue;
        if (nd->op == AC_OP_BATCHNORM) fuse_batchnorm(g, nd, p, pi);
        else if (nd->op == AC_OP_UNARY && nd->unary == AC_UNARY_RELU &&
                 (p->op == AC_OP_CONV || p->op == AC_OP_LINEAR) && !p->relu) {
            p->relu = 1;
            merge_into(g, nd, pi);
        } else if (nd->op == AC_OP_MAXPOOL) fuse_maxpool(g, nd, p, pi);
    }
}
