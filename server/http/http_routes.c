/* http_routes.c - the read-only routes: /healthz, /readyz, /models, /models/NAME,
 * /metrics, /openapi.json (and /filters, in http_filters.c). Each answers in one call. */
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "models_json.h"

/* server/openapi.json, embedded at build time (cmake/embed.cmake). */
extern const unsigned char ac_openapi_json[];
extern const unsigned long ac_openapi_json_len;

static enum MHD_Result models(request *rq)
{
    const registry *reg = rq->reg;
    json_t *arr = json_array();
    for (int i = 0; arr && i < reg->n; i++) json_array_append_new(arr, model_summary_json(&reg->models[i]));
    /* files that failed to load (skipped without --strict): listed with the reason */
    for (int i = 0; arr && i < reg->n_failed; i++) {
        char msg[AC_ERR_LEN];
        http_sanitize(msg, sizeof msg, reg->failed[i].error);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "name", reg->failed[i].name,
                                             "status", "failed", "error", msg));
    }
    return reply_json(rq, 200, json_pack("{s:o}", "models", arr));
}

static enum MHD_Result model(request *rq, const char *name)
{
    int i = registry_find(rq->reg, name);
    if (i < 0) {
        char names[512];
        registry_names(rq->reg, names, sizeof names);
        return reply_error(rq, hs_from_error(HS_UNKNOWN_MODEL), "no model named \"%s\" (models: %s)",
                           name, names);
    }
    rq->model = i;
    return reply_json(rq, 200, model_detail_json(&rq->reg->models[i]));
}

static enum MHD_Result readyz(request *rq)
{
    http_server *s = rq->srv;
    if (atomic_load(&s->draining) || !ac_scheduler_accepting(s->sched))
        return reply_error(rq, hs_from_status(AC_ERR_SHUTTING_DOWN), "server is draining");
    return reply_json(rq, 200, json_pack("{s:s,s:i,s:i}", "status", "ready", "models", rq->reg->n,
                                         "queue_depth", ac_scheduler_queue_depth(s->sched)));
}

static enum MHD_Result metrics(request *rq)
{
    http_server *s = rq->srv;
    metrics_server_gauges(http_server_decoding(s), http_server_memory_held(s),
                          (size_t)s->cfg->max_memory, http_server_connections(s), http_server_streams(s));
    char *text = metrics_render(ac_scheduler_queue_depth(s->sched), s->cfg->queue_size,
                                !atomic_load(&s->draining) && ac_scheduler_accepting(s->sched));
    if (!text) return reply_status(rq, AC_ERR_NOMEM, "out of memory rendering metrics");
    enum MHD_Result r = reply_bytes(rq, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
    return r;
}

/* The embedded document; with --api-key-file it gains the top-level `security` requirement
 * (the file leaves it out: authentication is off by default). */
static enum MHD_Result openapi(request *rq)
{
    if (!rq->srv->auth)
        return reply_bytes(rq, 200, "application/json", ac_openapi_json, ac_openapi_json_len);
    json_t *doc = json_loadb((const char *)ac_openapi_json, ac_openapi_json_len, 0, NULL);
    if (!doc || json_object_set_new(doc, "security", json_pack("[{s:[]},{s:[]}]", "bearer", "apiKey"))) {
        json_decref(doc);
        return reply_status(rq, AC_ERR_INTERNAL, "embedded openapi.json does not parse");
    }
    return reply_json(rq, 200, doc);
}

enum MHD_Result route_get(request *rq, const char *url)
{
    if (rq->route != MT_FILTERS && rq->route != MT_OTHER) { /* the others take no parameters */
        int ok;
        enum MHD_Result r = http_check_params(rq, NULL, &ok);
        if (!ok) return r;
    }
    switch (rq->route) {
    case MT_HEALTHZ: return reply_json(rq, 200, json_pack("{s:s}", "status", "ok"));
    case MT_READYZ: return readyz(rq);
    case MT_MODELS: return models(rq);
    case MT_MODEL: return model(rq, url + strlen("/models/"));
    case MT_METRICS: return metrics(rq);
    case MT_OPENAPI: return openapi(rq);
    case MT_FILTERS: return route_filters(rq);
    case MT_WEB: return route_web(rq, url);
    default: return reply_error(rq, hs_from_error(HS_NO_ROUTE), "no route %s", url);
    }
}
