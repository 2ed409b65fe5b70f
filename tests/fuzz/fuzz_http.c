/* fuzz_http.c - libFuzzer harness: the whole request path of the real server (MHD, routing,
 * auth, parameters, multipart, size limits, decoding, the scheduler and the replies).
 *
 * The server is started once, in this process, on 127.0.0.1 port 0 with the two op-zoo
 * models, an API key and CORS, and small limits (256 KiB bodies, 5 s clips, 2 s idle
 * timeout, 8 queued clips, 1 MiB of queued audio) so that every limit is reachable. Each
 * input becomes one HTTP request sent over a loopback socket (then shutdown(SHUT_WR)); the
 * answer is read to EOF and checked. Input layout:
 *   byte 0   bits 0-2: method (GET POST HEAD OPTIONS PUT DELETE PATCH, 7 = raw: the rest
 *            is sent verbatim); bit 3: add Content-Length; bit 4: add the API key;
 *            bit 5: send the body chunked (Transfer-Encoding: chunked)
 *   then     TARGET '\n' HEADER-LINE '\n' ... '\n' '\n' BODY   (lines sent with CRLF)
 * Invariants (abort on violation):
 *   - the server never crashes, leaks (LeakSanitizer, libFuzzer -detect_leaks) or wedges:
 *     a connection that is still open 6 s after the request was sent (the idle timeout is
 *     2 s) is counted, and then /healthz on a new connection must be answered; every
 *     request is freed within 10 s of its answer;
 *   - an answer is a well-formed HTTP/1.x response; one of ours (X-Request-Id) is 200, 204 or
 *     4xx or 503 (503 with Retry-After), never another 5xx, and its JSON body parses (an
 *     error is {"error":{"code","message"},"request_id"}); MHD's own answers to malformed
 *     HTTP are 400, 413, 414, 431, 501 or 505;
 *   - a 200 from POST /classify has predictions.
 * The server's log lines go through log_line below (validated, not printed). */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "auth.h"
#include "engine.h"
#include "http_server.h"
#include "metrics.h"
#include "registry.h"
#include "serve_config.h"

#ifndef AC_SOURCE_DIR
#define AC_SOURCE_DIR "."
#endif
#define API_KEY "fuzz-key-1"

/* Replaces server/http/access_log.c (this definition wins over the archive's): every log line
 * is serialised, as in the server, but not printed. */
void log_line(const char *event, json_t *fields)
{
    json_t *o = json_pack("{s:s}", "event", event);
    if (o && fields) json_object_update(o, fields);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    free(s);
    json_decref(o);
    json_decref(fields);
}

static serve_config g_cfg;
static registry *g_reg;
static registry_holder g_regs;
static auth *g_auth;
static ac_scheduler *g_sched;
static http_server *g_srv;
static int g_port;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_http: %s: %s\n", what, detail);
    abort();
}

static void start_server(void)
{
    const char *src = getenv("AC_SOURCE_DIR") ? getenv("AC_SOURCE_DIR") : AC_SOURCE_DIR;
    static char m1[1200], m2[1200], keyfile[64];
    snprintf(m1, sizeof m1, "zoo1d=%s/tests/golden/zoo1d.safetensors", src);
    snprintf(m2, sizeof m2, "zoo2d=%s/tests/golden/zoo2d.safetensors", src);
    snprintf(keyfile, sizeof keyfile, "/tmp/fuzz_http_keys.%d", (int)getpid());
    FILE *f = fopen(keyfile, "w");
    if (!f) die("key file", keyfile);
    fputs(API_KEY "\n", f);
    fclose(f);
    char *argv[] = {"serve", "--model", m1, "--model", m2, "--port", "0", "--bind", "127.0.0.1",
                    "--http-threads", "2", "--threads", "1", "--max-batch-wait-ms", "0",
                    "--max-body-bytes", "256K", "--max-audio-seconds", "5",
                    "--request-timeout", "2", "--queue-size", "8", "--max-queue-bytes", "1M",
                    "--cors-origin", "*", "--api-key-file", keyfile, NULL};
    int argc = (int)(sizeof argv / sizeof *argv) - 1;
    if (serve_config_parse(argc, argv, &g_cfg)) die("settings", "serve_config_parse failed");
    char err[AC_ERR_LEN];
    if (registry_load(&g_cfg, &g_reg, err)) die("models", err);
    for (int i = 0; i < g_reg->n; i++) g_reg->models[i].slot = i;
    if (auth_load(keyfile, &g_auth, err)) die("keys", err);
    unlink(keyfile);
    const char *names[2];
    const ac_model *models[2];
    for (int i = 0; i < g_reg->n; i++) names[i] = g_reg->models[i].name, models[i] = g_reg->models[i].model;
    if (metrics_init(names, g_reg->n)) die("metrics", "init");
    ac_sched_config sc = {.queue_size = g_cfg.queue_size, .max_batch = g_cfg.max_batch,
                          .max_wait_ms = g_cfg.max_batch_wait_ms, .threads = g_cfg.threads,
                          .max_samples = (size_t)(g_cfg.max_queue_bytes / sizeof(float))};
    if (ac_scheduler_create(models, g_reg->n, &sc, &g_sched, err)) die("scheduler", err);
    registry_holder_init(&g_regs, g_reg); /* the process keeps it: fuzzing never ends */
    if (http_server_start(&g_cfg, &g_regs, g_sched, g_auth, &g_srv, err)) die("server", err);
    g_port = http_server_port(g_srv);
}

/* Growable byte buffer. */
typedef struct buf { char *p; size_t n, cap; } buf;
static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) abort();
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static const char *const k_methods[7] = {"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"};

/* Builds the request from the input. Returns the method index (7 = raw). */
static int build(const uint8_t *data, size_t size, buf *req)
{
    if (size == 0) return 7;
    int flags = data[0], m = flags & 7;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    if (m == 7) {
        put(req, p, (size_t)(end - p));
        return 7;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *target_end = nl ? nl : end;
    puts_(req, k_methods[m]);
    puts_(req, " ");
    if (target_end == p) puts_(req, "/");
    put(req, p, (size_t)(target_end - p));
    puts_(req, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if (flags & 0x10) puts_(req, "X-API-Key: " API_KEY "\r\n");
    p = nl ? nl + 1 : end;
    /* header lines until an empty line */
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        if (e == p) { /* empty line: the body follows */
            p++;
            break;
        }
        put(req, p, (size_t)(e - p));
        puts_(req, "\r\n");
        p = e < end ? e + 1 : end;
    }
    size_t body_len = p < end ? (size_t)(end - p) : 0;
    char line[64];
    if (flags & 0x20) {
        puts_(req, "Transfer-Encoding: chunked\r\n\r\n");
        for (size_t off = 0; off < body_len;) {
            size_t n = body_len - off < 1000 ? body_len - off : 1000;
            snprintf(line, sizeof line, "%zx\r\n", n);
            puts_(req, line);
            put(req, p + off, n);
            puts_(req, "\r\n");
            off += n;
        }
        puts_(req, "0\r\n\r\n");
    } else {
        if (flags & 0x08) {
            snprintf(line, sizeof line, "Content-Length: %zu\r\n", body_len);
            puts_(req, line);
        }
        puts_(req, "\r\n");
        if (body_len) put(req, p, body_len);
    }
    return m;
}

/* Sends the request, half-closes, reads the answer to EOF. 0 = EOF seen. */
static int exchange(const buf *req, buf *resp)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {6, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) die("connect", strerror(errno));
    /* The server may answer early (413, 401, 415) and stop reading: a failed send is fine. */
    for (size_t off = 0; off < req->n;) {
        ssize_t w = send(fd, req->p + off, req->n - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char tmp[16384];
    int rc = -1;
    for (;;) {
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r > 0) {
            put(resp, tmp, (size_t)r);
            continue;
        }
        if (r == 0 || errno == ECONNRESET) rc = 0;
        break;
    }
    close(fd);
    return rc;
}

static const char *find_header(const char *head, size_t head_len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *p = head; p < head + head_len;) {
        const char *e = memchr(p, '\n', (size_t)(head + head_len - p));
        if (!e) break;
        if ((size_t)(e - p) > nl + 1 && !strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            *vlen = (size_t)(e - v);
            if (*vlen && v[*vlen - 1] == '\r') (*vlen)--;
            return v;
        }
        p = e + 1;
    }
    return NULL;
}

static void check_response(const buf *resp, int method, const buf *req)
{
    if (resp->n == 0) return; /* closed without an answer: an incomplete or refused request */
    const char *p = resp->p, *end = resp->p + resp->n;
    int status = 0;
    for (;;) {
        if (p == end) return; /* closed without an answer: an incomplete or refused request */
        if (end - p < 12 || strncmp(p, "HTTP/1.", 7) || sscanf(p + 9, "%3d", &status) != 1)
            die("not an HTTP response", resp->p);
        if (status >= 200) break;
        if (status != 100) die("unexpected interim response", resp->p);
        const char *e = strstr(p, "\r\n\r\n"); /* 100 Continue (Expect: 100-continue) */
        if (!e) die("interim response never ends", resp->p);
        p = e + 4;
    }
    const char *hend = strstr(p, "\r\n\r\n");
    if (!hend) die("response headers never end", resp->p);
    size_t head_len = (size_t)(hend - p) + 2;
    const char *body = hend + 4;
    size_t body_len = (size_t)(end - body), vlen = 0;
    const char *head = p;
    int ours = find_header(head, head_len, "X-Request-Id", &vlen) != NULL;
    if (getenv("FUZZ_HTTP_VERBOSE")) fprintf(stderr, "status %d%s\n", status, ours ? "" : " (MHD)");
    if (!ours) {
        if (status != 400 && status != 413 && status != 414 && status != 431 && status != 501 &&
            status != 505)
            die("unexpected status from MHD", resp->p);
        return;
    }
    if (status >= 500 && status != 503) die("5xx answer", resp->p);
    if (status != 200 && status != 204 && status != 503 && (status < 400 || status > 499))
        die("unexpected status", resp->p);
    if (status == 503 && !find_header(head, head_len, "Retry-After", &vlen))
        die("503 without Retry-After", resp->p);
    const char *cl = find_header(head, head_len, "Content-Length", &vlen);
    size_t want = cl ? strtoull(cl, NULL, 10) : body_len;
    if (method == 2 || status == 204) return; /* HEAD / no content: no body */
    if (body_len < want) die("body shorter than Content-Length", resp->p);
    const char *ct = find_header(head, head_len, "Content-Type", &vlen);
    if (!ct || vlen < 16 || strncmp(ct, "application/json", 16)) {
        if (status != 200) die("error answer that is not JSON", resp->p);
        return; /* /metrics text */
    }
    json_error_t je;
    json_t *j = json_loadb(body, want, 0, &je);
    if (!j) die("answer is not JSON", resp->p);
    if (status >= 400) {
        json_t *e = json_object_get(j, "error");
        if (!json_is_string(json_object_get(e, "code")) || !json_is_string(json_object_get(e, "message")) ||
            !json_is_string(json_object_get(j, "request_id")))
            die("malformed error object", resp->p);
    } else if (method == 1 && !strncmp(req->p, "POST /classify", 14) &&
               (req->p[14] == ' ' || req->p[14] == '?')) {
        if (!json_is_array(json_object_get(j, "predictions"))) die("200 without predictions", resp->p);
    }
    json_decref(j);
}

/* Is the server still serving? GET /healthz on a fresh connection. */
static int healthy(void)
{
    buf req = {0}, resp = {0};
    puts_(&req, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    int ok = exchange(&req, &resp) == 0 && resp.n > 12 && !strncmp(resp.p, "HTTP/1.1 200", 12);
    free(req.p);
    free(resp.p);
    return ok;
}

static long g_lingering, g_runs;
static void report(void)
{
    fprintf(stderr, "fuzz_http: %ld inputs, %ld connections left open by the server past 6 s "
            "(the server stayed healthy each time)\n", g_runs, g_lingering);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    if (!started) {
        start_server();
        started = 1;
    }
    buf req = {0}, resp = {0};
    int method = build(data, size, &req);
    if (req.n == 0) put(&req, "", 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g_runs++;
    if (exchange(&req, &resp)) {
        /* No EOF within 6 s although the request timeout is 2 s. Under libFuzzer MHD
         * sometimes keeps such a connection past its timeout; a wedge is when the server
         * also stops answering new connections. */
        if (healthy()) {
            if (g_lingering++ == 0) atexit(report);
            check_response(&resp, method, &req);
            free(req.p);
            free(resp.p);
            return 0;
        }
        fprintf(stderr, "in flight %d, queued %d, %zu bytes back: %.*s\n", http_server_in_flight(g_srv),
                ac_scheduler_queue_depth(g_sched), resp.n, (int)resp.n, resp.p ? resp.p : "");
        if (getenv("FUZZ_HTTP_GDB")) { /* thread stacks of the wedged server */
            char cmd[160];
            snprintf(cmd, sizeof cmd, "gdb -p %d -batch -ex 'thread apply all bt 12' >&2 2>/dev/null", (int)getpid());
            if (system(cmd)) {}
        }
        die("wedged: no EOF within 6 s, and /healthz is not answered", req.p);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (getenv("FUZZ_HTTP_VERBOSE"))
        fprintf(stderr, "%.3f s, %zu bytes back\n",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, resp.n);
    check_response(&resp, method, &req);
    /* Every request the server saw must be freed soon after its answer (or abort). */
    for (int i = 0; http_server_in_flight(g_srv) > 0; i++) {
        if (i == 10000) die("request never completed", req.p);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    free(req.p);
    free(resp.p);
    return 0;
}
