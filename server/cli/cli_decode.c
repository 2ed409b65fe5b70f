/* cli_decode.c - `audioclass decode`: the server's audio front end as a batch tool, so
 * training data reaches the network exactly as requests do (no train/serve skew). */
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"

#define GROUP 128

static void usage(FILE *f)
{
    fprintf(f,
            "usage: audioclass decode --rate R --out PREFIX [--list FILE] [AUDIO_FILES...]\n\n"
            "Decodes, downmixes and resamples each file exactly as POST /classify does, and\n"
            "writes PREFIX.f32 (all clips' float32 little-endian samples, concatenated) and\n"
            "PREFIX.json (one object per input, in order: {\"path\", \"offset\", \"frames\"} in\n"
            "samples, or {\"path\", \"error\"}).\n\n"
            "  --rate R          output sample rate in Hz                     (required)\n"
            "  --out PREFIX      output path prefix                           (required)\n"
            "  --list FILE       read input paths from FILE, one a line (- = stdin)\n"
            "  --max-seconds S   refuse longer audio                          (default 3600)\n"
            "  --threads T       decoding threads                     (default: all cores)\n");
}

int cli_decode(int argc, char **argv)
{
    static const struct option opts[] = {
        {"rate", required_argument, 0, 'r'}, {"out", required_argument, 0, 'o'},
        {"list", required_argument, 0, 'l'}, {"max-seconds", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int rate = 0, n = 0, cap = 0, threads = 0, c, failures = 0;
    const char *prefix = NULL;
    double max_seconds = 3600;
    char **paths = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:o:l:s:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': rate = atoi(optarg); break;
        case 'o': prefix = optarg; break;
        case 'l':
            if (cli_read_list(optarg, &paths, &n, &cap)) goto usage_fail;
            break;
        case 's': max_seconds = atof(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'h': usage(stdout); cli_free_paths(paths, n); return 0;
        default: goto usage_fail;
        }
    }
    for (int i = optind; i < argc; i++)
        if (cli_push_path(&paths, &n, &cap, argv[i])) goto usage_fail;
    if (rate < AC_AUDIO_MIN_RATE || rate > AC_AUDIO_MAX_RATE || !prefix || n == 0) {
        fprintf(stderr, "audioclass decode: %s\n",
                !prefix ? "--out is required" : n == 0 ? "no input files" : "--rate out of range");
        goto usage_fail;
    }

    char path_f32[4096], path_json[4096];
    snprintf(path_f32, sizeof path_f32, "%s.f32", prefix);
    snprintf(path_json, sizeof path_json, "%s.json", prefix);
    FILE *fo = fopen(path_f32, "wb");
    if (!fo) {
        fprintf(stderr, "audioclass decode: cannot write %s\n", path_f32);
        cli_free_paths(paths, n);
        return 1;
    }
    json_t *index = json_array();
    ac_audio audio[GROUP];
    ac_status st[GROUP];
    static char errs[GROUP][AC_ERR_LEN];
    size_t offset = 0;
    for (int g0 = 0; g0 < n; g0 += GROUP) {
        int gn = n - g0 < GROUP ? n - g0 : GROUP;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads > 0 ? threads : omp_get_max_threads())
        for (int i = 0; i < gn; i++)
            st[i] = ac_audio_decode_file(paths[g0 + i], rate, max_seconds, &audio[i], errs[i]);
        for (int i = 0; i < gn; i++) {
            json_t *e;
            if (st[i] == AC_OK) {
                if (fwrite(audio[i].samples, sizeof(float), audio[i].n, fo) != audio[i].n) {
                    fprintf(stderr, "audioclass decode: write to %s failed\n", path_f32);
                    failures = n;
                }
                e = json_pack("{s:s,s:I,s:I}", "path", paths[g0 + i], "offset", (json_int_t)offset,
                              "frames", (json_int_t)audio[i].n);
                offset += audio[i].n;
            } else {
                e = json_pack("{s:s,s:s}", "path", paths[g0 + i], "error", errs[i]);
                fprintf(stderr, "audioclass decode: %s: %s\n", paths[g0 + i], errs[i]);
                failures++;
            }
            json_array_append_new(index, e);
            ac_audio_free(&audio[i]);
        }
    }
    if (fclose(fo) != 0) failures = n;
    if (json_dump_file(index, path_json, JSON_INDENT(1)) != 0) {
        fprintf(stderr, "audioclass decode: cannot write %s\n", path_json);
        failures = n;
    }
    json_decref(index);
    fprintf(stderr, "audioclass decode: %d files, %zu samples at %d Hz, %d failed\n", n, offset,
            rate, failures);
    cli_free_paths(paths, n);
    return failures ? 1 : 0;
usage_fail:
    usage(stderr);
    cli_free_paths(paths, n);
    return 2;
}
