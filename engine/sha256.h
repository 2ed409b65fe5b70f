/* sha256.h - SHA-256 of a byte range, for model identity (GET /models, `info`). */
#ifndef AC_SHA256_H
#define AC_SHA256_H

#include <stddef.h>

/* Writes the lowercase hex digest (64 chars + NUL) of data[len] into hex. Reentrant. */
void ac_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
