/* filters_render.c - JSON and SVG views of a filterbank (see filters_render.h). */
#include "filters_render.h"

#include "png_raster.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RANGE_DB 40.0 /* colour scale: peak down to 40 dB below it */
/* Colour steps of the heat map's palette image: 0.5 dB each. The heat map is one PNG (a few
 * tens of kB), not a rectangle per filter and frequency (1-2 MB of SVG). */
#define COLOUR_STEPS 80

json_t *ac_filters_json(const char *model_name, const ac_filterbank *fb)
{
    json_t *freqs = json_array(), *filters = json_array();
    for (int k = 0; k < fb->n_freqs; k++) json_array_append_new(freqs, json_real(fb->freqs_hz[k]));
    for (int i = 0; i < fb->n_filters; i++) {
        const ac_filter *f = &fb->filters[i];
        json_t *resp = json_array();
        for (int k = 0; k < fb->n_freqs; k++) json_array_append_new(resp, json_real(f->response_db[k]));
        json_array_append_new(filters, json_pack("{s:i,s:b,s:f,s:f,s:f,s:f,s:f,s:o}", "index", f->index,
                                                 "dead", f->dead, "centre_hz", f->centre_hz, "low_hz",
                                                 f->low_hz, "high_hz", f->high_hz, "bandwidth_hz",
                                                 f->bandwidth_hz, "peak_db", f->peak_db, "response_db", resp));
    }
    json_t *summary = json_pack("{s:i,s:i,s:f,s:f,s:[f,f],s:f}", "filters", fb->n_filters, "dead", fb->n_dead,
                                "mel_correlation", fb->mel_correlation, "linear_correlation",
                                fb->linear_correlation, "coverage_hz", fb->coverage_low_hz,
                                fb->coverage_high_hz, "coverage_fraction", fb->coverage_fraction);
    return json_pack("{s:s,s:s,s:s,s:i,s:i,s:o,s:o,s:o}", "model", model_name, "layer", fb->layer, "mode",
                     ac_filters_mode_name(fb->mode), "sample_rate", fb->sample_rate, "n_freqs", fb->n_freqs,
                     "freqs_hz", freqs, "filters", filters, "summary", summary);
}

/* A growable string. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...)
{
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        /* b->s is NULL until the first grow: NULL + 0 is undefined behaviour (UBSan). */
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) { b->failed = 1; return; }
        if ((size_t)n < b->cap - b->len) { b->len += (size_t)n; return; }
        size_t ncap = (b->cap + (size_t)n + 1) * 2;
        char *p = realloc(b->s, ncap);
        if (!p) { b->failed = 1; return; }
        b->s = p, b->cap = ncap;
    }
}

/* Viridis, 5 stops, t in [0, 1]. */
static void colour_rgb(double t, unsigned char rgb[3])
{
    static const int stops[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double x = t * 4;
    int i = x >= 4 ? 3 : (int)x;
    double u = x - i;
    for (int c = 0; c < 3; c++) rgb[c] = (unsigned char)lround(stops[i][c] + u * (stops[i + 1][c] - stops[i][c]));
}

static void colour(double t, char out[8])
{
    unsigned char rgb[3];
    colour_rgb(t, rgb);
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

/* Palette index of the response of f at frequency hz (linear interpolation between the
 * analysed frequencies k0..n-1; they ascend). */
static unsigned char pixel(const ac_filterbank *fb, const ac_filter *f, int k0, double hz)
{
    if (f->dead) return 0;
    int lo = k0, hi = fb->n_freqs - 1;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (fb->freqs_hz[mid] <= hz) lo = mid;
        else hi = mid;
    }
    double span = fb->freqs_hz[hi] - fb->freqs_hz[lo];
    double u = span > 0 ? (hz - fb->freqs_hz[lo]) / span : 0;
    u = u < 0 ? 0 : u > 1 ? 1 : u;
    double db = f->response_db[lo] + u * (f->response_db[hi] - f->response_db[lo]);
    double t = 1 + (db - f->peak_db) / RANGE_DB;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return (unsigned char)lround(t * COLOUR_STEPS);
}

/* The heat map as a PNG data: URI, w x h pixels (see ac_filters_svg). */
static char *heatmap_png(const ac_filterbank *fb, int k0, int w, int h, double flo, double lspan)
{
    int rows = fb->n_filters ? fb->n_filters : 1;
    unsigned char pal[COLOUR_STEPS + 1][3];
    for (int i = 0; i <= COLOUR_STEPS; i++) colour_rgb((double)i / COLOUR_STEPS, pal[i]);
    unsigned char *px = calloc((size_t)w * (size_t)h, 1), *line = malloc((size_t)w);
    char *uri = NULL;
    if (px && line) {
        int last = -1;
        for (int y = 0; y < h; y++) {
            int r = rows - 1 - (int)((y + 0.5) * rows / h); /* rank 0 at the bottom */
            if (r != last && fb->n_filters)
                for (int x = 0; x < w; x++)
                    line[x] = pixel(fb, &fb->filters[r], k0, pow(10, log10(flo) + (x + 0.5) / w * lspan));
            last = r;
            memcpy(px + (size_t)y * (size_t)w, line, (size_t)w);
        }
        uri = ac_png_data_uri(px, w, h, (const unsigned char(*)[3])pal, COLOUR_STEPS + 1, NULL);
    }
    free(px);
    free(line);
    return uri;
}

/* Escapes &, <, > and quotes for text inside the SVG. */
static void put_text(sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': put(b, "&amp;"); break;
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '"': put(b, "&quot;"); break;
        default: put(b, "%c", *s);
        }
    }
}

/* Tick frequencies on a log axis from lo to hi: 1x, 2x and 5x each decade. Returns count. */
static int log_ticks(double lo, double hi, double *out, int max)
{
    int n = 0;
    for (double dec = pow(10, floor(log10(lo))); dec <= hi; dec *= 10)
        for (int m = 1; m <= 5 && n < max; m += (m == 1 ? 1 : 3))
            if (dec * m >= lo && dec * m <= hi) out[n++] = dec * m;
    return n;
}

static void freq_label(double hz, char *buf, size_t len)
{
    if (hz >= 1000) snprintf(buf, len, "%gk", hz / 1000);
    else snprintf(buf, len, "%g", hz);
}

char *ac_filters_svg(const char *model_name, const ac_filterbank *fb, size_t *len)
{
    sbuf b = {0};
    const int W = 960, H = 560, top = 60, mh = 420;   /* plot heights */
    const int hx = 70, hw = 540;                      /* heat map x, width */
    const int sx = 720, sw = 210;                     /* scatter x, width */
    const int n = fb->n_freqs, rows = fb->n_filters ? fb->n_filters : 1;
    int k0 = fb->freqs_hz[0] > 0 ? 0 : 1;             /* a log axis cannot show 0 Hz */
    double flo = fb->freqs_hz[k0], fhi = fb->freqs_hz[n - 1];
    double lflo = log10(flo), lspan = log10(fhi) - lflo;
#define FX(f) (hx + (log10(f) - lflo) / lspan * hw)
    put(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    put(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    put(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n<text x=\"%d\" y=\"24\" font-size=\"16\">", W, H, hx);
    put_text(&b, model_name);
    put(&b, " / %s: %s response of %d filters (sorted by centre frequency)</text>\n", fb->layer,
        fb->mode == AC_FILTERS_KERNEL ? "kernel" : "sine-probe", fb->n_filters);
    put(&b, "<text x=\"%d\" y=\"44\" fill=\"#444\">mel correlation r = %.3f, linear r = %.3f, "
            "-3 dB coverage %.0f-%.0f Hz (%.0f%% of analysed frequencies)</text>\n",
        hx, fb->mel_correlation, fb->linear_correlation, fb->coverage_low_hz, fb->coverage_high_hz,
        100 * fb->coverage_fraction);

    /* heat map: one raster image, one pixel column per screen pixel of the log axis (the
     * response interpolated between analysed frequencies), lowest centre frequency at the
     * bottom; over it one transparent <g class="filter"> per row, with a tooltip */
    double rh = (double)mh / rows;
    char *img = heatmap_png(fb, k0, hw, mh, flo, lspan);
    if (!img) b.failed = 1;
    put(&b, "<image x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" preserveAspectRatio=\"none\" "
            "xlink:href=\"%s\"/>\n<g id=\"heatmap\">\n", hx, top, hw, mh, img ? img : "");
    free(img);
    for (int r = 0; r < fb->n_filters; r++) {
        const ac_filter *f = &fb->filters[r];
        put(&b, "<g class=\"filter\" data-index=\"%d\" data-centre-hz=\"%.1f\"><rect x=\"%d\" y=\"%.2f\" "
                "width=\"%d\" height=\"%.2f\" fill=\"none\" pointer-events=\"all\"><title>filter %d: ",
            f->index, f->centre_hz, hx, top + mh - (r + 1) * rh, hw, rh, f->index);
        if (f->dead) put(&b, "dead");
        else put(&b, "centre %.0f Hz, -3 dB band %.0f-%.0f Hz, peak %.1f dB", f->centre_hz, f->low_hz,
                 f->high_hz, f->peak_db);
        put(&b, "</title></rect></g>\n");
    }
    put(&b, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n", hx, top,
        hw, mh);
    /* log frequency axis: decades and 2x, 5x marks inside the range */
    double ticks[32];
    int nticks = log_ticks(flo, fhi, ticks, 32);
    for (int t = 0; t < nticks; t++) {
        char lab[16];
        freq_label(ticks[t], lab, sizeof lab);
        put(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\"/>"
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
            FX(ticks[t]), top + mh, FX(ticks[t]), top + mh + 5, FX(ticks[t]), top + mh + 18, lab);
    }
    put(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">frequency (Hz, log scale)</text>\n", hx + hw / 2,
        top + mh + 36);
    put(&b, "<text transform=\"translate(%d %d) rotate(-90)\" text-anchor=\"middle\">filter (sorted by centre "
            "frequency)</text>\n", hx - 40, top + mh / 2);
    /* filter axis: rank 1 at the bottom, a tick every `every` filters and at the last */
    int every = rows <= 16 ? 2 : rows <= 40 ? 5 : rows <= 80 ? 8 : 16;
    for (int r = 1; r <= fb->n_filters; r++) {
        if (r != 1 && r % every && r != fb->n_filters) continue;
        if (r != 1 && r != fb->n_filters && fb->n_filters - r < every / 2) continue; /* no crowding */
        double yc = top + mh - (r - 0.5) * rh;
        put(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n",
            hx - 4, yc, hx, yc, hx - 6, yc + 4, r);
    }
    /* colour scale */
    int cx = hx + hw + 20;
    for (int i = 0; i < 40; i++) {
        char c[8];
        colour(1 - i / 39.0, c);
        put(&b, "<rect x=\"%d\" y=\"%.1f\" width=\"14\" height=\"%.2f\" fill=\"%s\"/>", cx,
            top + i * mh / 40.0, mh / 40.0 + 0.3, c);
    }
    put(&b, "\n<text x=\"%d\" y=\"%d\">0 dB</text><text x=\"%d\" y=\"%d\">-%g dB</text>"
            "<text x=\"%d\" y=\"%d\" font-size=\"10\">re. peak</text>\n",
        cx + 18, top + 10, cx + 18, top + mh, RANGE_DB, cx + 18, top + mh + 14);

    /* centre frequencies vs rank, with the best-fitting mel-spaced curve */
    int live = fb->n_filters - fb->n_dead;
#define SY(f) (top + mh - (log10(f) - lflo) / lspan * mh)
    put(&b, "<g id=\"centres\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n",
        sx, top, sw, mh);
    /* The mel-spaced bank that fits the learned centres best (least squares of mel against
     * rank): what "the centres follow a mel scale" (mel_correlation) compares them with. A
     * bank spread over the whole analysed range would run far above centres that cover only
     * part of it, and say nothing about their spacing. */
    double mr = 0, mm = 0, srr = 0, srm = 0;
    for (int i = 0; i < live; i++) mr += i, mm += ac_hz_to_mel(fb->filters[i].centre_hz);
    if (live > 0) mr /= live, mm /= live;
    for (int i = 0; i < live; i++) {
        double dm = ac_hz_to_mel(fb->filters[i].centre_hz) - mm;
        srr += (i - mr) * (i - mr), srm += (i - mr) * dm;
    }
    double slope = srr > 0 ? srm / srr : 0;
    put(&b, "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"");
    for (int i = 0; i < live; i++) {
        double f = ac_mel_to_hz(mm + slope * (i - mr));
        f = f < flo ? flo : f > fhi ? fhi : f;
        put(&b, "%.1f,%.1f ", sx + (i + 0.5) * sw / live, SY(f));
    }
    put(&b, "\"/>\n");
    for (int t = 0; t < nticks; t++) { /* the same ticks on the vertical axis */
        char lab[16];
        freq_label(ticks[t], lab, sizeof lab);
        put(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
            sx - 5, SY(ticks[t]), sx, SY(ticks[t]), sx - 7, SY(ticks[t]) + 4, lab);
    }
    for (int i = 0; i < live; i++) {
        double f = fb->filters[i].centre_hz < flo ? flo : fb->filters[i].centre_hz;
        put(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"#1f77b4\"/>", sx + (i + 0.5) * sw / live, SY(f));
    }
    put(&b, "\n</g>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">filter rank</text>\n", sx + sw / 2, top + mh + 18);
    put(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">centre frequency (log)</text>\n", sx + sw / 2, top - 6);
    put(&b, "<text x=\"%d\" y=\"%d\" fill=\"#1f77b4\">&#9679; learned</text><text x=\"%d\" y=\"%d\" "
            "fill=\"#d62728\">&#8212; best mel-spaced fit</text>\n", sx, top + mh + 36, sx + 70, top + mh + 36);
    put(&b, "</svg>\n");
#undef FX
#undef SY
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    if (len) *len = b.len;
    return b.s;
}
