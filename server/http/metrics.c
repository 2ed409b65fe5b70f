/* metrics.c - counters and histograms behind GET /metrics (Prometheus text format 0.0.4). */
#include "metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef AC_VERSION
#define AC_VERSION "dev"
#endif

#define MAX_BUCKETS 16
#define MAX_STATUSES 16
#define MAX_MODELS 256   /* model names seen (a reload may add names); more share no series */
#define N_ENDS 7         /* how requests ended: see k_end_names */

typedef struct histo {
    int nb;
    const double *le;                  /* upper bounds, ascending */
    unsigned long long count[MAX_BUCKETS + 1]; /* per bucket, last = +Inf (not cumulative) */
    double sum;
} histo;

static const double k_latency[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double k_sizes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

static struct {
    pthread_mutex_t mu;
    int n_models;
    char **models;
    int statuses[MT_ROUTE_COUNT][MAX_STATUSES];
    unsigned long long by_status[MT_ROUTE_COUNT][MAX_STATUSES];
    histo latency[MT_ROUTE_COUNT];
    long in_flight;
    histo decode, queue, stream_hop;
    histo *batch_jobs, *batch_windows, *inference; /* [MAX_MODELS] */
    double *audio_seconds;                          /* [MAX_MODELS] */
    unsigned long long *classified;                 /* [MAX_MODELS] */
    /* reliability counters and gauges (metrics_request_end and below) */
    unsigned long long ends[N_ENDS];
    unsigned long long conn_refused;
    int decoding, connections, streams;
    size_t mem_held, mem_limit;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *k_end_names[N_ENDS] = {"ok", "error", "timeout", "shutdown", "read_error",
                                          "client_abort", "unknown"};

static const char *k_route_names[MT_ROUTE_COUNT] = {
    "classify", "models", "model", "filters", "healthz", "readyz", "metrics", "openapi", "web", "stream", "other"};

const char *mt_route_name(mt_route r) { return r < MT_ROUTE_COUNT ? k_route_names[r] : "other"; }

static void histo_init(histo *h, const double *le, int nb)
{
    memset(h, 0, sizeof *h);
    h->le = le;
    h->nb = nb;
}

static void histo_add(histo *h, double v)
{
    int b = 0;
    while (b < h->nb && v > h->le[b]) b++;
    h->count[b]++;
    h->sum += v;
}

/* The series index of a model name, added when new (a reload may bring new names). -1 when
 * out of slots or memory. Called with g.mu held. */
static int model_index(const char *name)
{
    for (int i = 0; i < g.n_models; i++)
        if (!strcmp(g.models[i], name)) return i;
    if (!g.models || g.n_models == MAX_MODELS || !(g.models[g.n_models] = strdup(name))) return -1;
    int i = g.n_models++;
    histo_init(&g.batch_jobs[i], k_sizes, (int)(sizeof k_sizes / sizeof *k_sizes));
    histo_init(&g.batch_windows[i], k_sizes, (int)(sizeof k_sizes / sizeof *k_sizes));
    histo_init(&g.inference[i], k_latency, (int)(sizeof k_latency / sizeof *k_latency));
    return i;
}

int metrics_init(const char *const *model_names, int n_models)
{
    pthread_mutex_lock(&g.mu);
    g.n_models = 0;
    g.models = calloc(MAX_MODELS, sizeof *g.models);
    g.batch_jobs = calloc(MAX_MODELS, sizeof *g.batch_jobs);
    g.batch_windows = calloc(MAX_MODELS, sizeof *g.batch_windows);
    g.inference = calloc(MAX_MODELS, sizeof *g.inference);
    g.audio_seconds = calloc(MAX_MODELS, sizeof *g.audio_seconds);
    g.classified = calloc(MAX_MODELS, sizeof *g.classified);
    int ok = g.models && g.batch_jobs && g.batch_windows && g.inference && g.audio_seconds &&
             g.classified;
    for (int i = 0; ok && i < n_models; i++) ok = model_index(model_names[i]) >= 0;
    for (int r = 0; r < MT_ROUTE_COUNT; r++)
        histo_init(&g.latency[r], k_latency, (int)(sizeof k_latency / sizeof *k_latency));
    histo_init(&g.decode, k_latency, (int)(sizeof k_latency / sizeof *k_latency));
    histo_init(&g.queue, k_latency, (int)(sizeof k_latency / sizeof *k_latency));
    histo_init(&g.stream_hop, k_latency, (int)(sizeof k_latency / sizeof *k_latency));
    pthread_mutex_unlock(&g.mu);
    if (!ok) metrics_free();
    return ok ? 0 : -1;
}

void metrics_free(void)
{
    pthread_mutex_lock(&g.mu);
    for (int i = 0; g.models && i < g.n_models; i++) free(g.models[i]);
    free(g.models);
    free(g.batch_jobs);
    free(g.batch_windows);
    free(g.inference);
    free(g.audio_seconds);
    free(g.classified);
    g.models = NULL, g.batch_jobs = g.batch_windows = g.inference = NULL;
    g.audio_seconds = NULL, g.classified = NULL, g.n_models = 0;
    pthread_mutex_unlock(&g.mu);
}

void metrics_request(mt_route r, int status, double seconds)
{
    if (r >= MT_ROUTE_COUNT) r = MT_OTHER;
    pthread_mutex_lock(&g.mu);
    /* Statuses seen per route: a handful; the last slot takes any overflow. */
    int i = 0;
    while (i < MAX_STATUSES - 1 && g.statuses[r][i] && g.statuses[r][i] != status) i++;
    if (!g.statuses[r][i]) g.statuses[r][i] = status;
    g.by_status[r][i]++;
    histo_add(&g.latency[r], seconds);
    pthread_mutex_unlock(&g.mu);
}

void metrics_in_flight(int delta)
{
    pthread_mutex_lock(&g.mu);
    g.in_flight += delta;
    pthread_mutex_unlock(&g.mu);
}

void metrics_classified(const char *name, double decode_s, double queue_s, double audio_s)
{
    pthread_mutex_lock(&g.mu);
    int model = model_index(name);
    histo_add(&g.decode, decode_s);
    histo_add(&g.queue, queue_s);
    if (model >= 0 && model < g.n_models) {
        g.audio_seconds[model] += audio_s;
        g.classified[model]++;
    }
    pthread_mutex_unlock(&g.mu);
}

void metrics_stream_piece(double seconds)
{
    pthread_mutex_lock(&g.mu);
    histo_add(&g.stream_hop, seconds);
    pthread_mutex_unlock(&g.mu);
}

void metrics_batch(const char *name, int jobs, int windows, double seconds)
{
    pthread_mutex_lock(&g.mu);
    int model = model_index(name);
    if (model >= 0 && model < g.n_models) {
        histo_add(&g.batch_jobs[model], jobs);
        histo_add(&g.batch_windows[model], windows);
        histo_add(&g.inference[model], seconds);
    }
    pthread_mutex_unlock(&g.mu);
}

void metrics_request_end(const char *how)
{
    int i = 0;
    while (i < N_ENDS - 1 && strcmp(k_end_names[i], how)) i++;
    pthread_mutex_lock(&g.mu);
    g.ends[i]++;
    pthread_mutex_unlock(&g.mu);
}

void metrics_connection_refused(void)
{
    pthread_mutex_lock(&g.mu);
    g.conn_refused++;
    pthread_mutex_unlock(&g.mu);
}

void metrics_server_gauges(int decoding, size_t mem_held, size_t mem_limit, int connections, int streams)
{
    pthread_mutex_lock(&g.mu);
    g.decoding = decoding, g.mem_held = mem_held, g.mem_limit = mem_limit;
    g.connections = connections;
    g.streams = streams;
    pthread_mutex_unlock(&g.mu);
}

/* A growing string buffer for the exposition text. */
typedef struct sbuf { char *s; size_t len, cap; int oom; } sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        if (b->oom) return;
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (w < 0) { b->oom = 1; return; }
        if (b->s && b->len + (size_t)w < b->cap) { b->len += (size_t)w; return; }
        size_t ncap = b->cap ? b->cap * 2 : 16384;
        while (ncap < b->len + (size_t)w + 1) ncap *= 2;
        char *ns = realloc(b->s, ncap);
        if (!ns) { b->oom = 1; return; }
        b->s = ns, b->cap = ncap;
    }
}

static void head(sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Cumulative buckets; `labels` is "" or `key="value"`. */
static void histo_print(sbuf *b, const char *name, const char *labels, const histo *h)
{
    unsigned long long cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < h->nb; i++) {
        cum += h->count[i];
        sb_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->le[i], cum);
    }
    cum += h->count[h->nb];
    sb_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, cum);
    sb_printf(b, "%s_sum%s%s%s %.9g\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", h->sum);
    sb_printf(b, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", cum);
}

/* How requests ended, refused connections, decodes in progress, memory held. Called with
 * g.mu held. */
static void render_reliability(sbuf *b)
{
    head(b, "audioclass_requests_ended_total", "counter",
         "Requests by how they ended: ok (answer sent), client_abort, timeout, read_error, "
         "error (e.g. malformed HTTP MHD answered), shutdown.");
    for (int i = 0; i < N_ENDS; i++)
        sb_printf(b, "audioclass_requests_ended_total{end=\"%s\"} %llu\n", k_end_names[i], g.ends[i]);
    head(b, "audioclass_connections_refused_total", "counter",
         "Connections closed at once because --max-connections were open.");
    sb_printf(b, "audioclass_connections_refused_total %llu\n", g.conn_refused);
    head(b, "audioclass_connections_open", "gauge", "Open client connections.");
    sb_printf(b, "audioclass_connections_open %d\n", g.connections);
    head(b, "audioclass_streams_open", "gauge", "Open WebSocket streams (GET /stream), admitted and not yet closed.");
    sb_printf(b, "audioclass_streams_open %d\n", g.streams);
    head(b, "audioclass_decodes_in_progress", "gauge", "Uploads being decoded or waiting for a decoder.");
    sb_printf(b, "audioclass_decodes_in_progress %d\n", g.decoding);
    head(b, "audioclass_memory_held_bytes", "gauge",
         "Bytes requests hold under --max-memory: bodies, decoded audio, answers.");
    sb_printf(b, "audioclass_memory_held_bytes %zu\n", g.mem_held);
    head(b, "audioclass_memory_limit_bytes", "gauge", "--max-memory (0: no limit).");
    sb_printf(b, "audioclass_memory_limit_bytes %zu\n", g.mem_limit);
}

/* Open file descriptors: the entries of /proc/self/fd (less the one reading it). */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;
}

/* Seconds since the epoch at which the machine booted (/proc/stat btime), or -1. */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[256];
    double bt = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lf", &bt) == 1) break;
    fclose(f);
    return bt;
}

/* The standard process_* series (as Prometheus client libraries export them), from /proc,
 * and audioclass_build_info. Series whose source cannot be read are left out. */
static void process_metrics(sbuf *b)
{
    head(b, "audioclass_build_info", "gauge", "Always 1; the version of the running binary as a label.");
    sb_printf(b, "audioclass_build_info{version=\"%s\"} 1\n", AC_VERSION);
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[1024];
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[got] = 0;
    /* Fields after the command name, which is in parentheses and may hold spaces. */
    const char *p = strrchr(buf, ')');
    unsigned long utime, stime, vsize;
    unsigned long long start;
    long rss;
    if (p && tick > 0 &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
                      "%llu %lu %ld", &utime, &stime, &start, &vsize, &rss) == 5) {
        head(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        sb_printf(b, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / (double)tick);
        head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        sb_printf(b, "process_resident_memory_bytes %ld\n", rss * page);
        head(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        sb_printf(b, "process_virtual_memory_bytes %lu\n", vsize);
        double bt = boot_time();
        if (bt >= 0) {
            head(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
            sb_printf(b, "process_start_time_seconds %.2f\n", bt + (double)start / (double)tick);
        }
    }
    long fds = open_fds();
    if (fds >= 0) {
        head(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        sb_printf(b, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        head(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        sb_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}

char *metrics_render(int queue_depth, int queue_capacity, int ready)
{
    sbuf b = {0};
    char lab[160];
    pthread_mutex_lock(&g.mu);
    head(&b, "audioclass_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (int r = 0; r < MT_ROUTE_COUNT; r++)
        for (int i = 0; i < MAX_STATUSES && g.statuses[r][i]; i++)
            sb_printf(&b, "audioclass_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                      k_route_names[r], g.statuses[r][i], g.by_status[r][i]);
    head(&b, "audioclass_request_duration_seconds", "histogram",
         "Time from request start to response queued, by route.");
    for (int r = 0; r < MT_ROUTE_COUNT; r++) {
        snprintf(lab, sizeof lab, "route=\"%s\"", k_route_names[r]);
        histo_print(&b, "audioclass_request_duration_seconds", lab, &g.latency[r]);
    }
    head(&b, "audioclass_requests_in_flight", "gauge", "Requests started and not yet answered.");
    sb_printf(&b, "audioclass_requests_in_flight %ld\n", g.in_flight);
    head(&b, "audioclass_queue_depth", "gauge", "Decoded clips waiting for inference.");
    sb_printf(&b, "audioclass_queue_depth %d\n", queue_depth);
    head(&b, "audioclass_queue_capacity", "gauge", "Bound of the inference queue.");
    sb_printf(&b, "audioclass_queue_capacity %d\n", queue_capacity);
    head(&b, "audioclass_ready", "gauge", "1 while the server accepts work, 0 while draining.");
    sb_printf(&b, "audioclass_ready %d\n", ready);
    head(&b, "audioclass_decode_seconds", "histogram", "Audio decode and resample time per clip.");
    histo_print(&b, "audioclass_decode_seconds", "", &g.decode);
    head(&b, "audioclass_queue_wait_seconds", "histogram", "Time a clip waited for its batch.");
    histo_print(&b, "audioclass_queue_wait_seconds", "", &g.queue);
    head(&b, "audioclass_stream_piece_seconds", "histogram",
         "GET /stream: from the arrival of a piece of audio to its results queued for sending.");
    histo_print(&b, "audioclass_stream_piece_seconds", "", &g.stream_hop);
    head(&b, "audioclass_batch_size_clips", "histogram", "Clips per forward-pass batch.");
    for (int m = 0; m < g.n_models; m++) {
        snprintf(lab, sizeof lab, "model=\"%s\"", g.models[m]);
        histo_print(&b, "audioclass_batch_size_clips", lab, &g.batch_jobs[m]);
    }
    head(&b, "audioclass_batch_size_windows", "histogram", "Windows per forward-pass batch.");
    for (int m = 0; m < g.n_models; m++) {
        snprintf(lab, sizeof lab, "model=\"%s\"", g.models[m]);
        histo_print(&b, "audioclass_batch_size_windows", lab, &g.batch_windows[m]);
    }
    head(&b, "audioclass_inference_seconds", "histogram", "Wall time of one batch's forward passes.");
    for (int m = 0; m < g.n_models; m++) {
        snprintf(lab, sizeof lab, "model=\"%s\"", g.models[m]);
        histo_print(&b, "audioclass_inference_seconds", lab, &g.inference[m]);
    }
    head(&b, "audioclass_audio_seconds_total", "counter", "Seconds of audio classified.");
    for (int m = 0; m < g.n_models; m++)
        sb_printf(&b, "audioclass_audio_seconds_total{model=\"%s\"} %.6f\n", g.models[m],
                  g.audio_seconds[m]);
    head(&b, "audioclass_classifications_total", "counter", "Clips classified successfully.");
    for (int m = 0; m < g.n_models; m++)
        sb_printf(&b, "audioclass_classifications_total{model=\"%s\"} %llu\n", g.models[m],
                  g.classified[m]);
    render_reliability(&b);
    pthread_mutex_unlock(&g.mu);
    process_metrics(&b);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
