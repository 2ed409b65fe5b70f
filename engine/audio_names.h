/* audio_names.h - the names people use for audio file types ("WAV", "Ogg Vorbis", "MP3"),
 * for the `format` field of results; libsndfile's own are file extensions (OGA, M1A).
 * Internal to engine/audio*.c. Thread-safety: pure functions; any thread. */
#ifndef AC_AUDIO_NAMES_H
#define AC_AUDIO_NAMES_H

#include <stddef.h>

/* libsndfile's SF_INFO.format (major | subtype) -> name into out[cap]. */
void ac_audio_sf_format_name(int sf_format, char *out, size_t cap);

#endif
