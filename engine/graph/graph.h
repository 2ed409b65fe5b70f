/* graph.h - the network as the engine holds it: nodes with named inputs (models/FORMAT.md
 * v2; a v1 layer list becomes a chain), and the plan that runs them.
 *
 * Internal to engine/: model.c, filters.c and the files of engine/graph/ include it; server/
 * sees only model.h. The stages, one file each:
 *   load.c    metadata "graph" JSON -> nodes (ids, inputs; a v1 list as a chain), the
 *             execution order (file order among ready nodes; cycles and unused values
 *             refused), then each node built by load_ops.c: fields, tensors, output shape,
 *             every error naming the node (ac_graph_load)
 *   passes.c  identities become aliases; batch norm folded into its conv, relu and a max
 *             pool fused into a conv/linear, only where the value has a single consumer
 *   plan.c    steps, buffer slots by liveness, kernels chosen once, scratch sizes
 *   exec.c    one switch over the ops; kernels get explicit inputs and outputs
 * Ownership: an ac_graph and every buffer its nodes point to (converted weights, packed
 * weights, RNN weight tables) belong to the model; the tensor refs point into the model
 * file's mapping. Immutable after ac_graph_load + ac_graph_plan; any thread may read it.
 */
#ifndef AC_GRAPH_H
#define AC_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"
#include "ops_graph.h"
#include "status.h"
#include "tensor.h"
#include "weights.h"

#define AC_ID_LEN 64
#define AC_MAX_INPUTS 16
#define AC_GRAPH_INPUT (-1)   /* an input index meaning the network's input */
#define AC_MAX_NODES 4096

typedef enum ac_op {
    AC_OP_CONV, AC_OP_BATCHNORM, AC_OP_UNARY, AC_OP_MAXPOOL, AC_OP_AVGPOOL,
    AC_OP_GLOBAL_AVGPOOL, AC_OP_PERMUTE, AC_OP_RESHAPE, AC_OP_IDENTITY, AC_OP_LINEAR,
    AC_OP_SOFTMAX, AC_OP_LOG_SOFTMAX, AC_OP_BINARY, AC_OP_CONST, AC_OP_CONCAT, AC_OP_SLICE,
    AC_OP_PAD, AC_OP_MEAN, AC_OP_LAYERNORM, AC_OP_RNN
} ac_op;

typedef struct ac_node {
    char id[AC_ID_LEN];      /* the value's name in the file */
    char kind[16];           /* op as written: "conv1d", "maxpool2d", "gru", ... */
    char name[AC_ID_LEN];    /* tensor prefix ("block1.conv1"), "" for ops without tensors */
    ac_op op;
    int n_in;
    int in[AC_MAX_INPUTS];   /* producer node indices, AC_GRAPH_INPUT for the network input */
    ac_shape out;            /* per item, after fusion (a fused pool's output) */
    int file_index;          /* position in the file's list */

    /* Set by the passes: */
    int alias;               /* >= 0: this value is node `alias`'s bytes (identity, flatten,
                                or a node fused/folded into that one); -1: its own value */
    int report;              /* node whose id this node's step reports (last of a fused chain) */
    int consumers;           /* readers of the value (the network output counts as one) */

    /* conv (also carries a folded batch norm and fused relu / max pool) */
    ac_conv_params conv;
    ac_shape conv_out;       /* before a fused max pool */
    float *weight;           /* [cout, cin/groups, kh, kw], batch norm folded, owned */
    float *bias;             /* conv/linear [cout] / [out], owned; NULL if none */
    float *packed;           /* conv weights in the direct kernel's layout, owned */
    uint16_t *bf16;          /* conv weights as bfloat16 for ac_gemm_bf16, per group, owned */
    float *frames_w;         /* causal 1-D conv: weights [cin, kw, cout] for the stream
                                executor's small-run kernel (ac_conv1d_frames), owned */
    const ac_tensor_ref *raw_weight; /* conv/linear weight as stored (filter analysis) */
    char folded[AC_ID_LEN];  /* batch norm folded in, "" if none */
    int relu;                /* relu fused after conv/linear */

    ac_pool_params pool;     /* max/avg pool */
    int perm[4];             /* permute: out axis i = in axis perm[i], batch included */
    ac_matrix matrix;        /* linear: weights as stored (F16/I8 stay compact) */
    float *matrix_owned;     /* linear: F32 copy when the file's bytes were unaligned */
    ac_unary_op unary;
    ac_binary_op binary;
    float *scale, *shift;    /* batch norm as a per-channel affine [C], owned */
    float *gamma, *beta;     /* layernorm [D], owned; NULL without affine */
    float eps;
    int axis;                /* item axis (0-based, batch excluded) for concat, slice, mean,
                                layernorm (0 = channels, or the last axis) */
    int start, step, count;  /* slice/select along axis */
    int from_end;            /* select: the file's index was negative (counts from the end) */
    int pads[4];             /* pad: left, right, top, bottom of the last two axes */
    float pad_value;
    float *cvalue;           /* const: the tensor in F32 [numel of out], owned */
    ac_rnn_params rnn;       /* pointer tables below, owned */
    float **rnn_tables;      /* [4 * layers * dirs]: w_ih, w_hh, b_ih, b_hh per (layer, dir) */
    int64_t flops;           /* 2 * multiply-adds of one item */
} ac_node;

/* How a value behaves over a stream (causal.c). The network input is a TIME value: frames
 * along its last axis. A TIME value is stored as [outer, T, inner] around its time axis;
 * a reduction (a mean over time, or x.select(time, -1): the last frame) makes a REDUCED
 * value, and every value computed only from REDUCED and CONST values is REDUCED too (the
 * "head", run when an answer is wanted). CONST values do not depend on the input. */
typedef enum ac_flow { AC_FLOW_CONST = 0, AC_FLOW_TIME, AC_FLOW_REDUCED } ac_flow;
typedef enum ac_reduce { AC_REDUCE_NONE = 0, AC_REDUCE_MEAN, AC_REDUCE_LAST } ac_reduce;
typedef struct ac_flow_info {
    ac_flow flow;
    int tax;                 /* TIME: storage axis of time (0 = c, 1 = h, 2 = w) */
    size_t outer, inner;     /* TIME: floats before / after the time axis (per frame: outer * inner) */
    ac_reduce reduce;        /* a step that turns a TIME input into a REDUCED value */
    int chomp;               /* a conv whose right pad a slice cuts off again (the TCN
                                reference's Chomp1d), or that slice: streams as a left-pad
                                conv followed by nothing */
} ac_flow_info;

/* One executed node in order, with where its value lives. */
typedef struct ac_step {
    int node;                /* index into nodes */
    int slot;                /* workspace buffer holding the output */
    int in_slot[AC_MAX_INPUTS]; /* per input: slot, AC_SLOT_INPUT, or AC_SLOT_CONST */
    int chained;             /* a one-row conv read only by the next step, a conv whose shapes
                                let the two run as one (ac_conv2d_chain_shape): a plain pass
                                does so where ac_graph_chain_here says (model.c) */
} ac_step;
#define AC_SLOT_INPUT (-1)
#define AC_SLOT_CONST (-2)

typedef struct ac_graph {
    ac_node *nodes;
    int n_nodes;
    int output;              /* node whose value is the answer */
    ac_shape input;          /* per item */
    int version;             /* 1 = chain, 2 = graph */
    int *order;              /* [n_nodes]: execution order of every node */
    ac_step *steps;          /* nodes that compute, in order */
    int n_steps;
    int n_slots;
    size_t *slot_floats;     /* [n_slots] floats per item (forward) */
    size_t *probe_floats;    /* [n_slots] the same when convs run without their fused pool */
    size_t max_scratch;      /* floats per thread (conv/linear) */
    int bf16;                /* convolutions run in BF16 (set before planning; model.c) */
    /* Set by ac_graph_causal: */
    ac_flow_info *flow;      /* [n_nodes], owned */
    ac_flow_info input_flow; /* the network input's: frames along its last axis */
    int causal;              /* 1: the stream executor can run it (stream.c) */
    int running_mean;        /* causal, with a mean over all time (its answer averages the
                                whole stream: the server streams it by windows instead) */
    char causal_why[160];    /* not causal: the first node that prevents it, and why */
} ac_graph;

/* Parses metadata "graph" (a v1 list or a v2 object, per `version`) into g, binding every
 * tensor of `file` and checking every field and shape. Errors name the node. */
ac_status ac_graph_load(ac_graph *g, const char *graph_json, int version, ac_shape input,
                        ac_weights *file, char *err);
/* After ac_graph_load: the fusions (passes.c), then the steps and buffers (plan.c). */
void ac_graph_passes(ac_graph *g);
ac_status ac_graph_plan(ac_graph *g, char *err);
void ac_graph_free(ac_graph *g); /* frees what g owns, not g; NULL is a no-op */
/* After the plan: decides whether g is causal (every step computes its new frames from past
 * frames only, so a stream can be fed in pieces) and fills g->flow, g->causal, g->causal_why.
 * Only AC_ERR_NOMEM fails; a non-causal graph is not an error. */
ac_status ac_graph_causal(ac_graph *g, char *err);
/* Storage axis (0 = c, 1 = h, 2 = w) of item axis `axis` of a value of PyTorch rank `rank`. */
static inline int ac_storage_axis(int rank, int axis) { return rank == 3 && axis == 1 ? 2 : axis; }

/* The node that holds node i's bytes (follows aliases). */
static inline int ac_graph_root(const ac_graph *g, int i)
{
    while (i >= 0 && g->nodes[i].alias >= 0) i = g->nodes[i].alias;
    return i;
}

/* Item axes of a shape as PyTorch lists them (batch excluded): returns the count (1..3). */
int ac_shape_dims(ac_shape s, int d[3]);
/* The shape with these item axes. */
ac_shape ac_shape_from_dims(int rank, const int d[3]);

/* The (rows, k, inner) view of a value [n, item] around item axis `axis` (exec.c). */
void ac_axis_view(ac_shape s, int n, int axis, size_t *rows, int *k, size_t *inner);
/* A binary operand's shape as 4 axes, batch first, item axes right-aligned into 3. */
void ac_dims4(ac_shape s, int batch, int out[4]);

/* Runs step k of g: inputs and output by pointer (exec.c). */
struct ac_exec_ctx {
    int n, threads;
    float *scratch;
    int unfused;             /* conv without its fused pool (the filter probe) */
};
void ac_exec_step(const ac_graph *g, int k, const float *const *in, float *out,
                  const struct ac_exec_ctx *ctx);
/* Whether steps k and k + 1 run as one chain now (k chained, and both convs on the direct
 * kernel with the current settings: ac_conv2d_chain_fits). */
int ac_graph_chain_here(const ac_graph *g, int k);
/* Steps k and k + 1 as one (ac_conv2d_chain): x is step k's input, out step k + 1's output. */
void ac_exec_chain(const ac_graph *g, int k, const float *x, float *out, const struct ac_exec_ctx *ctx);

#endif
