/* serve_config.c - the table of `serve` settings; defaults < environment < flags. */
#include "serve_config.h"

#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_INT, T_NUM, T_BYTES, T_STR, T_MODEL, T_FLAG } opt_type;

typedef struct opt {
    const char *flag;   /* long option name */
    const char *env;    /* AUDIOCLASS_* variable, NULL if none */
    opt_type type;
    size_t off;         /* field in serve_config */
    const char *def;    /* default, parsed like a user value (NULL: unset) */
    double min, max;    /* numeric range */
    const char *arg, *help;
} opt;

#define F(field) offsetof(serve_config, field)

static const opt k_opts[] = {
    {"model", "AUDIOCLASS_MODELS", T_MODEL, 0, NULL, 0, 0, "NAME=PATH",
     "serve this model file as NAME (repeatable; NAME= optional, default: file name\n"
     "without extension). Env: comma-separated list. Without it, every *.safetensors\n"
     "in --models-dir is served"},
    {"models-dir", "AUDIOCLASS_MODELS_DIR", T_STR, F(models_dir), NULL, 0, 0, "DIR",
     "directory scanned for *.safetensors when no --model is given (unset: the first\n"
     "that exists of ./models, EXE_DIR/../models, EXE_DIR/../share/audioclass/models\n"
     "and the install directory)"},
    {"port", "AUDIOCLASS_PORT", T_INT, F(port), "8080", 0, 65535, "PORT",
     "TCP port (0: any free port, logged at start)"},
    {"bind", "AUDIOCLASS_BIND", T_STR, F(bind), "0.0.0.0", 0, 0, "ADDR",
     "IPv4 or IPv6 address to listen on"},
    {"threads", "AUDIOCLASS_THREADS", T_INT, F(threads), "0", 0, 256, "N",
     "OpenMP threads per forward pass (0: all cores)"},
    {"http-threads", "AUDIOCLASS_HTTP_THREADS", T_INT, F(http_threads), "0", 0, 256, "N",
     "HTTP worker threads: parse, route and answer; decoding runs on --decode-threads\n"
     "(0: number of cores, at least 2)"},
    {"queue-size", "AUDIOCLASS_QUEUE_SIZE", T_INT, F(queue_size), "256", 1, 1000000, "N",
     "decoded requests waiting for inference; beyond it: 503 + Retry-After"},
    {"max-batch", "AUDIOCLASS_MAX_BATCH", T_INT, F(max_batch), "32", 1, 4096, "N",
     "windows per forward pass (memory grows with it)"},
    {"max-batch-wait-ms", "AUDIOCLASS_MAX_BATCH_WAIT_MS", T_NUM, F(max_batch_wait_ms), "0", 0,
     60000, "MS",
     "how long the oldest queued request may wait for its batch to fill (0: never wait; "
     "requests that arrive during a forward pass form the next batch)"},
    {"max-body-bytes", "AUDIOCLASS_MAX_BODY_BYTES", T_BYTES, F(max_body_bytes), "20M", 1,
     4294967296.0, "BYTES", "largest upload (K/M/G suffixes = KiB/MiB/GiB); beyond it: 413"},
    {"max-memory", "AUDIOCLASS_MAX_MEMORY", T_BYTES, F(max_memory), "512M", 0,
     1099511627776.0, "BYTES",
     "memory all requests together may hold: upload bodies, decoded audio until it is\n"
     "freed, answers until sent (0: no limit); a request that would exceed it: 503 +\n"
     "Retry-After; one that could never fit: 413"},
    {"max-upload-bytes", "AUDIOCLASS_MAX_UPLOAD_BYTES", T_BYTES, F(max_memory), NULL, 0,
     1099511627776.0, "BYTES", "old name of --max-memory"},
    {"decode-threads", "AUDIOCLASS_DECODE_THREADS", T_INT, F(decode_threads), "0", 0, 256, "N",
     "threads that decode uploads, off the HTTP threads (0: number of cores, at least 2)"},
    {"strict", "AUDIOCLASS_STRICT", T_FLAG, F(strict), NULL, 0, 1, "",
     "refuse to start (or to reload on SIGHUP) when any model file is bad; without it a\n"
     "bad file is skipped, logged and listed as failed in /models"},
    {"max-queue-bytes", "AUDIOCLASS_MAX_QUEUE_BYTES", T_BYTES, F(max_queue_bytes), "1G", 0,
     1099511627776.0, "BYTES",
     "memory for decoded audio waiting for or in inference (4 bytes a sample; 0: no\n"
     "limit); beyond it: 503 + Retry-After. One clip is always taken when none is held"},
    {"max-audio-seconds", "AUDIOCLASS_MAX_AUDIO_SECONDS", T_NUM, F(max_audio_seconds), "600",
     0.001, 86400, "S", "longest clip accepted; beyond it: 413"},
    {"request-timeout", "AUDIOCLASS_REQUEST_TIMEOUT", T_INT, F(request_timeout_s), "30", 0,
     86400, "S", "seconds a connection may stay idle while sending (0: never time out)"},
    {"max-connections", "AUDIOCLASS_MAX_CONNECTIONS", T_INT, F(max_connections), "1000", 1,
     100000, "N", "open connections in all"},
    {"max-connections-per-ip", "AUDIOCLASS_MAX_CONNECTIONS_PER_IP", T_INT,
     F(max_connections_per_ip), "0", 0, 100000, "N",
     "open connections per client address (0: no limit; a load balancer is one address)"},
    {"max-streams", "AUDIOCLASS_MAX_STREAMS", T_INT, F(max_streams), "256", 0, 100000, "N",
     "open WebSocket streams (GET /stream) at once; beyond it: 503 (0: no streams)"},
    {"max-stream-message-bytes", "AUDIOCLASS_MAX_STREAM_MESSAGE_BYTES", T_BYTES,
     F(max_stream_message), "1M", 64, 67108864.0, "BYTES",
     "largest WebSocket message a stream takes; beyond it: close 1009"},
    {"stream-idle-timeout", "AUDIOCLASS_STREAM_IDLE_TIMEOUT", T_INT, F(stream_idle_timeout_s), "60",
     0, 86400, "S", "seconds a stream may send nothing (not even a ping) before it is closed (0: never)"},
    {"shutdown-timeout", "AUDIOCLASS_SHUTDOWN_TIMEOUT", T_NUM, F(shutdown_timeout_s), "30", 0,
     3600, "S", "on SIGTERM/SIGINT, time allowed to answer everything in flight"},
    {"api-key-file", "AUDIOCLASS_API_KEY_FILE", T_STR, F(api_key_file), NULL, 0, 0, "FILE",
     "require `Authorization: Bearer KEY` or `X-API-Key: KEY` (one key per line;\n"
     "/healthz and /readyz stay open)"},
    {"cors-origin", "AUDIOCLASS_CORS_ORIGIN", T_STR, F(cors_origin), NULL, 0, 0, "ORIGIN",
     "send Access-Control-Allow-Origin: ORIGIN (e.g. * or https://app.example)"},
};
#define N_OPTS (int)(sizeof k_opts / sizeof k_opts[0])

/* Prints text word-wrapped to `width` columns, continuation lines indented by `indent`. */
static void wrap(FILE *f, const char *text, int indent, int width)
{
    int col = 0;
    for (const char *p = text; *p;) {
        size_t w = strcspn(p, " \n");
        if (col > 0 && col + 1 + (int)w > width) {
            fprintf(f, "\n%*s", indent, "");
            col = 0;
        }
        if (col > 0) fputc(' ', f), col++;
        fwrite(p, 1, w, f);
        col += (int)w;
        p += w;
        while (*p == ' ' || *p == '\n') p++;
    }
}

void serve_config_usage(FILE *f)
{
    fprintf(f, "usage: audioclass serve [options]\n\n"
               "Serves the HTTP API (see GET /openapi.json). Each option can also be set by\n"
               "its environment variable; a flag wins over the environment.\n\n");
    for (int i = 0; i < N_OPTS; i++) {
        const opt *o = &k_opts[i];
        char head[64];
        snprintf(head, sizeof head, "--%s%s%s", o->flag, o->arg[0] ? " " : "", o->arg);
        fprintf(f, "  %-28s ", head);
        wrap(f, o->help, 31, 48);
        fprintf(f, "\n  %-28s [env %s; default %s]\n", "", o->env,
                o->def ? o->def : o->type == T_FLAG ? "off" : "unset");
    }
    fprintf(f, "  %-28s this text\n", "--help");
}

/* Number with an optional binary size suffix (bytes only): 20M, 512K, 1G, 1MiB. */
static int parse_number(const char *s, opt_type t, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v)) return -1;
    if (t == T_BYTES && *end) {
        double mul = 0;
        switch (toupper((unsigned char)*end)) {
        case 'K': mul = 1024.0; break;
        case 'M': mul = 1024.0 * 1024; break;
        case 'G': mul = 1024.0 * 1024 * 1024; break;
        default: return -1;
        }
        end++;
        if (!strcasecmp(end, "iB") || !strcasecmp(end, "B")) end += strlen(end);
        v *= mul;
    }
    if (*end) return -1;
    if ((t == T_INT || t == T_BYTES) && v != floor(v)) return -1;
    *out = v;
    return 0;
}

/* NAME=PATH or PATH -> one model entry. */
static int add_model(serve_config *c, const char *spec, size_t len, const char *src)
{
    if (c->n_models == SERVE_MAX_MODELS) {
        fprintf(stderr, "audioclass serve: at most %d models\n", SERVE_MAX_MODELS);
        return -1;
    }
    serve_model_arg *m = &c->models[c->n_models];
    const char *eq = memchr(spec, '=', len);
    const char *path = eq ? eq + 1 : spec;
    size_t plen = len - (size_t)(path - spec);
    if (plen == 0 || plen >= sizeof m->path) {
        fprintf(stderr, "audioclass serve: %s: bad model \"%.*s\"\n", src, (int)len, spec);
        return -1;
    }
    memcpy(m->path, path, plen);
    m->path[plen] = 0;
    if (eq) {
        size_t nlen = (size_t)(eq - spec);
        if (nlen == 0 || nlen >= sizeof m->name) {
            fprintf(stderr, "audioclass serve: %s: bad model name in \"%.*s\"\n", src, (int)len, spec);
            return -1;
        }
        memcpy(m->name, spec, nlen);
        m->name[nlen] = 0;
    } else {
        const char *base = strrchr(m->path, '/');
        base = base ? base + 1 : m->path;
        const char *dot = strrchr(base, '.');
        size_t nlen = dot && dot != base ? (size_t)(dot - base) : strlen(base);
        if (nlen == 0 || nlen >= sizeof m->name) {
            fprintf(stderr, "audioclass serve: %s: cannot derive a name from \"%s\"\n", src, m->path);
            return -1;
        }
        memcpy(m->name, base, nlen);
        m->name[nlen] = 0;
    }
    c->n_models++;
    return 0;
}

static int set_value(serve_config *c, const opt *o, const char *val, const char *src)
{
    char *field = (char *)c + o->off;
    if (o->type == T_STR) {
        *(const char **)field = val;
        return 0;
    }
    if (o->type == T_MODEL) {
        /* The environment holds a list; a flag is one entry. */
        if (!strcmp(src, o->env)) {
            for (const char *p = val; *p;) {
                size_t len = strcspn(p, ",");
                if (len && add_model(c, p, len, src)) return -1;
                p += len + (p[len] == ',');
            }
            return 0;
        }
        return add_model(c, val, strlen(val), src);
    }
    if (o->type == T_FLAG) {
        /* a flag sets 1; the environment says 1/0 or true/false */
        int on = !strcmp(val, "1") || !strcasecmp(val, "true") || !strcasecmp(val, "yes");
        if (!on && strcmp(val, "0") && strcasecmp(val, "false") && strcasecmp(val, "no")) {
            fprintf(stderr, "audioclass serve: %s: \"%s\" is not 1/0 or true/false\n", src, val);
            return -1;
        }
        *(int *)field = on;
        return 0;
    }
    double v;
    if (parse_number(val, o->type, &v) || v < o->min || v > o->max) {
        fprintf(stderr, "audioclass serve: %s: \"%s\" is not a %s in [%g, %g]\n", src, val,
                o->type == T_NUM ? "number" : "whole number", o->min, o->max);
        return -1;
    }
    if (o->type == T_INT) *(int *)field = (int)v;
    else *(double *)field = v;
    return 0;
}

int serve_config_parse(int argc, char **argv, serve_config *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_OPTS; i++)
        if (k_opts[i].def && set_value(c, &k_opts[i], k_opts[i].def, "default")) return 2;
    for (int i = 0; i < N_OPTS; i++) {
        const char *v = k_opts[i].env ? getenv(k_opts[i].env) : NULL;
        if (v && *v && set_value(c, &k_opts[i], v, k_opts[i].env)) return 2;
    }
    struct option lopts[N_OPTS + 2];
    for (int i = 0; i < N_OPTS; i++)
        lopts[i] = (struct option){k_opts[i].flag,
                                   k_opts[i].type == T_FLAG ? no_argument : required_argument, NULL,
                                   256 + i};
    lopts[N_OPTS] = (struct option){"help", no_argument, NULL, 'h'};
    lopts[N_OPTS + 1] = (struct option){0, 0, 0, 0};
    int env_models = c->n_models, flag_models = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        if (ch == 'h') {
            serve_config_usage(stdout);
            return 1;
        }
        if (ch < 256 || ch >= 256 + N_OPTS) {
            serve_config_usage(stderr);
            return 2;
        }
        const opt *o = &k_opts[ch - 256];
        char src[64];
        snprintf(src, sizeof src, "--%s", o->flag);
        /* --model flags replace the environment's list rather than adding to it. */
        if (o->type == T_MODEL && flag_models++ == 0 && env_models) c->n_models = 0;
        if (set_value(c, o, o->type == T_FLAG ? "1" : optarg, src)) return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "audioclass serve: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    return 0;
}
