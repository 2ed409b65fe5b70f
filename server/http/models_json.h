/* models_json.h - the JSON bodies of GET /models and GET /models/NAME. */
#ifndef AC_MODELS_JSON_H
#define AC_MODELS_JSON_H

#include <jansson.h>

#include "registry.h"

/* {"name", "arch", "sample_rate", "window_s", "n_labels", "parameters", "flops_per_window",
 *  "sha256", "card": {the model file's task, data, description, license, accuracy, training:
 *  those it has}}: enough to choose a model. New reference, NULL when out of memory. */
json_t *model_summary_json(const registry_entry *e);
/* The summary plus description, license, training, format_version, input_shape, policy,
 * labels, file size and the executable layers. */
json_t *model_detail_json(const registry_entry *e);

#endif
