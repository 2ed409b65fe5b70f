/* filters_cache.h - filter analyses computed once per (model file, name, layer, mode, frequencies) and
 * kept rendered (JSON and SVG), so GET /filters answers from memory after the first time.
 *
 * Thread-safety: every function may be called from any HTTP thread. A key is computed by
 * the first thread that asks for it; others asking meanwhile wait for that result instead
 * of computing it again. The analysis runs on the calling thread with one OpenMP thread,
 * so it starts no parallel region outside the dispatcher (DESIGN.md) and never competes
 * with inference for more than one core.
 * Ownership: texts handed out are copies the caller frees. Failed analyses are not cached.
 */
#ifndef AC_FILTERS_CACHE_H
#define AC_FILTERS_CACHE_H

#include <stddef.h>

#include "engine.h"

typedef struct filters_cache filters_cache;

filters_cache *filters_cache_new(void);
void filters_cache_free(filters_cache *c); /* NULL is a no-op */

/* JSON (svg = 0) or SVG text for the analysis of `m` (served as model_name); layer NULL or
 * "" = the first conv. On failure: the engine's status (NOT_FOUND for an unknown layer,
 * INVALID_ARG for a bad mode/frequency count/kernel-mode layer) with the message in err. */
ac_status filters_cache_get(filters_cache *c, const char *model_name, const ac_model *m, const char *layer,
                            ac_filters_mode mode, int n_freqs, int svg, char **text, size_t *len, char *err);

#endif
