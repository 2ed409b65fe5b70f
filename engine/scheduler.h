/* scheduler.h - bounded job queue and dynamic batching: one dispatcher thread runs the
 * OpenMP forward passes for every model, with batches formed from concurrent requests.
 *
 * A job is one decoded clip (mono floats at the model's sample rate) for one of the models
 * the scheduler was created with, or one stream's piece of work (ac_scheduler_submit_task:
 * live streams, stream.h), which shares the queue and its bounds with clips. ac_scheduler_submit never blocks: when the bounded queue
 * is full it answers AC_ERR_QUEUE_FULL at once, and after shutdown began
 * AC_ERR_SHUTTING_DOWN. The queue is bounded twice: in jobs (queue_size) and, because a
 * job may be a long clip, in samples held (max_samples: every sample from submit until its
 * callback returns, i.e. queued and running), so that queued audio has a memory ceiling. The dispatcher takes the oldest queued job, waits until its model
 * has `max_batch` windows queued or the oldest job has waited `max_wait_ms`, then hands up
 * to `max_batch` windows of that model's jobs (oldest first, at least one job) to
 * ac_classify_many with the model's own workspace, created once at start. Jobs of one
 * model therefore complete in submission order.
 *
 * Threads: submit, queue_depth, accepting and shutdown may be called from any thread.
 * Completion callbacks run on the dispatcher thread, one job at a time, and must be quick
 * (they delay the next batch) and must not call back into the scheduler except
 * ac_scheduler_submit / queue_depth / accepting. Every accepted job gets exactly one
 * callback, also during shutdown (drain: everything queued is run, then the thread stops).
 * OpenMP parallel regions start from the dispatcher only.
 *
 * Ownership: models are borrowed and must outlive the scheduler. A job's samples are
 * borrowed from submit until its callback returns. The callback owns result->pred (free it
 * with ac_prediction_free, or move it out and zero it); the scheduler frees nothing of it.
 */
#ifndef AC_SCHEDULER_H
#define AC_SCHEDULER_H

#include <stddef.h>

#include "model.h"
#include "status.h"

typedef struct ac_scheduler ac_scheduler;

/* Memory for each model's workspace (activations, scratch, batch buffers): EnvNet runs 6
 * windows per forward pass within it (4.9 MB each), M5 the whole max_batch. EnvNet's
 * throughput is flat from 5 to 12 windows per pass (256, 253, 258, 256 windows/s at 5, 7,
 * 10, 12 on 2 threads) and drops beyond (192 at 20): its convolutions parallelise within a
 * window, so a larger budget would only cost memory. */
#define AC_SCHED_WORKSPACE_BUDGET ((size_t)32 << 20)

typedef struct ac_sched_config {
    int queue_size;      /* jobs waiting (not yet running), across all models; >= 1 */
    int max_batch;       /* windows per ac_classify_many call (and per workspace); >= 1 */
    double max_wait_ms;  /* how long the oldest job may wait for its batch to fill; >= 0 */
    int threads;         /* OpenMP threads per forward pass; 0 = omp_get_max_threads() */
    size_t max_samples;  /* samples held by accepted jobs, queued or running (0: no limit).
                          * A job that would exceed it is refused with AC_ERR_QUEUE_FULL,
                          * except when no job is held at all: one clip is always taken, so
                          * a clip longer than the cap is still served when the server is
                          * idle. Held memory is then at most 4 * max(max_samples, one clip)
                          * bytes. */
    void (*hold)(void);  /* NULL, or a test's pause point: the dispatcher calls it before
                          * it takes each batch (tests fill the queue deterministically) */
} ac_sched_config;

/* Model slots: the models given to create take slots 0..n_models-1; more can be added and
 * removed while the scheduler runs (a server reloading its model files). */
#define AC_SCHED_MAX_MODELS 256

/* What the callback receives. Valid during the callback only, except `pred` (see above). */
typedef struct ac_job_result {
    ac_status status;       /* AC_OK, or why the batch failed (err has the detail) */
    char err[AC_ERR_LEN];
    ac_prediction pred;     /* valid when status == AC_OK; owned by the callback */
    int model;              /* index given to submit */
    double queue_ms;        /* submit -> batch start */
    double inference_ms;    /* the whole batch's ac_classify_many call */
    int batch_jobs;         /* clips in the batch this job ran in */
    int batch_windows;      /* windows in that batch */
    int batch_pos;          /* this job's place in the batch, 0..batch_jobs-1 (0: count
                             * per-batch statistics once) */
} ac_job_result;

typedef void (*ac_job_done_fn)(void *user, ac_job_result *result);

/* Creates workspaces for models[0..n_models) and starts the dispatcher thread. */
ac_status ac_scheduler_create(const ac_model *const *models, int n_models,
                              const ac_sched_config *cfg, ac_scheduler **out, char *err);

/* Queues samples[n] for models[model]. On AC_OK, done(user, result) will be called exactly
 * once from the dispatcher; on any other code it will not. AC_ERR_INVALID_ARG (bad model
 * index, NULL), AC_ERR_AUDIO_EMPTY (n == 0), AC_ERR_QUEUE_FULL (queue_size jobs queued, or
 * max_samples would be exceeded), AC_ERR_SHUTTING_DOWN. */
ac_status ac_scheduler_submit(ac_scheduler *s, int model, const float *samples, size_t n,
                              ac_job_done_fn done, void *user);

/* A stream job (stream.h): `run(user)` does one stream's work for a piece of audio on the
 * dispatcher, then `done(user, result)` reports it (result.pred is empty). Stream jobs share
 * the bounded queue and the samples cap with clips (`samples` is what the piece holds) and
 * are batched across streams of a model: the dispatcher runs up to max_batch of them at once,
 * one OpenMP thread each (a stream's kernels are single-threaded), never mixed with clips.
 * A stream must have at most one job queued at a time (it owns its state). Same return
 * codes as ac_scheduler_submit (samples may be 0). */
typedef void (*ac_task_fn)(void *user);
ac_status ac_scheduler_submit_task(ac_scheduler *s, int model, size_t samples, ac_task_fn run,
                                   ac_job_done_fn done, void *user);

/* Adds a model (borrowed until removed) with its own workspace; *slot is the index to
 * submit jobs with. Any thread. */
ac_status ac_scheduler_add_model(ac_scheduler *s, const ac_model *model, int *slot, char *err);
/* Frees the slot's workspace and forgets the model. The caller guarantees that no job of
 * this slot is queued or waiting for its callback; a batch of it still finishing is
 * waited for. Not from a callback. */
void ac_scheduler_remove_model(ac_scheduler *s, int slot);

/* Jobs queued and not yet running. */
int ac_scheduler_queue_depth(ac_scheduler *s);
/* Samples held by accepted jobs whose callback has not returned (queued or running). */
size_t ac_scheduler_held_samples(ac_scheduler *s);
/* 1 while submit can accept jobs (shutdown has not begun). */
int ac_scheduler_accepting(ac_scheduler *s);

/* Changes max_wait_ms from now on (a draining server sets 0: nothing more is coming to
 * fill a batch, so waiting only delays answers). */
void ac_scheduler_set_max_wait(ac_scheduler *s, double max_wait_ms);

/* Refuses new jobs from now on; the dispatcher runs everything queued without waiting for
 * batches to fill, then exits. Returns at once. Idempotent. */
void ac_scheduler_begin_shutdown(ac_scheduler *s);
/* begin_shutdown, then waits up to timeout_ms (< 0: forever) for the drain to finish.
 * Returns 1 when every job's callback has run and the dispatcher has stopped, 0 on timeout
 * (the dispatcher then keeps running; do not free the scheduler). */
int ac_scheduler_shutdown(ac_scheduler *s, double timeout_ms);

/* Shuts down (waiting forever), joins the dispatcher and frees the workspaces. NULL is a
 * no-op. Must not be called from a callback. */
void ac_scheduler_free(ac_scheduler *s);

#endif
