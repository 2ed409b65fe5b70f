/* access_log.c - one JSON line per request or event on stderr. */
#include "access_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void log_line(const char *event, json_t *fields)
{
    struct timespec ts;
    struct tm tm;
    char stamp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);
    /* ts and event first: easier to read for people, no matter for machines. */
    json_t *o = json_pack("{s:s,s:s}", "ts", stamp, "event", event);
    if (!o) {
        json_decref(fields);
        return;
    }
    if (fields) json_object_update(o, fields);
    json_decref(fields);
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!s) return;
    size_t len = strlen(s);
    s[len] = '\n'; /* replaces the NUL: one write for the whole line */
    ssize_t w = write(STDERR_FILENO, s, len + 1);
    (void)w;
    free(s);
}
