/* auth.h - API keys for `--api-key-file`: loaded once, compared in constant time.
 * Thread-safety: immutable after auth_load; auth_check may run on any thread. */
#ifndef AC_AUTH_H
#define AC_AUTH_H

#include "status.h"

typedef struct auth auth;

/* Reads keys from `path`, one per line (blank lines and lines starting with '#' skipped;
 * surrounding whitespace trimmed). Fails if the file has no key. */
ac_status auth_load(const char *path, auth **out, char *err);
/* 1 if `authorization` is "Bearer KEY" or `x_api_key` is "KEY" for a loaded key (either may
 * be NULL). The time taken does not depend on how much of a key matched. */
int auth_check(const auth *a, const char *authorization, const char *x_api_key);
void auth_free(auth *a); /* NULL is a no-op */

#endif
