/* metrics.h - Prometheus counters and histograms of the HTTP service, rendered as text.
 * Thread-safety: every function may be called from any thread (one mutex inside; updates
 * are a few increments per request or batch). Call metrics_init once before any other. */
#ifndef AC_METRICS_H
#define AC_METRICS_H

#include <stddef.h>

/* The route label: a fixed set, so that arbitrary URLs cannot blow up the label space. */
typedef enum mt_route {
    MT_CLASSIFY, MT_MODELS, MT_MODEL, MT_FILTERS, MT_HEALTHZ, MT_READYZ, MT_METRICS,
    MT_OPENAPI, MT_WEB, MT_STREAM, MT_OTHER, MT_ROUTE_COUNT
} mt_route;

const char *mt_route_name(mt_route r);

/* model_names[n_models]: label values of per-model series (copied); names seen later (a
 * reload) are added as they come. */
int metrics_init(const char *const *model_names, int n_models);
void metrics_free(void);

/* One answered request: its route, status and wall time from first byte to response. */
void metrics_request(mt_route r, int status, double seconds);
void metrics_in_flight(int delta);
/* A successful classification of model `name`: decode time, queue wait, seconds of audio. */
void metrics_classified(const char *name, double decode_s, double queue_s, double audio_s);
/* A stream's piece: seconds from its last message's arrival to its results queued. */
void metrics_stream_piece(double seconds);
/* One forward-pass batch: clips and windows in it, and its wall time. */
void metrics_batch(const char *name, int jobs, int windows, double seconds);

/* Every request's end, by MHD's termination code name ("ok", "client_abort", "timeout",
 * "read_error", "error", "shutdown"); counted also for requests MHD answered itself. */
void metrics_request_end(const char *how);
/* A connection closed at once over --max-connections. */
void metrics_connection_refused(void);
/* Server gauges, sampled by the /metrics route before metrics_render. */
void metrics_server_gauges(int decoding, size_t mem_held, size_t mem_limit, int connections, int streams);

/* The exposition text; gauges sampled by the caller. Returns a malloc'd string. */
char *metrics_render(int queue_depth, int queue_capacity, int ready);

#endif
