/* failmalloc.c - LD_PRELOAD allocator interposer for fault-injection tests: fails the k-th
 * allocation (malloc, calloc, realloc, posix_memalign, aligned_alloc) made after a trigger,
 * in any thread and any library (ours, libmicrohttpd, jansson, libsndfile, libsoxr ...).
 *
 * Control, without allocating: the FIFO named by FAILMALLOC_CTL takes one command a line,
 * and each is answered with one line on the FIFO named by FAILMALLOC_ACK:
 *   arm K     the K-th allocation from now fails (once); K = 0 disarms.   -> "ok"
 *   status    -> "ALLOCS FAILED OBJECT": allocations since the last arm, 1 when one was
 *                failed, and the shared object whose code asked for it ("-" if none).
 * FAILMALLOC_SKIP: comma-separated names of shared objects whose own allocations are never
 * failed nor counted (third-party code known to crash on a failed allocation).
 * Not for sanitizer or valgrind builds (they bring their own allocator). Test-only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_memalign)(void **, size_t, size_t);
static void *(*real_aligned)(size_t, size_t);

static atomic_long g_countdown;   /* > 0: armed; the allocation that takes it to 0 fails */
static atomic_long g_allocs;      /* since the last arm */
static atomic_int g_failed;
static void *_Atomic g_caller;    /* return address of the failed allocation */

/* dlsym may call calloc before real_calloc is known: serve that from a static arena. */
static char g_boot[4096];
static size_t g_boot_used;
static int in_boot(void *p) { return (char *)p >= g_boot && (char *)p < g_boot + sizeof g_boot; }

static void init(void)
{
    static int done;
    if (done) return;
    done = 1;
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned = dlsym(RTLD_NEXT, "aligned_alloc");
}

/* Address ranges of the FAILMALLOC_SKIP objects, found at the first arm. */
static struct { uintptr_t lo, hi; } g_skip[64];
static atomic_int g_n_skip;

static int add_ranges(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    const char *want = getenv("FAILMALLOC_SKIP");
    if (!want || !info->dlpi_name || !info->dlpi_name[0]) return 0;
    int match = 0;
    for (const char *p = want; *p;) {
        size_t n = strcspn(p, ",");
        char name[128];
        if (n && n < sizeof name) {
            memcpy(name, p, n);
            name[n] = 0;
            if (strstr(info->dlpi_name, name)) match = 1;
        }
        p += n + (p[n] == ',');
    }
    if (!match) return 0;
    int k = atomic_load(&g_n_skip);
    for (int i = 0; i < info->dlpi_phnum && k < 64; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD) {
            g_skip[k].lo = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
            g_skip[k].hi = g_skip[k].lo + info->dlpi_phdr[i].p_memsz;
            k++;
        }
    atomic_store(&g_n_skip, k);
    return 0;
}

static int skipped(void *caller)
{
    uintptr_t a = (uintptr_t)caller;
    int n = atomic_load_explicit(&g_n_skip, memory_order_relaxed);
    for (int i = 0; i < n; i++)
        if (a >= g_skip[i].lo && a < g_skip[i].hi) return 1;
    return 0;
}

/* 1 when this allocation must fail. */
static int fail_now(void *caller)
{
    if (atomic_load_explicit(&g_countdown, memory_order_relaxed) <= 0) return 0;
    if (skipped(caller)) return 0;
    atomic_fetch_add(&g_allocs, 1);
    if (atomic_fetch_sub(&g_countdown, 1) == 1) {
        atomic_store(&g_caller, caller);
        atomic_store(&g_failed, 1);
        return 1;
    }
    return 0;
}

void *malloc(size_t n)
{
    if (!real_malloc) init();
    if (fail_now(__builtin_return_address(0))) { errno = ENOMEM; return NULL; }
    return real_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    if (!real_calloc) {
        /* during dlsym: a zeroed piece of the static arena */
        size_t n = a * b, off = (g_boot_used + 15) & ~(size_t)15;
        if (off + n > sizeof g_boot) return NULL;
        g_boot_used = off + n;
        return g_boot + off;
    }
    if (fail_now(__builtin_return_address(0))) { errno = ENOMEM; return NULL; }
    return real_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    if (!real_realloc) init();
    if (in_boot(p)) {
        void *q = malloc(n);
        if (q) memcpy(q, p, n);
        return q;
    }
    if (n && fail_now(__builtin_return_address(0))) { errno = ENOMEM; return NULL; }
    return real_realloc(p, n);
}

void free(void *p)
{
    if (!p || in_boot(p)) return;
    if (!real_free) init();
    real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (!real_memalign) init();
    if (fail_now(__builtin_return_address(0))) return ENOMEM;
    return real_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    if (!real_aligned) init();
    if (fail_now(__builtin_return_address(0))) { errno = ENOMEM; return NULL; }
    return real_aligned(align, n);
}

static void reply(int fd, const char *s) { ssize_t w = write(fd, s, strlen(s)); (void)w; }

static void *control(void *arg)
{
    (void)arg;
    sigset_t all; /* signals are the server's business (it takes them with sigwait) */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    const char *ctl = getenv("FAILMALLOC_CTL"), *ack = getenv("FAILMALLOC_ACK");
    int in = open(ctl, O_RDWR); /* RDWR: never sees EOF when a writer goes */
    if (in < 0) return NULL;
    char line[128];
    size_t have = 0;
    for (;;) {
        ssize_t got = read(in, line + have, sizeof line - 1 - have);
        if (got <= 0) return NULL;
        have += (size_t)got;
        char *nl;
        while ((nl = memchr(line, '\n', have))) {
            *nl = 0;
            char out[512];
            if (!strncmp(line, "arm ", 4)) {
                atomic_store(&g_countdown, 0);
                if (!atomic_load(&g_n_skip)) dl_iterate_phdr(add_ranges, NULL);
                atomic_store(&g_allocs, 0);
                atomic_store(&g_failed, 0);
                atomic_store(&g_caller, NULL);
                atomic_store(&g_countdown, atol(line + 4));
                snprintf(out, sizeof out, "ok\n");
            } else {
                Dl_info di;
                void *c = atomic_load(&g_caller);
                const char *obj = c && dladdr(c, &di) && di.dli_fname ? di.dli_fname : "-";
                const char *base = strrchr(obj, '/');
                snprintf(out, sizeof out, "%ld %d %s\n", atomic_load(&g_allocs),
                         atomic_load(&g_failed), base ? base + 1 : obj);
            }
            int a = open(ack, O_WRONLY);
            if (a >= 0) {
                reply(a, out);
                close(a);
            }
            size_t used = (size_t)(nl - line) + 1;
            memmove(line, line + used, have - used);
            have -= used;
        }
        if (have == sizeof line - 1) have = 0;
    }
}

__attribute__((constructor)) static void start(void)
{
    init();
    if (!getenv("FAILMALLOC_CTL") || !getenv("FAILMALLOC_ACK")) return;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &a, control, NULL);
    pthread_attr_destroy(&a);
}
