/* http_classify.c - POST /classify: parameters, body (raw or multipart) under the size and
 * memory limits, decode on the decode pool (connection suspended), submit to the scheduler;
 * answer on resume. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"
#include "min_duration.h"
#include "multipart.h"
#include "result_json.h"
#include "test_hooks.h"

#define DEFAULT_TOP_K 5
#define MAX_TOP_K 1000

int mem_hold(request *rq, size_t *slot, size_t bytes)
{
    http_server *s = rq->srv;
    if (bytes <= *slot) {
        atomic_fetch_sub(&s->mem_held, *slot - bytes);
        *slot = bytes;
        return 0;
    }
    const size_t more = bytes - *slot, limit = (size_t)s->cfg->max_memory;
    size_t now = atomic_load(&s->mem_held);
    do {
        if (limit && (now > limit || more > limit - now)) return -1;
    } while (!atomic_compare_exchange_weak(&s->mem_held, &now, now + more));
    *slot = bytes;
    return 0;
}

void mem_release_all(request *rq)
{
    mem_hold(rq, &rq->held_body, 0);
    mem_hold(rq, &rq->held_audio, 0);
    mem_hold(rq, &rq->held_answer, 0);
}

/* Frees the body buffer and gives its memory back. */
static void drop_body(request *rq)
{
    free(rq->body);
    rq->body = NULL;
    rq->audio_bytes = NULL;
    rq->len = rq->cap = rq->audio_len = 0;
    mem_hold(rq, &rq->held_body, 0);
}

/* Appends to the body, enforcing --max-body-bytes on what actually arrives (chunked
 * uploads carry no Content-Length to check up front) and --max-memory on the buffer.
 * Returns 0, -1 when over either (the body is dropped), -2 when out of memory. */
static int append(request *rq, const char *data, size_t n)
{
    size_t limit = (size_t)rq->srv->cfg->max_body_bytes;
    if (rq->too_large || rq->no_room || n > limit - rq->len) {
        if (!rq->no_room) rq->too_large = 1;
        drop_body(rq);
        return -1;
    }
    if (rq->len + n > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 64 * 1024;
        while (cap < rq->len + n) cap *= 2;
        if (cap > limit) cap = limit;
        if (rq->held_body >= rq->len + n) cap = rq->held_body; /* Content-Length: one buffer */
        if (mem_hold(rq, &rq->held_body, cap) != 0) {
            rq->no_room = 1;
            drop_body(rq);
            return -1;
        }
        char *b = realloc(rq->body, cap);
        if (!b) return -2;
        rq->body = b, rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, n);
    rq->len += n;
    return 0;
}

static enum MHD_Result too_large(request *rq)
{
    return reply_error(rq, hs_from_error(HS_BODY_TOO_LARGE), "body is larger than %.0f bytes",
                       rq->srv->cfg->max_body_bytes);
}

static enum MHD_Result no_room(request *rq)
{
    return reply_status(rq, AC_ERR_QUEUE_FULL,
                        "requests in progress hold the memory --max-memory allows; retry later");
}

static const char *const k_params[] = {"model", "top_k", "windows", "aggregate", "events", NULL};

/* model, top_k, windows, aggregate and events, from the query or (multipart) the form
 * fields. *ok = 0 when a 400/404 naming the problem is queued. */
static enum MHD_Result read_params(request *rq, int *ok)
{
    enum MHD_Result r = http_check_params(rq, k_params, ok);
    if (!*ok) return r;
    *ok = 0;
    int model;
    enum MHD_Result picked = http_pick_model(rq, &model);
    if (model < 0) return picked;
    const char *k = http_arg(rq, "top_k");
    rq->top_k = DEFAULT_TOP_K;
    if (k && (rq->top_k = (int)http_parse_int(k, 1, MAX_TOP_K)) < 0)
        return http_bad_param(rq, "top_k must be a whole number from 1 to 1000, not \"%s\"", k);
    const char *w = http_arg(rq, "windows");
    if (w && (rq->segments = http_parse_bool(w)) < 0)
        return http_bad_param(rq, "windows must be 0, 1, true or false, not \"%s\"", w);
    const char *a = http_arg(rq, "aggregate");
    if (a && strcmp(a, "mean") && strcmp(a, "max"))
        return http_bad_param(rq, "aggregate must be mean or max, not \"%s\"", a);
    rq->aggregate_max = a && !strcmp(a, "max");
    const char *ev = http_arg(rq, "events");
    if (ev && (rq->events = http_parse_bool(ev)) < 0)
        return http_bad_param(rq, "events must be 0, 1, true or false, not \"%s\"", ev);
    *ok = 1;
    return MHD_YES;
}

enum MHD_Result classify_begin(request *rq)
{
    const serve_config *cfg = rq->srv->cfg;
    const char *ct = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    rq->media = media_parse(ct, &rq->pcm);
    /* A form's fields are parameters too, known only once the body is in; the query's
     * names are checked now, so that a typo costs no upload. */
    int ok;
    enum MHD_Result r = rq->media == MEDIA_MULTIPART ? http_check_params(rq, k_params, &ok)
                                                     : read_params(rq, &ok);
    if (!ok) return r;
    if (rq->media == MEDIA_UNSUPPORTED) {
        char c[80];
        http_sanitize(c, sizeof c, ct);
        return reply_error(rq, hs_from_error(HS_UNSUPPORTED_MEDIA),
                           "Content-Type \"%s\" is not one this service reads; send " MEDIA_ACCEPTED, c);
    }
    if (rq->media == MEDIA_BAD_PCM)
        return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "Content-Type: %s", rq->pcm.why);
    /* Refuse an announced oversized body before reading any of it. */
    const char *cl = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || *end || (double)v > cfg->max_body_bytes) return too_large(rq);
        if (cfg->max_memory > 0 && (double)v > cfg->max_memory)
            return reply_error(rq, hs_from_error(HS_BODY_TOO_LARGE),
                               "body of %llu bytes is larger than --max-memory (%.0f bytes)", v,
                               cfg->max_memory);
        /* the whole announced body is held in memory: reserve it now or refuse it unread */
        if (mem_hold(rq, &rq->held_body, (size_t)v) != 0) return no_room(rq);
    }
    if (rq->media == MEDIA_MULTIPART) {
        char why[128];
        if (mp_boundary(ct, rq->boundary, why, sizeof why))
            return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "multipart/form-data: %s", why);
    }
    rq->state = RQ_READING;
    return MHD_YES;
}

/* The scheduler's completion callback, on the dispatcher thread. */
static void on_job_done(void *user, ac_job_result *r)
{
    request *rq = user;
    rq->result = *r; /* takes the prediction */
    if (r->batch_pos == 0) /* once per batch */
        metrics_batch(rq->reg->models[rq->model].name, r->batch_jobs, r->batch_windows,
                      r->inference_ms / 1e3);
    pthread_mutex_lock(&rq->srv->resume_mu);
    rq->state = RQ_DONE;
    struct MHD_Connection *c = rq->conn;
    pthread_mutex_unlock(&rq->srv->resume_mu);
    /* rq may be freed from here on (the handler runs, answers, and MHD completes the
     * request); the connection stays valid until it is resumed. */
    MHD_resume_connection(c);
}

/* The decode budget: decoded audio is held from --max-memory as its buffer grows. */
static ac_status audio_reserve(void *user, size_t bytes, char *err)
{
    request *rq = user;
    double limit = rq->srv->cfg->max_memory;
    if (limit > 0 && (double)bytes > limit)
        return ac_fail(err, AC_ERR_AUDIO_TOO_LONG,
                       "decoded audio needs more than %zu bytes, over --max-memory (%.0f bytes)",
                       bytes, limit);
    if (mem_hold(rq, &rq->held_audio, bytes) != 0)
        return ac_fail(err, AC_ERR_QUEUE_FULL,
                       "decoded audio (%zu bytes) does not fit in --max-memory (%.0f bytes) "
                       "beside the requests in progress; retry later", bytes, limit);
    return AC_OK;
}

/* A decode pool task: decode, then queue the clip (or store the failure) and resume. */
static void decode_task(void *arg)
{
    request *rq = arg;
    http_server *s = rq->srv;
    test_hold("decode");
    const registry_entry *e = &rq->reg->models[rq->model];
    ac_decode_opts o = {.target_rate = ac_model_get_info(e->model)->sample_rate,
                        .max_seconds = s->cfg->max_audio_seconds, .reserve = audio_reserve,
                        .user = rq};
    double t = http_now_ms();
    ac_status st;
    if (rq->pcm.kind == MEDIA_PCM) { /* raw PCM: decoded whole, then counted in the budget */
        st = ac_audio_decode_pcm(rq->audio_bytes, rq->audio_len, &rq->pcm.pcm, o.target_rate,
                                 o.max_seconds, &rq->audio, rq->decode_err);
        if (st == AC_OK) st = audio_reserve(rq, rq->audio.n * sizeof(float), rq->decode_err);
    } else {
        st = ac_audio_decode_opts(rq->audio_bytes, rq->audio_len, &o, &rq->audio, rq->decode_err);
    }
    rq->decode_ms = http_now_ms() - t;
    if (st == AC_OK) /* a few samples padded into a window of zeros would still get a label */
        st = ac_check_min_duration(e->model, (double)rq->audio.src_frames / rq->audio.src_rate,
                                   rq->decode_err);
    drop_body(rq);
    if (st) mem_hold(rq, &rq->held_audio, 0);
    atomic_fetch_sub(&s->decoding, 1);

    pthread_mutex_lock(&s->resume_mu);
    if (st == AC_OK) {
        st = ac_scheduler_submit(s->sched, e->slot, rq->audio.samples, rq->audio.n, on_job_done, rq);
        if (st == AC_OK) {
            rq->state = RQ_QUEUED; /* the job's callback resumes the connection */
            pthread_mutex_unlock(&s->resume_mu);
            return;
        }
        snprintf(rq->decode_err, sizeof rq->decode_err, "%s",
                 st == AC_ERR_QUEUE_FULL ? "inference queue is full, retry later" : "");
    }
    rq->decode_st = st;
    rq->state = RQ_DONE;
    struct MHD_Connection *c = rq->conn;
    pthread_mutex_unlock(&s->resume_mu);
    MHD_resume_connection(c);
}

/* Multipart: the one field `file` is the audio (a slice of the body); any other field is a
 * parameter (http_form_field; a refusal is answered by read_params). */
typedef struct file_pick { request *rq; const char *data; size_t len; int n; } file_pick;
static int pick_file(void *user, const mp_part *p)
{
    file_pick *f = user;
    if (strcmp(p->name, "file")) {
        http_form_field(f->rq, p->name, p->data, 0, p->len);
        return 0;
    }
    if (f->n++ == 0) {
        f->data = p->data, f->len = p->len;
        if (p->content_type[0]) media_parse(p->content_type, &f->rq->pcm); /* may be raw PCM */
    }
    return 0;
}

/* The whole body is here: check it, then hand it to the decode pool. */
static enum MHD_Result finish_body(request *rq)
{
    http_server *s = rq->srv;
    if (rq->status) return MHD_YES; /* already answered (body over the limit) */
    if (rq->too_large) return too_large(rq);
    if (rq->no_room) return no_room(rq);
    rq->audio_bytes = rq->body;
    rq->audio_len = rq->len;
    if (rq->media == MEDIA_MULTIPART) {
        file_pick f = {.rq = rq};
        char why[128];
        if (mp_parse(rq->body ? rq->body : "", rq->len, rq->boundary, pick_file, &f, why, sizeof why))
            return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "malformed multipart/form-data body: %s", why);
        if (f.n == 0)
            return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "multipart body has no field \"file\"");
        if (f.n > 1)
            return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "send one field \"file\" per request");
        rq->audio_bytes = f.data;
        rq->audio_len = f.len;
        int ok; /* the form's fields are parameters too */
        enum MHD_Result r = read_params(rq, &ok);
        if (!ok) return r;
        if (rq->pcm.kind == MEDIA_BAD_PCM)
            return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "field \"file\" Content-Type: %s",
                               rq->pcm.why);
    }
    /* Decoding runs on the decode pool, never on this MHD thread: a slow decode must not
     * hold up /healthz or other connections served by the same thread. */
    pthread_mutex_lock(&s->resume_mu);
    atomic_fetch_add(&s->decoding, 1);
    int ok = dp_submit(s->decoders, decode_task, rq) == 0;
    if (ok) {
        rq->state = RQ_DECODING;
        MHD_suspend_connection(rq->conn);
    } else {
        atomic_fetch_sub(&s->decoding, 1);
    }
    pthread_mutex_unlock(&s->resume_mu);
    if (ok) return MHD_YES;
    drop_body(rq);
    return reply_status(rq, AC_ERR_QUEUE_FULL, "every decoder is busy and the decode queue is full, retry later");
}

static enum MHD_Result answer(request *rq)
{
    ac_job_result *r = &rq->result;
    /* The samples are not needed any more: free them before the answer is built, so a
     * request never holds its audio and its answer at once. */
    free(rq->audio.samples);
    rq->audio.samples = NULL;
    mem_hold(rq, &rq->held_audio, 0);
    if (rq->decode_st) return reply_status(rq, rq->decode_st, rq->decode_err);
    if (r->status) return reply_status(rq, r->status, r->err);
    const registry_entry *e = &rq->reg->models[rq->model];
    ac_result_opts ro = {.top_k = rq->top_k, .segments = rq->segments, .aggregate_max = rq->aggregate_max,
                         .events = rq->events};
    json_t *o = ac_result_json(e->name, e->model, &rq->audio, &r->pred, &ro);
    ac_prediction_free(&r->pred);
    /* jansson drops what it cannot allocate: a short list would be a wrong 200 */
    int n_labels = ac_model_get_info(e->model)->n_labels;
    size_t want = (size_t)(rq->top_k < n_labels ? rq->top_k : n_labels);
    if (o && json_array_size(json_object_get(o, "predictions")) != want) {
        json_decref(o);
        o = NULL;
    }
    if (!o) return reply_status(rq, AC_ERR_NOMEM, "out of memory building the response");
    double total = http_now_ms() - rq->t0_ms;
    int set = json_object_set_new(o, "timing_ms",
                                  json_pack("{s:f,s:f,s:f,s:f}", "decode", rq->decode_ms, "queue",
                                            r->queue_ms, "inference", r->inference_ms, "total", total));
    set |= json_object_set_new(o, "request_id", json_string(rq->id));
    const ac_audio *a = &rq->audio;
    size_t len = 0;
    char *text = set ? NULL : ac_json_text(o, &len);
    json_decref(o);
    if (!text) return reply_status(rq, AC_ERR_NOMEM, "out of memory building the response");
    /* the answer is held until it is sent: it counts against --max-memory too */
    if (mem_hold(rq, &rq->held_answer, len + 1) != 0) {
        free(text);
        return reply_status(rq, AC_ERR_QUEUE_FULL,
                            "the answer does not fit in --max-memory beside the requests in "
                            "progress; retry later");
    }
    metrics_classified(e->name, rq->decode_ms / 1e3, r->queue_ms / 1e3,
                       a->src_rate ? (double)a->src_frames / a->src_rate : 0.0);
    text[len++] = '\n'; /* replaces the NUL, as reply_json does */
    return reply_owned(rq, 200, "application/json", text, len);
}

enum MHD_Result classify_step(request *rq, const char *data, size_t *size)
{
    if (*size) {
        size_t n = *size;
        *size = 0;
        rq->bytes_in += n;
        if (rq->too_large || rq->no_room) {
            /* MHD (0.9.x) cannot answer in the middle of a body, so an oversized chunked
             * upload is read and dropped, then answered 413 (503 for no room). A client that
             * keeps sending far past the limit is cut off instead of being read forever. */
            double limit = rq->srv->cfg->max_body_bytes;
            return (double)rq->bytes_in > 2 * limit + 1048576.0 ? MHD_NO : MHD_YES;
        }
        if (append(rq, data, n) == -2) {
            /* out of memory for the body: read and drop the rest, answer 503 at the end */
            rq->no_room = 1;
            drop_body(rq);
        }
        return MHD_YES;
    }
    pthread_mutex_lock(&rq->srv->resume_mu);
    rq_state state = rq->state;
    pthread_mutex_unlock(&rq->srv->resume_mu);
    switch (state) {
    case RQ_READING: return finish_body(rq);
    case RQ_DONE: return answer(rq);
    case RQ_DECODING:
    case RQ_QUEUED: break; /* not resumed yet: nothing to do */
    }
    return MHD_YES;
}

void classify_cleanup(request *rq)
{
    drop_body(rq);
    ac_audio_free(&rq->audio);
    ac_prediction_free(&rq->result.pred);
}
