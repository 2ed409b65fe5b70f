/* model.c - a model file's metadata and graph loaded into an ac_model; workspaces; forward
 * passes over the planned steps (engine/graph/). Windows and whole clips: policy.c. */
#include "model_internal.h"
#include "gemm_bf16.h"
#include "linear_vnni.h"

#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- metadata ---- */

const char *ac_model_compute_active(const ac_model_info *in)
{
    return in->bf16_active ? in->int8_active ? "bf16+int8" : "bf16" : in->int8_active ? "int8" : "fp32";
}

static ac_status meta_json(const ac_model *m, const char *key, json_t **out, char *err)
{
    const char *s = ac_weights_meta(m->file, key);
    if (!s) return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"%s\" is missing", key);
    json_error_t je;
    *out = json_loads(s, JSON_DECODE_ANY, &je);
    if (!*out) return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"%s\" is not valid JSON: %s", key, je.text);
    return AC_OK;
}

static ac_status meta_int(const ac_model *m, const char *key, int lo, int hi, int *out, char *err)
{
    const char *s = ac_weights_meta(m->file, key);
    if (!s) return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"%s\" is missing", key);
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"%s\" = \"%s\": expected an integer in %d..%d",
                       key, s, lo, hi);
    *out = (int)v;
    return AC_OK;
}

static ac_status policy_field(json_t *policy, const char *key, int required, int lo, int *out, char *err)
{
    json_t *v = json_object_get(policy, key);
    if (!v && !required) return *out = 0, AC_OK;
    if (!v || !json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > (1 << 28))
        return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"policy\": \"%s\" must be an integer >= %d", key, lo);
    *out = (int)json_integer_value(v);
    return AC_OK;
}

static ac_status read_input_shape(ac_model *m, ac_shape *input, char *err)
{
    json_t *shape = NULL;
    ac_status st = meta_json(m, "input_shape", &shape, err);
    if (st) return st;
    size_t rank = json_is_array(shape) ? json_array_size(shape) : 0;
    int d[3] = {0};
    for (size_t i = 0; i < rank && i < 3; i++) {
        json_t *e = json_array_get(shape, i);
        d[i] = json_is_integer(e) && json_integer_value(e) > 0 && json_integer_value(e) < (1 << 24)
                   ? (int)json_integer_value(e) : 0;
    }
    json_decref(shape);
    if ((rank != 2 && rank != 3) || !d[0] || !d[1] || (rank == 3 && !d[2]))
        return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"input_shape\" must be [C, L] or [C, H, W] of positive sizes");
    *input = rank == 2 ? (ac_shape){d[0], 1, d[1], 3} : (ac_shape){d[0], d[1], d[2], 4};
    if (input->c != 1 || input->h != 1)
        return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"input_shape\": the input must be one waveform ([1, L] or [1, 1, L])");
    return AC_OK;
}

static ac_status read_policy(ac_model *m, int input_len, char *err)
{
    json_t *policy = NULL;
    ac_status st = meta_json(m, "policy", &policy, err);
    if (st) return st;
    ac_model_info *info = &m->info;
    if (!json_is_object(policy)) st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"policy\" is not an object");
    if (!st) st = policy_field(policy, "window", 1, 1, &info->window, err);
    if (!st) st = policy_field(policy, "hop", 1, 1, &info->hop, err);
    if (!st) st = policy_field(policy, "pad", 0, 0, &info->pad, err);
    json_decref(policy);
    if (!st && info->window != input_len)
        st = ac_fail(err, AC_ERR_BAD_MODEL, "policy window %d differs from the input length %d",
                     info->window, input_len);
    return st;
}

static ac_status read_labels(ac_model *m, char *err)
{
    json_t *labels = NULL;
    ac_status st = meta_json(m, "labels", &labels, err);
    if (st) return st;
    ac_model_info *info = &m->info;
    if (!json_is_array(labels) || json_array_size(labels) == 0 || json_array_size(labels) > 100000) {
        json_decref(labels);
        return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"labels\" must be a non-empty list of strings");
    }
    info->n_labels = (int)json_array_size(labels);
    m->labels = calloc((size_t)info->n_labels, sizeof *m->labels);
    if (!m->labels) st = ac_fail(err, AC_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < info->n_labels; i++) {
        const char *s = json_string_value(json_array_get(labels, (size_t)i));
        if (!s || !s[0]) st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"labels\"[%d] is not a non-empty string", i);
        else if (!(m->labels[i] = strdup(s))) st = ac_fail(err, AC_ERR_NOMEM, "out of memory");
    }
    json_decref(labels);
    info->labels = (const char *const *)m->labels;
    return st;
}

/* Parameters as PyTorch counts them: not the BN statistics, not quantization scales. Every
 * tensor must be used by the graph. */
static ac_status count_params(ac_model *m, char *err)
{
    for (int t = 0; t < ac_weights_count(m->file); t++) {
        const ac_tensor_ref *tr = ac_weights_at(m->file, t);
        if (!tr->used) return ac_fail(err, AC_ERR_BAD_MODEL, "tensor %s is not used by the graph", tr->name);
        size_t nl = strlen(tr->name);
        int buffer = (nl > 13 && !strcmp(tr->name + nl - 13, ".running_mean")) ||
                     (nl > 12 && !strcmp(tr->name + nl - 12, ".running_var")) ||
                     (nl > 6 && !strcmp(tr->name + nl - 6, "_scale"));
        if (!buffer) m->info.n_params += tr->numel;
    }
    return AC_OK;
}

static ac_status build_model(ac_model *m, char *err)
{
    ac_model_info *info = &m->info;
    ac_status st;
    const char *fmt = ac_weights_meta(m->file, "format");
    if (!fmt || strcmp(fmt, "audioclass"))
        return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"format\" must be \"audioclass\" (got %s%s%s)",
                       fmt ? "\"" : "", fmt ? fmt : "none", fmt ? "\"" : "");
    if ((st = meta_int(m, "format_version", 1, 1000, &info->format_version, err))) return st;
    if (info->format_version < 1 || info->format_version > AC_FORMAT_VERSION)
        return ac_fail(err, AC_ERR_BAD_MODEL, "format_version %d is not supported (this build reads 1..%d)",
                       info->format_version, AC_FORMAT_VERSION);
    if ((st = meta_int(m, "sample_rate", 1000, 384000, &info->sample_rate, err))) return st;
    info->name = ac_weights_meta(m->file, "name");
    if (!info->name || !info->name[0]) return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"name\" is missing");
#define OPT_META(field, key) info->field = ac_weights_meta(m->file, key) ? ac_weights_meta(m->file, key) : ""
    OPT_META(arch, "arch");
    OPT_META(description, "description");
    OPT_META(license, "license");
    OPT_META(training, "training");
#undef OPT_META
    ac_shape input;
    if ((st = read_input_shape(m, &input, err)) || (st = read_policy(m, input.w, err)) ||
        (st = read_labels(m, err)))
        return st;
    const char *graph = ac_weights_meta(m->file, "graph");
    if (!graph) return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"graph\" is missing");
    if ((st = ac_graph_load(&m->graph, graph, info->format_version, input, m->file, err))) return st;
    /* Opt-in reduced precision where the CPU has it (FORMAT.md "compute"): convolutions in
     * BF16, I8 linear layers with 8-bit inputs (VNNI). */
    info->compute = ac_weights_meta(m->file, "compute") ? ac_weights_meta(m->file, "compute") : "fp32";
    const char *cm = info->compute;
    const int bf16 = !strcmp(cm, "bf16") || !strcmp(cm, "bf16+int8") || !strcmp(cm, "int8+bf16");
    const int int8 = !strcmp(cm, "int8") || !strcmp(cm, "bf16+int8") || !strcmp(cm, "int8+bf16");
    if (!bf16 && !int8 && strcmp(cm, "fp32"))
        return ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"compute\" must be \"fp32\", \"bf16\", \"int8\" or "
                       "\"bf16+int8\", not \"%.40s\"", cm);
    m->graph.bf16 = bf16 && ac_bf16_supported();
    info->bf16_active = m->graph.bf16;
    info->int8_active = 0;
    for (int i = 0; int8 && i < m->graph.n_nodes; i++) {
        ac_node *nd = &m->graph.nodes[i];
        if (nd->op != AC_OP_LINEAR || nd->matrix.dtype != AC_I8) continue;
        nd->matrix.vnni = 1; /* ac_linear uses it where the CPU can, FP32 elsewhere */
        info->int8_active |= ac_vnni_supported() && nd->matrix.cols <= AC_VNNI_MAX_IN;
    }
    const ac_graph *g = &m->graph;
    const ac_node *o = &g->nodes[g->output];
    if (o->out.rank != 2 || o->out.c != info->n_labels) {
        char sb[48];
        ac_shape_str(o->out, sb, sizeof sb);
        return ac_fail(err, AC_ERR_BAD_MODEL, "the graph outputs %s but there are %d labels", sb, info->n_labels);
    }
    m->last_op_softmax = o->op == AC_OP_SOFTMAX ? 1 : o->op == AC_OP_LOG_SOFTMAX ? 2 : 0;
    if ((st = count_params(m, err))) return st;
    ac_graph_passes(&m->graph);
    if ((st = ac_graph_plan(&m->graph, err))) return st;
    if ((st = ac_graph_causal(&m->graph, err))) return st;
    info->causal = g->causal, info->running_mean = g->running_mean, info->causal_why = g->causal_why;
    if ((st = ac_detect_parse(m, &m->detect, err))) return st; /* metadata "stream" */
    for (int k = 0; k < g->n_steps; k++) info->flops += g->nodes[g->steps[k].node].flops;
    info->file_bytes = ac_weights_file_size(m->file);
    info->sha256 = ac_weights_sha256(m->file);
    info->path = m->path;
    return AC_OK;
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
    ac_graph_free(&m->graph);
    if (m->labels)
        for (int i = 0; i < m->info.n_labels; i++) free(m->labels[i]);
    free(m->labels);
    ac_weights_close(m->file);
    free(m);
}

const ac_model_info *ac_model_get_info(const ac_model *m) { return &m->info; }
const char *ac_model_meta(const ac_model *m, const char *key) { return ac_weights_meta(m->file, key); }
int ac_model_meta_all(const ac_model *m, const char **keys, const char **values, int max)
{
    return ac_weights_meta_all(m->file, keys, values, max);
}

/* ---- steps, as the server and tools see them ---- */

int ac_model_layer_count(const ac_model *m) { return m->graph.n_steps; }

int ac_model_layer_info(const ac_model *m, int i, ac_layer_info *out)
{
    if (i < 0 || i >= m->graph.n_steps) return -1;
    const ac_graph *g = &m->graph;
    const ac_node *nd = &g->nodes[g->steps[i].node];
    memset(out, 0, sizeof *out);
    out->id = g->nodes[nd->report].id;
    out->name = nd->name;
    out->kind = nd->kind;
    out->folded = nd->folded;
    out->relu = nd->relu;
    out->is_conv = nd->op == AC_OP_CONV;
    out->pooled = nd->op == AC_OP_CONV && nd->conv.pool_w > 0;
    out->n_inputs = nd->n_in;
    out->in = nd->n_in && nd->in[0] >= 0 ? g->nodes[nd->in[0]].out : g->input;
    out->out = nd->out;
    out->conv_out = nd->op == AC_OP_CONV ? nd->conv_out : nd->out;
    out->in_next = ac_graph_chain_here(g, i);
    out->flops = nd->flops;
    size_t act = ac_shape_numel(nd->out);
    for (int j = 0; j < nd->n_in; j++) act += ac_shape_numel(nd->in[j] >= 0 ? g->nodes[nd->in[j]].out : g->input);
    out->act_bytes = (int64_t)(4 * act);
    out->weight_bytes = nd->raw_weight ? (int64_t)nd->raw_weight->nbytes : 0;
    if (nd->op == AC_OP_RNN) { /* per layer and direction: W_ih, W_hh and two biases */
        const ac_rnn_params *r = &nd->rnn;
        const int gates = r->cell == AC_RNN_LSTM ? 4 : 3, H = r->hidden;
        for (int l = 0; l < r->layers; l++) {
            const int in = l ? H * r->dirs : r->input_size;
            out->weight_bytes += (int64_t)4 * r->dirs * gates * H * (in + H + 2);
        }
    }
    out->dtype = nd->op == AC_OP_LINEAR ? ac_dtype_name(nd->matrix.dtype) : NULL;
    return 0;
}

const char *ac_model_layer_kernel(const ac_model *m, int i, int batch)
{
    if (i < 0 || i >= m->graph.n_steps) return "-";
    const ac_graph *g = &m->graph;
    const ac_node *nd = &g->nodes[g->steps[i].node];
    ac_shape in = nd->n_in && nd->in[0] >= 0 ? g->nodes[nd->in[0]].out : g->input;
    if (ac_graph_chain_here(g, i)) return "in next step"; /* ac_conv2d_chain: ac_layer_info.in_next */
    if (ac_graph_chain_here(g, i - 1)) /* conv2d's kernel, with the chain's first layer inside */
        return !strcmp(ac_conv2d_kernel(&nd->conv, in.h, in.w), "direct-time") ? "direct-chain" : "bf16-chain";
    if (nd->op == AC_OP_CONV) return ac_conv2d_kernel(&nd->conv, in.h, in.w);
    if (nd->op == AC_OP_LINEAR) {
        int rows = (int)(ac_shape_numel(in) / (size_t)nd->matrix.cols) * batch;
        return ac_linear_kernel(&nd->matrix, rows);
    }
    return "-";
}

void ac_model_layer_describe(const ac_model *m, int i, char *buf, size_t len)
{
    ac_layer_info L;
    if (ac_model_layer_info(m, i, &L)) {
        snprintf(buf, len, "-");
        return;
    }
    char in[48], out[48], kind[64];
    ac_shape_str(L.in, in, sizeof in);
    ac_shape_str(L.out, out, sizeof out);
    snprintf(kind, sizeof kind, "%s%s%s%s", L.kind, L.folded[0] ? "+bn" : "", L.relu ? "+relu" : "",
             L.pooled ? "+maxpool" : "");
    if (L.dtype) snprintf(kind + strlen(kind), sizeof kind - strlen(kind), " (%s)", L.dtype);
    snprintf(buf, len, "%-8s %-20s %-16s -> %-16s %10.3f MFLOP", L.name[0] ? L.name : L.id, kind, in, out,
             (double)L.flops / 1e6);
}

/* ---- workspace ---- */

/* Floats of scratch for n items: per-thread conv/linear slices, or an RNN's (whole). */
static size_t scratch_floats(const ac_model *m, int n, int threads)
{
    const ac_graph *g = &m->graph;
    size_t s = g->max_scratch * (size_t)threads;
    for (int k = 0; k < g->n_steps; k++) {
        const ac_node *nd = &g->nodes[g->steps[k].node];
        if (nd->op != AC_OP_RNN) continue;
        ac_shape in = nd->in[0] == AC_GRAPH_INPUT ? g->input : g->nodes[nd->in[0]].out;
        size_t r = ac_rnn_scratch(&nd->rnn, n, in.c); /* input [T, F]: T is the first item axis */
        if (r > s) s = r;
    }
    return s ? s : 1;
}

static ac_status workspace_create(const ac_model *m, int max_batch, int threads, int probe,
                                  ac_workspace **out, char *err)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > 4096)
        return ac_fail(err, AC_ERR_INVALID_ARG, "max batch %d must be in 1..4096", max_batch);
    if (threads <= 0) threads = omp_get_max_threads();
    if (threads > 256) threads = 256;
    const ac_graph *g = &m->graph;
    ac_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    ws->m = m;
    ws->max_batch = max_batch;
    ws->threads = threads;
    ws->probe = probe;
    ws->slot = calloc((size_t)g->n_slots, sizeof *ws->slot);
    int ok = ws->slot != NULL;
    for (int q = 0; ok && q < g->n_slots; q++) {
        size_t f = probe ? g->probe_floats[q] : g->slot_floats[q];
        ok = (ws->slot[q] = ac_alloc_floats(f * (size_t)max_batch)) != NULL;
    }
    ws->scratch = ac_alloc_floats(scratch_floats(m, max_batch, threads));
    ws->layer_s = calloc((size_t)g->n_steps + 1, sizeof *ws->layer_s);
    ws->batch = ac_alloc_floats((size_t)max_batch * (size_t)m->info.window);
    ws->raw = ac_alloc_floats((size_t)max_batch * (size_t)m->info.n_labels);
    ws->owner = calloc((size_t)max_batch, sizeof *ws->owner);
    ws->index = calloc((size_t)max_batch, sizeof *ws->index);
    if (!ok || !ws->scratch || !ws->layer_s || !ws->batch || !ws->raw || !ws->owner || !ws->index) {
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
    const ac_graph *g = &m->graph;
    size_t fixed = g->max_scratch * (size_t)threads * sizeof(float);
    size_t per_item = (size_t)m->info.window + (size_t)m->info.n_labels;
    for (int q = 0; q < g->n_slots; q++) per_item += g->slot_floats[q];
    per_item += scratch_floats(m, 1, 1) > g->max_scratch ? scratch_floats(m, 1, 1) : 0; /* RNN */
    per_item *= sizeof(float);
    size_t b = budget_bytes > fixed ? (budget_bytes - fixed) / per_item : 1;
    if (b < 1) b = 1;
    return b < (size_t)max_batch ? (int)b : max_batch;
}


size_t ac_model_activation_floats(const ac_model *m)
{
    size_t f = 0;
    for (int q = 0; q < m->graph.n_slots; q++) f += m->graph.slot_floats[q];
    return f;
}

void ac_workspace_free(ac_workspace *ws)
{
    if (!ws) return;
    for (int q = 0; ws->slot && q < ws->m->graph.n_slots; q++) ac_free_aligned(ws->slot[q]);
    free(ws->slot);
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

/* ---- forward ---- */

static const float *value_ptr(const ac_workspace *ws, int slot, int node, const float *x)
{
    if (slot == AC_SLOT_INPUT) return x;
    if (slot == AC_SLOT_CONST) return ws->m->graph.nodes[ac_graph_root(&ws->m->graph, node)].cvalue;
    return ws->slot[slot];
}

/* A small network on a batch of several items per thread runs as one pass per thread over
 * its own slice of the batch, every kernel on that one thread: no barrier after every layer,
 * and each thread's activations stay in its own cache. (Splitting each layer's work, the
 * default, suits large networks and small batches.) M5 at batch 64 on 2 threads: see
 * bench/README.md. Each slice gets its thread's part of the scratch (g->max_scratch floats).
 * Not for recurrences, whose scratch is sized by the whole batch. */
#define AC_SPLIT_MAX_FLOPS 50e6 /* per item: M5 10 MFLOP; EnvNet's 786 keep the layer split */
#define AC_SPLIT_MIN_ITEMS 4    /* per thread */
int ac_model_splits_batch(const ac_model *m, int n, int threads)
{
    const ac_graph *g = &m->graph;
    if (threads < 2 || n < AC_SPLIT_MIN_ITEMS * threads || (double)m->info.flops > AC_SPLIT_MAX_FLOPS)
        return 0;
    for (int k = 0; k < g->n_steps; k++) {
        const ac_node *nd = &g->nodes[g->steps[k].node];
        if (nd->op == AC_OP_RNN) return 0;
    }
    return 1;
}

/* Where items [b0, ...) of a value begin in a batch-split pass: each thread owns b0 to b1 of
 * every buffer at the buffer's own item size (a slot holds values of several sizes in turn,
 * and the threads do not move in step: at one item size per value, one thread's later value
 * would run over the other's earlier one). Constants have no batch. */
static const float *slice_of(const ac_workspace *ws, int slot, int node, const float *x, int b0)
{
    const ac_graph *g = &ws->m->graph;
    if (slot == AC_SLOT_CONST) return value_ptr(ws, slot, node, x);
    if (slot == AC_SLOT_INPUT) return x + (size_t)b0 * ac_shape_numel(g->input);
    return ws->slot[slot] + (size_t)b0 * g->slot_floats[slot];
}

/* Every step over items [b0, b0 + nb) of x, on the calling thread alone, with its own part
 * of the scratch; the network's output for them goes to out[b0 .., L]. The time of each
 * step is added to layer_s when timing (one slice's: the others run beside it). */
static void run_slice(const ac_model *m, ac_workspace *ws, const float *x, int b0, int nb,
                      float *scratch, int timing, float *out)
{
    const ac_graph *g = &m->graph;
    struct ac_exec_ctx ec = {.n = nb, .threads = 1, .scratch = scratch};
    for (int k = 0; k < g->n_steps; k++) {
        const ac_step *s = &g->steps[k];
        const ac_node *nd = &g->nodes[s->node];
        const float *in[AC_MAX_INPUTS];
        for (int j = 0; j < nd->n_in; j++) in[j] = slice_of(ws, s->in_slot[j], nd->in[j], x, b0);
        double t0 = timing ? omp_get_wtime() : 0;
        if (ac_graph_chain_here(g, k)) { /* k and k + 1 as one; the time goes to k + 1 */
            k++;
            ac_exec_chain(g, k - 1, in[0], (float *)slice_of(ws, g->steps[k].slot, g->steps[k].node, x, b0), &ec);
        } else {
            ac_exec_step(g, k, in, (float *)slice_of(ws, s->slot, s->node, x, b0), &ec);
        }
        if (timing) ws->layer_s[k] += omp_get_wtime() - t0;
    }
    const int r = ac_graph_root(g, g->output);
    const float *res = slice_of(ws, AC_SLOT_INPUT, -1, x, b0);
    for (int k = g->n_steps - 1; r >= 0 && k >= 0; k--)
        if (g->steps[k].node == r) {
            res = slice_of(ws, g->steps[k].slot, r, x, b0);
            break;
        }
    const size_t L = ac_shape_numel(g->nodes[g->output].out);
    memcpy(out + (size_t)b0 * L, res, L * (size_t)nb * sizeof *out);
}

/* The batch-split pass (ac_model_splits_batch): out[n, L] for x[n, input]. */
static void run_split(const ac_model *m, ac_workspace *ws, const float *x, int n, float *out)
{
    const int T = ws->threads;
#pragma omp parallel num_threads(T)
    {
        const int t = omp_get_thread_num(), b0 = (int)((long)n * t / T);
        float *scratch = ws->scratch + (size_t)t * m->graph.max_scratch; /* this thread's part */
        /* kernels told to use one thread enter no region and take the first slice of the
         * scratch they are given (AC_OPS_THREAD, ops_team.h), here this thread's part */
        run_slice(m, ws, x, b0, (int)((long)n * (t + 1) / T) - b0, scratch, t == 0, out);
    }
}

/* Runs steps [0, upto) on x [n, input]; step `unfused_at` (or -1) runs a conv without its
 * fused pool. Reports each step's value to fn when given. */
static ac_status run_steps(const ac_model *m, ac_workspace *ws, const float *x, int n, int upto,
                           int unfused_at, ac_node_fn fn, void *ctx, char *err)
{
    const ac_graph *g = &m->graph;
    struct ac_exec_ctx ec = {.n = n, .threads = ws->threads, .scratch = ws->scratch};
    for (int k = 0; k < upto; k++) {
        const ac_step *s = &g->steps[k];
        const ac_node *nd = &g->nodes[s->node];
        const float *in[AC_MAX_INPUTS];
        for (int j = 0; j < nd->n_in; j++) in[j] = value_ptr(ws, s->in_slot[j], nd->in[j], x);
        ec.unfused = k == unfused_at;
        double t0 = omp_get_wtime();
        if (!fn && unfused_at < 0 && k + 1 < upto && ac_graph_chain_here(g, k)) {
            /* k and k + 1 as one (a pass that reports no node values); the time goes to k + 1 */
            k++;
            ac_exec_chain(g, k - 1, in[0], ws->slot[g->steps[k].slot], &ec);
            ws->layer_s[k] += omp_get_wtime() - t0;
            continue;
        }
        ac_exec_step(g, k, in, ws->slot[s->slot], &ec);
        ws->layer_s[k] += omp_get_wtime() - t0; /* ~20 ns; steps take microseconds or more */
        if (fn) {
            ac_shape sh = ec.unfused ? nd->conv_out : nd->out;
            int rc = fn(ctx, g->nodes[nd->report].id, ws->slot[s->slot], n, sh);
            if (rc) return ac_fail(err, (ac_status)rc, "node %s: the callback stopped the pass",
                                   g->nodes[nd->report].id);
        }
    }
    return AC_OK;
}

static ac_status check_forward_args(const ac_model *m, ac_workspace *ws, const float *x, int n,
                                    const void *out, char *err)
{
    if (!m || !ws || !x || !out || ws->m != m)
        return ac_fail(err, AC_ERR_INVALID_ARG, "forward: NULL argument or workspace of another model");
    if (n < 1 || n > ws->max_batch)
        return ac_fail(err, AC_ERR_INVALID_ARG, "forward: batch %d outside 1..%d", n, ws->max_batch);
    return AC_OK;
}

/* The value of step upto-1 (or of the network output when upto covers every step). */
static const float *result_of(const ac_model *m, const ac_workspace *ws, int upto, const float *x,
                              ac_shape *shape)
{
    const ac_graph *g = &m->graph;
    if (upto == g->n_steps) {
        int r = ac_graph_root(g, g->output);
        *shape = g->nodes[g->output].out;
        if (r < 0) return x;
        for (int k = g->n_steps - 1; k >= 0; k--)
            if (g->steps[k].node == r) return ws->slot[g->steps[k].slot];
    }
    if (upto == 0) {
        *shape = g->input;
        return x;
    }
    *shape = g->nodes[g->steps[upto - 1].node].out;
    return ws->slot[g->steps[upto - 1].slot];
}

ac_status ac_model_forward_upto(const ac_model *m, ac_workspace *ws, const float *x, int n,
                                int upto, float *out, char *err)
{
    ac_status st = check_forward_args(m, ws, x, n, out, err);
    if (st != AC_OK) return st;
    if (upto < 0 || upto > m->graph.n_steps) upto = m->graph.n_steps;
    if (upto == m->graph.n_steps && !ws->probe && ac_model_splits_batch(m, n, ws->threads)) {
        run_split(m, ws, x, n, out);
        return AC_OK;
    }
    if ((st = run_steps(m, ws, x, n, upto, -1, NULL, NULL, err))) return st;
    ac_shape os;
    const float *res = result_of(m, ws, upto, x, &os);
    memcpy(out, res, ac_shape_numel(os) * (size_t)n * sizeof *out);
    return AC_OK;
}

ac_status ac_model_forward(const ac_model *m, ac_workspace *ws, const float *x, int n,
                           float *out, char *err)
{
    return ac_model_forward_upto(m, ws, x, n, -1, out, err);
}

ac_status ac_model_forward_conv_output(const ac_model *m, ac_workspace *ws, const float *x, int n,
                                       int li, float *out, char *err)
{
    ac_status st = check_forward_args(m, ws, x, n, out, err);
    if (st != AC_OK) return st;
    const ac_graph *g = &m->graph;
    if (li < 0 || li >= g->n_steps || g->nodes[g->steps[li].node].op != AC_OP_CONV)
        return ac_fail(err, AC_ERR_INVALID_ARG, "layer %d is not a conv layer", li);
    if (!ws->probe)
        return ac_fail(err, AC_ERR_INVALID_ARG,
                       "layer %d: unfused conv output needs a workspace from ac_workspace_create_probe", li);
    if ((st = run_steps(m, ws, x, n, li + 1, li, NULL, NULL, err))) return st;
    const ac_node *nd = &g->nodes[g->steps[li].node];
    memcpy(out, ws->slot[g->steps[li].slot], ac_shape_numel(nd->conv_out) * (size_t)n * sizeof *out);
    return AC_OK;
}

ac_status ac_model_forward_nodes(const ac_model *m, ac_workspace *ws, const float *x, int n,
                                 ac_node_fn fn, void *ctx, char *err)
{
    ac_status st = check_forward_args(m, ws, x, n, fn, err);
    return st ? st : run_steps(m, ws, x, n, m->graph.n_steps, -1, fn, ctx, err);
}

void ac_model_probs(const ac_model *m, float *x, int n)
{
    size_t k = (size_t)m->info.n_labels;
    if (m->last_op_softmax == 2)
        for (size_t i = 0; i < k * (size_t)n; i++) x[i] = expf(x[i]);
    else if (m->last_op_softmax == 0)
        ac_softmax(x, n, (int)k);
}
