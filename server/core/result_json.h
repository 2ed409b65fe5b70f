/* result_json.h - the JSON shape of a classification, shared by the CLI and the HTTP API. */
#ifndef AC_RESULT_JSON_H
#define AC_RESULT_JSON_H

#include <jansson.h>

#include "engine.h"

/* {"model", "label", "score", "predictions": [{"label","score"} x top_k], "duration_s",
 *  "sample_rate", "windows": n, ["segments": [{"start_s","end_s","label","score"}]]}.
 * `audio` describes the decoded clip; segments are added when `segments` is non-zero.
 * Returns a new reference, or NULL when out of memory. */
json_t *ac_result_json(const char *model_name, const ac_model *m, const ac_audio *audio,
                       const ac_prediction *p, int top_k, int segments);

/* {"error": {"code": ac_status_name(st), "message": msg}} (new reference). */
json_t *ac_error_json(ac_status st, const char *msg);

#endif
