/* http_classify.c - POST /classify: parameters, body (raw or multipart) under the size
 * limit, decode on the HTTP worker, submit to the scheduler, suspend; answer on resume. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"
#include "min_duration.h"
#include "result_json.h"

#define DEFAULT_TOP_K 5
#define MAX_TOP_K 1000

/* --max-upload-bytes: raises this request's share of the server-wide pool of upload memory
 * to `bytes`. Returns 0, or -1 when that would take the pool over the limit. */
static int reserve_upload(request *rq, size_t bytes)
{
    http_server *s = rq->srv;
    if (bytes <= rq->reserved) return 0;
    const size_t more = bytes - rq->reserved, limit = (size_t)s->cfg->max_upload_bytes;
    size_t now = atomic_load(&s->upload_bytes);
    do {
        if (limit && (now > limit || more > limit - now)) return -1;
    } while (!atomic_compare_exchange_weak(&s->upload_bytes, &now, now + more));
    rq->reserved = bytes;
    return 0;
}

/* Frees the body buffer and gives its reservation back. */
static void drop_body(request *rq)
{
    free(rq->body);
    rq->body = NULL;
    rq->len = rq->cap = 0;
    atomic_fetch_sub(&rq->srv->upload_bytes, rq->reserved);
    rq->reserved = 0;
}

/* Appends to the body, enforcing --max-body-bytes on what actually arrives (chunked
 * uploads carry no Content-Length to check up front) and --max-upload-bytes on the buffer.
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
        if (rq->reserved >= rq->len + n) cap = rq->reserved; /* Content-Length: one buffer */
        if (reserve_upload(rq, cap) != 0) {
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

/* MHD_PostProcessor callback: collects field `file`; any other field is a parameter
 * (http_form_field), checked once the body is in. */
static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    request *rq = cls;
    if (!key) return MHD_YES;
    if (strcmp(key, "file")) {
        http_form_field(rq, key, data, off, size); /* a refusal is answered at the end */
        return MHD_YES;
    }
    if (off == 0) rq->n_file_parts++; /* a new part starts at offset 0 */
    if (rq->n_file_parts > 1) return MHD_YES; /* answered as an error at the end */
    if (off == 0 && content_type) /* the part may be raw PCM: audio/L16;rate=... */
        media_parse(content_type, &rq->pcm);
    if (size == 0) return MHD_YES;
    return append(rq, data, size) == 0 ? MHD_YES : MHD_NO;
}

static enum MHD_Result too_large(request *rq)
{
    return reply_error(rq, hs_from_error(HS_BODY_TOO_LARGE), "body is larger than %.0f bytes",
                       rq->srv->cfg->max_body_bytes);
}

static enum MHD_Result no_room(request *rq)
{
    return reply_status(rq, AC_ERR_QUEUE_FULL,
                        "uploads being received fill --max-upload-bytes; retry later");
}

static const char *const k_params[] = {"model", "top_k", "windows", NULL};

/* model, top_k and windows, from the query or (multipart) the form fields. *ok = 0 when a
 * 400/404 naming the problem is queued. */
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
        /* the whole announced body is held in memory: reserve it now or refuse it unread */
        if (reserve_upload(rq, (size_t)v) != 0) return no_room(rq);
    }
    if (rq->media == MEDIA_MULTIPART) {
        rq->pp = MHD_create_post_processor(rq->conn, 64 * 1024, on_part, rq);
        if (!rq->pp)
            return reply_error(rq, hs_from_error(HS_BAD_REQUEST),
                               "multipart/form-data without a usable boundary");
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
        metrics_batch(r->model, r->batch_jobs, r->batch_windows, r->inference_ms / 1e3);
    pthread_mutex_lock(&rq->srv->resume_mu);
    rq->state = RQ_DONE;
    struct MHD_Connection *c = rq->conn;
    pthread_mutex_unlock(&rq->srv->resume_mu);
    /* rq may be freed from here on (the handler runs, answers, and MHD completes the
     * request); the connection stays valid until it is resumed. */
    MHD_resume_connection(c);
}

/* The whole body is here: decode it, then queue the clip. */
static enum MHD_Result finish_body(request *rq)
{
    http_server *s = rq->srv;
    if (rq->pp) {
        /* Flushes the last part. MHD_NO: the body ended inside a part (no closing
         * boundary), so the file is cut short: refuse it rather than classify a fragment. */
        if (MHD_destroy_post_processor(rq->pp) != MHD_YES) rq->pp_failed = 1;
        rq->pp = NULL;
    }
    if (rq->status) return MHD_YES; /* already answered (body over the limit) */
    if (rq->too_large) return too_large(rq);
    if (rq->no_room) return no_room(rq);
    if (rq->pp_failed)
        return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "malformed multipart/form-data body");
    if (rq->media == MEDIA_MULTIPART && rq->n_file_parts == 0)
        return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "multipart body has no field \"file\"");
    if (rq->n_file_parts > 1)
        return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "send one field \"file\" per request");
    if (rq->media == MEDIA_MULTIPART) {
        int ok;
        enum MHD_Result r = read_params(rq, &ok);
        if (!ok) return r;
        if (rq->pcm.kind == MEDIA_BAD_PCM)
            return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "field \"file\" Content-Type: %s",
                               rq->pcm.why);
    }

    /* Decoding runs here, on the MHD worker thread: it is bounded by the body and duration
     * limits, and keeping it off the dispatcher keeps inference batches flowing. */
    const registry_entry *e = &s->reg->models[rq->model];
    char err[AC_ERR_LEN];
    double t = http_now_ms();
    int rate = ac_model_get_info(e->model)->sample_rate;
    ac_status st = rq->pcm.kind == MEDIA_PCM
                       ? ac_audio_decode_pcm(rq->body, rq->len, &rq->pcm.pcm, rate,
                                             s->cfg->max_audio_seconds, &rq->audio, err)
                       : ac_audio_decode(rq->body, rq->len, rate, s->cfg->max_audio_seconds,
                                         &rq->audio, err);
    rq->decode_ms = http_now_ms() - t;
    drop_body(rq);
    if (st == AC_OK) /* a few samples padded into a window of zeros would still get a label */
        st = ac_check_min_duration(e->model, (double)rq->audio.src_frames / rq->audio.src_rate, err);
    if (st) return reply_status(rq, st, err);

    pthread_mutex_lock(&s->resume_mu);
    st = ac_scheduler_submit(s->sched, rq->model, rq->audio.samples, rq->audio.n, on_job_done, rq);
    if (st == AC_OK) {
        rq->state = RQ_QUEUED;
        MHD_suspend_connection(rq->conn);
    }
    pthread_mutex_unlock(&s->resume_mu);
    if (st == AC_OK) return MHD_YES;
    return reply_status(rq, st, st == AC_ERR_QUEUE_FULL ? "inference queue is full, retry later" : NULL);
}

static enum MHD_Result answer(request *rq)
{
    http_server *s = rq->srv;
    ac_job_result *r = &rq->result;
    if (r->status) return reply_status(rq, r->status, r->err);
    const registry_entry *e = &s->reg->models[rq->model];
    json_t *o = ac_result_json(e->name, e->model, &rq->audio, &r->pred, rq->top_k, rq->segments);
    if (!o) return reply_status(rq, AC_ERR_NOMEM, "out of memory building the response");
    double total = http_now_ms() - rq->t0_ms;
    json_object_set_new(o, "timing_ms",
                        json_pack("{s:f,s:f,s:f,s:f}", "decode", rq->decode_ms, "queue", r->queue_ms,
                                  "inference", r->inference_ms, "total", total));
    json_object_set_new(o, "request_id", json_string(rq->id));
    const ac_audio *a = &rq->audio;
    metrics_classified(rq->model, rq->decode_ms / 1e3, r->queue_ms / 1e3,
                       a->src_rate ? (double)a->src_frames / a->src_rate : 0.0);
    return reply_json(rq, 200, o);
}

enum MHD_Result classify_step(request *rq, const char *data, size_t *size)
{
    if (*size) {
        size_t n = *size;
        *size = 0;
        rq->bytes_in += n;
        if (rq->too_large || rq->no_room || rq->pp_failed) {
            /* MHD (0.9.x) cannot answer in the middle of a body, so an oversized chunked
             * upload is read and dropped, then answered 413 (503 for no room). A client that
             * keeps sending far past the limit is cut off instead of being read forever. */
            double limit = rq->srv->cfg->max_body_bytes;
            return (double)rq->bytes_in > 2 * limit + 1048576.0 ? MHD_NO : MHD_YES;
        }
        int rc;
        if (rq->pp) {
            rc = MHD_post_process(rq->pp, data, n) == MHD_YES ? 0 : (rq->too_large || rq->no_room ? -1 : -3);
            if (rc == -3) rq->pp_failed = 1;
        } else {
            rc = append(rq, data, n);
        }
        if (rc == -2) return MHD_NO; /* out of memory: drop the connection */
        return MHD_YES;
    }
    pthread_mutex_lock(&rq->srv->resume_mu);
    rq_state state = rq->state;
    pthread_mutex_unlock(&rq->srv->resume_mu);
    switch (state) {
    case RQ_READING: return finish_body(rq);
    case RQ_DONE: return answer(rq);
    case RQ_QUEUED: break; /* not resumed yet: nothing to do */
    }
    return MHD_YES;
}

void classify_cleanup(request *rq)
{
    if (rq->pp) MHD_destroy_post_processor(rq->pp);
    rq->pp = NULL;
    drop_body(rq);
    ac_audio_free(&rq->audio);
    ac_prediction_free(&rq->result.pred);
}
