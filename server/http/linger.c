/* Lingering close (see linger.h): one thread polls the adopted sockets and drops what
 * arrives until the client's end of stream or the deadline. */
#include "linger.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct slot {
    int fd;
    double deadline_ms; /* monotonic */
} slot;

struct linger_pool {
    pthread_t thread;
    pthread_mutex_t mu;      /* guards slots, n and stop */
    slot *slots;             /* [max]: adopt appends, the thread removes */
    int n, max, deadline_ms;
    int stop;
    int wake[2];             /* a byte on wake[1] makes the thread look again */
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Reads and drops what is waiting. 1 when the socket is done: end of stream or an error. */
static int drain(int fd)
{
    char buf[16384];
    for (int i = 0; i < 64; i++) { /* at most 1 MB per turn: others get their turn too */
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
        return 1;
    }
    return 0;
}

static void forget(linger_pool *l, int fd)
{
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->n; i++)
        if (l->slots[i].fd == fd) {
            l->slots[i] = l->slots[--l->n];
            break;
        }
    pthread_mutex_unlock(&l->mu);
    close(fd);
}

static void *run(void *arg)
{
    linger_pool *l = arg;
    struct pollfd *p = malloc(sizeof *p * (size_t)(l->max + 1));
    double *deadline = malloc(sizeof *deadline * (size_t)(l->max + 1));
    if (!p || !deadline) abort(); /* sized at linger_new; failing here is not recoverable */
    for (;;) {
        pthread_mutex_lock(&l->mu);
        int stop = l->stop, n = l->n;
        double next = 0;
        for (int i = 0; i < n; i++) {
            p[i] = (struct pollfd){.fd = l->slots[i].fd, .events = POLLIN};
            deadline[i] = l->slots[i].deadline_ms;
            if (!next || deadline[i] < next) next = deadline[i];
        }
        pthread_mutex_unlock(&l->mu);
        if (stop) break;
        p[n] = (struct pollfd){.fd = l->wake[0], .events = POLLIN};
        double t = now_ms();
        int wait = n ? (next > t ? (int)(next - t) + 1 : 0) : -1;
        if (poll(p, (nfds_t)n + 1, wait) < 0 && errno != EINTR) break;
        if (p[n].revents) {
            char b[64];
            while (read(l->wake[0], b, sizeof b) > 0) {}
        }
        t = now_ms();
        for (int i = 0; i < n; i++)
            if ((p[i].revents && drain(p[i].fd)) || t >= deadline[i]) forget(l, p[i].fd);
    }
    free(p);
    free(deadline);
    return NULL;
}

linger_pool *linger_new(int max_sockets, int deadline_ms)
{
    linger_pool *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->max = max_sockets > 0 ? max_sockets : 1;
    l->deadline_ms = deadline_ms;
    l->slots = malloc(sizeof *l->slots * (size_t)l->max);
    if (!l->slots || pipe(l->wake)) {
        free(l->slots);
        free(l);
        return NULL;
    }
    fcntl(l->wake[0], F_SETFL, O_NONBLOCK);
    fcntl(l->wake[1], F_SETFL, O_NONBLOCK);
    pthread_mutex_init(&l->mu, NULL);
    if (pthread_create(&l->thread, NULL, run, l)) {
        close(l->wake[0]);
        close(l->wake[1]);
        pthread_mutex_destroy(&l->mu);
        free(l->slots);
        free(l);
        return NULL;
    }
    return l;
}

void linger_adopt(linger_pool *l, int fd)
{
    if (!l || fd < 0) return;
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) return;
    pthread_mutex_lock(&l->mu);
    int kept = !l->stop && l->n < l->max;
    if (kept) l->slots[l->n++] = (slot){.fd = own, .deadline_ms = now_ms() + l->deadline_ms};
    pthread_mutex_unlock(&l->mu);
    if (!kept) {
        close(own);
        return;
    }
    (void)!write(l->wake[1], "", 1);
}

void linger_free(linger_pool *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_mutex_unlock(&l->mu);
    (void)!write(l->wake[1], "", 1);
    pthread_join(l->thread, NULL);
    for (int i = 0; i < l->n; i++) close(l->slots[i].fd);
    close(l->wake[0]);
        close(l->wake[1]);
    pthread_mutex_destroy(&l->mu);
    free(l->slots);
    free(l);
}
