/* test_golden.c - C outputs equal PyTorch's for every fixture in tests/golden/.
 *
 * A fixture (*.golden.safetensors, written by models/train/export.py write_golden) names a
 * model file and holds, per clip: the audio, the windows the test-time policy cuts, the
 * network's raw outputs (PyTorch, float64) and the averaged probabilities. Checked: the
 * windows exactly, the outputs to 1e-4 max abs difference, the probabilities to 1e-5, with
 * two workspace shapes (batch 1 / 1 thread, batch 4 / 2 threads).
 *
 * A model file that asks for reduced precision (metadata "compute": bf16 / int8) is checked
 * twice: in FP32 (the hand-written kernels off: the same tolerances, so the graph and weights
 * are exactly PyTorch's), and as it runs where the CPU has BF16/VNNI, against the same
 * PyTorch outputs with the bounds of reduced precision and the same top-1 answer; and once
 * more as its FP32 copy (metadata "compute" rewritten, as set_compute.py does) with the
 * hand-written kernels on, at the FP32 tolerances: the path of an FP32 file on this CPU
 * (EnvNet's conv1 -> conv2 chain, ac_conv2d_chain, runs only there). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "ops.h"
#include "testutil.h"
#include "weights.h"

#define OUTPUT_TOL 1e-4
#define PROBS_TOL 1e-5
/* bfloat16 inputs and weights (8 significant bits) and 8-bit inputs of I8 layers: on the
 * 1,600 ESC-50 clips the largest probability change was 0.0042 (bench/README.md) */
#define REDUCED_PROBS_TOL 2e-2
#define REDUCED_OUTPUT_REL 5e-2 /* of the largest |output| */

static int argmax(const float *x, int n)
{
    int k = 0;
    for (int i = 1; i < n; i++) k = x[i] > x[k] ? i : k;
    return k;
}

/* Loads the model file at path with its metadata "compute" set to "fp32" (the tensors keep
 * their bytes; the header is padded to 8 bytes, as set_compute.py writes it). */
static ac_model *load_as_fp32(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *raw = malloc((size_t)len);
    cr_assert(raw && fread(raw, 1, (size_t)len, f) == (size_t)len, "%s: cannot read", path);
    fclose(f);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | raw[i];
    json_error_t jerr;
    json_t *header = json_loadb((const char *)raw + 8, (size_t)n, 0, &jerr);
    cr_assert(header != NULL, "%s: header: %s", path, jerr.text);
    json_object_set_new(json_object_get(header, "__metadata__"), "compute", json_string("fp32"));
    char *text = json_dumps(header, JSON_COMPACT);
    const size_t tl = strlen(text), padded = (tl + 7) / 8 * 8, data = (size_t)len - 8 - (size_t)n;
    unsigned char *out = malloc(8 + padded + data);
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(out + 8, text, tl);
    memset(out + 8 + tl, ' ', padded - tl);
    memcpy(out + 8 + padded, raw + 8 + n, data);
    char err[AC_ERR_LEN];
    ac_model *m;
    cr_assert_eq(ac_model_load_memory(out, 8 + padded + data, path, &m, err), AC_OK, "%s: %s", path, err);
    cr_assert_str_eq(ac_model_get_info(m)->compute, "fp32");
    free(text), free(out), free(raw);
    json_decref(header);
    return m;
}

/* Checks one fixture with the kernels of now (reduced: the file's reduced precision is
 * active; fp32_copy: run the model file's FP32 copy); prints the max output difference. */
static void check_fixture_as(const char *fixture_path, int reduced, int fp32_copy)
{
    char err[AC_ERR_LEN];
    ac_weights *fx;
    cr_assert_eq(ac_weights_open(fixture_path, &fx, err), AC_OK, "%s: %s", fixture_path, err);
    const char *model_rel = ac_weights_meta(fx, "model");
    const char *nclips = ac_weights_meta(fx, "clips");
    cr_assert(model_rel && nclips, "%s: metadata model/clips missing", fixture_path);
    ac_model *m;
    if (fp32_copy)
        m = load_as_fp32(tu_src_path(model_rel));
    else
        cr_assert_eq(ac_model_load(tu_src_path(model_rel), &m, err), AC_OK, "%s: %s", model_rel, err);
    const ac_model_info *info = ac_model_get_info(m);
    ac_workspace *ws_small, *ws_big;
    cr_assert_eq(ac_workspace_create(m, 1, 1, &ws_small, err), AC_OK, "%s", err);
    cr_assert_eq(ac_workspace_create(m, 4, 2, &ws_big, err), AC_OK, "%s", err);
    double worst = 0;
    for (int c = 0; c < atoi(nclips); c++) {
        char name[64];
        int64_t n_audio, n_win, n_out, n_probs;
        snprintf(name, sizeof name, "clip%d.audio", c);
        float *audio = tu_fixture_f32(fx, fixture_path, name, &n_audio);
        snprintf(name, sizeof name, "clip%d.windows", c);
        float *windows = tu_fixture_f32(fx, fixture_path, name, &n_win);
        snprintf(name, sizeof name, "clip%d.output", c);
        float *expect = tu_fixture_f32(fx, fixture_path, name, &n_out);
        snprintf(name, sizeof name, "clip%d.probs", c);
        float *probs = tu_fixture_f32(fx, fixture_path, name, &n_probs);

        size_t nw = ac_model_windows(m, (size_t)n_audio, NULL, 0);
        cr_assert_eq((int64_t)nw * info->window, n_win, "%s clip %d: window count", model_rel, c);
        float *cut = malloc((size_t)info->window * sizeof *cut);
        for (size_t k = 0; k < nw; k++) {
            ac_model_cut_window(m, audio, (size_t)n_audio, k, cut);
            cr_assert_eq(memcmp(cut, windows + k * (size_t)info->window,
                                (size_t)info->window * sizeof *cut), 0,
                         "%s clip %d: window %zu differs from PyTorch's", model_rel, c, k);
        }
        free(cut);
        ac_workspace *wss[2] = {ws_small, ws_big};
        for (int v = 0; v < 2; v++) {
            ac_prediction p;
            cr_assert_eq(ac_classify(m, wss[v], audio, (size_t)n_audio, &p, err), AC_OK, "%s", err);
            double d = tu_max_abs_diff(p.window_output, expect, (size_t)n_out);
            double dp = tu_max_abs_diff(p.probs, probs, (size_t)n_probs);
            if (reduced) {
                double top = 0;
                for (int64_t i = 0; i < n_out; i++) top = fmax(top, fabs(expect[i]));
                cr_expect_leq(d, REDUCED_OUTPUT_REL * top, "%s clip %d (%s): output max diff %g of %g", model_rel,
                              c, info->compute, d, top);
                cr_expect_leq(dp, REDUCED_PROBS_TOL, "%s clip %d (%s): probs max diff %g", model_rel, c,
                              info->compute, dp);
                cr_expect_eq(argmax(p.probs, (int)n_probs), argmax(probs, (int)n_probs),
                             "%s clip %d (%s): another top-1 answer", model_rel, c, info->compute);
            } else {
                cr_expect_leq(d, OUTPUT_TOL, "%s clip %d: output max diff %g", model_rel, c, d);
                cr_expect_leq(dp, PROBS_TOL, "%s clip %d: probs max diff %g", model_rel, c, dp);
            }
            if (d > worst) worst = d;
            ac_prediction_free(&p);
        }
        free(audio), free(windows), free(expect), free(probs);
    }
    cr_log_info("%s: %s clips vs PyTorch, max |output diff| = %.3g", model_rel, nclips, worst);
    printf("golden %-40s max |C - PyTorch| = %.3g%s%s%s\n", model_rel, worst, reduced ? " in " : "",
           reduced ? info->compute : "", fp32_copy ? " (its FP32 copy, own kernels)" : "");
    ac_workspace_free(ws_small);
    ac_workspace_free(ws_big);
    ac_model_free(m);
    ac_weights_close(fx);
}

/* FP32 first (the hand-written kernels off); then with the kernels of now: where the file's
 * reduced precision runs on this CPU, as it runs, and as its FP32 copy. */
static void check_fixture(const char *fixture_path)
{
    int prev = ac_ops_set_direct(0);
    check_fixture_as(fixture_path, 0, 0);
    ac_ops_set_direct(prev);
    char err[AC_ERR_LEN];
    ac_weights *fx;
    cr_assert_eq(ac_weights_open(fixture_path, &fx, err), AC_OK, "%s", err);
    ac_model *m;
    cr_assert_eq(ac_model_load(tu_src_path(ac_weights_meta(fx, "model")), &m, err), AC_OK, "%s", err);
    const ac_model_info *info = ac_model_get_info(m);
    const int reduced = info->bf16_active || info->int8_active;
    ac_model_free(m);
    ac_weights_close(fx);
    check_fixture_as(fixture_path, reduced, 0);
    if (reduced) check_fixture_as(fixture_path, 0, 1);
}

Test(golden, every_fixture_matches_pytorch)
{
    int count = tu_for_each_file(tu_src_path("tests/golden"), ".golden.safetensors", check_fixture);
    cr_assert_geq(count, 2, "expected at least the two op-zoo fixtures, found %d", count);
}

/* Every shipped model must be pinned by a fixture. */
Test(golden, shipped_models_have_fixtures)
{
    const char *names[] = {"m5-speech", "envnet-esc50", "kws-speech"};
    for (int i = 0; i < 3; i++) {
        char model[256], fixture[256];
        snprintf(model, sizeof model, "models/%s.safetensors", names[i]);
        snprintf(fixture, sizeof fixture, "tests/golden/%s.golden.safetensors", names[i]);
        FILE *f = fopen(tu_src_path(model), "rb");
        if (!f) continue;
        fclose(f);
        FILE *g = fopen(tu_src_path(fixture), "rb");
        cr_expect(g != NULL, "%s is shipped but %s is missing", model, fixture);
        if (g) fclose(g);
    }
}
