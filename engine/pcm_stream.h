/* pcm_stream.h - live PCM bytes -> mono floats at a model's rate, in pieces: a sample split
 * across two messages is kept, and the resampler (libsoxr's streaming interface, the
 * decoder's quality) keeps its filter state from one piece to the next, so a stream cut
 * anywhere gives the same samples.
 *
 * Ownership and threads: an ac_pcm_stream belongs to its creator, one thread at a time. The
 * samples a feed returns live in the stream's buffer until its next feed/flush/free.
 */
#ifndef AC_PCM_STREAM_H
#define AC_PCM_STREAM_H

#include <stddef.h>

#include "status.h"

typedef enum ac_pcm_encoding { AC_PCM_S16LE = 0, AC_PCM_F32LE } ac_pcm_encoding;

typedef struct ac_pcm_stream ac_pcm_stream;

/* in_rate: AC_AUDIO_MIN_RATE..AC_AUDIO_MAX_RATE (AC_ERR_INVALID_ARG otherwise). */
ac_status ac_pcm_stream_create(ac_pcm_encoding enc, int in_rate, int out_rate, ac_pcm_stream **out,
                               char *err);
void ac_pcm_stream_free(ac_pcm_stream *p); /* NULL is a no-op */

/* Converts len bytes; *x, *n: the samples at out_rate that are ready (*x may be NULL when
 * *n is 0). AC_ERR_BAD_AUDIO for a
 * non-finite f32 sample (err says which); AC_ERR_NOMEM. */
ac_status ac_pcm_stream_feed(ac_pcm_stream *p, const void *bytes, size_t len, const float **x, size_t *n,
                             char *err);
/* End of stream: the resampler's tail (a dangling partial sample is dropped; *partial says
 * how many bytes were dropped). */
ac_status ac_pcm_stream_flush(ac_pcm_stream *p, const float **x, size_t *n, size_t *partial, char *err);

#endif
