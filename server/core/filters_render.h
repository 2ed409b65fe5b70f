/* filters_render.h - a filterbank analysis as JSON and as a self-contained SVG picture.
 * Used by `audioclass filters` and GET /filters. Pure functions of their inputs. */
#ifndef AC_FILTERS_RENDER_H
#define AC_FILTERS_RENDER_H

#include <jansson.h>
#include <stddef.h>

#include "engine.h"

/* {"model", "layer", "mode", "sample_rate", "freqs_hz": [...], "filters": [{"index",
 *  "centre_hz", "low_hz", "high_hz", "bandwidth_hz", "peak_db", "dead", "response_db": [...]}],
 *  "summary": {...}} — filters sorted by centre frequency. New reference or NULL. */
json_t *ac_filters_json(const char *model_name, const ac_filterbank *fb);

/* SVG document (NUL-terminated, caller frees): a heat map of each filter's response
 * (rows sorted by centre frequency, log frequency axis, colour scale in dB re. the
 * filter's peak) beside the centre frequencies against a mel-spaced curve. NULL if out
 * of memory. */
char *ac_filters_svg(const char *model_name, const ac_filterbank *fb, size_t *len);

#endif
