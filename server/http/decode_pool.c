/* decode_pool.c - bounded FIFO of decode tasks served by a fixed set of threads. */
#include "decode_pool.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct task { dp_task_fn fn; void *arg; } task;

struct decode_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    task *ring;            /* [capacity] */
    int capacity, head, count, running, stopping, n_threads;
    pthread_t *threads;
};

static void *worker(void *arg)
{
    decode_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->count && !p->stopping) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->count) break;
        task t = p->ring[p->head];
        p->head = (p->head + 1) % p->capacity;
        p->count--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        t.fn(t.arg);
        pthread_mutex_lock(&p->mu);
        p->running--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

decode_pool *dp_new(int threads, int capacity)
{
    if (threads < 1 || capacity < 1) return NULL;
    decode_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->ring = calloc((size_t)capacity, sizeof *p->ring);
    p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (!p->ring || !p->threads) {
        free(p->ring), free(p->threads), free(p);
        return NULL;
    }
    p->capacity = capacity;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p)) {
            dp_free(p);
            return NULL;
        }
        p->n_threads++;
    }
    return p;
}

int dp_submit(decode_pool *p, dp_task_fn fn, void *arg)
{
    pthread_mutex_lock(&p->mu);
    int ok = !p->stopping && p->count < p->capacity;
    if (ok) {
        p->ring[(p->head + p->count) % p->capacity] = (task){fn, arg};
        p->count++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return ok ? 0 : -1;
}

int dp_busy(decode_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->count + p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void dp_free(decode_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->ring);
    free(p->threads);
    free(p);
}
