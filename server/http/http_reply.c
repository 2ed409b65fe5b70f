/* http_reply.c - builds and queues responses with the headers every response carries. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"
#include "result_json.h"

double http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void common_headers(request *rq, struct MHD_Response *r, int status)
{
    const serve_config *cfg = rq->srv->cfg;
    MHD_add_response_header(r, "X-Request-Id", rq->id);
    if (rq->allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rq->allow);
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == 426) { /* RFC 6455 4.2.2: the version this server speaks */
        MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
        MHD_add_response_header(r, "Sec-WebSocket-Version", "13");
    }
    /* Capacity problems are short-lived: tell clients to come back rather than give up. */
    if (status == 503) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (cfg->cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", cfg->cors_origin);
        MHD_add_response_header(r, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
        if (strcmp(cfg->cors_origin, "*")) MHD_add_response_header(r, "Vary", "Origin");
        if (rq->preflight) {
            MHD_add_response_header(r, "Access-Control-Allow-Methods", rq->allow);
            MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                    "Content-Type, Authorization, X-API-Key, X-Request-Id");
            MHD_add_response_header(r, "Access-Control-Max-Age", "600");
        }
    }
    /* A draining server closes each connection after its answer, so keep-alive clients
     * move to another replica instead of sending more work here. */
    if (atomic_load(&rq->srv->draining) || rq->close)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Nothing could be allocated for the answer: the prebuilt 503 (no X-Request-Id: headers
 * cannot be added to a shared response). Out of memory is then still an answer. */
static enum MHD_Result queue_oom(request *rq)
{
    http_server *s = rq->srv;
    if (!s->oom) return MHD_NO;
    enum MHD_Result ok = MHD_queue_response(rq->conn, 503, s->oom);
    if (ok == MHD_YES) {
        rq->status = 503;
        metrics_request(rq->route, 503, (http_now_ms() - rq->t0_ms) / 1e3);
    }
    return ok;
}

static enum MHD_Result queue(request *rq, int status, struct MHD_Response *r)
{
    if (!r) return queue_oom(rq);
    common_headers(rq, r, status);
    enum MHD_Result ok = MHD_queue_response(rq->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    if (ok == MHD_YES) {
        rq->status = status;
        /* Counted when queued, not when sent: a client that has its answer then sees it in
         * the next /metrics scrape. */
        metrics_request(rq->route, status, (http_now_ms() - rq->t0_ms) / 1e3);
    }
    return ok;
}

enum MHD_Result reply_response(request *rq, int status, struct MHD_Response *r)
{
    return queue(rq, status, r);
}

enum MHD_Result reply_bytes(request *rq, int status, const char *content_type, const void *data,
                            size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (r && content_type) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return queue(rq, status, r);
}

enum MHD_Result reply_json(request *rq, int status, json_t *body)
{
    size_t len = 0;
    char *s = ac_json_text(body, &len); /* not json_dumps: see result_json.h */
    json_decref(body);
    if (!s) return queue_oom(rq);
    s[len++] = '\n'; /* friendlier for curl in a terminal; JSON parsers ignore it */
    return reply_owned(rq, status, "application/json", s, len);
}

enum MHD_Result reply_owned(request *rq, int status, const char *content_type, char *data,
                            size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(data);
        return queue_oom(rq);
    }
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES) {
        MHD_destroy_response(r);
        return queue_oom(rq);
    }
    return queue(rq, status, r);
}

struct MHD_Response *reply_oom_response(void)
{
    static const char body[] =
        "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory: retry later\"}}\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r) return NULL;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1") != MHD_YES) {
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}

void http_sanitize(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = 0;
}

static enum MHD_Result error_json(request *rq, int http, const char *code, const char *raw)
{
    /* Messages may quote client input (a model name, a header field of the upload): keep
     * them printable ASCII so they are always valid JSON strings and safe in terminals. */
    char msg[512];
    http_sanitize(msg, sizeof msg, raw);
    json_t *o = json_pack("{s:{s:s,s:s},s:s}", "error", "code", code, "message", msg,
                          "request_id", rq->id);
    if (!o) return queue_oom(rq);
    return reply_json(rq, http, o);
}

enum MHD_Result reply_error(request *rq, hs_mapping m, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return error_json(rq, m.http, m.code, msg);
}

enum MHD_Result reply_status(request *rq, ac_status st, const char *detail)
{
    hs_mapping m = hs_from_status(st);
    return error_json(rq, m.http, m.code, detail && detail[0] ? detail : ac_strerror(st));
}
