/* audio_raw.h - headerless 16-bit PCM (HTTP `audio/L16`, RFC 2586, big-endian; and
 * `audio/pcm`, little-endian), whose rate and channel count come from the caller (the
 * Content-Type's parameters), not from the bytes.
 * Thread-safety: reentrant; any thread. */
#ifndef AC_AUDIO_RAW_H
#define AC_AUDIO_RAW_H

#include <stddef.h>

#include "audio.h"

typedef struct ac_pcm_format {
    int rate;        /* frames per second, AC_AUDIO_MIN_RATE..AC_AUDIO_MAX_RATE */
    int channels;    /* interleaved, 1..AC_AUDIO_MAX_CHANNELS */
    int big_endian;  /* 1: network byte order (audio/L16); 0: little-endian (audio/pcm) */
} ac_pcm_format;

/* Decodes len bytes of signed 16-bit interleaved PCM in format *f as ac_audio_decode does
 * (downmix, limits, resampling to target_rate); `container` is "raw PCM". len must be a whole
 * number of frames (AC_ERR_BAD_AUDIO otherwise); 0 bytes is AC_ERR_AUDIO_EMPTY. */
ac_status ac_audio_decode_pcm(const void *data, size_t len, const ac_pcm_format *f, int target_rate,
                              double max_seconds, ac_audio *out, char *err);

#endif
