/* pace.c - open-loop HTTP/1.1 load generator: POSTs one body at a fixed request rate and
 * reports latency percentiles, without coordinated omission.
 *
 * Why: a closed-loop client (wrk, or wrk with a per-request delay) sends the next request
 * only after the previous answer, so when the server stalls the client stalls with it and
 * the requests that should have been sent during the stall are never measured: the
 * percentiles look better exactly when the server is worst ("coordinated omission").
 * Debian's wrk has no constant-rate mode, so this tool keeps a fixed schedule instead:
 * request k is due at t0 + k / R, whatever happened to the earlier ones, and its latency
 * is measured from that scheduled time, not from when it actually went out. A request that
 * waits for its connection because the server is behind is therefore charged the wait.
 *
 * How: C threads, each with one keep-alive TCP connection (TCP_NODELAY); connection i
 * sends requests k = i, i + C, i + 2C, ... It sleeps until the request is due
 * (clock_nanosleep, TIMER_ABSTIME, CLOCK_MONOTONIC), sends it, reads the whole response
 * (Content-Length or chunked), and records the latency. Each request times out 10 s after
 * its scheduled time (a request already 10 s overdue is not sent and counts as a timeout),
 * so the run ends at most about 10 s after the schedule.
 *
 * Counting: "ok" is a 2xx response; errors are non-2xx responses (counted per status),
 * broken connections, timeouts, failed connects and malformed responses. Percentiles are
 * over the ok responses (the full sorted array, nearest rank). The achieved rate is the
 * number of complete responses (any status) over max(S, time of the last response - t0).
 * A keep-alive connection that the server closed while idle is noticed before sending
 * (poll) and reopened, not an error; a connection that breaks after the request went out
 * is an error and is not retried (POST is not idempotent, and a retry would hide it).
 *
 *   build/bench/pace --url http://127.0.0.1:PORT/path?query --body FILE --rate R
 *                    --seconds S [--conns C] [--type CONTENT_TYPE]
 *
 * Prints one human line and one "RESULT key=value ..." line (plus a line of error counts
 * by kind when there are errors). Exit status: 0 all requests ok, 1 the run could not
 * start or some requests failed, 2 bad arguments.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_NS 10000000000LL   /* per request, from its scheduled time */
#define LATE_NS 1000000LL          /* a send this late means its connection was busy */
#define START_DELAY_NS 200000000LL /* t0 = start + this, so every connection is open */
#define RBUF_SIZE 65536            /* the longest status or header line accepted */
#define MAX_REQUESTS 50000000L
#define MAX_CONNS 1024
#define MAX_STATUS 600

enum { IO_EOF = -1, IO_ERR = -2, IO_TIMEOUT = -3, IO_BAD = -4 };

struct config {
    struct sockaddr_in addr;
    char host[300]; /* Host header: the URL's host[:port] */
    char path[4096];
    const char *type;
    char *body;
    size_t body_len;
    double rate, seconds;
    int conns;
    long total; /* requests in the schedule */
    int64_t t0; /* ns, CLOCK_MONOTONIC */
};

struct worker {
    const struct config *cfg;
    int index;
    pthread_t thread;
    int fd;
    char head[8192];   /* request line and headers, the same for every request */
    size_t head_len;
    size_t rpos, rlen; /* unread bytes: rbuf[rpos..rlen) */
    char rbuf[RBUF_SIZE];
    double *lat_ms; /* ok latencies */
    long nlat, cap;
    long status[MAX_STATUS];
    long broken, timeouts, connect_fail, bad, reopens, closes, late;
    int64_t last_done;
    char first_error[256];
};

/* ---- time ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static int64_t scheduled_ns(const struct config *cfg, long k)
{
    return cfg->t0 + (int64_t)llround((double)k * 1e9 / cfg->rate);
}

/* ---- arguments ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: pace --url http://HOST[:PORT]/PATH[?QUERY] --body FILE --rate R --seconds S\n"
               "            [--conns C (default 8)] [--type CONTENT_TYPE (default audio/wav)]\n"
               "HOST is a numeric IPv4 address or localhost. Open loop: request k is due at\n"
               "t0 + k/R and its latency counts from then. Exit: 0 all ok, 1 failures, 2 bad usage.\n");
}

static void die_usage(const char *fmt, const char *what)
{
    fprintf(stderr, "pace: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    usage(stderr);
    exit(2);
}

static double parse_positive(const char *opt, const char *s, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > max) {
        fprintf(stderr, "pace: %s wants a number > 0 and <= %g, got '%s'\n", opt, max, s);
        exit(2);
    }
    return v;
}

/* Control characters (and, unless spaces_ok, spaces) would break the request head. */
static int has_ctl(const char *s, int spaces_ok)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || (*s == ' ' && !spaces_ok)) return 1;
    return 0;
}

/* http://HOST[:PORT][/PATH][?QUERY], HOST numeric IPv4 or localhost. Exits 2 on anything else. */
static void parse_url(const char *url, struct config *cfg)
{
    if (strncasecmp(url, "http://", 7) != 0) {
        if (strncasecmp(url, "https://", 8) == 0) die_usage("only http:// is supported (no TLS): '%s'", url);
        die_usage("--url must start with http://, got '%s'", url);
    }
    const char *h = url + 7, *rest = h + strcspn(h, "/?");
    size_t hostport = (size_t)(rest - h);
    if (hostport == 0 || hostport >= sizeof cfg->host) die_usage("no host (or too long a host) in '%s'", url);
    memcpy(cfg->host, h, hostport);
    cfg->host[hostport] = 0;

    char host[300];
    memcpy(host, h, hostport);
    host[hostport] = 0;
    long port = 80;
    char *colon = strchr(host, ':');
    if (colon) {
        char *end;
        *colon = 0;
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
            die_usage("bad port in '%s' (want 1-65535)", url);
    }
    memset(&cfg->addr, 0, sizeof cfg->addr);
    cfg->addr.sin_family = AF_INET;
    cfg->addr.sin_port = htons((uint16_t)port);
    const char *ip = strcasecmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    if (inet_pton(AF_INET, ip, &cfg->addr.sin_addr) != 1)
        die_usage("the host must be a numeric IPv4 address or localhost, got '%s'", host);

    const char *fmt = *rest == '?' ? "/%s" : "%s"; /* "http://h?q" -> "/?q" */
    int n = snprintf(cfg->path, sizeof cfg->path, fmt, *rest ? rest : "/");
    if (n < 0 || (size_t)n >= sizeof cfg->path) die_usage("path too long in '%s'", url);
    if (has_ctl(cfg->path, 0)) die_usage("spaces or control characters in the path of '%s'", url);
}

static void read_body(const char *file, struct config *cfg)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "pace: cannot open --body file '%s': %s\n", file, strerror(errno));
        exit(2);
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "pace: out of memory reading '%s'\n", file);
            exit(1);
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        cap *= 2;
        char *grown = realloc(buf, cap);
        if (!grown) free(buf);
        buf = grown;
    }
    if (ferror(f)) {
        fprintf(stderr, "pace: error reading --body file '%s'\n", file);
        exit(2);
    }
    fclose(f);
    cfg->body = buf;
    cfg->body_len = len;
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
    const char *url = NULL, *body = NULL;
    cfg->type = "audio/wav";
    cfg->conns = 8;
    cfg->rate = cfg->seconds = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) die_usage("%s needs a value (or is not an option)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--body")) body = v;
        else if (!strcmp(a, "--type")) cfg->type = v;
        else if (!strcmp(a, "--rate")) cfg->rate = parse_positive(a, v, 1e6);
        else if (!strcmp(a, "--seconds")) cfg->seconds = parse_positive(a, v, 86400);
        else if (!strcmp(a, "--conns")) {
            double c = parse_positive(a, v, MAX_CONNS);
            if (c != floor(c)) die_usage("--conns wants a whole number, got '%s'", v);
            cfg->conns = (int)c;
        } else die_usage("unknown option '%s'", a);
    }
    if (!url) die_usage("%s", "--url is required");
    if (!body) die_usage("%s", "--body is required");
    if (cfg->rate == 0) die_usage("%s", "--rate is required");
    if (cfg->seconds == 0) die_usage("%s", "--seconds is required");
    if (strlen(cfg->type) > 200 || has_ctl(cfg->type, 1)) die_usage("bad --type '%s'", cfg->type);
    double total = ceil(cfg->rate * cfg->seconds - 1e-9);
    if (total < 1) die_usage("%s", "--rate x --seconds schedules no request");
    if (total > MAX_REQUESTS) die_usage("%s", "--rate x --seconds is over 50 million requests");
    cfg->total = (long)total;
    parse_url(url, cfg);
    read_body(body, cfg);
}

/* ---- connection ---- */

static void fail(struct worker *w, const char *what, const char *why)
{
    if (!w->first_error[0])
        snprintf(w->first_error, sizeof w->first_error, "connection %d: %s: %s", w->index, what, why);
}

static void close_conn(struct worker *w)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    w->rpos = w->rlen = 0;
}

/* Connect with a deadline (a non-blocking connect, then poll). Returns the fd or -1, errno set. */
static int connect_to(const struct sockaddr_in *addr, int64_t deadline)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) < 0) {
        if (errno != EINPROGRESS) goto bad;
        int64_t left = deadline - now_ns();
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int r = left > 0 ? poll(&p, 1, (int)(left / 1000000 + 1)) : 0;
        if (r == 0) errno = ETIMEDOUT;
        if (r <= 0) goto bad;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) goto bad;
        if (err) {
            errno = err;
            goto bad;
        }
    }
    int one = 1;
    struct timeval snd = {.tv_sec = TIMEOUT_NS / 1000000000LL};
    if (fcntl(fd, F_SETFL, 0) < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd) < 0)
        goto bad;
    return fd;
bad:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* An idle connection with something to read (the server's FIN, or an error) is dead. */
static int idle_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) != 0;
}

static int ensure_connected(struct worker *w, int64_t deadline)
{
    if (w->fd >= 0) return 0;
    w->fd = connect_to(&w->cfg->addr, deadline);
    if (w->fd >= 0) return 0;
    fail(w, "connect", strerror(errno));
    return -1;
}

/* The request head and the body in one sendmsg (looping over partial writes). */
static int send_request(struct worker *w)
{
    struct iovec iov[2] = {{w->head, w->head_len}, {w->cfg->body, w->cfg->body_len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    while (msg.msg_iovlen > 0) {
        ssize_t n = sendmsg(w->fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        while (msg.msg_iovlen > 0 && (size_t)n >= msg.msg_iov->iov_len) {
            n -= (ssize_t)msg.msg_iov->iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen > 0) {
            msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
            msg.msg_iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* ---- response reading ---- */

/* More bytes into rbuf before the deadline: > 0 read, else an IO_ code. */
static int fill(struct worker *w, int64_t deadline)
{
    if (w->rpos == w->rlen) w->rpos = w->rlen = 0;
    if (w->rlen == sizeof w->rbuf && w->rpos > 0) {
        memmove(w->rbuf, w->rbuf + w->rpos, w->rlen - w->rpos);
        w->rlen -= w->rpos;
        w->rpos = 0;
    }
    if (w->rlen == sizeof w->rbuf) return IO_BAD; /* a line longer than the buffer */
    for (;;) {
        int64_t left = deadline - now_ns();
        if (left <= 0) return IO_TIMEOUT;
        struct pollfd p = {.fd = w->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(left / 1000000 + 1));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return IO_ERR;
        if (r == 0) continue; /* re-check the deadline */
        ssize_t n = recv(w->fd, w->rbuf + w->rlen, sizeof w->rbuf - w->rlen, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return IO_ERR;
        if (n == 0) return IO_EOF;
        w->rlen += (size_t)n;
        return (int)n;
    }
}

/* One CRLF-terminated line (terminator stripped, NUL-terminated, valid until the next read). */
static int read_line(struct worker *w, int64_t deadline, char **line)
{
    size_t scanned = 0;
    for (;;) {
        char *start = w->rbuf + w->rpos;
        char *nl = memchr(start + scanned, '\n', w->rlen - w->rpos - scanned);
        if (nl) {
            size_t len = (size_t)(nl - start);
            if (len > 0 && start[len - 1] == '\r') len--;
            start[len] = 0;
            w->rpos += (size_t)(nl - start) + 1;
            *line = start;
            return (int)len;
        }
        scanned = w->rlen - w->rpos; /* relative to rpos, which fill may move to 0 */
        int r = fill(w, deadline);
        if (r < 0) return r;
    }
}

/* Consume n body bytes. */
static int skip_bytes(struct worker *w, uint64_t n, int64_t deadline)
{
    while (n > 0) {
        if (w->rpos == w->rlen) {
            int r = fill(w, deadline);
            if (r < 0) return r;
        }
        size_t have = w->rlen - w->rpos, take = have < n ? have : (size_t)n;
        w->rpos += take;
        n -= take;
    }
    return 0;
}

static int read_chunked(struct worker *w, int64_t deadline)
{
    char *line;
    for (;;) {
        int r = read_line(w, deadline, &line);
        if (r < 0) return r;
        char *end;
        errno = 0;
        unsigned long long size = strtoull(line, &end, 16);
        if (errno || end == line || (*end && *end != ';' && *end != ' ')) return IO_BAD;
        if (size == 0) break;
        if ((r = skip_bytes(w, size, deadline)) < 0) return r;
        if ((r = read_line(w, deadline, &line)) < 0) return r;
        if (r != 0) return IO_BAD; /* chunk data not followed by CRLF */
    }
    for (;;) { /* trailer fields, then the empty line */
        int r = read_line(w, deadline, &line);
        if (r <= 0) return r;
    }
}

static int read_to_eof(struct worker *w, int64_t deadline)
{
    for (;;) {
        w->rpos = w->rlen;
        int r = fill(w, deadline);
        if (r == IO_EOF) return 0;
        if (r < 0) return r;
    }
}

struct response {
    int status;
    int close; /* Connection: close, or a body delimited by the end of the connection */
};

static int header_is(const char *line, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':') return 0;
    const char *v = line + n + 1;
    while (*v == ' ' || *v == '\t') v++;
    *value = v;
    return 1;
}

/* Status line and headers; skips 1xx interim responses. Body framing out in *cl / *chunked. */
static int read_head(struct worker *w, int64_t deadline, struct response *resp, long long *cl, int *chunked)
{
    char *line;
    int r;
    do {
        if ((r = read_line(w, deadline, &line)) < 0) return r;
        int minor, status;
        if (sscanf(line, "HTTP/1.%d %3d", &minor, &status) != 2 || status < 100 || status >= MAX_STATUS)
            return IO_BAD;
        resp->status = status;
        resp->close = minor == 0;
        *cl = -1;
        *chunked = 0;
        while ((r = read_line(w, deadline, &line)) > 0) {
            const char *v;
            if (header_is(line, "Content-Length", &v)) {
                char *end;
                errno = 0;
                *cl = strtoll(v, &end, 10);
                if (errno || end == v || *cl < 0) return IO_BAD;
            } else if (header_is(line, "Transfer-Encoding", &v)) {
                if (!strcasestr(v, "chunked")) return IO_BAD; /* other codings unsupported */
                *chunked = 1;
            } else if (header_is(line, "Connection", &v)) {
                if (strcasestr(v, "close")) resp->close = 1;
                else if (strcasestr(v, "keep-alive")) resp->close = 0;
            }
        }
        if (r < 0) return r;
    } while (resp->status < 200);
    return 0;
}

static int read_response(struct worker *w, int64_t deadline, struct response *resp)
{
    long long cl;
    int chunked;
    int r = read_head(w, deadline, resp, &cl, &chunked);
    if (r < 0) return r;
    if (chunked) return read_chunked(w, deadline);
    if (cl >= 0) return skip_bytes(w, (uint64_t)cl, deadline);
    if (resp->status == 204 || resp->status == 304) return 0;
    resp->close = 1;
    return read_to_eof(w, deadline);
}

/* ---- one request ---- */

static void count_io_error(struct worker *w, int r)
{
    if (r == IO_TIMEOUT) {
        w->timeouts++;
        fail(w, "response", "no complete response within 10 s of the scheduled time");
    } else if (r == IO_BAD) {
        w->bad++;
        fail(w, "response", "malformed or unsupported HTTP response (chunked and Content-Length are supported)");
    } else {
        w->broken++;
        fail(w, "connection broken", r == IO_EOF ? "closed by the server before the response was complete"
                                                 : strerror(errno));
    }
}

static void record(struct worker *w, const struct response *resp, int64_t sched, int64_t done)
{
    w->status[resp->status]++;
    w->last_done = done > w->last_done ? done : w->last_done;
    if (resp->status >= 200 && resp->status < 300) {
        if (w->nlat < w->cap) w->lat_ms[w->nlat++] = (double)(done - sched) / 1e6;
    } else {
        char why[32];
        snprintf(why, sizeof why, "HTTP status %d", resp->status);
        fail(w, "response", why);
    }
    if (resp->close) {
        close_conn(w);
        w->closes++;
    }
}

static void do_request(struct worker *w, long k)
{
    int64_t sched = scheduled_ns(w->cfg, k), deadline = sched + TIMEOUT_NS;
    sleep_until(sched);
    int64_t start = now_ns();
    if (start >= deadline) { /* already 10 s overdue: the server is far behind */
        w->timeouts++;
        fail(w, "request", "not sent: already 10 s past its scheduled time");
        return;
    }
    if (start - sched > LATE_NS) w->late++;
    if (w->fd >= 0 && idle_closed(w->fd)) { /* the server timed out the idle keep-alive connection */
        close_conn(w);
        w->reopens++;
    }
    if (ensure_connected(w, deadline) < 0) {
        w->connect_fail++;
        return;
    }
    struct response resp;
    int r = send_request(w) < 0 ? IO_ERR : read_response(w, deadline, &resp);
    if (r < 0) {
        count_io_error(w, r);
        close_conn(w);
        return;
    }
    record(w, &resp, sched, now_ns());
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct config *cfg = w->cfg;
    w->fd = connect_to(&cfg->addr, cfg->t0); /* on failure, retried (and counted) at the first request */
    for (long k = w->index; k < cfg->total; k += cfg->conns) do_request(w, k);
    close_conn(w);
    return NULL;
}

/* ---- setup and report ---- */

static int init_worker(struct worker *w, const struct config *cfg, int index)
{
    w->cfg = cfg;
    w->index = index;
    w->fd = -1;
    w->cap = index < cfg->total ? (cfg->total - index + cfg->conns - 1) / cfg->conns : 0;
    w->lat_ms = malloc((size_t)(w->cap > 0 ? w->cap : 1) * sizeof *w->lat_ms);
    int n = snprintf(w->head, sizeof w->head,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "User-Agent: pace\r\n\r\n",
                     cfg->path, cfg->host, cfg->type, cfg->body_len);
    if (n < 0 || (size_t)n >= sizeof w->head) return -1;
    w->head_len = (size_t)n;
    return w->lat_ms ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank on a sorted array; NAN when empty. */
static double percentile(const double *v, long n, double p)
{
    if (n == 0) return NAN;
    long i = (long)ceil(p / 100.0 * (double)n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

struct totals {
    long ok, http_errors, broken, timeouts, connect_fail, bad, reopens, closes, late;
    long status[MAX_STATUS];
    int64_t last_done;
};

static void add_up(struct worker *ws, int n, struct totals *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < n; i++) {
        struct worker *w = &ws[i];
        for (int s = 0; s < MAX_STATUS; s++) {
            t->status[s] += w->status[s];
            if (s >= 200 && s < 300) t->ok += w->status[s];
            else t->http_errors += w->status[s];
        }
        t->broken += w->broken, t->timeouts += w->timeouts, t->connect_fail += w->connect_fail;
        t->bad += w->bad, t->reopens += w->reopens, t->closes += w->closes, t->late += w->late;
        if (w->last_done > t->last_done) t->last_done = w->last_done;
    }
}

static void print_error_kinds(const struct totals *t)
{
    printf("errors by kind:");
    for (int s = 0; s < MAX_STATUS; s++)
        if (t->status[s] && (s < 200 || s >= 300)) printf(" HTTP %d: %ld,", s, t->status[s]);
    printf(" broken connection: %ld, timeout: %ld, connect failed: %ld, bad response: %ld\n", t->broken,
           t->timeouts, t->connect_fail, t->bad);
}

static int report(const struct config *cfg, struct worker *ws)
{
    struct totals t;
    add_up(ws, cfg->conns, &t);
    long n = 0;
    for (int i = 0; i < cfg->conns; i++) n += ws[i].nlat;
    double *all = malloc((size_t)(n > 0 ? n : 1) * sizeof *all);
    if (!all) {
        fprintf(stderr, "pace: out of memory for %ld latencies\n", n);
        return 1;
    }
    for (long i = 0, at = 0; i < cfg->conns; at += ws[i].nlat, i++)
        memcpy(all + at, ws[i].lat_ms, (size_t)ws[i].nlat * sizeof *all);
    qsort(all, (size_t)n, sizeof *all, cmp_double);
    double p50 = percentile(all, n, 50), p90 = percentile(all, n, 90), p99 = percentile(all, n, 99);
    double mx = percentile(all, n, 100);
    free(all);

    long errors = t.http_errors + t.broken + t.timeouts + t.connect_fail + t.bad;
    double span = t.last_done > cfg->t0 ? (double)(t.last_done - cfg->t0) / 1e9 : 0;
    double dur = span > cfg->seconds ? span : cfg->seconds;
    double rps = (double)(t.ok + t.http_errors) / dur;
    printf("target %.1f req/s, achieved %.1f req/s over %.1f s: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
           "max %.2f ms, %ld ok, %ld errors\n",
           cfg->rate, rps, dur, p50, p90, p99, mx, t.ok, errors);
    if (errors) print_error_kinds(&t);
    printf("RESULT rate=%.1f rps=%.1f p50=%.2f p90=%.2f p99=%.2f max=%.2f ok=%ld errors=%ld\n", cfg->rate, rps,
           p50, p90, p99, mx, t.ok, errors);
    fflush(stdout);

    for (int i = 0; i < cfg->conns; i++)
        if (ws[i].first_error[0]) {
            fprintf(stderr, "pace: first error: %s\n", ws[i].first_error);
            break;
        }
    if (t.late * 20 > cfg->total)
        fprintf(stderr,
                "pace: note: %ld of %ld requests went out over 1 ms late (their connection was still busy, or the "
                "client was short of CPU); their latency includes the wait. More --conns tells client-side "
                "queueing from server delay.\n",
                t.late, cfg->total);
    if (t.closes)
        fprintf(stderr, "pace: note: the server closed %ld connections after a response (Connection: close)\n",
                t.closes);
    if (t.reopens)
        fprintf(stderr, "pace: note: reopened %ld keep-alive connections that the server had closed while idle\n",
                t.reopens);
    return errors ? 1 : 0;
}

/* Fail early, with the reason, when nothing listens at the URL. */
static void probe(const struct config *cfg)
{
    int fd = connect_to(&cfg->addr, now_ns() + TIMEOUT_NS);
    if (fd < 0) {
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &cfg->addr.sin_addr, ip, sizeof ip);
        fprintf(stderr, "pace: cannot connect to %s:%u: %s (is the server running?)\n", ip,
                ntohs(cfg->addr.sin_port), strerror(errno));
        exit(1);
    }
    close(fd);
}

int main(int argc, char **argv)
{
    static struct config cfg;
    parse_args(argc, argv, &cfg);
    signal(SIGPIPE, SIG_IGN);
    probe(&cfg);

    struct worker *ws = calloc((size_t)cfg.conns, sizeof *ws);
    if (!ws) {
        fprintf(stderr, "pace: out of memory for %d connections\n", cfg.conns);
        return 1;
    }
    for (int i = 0; i < cfg.conns; i++)
        if (init_worker(&ws[i], &cfg, i) < 0) {
            fprintf(stderr, "pace: out of memory (or too long a request head) for connection %d\n", i);
            return 1;
        }
    cfg.t0 = now_ns() + START_DELAY_NS;
    int started = 0, rc = 0;
    for (; started < cfg.conns; started++) {
        int e = pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]);
        if (e) {
            fprintf(stderr, "pace: cannot start thread %d: %s\n", started, strerror(e));
            rc = 1;
            break;
        }
    }
    for (int i = 0; i < started; i++) pthread_join(ws[i].thread, NULL);
    if (rc == 0) rc = report(&cfg, ws);
    for (int i = 0; i < cfg.conns; i++) free(ws[i].lat_ms);
    free(ws);
    free(cfg.body);
    return rc;
}
