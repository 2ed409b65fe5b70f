/* media_type.h - what a POST /classify Content-Type means for how the body is read.
 * Thread-safety: pure functions; any thread. */
#ifndef AC_MEDIA_TYPE_H
#define AC_MEDIA_TYPE_H

#include "engine.h"

typedef enum media_kind {
    MEDIA_RAW_AUDIO,   /* the body is an audio file; its own header says what it is */
    MEDIA_MULTIPART,   /* multipart/form-data; the audio is field `file` */
    MEDIA_PCM,         /* headerless 16-bit PCM: audio/L16 (big-endian), audio/pcm (little) */
    MEDIA_BAD_PCM,     /* audio/L16 or audio/pcm with missing or bad parameters: 400 */
    MEDIA_UNSUPPORTED  /* 415 */
} media_kind;

typedef struct media_info {
    media_kind kind;
    ac_pcm_format pcm; /* MEDIA_PCM: rate, channels (default 1), byte order */
    char why[128];     /* MEDIA_BAD_PCM: which parameter is wrong */
} media_info;

/* What the service takes, for 415 answers and docs. */
#define MEDIA_ACCEPTED                                                                         \
    "an audio file (WAV, AIFF, FLAC, Ogg Vorbis, Ogg Opus, MP3, WebM/Opus, M4A/AAC, ...) as "  \
    "audio/* or application/octet-stream; raw 16-bit PCM as audio/L16;rate=R[;channels=C] "    \
    "(big-endian, RFC 2586) or audio/pcm;rate=R[;channels=C] (little-endian); or "             \
    "multipart/form-data with the audio in field \"file\""

/* audio/ *, application/octet-stream and application/ogg (and no Content-Type at all, which
 * RFC 9110 lets a server treat as octet-stream) are audio files; audio/L16 and audio/pcm
 * (also audio/x-pcm, audio/L16 with its rate= and channels= parameters) are raw PCM; other
 * parameters are ignored; matching is case-insensitive. Everything else, e.g. text/plain,
 * application/json or the form encoding curl -d sends, is unsupported. */
media_kind media_parse(const char *content_type, media_info *out);
/* media_parse's kind alone. */
media_kind media_classify(const char *content_type);

#endif
