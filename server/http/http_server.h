/* http_server.h - the HTTP API on libmicrohttpd: routes, limits, auth, and the hand-off of
 * decoded uploads to the scheduler (connections are suspended, never blocked, while their
 * job waits, and resumed by the job's completion callback).
 *
 * Threads: MHD's pool of `http_threads` runs the handlers; a decode pool of
 * `decode_threads` decodes uploads (their connections suspended meanwhile); the scheduler's
 * dispatcher runs inference and resumes connections. The registry holder, scheduler and
 * auth are borrowed and must outlive the server; each request takes a reference to the
 * holder's current model set for its whole life. */
#ifndef AC_HTTP_SERVER_H
#define AC_HTTP_SERVER_H

#include "auth.h"
#include "engine.h"
#include "registry.h"
#include "serve_config.h"

typedef struct http_server http_server;

/* Starts listening (cfg->port 0: any free port; see http_server_port). */
ac_status http_server_start(const serve_config *cfg, registry_holder *regs, ac_scheduler *sched,
                            const auth *a, http_server **out, char *err);
int http_server_port(const http_server *h);
/* Stops accepting connections (the listening socket is closed) and marks the server as
 * draining: /readyz answers 503 and responses carry Connection: close. Requests already
 * received are still answered. */
void http_server_begin_drain(http_server *h);
/* Requests received and not yet completed (answered or abandoned by their client), and
 * streams not yet closed. */
int http_server_in_flight(http_server *h);
/* Open WebSocket streams (GET /stream). */
int http_server_streams(http_server *h);
/* Gauges for /metrics: uploads being decoded, bytes held under --max-memory, connections. */
int http_server_decoding(http_server *h);
size_t http_server_memory_held(http_server *h);
int http_server_connections(http_server *h);
/* Closes every connection and frees the server. NULL is a no-op. Call only when no job of
 * this server is left in the scheduler. */
void http_server_stop(http_server *h);

#endif
