/* request_checks.c - framing, NUL and parameter-count checks at request entry. */
#include "request_checks.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int rc_has_encoded_nul(const char *t)
{
    for (const char *p = t; (p = strchr(p, '%')); p++)
        if (p[1] == '0' && p[2] == '0') return 1;
    return 0;
}

/* RFC 9110 tchar */
static int tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

typedef struct scan {
    int bad_name, nul, n_cl, bad_cl, n_te, te_not_chunked, n_args;
    char name[40];
} scan;

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size)
{
    scan *s = cls;
    if (!key) return MHD_YES;
    if (strlen(key) != key_size || (value && strlen(value) != value_size)) s->nul = 1;
    if (kind == MHD_GET_ARGUMENT_KIND) {
        s->n_args++;
        return MHD_YES;
    }
    for (size_t i = 0; i < key_size; i++)
        if (!tchar((unsigned char)key[i])) {
            if (!s->bad_name) {
                size_t j = 0;
                for (; j < key_size && j + 1 < sizeof s->name; j++)
                    s->name[j] = key[j] >= 0x20 && key[j] < 0x7f ? key[j] : '?';
                s->name[j] = 0;
            }
            s->bad_name = 1;
            break;
        }
    if (!strcasecmp(key, "Content-Length")) {
        s->n_cl++;
        if (!value || !value[0] || strspn(value, "0123456789") != strlen(value)) s->bad_cl = 1;
    } else if (!strcasecmp(key, "Transfer-Encoding")) {
        s->n_te++;
        /* MHD trims blanks around values; exactly "chunked", any case */
        if (!value || strcasecmp(value, "chunked")) s->te_not_chunked = 1;
    }
    return MHD_YES;
}

static int verdict(rc_verdict *v, int status, const char *code, const char *msg)
{
    v->status = status;
    v->code = code;
    snprintf(v->message, sizeof v->message, "%s", msg);
    return 1;
}

int rc_check(struct MHD_Connection *c, int nul_in_target, int raw_params, rc_verdict *v)
{
    scan s = {0};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, on_header, &s);
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, on_header, &s);
    if (nul_in_target || s.nul)
        return verdict(v, 400, "bad_request", "a NUL byte in the request target or a header value");
    if (s.bad_name) {
        verdict(v, 400, "bad_request", "");
        snprintf(v->message, sizeof v->message,
                 "malformed header name \"%s\" (no blanks or separators before the colon)", s.name);
        return 1;
    }
    if (s.n_cl > 1) return verdict(v, 400, "bad_request", "more than one Content-Length header");
    if (s.bad_cl) return verdict(v, 400, "bad_request", "Content-Length is not a decimal number");
    if (s.n_te && s.n_cl)
        return verdict(v, 400, "bad_request", "both Content-Length and Transfer-Encoding");
    if (s.n_te > 1 || s.te_not_chunked)
        return verdict(v, 400, "bad_request", "Transfer-Encoding other than \"chunked\"");
    if (raw_params > s.n_args) s.n_args = raw_params;
    if (s.n_args > RC_MAX_PARAMS) {
        verdict(v, 414, "uri_too_long", "");
        snprintf(v->message, sizeof v->message, "%d query parameters: at most %d", s.n_args,
                 RC_MAX_PARAMS);
        return 1;
    }
    return 0;
}
