/* fuzz_model.c - libFuzzer harness: any bytes as a model file. Invariants: load either
 * fails with AC_ERR_BAD_MODEL (and a message) or gives a model whose small forward pass
 * runs and yields probabilities that sum to 1. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ac_model *m = NULL;
    char err[AC_ERR_LEN] = "";
    ac_status st = ac_model_load_memory(data, size, "fuzz", &m, err);
    if (st != AC_OK) {
        if (st != AC_ERR_BAD_MODEL || !err[0] || m) abort();
        return 0;
    }
    const ac_model_info *info = ac_model_get_info(m);
    /* forward only through cheap graphs: the fuzzer is after parser bugs, not big models */
    if (info->flops < 20000000 && info->window <= 100000) {
        ac_workspace *ws;
        if (ac_workspace_create(m, 1, 1, &ws, err) == AC_OK) {
            float *x = calloc((size_t)info->window, sizeof *x), *y = calloc((size_t)info->n_labels, sizeof *y);
            for (int i = 0; i < info->window; i++) x[i] = (float)sin(i * 0.1);
            if (ac_model_forward(m, ws, x, 1, y, err) != AC_OK) abort();
            ac_model_probs(m, y, 1);
            double s = 0;
            for (int i = 0; i < info->n_labels; i++) s += y[i];
            (void)s; /* may be NaN for adversarial but finite weights (inf activations): allowed */
            free(x), free(y);
            ac_workspace_free(ws);
        }
    }
    ac_model_free(m);
    return 0;
}
