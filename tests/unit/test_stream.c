/* test_stream.c - the stream executor (engine/stream.h): a causal network fed in pieces of
 * any size answers, at every hop, exactly what the network run offline over the samples so
 * far answers.
 *
 * tests/golden/stream/NAME.golden.safetensors (tests/golden/stream_make.py) holds a signal
 * and PyTorch's float64 answer for each prefix that ends on a hop. Each signal is fed whole,
 * one sample at a time, in hop-sized pieces and in random pieces from one sample to 3,000;
 * every hop's probabilities must match PyTorch's to 1e-5, and the raw output at the model's
 * window length must match the engine's own offline forward pass to 1e-5. Also: which
 * models are causal and why not, window mode, bad arguments. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "testutil.h"
#include "weights.h"

#define PROBS_TOL 1e-5
#define RAW_TOL 1e-5
#define FIXTURES_MIN 6

typedef struct hop_check {
    const char *model;
    const char *how;
    const float *want;       /* [K, L] golden probabilities (NaN rows: no answer yet) */
    int K, L, hop;
    int next;                /* next row expected */
    int emitted;
    double worst;
} hop_check;

static void on_hop(void *ctx, uint64_t end, const float *probs, int n_labels)
{
    hop_check *c = ctx;
    cr_assert_eq(n_labels, c->L);
    cr_assert_eq(end % (uint64_t)c->hop, 0, "%s (%s): an answer at sample %llu, not on a hop", c->model,
                 c->how, (unsigned long long)end);
    int k = (int)(end / (uint64_t)c->hop) - 1;
    cr_assert(k >= c->next && k < c->K, "%s (%s): answer for hop %d out of order", c->model, c->how, k);
    for (int j = c->next; j < k; j++) /* skipped hops must be the ones without a frame */
        cr_expect(isnan(c->want[(size_t)j * c->L]), "%s (%s): no answer at sample %d, PyTorch has one",
                  c->model, c->how, (j + 1) * c->hop);
    cr_expect(!isnan(c->want[(size_t)k * c->L]), "%s (%s): an answer at sample %llu before the first frame",
              c->model, c->how, (unsigned long long)end);
    double d = tu_max_abs_diff(probs, c->want + (size_t)k * c->L, (size_t)c->L);
    cr_expect_leq(d, PROBS_TOL, "%s (%s): at sample %llu the stream differs from PyTorch by %g",
                  c->model, c->how, (unsigned long long)end, d);
    if (d > c->worst) c->worst = d;
    c->next = k + 1;
    c->emitted++;
}

/* Feeds x[n] in pieces from sizes(); checks every hop. */
static double feed(const ac_model *m, const char *model, const char *how, const float *x, int n,
                   const float *want, int K, int hop, int (*size)(unsigned *, int), unsigned seed)
{
    char err[AC_ERR_LEN];
    ac_stream *s;
    ac_stream_config cfg = {.mode = AC_STREAM_INCREMENTAL, .hop = hop};
    cr_assert_eq(ac_stream_create(m, &cfg, &s, err), AC_OK, "%s: %s", model, err);
    hop_check c = {.model = model, .how = how, .want = want, .K = K, .L = ac_model_get_info(m)->n_labels,
                   .hop = hop};
    for (int at = 0; at < n;) {
        int take = size(&seed, n - at);
        cr_assert_eq(ac_stream_push(s, x + at, (size_t)take, on_hop, &c, err), AC_OK, "%s: %s", model, err);
        at += take;
    }
    int answered = 0;
    for (int k = 0; k < K; k++) answered += !isnan(want[(size_t)k * c.L]);
    cr_expect_eq(c.emitted, answered, "%s (%s): %d answers, PyTorch has %d", model, how, c.emitted, answered);
    cr_expect_eq(ac_stream_samples(s), (uint64_t)n);
    ac_stream_free(s);
    return c.worst;
}

static int whole(unsigned *seed, int left) { (void)seed; return left; }
static int one(unsigned *seed, int left) { (void)seed; (void)left; return 1; }
static int by_hop(unsigned *seed, int left) { (void)seed; return left < 50 ? left : 50; }
static int random_piece(unsigned *seed, int left)
{
    *seed = *seed * 1103515245u + 12345u;
    double u = (double)((*seed >> 8) & 0xffff) / 65536.0;
    int take = (int)exp(u * log(3000.0)); /* 1..3000, log-uniform */
    if (take < 1) take = 1;
    return take < left ? take : left;
}

static void check_fixture(const char *path)
{
    char err[AC_ERR_LEN];
    ac_weights *fx;
    cr_assert_eq(ac_weights_open(path, &fx, err), AC_OK, "%s: %s", path, err);
    const char *rel = ac_weights_meta(fx, "model");
    const char *hop_s = ac_weights_meta(fx, "hop");
    cr_assert(rel && hop_s, "%s: metadata model/hop missing", path);
    const int hop = atoi(hop_s);
    ac_model *m;
    cr_assert_eq(ac_model_load(tu_src_path(rel), &m, err), AC_OK, "%s: %s", rel, err);
    const ac_model_info *info = ac_model_get_info(m);
    cr_assert(info->causal, "%s: should be causal, the loader says: %s", rel, info->causal_why);

    int64_t n_x, n_probs, n_raw;
    float *x = tu_fixture_f32(fx, rel, "input", &n_x);
    float *want = tu_fixture_f32(fx, rel, "probs", &n_probs);
    float *want_raw = tu_fixture_f32(fx, rel, "output", &n_raw);
    const int K = (int)(n_probs / info->n_labels), n = (int)n_x;

    double worst = 0, d;
    d = feed(m, rel, "whole", x, n, want, K, hop, whole, 0), worst = d > worst ? d : worst;
    d = feed(m, rel, "one sample at a time", x, n, want, K, hop, one, 0), worst = d > worst ? d : worst;
    d = feed(m, rel, "hop by hop", x, n, want, K, hop, by_hop, 0), worst = d > worst ? d : worst;
    for (unsigned seed = 1; seed <= 3; seed++) {
        char how[32];
        snprintf(how, sizeof how, "random pieces, seed %u", seed);
        d = feed(m, rel, how, x, n, want, K, hop, random_piece, seed), worst = d > worst ? d : worst;
    }

    /* the raw output after exactly one window equals the engine's offline forward pass */
    const int L = info->n_labels, win = info->window;
    ac_stream *s;
    ac_stream_config cfg = {.mode = AC_STREAM_INCREMENTAL, .hop = win};
    cr_assert_eq(ac_stream_create(m, &cfg, &s, err), AC_OK, "%s: %s", rel, err);
    float *raw = malloc((size_t)L * sizeof *raw), *off = malloc((size_t)L * sizeof *off);
    cr_assert(raw && off);
    cr_assert_eq(ac_stream_push(s, x, (size_t)win, NULL, NULL, err), AC_OK);
    cr_assert_eq(ac_stream_output(s, raw), 1, "%s: no output after a whole window", rel);
    ac_workspace *ws;
    cr_assert_eq(ac_workspace_create(m, 1, 1, &ws, err), AC_OK, "%s: %s", rel, err);
    cr_assert_eq(ac_model_forward(m, ws, x, 1, off, err), AC_OK, "%s: %s", rel, err);
    double d_off = tu_max_abs_diff(raw, off, (size_t)L);
    cr_expect_leq(d_off, RAW_TOL, "%s: after one window the stream's raw output differs from the "
                  "offline forward pass by %g", rel, d_off);
    if (win % hop == 0) {
        double d_raw = tu_max_abs_diff(raw, want_raw + (size_t)(win / hop - 1) * L, (size_t)L);
        cr_expect_leq(d_raw, 1e-4, "%s: raw output differs from PyTorch by %g", rel, d_raw);
    }
    printf("stream %-34s %d hops x 6 feeds: max |stream - PyTorch| %.2g (probs); "
           "vs offline engine %.2g (raw); %zu bytes of state\n", rel, K, worst, d_off, ac_stream_bytes(s));
    ac_workspace_free(ws);
    ac_stream_free(s);
    free(raw), free(off), free(x), free(want), free(want_raw);
    ac_model_free(m);
    ac_weights_close(fx);
}

Test(stream, every_hop_equals_the_offline_pass_for_any_piece_sizes)
{
    int count = tu_for_each_file(tu_src_path("tests/golden/stream"), ".golden.safetensors", check_fixture);
    cr_assert_geq(count, FIXTURES_MIN, "expected %d stream fixtures, found %d", FIXTURES_MIN, count);
}

static ac_model *load(const char *rel)
{
    char err[AC_ERR_LEN];
    ac_model *m;
    cr_assert_eq(ac_model_load(tu_src_path(rel), &m, err), AC_OK, "%s: %s", rel, err);
    return m;
}

Test(stream, the_loader_says_which_models_are_causal_and_why_not)
{
    ac_model *m5 = load("models/m5-speech.safetensors");
    ac_model *env = load("models/envnet-esc50.safetensors");
    ac_model *res = load("tests/golden/zoo/resnet1d.safetensors");
    const ac_model_info *a = ac_model_get_info(m5), *b = ac_model_get_info(env), *c = ac_model_get_info(res);
    cr_expect(a->causal && a->running_mean, "M5: causal (unpadded convs), its answer a mean over time");
    cr_expect(!b->causal && strstr(b->causal_why, "flatten"), "EnvNet: %s", b->causal_why);
    cr_expect(!c->causal && strstr(c->causal_why, "on the right"), "ResNet: %s", c->causal_why);

    char err[AC_ERR_LEN];
    ac_stream *s = NULL;
    ac_stream_config inc = {.mode = AC_STREAM_INCREMENTAL, .hop = 100};
    cr_expect_eq(ac_stream_create(env, &inc, &s, err), AC_ERR_INVALID_ARG);
    cr_expect(strstr(err, "flatten") != NULL, "the refusal names the node: %s", err);
    cr_expect_null(s);
    ac_stream_config bad = {.mode = AC_STREAM_AUTO, .hop = 0};
    cr_expect_eq(ac_stream_create(m5, &bad, &s, err), AC_ERR_INVALID_ARG);
    ac_stream_config autom = {.mode = AC_STREAM_AUTO, .hop = 100};
    cr_assert_eq(ac_stream_create(m5, &autom, &s, err), AC_OK, "%s", err);
    cr_expect_eq(ac_stream_get_mode(s), AC_STREAM_WINDOW, "M5 streams by windows (a running mean "
                 "would average the whole stream)");
    cr_expect_eq(ac_stream_push(s, NULL, 5, NULL, NULL, err), AC_ERR_INVALID_ARG);
    ac_stream_free(s);
    ac_stream_free(NULL);
    ac_model_free(m5), ac_model_free(env), ac_model_free(res);
}

typedef struct window_check {
    const ac_model *m;
    ac_workspace *ws;
    const float *x;
    int emitted;
    double worst;
} window_check;

static void on_window(void *ctx, uint64_t end, const float *probs, int L)
{
    window_check *c = ctx;
    const int w = ac_model_get_info(c->m)->window;
    float *win = calloc((size_t)w, sizeof *win), *out = malloc((size_t)L * sizeof *out);
    cr_assert(win && out);
    for (int i = 0; i < w; i++) {
        long at = (long)end - w + i;
        win[i] = at >= 0 ? c->x[at] : 0.f;
    }
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_model_forward(c->m, c->ws, win, 1, out, err), AC_OK, "%s", err);
    ac_model_probs(c->m, out, 1);
    double d = tu_max_abs_diff(out, probs, (size_t)L);
    if (d > c->worst) c->worst = d;
    c->emitted++;
    free(win), free(out);
}

Test(stream, window_mode_answers_for_the_last_window_at_every_hop)
{
    ac_model *m = load("models/m5-speech.safetensors");
    const int n = 20000, hop = 1000;
    float *x = malloc(n * sizeof *x);
    cr_assert(x);
    tu_fill_random(x, n, 7);
    char err[AC_ERR_LEN];
    window_check c = {.m = m, .x = x};
    cr_assert_eq(ac_workspace_create(m, 1, 1, &c.ws, err), AC_OK);
    ac_stream *s;
    ac_stream_config cfg = {.mode = AC_STREAM_WINDOW, .hop = hop};
    cr_assert_eq(ac_stream_create(m, &cfg, &s, err), AC_OK, "%s", err);
    unsigned seed = 5;
    for (int at = 0; at < n;) {
        int take = random_piece(&seed, n - at);
        cr_assert_eq(ac_stream_push(s, x + at, (size_t)take, on_window, &c, err), AC_OK);
        at += take;
    }
    cr_expect_eq(c.emitted, n / hop);
    cr_expect_leq(c.worst, 1e-6, "window answers differ from a forward pass by %g", c.worst);
    ac_stream_free(s);
    ac_workspace_free(c.ws);
    ac_model_free(m);
    free(x);
}
