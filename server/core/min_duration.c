/* min_duration.c - the shortest usable clip per model (see min_duration.h). */
#include "min_duration.h"

#include <math.h>
#include <stdlib.h>

double ac_min_duration_s(const ac_model *m)
{
    const char *v = ac_model_meta(m, AC_META_MIN_DURATION);
    if (v && *v) {
        char *end;
        double s = strtod(v, &end);
        if (!*end && isfinite(s) && s >= 0) return s;
    }
    const ac_model_info *in = ac_model_get_info(m);
    return in->sample_rate > 0 ? AC_MIN_DURATION_WINDOW_FRACTION * in->window / in->sample_rate : 0;
}

ac_status ac_check_min_duration(const ac_model *m, double seconds, char *err)
{
    double min = ac_min_duration_s(m);
    if (seconds >= min) return AC_OK;
    return ac_fail(err, AC_ERR_AUDIO_TOO_SHORT,
                   "audio is %.4g s long; %s needs at least %.4g s", seconds,
                   ac_model_get_info(m)->name, min);
}
