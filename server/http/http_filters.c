/* http_filters.c - GET /filters?model=&layer=&mode=kernel|probe&freqs=&format=json|svg: what the
 * first layers learned (engine/filters.h), from the shared cache (filters_cache.h). */
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

/* `freqs` is the name `audioclass filters --freqs` uses; `n` is its older spelling. */
static const char *const k_params[] = {"model", "layer", "mode", "freqs", "n", "format", NULL};

enum MHD_Result route_filters(request *rq)
{
    int ok;
    enum MHD_Result checked = http_check_params(rq, k_params, &ok);
    if (!ok) return checked;
    int model;
    enum MHD_Result picked = http_pick_model(rq, &model);
    if (model < 0) return picked;
    const char *mode_s = http_arg(rq, "mode"), *format = http_arg(rq, "format"), *n_s = http_arg(rq, "freqs");
    if (!n_s) n_s = http_arg(rq, "n");
    const char *layer = http_arg(rq, "layer");
    int mode = mode_s ? ac_filters_mode_parse(mode_s) : AC_FILTERS_KERNEL;
    if (mode < 0) return http_bad_param(rq, "mode must be kernel or probe, not \"%s\"", mode_s);
    if (format && strcmp(format, "json") && strcmp(format, "svg"))
        return http_bad_param(rq, "format must be json or svg, not \"%s\"", format);
    long n = AC_FILTERS_DEFAULT_FREQS;
    if (n_s && (n = http_parse_int(n_s, AC_FILTERS_MIN_FREQS, AC_FILTERS_MAX_FREQS)) < 0)
        return http_bad_param(rq, "freqs (frequencies analysed) must be a whole number from 8 to 4096, not \"%s\"", n_s);
    int svg = format && !strcmp(format, "svg");
    const registry_entry *e = &rq->reg->models[model];
    char *text, err[AC_ERR_LEN];
    size_t len;
    ac_status st = filters_cache_get(rq->srv->filters, e->name, e->model, layer, (ac_filters_mode)mode, (int)n,
                                     svg, &text, &len, err);
    if (st != AC_OK) {
        char clean[AC_ERR_LEN];
        http_sanitize(clean, sizeof clean, err);
        return reply_status(rq, st, clean);
    }
    enum MHD_Result r = reply_bytes(rq, 200, svg ? "image/svg+xml" : "application/json", text, len);
    free(text);
    return r;
}
