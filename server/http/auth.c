/* auth.c - API key file loading and constant-time key comparison. */
#include "auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_MAX 256

struct auth {
    int n;
    char (*keys)[KEY_MAX + 1];
    size_t *lens;
};

ac_status auth_load(const char *path, auth **out, char *err)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return ac_fail(err, AC_ERR_IO, "cannot open API key file %s", path);
    auth *a = calloc(1, sizeof *a);
    char line[4096];
    ac_status st = a ? AC_OK : AC_ERR_NOMEM;
    while (st == AC_OK && fgets(line, sizeof line, f)) {
        char *s = line, *e = line + strlen(line);
        while (*s && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        *e = 0;
        if (!*s || *s == '#') continue;
        if ((size_t)(e - s) > KEY_MAX) {
            st = ac_fail(err, AC_ERR_INVALID_ARG, "%s: a key is longer than %d characters", path, KEY_MAX);
            break;
        }
        void *nk = realloc(a->keys, (size_t)(a->n + 1) * sizeof *a->keys);
        if (nk) a->keys = nk;
        void *nl = realloc(a->lens, (size_t)(a->n + 1) * sizeof *a->lens);
        if (nl) a->lens = nl;
        if (!nk || !nl) {
            st = ac_fail(err, AC_ERR_NOMEM, "out of memory");
            break;
        }
        memset(a->keys[a->n], 0, sizeof a->keys[a->n]);
        memcpy(a->keys[a->n], s, (size_t)(e - s));
        a->lens[a->n++] = (size_t)(e - s);
    }
    fclose(f);
    if (st == AC_OK && a->n == 0) st = ac_fail(err, AC_ERR_INVALID_ARG, "%s holds no API key", path);
    if (st) {
        auth_free(a);
        return st;
    }
    *out = a;
    return AC_OK;
}

/* Compares all KEY_MAX bytes whatever the input, so timing reveals neither the matching
 * prefix nor the key's length. */
static int key_equal(const char key[KEY_MAX + 1], size_t key_len, const char *given)
{
    size_t glen = strnlen(given, KEY_MAX + 1);
    volatile unsigned char diff = (unsigned char)(glen != key_len);
    for (size_t i = 0; i < KEY_MAX; i++) {
        unsigned char g = i < glen ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)key[i]);
    }
    return diff == 0;
}

static int match_any(const auth *a, const char *given)
{
    int ok = 0;
    for (int i = 0; i < a->n; i++) ok |= key_equal(a->keys[i], a->lens[i], given);
    return ok;
}

int auth_check(const auth *a, const char *authorization, const char *x_api_key)
{
    int ok = 0;
    if (authorization && !strncasecmp(authorization, "Bearer ", 7)) {
        const char *k = authorization + 7;
        while (*k == ' ') k++;
        ok |= match_any(a, k);
    }
    if (x_api_key) ok |= match_any(a, x_api_key);
    return ok;
}

void auth_free(auth *a)
{
    if (!a) return;
    free(a->keys);
    free(a->lens);
    free(a);
}
