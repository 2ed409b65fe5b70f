/* test_scheduler.c - the job queue: results equal ac_classify, order, batching, bounds, drain. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "testutil.h"

#define MAXJ 64

/* Everything the callbacks saw, in completion order. */
typedef struct seen {
    pthread_mutex_t mu;
    int count;
    int order[MAXJ];          /* job ids in completion order */
    ac_job_result res[MAXJ];  /* by job id; pred owned here */
} seen;

typedef struct tag { seen *s; int id; } tag;

static void on_done(void *user, ac_job_result *r)
{
    tag *t = user;
    pthread_mutex_lock(&t->s->mu);
    t->s->res[t->id] = *r; /* takes the prediction */
    t->s->order[t->s->count++] = t->id;
    pthread_mutex_unlock(&t->s->mu);
}

static void seen_init(seen *s, tag *tags)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    for (int i = 0; i < MAXJ; i++) tags[i] = (tag){s, i};
}

static void seen_free(seen *s)
{
    for (int i = 0; i < MAXJ; i++) ac_prediction_free(&s->res[i].pred);
    pthread_mutex_destroy(&s->mu);
}

static int seen_count(seen *s)
{
    pthread_mutex_lock(&s->mu);
    int c = s->count;
    pthread_mutex_unlock(&s->mu);
    return c;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ac_model *load(const char *rel)
{
    char err[AC_ERR_LEN];
    ac_model *m = NULL;
    cr_assert_eq(ac_model_load(tu_src_path(rel), &m, err), AC_OK, "%s", err);
    return m;
}

static ac_scheduler *start(const ac_model *const *models, int n, int queue, int batch, double wait)
{
    char err[AC_ERR_LEN];
    ac_sched_config cfg = {.queue_size = queue, .max_batch = batch, .max_wait_ms = wait, .threads = 2};
    ac_scheduler *s = NULL;
    cr_assert_eq(ac_scheduler_create(models, n, &cfg, &s, err), AC_OK, "%s", err);
    return s;
}

/* The reference: the same clip through ac_classify alone. */
static void expect_same(const ac_model *m, const float *x, size_t n, const ac_prediction *got)
{
    char err[AC_ERR_LEN];
    ac_workspace *ws = NULL;
    ac_prediction want;
    cr_assert_eq(ac_workspace_create(m, 8, 1, &ws, err), AC_OK, "%s", err);
    cr_assert_eq(ac_classify(m, ws, x, n, &want, err), AC_OK, "%s", err);
    cr_assert_eq(got->n_windows, want.n_windows);
    cr_assert_eq(got->n_labels, want.n_labels);
    cr_assert_lt(tu_max_abs_diff(got->probs, want.probs, (size_t)want.n_labels), 1e-5);
    cr_assert_lt(tu_max_abs_diff(got->window_probs, want.window_probs,
                                 want.n_windows * (size_t)want.n_labels), 1e-5);
    ac_prediction_free(&want);
    ac_workspace_free(ws);
}

Test(scheduler, results_match_classify_and_keep_order)
{
    ac_model *m = load("tests/golden/zoo1d.safetensors");
    const ac_model *ms[] = {m};
    ac_scheduler *s = start(ms, 1, 32, 16, 5);
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    enum { N = 20 };
    float *clips[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        lens[i] = 500 + (size_t)i * 397; /* 1 to several windows each */
        clips[i] = malloc(lens[i] * sizeof(float));
        tu_fill_random(clips[i], lens[i], 100 + (unsigned)i);
        cr_assert_eq(ac_scheduler_submit(s, 0, clips[i], lens[i], on_done, &tags[i]), AC_OK);
    }
    cr_assert_eq(ac_scheduler_shutdown(s, 30000), 1);
    cr_assert_eq(sn.count, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(sn.order[i], i, "completion %d was job %d", i, sn.order[i]);
        cr_assert_eq(sn.res[i].status, AC_OK, "%s", sn.res[i].err);
        cr_assert_eq(sn.res[i].model, 0);
        cr_assert_geq(sn.res[i].queue_ms, 0);
        cr_assert_geq(sn.res[i].batch_jobs, 1);
        expect_same(m, clips[i], lens[i], &sn.res[i].pred);
    }
    ac_scheduler_free(s);
    for (int i = 0; i < N; i++) free(clips[i]);
    seen_free(&sn);
    ac_model_free(m);
}

Test(scheduler, concurrent_jobs_share_a_batch)
{
    ac_model *m = load("tests/golden/zoo1d.safetensors");
    const ac_model *ms[] = {m};
    /* A generous wait: jobs submitted together must end up in one forward pass. */
    ac_scheduler *s = start(ms, 1, 32, 64, 400);
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    float clip[800];
    tu_fill_random(clip, 800, 7);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(ac_scheduler_submit(s, 0, clip, 800, on_done, &tags[i]), AC_OK);
    while (seen_count(&sn) < 8) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int biggest = 0;
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(sn.res[i].status, AC_OK);
        if (sn.res[i].batch_jobs > biggest) biggest = sn.res[i].batch_jobs;
        cr_assert_eq(sn.res[i].batch_windows, sn.res[i].batch_jobs); /* one window each */
    }
    cr_assert_gt(biggest, 1, "no batch held more than one job");
    ac_scheduler_free(s);
    seen_free(&sn);
    ac_model_free(m);
}

Test(scheduler, full_batch_runs_without_waiting)
{
    ac_model *m = load("tests/golden/zoo1d.safetensors");
    const ac_model *ms[] = {m};
    ac_scheduler *s = start(ms, 1, 32, 4, 60000); /* a wait no test would sit out */
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    float clip[800];
    tu_fill_random(clip, 800, 8);
    double t0 = now_s();
    for (int i = 0; i < 8; i++)
        cr_assert_eq(ac_scheduler_submit(s, 0, clip, 800, on_done, &tags[i]), AC_OK);
    while (seen_count(&sn) < 8 && now_s() - t0 < 20) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(seen_count(&sn), 8, "full batches were not run before the wait expired");
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(sn.res[i].batch_windows, 4);
        cr_assert_eq(sn.res[i].batch_jobs, 4);
    }
    ac_scheduler_free(s);
    seen_free(&sn);
    ac_model_free(m);
}

Test(scheduler, full_queue_refuses_at_once)
{
    ac_model *m = load("tests/golden/zoo1d.safetensors");
    const ac_model *ms[] = {m};
    ac_scheduler *s = start(ms, 1, 2, 64, 60000);
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    float clip[800];
    tu_fill_random(clip, 800, 9);
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 800, on_done, &tags[0]), AC_OK);
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 800, on_done, &tags[1]), AC_OK);
    cr_assert_eq(ac_scheduler_queue_depth(s), 2);
    double t0 = now_s();
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 800, on_done, &tags[2]), AC_ERR_QUEUE_FULL);
    cr_assert_lt(now_s() - t0, 0.5, "submit blocked");
    cr_assert_eq(ac_scheduler_shutdown(s, 30000), 1);
    cr_assert_eq(sn.count, 2); /* the refused job never gets a callback */
    cr_assert_eq(ac_scheduler_queue_depth(s), 0);
    ac_scheduler_free(s);
    seen_free(&sn);
    ac_model_free(m);
}

Test(scheduler, shutdown_drains_everything_queued)
{
    ac_model *m = load("tests/golden/zoo1d.safetensors");
    const ac_model *ms[] = {m};
    ac_scheduler *s = start(ms, 1, 16, 64, 60000);
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    float clip[3000];
    tu_fill_random(clip, 3000, 10);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(ac_scheduler_submit(s, 0, clip, 3000, on_done, &tags[i]), AC_OK);
    cr_assert_eq(ac_scheduler_accepting(s), 1);
    double t0 = now_s();
    cr_assert_eq(ac_scheduler_shutdown(s, 20000), 1);
    cr_assert_lt(now_s() - t0, 10, "drain waited for the batch timeout");
    cr_assert_eq(sn.count, 10);
    for (int i = 0; i < 10; i++) cr_assert_eq(sn.res[i].status, AC_OK, "%s", sn.res[i].err);
    cr_assert_eq(ac_scheduler_accepting(s), 0);
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 3000, on_done, &tags[11]), AC_ERR_SHUTTING_DOWN);
    cr_assert_eq(ac_scheduler_shutdown(s, 0), 1); /* idempotent */
    ac_scheduler_free(s);
    seen_free(&sn);
    ac_model_free(m);
}

Test(scheduler, models_are_batched_separately)
{
    ac_model *a = load("tests/golden/zoo1d.safetensors");
    ac_model *b = load("tests/golden/zoo2d.safetensors");
    const ac_model *ms[] = {a, b};
    ac_scheduler *s = start(ms, 2, 32, 8, 20);
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    enum { N = 12 };
    float *clips[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        lens[i] = 700 + (size_t)i * 211;
        clips[i] = malloc(lens[i] * sizeof(float));
        tu_fill_random(clips[i], lens[i], 200 + (unsigned)i);
        cr_assert_eq(ac_scheduler_submit(s, i % 2, clips[i], lens[i], on_done, &tags[i]), AC_OK);
    }
    cr_assert_eq(ac_scheduler_shutdown(s, 30000), 1);
    int last[2] = {-1, -1};
    for (int k = 0; k < N; k++) { /* each model's jobs in submission order */
        int id = sn.order[k];
        cr_assert_gt(id, last[id % 2]);
        last[id % 2] = id;
    }
    for (int i = 0; i < N; i++) {
        cr_assert_eq(sn.res[i].status, AC_OK, "%s", sn.res[i].err);
        cr_assert_eq(sn.res[i].model, i % 2);
        expect_same(ms[i % 2], clips[i], lens[i], &sn.res[i].pred);
    }
    ac_scheduler_free(s);
    for (int i = 0; i < N; i++) free(clips[i]);
    seen_free(&sn);
    ac_model_free(a);
    ac_model_free(b);
}

Test(scheduler, clip_longer_than_a_batch)
{
    ac_model *m = load("tests/golden/zoo1d.safetensors");
    const ac_model *ms[] = {m};
    ac_scheduler *s = start(ms, 1, 4, 3, 0);
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    size_t n = 8000; /* 27 windows through batches of 3 */
    float *clip = malloc(n * sizeof *clip);
    tu_fill_random(clip, n, 11);
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, n, on_done, &tags[0]), AC_OK);
    cr_assert_eq(ac_scheduler_shutdown(s, 30000), 1);
    cr_assert_eq(sn.res[0].status, AC_OK, "%s", sn.res[0].err);
    cr_assert_gt(sn.res[0].pred.n_windows, 3);
    expect_same(m, clip, n, &sn.res[0].pred);
    ac_scheduler_free(s);
    free(clip);
    seen_free(&sn);
    ac_model_free(m);
}

Test(scheduler, bad_arguments)
{
    ac_model *m = load("tests/golden/zoo1d.safetensors");
    const ac_model *ms[] = {m};
    char err[AC_ERR_LEN];
    ac_scheduler *s = NULL;
    ac_sched_config bad = {.queue_size = 0, .max_batch = 4, .max_wait_ms = 1, .threads = 1};
    cr_assert_eq(ac_scheduler_create(ms, 1, &bad, &s, err), AC_ERR_INVALID_ARG);
    cr_assert_null(s);
    cr_assert_eq(ac_scheduler_create(ms, 0, &bad, &s, err), AC_ERR_INVALID_ARG);
    s = start(ms, 1, 4, 4, 1);
    float x[10] = {0};
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    cr_assert_eq(ac_scheduler_submit(s, 0, x, 0, on_done, &tags[0]), AC_ERR_AUDIO_EMPTY);
    cr_assert_eq(ac_scheduler_submit(s, 1, x, 10, on_done, &tags[0]), AC_ERR_INVALID_ARG);
    cr_assert_eq(ac_scheduler_submit(s, -1, x, 10, on_done, &tags[0]), AC_ERR_INVALID_ARG);
    cr_assert_eq(ac_scheduler_submit(s, 0, x, 10, NULL, &tags[0]), AC_ERR_INVALID_ARG);
    ac_scheduler_free(s);
    ac_scheduler_free(NULL);
    cr_assert_eq(sn.count, 0);
    seen_free(&sn);
    ac_model_free(m);
}

Test(scheduler, lowering_the_wait_releases_a_waiting_batch)
{
    ac_model *m = load("tests/golden/zoo1d.safetensors");
    const ac_model *ms[] = {m};
    ac_scheduler *s = start(ms, 1, 8, 64, 60000);
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    float clip[800];
    tu_fill_random(clip, 800, 12);
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 800, on_done, &tags[0]), AC_OK);
    ac_scheduler_set_max_wait(s, 0);
    double t0 = now_s();
    while (seen_count(&sn) < 1 && now_s() - t0 < 20) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(seen_count(&sn), 1, "the job kept waiting for the old deadline");
    cr_assert_eq(ac_scheduler_accepting(s), 1);
    ac_scheduler_free(s);
    seen_free(&sn);
    ac_model_free(m);
}

/* Issue 8: the queue is bounded in memory too, not only in clips: samples held by accepted
 * jobs (queued or running) never pass max_samples, except for one clip on an idle queue. */
Test(scheduler, memory_cap_refuses_at_once)
{
    ac_model *m = load("tests/golden/zoo1d.safetensors");
    const ac_model *ms[] = {m};
    char err[AC_ERR_LEN];
    ac_sched_config cfg = {.queue_size = 8, .max_batch = 64, .max_wait_ms = 60000, .threads = 2,
                           .max_samples = 1000};
    ac_scheduler *s = NULL;
    cr_assert_eq(ac_scheduler_create(ms, 1, &cfg, &s, err), AC_OK, "%s", err);
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    float clip[2000];
    tu_fill_random(clip, 2000, 4);
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 800, on_done, &tags[0]), AC_OK);
    double t0 = now_s();
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 800, on_done, &tags[1]), AC_ERR_QUEUE_FULL);
    cr_assert_lt(now_s() - t0, 0.5, "submit blocked");
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 200, on_done, &tags[2]), AC_OK); /* exactly at the cap */
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 1, on_done, &tags[3]), AC_ERR_QUEUE_FULL);
    cr_assert_eq(ac_scheduler_held_samples(s), 1000);
    cr_assert_eq(ac_scheduler_queue_depth(s), 2); /* the job bound is not what refused */
    cr_assert_eq(ac_scheduler_shutdown(s, 30000), 1);
    cr_assert_eq(sn.count, 2);
    cr_assert_eq(ac_scheduler_held_samples(s), 0, "samples released after the callbacks");
    ac_scheduler_free(s);

    /* An idle scheduler takes one clip larger than the cap, and nothing more after it. */
    cfg.max_samples = 100;
    cr_assert_eq(ac_scheduler_create(ms, 1, &cfg, &s, err), AC_OK, "%s", err);
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 2000, on_done, &tags[4]), AC_OK);
    cr_assert_eq(ac_scheduler_submit(s, 0, clip, 1, on_done, &tags[5]), AC_ERR_QUEUE_FULL);
    cr_assert_eq(ac_scheduler_shutdown(s, 30000), 1);
    ac_scheduler_free(s);
    cr_assert_eq(sn.count, 3);
    cr_assert_eq(sn.res[4].status, AC_OK);
    seen_free(&sn);
    ac_model_free(m);
}

/* Stream jobs (ac_scheduler_submit_task): each runs once on the dispatcher before its
 * callback, they share the bounded queue with clips, and a drain runs them all. */
typedef struct task_tag {
    seen *s;
    int id;
    ac_stream *stream;
    const float *x;
    int ran;                 /* run calls */
    uint64_t samples_at_done;
} task_tag;

static void task_run(void *user)
{
    task_tag *t = user;
    char err[AC_ERR_LEN];
    t->ran++;
    if (ac_stream_push(t->stream, t->x, 400, NULL, NULL, err)) t->ran = -1000;
}

static void task_done(void *user, ac_job_result *r)
{
    task_tag *t = user;
    t->samples_at_done = ac_stream_samples(t->stream);
    tag tg = {t->s, t->id};
    on_done(&tg, r);
}

Test(scheduler, stream_jobs_run_once_share_the_queue_and_drain)
{
    ac_model *m = load("tests/golden/stream/kws.safetensors");
    const ac_model *ms[] = {m};
    ac_scheduler *s = start(ms, 1, 12, 64, 60000); /* batches wait: the queue fills first */
    seen sn;
    tag tags[MAXJ];
    seen_init(&sn, tags);
    float x[400];
    tu_fill_random(x, 400, 12);
    task_tag tt[10];
    char err[AC_ERR_LEN];
    ac_stream_config cfg = {.mode = AC_STREAM_INCREMENTAL, .hop = 200};
    for (int i = 0; i < 10; i++) {
        tt[i] = (task_tag){.s = &sn, .id = i, .x = x};
        cr_assert_eq(ac_stream_create(m, &cfg, &tt[i].stream, err), AC_OK, "%s", err);
        cr_assert_eq(ac_scheduler_submit_task(s, 0, 400, task_run, task_done, &tt[i]), AC_OK);
    }
    cr_assert_eq(ac_scheduler_submit(s, 0, x, 400, on_done, &tags[10]), AC_OK);
    cr_assert_eq(ac_scheduler_submit(s, 0, x, 400, on_done, &tags[11]), AC_OK);
    cr_expect_eq(ac_scheduler_submit_task(s, 0, 400, task_run, task_done, &tt[0]), AC_ERR_QUEUE_FULL,
                 "stream jobs count against the queue like clips");
    cr_expect_eq(ac_scheduler_submit_task(s, 0, 400, NULL, task_done, &tt[0]), AC_ERR_INVALID_ARG);
    cr_assert_eq(ac_scheduler_shutdown(s, 30000), 1);
    cr_assert_eq(sn.count, 12);
    for (int i = 0; i < 10; i++) {
        cr_expect_eq(tt[i].ran, 1, "task %d ran %d times", i, tt[i].ran);
        cr_expect_eq(tt[i].samples_at_done, 400, "task %d's callback came after its run", i);
        cr_expect_eq(sn.res[i].status, AC_OK);
        ac_stream_free(tt[i].stream);
    }
    cr_expect_eq(sn.res[10].status, AC_OK, "clips still run beside stream jobs");
    cr_expect_gt(sn.res[10].pred.n_windows, 0);
    ac_scheduler_free(s);
    seen_free(&sn);
    ac_model_free(m);
}
