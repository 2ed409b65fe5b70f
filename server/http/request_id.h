/* request_id.h - the X-Request-Id of a request: the client's, if it is safe to echo into
 * headers, JSON and logs, or a fresh unique one. Thread-safe. */
#ifndef AC_REQUEST_ID_H
#define AC_REQUEST_ID_H

#define REQUEST_ID_MAX 64 /* characters, without the terminating NUL */

/* out[REQUEST_ID_MAX + 1] <- `given` when it is 1..64 characters of [A-Za-z0-9._:-],
 * otherwise a generated id ("ac-" + 16 hex digits, unique within the process). */
void request_id_make(const char *given, char *out);

#endif
