/* http_internal.h - state shared by the http_*.c files: the server and one request. */
#ifndef AC_HTTP_INTERNAL_H
#define AC_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "decode_pool.h"
#include "filters_cache.h"
#include "http_server.h"
#include "http_status.h"
#include "linger.h"
#include "media_type.h"
#include "metrics.h"
#include "request_id.h"
#include "stream_session.h"
#include "ws_hub.h"

struct http_server {
    const serve_config *cfg;
    registry_holder *regs;    /* the current model set; each request holds its snapshot */
    ac_scheduler *sched;
    decode_pool *decoders;    /* decoding runs here, never on MHD's threads */
    const auth *auth;
    filters_cache *filters;   /* GET /filters results, computed once per key */
    struct MHD_Daemon *daemon;
    int port;
    atomic_int draining;
    atomic_int in_flight;
    atomic_size_t mem_held;   /* bytes all requests hold: bodies, decoded audio, answers
                               * (--max-memory) */
    atomic_int connections;   /* open connections (ours to limit: see accept_policy) */
    atomic_int decoding;      /* uploads being decoded (a gauge in /metrics) */
    struct MHD_Response *oom; /* a prebuilt 503 out_of_memory for when nothing else can be built */
    char start_error[256];    /* MHD's last message while starting (why the port failed) */
    /* Orders "submit + suspend" in the handler before "resume" in the job callback: MHD
     * must never be asked to resume a connection that is not yet suspended. */
    pthread_mutex_t resume_mu;
    ws_hub *hub;              /* GET /stream's WebSocket thread; NULL with --max-streams 0 */
    atomic_int streams;       /* streams admitted (handshake accepted) and not yet closed */
    linger_pool *lingerer;         /* sockets of early answers, kept open until the client is done */
};

/* Where a POST /classify stands. */
typedef enum rq_state {
    RQ_READING,   /* receiving the body */
    RQ_DECODING,  /* handed to the decode pool, connection suspended */
    RQ_QUEUED,    /* decoded, submitted to the scheduler, connection suspended */
    RQ_DONE,      /* decode failed or the job is done; connection resumed */
} rq_state;

/* A multipart form field other than `file` (model, top_k, ...): a parameter like the
 * query's. Values are short; a longer one is refused. */
#define HTTP_MAX_FORM 8
typedef struct form_field {
    char key[32];
    char val[128];
    size_t len;
} form_field;

/* One HTTP request; MHD's per-request pointer. Freed when MHD reports it complete. */
typedef struct request {
    http_server *srv;
    registry *reg;            /* the model set this request started with (a reference) */
    struct MHD_Connection *conn;
    int entered;              /* the access handler has seen it */
    char id[REQUEST_ID_MAX + 1];
    char method[16];
    char path[128];           /* truncated copy, for logs */
    mt_route route;
    double t0_ms;             /* first handler call, monotonic */
    int begun;                /* routing and checks done */
    int status;               /* HTTP status queued; 0 = none yet */
    const char *allow;        /* Allow header for 405 / OPTIONS, or NULL */
    int preflight;            /* OPTIONS: add the CORS preflight headers */
    int close;                /* answer with Connection: close (bad framing) */
    int early;                /* answered before its body was read: the socket lingers */
    int nul;                  /* a NUL byte was in the path or a value */
    int n_params;             /* query parameters counted in the raw target when too many */
    size_t bytes_in;          /* body bytes received */

    /* POST /classify */
    int model;                /* registry index, -1 until known */
    int top_k, segments, aggregate_max, events;
    media_kind media;
    char boundary[72];        /* multipart: the boundary from the Content-Type */
    media_info pcm;           /* .kind MEDIA_PCM: the body (or the `file` part) is raw PCM */
    form_field form[HTTP_MAX_FORM]; /* multipart fields other than `file`: parameters */
    int n_form;
    const char *form_error;   /* a form field that cannot be taken: why (static text) */
    char form_error_key[32];
    char *body;               /* the body as received (raw audio, or the multipart body) */
    size_t len, cap;
    const char *audio_bytes;  /* what is decoded: the body, or the `file` part inside it */
    size_t audio_len;
    size_t held_body, held_audio, held_answer; /* bytes of srv->mem_held this request holds */
    int too_large;
    int no_room;              /* the body would exceed --max-memory: 503 at the end */
    ac_audio audio;           /* decoded clip; its samples are the job's input */
    ac_status decode_st;      /* decode or submit failure, answered on resume */
    char decode_err[AC_ERR_LEN];
    double decode_ms;
    rq_state state;           /* written under srv->resume_mu once queued */
    ac_job_result result;     /* from the callback; result.pred owned here */

    /* GET /stream */
    stream_session *stream;   /* made at the handshake, handed to the hub at the upgrade */
    int stream_reserved;      /* counts in srv->streams until handed over or cleaned up */
} request;

double http_now_ms(void);
/* Copies src into dst[cap] with every byte outside printable ASCII replaced by '?'. */
void http_sanitize(char *dst, size_t cap, const char *src);

/* Responses (http_reply.c). Each queues exactly one response, records its status, adds
 * X-Request-Id, CORS and, while draining, Connection: close; returns MHD's answer. */
enum MHD_Result reply_json(request *rq, int status, json_t *body /* reference stolen */);
enum MHD_Result reply_error(request *rq, hs_mapping m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum MHD_Result reply_status(request *rq, ac_status st, const char *detail);
enum MHD_Result reply_bytes(request *rq, int status, const char *content_type, const void *data,
                            size_t len);
/* Queues a response the caller built, with the headers above, and destroys it (the
 * caller's reference is taken); NULL r (out of memory): MHD_NO. */
enum MHD_Result reply_response(request *rq, int status, struct MHD_Response *r);

/* Queues data[len] (ownership taken: freed by MHD after sending, or here on failure). */
enum MHD_Result reply_owned(request *rq, int status, const char *content_type, char *data,
                            size_t len);
/* The prebuilt 503 out_of_memory (made once at start; NULL when even that failed). */
struct MHD_Response *reply_oom_response(void);

/* --max-memory: sets what *slot (one of rq->held_*) holds to `bytes`, taking the difference
 * from (or giving it back to) the server-wide pool. 0, or -1 when the pool would go over the
 * limit (nothing changes then). */
int mem_hold(request *rq, size_t *slot, size_t bytes);

/* Request parameters (http_params.c): the query string, and for POST /classify the
 * multipart form fields other than `file`. */
/* The query's value of key, else the form field's; NULL when neither has it. */
const char *http_arg(request *rq, const char *key);
/* Appends a chunk (at offset off) of form field key; -1 when it cannot be taken (the
 * reason is answered by http_check_params). */
int http_form_field(request *rq, const char *key, const char *data, uint64_t off, size_t size);
/* Every query parameter and form field must be one of names[] (NULL-terminated; NULL: none
 * taken), and none given both ways: else the 400 naming them is queued and *ok = 0. */
enum MHD_Result http_check_params(request *rq, const char *const *names, int *ok);
/* 1 or true -> 1, 0 or false -> 0 (any case), else -1. */
int http_parse_bool(const char *s);
/* Strict whole number in [lo, hi]; -1 when not. */
long http_parse_int(const char *s, long lo, long hi);
/* 400 with fmt's single %s replaced by the (sanitised) value. */
enum MHD_Result http_bad_param(request *rq, const char *fmt, const char *value);
/* ?model=NAME (may be left out when one model is loaded) -> *index and rq->model; on a
 * missing or unknown name *index = -1 and the 400/404 is already queued: return the result. */
enum MHD_Result http_pick_model(request *rq, int *index);

/* GET /filters (http_filters.c). */
enum MHD_Result route_filters(request *rq);

/* GET / and /ui/NAME (http_web.c): the web page's embedded assets. */
enum MHD_Result route_web(request *rq, const char *url);

/* Routes (http_routes.c): answer GET-type routes in one call. */
enum MHD_Result route_get(request *rq, const char *url);
/* GET /stream (http_stream.c): the WebSocket handshake; stream_cleanup frees what a
 * request that never upgraded holds. */
enum MHD_Result route_stream(request *rq);
void stream_cleanup(request *rq);

/* POST /classify (http_classify.c): called for every handler invocation of the request. */
enum MHD_Result classify_begin(request *rq);
enum MHD_Result classify_step(request *rq, const char *data, size_t *size);
void classify_cleanup(request *rq);
/* Gives back every byte rq holds in the memory pool. */
void mem_release_all(request *rq);

#endif
