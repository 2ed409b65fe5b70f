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

/* JSON text of o (compact, reals to 6 digits), NUL-terminated, length in *len; malloc'd, or
 * NULL when out of memory. Use it instead of json_dumps for anything sent: jansson 2.14's
 * json_dumps ignores a failed write of an object key when memory runs out and returns
 * damaged text (found by tests/integration/test_faults.sh: a 200 whose "predictions" key
 * was missing). This measures the text first and then writes it into one buffer, so nothing
 * is allocated inside jansson's dump. */
char *ac_json_text(const json_t *o, size_t *len);

/* {"error": {"code": ac_status_name(st), "message": msg}} (new reference). */
json_t *ac_error_json(ac_status st, const char *msg);

#endif
