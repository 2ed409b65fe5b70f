/* result_json.c - builds the classification JSON (see result_json.h). */
#include "result_json.h"

#include <math.h>
#include <stdlib.h>

/* Printers dump reals with JSON_REAL_PRECISION(6): more digits would be noise. */
static json_t *score(float v) { return json_real((double)v); }

json_t *ac_predictions_json(const ac_model *m, const float *probs, int k)
{
    const ac_model_info *info = ac_model_get_info(m);
    int idx[1024];
    if (k > 1024) k = 1024;
    k = ac_top_k(probs, info->n_labels, k, idx);
    json_t *arr = json_array();
    for (int i = 0; i < k && arr; i++) /* all or nothing: a short list is never an answer */
        if (json_array_append_new(arr, json_pack("{s:s,s:o}", "label", info->labels[idx[i]], "score",
                                                 score(probs[idx[i]]))) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    return arr; /* NULL when out of memory: the caller's json_pack then fails too */
}

static double r4(double t) { return round(t * 1e4) / 1e4; }

json_t *ac_event_json(const ac_model *m, const ac_event *ev)
{
    return json_pack("{s:s,s:s,s:f,s:f,s:o}", "type", "event", "label",
                     ac_model_get_info(m)->labels[ev->label], "t_start_s", r4(ev->t_start_s), "t_end_s",
                     r4(ev->t_end_s), "score", score(ev->score));
}

/* The detection rule over the windows in order; window spans clipped to the recording. */
static json_t *events_json(const ac_model *m, const ac_audio *audio, const ac_prediction *p)
{
    const ac_model_info *info = ac_model_get_info(m);
    ac_detect_params dp;
    ac_detector d;
    ac_detect_defaults(m, &dp, NULL);
    ac_detector_init(&d, &dp, info->n_labels);
    const double win_s = (double)info->window / info->sample_rate;
    const double dur = (double)audio->n / info->sample_rate;
    json_t *arr = json_array();
    for (size_t i = 0; i < p->n_windows && arr; i++) {
        double t0 = ac_model_window_time(m, audio->n, i), t1 = t0 + win_s;
        ac_event ev;
        if (!ac_detector_feed(&d, p->window_probs + i * (size_t)info->n_labels, t0 < 0 ? 0 : t0,
                              t1 > dur ? dur : t1, &ev))
            continue;
        json_t *e = ac_event_json(m, &ev);
        if (e) json_object_del(e, "type");
        if (!e || json_array_append_new(arr, e) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

json_t *ac_result_json(const char *model_name, const ac_model *m, const ac_audio *audio,
                       const ac_prediction *p, const ac_result_opts *opt)
{
    const ac_model_info *info = ac_model_get_info(m);
    const int top_k = opt->top_k, segments = opt->segments;
    float *agg = p->probs, *maxed = NULL;
    if (opt->aggregate_max) { /* each label's best window */
        if (!(maxed = malloc((size_t)info->n_labels * sizeof *maxed))) return NULL;
        for (int l = 0; l < info->n_labels; l++) {
            maxed[l] = 0;
            for (size_t i = 0; i < p->n_windows; i++)
                if (p->window_probs[i * (size_t)info->n_labels + l] > maxed[l])
                    maxed[l] = p->window_probs[i * (size_t)info->n_labels + l];
        }
        agg = maxed;
    }
    int best;
    ac_top_k(agg, info->n_labels, 1, &best);
    double duration = audio->src_rate ? (double)audio->src_frames / audio->src_rate : 0.0;
    json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:f,s:i,s:i,s:s,s:s,s:I}", "model", model_name,
                          "label", info->labels[best], "score", score(agg[best]),
                          "predictions", ac_predictions_json(m, agg, top_k), "duration_s",
                          round(duration * 1e4) / 1e4, "sample_rate", audio->src_rate,
                          "channels", audio->src_channels, "format", audio->container,
                          "encoding", audio->encoding, "windows", (json_int_t)p->n_windows);
    free(maxed);
    if (o && json_object_set_new(o, "aggregate", json_string(opt->aggregate_max ? "max" : "mean")) != 0) {
        json_decref(o);
        return NULL;
    }
    if (o && opt->events) {
        json_t *ev = events_json(m, audio, p);
        if (!ev || json_object_set_new(o, "events", ev) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    if (o && segments) {
        json_t *segs = json_array();
        double win_s = (double)info->window / info->sample_rate;
        for (size_t i = 0; i < p->n_windows && segs; i++) {
            const float *wp = p->window_probs + i * (size_t)info->n_labels;
            int b;
            ac_top_k(wp, info->n_labels, 1, &b);
            double t0 = ac_model_window_time(m, audio->n, i);
            if (json_array_append_new(segs, json_pack("{s:f,s:f,s:s,s:o,s:o}", "start_s",
                                                       round(t0 * 1e4) / 1e4, "end_s",
                                                       round((t0 + win_s) * 1e4) / 1e4, "label",
                                                       info->labels[b], "score", score(wp[b]),
                                                       "predictions", ac_predictions_json(m, wp, top_k))) != 0) {
                json_decref(segs);
                segs = NULL;
            }
        }
        if (!segs || json_object_set_new(o, "segments", segs) != 0) {
            json_decref(o); /* out of memory: no answer rather than one without its segments */
            return NULL;
        }
    }
    return o;
}

char *ac_json_text(const json_t *o, size_t *len)
{
    const size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(6);
    size_t need = o ? json_dumpb(o, NULL, 0, flags) : 0;
    char *text = need ? malloc(need + 1) : NULL;
    if (text && json_dumpb(o, text, need, flags) != need) {
        free(text);
        text = NULL;
    }
    if (text) text[need] = 0;
    if (len) *len = text ? need : 0;
    return text;
}

json_t *ac_error_json(ac_status st, const char *msg)
{
    return json_pack("{s:{s:s,s:s}}", "error", "code", ac_status_name(st), "message",
                     msg && msg[0] ? msg : ac_strerror(st));
}
