/* audio_av.h - the decoder for what libsndfile does not read: WebM/Matroska (Opus, Vorbis:
 * what browsers' MediaRecorder makes) and MP4/M4A (AAC, ALAC: phones' voice memos), through
 * libavformat/libavcodec from memory.
 *
 * Only those two demuxers and the audio decoders opus, vorbis, aac, alac, flac and mp3 can
 * run; no file or network is ever opened (MP4 external references are refused), decoding is
 * single-threaded, and the limits of ac_audio_decode apply: channels, sample rate, and
 * max_seconds counted on decoded frames, with memory one mono float per frame.
 * Internal to engine/audio.c, which calls it when libsndfile cannot open the bytes.
 * Thread-safety: reentrant; any thread. */
#ifndef AC_AUDIO_AV_H
#define AC_AUDIO_AV_H

#include <stddef.h>

#include "audio.h"

/* 1 when the bytes start like a container this decoder reads (EBML header; ISO BMFF
 * `ftyp` box), 0 otherwise. */
int ac_audio_av_recognises(const void *data, size_t len);

/* As ac_audio_decode, for bytes that ac_audio_av_recognises. */
ac_status ac_audio_av_decode(const void *data, size_t len, int target_rate, double max_seconds,
                             ac_audio *out, char *err);

#endif
