/* cli_info.c - `audioclass info FILE`: everything a model file says about itself. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "blas.h"
#include "engine.h"
#include "model_path.h"

int cli_info(int argc, char **argv)
{
    if (argc != 2 || !strcmp(argv[1], "--help")) {
        fprintf(argc == 2 ? stdout : stderr, "usage: audioclass info MODEL   (a model name such as m5-speech, or a model file)\n");
        return argc == 2 ? 0 : 2;
    }
    char resolved[MODEL_PATH_MAX], why[AC_ERR_LEN + 512];
    if (model_path_resolve(argv[1], resolved, sizeof resolved, why, sizeof why)) {
        fprintf(stderr, "audioclass info: %s\n", why);
        return 1;
    }
    const char *path = resolved;
    char err[AC_ERR_LEN];
    ac_model *m;
    if (ac_model_load(path, &m, err) != AC_OK) {
        fprintf(stderr, "audioclass: %s: %s\n", path, err);
        return 1;
    }
    const ac_model_info *in = ac_model_get_info(m);
    printf("file            %s\n", path);
    printf("sha256          %s\n", in->sha256);
    printf("size            %zu bytes\n", in->file_bytes);
    printf("name            %s\n", in->name);
    printf("arch            %s\n", in->arch);
    printf("format version  %d\n", in->format_version);
    printf("sample rate     %d Hz\n", in->sample_rate);
    printf("input           %d samples (%.4f s)\n", in->window, (double)in->window / in->sample_rate);
    printf("policy          window %d, hop %d, pad %d (a 5 s clip gives %zu windows)\n", in->window,
           in->hop, in->pad, ac_model_windows(m, (size_t)in->sample_rate * 5, NULL, 0));
    printf("parameters      %lld\n", (long long)in->n_params);
    printf("FLOPs/window    %lld (%.3f GFLOP)\n", (long long)in->flops, (double)in->flops / 1e9);
    printf("BLAS            %s\n", ac_blas_description());
    printf("compute         %s (here: %s)\n", in->compute, ac_model_compute_active(in));
    if (in->causal)
        printf("streaming       causal: %s\n", in->running_mean ? "runs incrementally, but its answer is a "
               "mean over all time, so streams use sliding windows" : "runs incrementally over streams");
    else
        printf("streaming       sliding windows (not causal: %s)\n", in->causal_why);
    printf("labels (%d)     ", in->n_labels);
    for (int i = 0; i < in->n_labels; i++) printf("%s%s", i ? ", " : "", in->labels[i]);
    printf("\n\nlayers (batch norm folded into conv, relu fused):\n");
    for (int i = 0; i < ac_model_layer_count(m); i++) {
        char line[256];
        ac_model_layer_describe(m, i, line, sizeof line);
        printf("  %2d  %s\n", i, line);
    }
    const char *keys[64], *vals[64];
    int nm = ac_model_meta_all(m, keys, vals, 64);
    printf("\nmetadata:\n");
    for (int i = 0; i < nm && i < 64; i++) {
        if (!strcmp(keys[i], "graph") || !strcmp(keys[i], "labels")) continue;
        printf("  %-14s %s\n", keys[i], vals[i]);
    }
    ac_model_free(m);
    return 0;
}
