/* http_server.c - the MHD daemon: request lifecycle, framing checks, routing, auth, access
 * log, connection limits, drain. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access_log.h"
#include "http_internal.h"
#include "request_checks.h"

#define ALLOW_GET "GET, HEAD, OPTIONS"
#define ALLOW_POST "POST, OPTIONS"

static const struct route {
    const char *path;
    int prefix;     /* path is a prefix ("/models/NAME") */
    mt_route id;
    const char *allow;
    int open;       /* reachable without an API key (probes) */
} k_routes[] = {
    {"/classify", 0, MT_CLASSIFY, ALLOW_POST, 0},
    {"/models", 0, MT_MODELS, ALLOW_GET, 0},
    {"/models/", 1, MT_MODEL, ALLOW_GET, 0},
    {"/filters", 0, MT_FILTERS, ALLOW_GET, 0},
    {"/healthz", 0, MT_HEALTHZ, ALLOW_GET, 1},
    {"/readyz", 0, MT_READYZ, ALLOW_GET, 1},
    {"/metrics", 0, MT_METRICS, ALLOW_GET, 0},
    {"/openapi.json", 0, MT_OPENAPI, ALLOW_GET, 0},
    {"/stream", 0, MT_STREAM, ALLOW_GET, 0},
    /* The web page (http_web.c) holds no data: it must load before the user types a key. */
    {"/", 0, MT_WEB, ALLOW_GET, 1},
    {"/ui/", 1, MT_WEB, ALLOW_GET, 1},
};

static const struct route *find_route(const char *url)
{
    for (size_t i = 0; i < sizeof k_routes / sizeof *k_routes; i++) {
        const struct route *r = &k_routes[i];
        if (r->prefix ? !strncmp(url, r->path, strlen(r->path)) : !strcmp(url, r->path)) return r;
    }
    return NULL;
}

static request *request_new(http_server *s, struct MHD_Connection *c, const char *url)
{
    request *rq = calloc(1, sizeof *rq);
    if (!rq) return NULL;
    rq->srv = s;
    rq->conn = c;
    rq->reg = registry_holder_get(s->regs);
    rq->t0_ms = http_now_ms();
    rq->model = -1;
    rq->route = MT_OTHER;
    /* the path without the query, for logs (the query may carry anything) */
    char path[sizeof rq->path];
    size_t n = strcspn(url, "?");
    if (n >= sizeof path) n = sizeof path - 1;
    memcpy(path, url, n);
    path[n] = 0;
    http_sanitize(rq->path, sizeof rq->path, path);
    /* The raw target, before MHD unescapes it: "%00" would cut the path or a value short
     * where we read it as a C string, so it is refused whatever it is next to. */
    rq->nul = rc_has_encoded_nul(url);
    atomic_fetch_add(&s->in_flight, 1);
    metrics_in_flight(1);
    return rq;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request line has been read. The request object starts
 * here, so that a request MHD answers by itself (bad headers, 431, 413 ...) still ends in
 * on_completed: it is logged and counted like every other. */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    request *rq = request_new(cls, c, uri ? uri : "");
    char *q = uri ? strchr(uri, '?') : NULL;
    if (q && q[1]) {
        int n = 1;
        for (const char *p = q + 1; *p; p++) n += *p == '&';
        if (n > RC_MAX_PARAMS) {
            /* libmicrohttpd 0.9.75 parses the query right after this callback into its
             * per-connection memory; a few hundred parameters exhaust it and the request is
             * then never answered (nor timed out before --request-timeout). The query is
             * cut here, in MHD's own (writable) request-line buffer, so that MHD parses
             * none of it, and the request is answered 414 at entry. */
            q[1] = 0;
            if (rq) rq->n_params = n;
        }
    }
    return rq;
}

/* CORS preflight, or a plain OPTIONS: 204 with what the route allows. */
static enum MHD_Result options(request *rq)
{
    rq->preflight = 1;
    return reply_bytes(rq, 204, NULL, "", 0);
}

/* Routing, auth and method checks, then the route's handler. For a POST this runs before
 * the body is read; for anything else once the request is complete. */
static enum MHD_Result begin(request *rq, const char *url)
{
    http_server *s = rq->srv;
    const struct route *rt = find_route(url);
    int is_get = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD");
    int is_post = !strcmp(rq->method, "POST");
    if (rt) {
        rq->route = rt->id;
        rq->allow = rt->allow;
    }
    if (rt && !strcmp(rq->method, "OPTIONS")) return options(rq);
    if (s->auth && !(rt && rt->open)) {
        const char *authz = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Authorization");
        const char *key = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-API-Key");
        /* A browser's WebSocket cannot set a header: /stream also takes ?api_key= (the access
         * log records paths without their query, so the key is not written down) */
        const char *qkey = rt && rt->id == MT_STREAM && !authz && !key
                               ? MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "api_key") : NULL;
        if (!auth_check(s->auth, authz, key ? key : qkey))
            return reply_error(rq, hs_from_error(HS_UNAUTHORIZED), "send an API key as `Authorization: Bearer KEY` "
                               "or `X-API-Key: KEY`%s", rt && rt->id == MT_STREAM ? " (or, from a browser, "
                               "?api_key=KEY)" : "");
    }
    if (!rt) {
        rq->allow = NULL;
        return reply_error(rq, hs_from_error(HS_NO_ROUTE), "no route %s (see /openapi.json)", rq->path);
    }
    if (rt->id == MT_CLASSIFY ? !is_post : !is_get)
        return reply_error(rq, hs_from_error(HS_METHOD_NOT_ALLOWED), "%s does not take %s (allowed: %s)",
                           rt->path, rq->method, rt->allow);
    rq->allow = NULL; /* only 405 and OPTIONS answers carry Allow */
    if (rt->id == MT_CLASSIFY) return classify_begin(rq);
    if (rt->id == MT_STREAM) return route_stream(rq);
    return route_get(rq, url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    request *rq = *con_cls;
    if (!rq) {
        /* the request object could not be allocated at the request line: a last try, then
         * the prebuilt 503 */
        if (!(rq = request_new(cls, c, url))) {
            http_server *s = cls;
            return s->oom ? MHD_queue_response(c, 503, s->oom) : MHD_NO;
        }
        *con_cls = rq;
    }
    if (!rq->entered) {
        rq->entered = 1;
        http_sanitize(rq->method, sizeof rq->method, method);
        request_id_make(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id"), rq->id);
        /* Framing, NUL bytes and parameter counts are checked before anything uses the
         * request; a failure is answered at once and the connection closed (what follows
         * on it cannot be trusted to be a request boundary). */
        rc_verdict v;
        if (rc_check(c, rq->nul, rq->n_params, &v)) {
            rq->close = rq->early = 1;
            return reply_error(rq, (hs_mapping){v.status, v.code}, "%s", v.message);
        }
        /* An upload is checked before its body is read, so that a refusal (413, 415, 401)
         * costs no transfer; MHD then closes the connection, and the socket lingers (see
         * linger.h) so that the answer is not lost. Anything else is answered once the
         * request is complete, which keeps the connection reusable. */
        if (strcmp(rq->method, "POST")) return MHD_YES;
        rq->begun = 1;
        enum MHD_Result r = begin(rq, url);
        rq->early = rq->status != 0;
        return r;
    }
    if (!rq->begun) {
        if (*upload_data_size) { /* a body where none belongs: ignored */
            *upload_data_size = 0;
            return MHD_YES;
        }
        rq->begun = 1;
        return begin(rq, url);
    }
    if (rq->status) { /* answered early (error before the body): ignore the rest */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->route == MT_CLASSIFY) return classify_step(rq, upload_data, upload_data_size);
    *upload_data_size = 0; /* a body on a GET route: ignore it */
    return MHD_YES;
}

static void client_address(struct MHD_Connection *c, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = 0;
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf, (socklen_t)len);
}

static const char *termination(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK: return "ok";
    case MHD_REQUEST_TERMINATED_WITH_ERROR: return "error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR: return "read_error";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "client_abort";
    }
    return "unknown";
}

/* MHD says the request is over (answered, or the client went away): log, count, free. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    request *rq = *con_cls;
    metrics_request_end(termination(toe));
    if (!rq) return;
    *con_cls = NULL;
    if (rq->early && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (fd) linger_adopt(s->lingerer, fd->connect_fd);
    }
    double total = http_now_ms() - rq->t0_ms;
    if (!rq->status) {
        /* Not answered by us: MHD's own answer to a malformed request (400, 413, 414, 431,
         * 505 ...), or none at all (the client left, a timeout). Counted either way. */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        rq->status = ci ? (int)ci->http_status : 0; /* logged; counted from MHD's log line */
    }
    if (!rq->entered) request_id_make(NULL, rq->id);
    char addr[64];
    client_address(c, addr, sizeof addr);
    const ac_job_result *r = &rq->result;
    json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:s,s:I,s:f,s:f,s:f,s:f,s:s,s:s}", "request_id", rq->id,
                          "method", rq->method, "path", rq->path, "status", rq->status, "model",
                          rq->model >= 0 && rq->reg ? rq->reg->models[rq->model].name : "",
                          "bytes_in", (json_int_t)rq->bytes_in, "decode_ms", rq->decode_ms,
                          "queue_ms", r->queue_ms, "inference_ms", r->inference_ms, "total_ms",
                          total, "client", addr, "end", termination(toe));
    if (o && r->batch_jobs) json_object_set_new(o, "batch_clips", json_integer(r->batch_jobs));
    log_line("request", o);
    metrics_in_flight(-1);
    pthread_mutex_lock(&s->resume_mu);
    int busy = rq->state == RQ_QUEUED || rq->state == RQ_DECODING;
    pthread_mutex_unlock(&s->resume_mu);
    /* A job still in the decode pool or the scheduler will write into rq: only a forced
     * shutdown gets here, and then leaking rq is the safe choice. */
    if (!busy) {
        classify_cleanup(rq);
        stream_cleanup(rq);
        mem_release_all(rq);
        registry_release(rq->reg);
        free(rq);
    }
    atomic_fetch_sub(&s->in_flight, 1);
}

/* MHD_OPTION_ACCEPT_POLICY_CALLBACK: over --max-connections, a new connection is closed at
 * once. (MHD's own limit, set higher, would instead stop accepting and leave the excess in
 * the listen backlog, where connections of clients long gone wait their turn.) */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    http_server *s = cls;
    if (atomic_load(&s->connections) >= s->cfg->max_connections) {
        metrics_connection_refused();
        return MHD_NO;
    }
    return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) atomic_fetch_add(&s->connections, 1);
    else atomic_fetch_sub(&s->connections, 1);
}

/* MHD's own diagnostics, as log lines like everything else. While the daemon starts, the
 * last one is also kept: it is why a start failed (e.g. the port is in use). */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    http_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    char clean[512];
    http_sanitize(clean, sizeof clean, msg);
    if (!s->daemon) snprintf(s->start_error, sizeof s->start_error, "%.200s", clean);
    /* MHD answers malformed requests itself (400, 413, 414, 431, 505 ...), some before the
     * request exists for us; each such answer is logged with this sentence, so it is
     * counted here, under route "other". */
    const char *code = strstr(msg, "HTTP response code is ");
    unsigned st = 0;
    if (code && sscanf(code + 22, "%u", &st) == 1 && st >= 100 && st < 600)
        metrics_request(MT_OTHER, (int)st, 0.0);
    log_line("mhd", json_pack("{s:s}", "message", clean));
}

ac_status http_server_start(const serve_config *cfg, registry_holder *regs, ac_scheduler *sched,
                            const auth *a, http_server **out, char *err)
{
    *out = NULL;
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    memset(&addr, 0, sizeof addr);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, cfg->bind, &addr.v4.sin_addr) == 1) {
        addr.v4.sin_family = AF_INET;
        addr.v4.sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, cfg->bind, &addr.v6.sin6_addr) == 1) {
        addr.v6.sin6_family = AF_INET6;
        addr.v6.sin6_port = htons((uint16_t)cfg->port);
        /* "::" means every address: take IPv4 clients too, as 0.0.0.0 does. */
        flags |= IN6_IS_ADDR_UNSPECIFIED(&addr.v6.sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    } else {
        return ac_fail(err, AC_ERR_INVALID_ARG, "bind address \"%s\" is not an IPv4 or IPv6 address",
                       cfg->bind);
    }
    http_server *h = calloc(1, sizeof *h);
    if (!h) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    h->cfg = cfg, h->regs = regs, h->sched = sched, h->auth = a;
    pthread_mutex_init(&h->resume_mu, NULL);
    int decoders = cfg->decode_threads;
    if (decoders == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        decoders = n > 2 ? (int)n : 2;
    }
    h->filters = filters_cache_new();
    h->oom = reply_oom_response();
    /* as many sockets as connections; each for at most 5 s (nginx's lingering_timeout) */
    h->lingerer = linger_new(cfg->max_connections, 5000);
    /* waiting decodes are bounded like the inference queue */
    h->decoders = dp_new(decoders, cfg->queue_size);
    if (!h->filters || !h->oom || !h->decoders || !h->lingerer) {
        http_server_stop(h);
        return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    }
    if (cfg->max_streams > 0) {
        ws_hub_config hc = {.sched = sched, .max_message = (size_t)cfg->max_stream_message,
                            .idle_timeout_s = cfg->stream_idle_timeout_s, .on_piece = metrics_stream_piece};
        ac_status st = ws_hub_start(&hc, &h->hub, err);
        if (st) {
            http_server_stop(h);
            return st;
        }
    }
    unsigned pool = (unsigned)cfg->http_threads;
    if (pool == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        pool = n > 2 ? (unsigned)n : 2;
    }
    /* MHD's own limit sits above ours, so that it keeps accepting and accept_policy closes
     * the excess at once (a race between pool threads may let a few more in). */
    unsigned mhd_limit = (unsigned)cfg->max_connections + 2 * pool + 16;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, accept_policy, h, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, /* first: MHD logs from the options on */
        MHD_OPTION_SOCK_ADDR, &addr.sa, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_THREAD_POOL_SIZE, pool, MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->request_timeout_s, MHD_OPTION_END);
    if (!h->daemon) {
        char why[300];
        snprintf(why, sizeof why, "%s", h->start_error[0] ? h->start_error : "libmicrohttpd gave no reason");
        http_server_stop(h);
        return ac_fail(err, AC_ERR_IO, "cannot listen on %s port %d: %s", cfg->bind, cfg->port, why);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : cfg->port;
    *out = h;
    return AC_OK;
}

int http_server_port(const http_server *h) { return h->port; }

void http_server_begin_drain(http_server *h)
{
    atomic_store(&h->draining, 1);
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    ws_hub_begin_drain(h->hub); /* streams run what they hold, send their summary, close 1001 */
}

/* Open streams count until they are closed: a drain waits for their summaries too. */
int http_server_in_flight(http_server *h) { return atomic_load(&h->in_flight) + atomic_load(&h->streams); }
int http_server_streams(http_server *h) { return atomic_load(&h->streams); }

int http_server_decoding(http_server *h) { return atomic_load(&h->decoding); }
size_t http_server_memory_held(http_server *h) { return atomic_load(&h->mem_held); }
int http_server_connections(http_server *h) { return atomic_load(&h->connections); }

void http_server_stop(http_server *h)
{
    if (!h) return;
    ws_hub_free(h->hub); /* every upgraded socket goes back to MHD before it stops */
    if (h->daemon) MHD_stop_daemon(h->daemon);
    linger_free(h->lingerer); /* after the daemon: its threads adopt sockets */
    dp_free(h->decoders);
    if (h->oom) MHD_destroy_response(h->oom);
    pthread_mutex_destroy(&h->resume_mu);
    filters_cache_free(h->filters);
    free(h);
}
