/* cli_stream.c - `audioclass stream`: a recording or raw PCM (a file or standard input) fed
 * through a live stream session, exactly as GET /stream runs it; the messages are printed as
 * JSON lines. For scripts, and for the tests that compare the WebSocket with it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "engine.h"
#include "model_path.h"
#include "stream_session.h"

#define CHUNK_BYTES 4096

static void usage(FILE *f)
{
    fprintf(f,
            "usage: audioclass stream --model MODEL [options] FILE|-\n\n"
            "Feeds audio through a live stream and prints its messages as JSON lines, the\n"
            "same as GET /stream sends: \"start\", a \"result\" per hop, an \"event\" when a\n"
            "label other than the background stays above the threshold for a run of hops, and\n"
            "a \"summary\" at the end. FILE (or - for standard input) is raw PCM, mono, unless\n"
            "it is an audio file (WAV, FLAC, Ogg, MP3...), which is decoded first.\n\n"
            "  --model MODEL     a model name or file                          (required)\n"
            "  --rate HZ         raw PCM sample rate                (default: the model's)\n"
            "  --format F        raw PCM encoding: s16le or f32le           (default s16le)\n"
            "  --hop-ms MS       time between results        (default: the model's hop)\n"
            "  --top-k K         predictions per result                      (default 3)\n"
            "  --threshold P     event threshold, 0..1           (default: the model's)\n"
            "  --mode M          auto, incremental or window                 (default auto)\n"
            "  --events          print start, events and summary, not every result\n"
            "  --realtime        feed the input at 1x speed (as a microphone would)\n");
}

typedef struct print_ctx {
    int events_only;
} print_ctx;

static void print_msg(void *ctx, json_t *msg)
{
    print_ctx *p = ctx;
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!p->events_only || !type || strcmp(type, "result")) {
        char *s = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (s) puts(s);
        free(s);
        fflush(stdout);
    }
    json_decref(msg);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps until `stream_s` seconds of audio have been due since t0 (--realtime). */
static void pace(double t0, double stream_s)
{
    double wait = t0 + stream_s - now_s();
    if (wait <= 0) return;
    struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
    nanosleep(&ts, NULL);
}

int cli_stream(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},  {"rate", required_argument, 0, 'r'},
        {"format", required_argument, 0, 'f'}, {"hop-ms", required_argument, 0, 'H'},
        {"top-k", required_argument, 0, 'k'},  {"threshold", required_argument, 0, 'T'},
        {"mode", required_argument, 0, 'M'},   {"events", no_argument, 0, 'e'},
        {"realtime", no_argument, 0, 'R'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model_arg = NULL;
    stream_params sp = {.top_k = 3, .encoding = AC_PCM_S16LE, .mode = AC_STREAM_AUTO};
    print_ctx pc = {0};
    int realtime = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:r:f:H:k:T:M:eRh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_arg = optarg; break;
        case 'r': sp.rate = atoi(optarg); break;
        case 'f':
            if (!strcmp(optarg, "s16le")) sp.encoding = AC_PCM_S16LE;
            else if (!strcmp(optarg, "f32le")) sp.encoding = AC_PCM_F32LE;
            else {
                fprintf(stderr, "audioclass stream: --format must be s16le or f32le, not %s\n", optarg);
                return 2;
            }
            break;
        case 'H': sp.hop_ms = atof(optarg); break;
        case 'k': sp.top_k = atoi(optarg); break;
        case 'T': sp.threshold = (float)atof(optarg); break;
        case 'M':
            if (!strcmp(optarg, "auto")) sp.mode = AC_STREAM_AUTO;
            else if (!strcmp(optarg, "incremental")) sp.mode = AC_STREAM_INCREMENTAL;
            else if (!strcmp(optarg, "window")) sp.mode = AC_STREAM_WINDOW;
            else {
                fprintf(stderr, "audioclass stream: --mode must be auto, incremental or window\n");
                return 2;
            }
            break;
        case 'e': pc.events_only = 1; break;
        case 'R': realtime = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model_arg || optind != argc - 1 || sp.top_k < 1) {
        fprintf(stderr, "audioclass stream: %s\n", !model_arg ? "--model is required"
                                                   : sp.top_k < 1 ? "--top-k must be at least 1"
                                                                  : "give one input: a file, or - for stdin");
        usage(stderr);
        return 2;
    }
    char resolved[MODEL_PATH_MAX], why[AC_ERR_LEN + 512], err[AC_ERR_LEN];
    if (model_path_resolve(model_arg, resolved, sizeof resolved, why, sizeof why)) {
        fprintf(stderr, "audioclass stream: %s\n", why);
        return 1;
    }
    ac_model *m = NULL;
    if (ac_model_load(resolved, &m, err)) {
        fprintf(stderr, "audioclass stream: %s: %s\n", resolved, err);
        return 1;
    }
    const ac_model_info *info = ac_model_get_info(m);
    const char *input = argv[optind];
    size_t len = 0;
    unsigned char *bytes = NULL;
    FILE *f = strcmp(input, "-") ? fopen(input, "rb") : stdin;
    ac_status rd = f ? ac_read_all(f, input, &bytes, &len, err) : ac_fail(err, AC_ERR_IO, "cannot open %s", input);
    if (f && f != stdin) fclose(f);
    if (rd) {
        fprintf(stderr, "audioclass stream: %s\n", err);
        ac_model_free(m);
        return 1;
    }
    ac_audio audio = {0};
    if (ac_audio_recognises(bytes, len)) { /* decoded like an upload, then streamed as floats */
        ac_status st = ac_audio_decode(bytes, len, info->sample_rate, 3600, &audio, err);
        if (st) {
            fprintf(stderr, "audioclass stream: %s: %s\n", input, err);
            free(bytes);
            ac_model_free(m);
            return 1;
        }
        free(bytes);
        bytes = (unsigned char *)audio.samples;
        audio.samples = NULL;
        len = audio.n * sizeof(float);
        sp.encoding = AC_PCM_F32LE, sp.rate = info->sample_rate;
    }
    stream_session *s = NULL;
    int rc = 1;
    const char *name = info->name;
    ac_status st = stream_session_create(m, name, &sp, &s, err);
    if (!st) {
        print_msg(&pc, stream_session_start_json(s));
        const size_t width = sp.encoding == AC_PCM_S16LE ? 2 : 4;
        const double bytes_per_s = (double)width * (sp.rate ? sp.rate : info->sample_rate);
        double t0 = now_s();
        for (size_t at = 0; !st && at < len; at += CHUNK_BYTES) {
            size_t take = len - at < CHUNK_BYTES ? len - at : CHUNK_BYTES;
            if (realtime) pace(t0, (double)at / bytes_per_s);
            st = stream_session_feed(s, bytes + at, take, print_msg, &pc, err);
        }
        if (!st) st = stream_session_end(s, print_msg, &pc, err);
        rc = st ? 1 : 0;
    }
    if (st) fprintf(stderr, "audioclass stream: %s\n", err);
    stream_session_free(s);
    free(bytes);
    ac_model_free(m);
    return rc;
}
