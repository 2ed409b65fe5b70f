/* stream_session.c - a live stream's work: PCM -> executor -> messages (stream_session.h). */
#include "stream_session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "result_json.h"

#define MAX_EVENTS_KEPT 10000 /* the summary lists at most this many */

struct stream_session {
    const ac_model *m;
    char name[64];
    stream_params p;
    int hop;                 /* samples at the model's rate */
    ac_pcm_stream *pcm;
    ac_stream *st;
    ac_detector det;
    uint64_t results;
    json_t *events;          /* for the summary */
    /* during a feed: */
    stream_msg_fn fn;
    void *ctx;
    int failed;              /* out of memory while building a message */
};

static double r4(double t) { return round(t * 1e4) / 1e4; }

ac_status stream_session_create(const ac_model *m, const char *name, const stream_params *p,
                                stream_session **out, char *err)
{
    *out = NULL;
    const ac_model_info *in = ac_model_get_info(m);
    ac_detect_params dp;
    ac_detect_defaults(m, &dp, err);
    ac_status st = AC_OK;
    const int rate = p->rate ? p->rate : in->sample_rate;
    if (rate < AC_AUDIO_MIN_RATE || rate > AC_AUDIO_MAX_RATE)
        return ac_fail(err, AC_ERR_INVALID_ARG, "rate must be %d..%d Hz, not %d", AC_AUDIO_MIN_RATE,
                       AC_AUDIO_MAX_RATE, rate);
    int hop = dp.hop ? dp.hop : in->hop;
    if (p->hop_ms > 0) hop = (int)lround(p->hop_ms * in->sample_rate / 1000.0);
    if (p->hop_ms < 0 || p->hop_ms > 10000 || hop < 1)
        return ac_fail(err, AC_ERR_INVALID_ARG, "hop_ms must be from %.3g to 10000 ms",
                       1000.0 / in->sample_rate);
    if (p->threshold > 1) return ac_fail(err, AC_ERR_INVALID_ARG, "threshold must be in (0, 1]");
    if (p->threshold > 0) dp.threshold = p->threshold;
    stream_session *s = calloc(1, sizeof *s);
    if (!s) return ac_fail(err, AC_ERR_NOMEM, "out of memory for a stream");
    s->m = m, s->p = *p, s->p.rate = rate, s->hop = hop;
    snprintf(s->name, sizeof s->name, "%s", name);
    ac_detector_init(&s->det, &dp, in->n_labels);
    ac_stream_config cfg = {.mode = p->mode, .hop = hop};
    if (!(s->events = json_array())) st = ac_fail(err, AC_ERR_NOMEM, "out of memory for a stream");
    if (!st) st = ac_pcm_stream_create(p->encoding, rate, in->sample_rate, &s->pcm, err);
    if (!st) st = ac_stream_create(m, &cfg, &s->st, err);
    if (st) {
        stream_session_free(s);
        return st;
    }
    *out = s;
    return AC_OK;
}

void stream_session_free(stream_session *s)
{
    if (!s) return;
    ac_pcm_stream_free(s->pcm);
    ac_stream_free(s->st);
    json_decref(s->events);
    free(s);
}

json_t *stream_session_start_json(const stream_session *s)
{
    const ac_model_info *in = ac_model_get_info(s->m);
    return json_pack("{s:s,s:s,s:s,s:i,s:i,s:f,s:f,s:f,s:i}", "type", "start", "model", s->name, "mode",
                     ac_stream_get_mode(s->st) == AC_STREAM_INCREMENTAL ? "incremental" : "window", "rate",
                     s->p.rate, "sample_rate", in->sample_rate, "hop_s", r4((double)s->hop / in->sample_rate),
                     "window_s", r4((double)in->window / in->sample_rate), "threshold",
                     (double)s->det.p.threshold, "min_hops", s->det.p.min_hops);
}

static void send(stream_session *s, json_t *msg)
{
    if (!msg) {
        s->failed = 1;
        return;
    }
    s->fn(s->ctx, msg);
}

/* The executor's answer for samples [0, end): a result, and an event when one completes. */
static void on_answer(void *ctx, uint64_t end, const float *probs, int n_labels)
{
    stream_session *s = ctx;
    const ac_model_info *in = ac_model_get_info(s->m);
    const double t1 = (double)end / in->sample_rate, t0 = fmax(0.0, t1 - (double)in->window / in->sample_rate);
    int best;
    ac_top_k(probs, n_labels, 1, &best);
    json_t *preds = ac_predictions_json(s->m, probs, s->p.top_k);
    s->results++;
    send(s, preds ? json_pack("{s:s,s:f,s:f,s:s,s:f,s:o}", "type", "result", "t_start_s", r4(t0), "t_end_s",
                              r4(t1), "label", in->labels[best], "score", (double)probs[best],
                              "predictions", preds)
                  : NULL);
    ac_event ev;
    if (ac_detector_feed(&s->det, probs, t0, t1, &ev)) {
        json_t *e = ac_event_json(s->m, &ev);
        if (e && json_array_size(s->events) < MAX_EVENTS_KEPT) json_array_append(s->events, e);
        send(s, e);
    }
}

static ac_status run(stream_session *s, const float *x, size_t n, stream_msg_fn fn, void *ctx, char *err)
{
    s->fn = fn, s->ctx = ctx;
    ac_status st = ac_stream_push(s->st, x, n, on_answer, s, err);
    if (!st && s->failed) st = ac_fail(err, AC_ERR_NOMEM, "out of memory building stream messages");
    return st;
}

ac_status stream_session_feed(stream_session *s, const void *bytes, size_t len, stream_msg_fn fn,
                              void *ctx, char *err)
{
    const float *x;
    size_t n;
    ac_status st = ac_pcm_stream_feed(s->pcm, bytes, len, &x, &n, err);
    return st ? st : run(s, x, n, fn, ctx, err);
}

ac_status stream_session_end(stream_session *s, stream_msg_fn fn, void *ctx, char *err)
{
    const float *x;
    size_t n, partial;
    ac_status st = ac_pcm_stream_flush(s->pcm, &x, &n, &partial, err);
    if (!st) st = run(s, x, n, fn, ctx, err);
    if (st) return st;
    const ac_model_info *in = ac_model_get_info(s->m);
    uint64_t samples = ac_stream_samples(s->st);
    json_t *sum = json_pack("{s:s,s:s,s:I,s:f,s:I,s:O,s:I}", "type", "summary", "model", s->name, "samples",
                            (json_int_t)samples, "duration_s", r4((double)samples / in->sample_rate), "results",
                            (json_int_t)s->results, "events", s->events, "partial_bytes_dropped",
                            (json_int_t)partial);
    if (!sum) return ac_fail(err, AC_ERR_NOMEM, "out of memory building the summary");
    fn(ctx, sum);
    return AC_OK;
}


unsigned long long stream_session_samples(const stream_session *s) { return s ? ac_stream_samples(s->st) : 0; }
