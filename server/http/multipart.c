/* multipart.c - RFC 2046 multipart bodies, parsed in place (see multipart.h). */
#define _GNU_SOURCE /* memmem */
#include "multipart.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 2046 bchars: DIGIT / ALPHA / "'()+_,-./:=?" and space (not as the last character). */
static int bchar(int c)
{
    return isalnum(c) || (c && strchr("'()+_,-./:=? ", c));
}

static int fail(char *why, size_t n, const char *msg)
{
    snprintf(why, n, "%s", msg);
    return -1;
}

int mp_boundary(const char *ct, char *out, char *why, size_t why_len)
{
    const char *p = ct ? strchr(ct, ';') : NULL;
    while (p) {
        p++;
        while (*p == ' ' || *p == '\t') p++;
        if (!strncasecmp(p, "boundary=", 9)) {
            p += 9;
            size_t n = 0;
            if (*p == '"') {
                const char *q = strchr(p + 1, '"');
                if (!q) return fail(why, why_len, "unterminated quoted boundary");
                n = (size_t)(q - p - 1);
                p++;
            } else {
                n = strcspn(p, "; \t");
            }
            if (n < 1 || n > MP_BOUNDARY_MAX)
                return fail(why, why_len, "boundary must be 1 to 70 characters");
            for (size_t i = 0; i < n; i++)
                if (!bchar((unsigned char)p[i]))
                    return fail(why, why_len, "boundary has a character RFC 2046 does not allow");
            if (p[n - 1] == ' ') return fail(why, why_len, "boundary ends in a space");
            memcpy(out, p, n);
            out[n] = 0;
            return 0;
        }
        p = strchr(p, ';');
    }
    return fail(why, why_len, "multipart/form-data without a boundary parameter");
}

/* memmem for the delimiter "\r\n--boundary" from `from`. */
static const char *find(const char *b, size_t len, size_t from, const char *pat, size_t plen)
{
    if (from > len || len - from < plen) return NULL;
    const char *r = memmem(b + from, len - from, pat, plen);
    return r;
}

/* A header parameter: name="value" or name=token, from a Content-Disposition value. */
static void param(const char *h, size_t hlen, const char *key, char *out, size_t cap)
{
    out[0] = 0;
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 1 < hlen; i++) {
        if (!(i == 0 || h[i - 1] == ';' || h[i - 1] == ' ' || h[i - 1] == '\t')) continue;
        if (strncasecmp(h + i, key, kl) || h[i + kl] != '=') continue;
        const char *v = h + i + kl + 1, *end = h + hlen;
        size_t n = 0;
        if (v < end && *v == '"') {
            v++;
            while (v + n < end && v[n] != '"') n++;
        } else {
            while (v + n < end && v[n] != ';' && v[n] != ' ' && v[n] != '\t') n++;
        }
        if (n >= cap) n = cap - 1;
        memcpy(out, v, n);
        out[n] = 0;
        return;
    }
}

/* After a delimiter: "--" (close) or transport padding then CRLF. Returns the offset past
 * the line, sets *close; -1 when neither. */
static long after_delim(const char *b, size_t len, size_t off, int *close)
{
    *close = 0;
    if (off + 2 <= len && b[off] == '-' && b[off + 1] == '-') {
        *close = 1;
        return (long)len; /* the rest is the epilogue */
    }
    while (off < len && (b[off] == ' ' || b[off] == '\t')) off++;
    if (off + 2 <= len && b[off] == '\r' && b[off + 1] == '\n') return (long)(off + 2);
    return -1;
}

int mp_parse(const char *b, size_t len, const char *boundary,
             int (*on_part)(void *user, const mp_part *p), void *user, char *why, size_t why_len)
{
    char delim[MP_BOUNDARY_MAX + 5];
    size_t bl = strlen(boundary);
    if (bl < 1 || bl > MP_BOUNDARY_MAX) return fail(why, why_len, "bad boundary");
    /* "\r\n--" + boundary; the first delimiter may also start the body (no preamble). */
    snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    size_t dl = bl + 4, pos;
    if (len >= dl - 2 && !memcmp(b, delim + 2, dl - 2)) {
        pos = dl - 2;
    } else {
        const char *d = find(b, len, 0, delim, dl);
        if (!d) return fail(why, why_len, "no boundary delimiter in the body");
        pos = (size_t)(d - b) + dl;
    }
    for (;;) {
        int close;
        long next = after_delim(b, len, pos, &close);
        if (next < 0) return fail(why, why_len, "a boundary delimiter is not followed by CRLF or --");
        if (close) return 0;
        /* headers: lines up to an empty one */
        mp_part part;
        memset(&part, 0, sizeof part);
        size_t p = (size_t)next;
        int has_disposition = 0;
        for (;;) {
            const char *eol = find(b, len, p, "\r\n", 2);
            if (!eol) return fail(why, why_len, "part headers do not end");
            size_t ll = (size_t)(eol - b) - p;
            if (ll == 0) {
                p += 2;
                break;
            }
            const char *line = b + p;
            if (ll > 20 && !strncasecmp(line, "Content-Disposition:", 20)) {
                has_disposition = 1;
                param(line + 20, ll - 20, "name", part.name, sizeof part.name);
                param(line + 20, ll - 20, "filename", part.filename, sizeof part.filename);
            } else if (ll > 13 && !strncasecmp(line, "Content-Type:", 13)) {
                size_t o = 13;
                while (o < ll && (line[o] == ' ' || line[o] == '\t')) o++;
                size_t n = ll - o < sizeof part.content_type - 1 ? ll - o : sizeof part.content_type - 1;
                memcpy(part.content_type, line + o, n);
                part.content_type[n] = 0;
            }
            p += ll + 2;
        }
        const char *d = find(b, len, p, delim, dl);
        if (!d) return fail(why, why_len, "a part is not closed by a boundary delimiter (body cut short?)");
        part.data = b + p;
        part.len = (size_t)(d - b) - p;
        if (!has_disposition)
            return fail(why, why_len, "a part has no Content-Disposition header");
        int rc = on_part(user, &part);
        if (rc) return rc;
        pos = (size_t)(d - b) + dl;
    }
}
