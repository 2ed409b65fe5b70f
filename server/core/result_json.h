/* result_json.h - the JSON shape of a classification, shared by the CLI and the HTTP API. */
#ifndef AC_RESULT_JSON_H
#define AC_RESULT_JSON_H

#include <jansson.h>

#include "engine.h"

/* [{"label","score"}] of the k best of probs[n_labels], best first (k capped at the labels
 * and at 1024); NULL when out of memory (never a shorter list). */
json_t *ac_predictions_json(const ac_model *m, const float *probs, int k);

/* What a classification answer shows. */
typedef struct ac_result_opts {
    int top_k;
    int segments;            /* add per-window "segments" */
    int aggregate_max;       /* scores: each label's highest window probability, not the mean */
    int events;              /* add "events": the detection rule (engine/detect.h) over the
                                windows in order, as a live stream of the recording reports */
} ac_result_opts;

/* {"model", "label", "score", "predictions": [{"label","score"} x top_k], "duration_s",
 *  "sample_rate", "windows": n, "aggregate": "mean"|"max",
 *  ["segments": [{"start_s","end_s","label","score"}]],
 *  ["events": [{"label","t_start_s","t_end_s","score"}]]}.
 * `audio` describes the decoded clip. Returns a new reference, or NULL when out of memory. */
json_t *ac_result_json(const char *model_name, const ac_model *m, const ac_audio *audio,
                       const ac_prediction *p, const ac_result_opts *opt);

/* {"type": "event", "label", "t_start_s", "t_end_s", "score"} (new reference, or NULL). */
json_t *ac_event_json(const ac_model *m, const ac_event *ev);

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
