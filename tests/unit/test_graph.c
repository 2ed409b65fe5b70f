/* test_graph.c - format version 2 graphs: structure validation that names the node, fusion
 * only for single-reader values, buffer planning by liveness, and values of residual and
 * branching graphs against a reference computed here. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "testutil.h"

#define L 16 /* input length */

/* Tensors of the test graphs: 1x1 convs a (1->2), b (2->2), c (2->2, shares nothing), bn on
 * 2 channels, fc 2*L -> 3. */
static float wa[2] = {0.5f, -1.5f}, ba[2] = {0.1f, 0.2f};
static float wb[4] = {1.0f, 0.5f, -0.25f, 2.0f}, bb[2] = {0.0f, -0.3f};
static float bn_w[2] = {1.5f, 0.5f}, bn_b[2] = {0.1f, -0.1f}, bn_m[2] = {0.2f, -0.4f}, bn_v[2] = {2.0f, 0.5f};
static float wf[3 * 2 * L], bf[3] = {0.0f, 0.1f, -0.1f};

static unsigned char *build(const char *graph, int version, size_t *len, int with_bn, int with_b)
{
    tu_fill_random(wf, 3 * 2 * L, 3);
    tu_st *b = tu_st_new();
    tu_st_add(b, "a.weight", 3, (int64_t[]){2, 1, 1}, wa);
    tu_st_add(b, "a.bias", 1, (int64_t[]){2}, ba);
    if (with_b) {
        tu_st_add(b, "b.weight", 3, (int64_t[]){2, 2, 1}, wb);
        tu_st_add(b, "b.bias", 1, (int64_t[]){2}, bb);
    }
    if (with_bn) {
        tu_st_add(b, "bn.weight", 1, (int64_t[]){2}, bn_w);
        tu_st_add(b, "bn.bias", 1, (int64_t[]){2}, bn_b);
        tu_st_add(b, "bn.running_mean", 1, (int64_t[]){2}, bn_m);
        tu_st_add(b, "bn.running_var", 1, (int64_t[]){2}, bn_v);
    }
    tu_st_add(b, "fc.weight", 2, (int64_t[]){3, 2 * L}, wf);
    tu_st_add(b, "fc.bias", 1, (int64_t[]){3}, bf);
    char ver[4], shape[32], policy[64];
    snprintf(ver, sizeof ver, "%d", version);
    snprintf(shape, sizeof shape, "[1, %d]", L);
    snprintf(policy, sizeof policy, "{\"window\": %d, \"hop\": %d}", L, L);
    json_t *meta = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "format", "audioclass", "format_version", ver,
                             "name", "g", "sample_rate", "8000", "input_shape", shape, "labels",
                             "[\"x\", \"y\", \"z\"]", "policy", policy, "graph", graph);
    unsigned char *bytes = tu_st_finish(b, meta, len);
    json_decref(meta);
    return bytes;
}

#define CONV_A "{\"id\":\"ca\",\"op\":\"conv1d\",\"name\":\"a\",\"inputs\":[\"input\"],\"in_channels\":1,\"out_channels\":2,\"kernel_size\":1}"
#define CONV_B(in) "{\"id\":\"cb\",\"op\":\"conv1d\",\"name\":\"b\",\"inputs\":[\"" in "\"],\"in_channels\":2,\"out_channels\":2,\"kernel_size\":1}"
#define BN(in) "{\"id\":\"bn\",\"op\":\"batchnorm\",\"name\":\"bn\",\"inputs\":[\"" in "\"],\"num_features\":2}"
#define FLAT(in) "{\"id\":\"flat\",\"op\":\"flatten\",\"inputs\":[\"" in "\"]}"
#define FC "{\"id\":\"fc\",\"op\":\"linear\",\"name\":\"fc\",\"inputs\":[\"flat\"],\"in_features\":32,\"out_features\":3}"
/* JSON lists: the node strings joined by commas */
#define J3(a, b, c) a "," b "," c
#define J4(a, b, c, d) a "," b "," c "," d
#define J5(a, b, c, d, e) a "," b "," c "," d "," e
#define J6(a, b, c, d, e, f) J5(a, b, c, d, e) "," f
#define GRAPH3(a, b, c) "{\"output\":\"fc\",\"nodes\":[" J3(a, b, c) "]}"
#define GRAPH4(a, b, c, d) "{\"output\":\"fc\",\"nodes\":[" J4(a, b, c, d) "]}"
#define GRAPH5(a, b, c, d, e) "{\"output\":\"fc\",\"nodes\":[" J5(a, b, c, d, e) "]}"
#define GRAPH6(a, b, c, d, e, f) "{\"output\":\"fc\",\"nodes\":[" J6(a, b, c, d, e, f) "]}"

static void expect_refused(const char *graph, int with_bn, int with_b, ac_status code, const char *needle)
{
    size_t len;
    unsigned char *bytes = build(graph, 2, &len, with_bn, with_b);
    ac_model *m = NULL;
    char err[AC_ERR_LEN] = "";
    ac_status st = ac_model_load_memory(bytes, len, "g", &m, err);
    cr_expect_eq(st, code, "expected %s, got %s (%s)", ac_status_name(code), ac_status_name(st), err);
    cr_expect(strstr(err, needle) != NULL, "message \"%s\" should mention \"%s\"", err, needle);
    cr_expect_null(m);
    ac_model_free(m);
    free(bytes);
}

static ac_model *load(const char *graph, int version, int with_bn, int with_b)
{
    size_t len;
    unsigned char *bytes = build(graph, version, &len, with_bn, with_b);
    ac_model *m = NULL;
    char err[AC_ERR_LEN] = "";
    cr_assert_eq(ac_model_load_memory(bytes, len, "g", &m, err), AC_OK, "%s", err);
    free(bytes);
    return m;
}

Test(graph, structure_errors_name_the_node)
{
    expect_refused(GRAPH3(CONV_A, FLAT("nope"), FC), 0, 0, AC_ERR_BAD_MODEL,
                   "graph node \"flat\" (flatten): input \"nope\" is not a node id");
    /* ca -> cb -> ca: a cycle (and the network input is unused) */
    expect_refused(GRAPH4("{\"id\":\"ca\",\"op\":\"conv1d\",\"name\":\"a\",\"inputs\":[\"cb\"],\"in_channels\":2,"
                         "\"out_channels\":2,\"kernel_size\":1}", CONV_B("ca"), FLAT("cb"), FC),
                   0, 1, AC_ERR_BAD_MODEL, "is on a cycle");
    expect_refused(GRAPH4(CONV_A, CONV_B("ca"), FLAT("ca"), FC), 0, 1, AC_ERR_BAD_MODEL,
                   "graph node \"cb\" (conv1d): its value is not used");
    expect_refused(GRAPH4(CONV_A, CONV_A, FLAT("ca"), FC), 0, 0, AC_ERR_BAD_MODEL,
                   "graph node \"ca\": the id is used twice");
    expect_refused("{\"output\":\"zz\",\"nodes\":[" CONV_A "," FLAT("ca") "," FC "]}", 0, 0, AC_ERR_BAD_MODEL,
                   "graph \"output\" \"zz\" is not a node id");
    expect_refused("[" CONV_A "]", 0, 0, AC_ERR_BAD_MODEL, "must be an object with \"nodes\"");
    expect_refused(GRAPH4("{\"id\":\"in put\",\"op\":\"relu\",\"inputs\":[\"input\"]}", CONV_A, FLAT("ca"), FC),
                   0, 0, AC_ERR_BAD_MODEL, "\"id\" must be 1..63 characters");
    expect_refused(GRAPH4("{\"id\":\"input\",\"op\":\"relu\",\"inputs\":[\"input\"]}", CONV_A, FLAT("ca"), FC),
                   0, 0, AC_ERR_BAD_MODEL, "not \"input\"");
}

Test(graph, op_errors_name_the_node)
{
    /* add of [2, 16] and [1, 16] broadcasts; [2, 32] does not fit [2, 16] */
    expect_refused(GRAPH4(CONV_A, "{\"id\":\"s\",\"op\":\"add\",\"inputs\":[\"ca\"]}", FLAT("s"), FC), 0, 0,
                   AC_ERR_BAD_MODEL, "graph node \"s\" (add): takes 2 inputs, got 1");
    expect_refused(GRAPH5(CONV_A, "{\"id\":\"p\",\"op\":\"pad\",\"inputs\":[\"ca\"],\"pads\":[0,16]}",
                         "{\"id\":\"s\",\"op\":\"add\",\"inputs\":[\"ca\",\"p\"]}", FLAT("s"), FC), 0, 0,
                   AC_ERR_BAD_MODEL, "graph node \"s\" (add): shapes [2, 16] and [2, 32] do not broadcast");
    expect_refused(GRAPH5(CONV_A, "{\"id\":\"c2\",\"op\":\"conv1d\",\"name\":\"a\",\"inputs\":[\"input\"],"
                         "\"in_channels\":1,\"out_channels\":2,\"kernel_size\":1}",
                         "{\"id\":\"s\",\"op\":\"add\",\"inputs\":[\"ca\",\"c2\"]}", FLAT("s"), FC), 0, 0,
                   AC_ERR_BAD_MODEL, "graph node \"c2\" (conv1d a): tensor a.weight is already used by another node");
    expect_refused(GRAPH4(CONV_A, "{\"id\":\"x\",\"op\":\"fft\",\"inputs\":[\"ca\"]}", FLAT("x"), FC), 0, 0,
                   AC_ERR_BAD_MODEL, "graph node \"x\" (fft): unknown op \"fft\"");
    expect_refused(GRAPH4(CONV_A, "{\"id\":\"x\",\"op\":\"slice\",\"inputs\":[\"ca\"],\"dim\":2,\"start\":4,\"end\":2}",
                         FLAT("x"), FC), 0, 0, AC_ERR_BAD_MODEL, "slice 4:2 must satisfy 0 <= start < end <= 16");
    expect_refused(GRAPH4(CONV_A, "{\"id\":\"x\",\"op\":\"mean\",\"inputs\":[\"ca\"],\"dim\":0}", FLAT("x"), FC), 0, 0,
                   AC_ERR_BAD_MODEL, "\"dim\" 0 must be an axis in 1..2 (0 is the batch)");
}

/* Reference for the test graphs: conv a (1x1, 1->2) of x [L]. */
static void conv_a(const float *x, float out[2][L])
{
    for (int c = 0; c < 2; c++)
        for (int t = 0; t < L; t++) out[c][t] = wa[c] * x[t] + ba[c];
}

static void fc_ref(float v[2][L], float out[3])
{
    for (int o = 0; o < 3; o++) {
        double s = bf[o];
        for (int i = 0; i < 2 * L; i++) s += (double)wf[o * 2 * L + i] * v[i / L][i % L];
        out[o] = (float)s;
    }
}

/* bn reads ca, and so does the add: the batch norm cannot be folded into conv a (ca would
 * change for the add); it runs as an affine step. The result is bn(ca) + ca. */
Test(graph, no_fusion_when_the_value_has_two_readers)
{
    ac_model *m = load(GRAPH5(CONV_A, BN("ca"), "{\"id\":\"s\",\"op\":\"add\",\"inputs\":[\"bn\",\"ca\"]}",
                             FLAT("s"), FC), 2, 1, 0);
    int affine_steps = 0;
    for (int i = 0; i < ac_model_layer_count(m); i++) {
        ac_layer_info li;
        ac_model_layer_info(m, i, &li);
        cr_expect(!li.folded[0], "step %s must not carry a folded batch norm", li.id);
        affine_steps += !strcmp(li.kind, "batchnorm");
    }
    cr_expect_eq(affine_steps, 1);
    float x[2 * L], out[2 * 3];
    tu_fill_random(x, 2 * L, 9);
    char err[AC_ERR_LEN];
    ac_workspace *ws;
    cr_assert_eq(ac_workspace_create(m, 2, 1, &ws, err), AC_OK, "%s", err);
    cr_assert_eq(ac_model_forward(m, ws, x, 2, out, err), AC_OK, "%s", err);
    for (int b = 0; b < 2; b++) {
        float ca[2][L], s[2][L], ref[3];
        conv_a(x + b * L, ca);
        for (int c = 0; c < 2; c++)
            for (int t = 0; t < L; t++) {
                double sc = bn_w[c] / sqrt(bn_v[c] + 1e-5);
                s[c][t] = (float)((ca[c][t] - bn_m[c]) * sc + bn_b[c]) + ca[c][t];
            }
        fc_ref(s, ref);
        for (int o = 0; o < 3; o++) cr_expect_float_eq(out[b * 3 + o], ref[o], 1e-4, "item %d out %d", b, o);
    }
    ac_workspace_free(ws);
    ac_model_free(m);
}

/* The same nodes with one reader each: the batch norm and the relu fold into conv a. */
Test(graph, fusion_with_one_reader)
{
    ac_model *m = load(GRAPH5(CONV_A, BN("ca"), "{\"id\":\"r\",\"op\":\"relu\",\"inputs\":[\"bn\"]}", FLAT("r"), FC),
                       2, 1, 0);
    ac_layer_info li;
    cr_assert_eq(ac_model_layer_count(m), 2, "conv a (+bn+relu) and fc");
    ac_model_layer_info(m, 0, &li);
    cr_expect_str_eq(li.folded, "bn");
    cr_expect(li.relu);
    cr_expect_str_eq(li.id, "r", "the fused step reports the last node of its chain");
    ac_model_free(m);
}

/* Residual block ca -> cb -> add(cb, ca) -> relu, plus every value reported by node. */
typedef struct seen { int count; char ids[8][64]; float flat_first; } seen;
static int on_node(void *ctx, const char *id, const float *v, int n, ac_shape shape)
{
    seen *s = ctx;
    if (s->count < 8) snprintf(s->ids[s->count], 64, "%s", id);
    s->count++;
    (void)n, (void)shape;
    if (!strcmp(id, "r")) s->flat_first = v[0];
    return 0;
}

Test(graph, residual_block_values)
{
    ac_model *m = load(GRAPH6(CONV_A, CONV_B("ca"), "{\"id\":\"s\",\"op\":\"add\",\"inputs\":[\"cb\",\"ca\"]}",
                             "{\"id\":\"r\",\"op\":\"relu\",\"inputs\":[\"s\"]}", FLAT("r"), FC), 2, 0, 1);
    float x[3 * L], out[3 * 3];
    tu_fill_random(x, 3 * L, 4);
    char err[AC_ERR_LEN];
    ac_workspace *ws;
    cr_assert_eq(ac_workspace_create(m, 3, 2, &ws, err), AC_OK, "%s", err);
    cr_assert_eq(ac_model_forward(m, ws, x, 3, out, err), AC_OK, "%s", err);
    float r0 = 0;
    for (int b = 0; b < 3; b++) {
        float ca[2][L], r[2][L], ref[3];
        conv_a(x + b * L, ca);
        for (int c = 0; c < 2; c++)
            for (int t = 0; t < L; t++) {
                float cb = wb[c * 2] * ca[0][t] + wb[c * 2 + 1] * ca[1][t] + bb[c];
                r[c][t] = fmaxf(cb + ca[c][t], 0.f);
            }
        if (b == 0) r0 = r[0][0];
        fc_ref(r, ref);
        for (int o = 0; o < 3; o++) cr_expect_float_eq(out[b * 3 + o], ref[o], 1e-4, "item %d out %d", b, o);
    }
    seen s = {0};
    cr_assert_eq(ac_model_forward_nodes(m, ws, x, 3, on_node, &s, err), AC_OK, "%s", err);
    cr_expect_eq(s.count, 5, "ca, cb, s, r, fc (flatten has no value of its own)");
    cr_expect_str_eq(s.ids[0], "ca");
    cr_expect_str_eq(s.ids[4], "fc");
    cr_expect_float_eq(s.flat_first, r0, 1e-5);
    ac_workspace_free(ws);
    ac_model_free(m);
}

/* Liveness: a chain needs two buffers however long it is (plus in-place steps). */
Test(graph, chain_reuses_two_buffers)
{
    ac_model *m2 = load(GRAPH4(CONV_A, CONV_B("ca"), FLAT("cb"), FC), 2, 0, 1);
    ac_model *m1 = load(GRAPH3(CONV_A, FLAT("ca"), FC), 2, 0, 0);
    /* values: ca 32, cb 32, fc 3 floats per item: ca and fc can share, cb needs its own */
    cr_expect_eq(ac_model_activation_floats(m2), 32 + 32, "got %zu", ac_model_activation_floats(m2));
    cr_expect_eq(ac_model_activation_floats(m1), 32 + 3, "got %zu", ac_model_activation_floats(m1));
    ac_model_free(m1), ac_model_free(m2);
}

/* A version 1 file is a chain: the same layers load from a list. */
Test(graph, version_1_list_is_a_chain)
{
    const char *v1 = "[{\"op\":\"conv1d\",\"name\":\"a\",\"in_channels\":1,\"out_channels\":2,\"kernel_size\":1},"
                     "{\"op\":\"batchnorm\",\"name\":\"bn\",\"num_features\":2},{\"op\":\"relu\"},{\"op\":\"flatten\"},"
                     "{\"op\":\"linear\",\"name\":\"fc\",\"in_features\":32,\"out_features\":3}]";
    ac_model *m = load(v1, 1, 1, 0);
    cr_expect_eq(ac_model_layer_count(m), 2);
    cr_expect_eq(ac_model_get_info(m)->format_version, 1);
    ac_model_free(m);
    size_t len;
    unsigned char *bytes = build("{\"output\":\"fc\",\"nodes\":[]}", 1, &len, 0, 0);
    ac_model *bad = NULL;
    char err[AC_ERR_LEN];
    cr_expect_eq(ac_model_load_memory(bytes, len, "g", &bad, err), AC_ERR_BAD_MODEL);
    cr_expect(strstr(err, "non-empty list") != NULL, "%s", err);
    free(bytes);
}
