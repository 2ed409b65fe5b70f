/* load.c - metadata "graph" -> nodes: ids and inputs (v2), or a chain (v1); then the order,
 * and each node built once its inputs' shapes are known. */
#include "load_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ac_shape_dims(ac_shape s, int d[3])
{
    if (s.rank <= 2) return d[0] = s.c, 1;
    if (s.rank == 3) return d[0] = s.c, d[1] = s.w, 2;
    return d[0] = s.c, d[1] = s.h, d[2] = s.w, 3;
}

ac_shape ac_shape_from_dims(int rank, const int d[3])
{
    if (rank <= 1) return (ac_shape){d[0], 1, 1, 2};
    if (rank == 2) return (ac_shape){d[0], 1, d[1], 3};
    return (ac_shape){d[0], d[1], d[2], 4};
}

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= AC_ID_LEN) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              strchr("_.:/-", s[i])))
            return 0;
    return 1;
}

static int find_id(const ac_graph *g, const char *id)
{
    if (!strcmp(id, "input")) return AC_GRAPH_INPUT;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].id, id)) return i;
    return -2;
}

static void set_where(parse_ctx *c, const ac_node *nd)
{
    if (c->g->version == 1)
        snprintf(c->where, sizeof c->where, "graph layer %d (%s%s%s)", nd->file_index, nd->kind,
                 nd->name[0] ? " " : "", nd->name);
    else
        snprintf(c->where, sizeof c->where, "graph node \"%s\" (%s%s%s)", nd->id, nd->kind,
                 nd->name[0] ? " " : "", nd->name);
}

/* Reads op, name (and for v2 id, inputs) of every node; v1 becomes a chain. */
static ac_status read_structure(parse_ctx *c, json_t *list)
{
    ac_graph *g = c->g;
    size_t n = json_array_size(list);
    g->nodes = calloc(n, sizeof *g->nodes);
    if (!g->nodes) return ac_fail(c->err, AC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_array_get(list, i);
        ac_node *nd = &g->nodes[g->n_nodes++];
        nd->file_index = (int)i;
        nd->alias = -1;
        nd->report = (int)i;
        snprintf(c->where, sizeof c->where, g->version == 1 ? "graph layer %zu" : "graph node %zu", i);
        if (!json_is_object(j)) return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: not a JSON object", c->where);
        const char *op = json_string_value(json_object_get(j, "op"));
        json_t *nm = json_object_get(j, "name");
        if (!op) return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: missing \"op\"", c->where);
        if (nm && (!json_is_string(nm) || strlen(json_string_value(nm)) >= AC_ID_LEN))
            return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: \"name\" must be a string of 1..%d characters",
                           c->where, AC_ID_LEN - 1);
        if (strlen(op) >= sizeof nd->kind) return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: unknown op", c->where);
        snprintf(nd->kind, sizeof nd->kind, "%s", op);
        snprintf(nd->name, sizeof nd->name, "%s", nm ? json_string_value(nm) : "");
        if (g->version == 1) { /* a chain: the previous layer's value is the input */
            char idb[2 * AC_ID_LEN + 32]; /* "conv1.conv1d.0", "relu.2" */
            snprintf(idb, sizeof idb, "%s%s%s.%zu", nd->name, nd->name[0] ? "." : "", op, i);
            snprintf(nd->id, sizeof nd->id, "%.*s", AC_ID_LEN - 1, idb);
            nd->n_in = 1;
            nd->in[0] = i ? (int)i - 1 : AC_GRAPH_INPUT;
            continue;
        }
        const char *id = json_string_value(json_object_get(j, "id"));
        if (!id || !valid_id(id) || !strcmp(id, "input"))
            return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s (%s): \"id\" must be 1..%d characters of "
                           "A-Za-z0-9_.:/- and not \"input\"", c->where, op, AC_ID_LEN - 1);
        snprintf(nd->id, sizeof nd->id, "%s", id);
        if (find_id(g, id) != g->n_nodes - 1)
            return ac_fail(c->err, AC_ERR_BAD_MODEL, "graph node \"%s\": the id is used twice", id);
    }
    if (g->version == 1) return AC_OK;
    for (int i = 0; i < g->n_nodes; i++) { /* inputs, now that every id is known */
        ac_node *nd = &g->nodes[i];
        set_where(c, nd);
        json_t *ins = json_object_get(json_array_get(list, (size_t)i), "inputs");
        if (!json_is_array(ins) || json_array_size(ins) > AC_MAX_INPUTS)
            return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: \"inputs\" must be a list of up to %d ids",
                           c->where, AC_MAX_INPUTS);
        nd->n_in = (int)json_array_size(ins);
        for (int k = 0; k < nd->n_in; k++) {
            const char *s = json_string_value(json_array_get(ins, (size_t)k));
            int p = s ? find_id(g, s) : -2;
            if (p == -2)
                return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: input %s%s%s is not a node id", c->where,
                               s ? "\"" : "", s ? s : "(not a string)", s ? "\"" : "");
            if (p == i) return ac_fail(c->err, AC_ERR_BAD_MODEL, "%s: reads its own value", c->where);
            nd->in[k] = p;
        }
    }
    return AC_OK;
}

/* Execution order: Kahn's algorithm, taking the ready node that comes first in the file, so
 * a chain runs in file order. Refuses cycles and values that nothing uses. */
static ac_status order_nodes(parse_ctx *c)
{
    ac_graph *g = c->g;
    const int n = g->n_nodes;
    int *pending = calloc((size_t)n, sizeof *pending), *done = calloc((size_t)n, sizeof *done);
    g->order = calloc((size_t)n, sizeof *g->order);
    if (!pending || !done || !g->order) {
        free(pending), free(done);
        return ac_fail(c->err, AC_ERR_NOMEM, "out of memory");
    }
    ac_status st = AC_OK;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0) {
                pending[i]++;
                g->nodes[g->nodes[i].in[k]].consumers++;
            }
    g->nodes[g->output].consumers++;
    for (int i = 0; i < n && st == AC_OK; i++)
        if (!g->nodes[i].consumers)
            st = ac_fail(c->err, AC_ERR_BAD_MODEL, "graph node \"%s\" (%s): its value is not used by "
                         "any node nor the output", g->nodes[i].id, g->nodes[i].kind);
    /* O(n^2) in the worst case; graphs have at most AC_MAX_NODES nodes */
    for (int pos = 0; pos < n && st == AC_OK; pos++) {
        int pick = -1;
        for (int i = 0; i < n && pick < 0; i++)
            if (!done[i] && !pending[i]) pick = i;
        if (pick < 0) {
            for (int i = 0; i < n; i++)
                if (!done[i]) {
                    st = ac_fail(c->err, AC_ERR_BAD_MODEL, "graph node \"%s\" (%s) is on a cycle",
                                 g->nodes[i].id, g->nodes[i].kind);
                    break;
                }
            break;
        }
        done[pick] = 1;
        g->order[pos] = pick;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < g->nodes[i].n_in; k++)
                if (g->nodes[i].in[k] == pick) pending[i]--;
    }
    free(pending);
    free(done);
    return st;
}

ac_status ac_graph_load(ac_graph *g, const char *graph_json, int version, ac_shape input,
                        ac_weights *file, char *err)
{
    memset(g, 0, sizeof *g);
    g->version = version;
    g->input = input;
    parse_ctx c = {.g = g, .file = file, .err = err};
    json_error_t je;
    json_t *root = json_loads(graph_json, 0, &je), *list = root;
    ac_status st = AC_OK;
    if (!root) {
        st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"graph\" is not valid JSON: %s", je.text);
        goto out;
    }
    if (version >= 2) {
        list = json_object_get(root, "nodes");
        if (!json_is_object(root) || !json_is_array(list) || !json_is_string(json_object_get(root, "output"))) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"graph\" must be an object with \"nodes\" "
                         "(a list) and \"output\" (an id)");
            goto out;
        }
    }
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > AC_MAX_NODES) {
        st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"graph\" must be a non-empty list of up to %d "
                     "layers", AC_MAX_NODES);
        goto out;
    }
    if ((st = read_structure(&c, list))) goto out;
    if (version >= 2) {
        const char *o = json_string_value(json_object_get(root, "output"));
        g->output = find_id(g, o);
        if (g->output < 0) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "graph \"output\" \"%s\" is not a node id", o);
            goto out;
        }
    } else {
        g->output = g->n_nodes - 1;
    }
    if ((st = order_nodes(&c))) goto out;
    for (int pos = 0; pos < g->n_nodes; pos++) {
        ac_node *nd = &g->nodes[g->order[pos]];
        set_where(&c, nd);
        if (ac_graph_build_node(&c, nd, json_array_get(list, (size_t)nd->file_index))) {
            st = c.status ? c.status : AC_ERR_BAD_MODEL; /* out of memory stays AC_ERR_NOMEM */
            goto out;
        }
        if (ac_shape_numel(nd->out) > ((size_t)1 << 28)) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "%s: a value of %zu numbers per item is too large",
                         c.where, ac_shape_numel(nd->out));
            goto out;
        }
    }
out:
    json_decref(root);
    return st;
}

void ac_graph_free(ac_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) {
        ac_node *nd = &g->nodes[i];
        ac_free_aligned(nd->weight);
        ac_free_aligned(nd->bias);
        ac_free_aligned(nd->packed);
        free(nd->bf16);
        ac_free_aligned(nd->frames_w);
        ac_free_aligned(nd->matrix_owned);
        ac_free_aligned(nd->scale);
        ac_free_aligned(nd->shift);
        ac_free_aligned(nd->gamma);
        ac_free_aligned(nd->beta);
        ac_free_aligned(nd->cvalue);
        if (nd->rnn_tables) {
            for (int t = 0; t < 4 * nd->rnn.layers * nd->rnn.dirs; t++) ac_free_aligned(nd->rnn_tables[t]);
            free(nd->rnn_tables);
        }
    }
    free(g->nodes);
    free(g->order);
    free(g->steps);
    free(g->slot_floats);
    free(g->probe_floats);
    free(g->flow);
    memset(g, 0, sizeof *g);
}
