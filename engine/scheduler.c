/* scheduler.c - bounded job queue + dispatcher thread that forms per-model batches. */
#include "scheduler.h"

#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A queued job. Slots come from a pool of queue_size allocated at create, so submit never
 * allocates and the queue bound is the pool size. Queued slots form one FIFO across all
 * models (so the oldest job, whatever its model, decides what runs next); free slots form
 * a singly linked free list through `next`. */
typedef struct job {
    int model;
    ac_task_fn run;  /* a stream job; NULL for a clip */
    const float *samples;
    size_t n, windows;
    ac_job_done_fn done;
    void *user;
    double t_submit; /* ms, CLOCK_MONOTONIC */
    struct job *prev, *next;
} job;

struct ac_scheduler {
    int n_models;              /* slots in use are below this (guarded by mu) */
    const ac_model **models;   /* [AC_SCHED_MAX_MODELS], borrowed; NULL = free slot */
    ac_workspace **ws;         /* [AC_SCHED_MAX_MODELS], owned; used by the dispatcher only */
    int running_model;         /* slot of the batch being run, -1 when none (guarded by mu) */
    pthread_cond_t batch_done; /* a batch finished (remove_model waits for its slot's) */
    ac_sched_config cfg;

    pthread_mutex_t mu;        /* guards everything below */
    pthread_cond_t work;       /* queue changed or shutdown began */
    pthread_cond_t stopped_cv; /* dispatcher finished */
    job *pool, *free_list, *head, *tail;
    int depth;
    size_t *queued_windows;    /* [n_models] windows waiting per model */
    size_t held_samples;       /* samples of jobs submitted whose callback has not returned */
    int shutting, stopped;

    pthread_t thread;

    /* Dispatcher-only batch arrays, [queue_size] each: a batch never holds more jobs than
     * the queue can. */
    job *batch;
    const float **samples;
    size_t *lens;
    ac_prediction *preds;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static struct timespec ms_to_timespec(double ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1e3);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1e3) * 1e6);
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    if (ts.tv_nsec < 0) ts.tv_nsec = 0;
    return ts;
}

static void unlink_job(ac_scheduler *s, job *j)
{
    if (j->prev) j->prev->next = j->next; else s->head = j->next;
    if (j->next) j->next->prev = j->prev; else s->tail = j->prev;
    s->queued_windows[j->model] -= j->windows;
    s->depth--;
    j->prev = NULL;
    j->next = s->free_list;
    s->free_list = j;
}

/* Moves up to max_batch windows of `model`'s oldest jobs into s->batch (at least one job,
 * however many windows it has: ac_classify_many splits it). Stops at the first job that
 * does not fit, so a model's jobs keep their order. Called with mu held. */
static int take_batch(ac_scheduler *s, int model, int tasks, size_t *windows)
{
    int nb = 0;
    size_t w = 0;
    for (job *j = s->head, *next; j; j = next) {
        next = j->next;
        if (j->model != model || (j->run != NULL) != tasks) continue;
        if (nb > 0 && w + j->windows > (size_t)s->cfg.max_batch) break;
        s->batch[nb++] = *j;
        w += j->windows;
        unlink_job(s, j);
    }
    *windows = w;
    return nb;
}

static void run_batch(ac_scheduler *s, int model, int nb, size_t windows)
{
    ac_job_result r;
    memset(&r, 0, sizeof r);
    const int tasks = s->batch[0].run != NULL;
    double t0 = now_ms();
    if (tasks) { /* streams, one thread each */
        const int nt = s->cfg.threads > 0 ? s->cfg.threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt < nb ? nt : nb) if (nb > 1)
        for (int i = 0; i < nb; i++) s->batch[i].run(s->batch[i].user);
    } else {
        for (int i = 0; i < nb; i++) s->samples[i] = s->batch[i].samples, s->lens[i] = s->batch[i].n;
        r.status = ac_classify_many(s->models[model], s->ws[model], s->samples, s->lens, nb,
                                    s->preds, r.err);
    }
    double t1 = now_ms();
    for (int i = 0; i < nb; i++) {
        job *j = &s->batch[i];
        r.pred = s->preds[i]; /* moved: the callback owns it; zeroed on failure */
        memset(&s->preds[i], 0, sizeof s->preds[i]);
        r.model = model;
        r.queue_ms = t0 - j->t_submit;
        r.inference_ms = t1 - t0;
        r.batch_jobs = nb;
        r.batch_windows = (int)windows;
        r.batch_pos = i;
        j->done(j->user, &r);
    }
    /* The callbacks are done with the samples: their memory may be freed now. */
    size_t held = 0;
    for (int i = 0; i < nb; i++) held += s->batch[i].n;
    pthread_mutex_lock(&s->mu);
    s->held_samples -= held;
    pthread_mutex_unlock(&s->mu);
}

static void *dispatcher(void *arg)
{
    ac_scheduler *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (!s->head) {
            if (s->shutting) break;
            pthread_cond_wait(&s->work, &s->mu);
            continue;
        }
        if (s->cfg.hold && !s->shutting) {
            /* a test's pause point: the queue fills while the dispatcher is held */
            pthread_mutex_unlock(&s->mu);
            s->cfg.hold();
            pthread_mutex_lock(&s->mu);
            if (!s->head) continue;
        }
        int model = s->head->model;
        /* Wait for the batch to fill unless draining: the oldest job's age bounds the wait. */
        if (!s->shutting && s->queued_windows[model] < (size_t)s->cfg.max_batch) {
            double deadline = s->head->t_submit + s->cfg.max_wait_ms;
            if (now_ms() < deadline) {
                struct timespec ts = ms_to_timespec(deadline);
                pthread_cond_timedwait(&s->work, &s->mu, &ts);
                continue; /* re-evaluate: new jobs, shutdown, or the deadline passed */
            }
        }
        size_t windows;
        int nb = take_batch(s, model, s->head->run != NULL, &windows);
        s->running_model = model;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, model, nb, windows);
        pthread_mutex_lock(&s->mu);
        s->running_model = -1;
        pthread_cond_broadcast(&s->batch_done);
    }
    s->stopped = 1;
    pthread_cond_broadcast(&s->stopped_cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void destroy(ac_scheduler *s)
{
    if (s->ws)
        for (int i = 0; i < AC_SCHED_MAX_MODELS; i++) ac_workspace_free(s->ws[i]);
    free(s->ws);
    free(s->models);
    free(s->pool);
    free(s->queued_windows);
    free(s->batch);
    free(s->samples);
    free(s->lens);
    free(s->preds);
    free(s);
}

ac_status ac_scheduler_create(const ac_model *const *models, int n_models,
                              const ac_sched_config *cfg, ac_scheduler **out, char *err)
{
    *out = NULL;
    if (!models || n_models < 1 || n_models > AC_SCHED_MAX_MODELS || !cfg)
        return ac_fail(err, AC_ERR_INVALID_ARG, "scheduler needs 1 to %d models", AC_SCHED_MAX_MODELS);
    if (cfg->queue_size < 1 || cfg->max_batch < 1 || cfg->max_wait_ms < 0 || cfg->threads < 0)
        return ac_fail(err, AC_ERR_INVALID_ARG,
                       "queue size %d, max batch %d, max wait %g ms, threads %d out of range",
                       cfg->queue_size, cfg->max_batch, cfg->max_wait_ms, cfg->threads);
    ac_scheduler *s = calloc(1, sizeof *s);
    if (!s) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    s->n_models = n_models;
    s->cfg = *cfg;
    size_t q = (size_t)cfg->queue_size;
    s->running_model = -1;
    s->models = calloc(AC_SCHED_MAX_MODELS, sizeof *s->models);
    s->ws = calloc(AC_SCHED_MAX_MODELS, sizeof *s->ws);
    s->queued_windows = calloc(AC_SCHED_MAX_MODELS, sizeof *s->queued_windows);
    s->pool = calloc(q, sizeof *s->pool);
    s->batch = calloc(q, sizeof *s->batch);
    s->samples = calloc(q, sizeof *s->samples);
    s->lens = calloc(q, sizeof *s->lens);
    s->preds = calloc(q, sizeof *s->preds);
    if (!s->models || !s->ws || !s->queued_windows || !s->pool || !s->batch || !s->samples ||
        !s->lens || !s->preds) {
        destroy(s);
        return ac_fail(err, AC_ERR_NOMEM, "out of memory for a queue of %d jobs", cfg->queue_size);
    }
    for (size_t i = 0; i < q; i++) s->pool[i].next = i + 1 < q ? &s->pool[i + 1] : NULL;
    s->free_list = &s->pool[0];
    for (int i = 0; i < n_models; i++) {
        if (!models[i]) {
            destroy(s);
            return ac_fail(err, AC_ERR_INVALID_ARG, "model %d is NULL", i);
        }
        s->models[i] = models[i];
        /* max_batch windows still form one scheduling batch; ac_classify_many runs them in
         * forward passes as large as the model's workspace budget allows */
        int wb = ac_workspace_batch_for_budget(models[i], cfg->max_batch, cfg->threads, AC_SCHED_WORKSPACE_BUDGET);
        ac_status st = ac_workspace_create(models[i], wb, cfg->threads, &s->ws[i], err);
        if (st) {
            destroy(s);
            return st;
        }
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines use now_ms() */
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, &ca);
    pthread_cond_init(&s->stopped_cv, &ca);
    pthread_cond_init(&s->batch_done, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&s->thread, NULL, dispatcher, s);
    if (rc) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->work);
        pthread_cond_destroy(&s->stopped_cv);
        pthread_cond_destroy(&s->batch_done);
        destroy(s);
        return ac_fail(err, AC_ERR_NOMEM, "cannot start the dispatcher thread: %s", strerror(rc));
    }
    *out = s;
    return AC_OK;
}

static ac_status enqueue(ac_scheduler *s, int model, const float *samples, size_t n, size_t windows,
                         ac_task_fn run, ac_job_done_fn done, void *user);

ac_status ac_scheduler_submit(ac_scheduler *s, int model, const float *samples, size_t n,
                              ac_job_done_fn done, void *user)
{
    if (!s || !done || !samples || model < 0 || model >= AC_SCHED_MAX_MODELS) return AC_ERR_INVALID_ARG;
    if (n == 0) return AC_ERR_AUDIO_EMPTY;
    pthread_mutex_lock(&s->mu);
    const ac_model *m = s->models[model];
    pthread_mutex_unlock(&s->mu);
    if (!m) return AC_ERR_INVALID_ARG;
    /* Computed outside the lock: pure function of the immutable model (which the caller
     * keeps registered until the job's callback has run). */
    size_t windows = ac_model_windows(m, n, NULL, 0);
    return enqueue(s, model, samples, n, windows, NULL, done, user);
}

ac_status ac_scheduler_submit_task(ac_scheduler *s, int model, size_t samples, ac_task_fn run,
                                   ac_job_done_fn done, void *user)
{
    if (!s || !done || !run || model < 0 || model >= AC_SCHED_MAX_MODELS) return AC_ERR_INVALID_ARG;
    pthread_mutex_lock(&s->mu);
    const ac_model *m = s->models[model];
    pthread_mutex_unlock(&s->mu);
    if (!m) return AC_ERR_INVALID_ARG;
    return enqueue(s, model, NULL, samples, 1, run, done, user);
}

static ac_status enqueue(ac_scheduler *s, int model, const float *samples, size_t n, size_t windows,
                         ac_task_fn run, ac_job_done_fn done, void *user)
{
    pthread_mutex_lock(&s->mu);
    ac_status st = AC_OK;
    if (s->shutting) {
        st = AC_ERR_SHUTTING_DOWN;
    } else if (!s->free_list) {
        st = AC_ERR_QUEUE_FULL;
    } else if (s->cfg.max_samples && s->held_samples &&
               (s->held_samples >= s->cfg.max_samples || n > s->cfg.max_samples - s->held_samples)) {
        st = AC_ERR_QUEUE_FULL; /* over the memory cap; an idle scheduler takes any one clip */
    } else {
        job *j = s->free_list;
        s->free_list = j->next;
        *j = (job){.model = model, .run = run, .samples = samples, .n = n, .windows = windows, .done = done,
                   .user = user, .t_submit = now_ms(), .prev = s->tail, .next = NULL};
        if (s->tail) s->tail->next = j; else s->head = j;
        s->tail = j;
        s->depth++;
        s->queued_windows[model] += windows;
        s->held_samples += n;
        pthread_cond_signal(&s->work);
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

int ac_scheduler_queue_depth(ac_scheduler *s)
{
    pthread_mutex_lock(&s->mu);
    int d = s->depth;
    pthread_mutex_unlock(&s->mu);
    return d;
}

size_t ac_scheduler_held_samples(ac_scheduler *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->held_samples;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int ac_scheduler_accepting(ac_scheduler *s)
{
    pthread_mutex_lock(&s->mu);
    int a = !s->shutting;
    pthread_mutex_unlock(&s->mu);
    return a;
}

void ac_scheduler_set_max_wait(ac_scheduler *s, double max_wait_ms)
{
    pthread_mutex_lock(&s->mu);
    s->cfg.max_wait_ms = max_wait_ms < 0 ? 0 : max_wait_ms;
    pthread_cond_broadcast(&s->work); /* the dispatcher may be sleeping on the old deadline */
    pthread_mutex_unlock(&s->mu);
}

void ac_scheduler_begin_shutdown(ac_scheduler *s)
{
    pthread_mutex_lock(&s->mu);
    s->shutting = 1;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
}

int ac_scheduler_shutdown(ac_scheduler *s, double timeout_ms)
{
    ac_scheduler_begin_shutdown(s);
    double deadline = now_ms() + timeout_ms;
    pthread_mutex_lock(&s->mu);
    while (!s->stopped) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&s->stopped_cv, &s->mu);
        } else {
            struct timespec ts = ms_to_timespec(deadline);
            if (pthread_cond_timedwait(&s->stopped_cv, &s->mu, &ts) == ETIMEDOUT && !s->stopped)
                break;
        }
    }
    int done = s->stopped;
    pthread_mutex_unlock(&s->mu);
    return done;
}

ac_status ac_scheduler_add_model(ac_scheduler *s, const ac_model *model, int *slot, char *err)
{
    *slot = -1;
    if (!model) return ac_fail(err, AC_ERR_INVALID_ARG, "model is NULL");
    int wb = ac_workspace_batch_for_budget(model, s->cfg.max_batch, s->cfg.threads, AC_SCHED_WORKSPACE_BUDGET);
    ac_workspace *ws = NULL;
    ac_status st = ac_workspace_create(model, wb, s->cfg.threads, &ws, err);
    if (st) return st;
    pthread_mutex_lock(&s->mu);
    int i = 0;
    while (i < AC_SCHED_MAX_MODELS && s->models[i]) i++;
    if (i < AC_SCHED_MAX_MODELS) {
        s->models[i] = model;
        s->ws[i] = ws;
        s->queued_windows[i] = 0;
        if (i >= s->n_models) s->n_models = i + 1;
        *slot = i;
    }
    pthread_mutex_unlock(&s->mu);
    if (i == AC_SCHED_MAX_MODELS) {
        ac_workspace_free(ws);
        return ac_fail(err, AC_ERR_INVALID_ARG, "more than %d models at once", AC_SCHED_MAX_MODELS);
    }
    return AC_OK;
}

void ac_scheduler_remove_model(ac_scheduler *s, int slot)
{
    if (!s || slot < 0 || slot >= AC_SCHED_MAX_MODELS) return;
    pthread_mutex_lock(&s->mu);
    while (s->running_model == slot) pthread_cond_wait(&s->batch_done, &s->mu);
    ac_workspace *ws = s->ws[slot];
    s->ws[slot] = NULL;
    s->models[slot] = NULL;
    pthread_mutex_unlock(&s->mu);
    ac_workspace_free(ws);
}

void ac_scheduler_free(ac_scheduler *s)
{
    if (!s) return;
    ac_scheduler_shutdown(s, -1);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->stopped_cv);
    pthread_cond_destroy(&s->batch_done);
    destroy(s);
}
