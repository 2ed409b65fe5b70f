/* models_json.c - model metadata as JSON for the /models routes. */
#include "models_json.h"

#include "min_duration.h"

#include <math.h>

/* The model card's summary, from the file's metadata: the keys it has of these (FORMAT.md
 * names description, license and training; task, data and accuracy are read when a file
 * carries them). Nothing is filled in for a missing key. */
static json_t *card_json(const ac_model *m)
{
    static const char *const keys[] = {"task", "data", "description", "license", "accuracy", "training"};
    json_t *o = json_object();
    for (size_t i = 0; o && i < sizeof keys / sizeof *keys; i++) {
        const char *v = ac_model_meta(m, keys[i]);
        if (v) json_object_set_new(o, keys[i], json_string(v));
    }
    return o;
}

/* How GET /stream runs the model: incremental for causal models whose answer is about the
 * recent past, sliding windows otherwise (engine/stream.h), with the event rule's defaults. */
static json_t *streaming_json(const ac_model *m)
{
    const ac_model_info *in = ac_model_get_info(m);
    ac_detect_params dp;
    ac_detect_defaults(m, &dp, NULL);
    const int hop = dp.hop ? dp.hop : in->hop;
    json_t *bg = json_array();
    for (int i = 0; bg && i < in->n_labels && i < AC_MAX_LABELS; i++)
        if (dp.background[i]) json_array_append_new(bg, json_string(in->labels[i]));
    json_t *o = json_pack("{s:b,s:s,s:f,s:f,s:i,s:o}", "causal", in->causal, "mode",
                          ac_stream_auto_mode(m) == AC_STREAM_INCREMENTAL ? "incremental" : "window", "hop_s",
                          round((double)hop / in->sample_rate * 1e4) / 1e4, "threshold", (double)dp.threshold,
                          "min_hops", dp.min_hops, "background", bg);
    const char *why = !in->causal ? in->causal_why
                      : in->running_mean ? "its answer is a mean over all time: streamed by windows" : NULL;
    if (o && why) json_object_set_new(o, "why_window", json_string(why));
    return o;
}

json_t *model_summary_json(const registry_entry *e)
{
    const ac_model_info *in = ac_model_get_info(e->model);
    json_t *o = json_pack("{s:s,s:s,s:i,s:f,s:i,s:I,s:I,s:s}", "name", e->name, "arch", in->arch,
                     "sample_rate", in->sample_rate, "window_s",
                     round((double)in->window / in->sample_rate * 1e4) / 1e4, "n_labels",
                     in->n_labels, "parameters", (json_int_t)in->n_params, "flops_per_window",
                     (json_int_t)in->flops, "sha256", in->sha256);
    if (o) json_object_set_new(o, "card", card_json(e->model));
    /* what the file asks for, and what runs here (BF16 needs AVX-512 BF16) */
    if (o) json_object_set_new(o, "compute", json_pack("{s:s,s:s}", "requested", in->compute, "active",
                                                       ac_model_compute_active(in)));
    if (o) json_object_set_new(o, "streaming", streaming_json(e->model));
    if (o) /* shorter clips are refused with 422 (min_duration.h) */
        json_object_set_new(o, "min_duration_s", json_real(round(ac_min_duration_s(e->model) * 1e4) / 1e4));
    return o;
}

static json_t *layers_json(const ac_model *m)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < ac_model_layer_count(m); i++) {
        ac_layer_info L;
        ac_model_layer_info(m, i, &L);
        char in[64], out[64];
        ac_shape_str(L.in, in, sizeof in);
        ac_shape_str(L.out, out, sizeof out);
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I}", "id", L.id, "op", L.kind, "input", in, "output", out,
                              "flops", (json_int_t)L.flops);
        if (o && L.name[0]) json_object_set_new(o, "name", json_string(L.name));
        if (o && L.folded[0]) json_object_set_new(o, "batchnorm_folded", json_string(L.folded));
        if (o && L.relu) json_object_set_new(o, "relu", json_true());
        if (o && L.pooled) json_object_set_new(o, "maxpool", json_true());
        json_array_append_new(arr, o);
    }
    return arr;
}

json_t *model_detail_json(const registry_entry *e)
{
    const ac_model_info *in = ac_model_get_info(e->model);
    json_t *o = model_summary_json(e);
    if (!o) return NULL;
    json_t *labels = json_array();
    for (int i = 0; labels && i < in->n_labels; i++)
        json_array_append_new(labels, json_string(in->labels[i]));
    /* input_shape is JSON in the file; pass it on as JSON when it parses. */
    const char *shape_s = ac_model_meta(e->model, "input_shape");
    json_t *shape = shape_s ? json_loads(shape_s, JSON_DECODE_ANY, NULL) : NULL;
    json_object_set_new(o, "description", json_string(in->description));
    json_object_set_new(o, "license", json_string(in->license));
    json_object_set_new(o, "training", json_string(in->training));
    json_object_set_new(o, "format_version", json_integer(in->format_version));
    json_object_set_new(o, "input_shape", shape ? shape : json_null());
    json_object_set_new(o, "policy",
                        json_pack("{s:i,s:i,s:i}", "window", in->window, "hop", in->hop, "pad", in->pad));
    json_object_set_new(o, "labels", labels);
    json_object_set_new(o, "file_bytes", json_integer((json_int_t)in->file_bytes));
    json_object_set_new(o, "layers", layers_json(e->model));
    return o;
}
