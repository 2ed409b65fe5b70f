/* cli_serve.c - `audioclass serve`: load models, start the scheduler and the HTTP server,
 * wait for SIGTERM/SIGINT, drain, exit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "auth.h"
#include "cli.h"
#include "engine.h"
#include "http_server.h"
#include "metrics.h"
#include "model_path.h"
#include "registry.h"
#include "serve_config.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void log_error(const char *event, const char *msg)
{
    log_line(event, json_pack("{s:s}", "error", msg));
}

static void log_listening(const serve_config *c, const registry *reg, const http_server *h)
{
    json_t *names = json_array();
    for (int i = 0; i < reg->n; i++) json_array_append_new(names, json_string(reg->models[i].name));
    /* A URL a person can open: the bound address, or localhost for a wildcard bind. */
    char url[160];
    const char *host = !strcmp(c->bind, "0.0.0.0") || !strcmp(c->bind, "::") ? "localhost" : c->bind;
    snprintf(url, sizeof url, strchr(host, ':') ? "http://[%s]:%d/" : "http://%s:%d/", host,
             http_server_port(h));
    log_line("listening",
             json_pack("{s:s,s:s,s:i,s:o,s:i,s:i,s:i,s:i,s:f,s:I,s:b,s:b,s:s}", "url", url, "bind", c->bind, "port",
                       http_server_port(h), "models", names, "threads", c->threads, "http_threads",
                       c->http_threads, "queue_size", c->queue_size, "max_batch", c->max_batch,
                       "max_batch_wait_ms", c->max_batch_wait_ms, "max_body_bytes",
                       (json_int_t)c->max_body_bytes, "auth", c->api_key_file != NULL, "cors",
                       c->cors_origin != NULL, "models_dir", c->n_models ? "" : c->models_dir));
}

/* Waits for every in-flight request to be answered, then for the scheduler to stop.
 * Returns 0 when everything was answered within the timeout, 1 when requests are left but
 * the scheduler has stopped (safe to clean up), 2 when a job may still be running. A second
 * signal stops the wait. */
static int drain(http_server *h, ac_scheduler *sched, const sigset_t *sigs, double timeout_s)
{
    double deadline = now_s() + timeout_s;
    http_server_begin_drain(h);
    ac_scheduler_set_max_wait(sched, 0);
    /* The scheduler keeps accepting while requests that were mid-upload at the signal
     * finish arriving: they were accepted, so they get a real answer. */
    while (http_server_in_flight(h) > 0 && now_s() < deadline) {
        struct timespec tick = {0, 10 * 1000 * 1000};
        if (sigtimedwait(sigs, NULL, &tick) > 0) {
            log_error("shutdown_forced", "second signal: not waiting for in-flight requests");
            deadline = 0;
            break;
        }
    }
    double left_ms = (deadline - now_s()) * 1e3;
    if (!ac_scheduler_shutdown(sched, left_ms > 0 ? left_ms : 0)) return 2;
    return http_server_in_flight(h) > 0;
}

static const char *const *names_fill(const registry *reg, const char **names,
                                     const ac_model **models)
{
    for (int i = 0; i < reg->n; i++) names[i] = reg->models[i].name, models[i] = reg->models[i].model;
    return names;
}

int cli_serve(int argc, char **argv)
{
    serve_config cfg;
    int rc = serve_config_parse(argc, argv, &cfg);
    if (rc) return rc == 1 ? 0 : 2;

    /* Signals are taken synchronously by this thread (sigwait): block them before any
     * other thread exists, so that MHD's, the dispatcher's and OpenMP's threads inherit
     * the mask and never run a handler. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client hanging up must not kill the server */

    char err[AC_ERR_LEN];
    registry reg;
    auth *keys = NULL;
    ac_scheduler *sched = NULL;
    http_server *h = NULL;
    const char **names = NULL;
    const ac_model **models = NULL;
    int exit_code = 1;
    char dir[MODEL_PATH_MAX], looked[1024];
    if (cfg.n_models == 0 && !cfg.models_dir) {
        if (model_dir_find(dir, sizeof dir, looked, sizeof looked)) {
            char msg[sizeof looked + 128];
            snprintf(msg, sizeof msg, "no models directory found (looked in: %s); pass "
                     "--models-dir DIR or --model NAME=PATH", looked);
            log_error("startup_failed", msg);
            return 1;
        }
        cfg.models_dir = dir;
    }
    if (registry_load(&cfg, &reg, err)) {
        log_error("startup_failed", err);
        return 1;
    }
    if (cfg.api_key_file && auth_load(cfg.api_key_file, &keys, err)) {
        log_error("startup_failed", err);
        goto out;
    }
    names = calloc((size_t)reg.n, sizeof *names);
    models = calloc((size_t)reg.n, sizeof *models);
    if (!names || !models || metrics_init(names_fill(&reg, names, models), reg.n)) {
        log_error("startup_failed", "out of memory");
        goto out;
    }
    ac_sched_config sc = {.queue_size = cfg.queue_size, .max_batch = cfg.max_batch,
                          .max_wait_ms = cfg.max_batch_wait_ms, .threads = cfg.threads,
                          .max_samples = (size_t)(cfg.max_queue_bytes / sizeof(float))};
    if (ac_scheduler_create(models, reg.n, &sc, &sched, err) ||
        http_server_start(&cfg, &reg, sched, keys, &h, err)) {
        log_error("startup_failed", err);
        goto out;
    }
    log_listening(&cfg, &reg, h);

    int sig = 0;
    sigwait(&sigs, &sig);
    log_line("shutdown_begin", json_pack("{s:s,s:i,s:f}", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM",
                                         "in_flight", http_server_in_flight(h), "timeout_s",
                                         cfg.shutdown_timeout_s));
    int left = drain(h, sched, &sigs, cfg.shutdown_timeout_s);
    if (left == 2) {
        /* A forward pass still holds requests' memory: freeing now would pull it from
         * under the dispatcher. Leave without cleanup. */
        log_line("shutdown_incomplete", json_pack("{s:i}", "in_flight", http_server_in_flight(h)));
        _exit(1);
    }
    if (left) log_line("shutdown_incomplete", json_pack("{s:i}", "in_flight", http_server_in_flight(h)));
    else log_line("shutdown_complete", NULL);
    exit_code = left ? 1 : 0;
out:
    http_server_stop(h);
    ac_scheduler_free(sched);
    metrics_free();
    auth_free(keys);
    registry_free(&reg);
    free(names);
    free(models);
    return exit_code;
}
