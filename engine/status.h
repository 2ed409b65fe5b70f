/* status.h - ac_status return codes shared by every engine call, and their messages. */
#ifndef AC_STATUS_H
#define AC_STATUS_H

/* Size of the caller-owned buffer that engine calls fill with a detailed message. */
#define AC_ERR_LEN 256

/* Every engine call that can fail returns one of these; 0 is success. The detail of a
 * failure goes into the caller's `char err[AC_ERR_LEN]`, the category is the code. The
 * server maps codes to HTTP in one place (server/http_status.c). */
typedef enum ac_status {
    AC_OK = 0,
    AC_ERR_NOMEM,            /* allocation failed */
    AC_ERR_IO,               /* file could not be opened, read or mapped */
    AC_ERR_INVALID_ARG,      /* caller passed a bad parameter (NULL, range) */
    AC_ERR_BAD_MODEL,        /* model file malformed or inconsistent */
    AC_ERR_BAD_AUDIO,        /* bytes are corrupt or not audio at all */
    AC_ERR_UNSUPPORTED_AUDIO,/* audio, but a format/encoding we cannot decode */
    AC_ERR_AUDIO_EMPTY,      /* decodes to zero samples */
    AC_ERR_AUDIO_TOO_SHORT,  /* decodes, but too short to classify */
    AC_ERR_AUDIO_TOO_LONG,   /* longer than the configured maximum duration */
    AC_ERR_NOT_FOUND,        /* named thing (model, layer) does not exist */
    AC_ERR_QUEUE_FULL,       /* scheduler queue is at capacity; retry later */
    AC_ERR_SHUTTING_DOWN,    /* scheduler no longer accepts work */
    AC_ERR_INTERNAL,         /* a bug: an invariant did not hold */
    AC_STATUS_COUNT
} ac_status;

/* Stable snake_case name of a code ("bad_audio"); used as the JSON error code. */
const char *ac_status_name(ac_status s);
/* Short human sentence for a code, for when no detail is available. */
const char *ac_strerror(ac_status s);

/* Formats a message into err (may be NULL) and returns code: `return ac_fail(err, code, ...)`. */
ac_status ac_fail(char *err, ac_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
