/* filters.c - kernel DFT and sine-probe responses of conv filters, band edges, mel fit. */
#include "filters.h"

#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_AMPLITUDE 0.5
#define PROBE_LOW_HZ 10.0

const char *ac_filters_mode_name(ac_filters_mode m) { return m == AC_FILTERS_KERNEL ? "kernel" : "probe"; }

int ac_filters_mode_parse(const char *s)
{
    if (s && !strcmp(s, "kernel")) return AC_FILTERS_KERNEL;
    if (s && !strcmp(s, "probe")) return AC_FILTERS_PROBE;
    return -1;
}

double ac_hz_to_mel(double hz) { return 2595.0 * log10(1.0 + hz / 700.0); }
double ac_mel_to_hz(double mel) { return 700.0 * (pow(10.0, mel / 2595.0) - 1.0); }

static double to_db(double mag)
{
    double db = mag > 0 ? 20.0 * log10(mag) : AC_FILTERS_FLOOR_DB;
    return db < AC_FILTERS_FLOOR_DB ? AC_FILTERS_FLOOR_DB : db;
}

static const ac_node *step_node(const ac_model *m, int i)
{
    const ac_graph *g = ac_model_graph(m);
    return &g->nodes[g->steps[i].node];
}

static ac_shape step_input(const ac_model *m, int i)
{
    const ac_graph *g = ac_model_graph(m);
    const ac_node *nd = step_node(m, i);
    return nd->in[0] == AC_GRAPH_INPUT ? g->input : g->nodes[nd->in[0]].out;
}

/* Finds the conv layer `name` (NULL/"" = first conv). Returns its index or -1. */
static int find_conv(const ac_model *m, const char *name, char *err)
{
    char names[256] = "";
    for (int i = 0; i < ac_model_layer_count(m); i++) {
        const ac_node *L = step_node(m, i);
        if (L->op != AC_OP_CONV) continue;
        if (!name || !name[0] || !strcmp(L->name, name)) return i;
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? ", " : "", L->name);
    }
    ac_fail(err, AC_ERR_NOT_FOUND, "no conv layer \"%s\" (conv layers: %s)", name ? name : "", names);
    return -1;
}

/* -3 dB edges of filter f around its peak on the frequency grid, linearly interpolated. */
static void band_edges(const double *freqs, int n, ac_filter *f, int peak)
{
    double thr = f->peak_db - 3.0;
    int lo = peak, hi = peak;
    while (lo > 0 && f->response_db[lo - 1] >= thr) lo--;
    while (hi < n - 1 && f->response_db[hi + 1] >= thr) hi++;
    f->low_hz = freqs[lo];
    f->high_hz = freqs[hi];
    if (lo > 0) { /* crossing between lo-1 (below) and lo (above) */
        double a = f->response_db[lo - 1], b = f->response_db[lo];
        f->low_hz = freqs[lo - 1] + (freqs[lo] - freqs[lo - 1]) * (thr - a) / (b - a);
    }
    if (hi < n - 1) {
        double a = f->response_db[hi], b = f->response_db[hi + 1];
        f->high_hz = freqs[hi] + (freqs[hi + 1] - freqs[hi]) * (a - thr) / (a - b);
    }
    f->bandwidth_hz = f->high_hz - f->low_hz;
}

static double pearson(const double *x, const double *y, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n, my /= n;
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0.0;
}

static int cmp_filter(const void *a, const void *b)
{
    const ac_filter *x = a, *y = b;
    if (x->dead != y->dead) return x->dead - y->dead;
    if (x->centre_hz != y->centre_hz) return x->centre_hz < y->centre_hz ? -1 : 1;
    return x->index - y->index;
}

/* Fills per-filter statistics from magnitudes mag[filter][freq] and sorts. */
static void summarise(ac_filterbank *fb, const double *mag)
{
    const int n = fb->n_freqs;
    for (int c = 0; c < fb->n_filters; c++) {
        ac_filter *f = &fb->filters[c];
        int peak = 0;
        double mx = 0;
        for (int k = 0; k < n; k++) {
            double v = mag[(size_t)c * n + k];
            f->response_db[k] = (float)to_db(v);
            if (v > mx) mx = v, peak = k;
        }
        f->dead = !(mx > 0);
        f->peak_db = to_db(mx);
        f->centre_hz = fb->freqs_hz[peak];
        if (f->dead) f->low_hz = f->high_hz = f->bandwidth_hz = 0;
        else band_edges(fb->freqs_hz, n, f, peak);
    }
    qsort(fb->filters, (size_t)fb->n_filters, sizeof *fb->filters, cmp_filter);

    int live = 0;
    for (int c = 0; c < fb->n_filters; c++) live += !fb->filters[c].dead;
    fb->n_dead = fb->n_filters - live;
    fb->coverage_low_hz = live ? 1e30 : 0;
    fb->coverage_high_hz = 0;
    double *got = malloc(sizeof(double) * (size_t)(live ? live : 1) * 3);
    if (!got) return;
    double *mel_want = got + live, *lin_want = got + 2 * live;
    double lo = fb->freqs_hz[0], hi = fb->freqs_hz[n - 1];
    for (int i = 0; i < live; i++) {
        const ac_filter *f = &fb->filters[i];
        double q = (i + 0.5) / live;
        got[i] = f->centre_hz;
        mel_want[i] = ac_mel_to_hz(ac_hz_to_mel(lo) + q * (ac_hz_to_mel(hi) - ac_hz_to_mel(lo)));
        lin_want[i] = lo + q * (hi - lo);
        if (f->low_hz < fb->coverage_low_hz) fb->coverage_low_hz = f->low_hz;
        if (f->high_hz > fb->coverage_high_hz) fb->coverage_high_hz = f->high_hz;
    }
    fb->mel_correlation = live > 1 ? pearson(got, mel_want, live) : 0;
    fb->linear_correlation = live > 1 ? pearson(got, lin_want, live) : 0;
    free(got);
    int covered = 0;
    for (int k = 0; k < n; k++) {
        int in = 0;
        for (int i = 0; i < live && !in; i++)
            in = fb->freqs_hz[k] >= fb->filters[i].low_hz && fb->freqs_hz[k] <= fb->filters[i].high_hz;
        covered += in;
    }
    fb->coverage_fraction = (double)covered / n;
}

/* |sum_t w[t] e^{-i 2 pi f t / fs}| for each channel's 1-D kernel. */
static ac_status kernel_response(const ac_node *L, ac_shape in, ac_filterbank *fb, double *mag,
                                 char *err)
{
    const ac_conv_params *p = &L->conv;
    if (p->cin / p->groups != 1 || p->kh != 1 || in.c != 1)
        return ac_fail(err, AC_ERR_INVALID_ARG,
                       "mode=kernel needs a layer that sees the raw waveform; %s has %d input channels "
                       "(use mode=probe)", L->name, p->cin);
    const int taps = p->kw, n = fb->n_freqs;
    for (int k = 0; k < n; k++) fb->freqs_hz[k] = (double)k * fb->sample_rate / 2.0 / (n - 1);
    for (int c = 0; c < p->cout; c++) {
        const float *w = L->weight + (size_t)c * taps;
        for (int k = 0; k < n; k++) {
            double om = 2 * M_PI * fb->freqs_hz[k] / fb->sample_rate * p->dw, re = 0, im = 0;
            for (int t = 0; t < taps; t++) re += w[t] * cos(om * t), im -= w[t] * sin(om * t);
            mag[(size_t)c * n + k] = sqrt(re * re + im * im);
        }
    }
    return AC_OK;
}

/* Mean output per channel of the network up to layer li for sine tones. */
static ac_status probe_response(const ac_model *m, int li, ac_filterbank *fb, double *mag, int threads,
                                char *err)
{
    const ac_model_info *info = ac_model_get_info(m);
    const ac_node *L = step_node(m, li);
    const int n = fb->n_freqs, win = info->window, batch = 8;
    const double nyq = info->sample_rate / 2.0, top = nyq * 0.98;
    for (int k = 0; k < n; k++) fb->freqs_hz[k] = PROBE_LOW_HZ * pow(top / PROBE_LOW_HZ, (double)k / (n - 1));
    const size_t out_item = ac_shape_numel(L->conv_out), per_ch = (size_t)L->conv_out.h * L->conv_out.w;
    ac_workspace *ws = NULL;
    float *x = malloc(sizeof(float) * (size_t)batch * win);
    float *y = malloc(sizeof(float) * (size_t)batch * out_item);
    ac_status st = (!x || !y) ? ac_fail(err, AC_ERR_NOMEM, "out of memory for the probe")
                              : ac_workspace_create_probe(m, batch, threads, &ws, err);
    for (int k0 = 0; st == AC_OK && k0 < n; k0 += batch) {
        int nb = n - k0 < batch ? n - k0 : batch;
        for (int b = 0; b < nb; b++) {
            double om = 2 * M_PI * fb->freqs_hz[k0 + b] / info->sample_rate;
            for (int t = 0; t < win; t++) x[(size_t)b * win + t] = (float)(PROBE_AMPLITUDE * sin(om * t));
        }
        st = ac_model_forward_conv_output(m, ws, x, nb, li, y, err);
        for (int b = 0; st == AC_OK && b < nb; b++)
            for (int c = 0; c < L->conv_out.c; c++) {
                const float *ch = y + (size_t)b * out_item + (size_t)c * per_ch;
                double s = 0;
                for (size_t i = 0; i < per_ch; i++) s += fabs(ch[i]);
                mag[(size_t)c * n + k0 + b] = s / (double)per_ch / PROBE_AMPLITUDE;
            }
    }
    ac_workspace_free(ws);
    free(x);
    free(y);
    return st;
}

ac_status ac_filters_compute(const ac_model *m, const char *layer, ac_filters_mode mode, int n_freqs,
                             int threads, ac_filterbank **out, char *err)
{
    *out = NULL;
    if (n_freqs < AC_FILTERS_MIN_FREQS || n_freqs > AC_FILTERS_MAX_FREQS)
        return ac_fail(err, AC_ERR_INVALID_ARG, "number of frequencies %d must be in %d..%d", n_freqs,
                       AC_FILTERS_MIN_FREQS, AC_FILTERS_MAX_FREQS);
    if (mode != AC_FILTERS_KERNEL && mode != AC_FILTERS_PROBE)
        return ac_fail(err, AC_ERR_INVALID_ARG, "unknown filter analysis mode %d", (int)mode);
    int li = find_conv(m, layer, err);
    if (li < 0) return AC_ERR_NOT_FOUND;
    const ac_node *L = step_node(m, li);
    ac_filterbank *fb = calloc(1, sizeof *fb);
    if (!fb) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    snprintf(fb->layer, sizeof fb->layer, "%s", L->name);
    fb->layer_index = li;
    fb->mode = mode;
    fb->sample_rate = ac_model_get_info(m)->sample_rate;
    fb->n_freqs = n_freqs;
    fb->n_filters = L->conv_out.c;
    fb->freqs_hz = calloc((size_t)n_freqs, sizeof *fb->freqs_hz);
    fb->filters = calloc((size_t)fb->n_filters, sizeof *fb->filters);
    double *mag = calloc((size_t)fb->n_filters * n_freqs, sizeof *mag);
    ac_status st = AC_OK;
    if (!fb->freqs_hz || !fb->filters || !mag) st = ac_fail(err, AC_ERR_NOMEM, "out of memory");
    for (int c = 0; st == AC_OK && c < fb->n_filters; c++) {
        fb->filters[c].index = c;
        if (!(fb->filters[c].response_db = calloc((size_t)n_freqs, sizeof(float))))
            st = ac_fail(err, AC_ERR_NOMEM, "out of memory");
    }
    if (st == AC_OK)
        st = mode == AC_FILTERS_KERNEL ? kernel_response(L, step_input(m, li), fb, mag, err)
                                       : probe_response(m, li, fb, mag, threads, err);
    if (st == AC_OK) summarise(fb, mag);
    free(mag);
    if (st != AC_OK) {
        ac_filterbank_free(fb);
        return st;
    }
    *out = fb;
    return AC_OK;
}

void ac_filterbank_free(ac_filterbank *fb)
{
    if (!fb) return;
    for (int c = 0; fb->filters && c < fb->n_filters; c++) free(fb->filters[c].response_db);
    free(fb->filters);
    free(fb->freqs_hz);
    free(fb);
}
