/* weights.h - safetensors reader: maps a model file and validates its header.
 *
 * Ownership: an ac_weights owns the mapping (or copy) of the file; every ac_tensor_ref
 * and metadata string points into it and lives exactly as long as it. Read-only after
 * open, so one ac_weights may be shared by any number of threads.
 */
#ifndef AC_WEIGHTS_H
#define AC_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define AC_MAX_DIMS 8

typedef enum ac_dtype { AC_F32, AC_F16, AC_I8 } ac_dtype;

typedef struct ac_tensor_ref {
    char *name;
    ac_dtype dtype;
    int ndim;
    int64_t shape[AC_MAX_DIMS];
    int64_t numel;
    const void *data;   /* into the mapping; aligned to the dtype only if the file is */
    size_t nbytes;
    int used;           /* set by the model loader; unused tensors make the file invalid */
} ac_tensor_ref;

typedef struct ac_weights ac_weights;

/* Maps `path` and validates the header: length within the file, JSON well formed, every
 * entry with a known dtype, a shape whose size matches its byte range, ranges inside the
 * data and neither overlapping nor leaving holes. Errors name the offending tensor. */
ac_status ac_weights_open(const char *path, ac_weights **out, char *err);
/* Same from a caller's buffer, which is copied (used by tests and the fuzzer). */
ac_status ac_weights_open_memory(const void *buf, size_t len, ac_weights **out, char *err);
void ac_weights_close(ac_weights *w); /* NULL is a no-op */

int ac_weights_count(const ac_weights *w);
ac_tensor_ref *ac_weights_at(ac_weights *w, int i);
ac_tensor_ref *ac_weights_find(ac_weights *w, const char *name); /* NULL if absent */
/* Value of a __metadata__ key, or NULL. */
const char *ac_weights_meta(const ac_weights *w, const char *key);
/* Every metadata key, for `info`: returns count, fills keys/values up to max. */
int ac_weights_meta_all(const ac_weights *w, const char **keys, const char **values, int max);
const char *ac_weights_sha256(const ac_weights *w); /* of the whole file, hex */
size_t ac_weights_file_size(const ac_weights *w);
const char *ac_dtype_name(ac_dtype t);
size_t ac_dtype_size(ac_dtype t);

/* IEEE half -> float, for F16 tensors. */
float ac_f16_to_f32(uint16_t h);

#endif
