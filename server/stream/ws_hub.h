/* ws_hub.h - the WebSocket side of GET /stream: one thread that owns every upgraded socket,
 * frames and unframes messages with libwslay, and hands each stream's audio to the
 * scheduler as stream jobs (engine/scheduler.h), at most one job per stream at a time.
 *
 * Per stream: binary messages are PCM appended to a pending buffer; when no job of the
 * stream is queued, the pending bytes become the next job (so a stream's pieces run in
 * order, and many streams' pieces batch together on the dispatcher). The job's messages
 * (results, events; stream_session.h) come back to the hub, which sends them. A text
 * message {"type":"end"} flushes: the last job ends the session, the summary is sent and
 * the stream closes normally (1000). Limits, each with its own close:
 *   - a message over max_message bytes: 1009 (libwslay refuses it as it arrives);
 *   - a text message other than {"type":"end"}, or samples that are not finite: an "error"
 *     message, then 1003;
 *   - pending audio over a bound: the hub stops reading the socket (TCP pushes back on the
 *     client; nothing is dropped);
 *   - replies queued for a client that does not read, over a bound: the connection is
 *     dropped without a close handshake (memory stays bounded);
 *   - nothing received (not even a ping) for idle_timeout_s: 1008;
 *   - the server draining: pending audio is run, the summary sent, then 1001.
 * Pings are answered with pongs by libwslay; fragmented messages are reassembled by it.
 *
 * Threads: ws_hub_add and ws_hub_begin_drain may be called from any thread (MHD's
 * upgrade callback, the signal thread). Job callbacks run on the dispatcher and only hand
 * results over under the hub's mutex. ws_hub_free stops the thread after closing every
 * stream; call it after the scheduler has run every job (it waits for in-flight jobs).
 */
#ifndef AC_WS_HUB_H
#define AC_WS_HUB_H

#include <stddef.h>

#include "engine.h"
#include "stream_session.h"

typedef struct ws_hub ws_hub;

typedef struct ws_hub_config {
    ac_scheduler *sched;
    size_t max_message;      /* bytes of one message */
    int idle_timeout_s;      /* 0 = never */
    void (*on_piece)(double seconds); /* NULL, or told each piece's latency: from the arrival of
                                         its last message to its results queued (metrics) */
} ws_hub_config;

/* Called once when a stream is over (closed, dropped, or the hub stopping), after its
 * session is freed and before its socket is handed back: `ctx` is what ws_hub_add was
 * given; `code` the close code sent (1000, 1001, 1003, 1008, 1009, 1011) or 0 when the
 * connection was dropped or the client left. */
typedef void (*ws_closed_fn)(void *ctx, int code, unsigned long long samples);

ac_status ws_hub_start(const ws_hub_config *cfg, ws_hub **out, char *err);
/* Takes over an upgraded socket and a session (both owned by the hub from now on, also on
 * failure). extra[extra_len]: bytes the client sent after its handshake. `release(ctx)`
 * (the owner's upgrade handle close) is called by the hub once it is done with the socket.
 * slot: the session model's scheduler slot. */
ac_status ws_hub_add(ws_hub *h, int fd, const char *extra, size_t extra_len, stream_session *session,
                     int slot, ws_closed_fn closed, void (*release)(void *ctx), void *ctx, char *err);
/* Each stream stops reading, runs what it has, sends its summary and closes with 1001. */
void ws_hub_begin_drain(ws_hub *h);
/* Closes what is left (1001) and stops the thread. NULL is a no-op. */
void ws_hub_free(ws_hub *h);

#endif
