/* serve_config.h - `audioclass serve` settings: defaults, AUDIOCLASS_* environment
 * variables, then command-line flags (a flag wins over the environment). One table in
 * serve_config.c describes every setting, so --help, parsing and validation agree. */
#ifndef AC_SERVE_CONFIG_H
#define AC_SERVE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define SERVE_MAX_MODELS 64

/* One --model NAME=PATH (or PATH: the name is the file name without extension). */
typedef struct serve_model_arg {
    char name[64];
    char path[1024];
} serve_model_arg;

/* String pointers point into argv/environ (alive for the process); nothing here needs freeing. */
typedef struct serve_config {
    const char *models_dir;         /* NULL: searched (model_path.h) */
    int n_models;                   /* --model entries; 0 = every *.safetensors in models_dir */
    serve_model_arg models[SERVE_MAX_MODELS];
    int port;
    const char *bind;
    int threads;                    /* OpenMP threads for inference; 0 = all cores */
    int http_threads;               /* MHD thread pool; 0 = number of cores */
    int queue_size;
    int max_batch;                  /* windows per forward pass */
    double max_batch_wait_ms;
    double max_body_bytes;          /* double so that 1G etc. parse uniformly; whole bytes */
    double max_queue_bytes;         /* decoded audio held by the scheduler; 0 = no limit */
    double max_memory;              /* bytes all requests hold (bodies, decoded audio, answers);
                                     * 0 = no limit (--max-upload-bytes is its old name) */
    int decode_threads;             /* decode pool; 0 = number of cores, at least 2 */
    int strict;                     /* a bad model file stops start-up / refuses a reload */
    double max_audio_seconds;
    int request_timeout_s;          /* idle connection timeout; 0 = none */
    int max_connections;
    int max_connections_per_ip;     /* 0 = unlimited */
    int max_streams;                /* open WebSocket streams; 0 = /stream refused */
    double max_stream_message;      /* bytes of one WebSocket message (close 1009 beyond) */
    int stream_idle_timeout_s;      /* a stream that sends nothing this long is closed; 0 = never */
    double shutdown_timeout_s;
    const char *api_key_file;       /* NULL = no authentication */
    const char *cors_origin;        /* NULL = no CORS headers */
} serve_config;

/* Fills *c from defaults, the environment and argv (argv[0] is the subcommand name).
 * Returns 0 to go on, 1 when --help was printed (exit 0), 2 on a bad value (a message is
 * on stderr; exit 2). */
int serve_config_parse(int argc, char **argv, serve_config *c);
void serve_config_usage(FILE *f);

#endif
