/* test_stream_parts.c - the pieces a live stream is made of besides the executor: live PCM
 * (engine/pcm_stream.h: samples split across messages, resampler state kept) and the event
 * rule (engine/detect.h: threshold, run length, release level, background labels). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "testutil.h"

/* All output of feeding bytes[len] in pieces of `piece` bytes (0: whole), flush included. */
static float *convert(ac_pcm_encoding enc, int in_rate, int out_rate, const unsigned char *bytes, size_t len,
                      size_t piece, size_t *n_out)
{
    char err[AC_ERR_LEN];
    ac_pcm_stream *p;
    cr_assert_eq(ac_pcm_stream_create(enc, in_rate, out_rate, &p, err), AC_OK, "%s", err);
    float *all = malloc((len + 64) * sizeof *all * (size_t)(out_rate / in_rate + 1) + 4096 * sizeof *all);
    size_t n = 0;
    const float *x;
    size_t got;
    for (size_t at = 0; at < len;) {
        size_t take = piece && piece < len - at ? piece : len - at;
        cr_assert_eq(ac_pcm_stream_feed(p, bytes + at, take, &x, &got, err), AC_OK, "%s", err);
        if (got) memcpy(all + n, x, got * sizeof *x);
        n += got, at += take;
    }
    size_t partial;
    cr_assert_eq(ac_pcm_stream_flush(p, &x, &got, &partial, err), AC_OK, "%s", err);
    if (got) memcpy(all + n, x, got * sizeof *x);
    n += got;
    ac_pcm_stream_free(p);
    *n_out = n;
    return all;
}

Test(pcm_stream, any_split_of_the_bytes_gives_the_same_samples)
{
    const size_t frames = 3001;
    unsigned char *b = malloc(frames * 2);
    for (size_t i = 0; i < frames; i++) {
        int16_t v = (int16_t)((i * 7919) % 65536 - 32768);
        b[2 * i] = (unsigned char)(v & 0xff), b[2 * i + 1] = (unsigned char)((uint16_t)v >> 8);
    }
    size_t n_whole, n_bytes, n_odd;
    float *whole = convert(AC_PCM_S16LE, 8000, 8000, b, frames * 2, 0, &n_whole);
    float *bytes = convert(AC_PCM_S16LE, 8000, 8000, b, frames * 2, 1, &n_bytes);
    float *odd = convert(AC_PCM_S16LE, 8000, 8000, b, frames * 2, 333, &n_odd);
    cr_expect_eq(n_whole, frames);
    cr_expect_eq(n_bytes, frames, "one byte at a time: %zu samples", n_bytes);
    cr_expect_eq(n_odd, frames);
    cr_expect_eq(memcmp(whole, bytes, frames * sizeof *whole), 0, "split samples are put back together");
    cr_expect_eq(memcmp(whole, odd, frames * sizeof *whole), 0);
    cr_expect_float_eq(whole[1], (float)(int16_t)(7919 - 32768) / 32768.f, 1e-7);
    free(whole), free(bytes), free(odd);
    /* resampled 16 kHz -> 8 kHz: the resampler's state goes from piece to piece */
    float *r_whole = convert(AC_PCM_S16LE, 16000, 8000, b, frames * 2, 0, &n_whole);
    float *r_odd = convert(AC_PCM_S16LE, 16000, 8000, b, frames * 2, 501, &n_odd);
    cr_expect_eq(n_whole, n_odd);
    cr_expect(labs((long)n_whole - (long)frames / 2) <= 1, "%zu samples at 8 kHz from %zu at 16 kHz", n_whole, frames);
    cr_expect_leq(tu_max_abs_diff(r_whole, r_odd, n_whole), 1e-6, "pieces and whole resample alike");
    free(r_whole), free(r_odd), free(b);
}

Test(pcm_stream, bad_input_is_named)
{
    char err[AC_ERR_LEN];
    ac_pcm_stream *p = NULL;
    cr_expect_eq(ac_pcm_stream_create(AC_PCM_F32LE, 500, 8000, &p, err), AC_ERR_INVALID_ARG);
    cr_expect_null(p);
    cr_assert_eq(ac_pcm_stream_create(AC_PCM_F32LE, 8000, 8000, &p, err), AC_OK);
    float v[3] = {0.5f, NAN, 0.25f};
    const float *x;
    size_t n;
    cr_expect_eq(ac_pcm_stream_feed(p, v, sizeof v, &x, &n, err), AC_ERR_BAD_AUDIO);
    cr_expect(strstr(err, "sample 1") != NULL, "%s", err);
    ac_pcm_stream_free(p);
    ac_pcm_stream_free(NULL);
}

/* Feeds rows of [n_labels] probabilities, 1 s apart; returns the events. */
static int feed(ac_detector *d, const float (*rows)[3], int n, ac_event *ev)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (ac_detector_feed(d, rows[i], i, i + 1, &ev[k])) k++;
    return k;
}

Test(detect, a_run_fires_once_background_never)
{
    ac_detect_params p;
    memset(&p, 0, sizeof p);
    p.threshold = 0.8f, p.min_hops = 2;
    p.background[2] = 1; /* label 2 is "_silence_" */
    ac_detector d;
    ac_event ev[8];
    const float rows[][3] = {
        {0.9f, 0.05f, 0.05f}, /* run of label 0 starts (start 0) */
        {0.5f, 0.2f, 0.3f},   /* dips under the threshold, above the release (0.4): same run */
        {0.95f, 0.0f, 0.05f}, /* second answer at the threshold: fires, end 3 */
        {0.9f, 0.1f, 0.0f},   /* the same run: no second event */
        {0.1f, 0.1f, 0.8f},   /* background on top: the run is over */
        {0.0f, 0.0f, 1.0f},   /* background: never an event */
        {0.0f, 0.0f, 1.0f},
        {0.85f, 0.1f, 0.05f}, /* a new run of label 0 */
        {0.3f, 0.6f, 0.1f},   /* label 1 on top, under the threshold: no run */
        {0.9f, 0.05f, 0.05f}, /* label 0 again, one answer only */
    };
    ac_detector_init(&d, &p, 3);
    int n = feed(&d, rows, (int)(sizeof rows / sizeof *rows), ev);
    cr_assert_eq(n, 1, "%d events", n);
    cr_expect_eq(ev[0].label, 0);
    cr_expect_float_eq(ev[0].t_start_s, 0.0, 1e-9);
    cr_expect_float_eq(ev[0].t_end_s, 3.0, 1e-9);
    cr_expect_float_eq(ev[0].score, 0.95f, 1e-6);
    /* below the release level the run breaks, and the next answer starts a new one */
    const float again[][3] = {{0.9f, 0.1f, 0.0f}, {0.35f, 0.6f, 0.05f}, {0.9f, 0.1f, 0.0f}, {0.9f, 0.1f, 0.0f}};
    ac_detector_init(&d, &p, 3);
    n = feed(&d, again, 4, ev);
    cr_expect_eq(n, 1);
    cr_expect_float_eq(ev[0].t_start_s, 2.0, 1e-9, "the run restarted at the third answer");
}

Test(detect, model_defaults_and_metadata)
{
    char err[AC_ERR_LEN];
    ac_model *m5, *kws;
    cr_assert_eq(ac_model_load(tu_src_path("models/m5-speech.safetensors"), &m5, err), AC_OK, "%s", err);
    cr_assert_eq(ac_model_load(tu_src_path("models/kws-speech.safetensors"), &kws, err), AC_OK, "%s", err);
    ac_detect_params a, b;
    cr_assert_eq(ac_detect_defaults(m5, &a, err), AC_OK);
    cr_assert_eq(ac_detect_defaults(kws, &b, err), AC_OK);
    cr_expect_float_eq(a.threshold, 0.5f, 1e-6, "no metadata: the built-in defaults");
    cr_expect_eq(a.min_hops, 2);
    cr_expect(a.background[10] && a.background[11] && !a.background[0], "_silence_ and _unknown_");
    cr_expect_float_eq(b.threshold, 0.8f, 1e-6, "the spotter's file says 0.8");
    cr_expect_eq(b.min_hops, 3);
    cr_expect_eq(b.hop, 400);
    ac_model_free(m5), ac_model_free(kws);
}
