/* min_duration.h - the shortest clip a model is asked to classify. Shorter audio is
 * refused (HTTP 422 audio_too_short; `classify` reports the same error) instead of being
 * padded into a window that is almost all zeros and answered with a confident guess.
 * Thread-safety: pure functions of an immutable model; any thread. */
#ifndef AC_MIN_DURATION_H
#define AC_MIN_DURATION_H

#include "engine.h"

/* Metadata key that sets the minimum, in seconds (a decimal number >= 0). */
#define AC_META_MIN_DURATION "min_duration_s"
/* Without the key: this fraction of the model's input window (M5: 1 s -> 0.125 s;
 * EnvNet: 1.5 s -> 0.188 s). */
#define AC_MIN_DURATION_WINDOW_FRACTION 0.125

/* Seconds: the metadata value when present and valid, else the window fraction. */
double ac_min_duration_s(const ac_model *m);
/* AC_OK, or AC_ERR_AUDIO_TOO_SHORT with a message in err when a clip of `seconds` (source
 * frames / source rate) is below the model's minimum. */
ac_status ac_check_min_duration(const ac_model *m, double seconds, char *err);

#endif
