/* cli_serve.c - `audioclass serve`: load models, start the scheduler and the HTTP server,
 * then handle signals: SIGHUP reloads the model files, SIGTERM/SIGINT drain and exit,
 * SIGUSR1/SIGUSR2 are logged and ignored, SIGPIPE is ignored. */
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
#include "test_hooks.h"

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

static json_t *model_names(const registry *reg)
{
    json_t *names = json_array();
    for (int i = 0; names && i < reg->n; i++) json_array_append_new(names, json_string(reg->models[i].name));
    return names;
}

/* One line per model file that could not be loaded (skipped: no --strict). */
static void log_failed(const registry *reg)
{
    for (int i = 0; i < reg->n_failed; i++)
        log_line("model_failed", json_pack("{s:s,s:s}", "model", reg->failed[i].name, "error",
                                           reg->failed[i].error));
}

static void log_listening(const serve_config *c, const registry *reg, const http_server *h)
{
    /* A URL a person can open: the bound address, or localhost for a wildcard bind. */
    char url[160];
    const char *host = !strcmp(c->bind, "0.0.0.0") || !strcmp(c->bind, "::") ? "localhost" : c->bind;
    snprintf(url, sizeof url, strchr(host, ':') ? "http://[%s]:%d/" : "http://%s:%d/", host,
             http_server_port(h));
    log_line("listening",
             json_pack("{s:s,s:s,s:i,s:o,s:i,s:i,s:i,s:i,s:f,s:I,s:I,s:b,s:b,s:s}", "url", url, "bind",
                       c->bind, "port", http_server_port(h), "models", model_names(reg), "threads",
                       c->threads, "http_threads", c->http_threads, "queue_size", c->queue_size,
                       "max_batch", c->max_batch, "max_batch_wait_ms", c->max_batch_wait_ms,
                       "max_body_bytes", (json_int_t)c->max_body_bytes, "max_memory",
                       (json_int_t)c->max_memory, "auth", c->api_key_file != NULL, "cors",
                       c->cors_origin != NULL, "models_dir", c->n_models ? "" : c->models_dir));
}

/* The last reference to a model set is gone (no request uses it): its models leave the
 * scheduler before they are freed. */
static void unregister_models(void *user, registry *reg)
{
    for (int i = 0; i < reg->n; i++) ac_scheduler_remove_model(user, reg->models[i].slot);
}

/* Gives each model of a new set its scheduler slot. On failure nothing stays registered. */
static ac_status register_models(ac_scheduler *sched, registry *reg, char *err)
{
    for (int i = 0; i < reg->n; i++) {
        ac_status st = ac_scheduler_add_model(sched, reg->models[i].model, &reg->models[i].slot, err);
        if (st) {
            for (int j = 0; j < i; j++) ac_scheduler_remove_model(sched, reg->models[j].slot);
            return st;
        }
    }
    reg->on_free = unregister_models;
    reg->on_free_user = sched;
    return AC_OK;
}

/* SIGHUP: load the model files again and switch to the new set in one step. Requests in
 * flight keep the set they started with (each holds a reference); a file that fails to load
 * where a good model was keeps the whole old set (registry_reload). */
static void reload(const serve_config *cfg, registry_holder *regs, ac_scheduler *sched)
{
    char err[AC_ERR_LEN];
    registry *cur = registry_holder_get(regs), *next = NULL;
    ac_status st = registry_reload(cfg, cur, &next, err);
    registry_release(cur);
    if (st == AC_OK && (st = register_models(sched, next, err)) != AC_OK) {
        registry_release(next);
        next = NULL;
    }
    if (st) {
        log_line("reload_failed", json_pack("{s:s,s:s}", "error", err, "kept", "the previous models"));
        return;
    }
    log_failed(next);
    json_t *names = model_names(next);
    int n_failed = next->n_failed;
    registry_holder_swap(regs, next);
    log_line("reload", json_pack("{s:o,s:i}", "models", names, "failed", n_failed));
}

/* Waits for every in-flight request to be answered, then for the scheduler to stop.
 * Returns 0 when everything was answered within the timeout, 1 when requests are left but
 * the scheduler has stopped (safe to clean up), 2 when a job may still be running. A second
 * SIGTERM/SIGINT stops the wait. */
static int drain(http_server *h, ac_scheduler *sched, const sigset_t *sigs, double timeout_s)
{
    double deadline = now_s() + timeout_s;
    http_server_begin_drain(h);
    ac_scheduler_set_max_wait(sched, 0);
    /* The scheduler keeps accepting while requests that were mid-upload at the signal
     * finish arriving: they were accepted, so they get a real answer. */
    while (http_server_in_flight(h) > 0 && now_s() < deadline) {
        struct timespec tick = {0, 10 * 1000 * 1000};
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            log_error("shutdown_forced", "second signal: not waiting for in-flight requests");
            deadline = 0;
            break;
        }
    }
    double left_ms = (deadline - now_s()) * 1e3;
    if (!ac_scheduler_shutdown(sched, left_ms > 0 ? left_ms : 0)) return 2;
    return http_server_in_flight(h) > 0;
}

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    }
    return "?";
}

static void hold_dispatch(void) { test_hold("dispatch"); }

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
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client hanging up must not kill the server */
    /* Libraries that print to stderr (libmpg123 through libsndfile) would break the JSON
     * log: their lines are read back from a pipe and logged as JSON. */
    log_capture_stderr();

    char err[AC_ERR_LEN];
    registry *reg = NULL;
    registry_holder regs;
    int have_regs = 0;
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
        log_capture_stop();
        return 1;
    }
    log_failed(reg);
    if (cfg.api_key_file && auth_load(cfg.api_key_file, &keys, err)) {
        log_error("startup_failed", err);
        goto out;
    }
    names = calloc((size_t)reg->n, sizeof *names);
    models = calloc((size_t)reg->n, sizeof *models);
    if (!names || !models) {
        log_error("startup_failed", "out of memory");
        goto out;
    }
    for (int i = 0; i < reg->n; i++) names[i] = reg->models[i].name, models[i] = reg->models[i].model;
    if (metrics_init(names, reg->n)) {
        log_error("startup_failed", "out of memory");
        goto out;
    }
    ac_sched_config sc = {.queue_size = cfg.queue_size, .max_batch = cfg.max_batch,
                          .max_wait_ms = cfg.max_batch_wait_ms, .threads = cfg.threads,
                          .max_samples = (size_t)(cfg.max_queue_bytes / sizeof(float)),
                          .hold = getenv("AUDIOCLASS_TEST_HOLD_DIR") ? hold_dispatch : NULL};
    if (ac_scheduler_create(models, reg->n, &sc, &sched, err)) {
        log_error("startup_failed", err);
        goto out;
    }
    for (int i = 0; i < reg->n; i++) reg->models[i].slot = i; /* create took them in order */
    reg->on_free = unregister_models;
    reg->on_free_user = sched;
    registry_holder_init(&regs, reg);
    reg = NULL;
    have_regs = 1;
    if (http_server_start(&cfg, &regs, sched, keys, &h, err)) {
        log_error("startup_failed", err);
        goto out;
    }
    {
        registry *cur = registry_holder_get(&regs);
        log_listening(&cfg, cur, h);
        registry_release(cur);
    }

    int sig = 0;
    for (;;) {
        if (sigwait(&sigs, &sig)) continue;
        if (sig == SIGTERM || sig == SIGINT) break;
        if (sig == SIGHUP) {
            log_line("reload_begin", json_pack("{s:s}", "signal", "SIGHUP"));
            reload(&cfg, &regs, sched);
        } else {
            log_line("signal_ignored", json_pack("{s:s}", "signal", sig_name(sig)));
        }
    }
    log_line("shutdown_begin", json_pack("{s:s,s:i,s:f}", "signal", sig_name(sig), "in_flight",
                                         http_server_in_flight(h), "timeout_s",
                                         cfg.shutdown_timeout_s));
    int left = drain(h, sched, &sigs, cfg.shutdown_timeout_s);
    if (left == 2) {
        /* A forward pass still holds requests' memory: freeing now would pull it from
         * under the dispatcher. Leave without cleanup. */
        log_line("shutdown_incomplete", json_pack("{s:i}", "in_flight", http_server_in_flight(h)));
        log_capture_stop();
        _exit(1);
    }
    if (left) log_line("shutdown_incomplete", json_pack("{s:i}", "in_flight", http_server_in_flight(h)));
    else log_line("shutdown_complete", NULL);
    exit_code = left ? 1 : 0;
out:
    http_server_stop(h);
    if (have_regs) registry_holder_destroy(&regs); /* takes the models out of the scheduler */
    registry_release(reg);
    ac_scheduler_free(sched);
    metrics_free();
    auth_free(keys);
    free(names);
    free(models);
    log_capture_stop();
    return exit_code;
}
