/* access_log.c - one JSON line per request or event on stderr; library output captured. */
#include "access_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int g_fd = STDERR_FILENO; /* where log lines go (the real stderr) */

static void stamp_now(char *stamp, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void log_line(const char *event, json_t *fields)
{
    char stamp[40];
    stamp_now(stamp, sizeof stamp);
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
    ssize_t w = write(g_fd, s, len + 1);
    (void)w;
    free(s);
}

/* --- stderr capture: fd 2 becomes a pipe; a thread turns what arrives into JSON lines --- */

static int g_pipe_r = -1, g_saved = -1;
static pthread_t g_reader;
static int g_capturing;

/* Library text is logged as printable ASCII, cut at 400 bytes a line, and at most 200 lines
 * a second (the rest are counted: one corrupt MP3 can make libmpg123 print hundreds). */
static void emit(const char *line, size_t n, unsigned long *burst, time_t *second,
                 unsigned long *dropped)
{
    time_t now = time(NULL);
    if (now != *second) {
        if (*dropped)
            log_line("library_output_dropped", json_pack("{s:I}", "lines", (json_int_t)*dropped));
        *second = now, *burst = 0, *dropped = 0;
    }
    if (++*burst > 200) {
        ++*dropped;
        return;
    }
    char clean[401];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof clean - 1; i++)
        clean[k++] = line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?';
    clean[k] = 0;
    if (k) log_line("library", json_pack("{s:s}", "message", clean));
}

static void *reader(void *arg)
{
    (void)arg;
    char buf[4096];
    size_t have = 0;
    unsigned long burst = 0, dropped = 0;
    time_t second = 0;
    for (;;) {
        ssize_t got = read(g_pipe_r, buf + have, sizeof buf - have);
        if (got <= 0) break;
        have += (size_t)got;
        size_t start = 0;
        for (size_t i = 0; i < have; i++)
            if (buf[i] == '\n') {
                emit(buf + start, i - start, &burst, &second, &dropped);
                start = i + 1;
            }
        if (start == 0 && have == sizeof buf) { /* a line longer than the buffer */
            emit(buf, have, &burst, &second, &dropped);
            have = 0;
        } else {
            memmove(buf, buf + start, have - start);
            have -= start;
        }
    }
    if (have) emit(buf, have, &burst, &second, &dropped);
    if (dropped) log_line("library_output_dropped", json_pack("{s:I}", "lines", (json_int_t)dropped));
    return NULL;
}

#if defined(__SANITIZE_ADDRESS__)
static const int k_sanitized = 1;
#else
static const int k_sanitized = 0;
#endif

void log_capture_stderr(void)
{
    /* Sanitizer reports go to fd 2 and must reach the test harness as they are. */
    if (k_sanitized || g_capturing) return;
    int p[2];
    if (pipe(p)) return;
    int saved = dup(STDERR_FILENO);
    if (saved < 0) {
        close(p[0]), close(p[1]);
        return;
    }
    g_fd = saved;
    g_saved = saved;
    g_pipe_r = p[0];
    if (dup2(p[1], STDERR_FILENO) < 0 || pthread_create(&g_reader, NULL, reader, NULL)) {
        dup2(saved, STDERR_FILENO);
        close(p[0]), close(p[1]), close(saved);
        g_fd = STDERR_FILENO, g_saved = g_pipe_r = -1;
        return;
    }
    close(p[1]); /* fd 2 is now the only write end */
    g_capturing = 1;
}

void log_capture_stop(void)
{
    if (!g_capturing) return;
    g_capturing = 0;
    fflush(stderr);
    dup2(g_saved, STDERR_FILENO); /* closes the pipe's write end: the reader sees EOF */
    pthread_join(g_reader, NULL);
    close(g_pipe_r);
    g_fd = STDERR_FILENO;
    close(g_saved);
    g_saved = g_pipe_r = -1;
}
