/* access_log.h - structured logging: one JSON object per line on stderr, for requests and
 * for server events. Thread-safe: each line is written with a single write(2), so lines
 * from concurrent threads never interleave. */
#ifndef AC_ACCESS_LOG_H
#define AC_ACCESS_LOG_H

#include <jansson.h>

/* Adds "ts" (UTC, ISO 8601 with milliseconds) and "event", writes `fields` as one line,
 * and releases the reference (fields may be NULL). */
void log_line(const char *event, json_t *fields);

#endif
