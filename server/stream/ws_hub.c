/* ws_hub.c - the WebSocket streams' thread: poll, libwslay framing, stream jobs (ws_hub.h). */
#define _GNU_SOURCE /* POLLRDHUP */
#include "ws_hub.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "result_json.h"

#define PENDING_LIMIT ((size_t)1 << 20)   /* audio bytes waiting before the hub stops reading */
#define OUT_LIMIT ((size_t)1 << 20)       /* reply bytes queued for a client before it is dropped */
/* Audio bytes one job takes at most (2 s of 16 kHz s16le): a job's work is bounded, so that
 * between jobs the hub sees a client that left or stopped reading. A whole backlog in one
 * job took, at a 1 ms hop, 68,000 forward passes: minutes under ASan, for nobody. */
#define JOB_MAX_BYTES ((size_t)64 << 10)
#define CLOSE_WAIT_S 2.0                  /* how long a sent close waits for the client's */

typedef struct out_msg {
    struct out_msg *next;
    size_t len;
    char text[];
} out_msg;

typedef struct conn {
    struct conn *next;
    struct ws_hub *hub;
    int fd;
    wslay_event_context_ptr ws;
    stream_session *session;
    int slot;
    ws_closed_fn closed;
    void (*release)(void *ctx);
    void *ctx;
    char *extra;                  /* bytes after the handshake, read before the socket */
    size_t extra_len, extra_at;
    double last_recv;             /* monotonic seconds */
    /* hub thread only */
    unsigned char *pending;       /* audio not yet handed to a job */
    size_t pend_len, pend_cap;
    double pend_t;                /* arrival of the last message in pending */
    double job_t;                 /* the same for the job's bytes */
    int end_requested;            /* {"type":"end"} or drain: no more audio */
    int close_code;               /* the close code to send once the last job is done */
    int want_close;               /* close with this code once the queued messages are out */
    const char *close_reason;
    double want_close_at;
    int close_queued;
    double close_at;
    int dead;                     /* socket error or EOF: no more I/O */
    atomic_int abandon;           /* dead, told to the job: it stops at its next piece */
    int peer_closed;
    /* owned by the job while in_flight (set under the hub mutex) */
    int in_flight;
    unsigned char *job_bytes;
    size_t job_len, job_cap;
    int job_end;
    out_msg *job_out, **job_tail;
    ac_status job_st;
    char job_err[AC_ERR_LEN];
    /* handed back by the job's callback, under the hub mutex */
    out_msg *outbox, **outbox_tail;
    int job_done;                 /* a finished job's result is waiting for the hub */
} conn;

struct ws_hub {
    ws_hub_config cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    int wake_fd;
    conn *conns;                  /* hub thread's list */
    conn *incoming;               /* added, not yet taken by the thread (under mu) */
    atomic_int draining, stopping;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wake(ws_hub *h)
{
    uint64_t one = 1;
    ssize_t r = write(h->wake_fd, &one, sizeof one);
    (void)r; /* a full counter still wakes the poll */
}

/* ---- libwslay callbacks (hub thread) ---- */

static ssize_t on_recv(wslay_event_context_ptr ws, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    conn *c = user;
    if (c->extra_at < c->extra_len) {
        size_t n = c->extra_len - c->extra_at < len ? c->extra_len - c->extra_at : len;
        memcpy(buf, c->extra + c->extra_at, n);
        c->extra_at += n;
        return (ssize_t)n;
    }
    if (c->pend_len >= PENDING_LIMIT && !c->end_requested) { /* back-pressure: read later */
        wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    ssize_t r = recv(c->fd, buf, len, 0);
    if (r > 0) {
        c->last_recv = now_s();
        return r;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    c->dead = 1, c->peer_closed = r == 0;
    wslay_event_set_error(ws, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t on_send(wslay_event_context_ptr ws, const uint8_t *data, size_t len, int flags, void *user)
{
    (void)flags;
    conn *c = user;
    ssize_t r = send(c->fd, data, len, MSG_NOSIGNAL);
    if (r >= 0) return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    c->dead = 1;
    wslay_event_set_error(ws, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static int on_genmask(wslay_event_context_ptr ws, uint8_t *buf, size_t len, void *user)
{
    (void)ws, (void)user; /* a server does not mask; wslay asks only clients */
    memset(buf, 0, len);
    return 0;
}

static void queue_text(conn *c, const char *text, size_t len)
{
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};
    wslay_event_queue_msg(c->ws, &m); /* copies; fails only after a close was queued or OOM */
}

/* An "error" message, then a close with `code`. */
static void fail(conn *c, int code, ac_status st, const char *message)
{
    json_t *o = ac_error_json(st, message);
    if (o) json_object_set_new(o, "type", json_string("error"));
    size_t len;
    char *text = o ? ac_json_text(o, &len) : NULL;
    json_decref(o);
    if (text) queue_text(c, text, len);
    free(text);
    if (!c->want_close)
        c->want_close = code, c->close_reason = code == 1003 ? "unsupported data" : code == 1008 ? "policy"
                                                  : code == 1001 ? "server shutting down" : "error";
    c->end_requested = 1;
}

/* libwslay sends control frames before queued messages: the close is queued only once
 * every message before it is out, so that none is lost behind it. */
static void flush_close(conn *c)
{
    if (!c->want_close || c->close_queued || c->dead || wslay_event_get_queued_msg_count(c->ws)) return;
    wslay_event_queue_close(c->ws, (uint16_t)c->want_close, (const uint8_t *)c->close_reason,
                            strlen(c->close_reason));
    c->close_queued = c->want_close, c->close_at = now_s();
}

static void on_msg(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    (void)ws;
    conn *c = user;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        c->peer_closed = 1;
        c->end_requested = 1;
        return;
    }
    if (c->end_requested) return; /* after end (or an error): nothing more is taken */
    if (arg->opcode == WSLAY_BINARY_FRAME) {
        if (c->pend_len + arg->msg_length > c->pend_cap) {
            size_t cap = c->pend_cap ? c->pend_cap : 8192;
            while (cap < c->pend_len + arg->msg_length) cap *= 2;
            unsigned char *p = realloc(c->pending, cap);
            if (!p) {
                fail(c, 1011, AC_ERR_NOMEM, "out of memory for the stream's audio");
                return;
            }
            c->pending = p, c->pend_cap = cap;
        }
        memcpy(c->pending + c->pend_len, arg->msg, arg->msg_length);
        c->pend_len += arg->msg_length;
        c->pend_t = now_s();
        return;
    }
    if (arg->opcode == WSLAY_TEXT_FRAME) {
        json_t *o = json_loadb((const char *)arg->msg, arg->msg_length, 0, NULL);
        const char *type = json_string_value(json_object_get(o, "type"));
        int end = type && !strcmp(type, "end") && json_object_size(o) == 1;
        json_decref(o);
        if (end) {
            c->end_requested = 1;
            c->close_code = 1000;
        } else {
            fail(c, 1003, AC_ERR_INVALID_ARG, "text messages must be {\"type\":\"end\"}; audio goes in "
                                             "binary messages");
        }
    }
}

/* ---- stream jobs (dispatcher thread) ---- */

static void collect(void *ctx, json_t *msg)
{
    conn *c = ctx;
    size_t len = 0;
    char *text = ac_json_text(msg, &len);
    json_decref(msg);
    out_msg *m = text ? malloc(sizeof *m + len + 1) : NULL;
    if (!m) {
        free(text);
        if (!c->job_st) c->job_st = ac_fail(c->job_err, AC_ERR_NOMEM, "out of memory for a stream message");
        return;
    }
    m->next = NULL, m->len = len;
    memcpy(m->text, text, len + 1);
    free(text);
    *c->job_tail = m;
    c->job_tail = &m->next;
}

/* A job feeds its audio in pieces of this many bytes and stops between two when its client
 * has gone (c->abandon): at a 1 ms hop a whole job is thousands of forward passes (seconds
 * under ASan) that nobody would read, and the stream stays open until its job returns. Any
 * byte boundary will do (pcm_stream keeps a split sample), so the results are the same; a
 * non-finite sample now fails its own piece, after the hops of the pieces before it were
 * answered (it used to fail the whole job first), then the stream closes with 1003. */
#define JOB_PIECE_BYTES ((size_t)4 << 10)

static void job_run(void *user)
{
    conn *c = user;
    c->job_st = AC_OK;
    for (size_t off = 0; off < c->job_len && !c->job_st; off += JOB_PIECE_BYTES) {
        if (atomic_load(&c->abandon)) return;
        const size_t len = c->job_len - off < JOB_PIECE_BYTES ? c->job_len - off : JOB_PIECE_BYTES;
        c->job_st = stream_session_feed(c->session, c->job_bytes + off, len, collect, c, c->job_err);
    }
    if (!c->job_st && c->job_end && !atomic_load(&c->abandon))
        c->job_st = stream_session_end(c->session, collect, c, c->job_err);
}


/* ---- the hub thread ---- */

static void free_conn(ws_hub *h, conn *c)
{
    unsigned long long samples = stream_session_samples(c->session);
    stream_session_free(c->session);
    c->session = NULL;
    if (c->closed) c->closed(c->ctx, c->dead && !c->close_queued ? 0 : c->close_queued, samples);
    if (c->ws) wslay_event_context_free(c->ws);
    for (out_msg *m = c->outbox, *n; m; m = n) n = m->next, free(m);
    for (out_msg *m = c->job_out, *n; m; m = n) n = m->next, free(m);
    free(c->pending);
    free(c->job_bytes);
    free(c->extra);
    if (c->release) c->release(c->ctx); /* hands the socket back to MHD, which closes it */
    free(c);
}

/* The job's callback (dispatcher): its messages and status go to the hub. */
static void job_done(void *user, ac_job_result *r)
{
    conn *c = user;
    ws_hub *h = c->hub;
    if (r->status && !c->job_st) {
        c->job_st = r->status;
        snprintf(c->job_err, sizeof c->job_err, "%s", r->err);
    }
    ac_prediction_free(&r->pred);
    pthread_mutex_lock(&h->mu);
    *c->outbox_tail = c->job_out;
    if (c->job_out) c->outbox_tail = c->job_tail;
    c->job_out = NULL, c->job_tail = &c->job_out;
    c->job_done = 1;
    c->in_flight = 0;
    pthread_mutex_unlock(&h->mu);
    wake(h);
}

/* Hands pending audio (and the end, when asked and nothing else is left) to a job. */
static void maybe_submit(ws_hub *h, conn *c)
{
    pthread_mutex_lock(&h->mu);
    int busy = c->in_flight || c->job_done; /* one job at a time, its results taken first */
    pthread_mutex_unlock(&h->mu);
    if (busy || c->dead || c->want_close) return;
    /* the first JOB_MAX_BYTES of the pending audio (any byte boundary: pcm_stream keeps a
     * split sample), and the end with the last of them */
    const size_t take = c->pend_len < JOB_MAX_BYTES ? c->pend_len : JOB_MAX_BYTES;
    int end = c->end_requested && c->close_code && take == c->pend_len;
    if (!take && !end) return;
    if (take > c->job_cap) {
        unsigned char *nb = realloc(c->job_bytes, take);
        if (!nb) return; /* out of memory: tried again on the next turn */
        c->job_bytes = nb, c->job_cap = take;
    }
    if (take) memcpy(c->job_bytes, c->pending, take);
    if (c->pend_len > take) memmove(c->pending, c->pending + take, c->pend_len - take);
    c->job_len = take, c->pend_len -= take;
    c->job_end = end;
    c->job_t = c->pend_t;
    c->job_out = NULL, c->job_tail = &c->job_out;
    pthread_mutex_lock(&h->mu);
    c->in_flight = 1;
    pthread_mutex_unlock(&h->mu);
    ac_status st = ac_scheduler_submit_task(h->cfg.sched, c->slot, c->job_len / 2 + 1, job_run, job_done, c);
    if (st == AC_OK) return;
    pthread_mutex_lock(&h->mu);
    c->in_flight = 0;
    pthread_mutex_unlock(&h->mu);
    /* not taken: the bytes go back in front of the rest (the buffer held them all before) */
    if (c->pend_len) memmove(c->pending + c->job_len, c->pending, c->pend_len);
    if (c->job_len) memcpy(c->pending, c->job_bytes, c->job_len);
    c->pend_len += c->job_len, c->job_len = 0;
    if (st == AC_ERR_SHUTTING_DOWN) fail(c, 1001, st, "the server is shutting down");
    else if (st != AC_ERR_QUEUE_FULL) fail(c, 1011, st, "the stream could not be scheduled");
    /* queue full: tried again on the next turn */
}

/* A finished job's messages go out; errors and the end close the stream. */
static void take_job_result(ws_hub *h, conn *c, out_msg *msgs)
{
    if (h->cfg.on_piece && c->job_len) h->cfg.on_piece(now_s() - c->job_t);
    for (out_msg *m = msgs, *n; m; m = n) {
        n = m->next;
        if (!c->dead) queue_text(c, m->text, m->len);
        free(m);
    }
    if (c->job_st == AC_ERR_BAD_AUDIO) fail(c, 1003, c->job_st, c->job_err);
    else if (c->job_st) fail(c, 1011, c->job_st, c->job_err);
    else if (c->job_end && !c->want_close)
        c->want_close = c->close_code, c->close_reason = c->close_code == 1001 ? "server shutting down" : "end of stream";
}

static int finished(const conn *c, double now, int stopping)
{
    if (c->in_flight) return 0;
    if (c->dead) return 1;
    if (stopping && c->want_close && !c->close_queued && now - c->want_close_at > CLOSE_WAIT_S) return 1;
    if (!c->close_queued) return 0;
    if (stopping && !wslay_event_want_write(c->ws)) return 1; /* the close is out: no wait */
    if (wslay_event_want_write(c->ws)) return now - c->close_at > CLOSE_WAIT_S;
    return wslay_event_get_close_received(c->ws) || c->peer_closed || now - c->close_at > CLOSE_WAIT_S;
}

static void *hub_main(void *arg)
{
    ws_hub *h = arg;
    struct pollfd *pfd = NULL;
    conn **who = NULL;
    size_t cap = 0;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (h->incoming) { /* new streams */
            conn *c = h->incoming;
            h->incoming = c->next;
            c->next = h->conns;
            h->conns = c;
        }
        for (conn *c = h->conns; c; c = c->next) { /* finished jobs */
            if (!c->job_done) continue;
            out_msg *msgs = c->outbox;
            c->outbox = NULL, c->outbox_tail = &c->outbox, c->job_done = 0;
            pthread_mutex_unlock(&h->mu);
            take_job_result(h, c, msgs);
            pthread_mutex_lock(&h->mu);
        }
        pthread_mutex_unlock(&h->mu);
        size_t count = 0;
        for (conn *c = h->conns; c; c = c->next) count++;
        if (count + 1 > cap) { /* a poll slot per stream and one for the wake-up */
            size_t ncap = count + 1 > 2 * cap ? count + 1 : 2 * cap;
            struct pollfd *np = realloc(pfd, ncap * sizeof *pfd);
            if (np) pfd = np;
            conn **nw = realloc(who, ncap * sizeof *who);
            if (nw) who = nw;
            if (!np || !nw) { /* out of memory: try again shortly */
                poll(NULL, 0, 50);
                continue;
            }
            cap = ncap;
        }
        const double now = now_s();
        const int draining = atomic_load(&h->draining), stopping = atomic_load(&h->stopping);
        size_t n = 0;
        int retry = 0;
        for (conn **pp = &h->conns; *pp;) {
            conn *c = *pp;
            if (c->dead) atomic_store(&c->abandon, 1);
            if (draining && !c->end_requested) c->end_requested = 1;
            if ((draining || stopping) && !c->close_code) c->close_code = 1001;
            if (!c->dead && !c->want_close && h->cfg.idle_timeout_s > 0 &&
                now - c->last_recv > h->cfg.idle_timeout_s)
                fail(c, 1008, AC_ERR_INVALID_ARG, "no message from the client within the idle timeout");
            if (!c->dead && wslay_event_get_queued_msg_length(c->ws) > OUT_LIMIT) c->dead = 1; /* not reading */
            maybe_submit(h, c);
            if (c->want_close && !c->want_close_at) c->want_close_at = now;
            flush_close(c);
            if (!c->close_queued && !c->dead && wslay_event_get_close_sent(c->ws)) {
                /* libwslay closed by itself: a message over the limit (1009), a protocol
                 * error (1002), or its answer to the client's close */
                c->close_queued = wslay_event_get_status_code_sent(c->ws);
                if (!c->close_queued) c->close_queued = 1005;
                c->close_at = now;
            }
            if (!c->in_flight && !c->want_close && (c->pend_len || (c->end_requested && c->close_code)))
                retry = 1;
            if (finished(c, now, stopping)) {
                *pp = c->next;
                free_conn(h, c);
                continue;
            }
            pp = &c->next;
            /* POLLRDHUP always: a client that left is noticed even while reading is held back
             * (pending audio over the limit), instead of its audio being computed for nobody
             * until the backlog drains (under load: longer than any client waits) */
            short ev = c->dead ? 0 : POLLRDHUP;
            if (!c->dead && wslay_event_want_read(c->ws) &&
                (c->pend_len < PENDING_LIMIT || c->end_requested))
                ev |= POLLIN;
            if (!c->dead && wslay_event_want_write(c->ws)) ev |= POLLOUT;
            pfd[n] = (struct pollfd){c->fd, ev, 0};
            who[n++] = c;
        }
        if (stopping && !h->conns) break;
        pfd[n] = (struct pollfd){h->wake_fd, POLLIN, 0};
        int timeout = retry ? 5 : 200;
        for (size_t i = 0; i < n && timeout; i++)
            if (who[i]->extra_at < who[i]->extra_len) timeout = 0;
        int got = poll(pfd, n + 1, timeout);
        if (got < 0) continue;
        if (pfd[n].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(h->wake_fd, &v, sizeof v);
            (void)r;
        }
        for (size_t i = 0; i < n; i++) {
            conn *c = who[i];
            /* bytes that came with the handshake are read first, whatever the socket says */
            /* after POLLRDHUP the rest is read whatever the backlog (at most the socket's buffer)
             * and the end of stream makes the stream dead */
            if (!c->dead && ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP)) || c->extra_at < c->extra_len) &&
                wslay_event_recv(c->ws) != 0)
                c->dead = 1;
            if (!c->dead && (pfd[i].revents & POLLOUT) && wslay_event_send(c->ws) != 0) c->dead = 1;
            maybe_submit(h, c);
        }
        /* replies queued by the messages just read (pong, close) or by job results */
        for (conn *c = h->conns; c; c = c->next) {
            if (!c->dead && wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) c->dead = 1;
            flush_close(c);
            if (!c->dead && wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) c->dead = 1;
        }
    }
    free(pfd);
    free(who);
    return NULL;
}

ac_status ws_hub_start(const ws_hub_config *cfg, ws_hub **out, char *err)
{
    *out = NULL;
    ws_hub *h = calloc(1, sizeof *h);
    if (!h) return ac_fail(err, AC_ERR_NOMEM, "out of memory for the stream hub");
    h->cfg = *cfg;
    h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->wake_fd < 0) {
        free(h);
        return ac_fail(err, AC_ERR_IO, "eventfd: %s", strerror(errno));
    }
    pthread_mutex_init(&h->mu, NULL);
    int rc = pthread_create(&h->thread, NULL, hub_main, h);
    if (rc) {
        close(h->wake_fd);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return ac_fail(err, AC_ERR_NOMEM, "cannot start the stream thread: %s", strerror(rc));
    }
    *out = h;
    return AC_OK;
}

ac_status ws_hub_add(ws_hub *h, int fd, const char *extra, size_t extra_len, stream_session *session,
                     int slot, ws_closed_fn closed, void (*release)(void *ctx), void *ctx, char *err)
{
    conn *c = calloc(1, sizeof *c);
    struct wslay_event_callbacks cb = {on_recv, on_send, on_genmask, NULL, NULL, NULL, on_msg};
    if (c && extra_len && !(c->extra = malloc(extra_len))) {
        free(c);
        c = NULL;
    }
    if (!c || wslay_event_context_server_init(&c->ws, &cb, c) != 0) {
        if (c) free(c->extra);
        free(c);
        stream_session_free(session);
        if (closed) closed(ctx, 1011, 0);
        if (release) release(ctx);
        return ac_fail(err, AC_ERR_NOMEM, "out of memory for a stream");
    }
    wslay_event_config_set_max_recv_msg_length(c->ws, h->cfg.max_message);
    if (extra_len) memcpy(c->extra, extra, extra_len);
    c->extra_len = extra_len;
    c->hub = h, c->fd = fd, c->session = session, c->slot = slot, c->closed = closed, c->release = release, c->ctx = ctx;
    c->last_recv = now_s();
    c->job_tail = &c->job_out, c->outbox_tail = &c->outbox;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int one = 1; /* results are small and late ones are useless: no Nagle delay */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    json_t *start = stream_session_start_json(session);
    size_t len;
    char *text = start ? ac_json_text(start, &len) : NULL;
    json_decref(start);
    if (text) queue_text(c, text, len);
    free(text);
    pthread_mutex_lock(&h->mu);
    c->next = h->incoming;
    h->incoming = c;
    pthread_mutex_unlock(&h->mu);
    wake(h);
    return AC_OK;
}

void ws_hub_begin_drain(ws_hub *h)
{
    if (!h) return;
    atomic_store(&h->draining, 1);
    wake(h);
}

void ws_hub_free(ws_hub *h)
{
    if (!h) return;
    atomic_store(&h->draining, 1);
    atomic_store(&h->stopping, 1);
    wake(h);
    pthread_join(h->thread, NULL);
    close(h->wake_fd);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
