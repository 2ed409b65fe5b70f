/* Lingering close: an answer given before the request's body was read (413, 401, 503 ...)
 * must reach the client. libmicrohttpd sends it, shuts the socket for writing and closes it;
 * closing a socket whose receive queue still holds the client's unread body makes the kernel
 * send a TCP reset, and a reset makes the client's kernel discard the answer before the
 * client reads it (curl reports status 000). The lingerer keeps such sockets open on a
 * duplicate descriptor, reads and drops what the client still sends, and closes each one at
 * the client's end of stream, or after a deadline, as nginx and Apache do.
 *
 * Ownership: linger_adopt takes a duplicate of the descriptor (the caller's stays the
 * caller's). The lingerer owns its thread and every adopted descriptor; linger_free closes
 * whatever it still holds. linger_adopt may be called from any thread; linger_new and
 * linger_free from one thread, after/before every adopt. */
#ifndef AUDIOCLASS_LINGER_H
#define AUDIOCLASS_LINGER_H

#include <stddef.h>

typedef struct linger_pool linger_pool;

/* At most max_sockets at once (more are closed at once: a reset, as without lingering);
 * each for at most deadline_ms. NULL when out of memory or threads. */
linger_pool *linger_new(int max_sockets, int deadline_ms);

/* Keeps the socket open until the client has finished sending (or the deadline). */
void linger_adopt(linger_pool *l, int fd);


void linger_free(linger_pool *l);

#endif
