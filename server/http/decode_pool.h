/* decode_pool.h - a fixed set of threads that decode uploads, so that decoding never runs
 * on libmicrohttpd's connection threads (which then stay free for /healthz, /readyz,
 * /metrics and small requests however slow an upload is to decode).
 *
 * Tasks wait in a bounded FIFO; dp_submit never blocks: when `capacity` tasks are waiting
 * it returns -1 at once (the caller answers 503). Threads: dp_submit and dp_busy from any
 * thread; dp_free from the owner only, after no more submits (it runs what is queued). */
#ifndef AC_DECODE_POOL_H
#define AC_DECODE_POOL_H

typedef struct decode_pool decode_pool;
typedef void (*dp_task_fn)(void *arg);

/* Starts `threads` threads (>= 1) with room for `capacity` waiting tasks (>= 1); NULL when
 * out of memory or threads cannot be created. */
decode_pool *dp_new(int threads, int capacity);
/* Queues fn(arg). 0, or -1 when the queue is full or shutting down. */
int dp_submit(decode_pool *p, dp_task_fn fn, void *arg);
/* Tasks waiting or running. */
int dp_busy(decode_pool *p);
/* Runs every queued task, joins the threads, frees. NULL is a no-op. */
void dp_free(decode_pool *p);

#endif
