/* status.c - names and messages of ac_status codes; the error-formatting helper. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static const struct { const char *name, *text; } k_status[AC_STATUS_COUNT] = {
    [AC_OK] = {"ok", "success"},
    [AC_ERR_NOMEM] = {"out_of_memory", "out of memory"},
    [AC_ERR_IO] = {"io_error", "input/output error"},
    [AC_ERR_INVALID_ARG] = {"invalid_argument", "invalid argument"},
    [AC_ERR_BAD_MODEL] = {"bad_model", "model file is invalid"},
    [AC_ERR_BAD_AUDIO] = {"bad_audio", "the data is not readable audio"},
    [AC_ERR_UNSUPPORTED_AUDIO] = {"unsupported_audio", "audio format is not supported"},
    [AC_ERR_AUDIO_EMPTY] = {"audio_empty", "audio contains no samples"},
    [AC_ERR_AUDIO_TOO_SHORT] = {"audio_too_short", "audio is too short to classify"},
    [AC_ERR_AUDIO_TOO_LONG] = {"audio_too_long", "audio is longer than allowed"},
    [AC_ERR_NOT_FOUND] = {"not_found", "not found"},
    [AC_ERR_QUEUE_FULL] = {"queue_full", "server is at capacity, retry later"},
    [AC_ERR_SHUTTING_DOWN] = {"shutting_down", "server is shutting down"},
    [AC_ERR_INTERNAL] = {"internal_error", "internal error"},
};

const char *ac_status_name(ac_status s)
{
    return (s >= 0 && s < AC_STATUS_COUNT) ? k_status[s].name : "unknown_status";
}

const char *ac_strerror(ac_status s)
{
    return (s >= 0 && s < AC_STATUS_COUNT) ? k_status[s].text : "unknown status code";
}

ac_status ac_fail(char *err, ac_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, AC_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}
