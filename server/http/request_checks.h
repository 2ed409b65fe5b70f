/* request_checks.h - checks every request passes before any of it is used: message framing
 * (RFC 9112 section 6), NUL bytes, and how many query parameters it has.
 *
 * Framing matters when nothing sits in front of the server: if two parties disagree about
 * where a body ends, bytes of one request are read as another (request smuggling). So a
 * request is refused (400, and its connection closed) when it has more than one
 * Content-Length, a Content-Length that is not digits, both Content-Length and
 * Transfer-Encoding, a Transfer-Encoding other than exactly "chunked", or a header name
 * that is not a token (e.g. "Content-Length :", which some parsers read as Content-Length).
 * Thread-safety: pure functions of the connection, on its MHD thread. */
#ifndef AC_REQUEST_CHECKS_H
#define AC_REQUEST_CHECKS_H

#include <microhttpd.h>

/* Most query parameters a request may carry (the API takes at most 7). */
#define RC_MAX_PARAMS 64

typedef struct rc_verdict {
    int status;          /* 400 or 414 */
    const char *code;    /* JSON error code */
    char message[160];
} rc_verdict;

/* 1 when the raw request target holds "%00" (any case). */
int rc_has_encoded_nul(const char *raw_target);

/* 0 when the request is fine; otherwise 1 and *v says how to answer. nul_in_target comes
 * from rc_has_encoded_nul on the raw target; raw_params is the parameter count of a query
 * cut short before MHD parsed it (0 when it was not). */
int rc_check(struct MHD_Connection *c, int nul_in_target, int raw_params, rc_verdict *v);

#endif
