/* stream.h - classifying a live stream: samples arrive in pieces of any size, and an answer
 * comes at every hop.
 *
 * Two ways to run a model over a stream:
 *   AC_STREAM_INCREMENTAL  causal models only (ac_model_info.causal, engine/graph/causal.c).
 *       Each push computes only the new frames of every step, from state the stream keeps:
 *       the last inputs of each convolution and pool (which also holds stride and pool
 *       remainders), left pads not yet emitted, RNN states, running means, operands waiting
 *       for their partner. The answer after n samples is the offline forward pass over
 *       samples [0, n): tests/unit/test_stream.c checks it against the engine and PyTorch
 *       for random piece sizes, from one sample to seconds.
 *   AC_STREAM_WINDOW  any model: at each hop, the last `window` samples (the policy's window;
 *       zeros before the stream began) go through an ordinary forward pass.
 * AC_STREAM_AUTO picks INCREMENTAL for causal models whose answer depends on the recent past
 * (a last-frame readout or an RNN), WINDOW otherwise: a causal model that averages over all
 * time (M5's global mean) would, run incrementally, average the whole stream since it began.
 *
 * Ownership and threads: an ac_stream belongs to its creator and is used by one thread at a
 * time; different streams may run on different threads at once. The model is borrowed and must
 * outlive the stream. Kernels run single-threaded inside a push (streams are the parallelism).
 * A push allocates only while its buffers grow to their working size (the first pieces);
 * pieces are cut at AC_STREAM_MAX_PIECE samples, which bounds every buffer.
 */
#ifndef AC_STREAM_H
#define AC_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "status.h"

#define AC_STREAM_MAX_PIECE 4096

typedef enum ac_stream_mode { AC_STREAM_AUTO = 0, AC_STREAM_INCREMENTAL, AC_STREAM_WINDOW } ac_stream_mode;

typedef struct ac_stream_config {
    ac_stream_mode mode;
    int hop;                 /* samples (at the model's rate) between answers, >= 1 */
} ac_stream_config;

typedef struct ac_stream ac_stream;

/* Called by ac_stream_push for each hop boundary reached: the answer (probabilities,
 * [n_labels]) for the stream's samples [0, end_sample). Valid during the call only. */
typedef void (*ac_stream_emit_fn)(void *ctx, uint64_t end_sample, const float *probs, int n_labels);

/* What AC_STREAM_AUTO chooses for m: INCREMENTAL or WINDOW (above). */
ac_stream_mode ac_stream_auto_mode(const ac_model *m);

/* AC_ERR_INVALID_ARG: hop < 1, or INCREMENTAL asked of a model that is not causal (err says
 * why, naming the node). AC_ERR_NOMEM. */
ac_status ac_stream_create(const ac_model *m, const ac_stream_config *cfg, ac_stream **out, char *err);
void ac_stream_free(ac_stream *s); /* NULL is a no-op */

/* Feeds x[n] (mono floats at the model's rate) and calls emit (may be NULL) for every hop
 * boundary inside it, in order. An incremental stream emits nothing until its first frame
 * exists (samples shorter than the network's first frame have no offline answer either).
 * Errors: AC_ERR_NOMEM; the stream's state is then undefined: free it. */
ac_status ac_stream_push(ac_stream *s, const float *x, size_t n, ac_stream_emit_fn emit, void *ctx,
                         char *err);

/* Incremental streams: the model's raw output for every sample pushed so far into
 * out[n_labels]; returns 1, or 0 (out untouched) before the first frame. */
int ac_stream_output(ac_stream *s, float *out);

uint64_t ac_stream_samples(const ac_stream *s);
ac_stream_mode ac_stream_get_mode(const ac_stream *s);
/* Bytes the stream holds now (its state and buffers), for memory accounting. */
size_t ac_stream_bytes(const ac_stream *s);

#endif
