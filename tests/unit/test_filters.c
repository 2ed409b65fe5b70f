/* test_filters.c - filterbank analysis on kernels with known responses: a cosine at f0
 * peaks at f0 with the Hann main-lobe bandwidth, a delta is flat; the sine probe of a
 * known band-pass layer; sorting, band edges and error cases. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "testutil.h"

#define FS 8000
#define TAPS 64
#define WINDOW 2000

/* Channel i of conv1: index 0 = cosine 2500 Hz, 1 = delta, 2 = cosine 1000 Hz, 3 = cosine 300 Hz,
 * each Hann-windowed and scaled to unit peak gain (sum of window / 2). conv2 mixes them. */
static const double k_freqs[4] = {2500, 0, 1000, 300};

/* conv1 (4 filters, TAPS taps) -> [max pool 4, fused into conv1] -> conv2 -> mean -> fc */
static ac_model *make_model_pooled(int pool)
{
    float w1[4 * TAPS] = {0}, b1[4] = {0}, w2[2 * 4], b2[2] = {0}, wf[3 * 2], bf[3] = {0};
    double wsum = 0;
    for (int t = 0; t < TAPS; t++) wsum += 0.5 - 0.5 * cos(2 * M_PI * t / (TAPS - 1));
    for (int c = 0; c < 4; c++)
        for (int t = 0; t < TAPS; t++) {
            double hann = 0.5 - 0.5 * cos(2 * M_PI * t / (TAPS - 1));
            w1[c * TAPS + t] = k_freqs[c] == 0 ? (t == 0)
                                               : (float)(hann * cos(2 * M_PI * k_freqs[c] * t / FS) / (wsum / 2));
        }
    tu_fill_random(w2, 8, 1);
    tu_fill_random(wf, 6, 2);
    tu_st *b = tu_st_new();
    tu_st_add(b, "conv1.weight", 3, (int64_t[]){4, 1, TAPS}, w1);
    tu_st_add(b, "conv1.bias", 1, (int64_t[]){4}, b1);
    tu_st_add(b, "conv2.weight", 3, (int64_t[]){2, 4, 1}, w2);
    tu_st_add(b, "conv2.bias", 1, (int64_t[]){2}, b2);
    tu_st_add(b, "fc.weight", 2, (int64_t[]){3, 2}, wf);
    tu_st_add(b, "fc.bias", 1, (int64_t[]){3}, bf);
    json_t *graph = json_pack(
        "[{s:s,s:s,s:i,s:i,s:i},{s:s,s:s,s:i,s:i,s:i},{s:s},{s:s},{s:s,s:s,s:i,s:i}]",
        "op", "conv1d", "name", "conv1", "in_channels", 1, "out_channels", 4, "kernel_size", TAPS,
        "op", "conv1d", "name", "conv2", "in_channels", 4, "out_channels", 2, "kernel_size", 1,
        "op", "global_avgpool", "op", "flatten",
        "op", "linear", "name", "fc", "in_features", 2, "out_features", 3);
    if (pool)
        json_array_insert_new(graph, 1, json_pack("{s:s,s:i,s:i}", "op", "maxpool1d", "kernel_size", 4, "stride", 4));
    char *gs = json_dumps(graph, 0);
    json_t *meta = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "format", "audioclass", "format_version", "1",
                             "name", "bank", "sample_rate", "8000", "input_shape", "[1, 2000]", "labels",
                             "[\"a\", \"b\", \"c\"]", "policy", "{\"window\": 2000, \"hop\": 1000}", "graph", gs);
    size_t len;
    unsigned char *bytes = tu_st_finish(b, meta, &len);
    ac_model *m;
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_model_load_memory(bytes, len, "bank", &m, err), AC_OK, "%s", err);
    free(bytes), free(gs);
    json_decref(graph), json_decref(meta);
    return m;
}

static ac_model *make_model(void) { return make_model_pooled(0); }

/* A conv with a fused pool, run unfused for the probe: needs a probe workspace (more room),
 * and its output pooled equals what the fused forward pass computes. */
Test(filters, unfused_conv_output_needs_a_probe_workspace)
{
    ac_model *m = make_model_pooled(1);
    ac_layer_info L;
    cr_assert_eq(ac_model_layer_info(m, 0, &L), 0);
    cr_assert(L.pooled && L.conv_out.w / 4 == L.out.w, "the pool (4) is fused into conv1");
    const int n = 3, win = 2000, cw = L.conv_out.w, pw = L.out.w;
    float *x = malloc(sizeof(float) * n * win), *full = malloc(sizeof(float) * n * 4 * cw);
    float *pooled = malloc(sizeof(float) * n * 4 * pw);
    tu_fill_random(x, (size_t)n * win, 7);
    char err[AC_ERR_LEN];
    ac_workspace *ws, *pws;
    cr_assert_eq(ac_workspace_create(m, n, 1, &ws, err), AC_OK, "%s", err);
    cr_expect_eq(ac_model_forward_conv_output(m, ws, x, n, 0, full, err), AC_ERR_INVALID_ARG);
    cr_expect(strstr(err, "ac_workspace_create_probe") != NULL, "message: %s", err);
    cr_assert_eq(ac_workspace_create_probe(m, n, 1, &pws, err), AC_OK, "%s", err);
    cr_assert_eq(ac_model_forward_conv_output(m, pws, x, n, 0, full, err), AC_OK, "%s", err);
    cr_assert_eq(ac_model_forward_upto(m, ws, x, n, 1, pooled, err), AC_OK, "%s", err);
    for (int r = 0; r < n * 4; r++)
        for (int j = 0; j < pw; j++) {
            float mx = full[r * cw + 4 * j];
            for (int i = 1; i < 4; i++) mx = fmaxf(mx, full[r * cw + 4 * j + i]);
            cr_expect_float_eq(pooled[r * pw + j], mx, 1e-6, "row %d window %d", r, j);
        }
    ac_workspace_free(ws), ac_workspace_free(pws), ac_model_free(m);
    free(x), free(full), free(pooled);
}

static const ac_filter *by_index(const ac_filterbank *fb, int index)
{
    for (int i = 0; i < fb->n_filters; i++)
        if (fb->filters[i].index == index) return &fb->filters[i];
    cr_assert_fail("no filter %d", index);
    return NULL;
}

Test(filters, kernel_mode_known_responses)
{
    ac_model *m = make_model();
    ac_filterbank *fb;
    char err[AC_ERR_LEN];
    const int n = 513;
    cr_assert_eq(ac_filters_compute(m, NULL, AC_FILTERS_KERNEL, n, 1, &fb, err), AC_OK, "%s", err);
    cr_expect_str_eq(fb->layer, "conv1");
    cr_expect_eq(fb->n_freqs, n);
    cr_expect_float_eq(fb->freqs_hz[n - 1], FS / 2.0, 1e-9);
    const double bin = FS / 2.0 / (n - 1);
    for (int c = 0; c < 4; c++) {
        const ac_filter *f = by_index(fb, c);
        if (k_freqs[c] == 0) { /* delta: |H| = 1 everywhere */
            for (int k = 0; k < n; k++) cr_expect_float_eq(f->response_db[k], 0.0, 1e-4);
            cr_expect_float_eq(f->bandwidth_hz, FS / 2.0, 1e-6, "flat: the band is everything");
            continue;
        }
        cr_expect_leq(fabs(f->centre_hz - k_freqs[c]), bin, "cosine %g Hz: centre %g", k_freqs[c], f->centre_hz);
        cr_expect_float_eq(f->peak_db, 0.0, 0.1, "unit peak gain by construction");
        /* Hann window: -3 dB main-lobe width = 1.44 fs / N */
        double want = 1.44 * FS / TAPS;
        cr_expect(fabs(f->bandwidth_hz - want) < 0.1 * want, "cosine %g Hz: bandwidth %g, expected ~%g",
                  k_freqs[c], f->bandwidth_hz, want);
        cr_expect(f->low_hz < k_freqs[c] && f->high_hz > k_freqs[c]);
    }
    /* sorted by centre frequency, original indices kept: 300 (3) < 1000 (2) < 2500 (0) */
    int pos[4];
    for (int i = 0; i < 4; i++) pos[fb->filters[i].index] = i;
    cr_expect(pos[3] < pos[2] && pos[2] < pos[0], "order %d %d %d", pos[3], pos[2], pos[0]);
    for (int i = 1; i < fb->n_filters; i++) cr_expect_leq(fb->filters[i - 1].centre_hz, fb->filters[i].centre_hz);
    cr_expect_gt(fb->coverage_fraction, 0.99, "the delta covers every frequency");
    ac_filterbank_free(fb);
    ac_model_free(m);
}

Test(filters, probe_mode_finds_the_band_pass_filters)
{
    ac_model *m = make_model();
    ac_filterbank *fb;
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_filters_compute(m, "conv1", AC_FILTERS_PROBE, 200, 2, &fb, err), AC_OK, "%s", err);
    cr_expect_float_eq(fb->freqs_hz[0], 10.0, 1e-9);
    cr_expect_lt(fb->freqs_hz[fb->n_freqs - 1], FS / 2.0);
    const double step = pow(fb->freqs_hz[fb->n_freqs - 1] / 10.0, 1.0 / (fb->n_freqs - 1)); /* grid ratio */
    for (int c = 0; c < 4; c++) {
        const ac_filter *f = by_index(fb, c);
        if (k_freqs[c] == 0) { /* passes the sine through: mean |sin| / amplitude = 2/pi */
            for (int k = 20; k < fb->n_freqs; k++)
                cr_expect_float_eq(f->response_db[k], 20 * log10(2 / M_PI), 0.15, "delta at %g Hz",
                                   fb->freqs_hz[k]);
            continue;
        }
        cr_expect_leq(fabs(log(f->centre_hz / k_freqs[c])), log(step) * 1.01, "probe %g Hz: centre %g",
                      k_freqs[c], f->centre_hz);
    }
    ac_filterbank_free(fb);
    /* deeper layer: probe works, kernel mode does not */
    cr_assert_eq(ac_filters_compute(m, "conv2", AC_FILTERS_PROBE, 16, 1, &fb, err), AC_OK, "%s", err);
    cr_expect_eq(fb->n_filters, 2);
    ac_filterbank_free(fb);
    ac_model_free(m);
}

Test(filters, bad_parameters_are_refused)
{
    ac_model *m = make_model();
    ac_filterbank *fb = (ac_filterbank *)1;
    char err[AC_ERR_LEN];
    cr_expect_eq(ac_filters_compute(m, "conv9", AC_FILTERS_KERNEL, 64, 1, &fb, err), AC_ERR_NOT_FOUND);
    cr_expect(strstr(err, "conv1, conv2") != NULL, "lists the conv layers: %s", err);
    cr_expect_null(fb);
    cr_expect_eq(ac_filters_compute(m, "fc", AC_FILTERS_KERNEL, 64, 1, &fb, err), AC_ERR_NOT_FOUND, "not a conv");
    cr_expect_eq(ac_filters_compute(m, NULL, AC_FILTERS_KERNEL, 2, 1, &fb, err), AC_ERR_INVALID_ARG);
    cr_expect_eq(ac_filters_compute(m, NULL, AC_FILTERS_KERNEL, 100000, 1, &fb, err), AC_ERR_INVALID_ARG);
    cr_expect_eq(ac_filters_compute(m, "conv2", AC_FILTERS_KERNEL, 64, 1, &fb, err), AC_ERR_INVALID_ARG);
    cr_expect(strstr(err, "mode=probe") != NULL, "%s", err);
    cr_expect_eq(ac_filters_mode_parse("probe"), AC_FILTERS_PROBE);
    cr_expect_eq(ac_filters_mode_parse("spectrogram"), -1);
    ac_filterbank_free(NULL);
    ac_model_free(m);
}

Test(filters, mel_scale)
{
    cr_expect_float_eq(ac_hz_to_mel(1000), 1000.0, 0.5, "1 kHz is about 1000 mel");
    cr_expect_float_eq(ac_mel_to_hz(ac_hz_to_mel(3210.5)), 3210.5, 1e-6);
}
