/* audio.h - audio bytes in memory -> mono float samples at the model's rate.
 *
 * Decoding goes through libsndfile's virtual I/O (every container and encoding it reads:
 * WAV of any bit depth incl. float, A-law/u-law, AIFF, FLAC, OGG/Vorbis/Opus, MP3; what it
 * does not read, WebM/Matroska and MP4/M4A, goes to libavformat: audio_av.h), then
 * channels are averaged, then libsoxr resamples (its "high quality" preset).
 * Thread-safety: every function here is reentrant; call from any thread.
 */
#ifndef AC_AUDIO_H
#define AC_AUDIO_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "status.h"

/* Limits on what a header may claim before any decoding happens. */
#define AC_AUDIO_MAX_CHANNELS 32
#define AC_AUDIO_MIN_RATE 1000
#define AC_AUDIO_MAX_RATE 384000

/* A decoded clip. Owns `samples` (free with ac_audio_free). */
typedef struct ac_audio {
    float *samples;       /* [n] mono at `rate`: in [-1, 1] at the source rate; resampling is
                           * band-limited, so it may ring a little past full scale (up to
                           * ~12% for clipped input, found by fuzz_audio). Not clamped, so
                           * that training (`audioclass decode`) and serving see the same. */
    size_t n;
    int rate;             /* rate of `samples` (the requested target rate) */
    int src_rate;         /* as stored in the input */
    int src_channels;
    size_t src_frames;    /* frames decoded from the input, before resampling */
    char container[24];   /* "WAV", "FLAC", "Ogg Vorbis", "MP3", "WebM/Opus", "M4A/AAC", ... */
    char encoding[32];    /* "Signed 16 bit PCM", "Vorbis", "Opus", "AAC", ... */
} ac_audio;

/* Decodes `len` bytes at `data` into *out (mono, resampled to target_rate; target_rate 0
 * keeps the source rate). Audio longer than max_seconds (<= 0: no limit) is refused with
 * AC_ERR_AUDIO_TOO_LONG before it is decoded in full. On failure *out is left zeroed and
 * err says which field is wrong. Codes: AC_ERR_AUDIO_EMPTY (no bytes or no samples),
 * AC_ERR_BAD_AUDIO (not audio, corrupt, absurd header), AC_ERR_UNSUPPORTED_AUDIO
 * (recognised but undecodable encoding), AC_ERR_AUDIO_TOO_LONG, AC_ERR_NOMEM. */
ac_status ac_audio_decode(const void *data, size_t len, int target_rate, double max_seconds,
                          ac_audio *out, char *err);

/* Options of ac_audio_decode_opts. */
typedef struct ac_decode_opts {
    int target_rate;      /* 0: keep the source rate */
    double max_seconds;   /* <= 0: no limit */
    /* Optional budget: called before the output buffer grows to `bytes` in total (the only
     * allocation that grows with the clip; everything else a decode holds is a fixed-size
     * block). Anything but AC_OK stops the decode with that code and the callback's err. */
    ac_status (*reserve)(void *user, size_t bytes, char *err);
    void *user;
} ac_decode_opts;

/* As ac_audio_decode, with a memory budget. Decoding and resampling run in blocks of a
 * fixed number of frames (libsndfile reads, libsoxr's streaming interface), so a decode
 * holds the output plus a constant (measured in docs/RELIABILITY.md), whatever the source
 * rate, channel count or length. */
ac_status ac_audio_decode_opts(const void *data, size_t len, const ac_decode_opts *opts,
                               ac_audio *out, char *err);

/* 1 when the bytes start like a container the decoders read (WAV, AIFF, FLAC, Ogg, MP3,
 * WebM/Matroska, MP4/M4A ...), 0 otherwise: how a tool tells a file from raw PCM. */
int ac_audio_recognises(const void *data, size_t len);

/* Everything f has left, into *out[*n] (malloc'd, the caller frees it; NULL on failure);
 * `what` names f in messages. AC_ERR_IO, AC_ERR_NOMEM. */
ac_status ac_read_all(FILE *f, const char *what, unsigned char **out, size_t *n, char *err);

/* Reads a whole file and decodes it as above. AC_ERR_IO if it cannot be read. */
ac_status ac_audio_decode_file(const char *path, int target_rate, double max_seconds,
                               ac_audio *out, char *err);

/* Resamples in[n_in] from in_rate to out_rate into a new buffer *out[*n_out] (caller frees).
 * Equal rates copy. */
ac_status ac_resample(const float *in, size_t n_in, int in_rate, int out_rate, float **out,
                      size_t *n_out, char *err);

/* Frees the samples and zeroes *a. NULL and an already-freed clip are harmless. */
void ac_audio_free(ac_audio *a);

#endif
