/* http_status.h - the one place that maps ac_status codes and HTTP-level failures to an
 * HTTP status and the JSON error code clients see. */
#ifndef AC_HTTP_STATUS_H
#define AC_HTTP_STATUS_H

#include "status.h"

/* Failures that happen before or around the engine, with no ac_status of their own. */
typedef enum hs_error {
    HS_BAD_REQUEST,          /* 400 bad query parameter or malformed request */
    HS_UNAUTHORIZED,         /* 401 missing or wrong API key */
    HS_FORBIDDEN,            /* 403 a WebSocket from a page of another origin */
    HS_NO_ROUTE,             /* 404 no such path */
    HS_UNKNOWN_MODEL,        /* 404 no such model */
    HS_METHOD_NOT_ALLOWED,   /* 405 (with an Allow header) */
    HS_BODY_TOO_LARGE,       /* 413 body over --max-body-bytes */
    HS_UNSUPPORTED_MEDIA,    /* 415 content type we do not take */
    HS_UPGRADE_REQUIRED,     /* 426 /stream without a WebSocket handshake */
    HS_TOO_MANY_STREAMS,     /* 503 --max-streams streams are open */
    HS_ERROR_COUNT
} hs_error;

typedef struct hs_mapping {
    int http;          /* HTTP status */
    const char *code;  /* JSON error.code */
} hs_mapping;

/* HTTP status and code for an engine status (AC_OK -> 200 "ok"). Server overload and
 * shutdown are 503, input problems 4xx; only real bugs and broken models are 500. */
hs_mapping hs_from_status(ac_status st);
hs_mapping hs_from_error(hs_error e);

#endif
