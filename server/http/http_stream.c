/* http_stream.c - GET /stream: parameters, limits and the WebSocket handshake; after the
 * 101 the upgraded socket goes to the stream hub (server/stream/ws_hub.h). Everything that
 * can be refused is refused here, as an ordinary JSON error, before the upgrade. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_log.h"
#include "http_internal.h"
#include "ws_handshake.h"
#include "ws_hub.h"

static const char *const k_params[] = {"model", "rate", "format", "hop_ms", "top_k", "threshold", "mode",
                                       "api_key", NULL};

/* Cross-site WebSocket hijacking: a browser opens a WebSocket to any host and sends the
 * page's Origin. A stream is taken from the server's own pages (Origin matches Host), from
 * --cors-origin (any with *), and from clients that send no Origin (not browsers). */
static int origin_allowed(request *rq)
{
    const char *origin = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Origin");
    if (!origin) return 1;
    const char *cors = rq->srv->cfg->cors_origin;
    if (cors && (!strcmp(cors, "*") || !strcmp(cors, origin))) return 1;
    const char *host = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *rest = !strncmp(origin, "http://", 7) ? origin + 7 : !strncmp(origin, "https://", 8) ? origin + 8 : NULL;
    return host && rest && !strcmp(rest, host);
}

/* One stream's link back to the server, owned by the hub until it releases the socket. */
typedef struct stream_link {
    http_server *srv;
    struct MHD_UpgradeResponseHandle *urh;
    char id[REQUEST_ID_MAX + 1];
    char model[64];
    double t0_ms;
} stream_link;

static void link_closed(void *ctx, int code, unsigned long long samples)
{
    stream_link *l = ctx;
    log_line("stream", json_pack("{s:s,s:s,s:i,s:I,s:f}", "request_id", l->id, "model", l->model, "close_code",
                                 code, "samples", (json_int_t)samples, "duration_ms", http_now_ms() - l->t0_ms));
}

static void link_release(void *ctx)
{
    stream_link *l = ctx;
    http_server *s = l->srv;
    if (l->urh) MHD_upgrade_action(l->urh, MHD_UPGRADE_ACTION_CLOSE);
    free(l);
    atomic_fetch_sub(&s->streams, 1);
}

/* MHD: the 101 is out; the socket is ours (through the hub) until link_release. */
static void on_upgrade(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    (void)cls, (void)c;
    request *rq = req_cls;
    stream_link *l = calloc(1, sizeof *l);
    stream_session *session = rq->stream;
    rq->stream = NULL; /* the hub's now, whatever happens */
    rq->stream_reserved = 0;
    char err[AC_ERR_LEN];
    if (!l) {
        stream_session_free(session);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        atomic_fetch_sub(&rq->srv->streams, 1);
        return;
    }
    l->srv = rq->srv, l->urh = urh, l->t0_ms = rq->t0_ms;
    snprintf(l->id, sizeof l->id, "%s", rq->id);
    snprintf(l->model, sizeof l->model, "%s", rq->reg->models[rq->model].name);
    if (ws_hub_add(rq->srv->hub, sock, extra_in, extra_in_size, session, rq->reg->models[rq->model].slot,
                   link_closed, link_release, l, err))
        log_line("stream_start_failed", json_pack("{s:s,s:s}", "request_id", rq->id, "error", err));
}

/* The stream's parameters into *p; a 400 naming the bad one is queued when *ok = 0. */
static enum MHD_Result read_params(request *rq, stream_params *p, int *ok)
{
    *ok = 0;
    const char *v;
    memset(p, 0, sizeof *p);
    p->top_k = 3, p->encoding = AC_PCM_S16LE, p->mode = AC_STREAM_AUTO;
    if ((v = http_arg(rq, "rate")) && (p->rate = (int)http_parse_int(v, AC_AUDIO_MIN_RATE, AC_AUDIO_MAX_RATE)) < 0)
        return http_bad_param(rq, "rate must be a whole number of Hz from 1000 to 384000, not \"%s\"", v);
    if ((v = http_arg(rq, "format"))) {
        if (!strcmp(v, "s16le")) p->encoding = AC_PCM_S16LE;
        else if (!strcmp(v, "f32le")) p->encoding = AC_PCM_F32LE;
        else return http_bad_param(rq, "format must be s16le or f32le, not \"%s\"", v);
    }
    if ((v = http_arg(rq, "hop_ms"))) {
        char *end;
        p->hop_ms = strtod(v, &end);
        if (end == v || *end || !(p->hop_ms >= 1 && p->hop_ms <= 10000))
            return http_bad_param(rq, "hop_ms must be a number of milliseconds from 1 to 10000, not \"%s\"", v);
    }
    if ((v = http_arg(rq, "top_k")) && (p->top_k = (int)http_parse_int(v, 1, 1000)) < 0)
        return http_bad_param(rq, "top_k must be a whole number from 1 to 1000, not \"%s\"", v);
    if ((v = http_arg(rq, "threshold"))) {
        char *end;
        double t = strtod(v, &end);
        if (end == v || *end || !(t > 0 && t <= 1))
            return http_bad_param(rq, "threshold must be a probability in (0, 1], not \"%s\"", v);
        p->threshold = (float)t;
    }
    if ((v = http_arg(rq, "mode"))) {
        if (!strcmp(v, "auto")) p->mode = AC_STREAM_AUTO;
        else if (!strcmp(v, "incremental")) p->mode = AC_STREAM_INCREMENTAL;
        else if (!strcmp(v, "window")) p->mode = AC_STREAM_WINDOW;
        else return http_bad_param(rq, "mode must be auto, incremental or window, not \"%s\"", v);
    }
    *ok = 1;
    return MHD_YES;
}

enum MHD_Result route_stream(request *rq)
{
    http_server *s = rq->srv;
    int ok, model;
    enum MHD_Result r = http_check_params(rq, k_params, &ok);
    if (!ok) return r;
    r = http_pick_model(rq, &model);
    if (model < 0) return r;
    stream_params sp;
    r = read_params(rq, &sp, &ok);
    if (!ok) return r;
    char accept[WS_ACCEPT_LEN + 1];
    const char *why = ws_handshake_check(
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE),
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION),
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Sec-WebSocket-Version"),
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Sec-WebSocket-Key"), accept);
    if (why) return reply_error(rq, hs_from_error(HS_UPGRADE_REQUIRED), "%s", why);
    if (!origin_allowed(rq))
        return reply_error(rq, hs_from_error(HS_FORBIDDEN), "a page from another origin may not open streams here "
                           "(allow one with --cors-origin)");
    if (atomic_load(&s->draining) || !ac_scheduler_accepting(s->sched))
        return reply_error(rq, hs_from_status(AC_ERR_SHUTTING_DOWN), "server is draining");
    if (!s->hub || s->cfg->max_streams == 0)
        return reply_error(rq, hs_from_error(HS_TOO_MANY_STREAMS), "streams are off on this server (--max-streams 0)");
    if (atomic_fetch_add(&s->streams, 1) >= s->cfg->max_streams) {
        atomic_fetch_sub(&s->streams, 1);
        return reply_error(rq, hs_from_error(HS_TOO_MANY_STREAMS), "%d streams are open, the most this server "
                           "takes (--max-streams); retry later", s->cfg->max_streams);
    }
    rq->stream_reserved = 1;
    char err[AC_ERR_LEN];
    const registry_entry *e = &rq->reg->models[model];
    ac_status st = stream_session_create(e->model, e->name, &sp, &rq->stream, err);
    if (st) return reply_status(rq, st, err);
    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgrade, s);
    if (!resp) return reply_status(rq, AC_ERR_NOMEM, "out of memory for the upgrade");
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket") != MHD_YES ||
        MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept) != MHD_YES ||
        MHD_add_response_header(resp, "X-Request-Id", rq->id) != MHD_YES) {
        MHD_destroy_response(resp);
        return reply_status(rq, AC_ERR_NOMEM, "out of memory for the upgrade");
    }
    enum MHD_Result q = MHD_queue_response(rq->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    if (q == MHD_YES) {
        rq->status = 101;
        metrics_request(rq->route, 101, (http_now_ms() - rq->t0_ms) / 1e3);
    }
    return q;
}

void stream_cleanup(request *rq)
{
    stream_session_free(rq->stream); /* never upgraded: the client left before the 101 */
    rq->stream = NULL;
    if (rq->stream_reserved) atomic_fetch_sub(&rq->srv->streams, 1);
    rq->stream_reserved = 0;
}
