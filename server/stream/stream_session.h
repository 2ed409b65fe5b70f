/* stream_session.h - one live stream's work, shared by `audioclass stream` and GET /stream:
 * PCM bytes -> mono samples at the model's rate (engine/pcm_stream.h) -> the stream executor
 * (engine/stream.h) -> a "result" message per hop and an "event" message per detection
 * (engine/detect.h); at the end, a "summary". The messages are the /stream protocol
 * (README, "Live audio"):
 *   {"type":"start","model","mode":"incremental"|"window","rate","sample_rate","hop_s",
 *    "window_s","threshold","min_hops"}
 *   {"type":"result","t_start_s","t_end_s","label","score","predictions":[{"label","score"}]}
 *   {"type":"event","label","t_start_s","t_end_s","score"}
 *   {"type":"summary","model","samples","duration_s","results","events":[...]}
 * Times are seconds of the stream at the model's rate; a result covers the model's window
 * ending at t_end_s (clipped at 0).
 *
 * Ownership and threads: a session belongs to its creator and is used by one thread at a
 * time (for /stream, the scheduler's dispatcher). The model is borrowed and must outlive it.
 * Messages go to the caller's callback, which takes the reference.
 */
#ifndef AC_STREAM_SESSION_H
#define AC_STREAM_SESSION_H

#include <jansson.h>

#include "engine.h"
#include "pcm_stream.h"

typedef struct stream_params {
    int rate;                /* input rate, Hz; 0 = the model's */
    ac_pcm_encoding encoding;
    double hop_ms;           /* between results; 0 = the model's (metadata "stream".hop, else
                                the policy's hop) */
    int top_k;               /* predictions per result, >= 1 */
    float threshold;         /* event threshold; <= 0 = the model's */
    ac_stream_mode mode;     /* AUTO: incremental for causal models (stream.h) */
} stream_params;

typedef struct stream_session stream_session;
typedef void (*stream_msg_fn)(void *ctx, json_t *msg /* reference passed to the callee */);

/* AC_ERR_INVALID_ARG with a message naming the parameter (rate, hop_ms, threshold, mode);
 * AC_ERR_NOMEM. */
ac_status stream_session_create(const ac_model *m, const char *name, const stream_params *p,
                                stream_session **out, char *err);
void stream_session_free(stream_session *s); /* NULL is a no-op */

/* The "start" message (new reference, NULL when out of memory). */
json_t *stream_session_start_json(const stream_session *s);
/* PCM bytes in; a result per hop reached and any events out through fn. AC_ERR_BAD_AUDIO
 * (a non-finite float sample), AC_ERR_NOMEM: the session is then unusable. */
ac_status stream_session_feed(stream_session *s, const void *bytes, size_t len, stream_msg_fn fn,
                              void *ctx, char *err);
/* End of input: the resampler's tail, then the "summary". */
ac_status stream_session_end(stream_session *s, stream_msg_fn fn, void *ctx, char *err);
/* Samples (at the model's rate) run so far; 0 for NULL. */
unsigned long long stream_session_samples(const stream_session *s);

#endif
