/* test_hooks.c - file-controlled pause points for tests (see test_hooks.h). */
#include "test_hooks.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const char *g_dir;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init(void)
{
    const char *d = getenv("AUDIOCLASS_TEST_HOLD_DIR");
    g_dir = d && *d ? d : NULL;
}

void test_hold(const char *point)
{
    pthread_once(&g_once, init);
    if (!g_dir) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, point);
    while (access(path, F_OK) == 0) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
