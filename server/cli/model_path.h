/* model_path.h - finding model files from any working directory, for every subcommand.
 *
 * The models directory is the first that exists of: ./models (a source checkout),
 * EXE_DIR/../models (build/audioclass in a checkout), EXE_DIR/../share/audioclass/models
 * (an install moved elsewhere) and the directory `make install` put them in (compiled in).
 * A MODEL argument is a file path, or a name looked up as DIR/NAME.safetensors there.
 * Thread-safety: no state; callable from any thread. Buffers belong to the caller. */
#ifndef AC_MODEL_PATH_H
#define AC_MODEL_PATH_H

#include <stddef.h>

#define MODEL_PATH_MAX 1024

/* The directories searched, in order, into cand[max]; returns how many. */
int model_dir_candidates(char cand[][MODEL_PATH_MAX], int max);
/* The first of them that exists into out; -1 when none does, with the directories tried,
 * comma-separated, in looked (may be NULL). */
int model_dir_find(char *out, size_t cap, char *looked, size_t lcap);
/* MODEL (path or name) -> a model file path in out. -1 with a message in err naming what
 * was tried and the models there are. */
int model_path_resolve(const char *arg, char *out, size_t cap, char *err, size_t errcap);

#endif
