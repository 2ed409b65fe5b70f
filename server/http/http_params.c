/* http_params.c - query parameters shared by the routes: lookup, strict integers, the
 * ?model= choice (optional when one model is loaded), and the 400 that names a bad value. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "http_internal.h"

const char *http_arg(request *rq, const char *key)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
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
                           "several models are loaded: name one with ?model= (models: %s)", names);
    }
    if ((*index = rq->model = registry_find(reg, name)) >= 0) return MHD_YES;
    char n[80];
    http_sanitize(n, sizeof n, name);
    registry_names(reg, names, sizeof names);
    return reply_error(rq, hs_from_error(HS_UNKNOWN_MODEL), "no model named \"%s\" (models: %s)", n, names);
}
