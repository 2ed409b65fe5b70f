/* resample.h - what the decoders share to resample (internal to engine/: audio.c decodes
 * whole clips, pcm_stream.c live PCM): libsoxr at its high-quality preset, single-threaded,
 * streamed block by block into a growing output buffer. Reentrant; any thread. */
#ifndef AC_RESAMPLE_H
#define AC_RESAMPLE_H

#include <soxr.h>
#include <stddef.h>

#include "audio.h"

/* The output of a decode: grows geometrically, each growth first cleared with the caller's
 * budget (o->reserve, when o is set), so that every byte a clip holds is accounted for.
 * Zero it to start; the owner frees x. */
typedef struct ac_out_buf {
    float *x;
    size_t n, cap;
    const ac_decode_opts *o; /* NULL: no budget */
} ac_out_buf;

/* libsoxr's output routine reads a few bytes past the end of the space it is given
 * (valgrind: an 8-byte read 28 bytes into a 32-byte buffer): every buffer has this many
 * floats more than its cap. */
#define AC_OUT_SLACK 8

/* Room for `more` floats after b->n; hint: the expected final length (0: unknown). */
ac_status ac_out_room(ac_out_buf *b, size_t more, size_t hint, char *err);
/* A resampler in_rate -> out_rate, mono floats; AC_ERR_NOMEM when it cannot be made. */
ac_status ac_soxr_new(int in_rate, int out_rate, soxr_t *out, char *err);
/* Streams in[n] through sx into b (sx NULL: a copy, the rates being equal); in NULL flushes
 * the resampler's tail. */
ac_status ac_resample_block(soxr_t sx, const float *in, size_t n, ac_out_buf *b, size_t hint, char *err);

#endif
