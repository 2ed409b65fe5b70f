/* cli_filters.c - `audioclass filters`: frequency responses of a model's learned filters. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "filters_render.h"
#include "model_path.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: audioclass filters --model MODEL [options]\n\n"
            "  --model MODEL     model name (m5-speech) or model file              (required)\n"
            "  --layer NAME      conv layer, as named in the file          (default: the first)\n"
            "  --mode M          kernel (DFT of the kernels; first layer only) or probe (sine\n"
            "                    tones through the network up to the layer)   (default: kernel)\n"
            "  --freqs N         analysed frequencies, %d..%d (HTTP: freqs=N)    (default %d)\n"
            "  --format F        json or svg                                   (default: json)\n"
            "  -o FILE           write to FILE instead of standard output\n",
            AC_FILTERS_MIN_FREQS, AC_FILTERS_MAX_FREQS, AC_FILTERS_DEFAULT_FREQS);
}

int cli_filters(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"layer", required_argument, 0, 'l'},
        {"mode", required_argument, 0, 'M'},  {"freqs", required_argument, 0, 'n'},
        {"format", required_argument, 0, 'f'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *model_path = NULL, *layer = NULL, *format = "json", *out_path = NULL;
    int mode = AC_FILTERS_KERNEL, n = AC_FILTERS_DEFAULT_FREQS, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:l:M:n:f:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'l': layer = optarg; break;
        case 'M':
            if ((mode = ac_filters_mode_parse(optarg)) < 0) {
                fprintf(stderr, "audioclass filters: --mode must be kernel or probe, not \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'n': n = atoi(optarg); break;
        case 'f': format = optarg; break;
        case 'o': out_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model_path || (strcmp(format, "json") && strcmp(format, "svg")) || optind != argc) {
        fprintf(stderr, "audioclass filters: %s\n", !model_path ? "--model is required"
                                                    : optind != argc ? "unexpected argument"
                                                                     : "--format must be json or svg");
        usage(stderr);
        return 2;
    }
    char resolved[MODEL_PATH_MAX], why[AC_ERR_LEN + 512];
    if (model_path_resolve(model_path, resolved, sizeof resolved, why, sizeof why)) {
        fprintf(stderr, "audioclass filters: %s\n", why);
        return 1;
    }
    model_path = resolved;
    char err[AC_ERR_LEN];
    ac_model *m;
    if (ac_model_load(model_path, &m, err)) {
        fprintf(stderr, "audioclass: %s: %s\n", model_path, err);
        return 1;
    }
    ac_filterbank *fb;
    ac_status st = ac_filters_compute(m, layer, (ac_filters_mode)mode, n, 0, &fb, err);
    if (st) {
        fprintf(stderr, "audioclass filters: %s\n", err);
        ac_model_free(m);
        return 1;
    }
    const char *name = ac_model_get_info(m)->name;
    char *text = NULL;
    if (!strcmp(format, "svg")) {
        text = ac_filters_svg(name, fb, NULL);
    } else {
        json_t *j = ac_filters_json(name, fb);
        text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
        json_decref(j);
    }
    int rc = 0;
    FILE *f = out_path ? fopen(out_path, "w") : stdout;
    if (!text || !f || fputs(text, f) < 0 || (!strcmp(format, "json") && fputc('\n', f) < 0)) {
        fprintf(stderr, "audioclass filters: cannot write %s\n", out_path ? out_path : "output");
        rc = 1;
    }
    if (f && f != stdout && fclose(f) != 0) rc = 1;
    free(text);
    ac_filterbank_free(fb);
    ac_model_free(m);
    return rc;
}
