/* stream.c - the stream executor (stream.h): incremental passes over a causal graph, and
 * sliding windows for any model.
 *
 * Incremental pass. Every TIME value (graph.h, ac_flow_info) is a run of frames stored
 * [outer, n, inner]; each push leaves in every step's `out` the frames it produced from this
 * piece only. A step that looks back (conv, pool) keeps its unconsumed input frames in `hist`
 * (initially its left pad), computes every output whose window is complete, and drops the
 * frames no later output needs; a binary op or concat keeps each operand's frames in `pend`
 * until its partner has produced them too. Reductions keep the last frame or a running sum;
 * the head (steps after the reductions) runs through the ordinary exec switch when an answer
 * is asked for. Shapes of a piece are the static shapes with the time axis set to its frames.
 */
#include "stream.h"

#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A run of frames [outer, n, inner] in a growable buffer. */
typedef struct frames {
    float *d;
    size_t n;                /* frames held */
    size_t cap;              /* floats allocated */
} frames;

typedef struct step_state {
    frames out;              /* TIME steps: this piece's new frames */
    frames hist;             /* conv/pool: input frames not yet consumed */
    frames pend[AC_MAX_INPUTS]; /* binary/concat: each TIME operand's frames waiting */
    int pad_done;            /* pad: the left pad has been emitted */
    float *rnn_state;        /* [layers][2 * hidden] */
    double *sum;             /* mean reduction: running sum [outer * inner] */
    uint64_t count;          /* mean reduction: frames summed */
    float *value;            /* REDUCED/CONST steps: [numel(out)] */
    int have;                /* reductions: value holds at least one frame */
} step_state;

struct ac_stream {
    const ac_model *m;
    const ac_graph *g;
    ac_stream_mode mode;
    int hop;
    uint64_t samples, next_emit;
    float *probs;            /* [n_labels] */
    /* incremental */
    step_state *st;          /* [n_steps] */
    int *step_of;            /* [n_nodes]: step computing node i's value, or -1 */
    frames work, scratch;    /* contiguous copy of a look-back window; kernel scratch */
    frames operand[AC_MAX_INPUTS]; /* contiguous copies of waiting operands */
    float *head_scratch;     /* [g->max_scratch] */
    size_t bytes;
    /* window */
    ac_workspace *ws;
    float *ring;             /* [window]: the last window samples */
};

static int grow(frames *f, size_t floats, size_t *bytes)
{
    if (floats <= f->cap) return 0;
    size_t cap = f->cap ? f->cap : 256;
    while (cap < floats) cap *= 2;
    float *d = ac_alloc_floats(cap);
    if (!d) return -1;
    if (f->d) memcpy(d, f->d, f->cap * sizeof *d);
    ac_free_aligned(f->d);
    *bytes += (cap - f->cap) * sizeof *d;
    f->d = d, f->cap = cap;
    return 0;
}

/* f += src [outer, m, inner] (rows move apart, last row first). */
static int append(frames *f, size_t outer, size_t inner, const float *src, size_t m, size_t *bytes)
{
    if (!m) return 0;
    const size_t n = f->n;
    if (grow(f, outer * (n + m) * inner, bytes)) return -1;
    for (size_t r = outer; r-- > 0;) {
        memmove(f->d + r * (n + m) * inner, f->d + r * n * inner, n * inner * sizeof *f->d);
        memcpy(f->d + (r * (n + m) + n) * inner, src + r * m * inner, m * inner * sizeof *f->d);
    }
    f->n = n + m;
    return 0;
}

/* Drops the first k frames of f. */
static void drop(frames *f, size_t outer, size_t inner, size_t k)
{
    const size_t n = f->n, left = n - k;
    for (size_t r = 0; r < outer; r++)
        memmove(f->d + r * left * inner, f->d + (r * n + k) * inner, left * inner * sizeof *f->d);
    f->n = left;
}

/* The first m frames of f, contiguous: f itself when it holds exactly m, else a copy in w. */
static const float *first(const frames *f, size_t outer, size_t inner, size_t m, frames *w, size_t *bytes)
{
    if (f->n == m) return f->d;
    if (grow(w, outer * m * inner, bytes)) return NULL;
    for (size_t r = 0; r < outer; r++)
        memcpy(w->d + r * m * inner, f->d + r * f->n * inner, m * inner * sizeof *f->d);
    return w->d;
}

static ac_shape in_shape(const ac_graph *g, const ac_node *nd, int j)
{
    return nd->in[j] == AC_GRAPH_INPUT ? g->input : g->nodes[nd->in[j]].out;
}

static ac_flow_info in_flow(const ac_graph *g, const ac_node *nd, int j)
{
    return nd->in[j] == AC_GRAPH_INPUT ? g->input_flow : g->flow[nd->in[j]];
}

/* s with its storage axis `tax` set to m frames. */
static ac_shape piece(ac_shape s, int tax, size_t m)
{
    if (tax == 0) s.c = (int)m;
    else if (tax == 1) s.h = (int)m;
    else s.w = (int)m;
    return s;
}

/* ---- incremental pass ---- */

/* The value of node `node` for a step's input: its frames this piece (TIME), or its value. */
static const float *input_value(ac_stream *s, int node, const float *x, size_t *m)
{
    int r = ac_graph_root(s->g, node);
    if (r < 0) return x;
    const ac_node *rn = &s->g->nodes[r];
    if (rn->op == AC_OP_CONST) return rn->cvalue;
    const step_state *ss = &s->st[s->step_of[r]];
    if (s->g->flow[r].flow == AC_FLOW_TIME) {
        *m = ss->out.n;
        return ss->out.d;
    }
    return ss->value;
}

/* A conv or pool: new input frames into hist, every complete output computed, consumed
 * frames dropped. */
static int look_back(ac_stream *s, const ac_node *nd, step_state *ss, const float *x, size_t m)
{
    const ac_graph *g = s->g;
    const ac_shape xs = in_shape(g, nd, 0);
    const size_t rows = (size_t)xs.c * (size_t)xs.h;
    if (append(&ss->hist, rows, 1, x, m, &s->bytes)) return -1;
    const int conv = nd->op == AC_OP_CONV;
    const int k = conv ? nd->conv.kw : nd->pool.kw, stride = conv ? nd->conv.sw : nd->pool.sw;
    const int dil = conv ? nd->conv.dw : 1, group = conv && nd->conv.pool_w ? nd->conv.pool_w : 1;
    const size_t span = (size_t)dil * (size_t)(k - 1) + 1, avail = ss->hist.n;
    size_t o = avail >= span ? (avail - span) / (size_t)stride + 1 : 0;
    o = o / (size_t)group * (size_t)group; /* a fused max pool takes whole windows of outputs */
    ss->out.n = 0;
    if (!o) return 0;
    const size_t w = (o - 1) * (size_t)stride + span, n_out = o / (size_t)group;
    const float *in = first(&ss->hist, rows, 1, w, &s->work, &s->bytes);
    const size_t out_rows = (size_t)nd->out.c * (size_t)nd->out.h;
    if (!in || grow(&ss->out, out_rows * n_out, &s->bytes)) return -1;
    if (conv && nd->frames_w) {
        ac_conv1d_frames(in, (int)w, nd->frames_w, nd->bias, &nd->conv, nd->relu, ss->out.d);
    } else if (conv) {
        ac_conv_params p = nd->conv;
        p.pad_l = p.pad_r = 0; /* the left pad was put in hist at creation */
        if (grow(&s->scratch, ac_conv2d_scratch(&p, xs.h, (int)w), &s->bytes)) return -1;
        ac_conv2d(in, 1, xs.h, (int)w, nd->weight, nd->bias, &p, nd->relu, ss->out.d, s->scratch.d, 1);
    } else if (nd->op == AC_OP_MAXPOOL) {
        ac_maxpool2d(in, 1, xs.c, xs.h, (int)w, &nd->pool, ss->out.d, 1);
    } else {
        ac_avgpool2d(in, 1, xs.c, xs.h, (int)w, &nd->pool, ss->out.d, 1);
    }
    ss->out.n = n_out;
    drop(&ss->hist, rows, 1, o * (size_t)stride);
    return 0;
}

/* The elementwise ops of a piece are a few hundred values: done here, without the kernels'
 * OpenMP regions (libgomp spends 2-5 us entering even a one-thread region, more than the
 * work). */
static void binary_same(ac_binary_op op, const float *a, const float *b, float *y, size_t n)
{
    if (op == AC_BINARY_ADD)
        for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
    else
        for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

/* binary / concat: frames wait in pend until every TIME operand has produced them. */
static int pair_up(ac_stream *s, int k, const float *const *in, const size_t *m)
{
    const ac_graph *g = s->g;
    const ac_node *nd = &g->nodes[g->steps[k].node];
    const ac_flow_info *fo = &g->flow[g->steps[k].node];
    step_state *ss = &s->st[k];
    size_t ready = SIZE_MAX;
    /* the usual case: nothing waiting and every operand brought as many frames (a residual
     * add): the operands are used where they are */
    int direct = 1;
    for (int j = 0; j < nd->n_in; j++)
        if (in_flow(g, nd, j).flow == AC_FLOW_TIME) {
            direct &= ss->pend[j].n == 0 && (ready == SIZE_MAX || m[j] == ready);
            ready = m[j];
        }
    if (!direct) {
        ready = SIZE_MAX;
        for (int j = 0; j < nd->n_in; j++) {
            ac_flow_info fj = in_flow(g, nd, j);
            if (fj.flow != AC_FLOW_TIME) continue;
            if (append(&ss->pend[j], fj.outer, fj.inner, in[j], m[j], &s->bytes)) return -1;
            if (ss->pend[j].n < ready) ready = ss->pend[j].n;
        }
    }
    ss->out.n = 0;
    if (!ready || ready == SIZE_MAX) return 0;
    const float *ops[AC_MAX_INPUTS];
    for (int j = 0; j < nd->n_in; j++) {
        ac_flow_info fj = in_flow(g, nd, j);
        ops[j] = in[j];
        if (!direct && fj.flow == AC_FLOW_TIME &&
            !(ops[j] = first(&ss->pend[j], fj.outer, fj.inner, ready, &s->operand[j], &s->bytes)))
            return -1;
    }
    if (grow(&ss->out, fo->outer * fo->inner * ready, &s->bytes)) return -1;
    {
        ac_shape ys = piece(nd->out, fo->tax, ready);
        if (nd->op == AC_OP_BINARY) {
            int a[4], b[4], y[4];
            ac_flow_info f0 = in_flow(g, nd, 0), f1 = in_flow(g, nd, 1);
            ac_dims4(f0.flow == AC_FLOW_TIME ? piece(in_shape(g, nd, 0), f0.tax, ready) : in_shape(g, nd, 0), 1, a);
            ac_dims4(f1.flow == AC_FLOW_TIME ? piece(in_shape(g, nd, 1), f1.tax, ready) : in_shape(g, nd, 1), 1, b);
            ac_dims4(ys, 1, y);
            if (!memcmp(a, y, sizeof a) && !memcmp(b, y, sizeof b)) /* a residual: no broadcasting */
                binary_same(nd->binary, ops[0], ops[1], ss->out.d, fo->outer * fo->inner * ready);
            else
                ac_binary(nd->binary, ops[0], a, ops[1], b, ss->out.d, y, 1);
        } else {
            int ks[AC_MAX_INPUTS];
            size_t rows = 0, inner = 0;
            for (int j = 0; j < nd->n_in; j++) {
                ac_flow_info fj = in_flow(g, nd, j);
                ac_axis_view(piece(in_shape(g, nd, j), fj.tax, ready), 1, nd->axis, &rows, &ks[j], &inner);
            }
            ac_concat(ops, ks, nd->n_in, rows, inner, ss->out.d, 1);
        }
        ss->out.n = ready;
        for (int j = 0; j < nd->n_in && !direct; j++) {
            ac_flow_info fj = in_flow(g, nd, j);
            if (fj.flow == AC_FLOW_TIME) drop(&ss->pend[j], fj.outer, fj.inner, ready);
        }
    }
    return 0;
}

/* A reduction: the last frame, or the running mean (over time, and over h for a global pool). */
static void reduce(const ac_node *nd, const ac_flow_info *f, step_state *ss, const ac_flow_info *fx,
                   const float *x, size_t m)
{
    if (!m) return;
    const size_t outer = fx->outer, inner = fx->inner;
    if (f->reduce == AC_REDUCE_LAST) {
        for (size_t r = 0; r < outer; r++)
            memcpy(ss->value + r * inner, x + (r * m + m - 1) * inner, inner * sizeof *x);
    } else {
        for (size_t r = 0; r < outer; r++)
            for (size_t t = 0; t < m; t++)
                for (size_t i = 0; i < inner; i++) ss->sum[r * inner + i] += x[(r * m + t) * inner + i];
        ss->count += m;
        const size_t numel = ac_shape_numel(nd->out), group = outer * inner / numel;
        for (size_t o = 0; o < numel; o++) {
            double v = 0;
            for (size_t k = 0; k < group; k++) v += ss->sum[o * group + k];
            ss->value[o] = (float)(v / ((double)ss->count * (double)group));
        }
    }
    ss->have = 1;
}

/* One TIME step over this piece: x (its first input's frames, m of them) -> ss->out. */
static int time_step(ac_stream *s, int k, const float *const *in, const size_t *m)
{
    const ac_graph *g = s->g;
    const ac_node *nd = &g->nodes[g->steps[k].node];
    const ac_flow_info *f = &g->flow[g->steps[k].node], fx = in_flow(g, nd, 0);
    step_state *ss = &s->st[k];
    const float *x = in[0];
    const size_t mx = m[0];
    if (f->flow == AC_FLOW_REDUCED) {
        reduce(nd, f, ss, &fx, x, mx);
        return 0;
    }
    switch (nd->op) {
    case AC_OP_CONV: case AC_OP_MAXPOOL: case AC_OP_AVGPOOL:
        return look_back(s, nd, ss, x, mx);
    case AC_OP_BINARY: case AC_OP_CONCAT:
        return pair_up(s, k, in, m);
    default:
        break;
    }
    /* per-frame ops: as many frames out as in */
    ss->out.n = 0;
    size_t n_out = mx;
    const ac_shape xs = piece(in_shape(g, nd, 0), fx.tax, mx);
    if (nd->op == AC_OP_PAD && f->tax == 2 && !ss->pad_done) n_out += (size_t)nd->pads[0];
    if (!n_out) return 0;
    if (grow(&ss->out, f->outer * f->inner * n_out, &s->bytes)) return -1;
    float *y = ss->out.d;
    const size_t count = f->outer * f->inner * n_out;
    size_t rows = 0, inner = 0;
    int kk = 0;
    switch (nd->op) {
    case AC_OP_PAD: {
        int d[3], r = ac_shape_dims(xs, d), four = nd->pads[2] || nd->pads[3];
        if (f->tax == 2 && !four && !nd->pads[1]) { /* a causal left pad: the pad, once, then frames */
            const size_t left = ss->pad_done ? 0 : (size_t)nd->pads[0];
            ss->pad_done = 1;
            for (size_t row = 0; row < f->outer; row++) {
                float *o = y + row * (left + mx);
                for (size_t j = 0; j < left; j++) o[j] = nd->pad_value;
                if (mx) memcpy(o + left, x + row * mx, mx * sizeof *x); /* (no frames: x may be NULL) */
            }
            break;
        }
        int w = d[r - 1], h = four ? d[r - 2] : 1, left = nd->pads[0];
        if (f->tax == 2 && ss->pad_done) left = 0;
        ss->pad_done = 1;
        size_t planes = ac_shape_numel(xs) ? ac_shape_numel(xs) / ((size_t)h * (size_t)w) : 0;
        if (w == 0) { /* only the left pad so far */
            for (size_t i = 0; i < count; i++) y[i] = nd->pad_value;
            break;
        }
        ac_pad2d(x, planes, h, w, four ? nd->pads[2] : 0, four ? nd->pads[3] : 0, left, nd->pads[1],
                 nd->pad_value, y, 1);
        break;
    }
    case AC_OP_UNARY:
        if (nd->unary == AC_UNARY_RELU)
            for (size_t i = 0; i < count; i++) y[i] = x[i] > 0.f ? x[i] : 0.f;
        else
            ac_unary(nd->unary, x, y, count, 1);
        break;
    case AC_OP_BATCHNORM:
        ac_channel_affine(x, 1, xs.c, ac_shape_numel(xs) / (size_t)xs.c, nd->scale, nd->shift, y, 1);
        break;
    case AC_OP_IDENTITY: case AC_OP_RESHAPE:
        memcpy(y, x, count * sizeof *y);
        break;
    case AC_OP_SLICE:
        if (f->chomp) { /* its conv ran without the right pad: nothing to cut */
            memcpy(y, x, count * sizeof *y);
            break;
        }
        ac_axis_view(xs, 1, nd->axis, &rows, &kk, &inner);
        ac_slice(x, rows, kk, inner, nd->start, nd->step, nd->count, y, 1);
        break;
    case AC_OP_MEAN:
        ac_axis_view(xs, 1, nd->axis, &rows, &kk, &inner);
        ac_mean_axis(x, rows, kk, inner, y, 1);
        break;
    case AC_OP_LAYERNORM: {
        int d[3], r = ac_shape_dims(xs, d);
        if (nd->axis == r - 1)
            ac_layernorm_last(x, count / (size_t)d[r - 1], d[r - 1], nd->gamma, nd->beta, nd->eps, y, 1);
        else
            ac_layernorm_channels(x, 1, d[0], ac_shape_numel(xs) / (size_t)d[0], nd->gamma, nd->beta, nd->eps, y, 1);
        break;
    }
    case AC_OP_LINEAR:
        if (grow(&s->scratch, ac_linear_scratch(&nd->matrix), &s->bytes)) return -1;
        ac_linear(x, (int)(count / (size_t)nd->matrix.rows), &nd->matrix, nd->bias, nd->relu, y, s->scratch.d, 1);
        break;
    case AC_OP_SOFTMAX: case AC_OP_LOG_SOFTMAX: {
        int d[3], r = ac_shape_dims(xs, d);
        memcpy(y, x, count * sizeof *y);
        if (nd->op == AC_OP_SOFTMAX) ac_softmax(y, (int)(count / (size_t)d[r - 1]), d[r - 1]);
        else ac_log_softmax(y, (int)(count / (size_t)d[r - 1]), d[r - 1]);
        break;
    }
    case AC_OP_PERMUTE: {
        int d[3] = {xs.c, xs.h, xs.w};
        ac_permute3(x, 1, d, nd->perm, y, 1);
        break;
    }
    case AC_OP_RNN:
        if (grow(&s->scratch, ac_rnn_scratch(&nd->rnn, 1, (int)mx), &s->bytes)) return -1;
        ac_rnn_carry(&nd->rnn, x, 1, (int)mx, y, s->scratch.d, ss->rnn_state, 1);
        break;
    default: /* ac_graph_causal admits no other op on frames */
        return -1;
    }
    ss->out.n = n_out;
    return 0;
}

static int incremental_piece(ac_stream *s, const float *x, size_t n)
{
    const ac_graph *g = s->g;
    for (int k = 0; k < g->n_steps; k++) {
        const ac_node *nd = &g->nodes[g->steps[k].node];
        const ac_flow_info *f = &g->flow[g->steps[k].node];
        if (f->flow == AC_FLOW_CONST || (f->flow == AC_FLOW_REDUCED && !f->reduce)) continue;
        const float *in[AC_MAX_INPUTS];
        size_t m[AC_MAX_INPUTS];
        for (int j = 0; j < nd->n_in; j++) {
            m[j] = n;
            in[j] = input_value(s, nd->in[j], x, &m[j]);
        }
        if (time_step(s, k, in, m)) return -1;
    }
    return 0;
}

/* Runs the head steps (after the reductions) into their values. */
static void run_head(ac_stream *s, int constants)
{
    const ac_graph *g = s->g;
    struct ac_exec_ctx ec = {.n = 1, .threads = 1, .scratch = s->head_scratch};
    for (int k = 0; k < g->n_steps; k++) {
        const ac_node *nd = &g->nodes[g->steps[k].node];
        const ac_flow_info *f = &g->flow[g->steps[k].node];
        int run = constants ? f->flow == AC_FLOW_CONST : f->flow == AC_FLOW_REDUCED && !f->reduce;
        if (!run) continue;
        const float *in[AC_MAX_INPUTS];
        size_t m = 0;
        for (int j = 0; j < nd->n_in; j++) in[j] = input_value(s, nd->in[j], NULL, &m);
        ac_exec_step(g, k, in, s->st[k].value, &ec);
    }
}

int ac_stream_output(ac_stream *s, float *out)
{
    if (!s || s->mode != AC_STREAM_INCREMENTAL) return 0;
    const ac_graph *g = s->g;
    for (int k = 0; k < g->n_steps; k++)
        if (g->flow[g->steps[k].node].reduce && !s->st[k].have) return 0;
    run_head(s, 0);
    size_t m = 0;
    const float *v = input_value(s, g->output, NULL, &m);
    memcpy(out, v, (size_t)s->m->info.n_labels * sizeof *out);
    return 1;
}

static ac_status create_incremental(ac_stream *s, char *err)
{
    const ac_graph *g = s->g;
    s->st = calloc((size_t)g->n_steps, sizeof *s->st);
    s->step_of = malloc((size_t)g->n_nodes * sizeof *s->step_of);
    s->head_scratch = ac_alloc_floats(g->max_scratch + 1);
    if (!s->st || !s->step_of || !s->head_scratch) goto nomem;
    for (int i = 0; i < g->n_nodes; i++) s->step_of[i] = -1;
    for (int k = 0; k < g->n_steps; k++) {
        const ac_node *nd = &g->nodes[g->steps[k].node];
        const ac_flow_info *f = &g->flow[g->steps[k].node];
        step_state *ss = &s->st[k];
        s->step_of[g->steps[k].node] = k;
        if (f->flow != AC_FLOW_TIME) {
            if (!(ss->value = ac_alloc_floats(ac_shape_numel(nd->out)))) goto nomem;
            s->bytes += ac_shape_numel(nd->out) * sizeof(float);
        }
        if (f->reduce == AC_REDUCE_MEAN) {
            ac_flow_info fx = in_flow(g, nd, 0);
            if (!(ss->sum = calloc(fx.outer * fx.inner, sizeof *ss->sum))) goto nomem;
        }
        if (nd->op == AC_OP_RNN && f->flow == AC_FLOW_TIME) {
            size_t n = (size_t)nd->rnn.layers * 2 * (size_t)nd->rnn.hidden;
            if (!(ss->rnn_state = calloc(n, sizeof(float)))) goto nomem;
        }
        if (nd->op == AC_OP_CONV && f->flow == AC_FLOW_TIME && nd->conv.pad_l) {
            /* the left pad: zero frames before the first sample */
            ac_shape xs = in_shape(g, nd, 0);
            size_t rows = (size_t)xs.c * (size_t)xs.h;
            if (grow(&ss->hist, rows * (size_t)nd->conv.pad_l, &s->bytes)) goto nomem;
            memset(ss->hist.d, 0, rows * (size_t)nd->conv.pad_l * sizeof(float));
            ss->hist.n = (size_t)nd->conv.pad_l;
        }
    }
    run_head(s, 1);
    return AC_OK;
nomem:
    return ac_fail(err, AC_ERR_NOMEM, "out of memory for a stream of model %s", s->m->info.name);
}

/* ---- the stream ---- */

ac_stream_mode ac_stream_auto_mode(const ac_model *m)
{
    return m->graph.causal && !m->graph.running_mean ? AC_STREAM_INCREMENTAL : AC_STREAM_WINDOW;
}

ac_status ac_stream_create(const ac_model *m, const ac_stream_config *cfg, ac_stream **out, char *err)
{
    *out = NULL;
    if (!m || !cfg || cfg->hop < 1)
        return ac_fail(err, AC_ERR_INVALID_ARG, "stream: hop must be at least one sample");
    const ac_graph *g = &m->graph;
    const ac_stream_mode mode = cfg->mode == AC_STREAM_AUTO ? ac_stream_auto_mode(m) : cfg->mode;
    if (mode == AC_STREAM_INCREMENTAL && !g->causal)
        return ac_fail(err, AC_ERR_INVALID_ARG, "model %s cannot stream incrementally: %s", m->info.name,
                       g->causal_why);
    ac_stream *s = calloc(1, sizeof *s);
    if (!s) return ac_fail(err, AC_ERR_NOMEM, "out of memory for a stream");
    s->m = m, s->g = g, s->mode = mode, s->hop = cfg->hop, s->next_emit = (uint64_t)cfg->hop;
    s->bytes = sizeof *s;
    ac_status st = AC_OK;
    if (!(s->probs = malloc((size_t)m->info.n_labels * sizeof *s->probs))) {
        st = ac_fail(err, AC_ERR_NOMEM, "out of memory for a stream");
    } else if (mode == AC_STREAM_INCREMENTAL) {
        st = create_incremental(s, err);
    } else if (!(st = ac_workspace_create(m, 1, 1, &s->ws, err))) {
        if (!(s->ring = ac_alloc_floats((size_t)m->info.window)))
            st = ac_fail(err, AC_ERR_NOMEM, "out of memory for a stream");
        s->bytes += (size_t)m->info.window * sizeof(float) + ac_model_activation_floats(m) * sizeof(float);
    }
    if (st) {
        ac_stream_free(s);
        return st;
    }
    *out = s;
    return AC_OK;
}

static void free_frames(frames *f) { ac_free_aligned(f->d); }

void ac_stream_free(ac_stream *s)
{
    if (!s) return;
    if (s->st) {
        for (int k = 0; k < s->g->n_steps; k++) {
            step_state *ss = &s->st[k];
            free_frames(&ss->out);
            free_frames(&ss->hist);
            for (int j = 0; j < AC_MAX_INPUTS; j++) free_frames(&ss->pend[j]);
            free(ss->rnn_state);
            free(ss->sum);
            ac_free_aligned(ss->value);
        }
    }
    free(s->st);
    free(s->step_of);
    free_frames(&s->work);
    for (int j = 0; j < AC_MAX_INPUTS; j++) free_frames(&s->operand[j]);
    free_frames(&s->scratch);
    ac_free_aligned(s->head_scratch);
    ac_workspace_free(s->ws);
    ac_free_aligned(s->ring);
    free(s->probs);
    free(s);
}

/* Window mode: the ring keeps the last `window` samples (zeros before the stream began). */
static void ring_push(ac_stream *s, const float *x, size_t n)
{
    const size_t w = (size_t)s->m->info.window;
    if (n >= w) {
        memcpy(s->ring, x + n - w, w * sizeof *x);
        return;
    }
    memmove(s->ring, s->ring + n, (w - n) * sizeof *x);
    memcpy(s->ring + w - n, x, n * sizeof *x);
}

ac_status ac_stream_push(ac_stream *s, const float *x, size_t n, ac_stream_emit_fn emit, void *ctx,
                         char *err)
{
    if (!s || (!x && n)) return ac_fail(err, AC_ERR_INVALID_ARG, "stream push: NULL argument");
    const int L = s->m->info.n_labels;
    while (n) {
        size_t take = (size_t)(s->next_emit - s->samples);
        if (take > n) take = n;
        if (take > AC_STREAM_MAX_PIECE) take = AC_STREAM_MAX_PIECE;
        if (s->mode == AC_STREAM_INCREMENTAL) {
            if (incremental_piece(s, x, take))
                return ac_fail(err, AC_ERR_NOMEM, "out of memory in a stream of model %s", s->m->info.name);
        } else {
            ring_push(s, x, take);
        }
        s->samples += take, x += take, n -= take;
        if (s->samples < s->next_emit) continue;
        s->next_emit += (uint64_t)s->hop;
        int have = 1;
        if (s->mode == AC_STREAM_INCREMENTAL) {
            have = ac_stream_output(s, s->probs);
        } else {
            ac_status st = ac_model_forward(s->m, s->ws, s->ring, 1, s->probs, err);
            if (st) return st;
        }
        if (!have) continue;
        ac_model_probs(s->m, s->probs, 1);
        if (emit) emit(ctx, s->samples, s->probs, L);
    }
    return AC_OK;
}

uint64_t ac_stream_samples(const ac_stream *s) { return s ? s->samples : 0; }
ac_stream_mode ac_stream_get_mode(const ac_stream *s) { return s ? s->mode : AC_STREAM_AUTO; }
size_t ac_stream_bytes(const ac_stream *s) { return s ? s->bytes : 0; }
