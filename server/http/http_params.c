/* http_params.c - request parameters shared by the routes: the query string and, for a
 * multipart upload, its form fields; unknown names refused; strict integers; the ?model=
 * choice (optional when one model is loaded); and the 400 that names a bad value. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

static const char *form_value(const request *rq, const char *key)
{
    for (int i = 0; i < rq->n_form; i++)
        if (!strcmp(rq->form[i].key, key)) return rq->form[i].val;
    return NULL;
}

const char *http_arg(request *rq, const char *key)
{
    const char *v = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
    return v ? v : form_value(rq, key);
}

int http_form_field(request *rq, const char *key, const char *data, uint64_t off, size_t size)
{
    form_field *f = NULL;
    for (int i = 0; i < rq->n_form; i++)
        if (!strcmp(rq->form[i].key, key)) f = &rq->form[i];
    if (!f || off == 0) {
        if (f && off == 0) {
            rq->form_error = "is given twice";
            snprintf(rq->form_error_key, sizeof rq->form_error_key, "%s", key);
            return -1;
        }
        if (rq->n_form == HTTP_MAX_FORM) {
            rq->form_error = "is one form field too many";
            snprintf(rq->form_error_key, sizeof rq->form_error_key, "%s", key);
            return -1;
        }
        f = &rq->form[rq->n_form++];
        memset(f, 0, sizeof *f);
        snprintf(f->key, sizeof f->key, "%s", key);
    }
    if (size >= sizeof f->val - f->len) {
        rq->form_error = "is too long";
        snprintf(rq->form_error_key, sizeof rq->form_error_key, "%s", key);
        return -1;
    }
    memcpy(f->val + f->len, data, size);
    f->len += size;
    f->val[f->len] = 0;
    return 0;
}

/* Collects the names that are not in `allowed`, comma-separated, for the message. */
typedef struct unknown_names {
    const char *const *allowed;
    char list[160];
    int n;
} unknown_names;

static int allowed(const char *const *names, const char *key)
{
    for (int i = 0; names && names[i]; i++)
        if (!strcmp(names[i], key)) return 1;
    return 0;
}

static void note_unknown(unknown_names *u, const char *key)
{
    char k[40];
    http_sanitize(k, sizeof k, key ? key : "");
    size_t used = strlen(u->list);
    if (used < sizeof u->list - 1)
        snprintf(u->list + used, sizeof u->list - used, "%s\"%s\"", u->n ? ", " : "", k);
    u->n++;
}

static enum MHD_Result on_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind, (void)value;
    unknown_names *u = cls;
    if (!allowed(u->allowed, key)) note_unknown(u, key);
    return MHD_YES;
}

enum MHD_Result http_check_params(request *rq, const char *const *names, int *ok)
{
    unknown_names u = {.allowed = names};
    *ok = 0;
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, on_query_arg, &u);
    for (int i = 0; i < rq->n_form; i++)
        if (!allowed(names, rq->form[i].key)) note_unknown(&u, rq->form[i].key);
    char accepted[160] = "no parameters";
    for (int i = 0, used = 0; names && names[i] && used < (int)sizeof accepted; i++)
        used += snprintf(accepted + used, sizeof accepted - (size_t)used, "%s%s", i ? ", " : "", names[i]);
    if (u.n)
        return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "unknown parameter%s %s (%s takes %s)",
                           u.n > 1 ? "s" : "", u.list, rq->path, accepted);
    for (int i = 0; i < rq->n_form; i++)
        if (MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, rq->form[i].key)) {
            char k[40];
            http_sanitize(k, sizeof k, rq->form[i].key);
            return reply_error(rq, hs_from_error(HS_BAD_REQUEST),
                               "parameter \"%s\" is given both in the query and as a form field", k);
        }
    if (rq->form_error) {
        char k[40];
        http_sanitize(k, sizeof k, rq->form_error_key);
        return reply_error(rq, hs_from_error(HS_BAD_REQUEST), "form field \"%s\" %s", k, rq->form_error);
    }
    *ok = 1;
    return MHD_YES;
}

long http_parse_int(const char *s, long lo, long hi)
{
    /* Digits with an optional '-' only: strtol alone would also take " 7" and "+7". */
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return (*end || errno || v < lo || v > hi) ? -1 : v;
}

int http_parse_bool(const char *s)
{
    if (!strcmp(s, "1") || !strcasecmp(s, "true")) return 1;
    if (!strcmp(s, "0") || !strcasecmp(s, "false")) return 0;
    return -1;
}

enum MHD_Result http_bad_param(request *rq, const char *fmt, const char *value)
{
    char v[80];
    http_sanitize(v, sizeof v, value);
    return reply_error(rq, hs_from_error(HS_BAD_REQUEST), fmt, v);
}

enum MHD_Result http_pick_model(request *rq, int *index)
{
    const registry *reg = rq->reg;
    const char *name = http_arg(rq, "model");
    char names[512];
    *index = -1;
    if (!name || !*name) {
        if (reg->n == 1) {
            *index = rq->model = 0;
            return MHD_YES;
        }
        registry_names(reg, names, sizeof names);
        return reply_error(rq, hs_from_error(HS_BAD_REQUEST),
                           "several models are loaded: name one with the parameter model= (models: %s)",
                           names);
    }
    if ((*index = rq->model = registry_find(reg, name)) >= 0) return MHD_YES;
    char n[80];
    http_sanitize(n, sizeof n, name);
    registry_names(reg, names, sizeof names);
    return reply_error(rq, hs_from_error(HS_UNKNOWN_MODEL), "no model named \"%s\" (models: %s)", n, names);
}
