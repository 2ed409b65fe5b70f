/* test_zoo.c - the C engine equals PyTorch on every value of every golden-zoo network.
 *
 * tests/golden/zoo/NAME.golden.safetensors (written by tests/golden/zoo_make.py) names its
 * model file and holds a batch of inputs, PyTorch's float64 value of every graph node
 * (`node/<id>` [n, item...]), the raw output and the probabilities. For each fixture:
 * every value ac_model_forward_nodes reports must exist in the fixture and match it to
 * 1e-4 max abs difference (a failure names the model and the node); the output and the
 * probabilities must match with three workspace shapes (whole batch / 2 threads, one item /
 * 1 thread, and the batch repeated to 9 items on 2 threads: there every network without a
 * recurrence splits the batch, 4 + 5 items, each thread running every layer). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "ops.h"
#include "testutil.h"
#include "weights.h"

#define NODE_TOL 1e-4
#define OUTPUT_TOL 1e-4
#define PROBS_TOL 1e-5
#define ZOO_MIN 14 /* networks in tests/golden/zoo_blocks.py */

typedef struct node_check {
    const char *model;
    ac_weights *fx;
    int reported;          /* values the engine reported */
    double worst;          /* largest difference seen */
    char worst_id[80];
} node_check;

static int check_node(void *ctx, const char *id, const float *value, int n, ac_shape shape)
{
    node_check *c = ctx;
    char key[128];
    snprintf(key, sizeof key, "node/%s", id);
    c->reported++;
    ac_tensor_ref *t = ac_weights_find(c->fx, key);
    cr_expect(t != NULL, "%s: the engine reports node %s, which PyTorch's graph does not have",
              c->model, id);
    if (!t) return 0;
    size_t numel = (size_t)n * ac_shape_numel(shape);
    cr_expect(t->numel == (int64_t)numel && t->shape[0] == n,
              "%s: node %s has %zu values (%d items), PyTorch's %lld", c->model, id, numel, n,
              (long long)t->numel);
    if (t->numel != (int64_t)numel) return 0;
    float *want = malloc(numel * sizeof *want + 1);
    cr_assert(want);
    memcpy(want, t->data, numel * sizeof *want);
    double d = tu_max_abs_diff(value, want, numel);
    free(want);
    cr_expect_leq(d, NODE_TOL, "%s: node %s differs from PyTorch by %g", c->model, id, d);
    if (c->worst_id[0] == 0 || d > c->worst) {
        c->worst = d;
        snprintf(c->worst_id, sizeof c->worst_id, "%s", id);
    }
    return 0;
}

static void check_fixture(const char *path)
{
    char err[AC_ERR_LEN];
    ac_weights *fx;
    cr_assert_eq(ac_weights_open(path, &fx, err), AC_OK, "%s: %s", path, err);
    const char *model_rel = ac_weights_meta(fx, "model");
    cr_assert(model_rel, "%s: metadata \"model\" missing", path);
    ac_model *m;
    cr_assert_eq(ac_model_load(tu_src_path(model_rel), &m, err), AC_OK, "%s: %s", model_rel, err);
    const ac_model_info *info = ac_model_get_info(m);

    int64_t n_in, n_out, n_probs;
    float *x = tu_fixture_f32(fx, model_rel, "input", &n_in);
    float *want_out = tu_fixture_f32(fx, model_rel, "output", &n_out);
    float *want_probs = tu_fixture_f32(fx, model_rel, "probs", &n_probs);
    int items = (int)(n_out / info->n_labels);
    cr_assert(items >= 1 && (int64_t)items * info->n_labels == n_out && n_probs == n_out,
              "%s: fixture output is not [items, %d]", model_rel, info->n_labels);
    size_t item_in = (size_t)(n_in / items);

    ac_workspace *ws_all, *ws_one;
    cr_assert_eq(ac_workspace_create(m, items, 2, &ws_all, err), AC_OK, "%s: %s", model_rel, err);
    cr_assert_eq(ac_workspace_create(m, 1, 1, &ws_one, err), AC_OK, "%s: %s", model_rel, err);

    node_check c = {.model = model_rel, .fx = fx};
    cr_assert_eq(ac_model_forward_nodes(m, ws_all, x, items, check_node, &c, err), AC_OK,
                 "%s: %s", model_rel, err);
    cr_expect_geq(c.reported, 1, "%s: the engine reported no node values", model_rel);

    if (strstr(model_rel, "/chains.") && ac_ops_direct()) { /* the pass below runs a chain */
        int chained = 0;
        for (int k = 0; k < ac_model_layer_count(m); k++)
            chained += !strcmp(ac_model_layer_kernel(m, k, items), "in next step");
        cr_expect_eq(chained, 1, "%s: %d convolutions run inside the next one, expected 1", model_rel, chained);
    }
    float *out = malloc((size_t)n_out * sizeof *out);
    cr_assert(out);
    cr_assert_eq(ac_model_forward(m, ws_all, x, items, out, err), AC_OK, "%s: %s", model_rel, err);
    double d_out = tu_max_abs_diff(out, want_out, (size_t)n_out);
    ac_model_probs(m, out, items);
    double d_probs = tu_max_abs_diff(out, want_probs, (size_t)n_out);
    cr_expect_leq(d_out, OUTPUT_TOL, "%s: output differs from PyTorch by %g", model_rel, d_out);
    cr_expect_leq(d_probs, PROBS_TOL, "%s: probabilities differ from PyTorch by %g", model_rel, d_probs);
    for (int i = 0; i < items; i++) { /* one item at a time, one thread */
        size_t L = (size_t)info->n_labels;
        cr_assert_eq(ac_model_forward(m, ws_one, x + (size_t)i * item_in, 1, out, err), AC_OK,
                     "%s: %s", model_rel, err);
        double d1 = tu_max_abs_diff(out, want_out + i * L, L);
        cr_expect_leq(d1, OUTPUT_TOL, "%s: item %d alone: output differs by %g", model_rel, i, d1);
    }
    enum { SPLIT_ITEMS = 9 };
    ac_workspace *ws_split;
    cr_assert_eq(ac_workspace_create(m, SPLIT_ITEMS, 2, &ws_split, err), AC_OK, "%s: %s", model_rel, err);
    float *xs = malloc(SPLIT_ITEMS * item_in * sizeof *xs), *outs = malloc(SPLIT_ITEMS * (size_t)info->n_labels * sizeof *outs);
    cr_assert(xs && outs);
    for (int i = 0; i < SPLIT_ITEMS; i++) memcpy(xs + i * item_in, x + (size_t)(i % items) * item_in, item_in * sizeof *xs);
    int has_rnn = 0;
    for (int k = 0; k < ac_model_layer_count(m); k++) {
        ac_layer_info li;
        cr_assert_eq(ac_model_layer_info(m, k, &li), 0);
        has_rnn |= !strcmp(li.kind, "gru") || !strcmp(li.kind, "lstm");
    }
    cr_expect_eq(ac_model_splits_batch(m, SPLIT_ITEMS, 2), !has_rnn, "%s: batch split %d", model_rel,
                 ac_model_splits_batch(m, SPLIT_ITEMS, 2));
    cr_assert_eq(ac_model_forward(m, ws_split, xs, SPLIT_ITEMS, outs, err), AC_OK, "%s: %s", model_rel, err);
    for (int i = 0; i < SPLIT_ITEMS; i++) {
        size_t L = (size_t)info->n_labels;
        double d9 = tu_max_abs_diff(outs + i * L, want_out + (size_t)(i % items) * L, L);
        cr_expect_leq(d9, OUTPUT_TOL, "%s: item %d of 9 (split %d): output differs by %g", model_rel, i,
                      ac_model_splits_batch(m, SPLIT_ITEMS, 2), d9);
    }
    ac_workspace_free(ws_split);
    free(xs), free(outs);
    printf("zoo %-36s %2d values checked, max |C - PyTorch| = %.2g (node %s); output %.2g, "
           "probs %.2g\n", model_rel, c.reported, c.worst, c.worst_id, d_out, d_probs);
    free(out), free(x), free(want_out), free(want_probs);
    ac_workspace_free(ws_all);
    ac_workspace_free(ws_one);
    ac_model_free(m);
    ac_weights_close(fx);
}

Test(zoo, every_node_of_every_block_matches_pytorch)
{
    int count = tu_for_each_file(tu_src_path("tests/golden/zoo"), ".golden.safetensors", check_fixture);
    cr_assert_geq(count, ZOO_MIN, "expected %d zoo fixtures, found %d", ZOO_MIN, count);
}
