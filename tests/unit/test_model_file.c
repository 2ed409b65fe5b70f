/* test_model_file.c - the loader refuses every kind of bad model file with its own message.
 *
 * Each case starts from a valid file (tests/golden/zoo1d.safetensors), changes one thing
 * in its header, tensors or metadata, rebuilds the bytes and checks the error names it. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "gemm_bf16.h"
#include "testutil.h"
#include "weights.h"

#define MAXT 64

/* An editable copy of a safetensors file. */
typedef struct fixture {
    int n;
    char *name[MAXT], *dtype[MAXT];
    json_t *shape[MAXT];
    unsigned char *bytes[MAXT];
    size_t nbytes[MAXT];
    json_t *meta;
} fixture;

static void load_fixture(fixture *f)
{
    char err[AC_ERR_LEN];
    ac_weights *w;
    cr_assert_eq(ac_weights_open(tu_src_path("tests/golden/zoo1d.safetensors"), &w, err), AC_OK, "%s", err);
    memset(f, 0, sizeof *f);
    f->n = ac_weights_count(w);
    for (int i = 0; i < f->n; i++) {
        ac_tensor_ref *t = ac_weights_at(w, i);
        f->name[i] = strdup(t->name);
        f->dtype[i] = strdup(ac_dtype_name(t->dtype));
        f->shape[i] = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(f->shape[i], json_integer(t->shape[d]));
        f->bytes[i] = malloc(t->nbytes + 1);
        memcpy(f->bytes[i], t->data, t->nbytes);
        f->nbytes[i] = t->nbytes;
    }
    const char *keys[32], *vals[32];
    int nm = ac_weights_meta_all(w, keys, vals, 32);
    f->meta = json_object();
    for (int i = 0; i < nm; i++) json_object_set_new(f->meta, keys[i], json_string(vals[i]));
    ac_weights_close(w);
}

static void free_fixture(fixture *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->name[i]), free(f->dtype[i]), free(f->bytes[i]);
        json_decref(f->shape[i]);
    }
    json_decref(f->meta);
}

static int find(fixture *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->name[i], name)) return i;
    cr_assert_fail("fixture has no tensor %s", name);
    return -1;
}

/* Serialises f as a safetensors file; *len receives the size. */
static unsigned char *build(fixture *f, size_t *len)
{
    json_t *h = json_object();
    json_object_set(h, "__metadata__", f->meta);
    size_t off = 0;
    for (int i = 0; i < f->n; i++) {
        json_object_set_new(h, f->name[i],
                            json_pack("{s:s,s:O,s:[I,I]}", "dtype", f->dtype[i], "shape", f->shape[i],
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + f->nbytes[i])));
        off += f->nbytes[i];
    }
    char *hs = json_dumps(h, JSON_COMPACT);
    size_t hl = strlen(hs), padded = (hl + 7) / 8 * 8;
    unsigned char *buf = malloc(8 + padded + off);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, hs, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    unsigned char *p = buf + 8 + padded;
    for (int i = 0; i < f->n; i++) memcpy(p, f->bytes[i], f->nbytes[i]), p += f->nbytes[i];
    *len = 8 + padded + off;
    free(hs);
    json_decref(h);
    return buf;
}

/* Loads bytes as a model; expects `code` and a message containing `needle`. */
static void expect_refused(const unsigned char *buf, size_t len, ac_status code, const char *needle)
{
    char err[AC_ERR_LEN] = "";
    ac_model *m = NULL;
    ac_status st = ac_model_load_memory(buf, len, "test", &m, err);
    cr_expect_eq(st, code, "expected %s, got %s (%s)", ac_status_name(code), ac_status_name(st), err);
    cr_expect(strstr(err, needle) != NULL, "message \"%s\" should mention \"%s\"", err, needle);
    cr_expect_null(m);
    ac_model_free(m);
}

static void expect_fixture_refused(fixture *f, const char *needle)
{
    size_t len;
    unsigned char *buf = build(f, &len);
    expect_refused(buf, len, AC_ERR_BAD_MODEL, needle);
    free(buf);
}

Test(model_file, rebuilt_fixture_loads)
{
    fixture f;
    load_fixture(&f);
    size_t len;
    unsigned char *buf = build(&f, &len);
    char err[AC_ERR_LEN];
    ac_model *m;
    cr_assert_eq(ac_model_load_memory(buf, len, "test", &m, err), AC_OK, "%s", err);
    cr_expect_eq(ac_model_get_info(m)->n_labels, 6);
    ac_model_free(m);
    free(buf);
    free_fixture(&f);
}

Test(model_file, truncated_file)
{
    fixture f;
    load_fixture(&f);
    size_t len;
    unsigned char *buf = build(&f, &len);
    expect_refused(buf, len - 10, AC_ERR_BAD_MODEL, "outside the");
    expect_refused(buf, 5, AC_ERR_BAD_MODEL, "too short for a header");
    expect_refused(buf, 0, AC_ERR_BAD_MODEL, "too short");
    free(buf);
    free_fixture(&f);
}

Test(model_file, header_length_beyond_file)
{
    unsigned char buf[64] = {0};
    buf[0] = 0xff, buf[1] = 0xff, buf[5] = 1;
    memcpy(buf + 8, "{}", 2);
    expect_refused(buf, sizeof buf, AC_ERR_BAD_MODEL, "exceeds the file");
}

Test(model_file, malformed_json_header)
{
    const char *bad = "{\"a\": [1, 2,, }  ";
    unsigned char buf[64] = {0};
    size_t hl = strlen(bad);
    buf[0] = (unsigned char)hl;
    memcpy(buf + 8, bad, hl);
    expect_refused(buf, 8 + hl, AC_ERR_BAD_MODEL, "not valid JSON");
    const char *arr = "[1, 2]  ";
    buf[0] = 8;
    memcpy(buf + 8, arr, 8);
    expect_refused(buf, 16, AC_ERR_BAD_MODEL, "not a JSON object");
}

Test(model_file, wrong_shape_names_tensor)
{
    fixture f;
    load_fixture(&f);
    int i = find(&f, "conv1.weight"); /* [8, 1, 9] -> [8, 9, 1]: same bytes, wrong shape */
    json_array_set_new(f.shape[i], 1, json_integer(9));
    json_array_set_new(f.shape[i], 2, json_integer(1));
    expect_fixture_refused(&f, "conv1.weight has shape [8, 9, 1], expected [8, 1, 9]");
    free_fixture(&f);
}

Test(model_file, size_mismatch_and_unknown_dtype)
{
    fixture f;
    load_fixture(&f);
    int i = find(&f, "fc1.bias");
    free(f.dtype[i]);
    f.dtype[i] = strdup("F16"); /* 24 bytes cannot hold 6 F16 values */
    expect_fixture_refused(&f, "fc1.bias: 24 bytes do not hold 6 F16 values");
    free(f.dtype[i]);
    f.dtype[i] = strdup("F64");
    expect_fixture_refused(&f, "fc1.bias: dtype F64 not supported");
    free_fixture(&f);
}

Test(model_file, i8_where_not_allowed_and_missing_scale)
{
    fixture f;
    load_fixture(&f);
    int i = find(&f, "conv3.weight_scale");
    free(f.name[i]);
    f.name[i] = strdup("conv3.weight_scales"); /* the scale the I8 weight needs is gone */
    expect_fixture_refused(&f, "I8 tensor conv3.weight needs conv3.weight_scale");
    free_fixture(&f);

    load_fixture(&f);
    i = find(&f, "bn1.running_var"); /* 8 F32 values = 32 bytes; make it 32 I8 values */
    free(f.dtype[i]);
    f.dtype[i] = strdup("I8");
    json_array_set_new(f.shape[i], 0, json_integer(32));
    expect_fixture_refused(&f, "bn1.running_var has shape [32], expected [8]");
    free_fixture(&f);
}

Test(model_file, missing_and_unused_tensors)
{
    fixture f;
    load_fixture(&f);
    int i = find(&f, "bn2.running_mean");
    free(f.name[i]);
    f.name[i] = strdup("bn2.running_average");
    expect_fixture_refused(&f, "tensor bn2.running_mean is missing");
    free_fixture(&f);

    load_fixture(&f);
    f.name[f.n] = strdup("extra.weight");
    f.dtype[f.n] = strdup("F32");
    f.shape[f.n] = json_pack("[i]", 2);
    f.bytes[f.n] = calloc(1, 8);
    f.nbytes[f.n] = 8;
    f.n++;
    expect_fixture_refused(&f, "tensor extra.weight is not used by the graph");
    free_fixture(&f);
}

Test(model_file, non_finite_weights)
{
    fixture f;
    load_fixture(&f);
    int i = find(&f, "conv1.weight");
    float nan = __builtin_nanf("");
    memcpy(f.bytes[i] + 12, &nan, 4);
    expect_fixture_refused(&f, "non-finite value");
    free_fixture(&f);
}

static void meta_case(const char *key, const char *value, const char *needle)
{
    fixture f;
    load_fixture(&f);
    if (value) json_object_set_new(f.meta, key, json_string(value));
    else json_object_del(f.meta, key);
    expect_fixture_refused(&f, needle);
    free_fixture(&f);
}

Test(model_file, bad_metadata)
{
    meta_case("format", "pytorch", "\"format\" must be \"audioclass\"");
    meta_case("format_version", "3", "format_version 3 is not supported");
    meta_case("format_version", "one", "\"format_version\" = \"one\"");
    meta_case("sample_rate", "0", "\"sample_rate\"");
    meta_case("labels", NULL, "metadata \"labels\" is missing");
    meta_case("labels", "[\"a\", \"b\"]", "outputs [6] but there are 2 labels");
    meta_case("labels", "[\"a\", 3, \"c\", \"d\", \"e\", \"f\"]", "\"labels\"[1]");
    meta_case("graph", "[{\"op\": \"conv1d\"", "metadata \"graph\" is not valid JSON");
    meta_case("graph", "[{\"op\": \"fft\"}]", "unknown op \"fft\"");
    meta_case("graph", "[]", "non-empty list");
    meta_case("input_shape", "[1]", "\"input_shape\"");
    meta_case("input_shape", "[2, 1000]", "one waveform");
    meta_case("policy", "{\"window\": 999, \"hop\": 300}", "policy window 999 differs from the input length 1000");
    meta_case("policy", "{\"window\": 1000, \"hop\": 0}", "\"hop\" must be an integer >= 1");
    /* the live streams' defaults (FORMAT.md "stream") */
    meta_case("stream", "[1]", "metadata \"stream\" is not a JSON object");
    meta_case("stream", "{\"threshold\": 1.5}", "\"threshold\" must be in (0, 1]");
    meta_case("stream", "{\"min_hops\": 0}", "\"min_hops\" must be 1..1000");
    meta_case("stream", "{\"hop\": -3}", "\"hop\" must be a positive number of samples");
    meta_case("stream", "{\"background\": [\"nope\"]}", "background label nope is not a label");
}

/* "compute": "bf16" / "bf16+int8" are taken (reduced precision where the CPU has it, FP32
 * elsewhere; info says which), anything else is refused by name. */
Test(model_file, compute_bf16_opt_in)
{
    meta_case("compute", "int4", "metadata \"compute\" must be \"fp32\", \"bf16\", \"int8\" or \"bf16+int8\", not \"int4\"");
    fixture f;
    load_fixture(&f);
    json_object_set_new(f.meta, "compute", json_string("bf16"));
    size_t len;
    unsigned char *buf = build(&f, &len);
    char err[AC_ERR_LEN];
    ac_model *m;
    cr_assert_eq(ac_model_load_memory(buf, len, "test", &m, err), AC_OK, "%s", err);
    cr_expect_str_eq(ac_model_get_info(m)->compute, "bf16");
    cr_expect_eq(ac_model_get_info(m)->bf16_active, ac_bf16_supported());
    ac_model_free(m);
    free(buf);
    free_fixture(&f);
    /* int8 applies to linear layers stored in I8; zoo1d's is F16 (its conv3 is I8) */
    load_fixture(&f);
    json_object_set_new(f.meta, "compute", json_string("bf16+int8"));
    buf = build(&f, &len);
    cr_assert_eq(ac_model_load_memory(buf, len, "test", &m, err), AC_OK, "%s", err);
    cr_expect_eq(ac_model_get_info(m)->bf16_active, ac_bf16_supported());
    cr_expect_eq(ac_model_get_info(m)->int8_active, 0, "no I8 linear layer: nothing runs in INT8");
    ac_model_free(m);
    free(buf);
    free_fixture(&f);
    load_fixture(&f);
    buf = build(&f, &len);
    cr_assert_eq(ac_model_load_memory(buf, len, "test", &m, err), AC_OK, "%s", err);
    cr_expect_str_eq(ac_model_get_info(m)->compute, "fp32", "no metadata: FP32");
    cr_expect_eq(ac_model_get_info(m)->bf16_active, 0);
    ac_model_free(m);
    free(buf);
    free_fixture(&f);
}

Test(model_file, graph_errors_name_the_layer)
{
    fixture f;
    load_fixture(&f);
    json_error_t je;
    json_t *g = json_loads(json_string_value(json_object_get(f.meta, "graph")), 0, &je);
    cr_assert(g);
    json_object_set_new(json_array_get(g, 0), "in_channels", json_integer(3));
    char *s = json_dumps(g, 0);
    json_object_set_new(f.meta, "graph", json_string(s));
    expect_fixture_refused(&f, "graph layer 0 (conv1d conv1): in_channels 3 but the input has 1 channels");
    free(s);
    json_decref(g);

    g = json_loads(json_string_value(json_object_get(f.meta, "graph")), 0, &je);
    json_array_insert_new(g, 0, json_pack("{s:s,s:s,s:i}", "op", "batchnorm", "name", "bn1", "num_features", 1));
    s = json_dumps(g, 0);
    json_object_set_new(f.meta, "graph", json_string(s));
    expect_fixture_refused(&f, "batchnorm must directly follow a conv");
    free(s);
    json_decref(g);
    free_fixture(&f);
}

Test(model_file, overlapping_and_holey_offsets)
{
    fixture f;
    load_fixture(&f);
    size_t len;
    unsigned char *buf = build(&f, &len);
    /* Shift one tensor's recorded end by 4 bytes: it now overlaps its neighbour. */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
    json_t *h = json_loadb((char *)buf + 8, hl, 0, NULL);
    json_t *e = json_object_get(h, "conv1.bias");
    json_int_t b = json_integer_value(json_array_get(json_object_get(e, "data_offsets"), 0));
    json_array_set_new(json_object_get(e, "data_offsets"), 0, json_integer(b + 4));
    json_array_set_new(json_object_get(e, "shape"), 0, json_integer(7));
    char *hs = json_dumps(h, JSON_COMPACT);
    size_t nl = strlen(hs);
    cr_assert_leq(nl, hl);
    memcpy(buf + 8, hs, nl);
    memset(buf + 8 + nl, ' ', hl - nl);
    expect_refused(buf, len, AC_ERR_BAD_MODEL, "hole of 4 bytes before tensor conv1.bias");
    free(hs);
    json_decref(h);
    free(buf);
    free_fixture(&f);
}

Test(model_file, missing_file_is_io_error)
{
    char err[AC_ERR_LEN];
    ac_model *m;
    cr_expect_eq(ac_model_load("/nonexistent/model.safetensors", &m, err), AC_ERR_IO);
    cr_expect(strstr(err, "/nonexistent/model.safetensors") != NULL);
    cr_expect_eq(ac_model_load(tu_src_path("tests"), &m, err), AC_ERR_IO, "a directory");
    ac_model_free(NULL); /* harmless */
}
