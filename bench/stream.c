/* stream.c - the stream executor's cost: N streams of one model fed hop by hop on one
 * thread, as the server's dispatcher runs them (each stream's kernels single-threaded).
 *
 *   build/bench/stream --model M [--mode incremental|window] [--hop-ms H] [--streams N]
 *                      [--seconds S] [--input AUDIO]
 *
 * Prints one JSON line: the mode, the hop, the mean and p50/p99 CPU time of one hop of one
 * stream (the push that completes the hop, answer included), the real-time factor, and
 * "streams_per_core": how many such streams one core keeps up with in real time (hop length
 * / mean cost per hop). Audio: AUDIO decoded to the model's rate and looped (default: noise). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"mode", required_argument, 0, 'M'},
        {"hop-ms", required_argument, 0, 'H'}, {"streams", required_argument, 0, 'n'},
        {"seconds", required_argument, 0, 's'}, {"input", required_argument, 0, 'i'},
        {0, 0, 0, 0}};
    const char *model_path = NULL, *input = NULL;
    ac_stream_mode mode = AC_STREAM_AUTO;
    double hop_ms = 0, seconds = 3;
    int n_streams = 16, c;
    while ((c = getopt_long(argc, argv, "m:M:H:n:s:i:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'M': mode = !strcmp(optarg, "window") ? AC_STREAM_WINDOW : !strcmp(optarg, "incremental")
                                                                           ? AC_STREAM_INCREMENTAL : AC_STREAM_AUTO;
            break;
        case 'H': hop_ms = atof(optarg); break;
        case 'n': n_streams = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'i': input = optarg; break;
        default:
            fprintf(stderr, "usage: stream --model M [--mode incremental|window] [--hop-ms H] [--streams N] "
                            "[--seconds S] [--input AUDIO]\n");
            return 2;
        }
    }
    char err[AC_ERR_LEN];
    ac_model *m;
    if (!model_path || n_streams < 1 || ac_model_load(model_path, &m, err)) {
        fprintf(stderr, "stream: %s\n", model_path ? err : "--model is required");
        return 1;
    }
    const ac_model_info *info = ac_model_get_info(m);
    ac_detect_params dp;
    ac_detect_defaults(m, &dp, NULL);
    int hop = hop_ms > 0 ? (int)(hop_ms * info->sample_rate / 1000 + 0.5) : dp.hop ? dp.hop : info->hop;
    /* the audio every stream plays, from a different offset */
    size_t n_audio = (size_t)info->sample_rate * 10;
    float *audio = NULL;
    ac_audio a = {0};
    if (input) {
        if (ac_audio_decode_file(input, info->sample_rate, 3600, &a, err)) {
            fprintf(stderr, "stream: %s: %s\n", input, err);
            return 1;
        }
        audio = a.samples, n_audio = a.n;
    } else {
        audio = malloc(n_audio * sizeof *audio);
        unsigned s = 1;
        for (size_t i = 0; i < n_audio; i++) audio[i] = (float)((s = s * 1103515245u + 12345u) >> 16 & 0x7fff) / 32768.f - 0.5f;
    }
    ac_stream **st = calloc((size_t)n_streams, sizeof *st);
    ac_stream_config cfg = {.mode = mode, .hop = hop};
    for (int i = 0; i < n_streams; i++)
        if (ac_stream_create(m, &cfg, &st[i], err)) {
            fprintf(stderr, "stream: %s\n", err);
            return 1;
        }
    const ac_stream_mode used = ac_stream_get_mode(st[0]);
    /* warm-up: one window's worth, so buffers reach their working size */
    size_t *pos = calloc((size_t)n_streams, sizeof *pos);
    for (int i = 0; i < n_streams; i++) pos[i] = (size_t)i * 997 % n_audio;
    size_t cap = 1 << 20, n_t = 0;
    double *t = malloc(cap * sizeof *t);
    double t_begin = 0;
    for (int round = 0, warm = info->window / hop + 1;; round++) {
        int measuring = round >= warm;
        if (round == warm) t_begin = now_s();
        for (int i = 0; i < n_streams; i++) {
            if (pos[i] + (size_t)hop > n_audio) pos[i] = 0;
            double t0 = now_s();
            if (ac_stream_push(st[i], audio + pos[i], (size_t)hop, NULL, NULL, err)) {
                fprintf(stderr, "stream: %s\n", err);
                return 1;
            }
            double dt = now_s() - t0;
            pos[i] += (size_t)hop;
            if (measuring && n_t < cap) t[n_t++] = dt;
        }
        if (measuring && now_s() - t_begin >= seconds) break;
    }
    double sum = 0;
    for (size_t i = 0; i < n_t; i++) sum += t[i];
    qsort(t, n_t, sizeof *t, cmp_double);
    const double mean = sum / (double)n_t, hop_s = (double)hop / info->sample_rate;
    size_t bytes = ac_stream_bytes(st[0]);
    printf("{\"model\":\"%s\",\"mode\":\"%s\",\"hop_ms\":%.1f,\"streams\":%d,\"hops\":%zu,"
           "\"hop_cost_us\":{\"mean\":%.2f,\"p50\":%.2f,\"p99\":%.2f},\"realtime_factor\":%.5f,"
           "\"streams_per_core\":%.0f,\"state_bytes_per_stream\":%zu}\n",
           info->name, used == AC_STREAM_INCREMENTAL ? "incremental" : "window", hop_s * 1e3, n_streams, n_t,
           mean * 1e6, t[n_t / 2] * 1e6, t[(size_t)((double)n_t * 0.99)] * 1e6, mean / hop_s, hop_s / mean, bytes);
    for (int i = 0; i < n_streams; i++) ac_stream_free(st[i]);
    free(st), free(pos), free(t);
    if (input) ac_audio_free(&a);
    else free(audio);
    ac_model_free(m);
    return 0;
}
