/* cli_classify.c - `audioclass classify`: score many files in one call, one JSON line each,
 * in input order. Files are decoded in parallel, then their windows share batches. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "model_path.h"
#include "engine.h"
#include "min_duration.h"
#include "result_json.h"

/* Files decoded and classified together: enough windows (3+ per file) for full batches,
 * few enough that progress is reported every few seconds. */
#define GROUP 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: audioclass classify --model MODEL [options] AUDIO_FILES...\n\n"
            "Prints one JSON object per input file, in input order, on its own line. A file\n"
            "that cannot be read gets {\"file\", \"error\": {\"code\", \"message\"}}; the exit\n"
            "status is then 1.\n\n"
            "  --model MODEL      a model name (m5-speech, as the server names it) or a model\n"
            "                     file (.safetensors)                           (required)\n"
            "  --top-k K          predictions listed per file                   (default 5)\n"
            "  --windows          add per-window \"segments\"\n"
            "  --aggregate max    score each label by its best window, not the mean\n"
            "  --events           add \"events\": words/sounds found and timed (the rule of\n"
            "                     /stream and /classify?events=1)\n"
            "  --list FILE        read more input paths from FILE, one a line (- = stdin)\n"
            "  --threads T        OpenMP threads                        (default: all cores)\n"
            "  --batch B          windows per forward pass                      (default 64)\n"
            "  --max-seconds S    refuse longer audio                           (default 3600)\n"
            "  --quiet            no progress or summary on standard error\n\n"
            "With more than one file, progress (files done, failures, rate) and a summary go\n"
            "to standard error; the JSON lines on standard output are unaffected.\n");
}

static void print_line(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (s) puts(s);
    free(s);
}

static void print_error(const char *path, ac_status st, const char *msg)
{
    json_t *o = ac_error_json(st, msg);
    json_object_set_new(o, "file", json_string(path));
    print_line(o);
    json_decref(o);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One progress line on stderr: rewritten in place on a terminal, one line each otherwise
 * (logs); the last one is the summary. */
static void progress(int done, int n, int failures, double secs, int last)
{
    int tty = isatty(fileno(stderr));
    fprintf(stderr, "%saudioclass classify: %d/%d files, %d failed, %.1f s (%.0f files/s)%s",
            tty ? "\r" : "", done, n, failures, secs, secs > 0 ? done / secs : 0.0,
            last || !tty ? "\n" : "");
    fflush(stderr);
}

int cli_classify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"top-k", required_argument, 0, 'k'},
        {"windows", no_argument, 0, 'w'},       {"list", required_argument, 0, 'l'},
        {"threads", required_argument, 0, 't'}, {"batch", required_argument, 0, 'b'},
        {"max-seconds", required_argument, 0, 's'}, {"quiet", no_argument, 0, 'q'},
        {"aggregate", required_argument, 0, 'a'}, {"events", no_argument, 0, 'e'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model_path = NULL;
    int top_k = 5, windows = 0, threads = 0, batch = 64, n = 0, cap = 0, quiet = 0, c;
    int aggregate_max = 0, events = 0;
    double max_seconds = 3600;
    char **paths = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:k:wl:t:b:s:qa:eh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'k': top_k = atoi(optarg); break;
        case 'w': windows = 1; break;
        case 'l':
            if (cli_read_list(optarg, &paths, &n, &cap)) goto usage_fail;
            break;
        case 't': threads = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 's': max_seconds = atof(optarg); break;
        case 'q': quiet = 1; break;
        case 'a':
            if (strcmp(optarg, "mean") && strcmp(optarg, "max")) {
                fprintf(stderr, "audioclass classify: --aggregate must be mean or max, not %s\n", optarg);
                goto usage_fail;
            }
            aggregate_max = !strcmp(optarg, "max");
            break;
        case 'e': events = 1; break;
        case 'h': usage(stdout); cli_free_paths(paths, n); return 0;
        default: goto usage_fail;
        }
    }
    for (int i = optind; i < argc; i++)
        if (cli_push_path(&paths, &n, &cap, argv[i])) goto usage_fail;
    if (!model_path || n == 0 || top_k < 1 || batch < 1 || threads < 0 || max_seconds <= 0) {
        fprintf(stderr, "audioclass classify: %s\n",
                !model_path ? "--model is required" : n == 0 ? "no audio files given"
                                                             : "an option value is out of range");
        goto usage_fail;
    }

    char resolved[MODEL_PATH_MAX], why[AC_ERR_LEN + 512];
    if (model_path_resolve(model_path, resolved, sizeof resolved, why, sizeof why)) {
        fprintf(stderr, "audioclass classify: %s\n", why);
        cli_free_paths(paths, n);
        return 1;
    }
    model_path = resolved;
    char err[AC_ERR_LEN];
    ac_model *m = NULL;
    ac_workspace *ws = NULL;
    if (ac_model_load(model_path, &m, err) || ac_workspace_create(m, batch, threads, &ws, err)) {
        fprintf(stderr, "audioclass: %s: %s\n", model_path, err);
        ac_model_free(m);
        cli_free_paths(paths, n);
        return 1;
    }
    const ac_model_info *info = ac_model_get_info(m);
    int failures = 0;
    double t0 = now_s();
    ac_audio *audio = calloc(GROUP, sizeof *audio);
    ac_status *st = calloc(GROUP, sizeof *st);
    char (*errs)[AC_ERR_LEN] = calloc(GROUP, sizeof *errs);
    ac_prediction *pred = calloc(GROUP, sizeof *pred);
    const float **samples = calloc(GROUP, sizeof *samples);
    size_t *lens = calloc(GROUP, sizeof *lens);
    int *slot = calloc(GROUP, sizeof *slot);
    if (!audio || !st || !errs || !pred || !samples || !lens || !slot) {
        fprintf(stderr, "audioclass: out of memory\n");
        failures = n;
        goto out;
    }
    for (int g0 = 0; g0 < n; g0 += GROUP) {
        int gn = n - g0 < GROUP ? n - g0 : GROUP, ok = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(ac_workspace_threads(ws))
        for (int i = 0; i < gn; i++)
        {
            st[i] = ac_audio_decode_file(paths[g0 + i], info->sample_rate, max_seconds, &audio[i],
                                         errs[i]);
            if (st[i] == AC_OK &&
                (st[i] = ac_check_min_duration(m, (double)audio[i].src_frames / audio[i].src_rate,
                                               errs[i])) != AC_OK)
                ac_audio_free(&audio[i]);
        }
        for (int i = 0; i < gn; i++)
            if (st[i] == AC_OK) samples[ok] = audio[i].samples, lens[ok] = audio[i].n, slot[ok++] = i;
        ac_status cs = ok ? ac_classify_many(m, ws, samples, lens, ok, pred, err) : AC_OK;
        for (int i = 0, j = 0; i < gn; i++) {
            const char *path = paths[g0 + i];
            if (st[i] != AC_OK) {
                print_error(path, st[i], errs[i]);
                failures++;
            } else if (cs != AC_OK) {
                print_error(path, cs, err);
                failures++;
                j++;
            } else {
                ac_result_opts ro = {.top_k = top_k, .segments = windows, .aggregate_max = aggregate_max,
                                     .events = events};
                json_t *o = ac_result_json(info->name, m, &audio[i], &pred[j++], &ro);
                json_t *ordered = json_pack("{s:s}", "file", path);
                json_object_update(ordered, o);
                print_line(ordered);
                json_decref(ordered);
                json_decref(o);
            }
        }
        for (int j = 0; j < ok && cs == AC_OK; j++) ac_prediction_free(&pred[j]);
        for (int i = 0; i < gn; i++) ac_audio_free(&audio[i]);
        fflush(stdout);
        if (!quiet && n > 1) progress(g0 + gn, n, failures, now_s() - t0, g0 + gn == n);
    }
out:
    free(audio);
    free(st);
    free(errs);
    free(pred);
    free(samples);
    free(lens);
    free(slot);
    ac_workspace_free(ws);
    ac_model_free(m);
    cli_free_paths(paths, n);
    return failures ? 1 : 0;
usage_fail:
    usage(stderr);
    cli_free_paths(paths, n);
    return 2;
}
