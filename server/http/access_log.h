/* access_log.h - structured logging: one JSON object per line on stderr, for requests and
 * for server events. Thread-safe: each line is written with a single write(2), so lines
 * from concurrent threads never interleave. */
#ifndef AC_ACCESS_LOG_H
#define AC_ACCESS_LOG_H

#include <jansson.h>

/* Adds "ts" (UTC, ISO 8601 with milliseconds) and "event", writes `fields` as one line,
 * and releases the reference (fields may be NULL). */
void log_line(const char *event, json_t *fields);

/* Makes every line on stderr JSON: fd 2 becomes a pipe whose lines (what libraries such as
 * libmpg123 print) a thread logs as {"event":"library","message":...}, at most 200 a
 * second; log_line itself writes to the real stderr. Not in sanitizer builds (their reports
 * must reach fd 2 as they are). Call once from the main thread; log_capture_stop restores
 * fd 2 and logs what is left. */
void log_capture_stderr(void);
void log_capture_stop(void);

#endif
