/* policy.c - the test-time policy of models/FORMAT.md: a clip of any length cut into
 * windows, windows of many clips packed into batches, probabilities averaged; top-k. */
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t ac_model_windows(const ac_model *m, size_t n, size_t *starts, size_t max_starts)
{
    const size_t w = (size_t)m->info.window, hop = (size_t)m->info.hop;
    const size_t len = n + 2 * (size_t)m->info.pad;
    if (len <= w) {
        if (starts && max_starts) starts[0] = 0;
        return 1;
    }
    size_t count = (len - w + hop - 1) / hop + 1;
    for (size_t i = 0; starts && i < count && i < max_starts; i++)
        starts[i] = (size_t)floor((double)i * (double)(len - w) / (double)(count - 1) + 0.5);
    return count;
}

void ac_model_cut_window(const ac_model *m, const float *samples, size_t n, size_t k, float *dst)
{
    const size_t w = (size_t)m->info.window, pad = (size_t)m->info.pad, len = n + 2 * pad;
    memset(dst, 0, w * sizeof *dst);
    if (len <= w) { /* one window; the padded clip sits in its centre */
        memcpy(dst + (w - len) / 2 + pad, samples, n * sizeof *dst);
        return;
    }
    size_t count = ac_model_windows(m, n, NULL, 0);
    size_t start = (size_t)floor((double)k * (double)(len - w) / (double)(count - 1) + 0.5);
    /* dst[j] = padded[start + j] = samples[start + j - pad] where that is inside the clip */
    size_t j0 = start < pad ? pad - start : 0;
    size_t j1 = start + w > pad + n ? pad + n - start : w;
    if (j1 > j0) memcpy(dst + j0, samples + (start + j0 - pad), (j1 - j0) * sizeof *dst);
}

double ac_model_window_time(const ac_model *m, size_t n, size_t k)
{
    const size_t w = (size_t)m->info.window, len = n + 2 * (size_t)m->info.pad;
    if (len <= w) return 0.0;
    size_t starts_k = 0, count = ac_model_windows(m, n, NULL, 0);
    starts_k = (size_t)floor((double)k * (double)(len - w) / (double)(count - 1) + 0.5);
    return ((double)starts_k - m->info.pad) / m->info.sample_rate;
}

ac_status ac_classify_many(const ac_model *m, ac_workspace *ws, const float *const *samples,
                           const size_t *n, int count, ac_prediction *out, char *err)
{
    const int k = m->info.n_labels, bmax = ws->max_batch;
    const size_t w = (size_t)m->info.window;
    size_t total = 0;
    ac_status st = AC_OK;
    memset(out, 0, (size_t)count * sizeof *out);
    for (int c = 0; c < count; c++) {
        if (n[c] == 0) return ac_fail(err, AC_ERR_AUDIO_EMPTY, "clip %d contains no samples", c);
        total += ac_model_windows(m, n[c], NULL, 0);
    }
    for (int c = 0; c < count && st == AC_OK; c++) {
        ac_prediction *p = &out[c];
        p->n_labels = k;
        p->n_windows = ac_model_windows(m, n[c], NULL, 0);
        p->probs = calloc((size_t)k, sizeof *p->probs);
        p->window_probs = malloc(p->n_windows * (size_t)k * sizeof *p->window_probs);
        p->window_output = malloc(p->n_windows * (size_t)k * sizeof *p->window_output);
        if (!p->probs || !p->window_probs || !p->window_output)
            st = ac_fail(err, AC_ERR_NOMEM, "out of memory for %zu windows", p->n_windows);
    }
    float *batch = ws->batch, *raw = ws->raw;
    int *owner = ws->owner;
    size_t *index = ws->index;
    /* Windows of all clips, in order, packed into batches of up to bmax. */
    int clip = 0;
    size_t win = 0;
    for (size_t done = 0; st == AC_OK && done < total;) {
        int nb = 0;
        while (nb < bmax && clip < count) {
            ac_model_cut_window(m, samples[clip], n[clip], win, batch + (size_t)nb * w);
            owner[nb] = clip, index[nb] = win, nb++;
            if (++win == out[clip].n_windows) clip++, win = 0;
        }
        if ((st = ac_model_forward(m, ws, batch, nb, raw, err))) break;
        for (int b = 0; b < nb; b++) {
            ac_prediction *p = &out[owner[b]];
            memcpy(p->window_output + index[b] * (size_t)k, raw + (size_t)b * k, (size_t)k * sizeof *raw);
        }
        ac_model_probs(m, raw, nb);
        for (int b = 0; b < nb; b++) {
            ac_prediction *p = &out[owner[b]];
            memcpy(p->window_probs + index[b] * (size_t)k, raw + (size_t)b * k, (size_t)k * sizeof *raw);
        }
        done += (size_t)nb;
    }
    for (int c = 0; c < count && st == AC_OK; c++) {
        ac_prediction *p = &out[c];
        for (size_t i = 0; i < p->n_windows; i++)
            for (int j = 0; j < k; j++) p->probs[j] += p->window_probs[i * (size_t)k + (size_t)j];
        for (int j = 0; j < k; j++) p->probs[j] /= (float)p->n_windows;
    }
    if (st != AC_OK)
        for (int c = 0; c < count; c++) ac_prediction_free(&out[c]);
    return st;
}

ac_status ac_classify(const ac_model *m, ac_workspace *ws, const float *samples, size_t n,
                      ac_prediction *out, char *err)
{
    return ac_classify_many(m, ws, &samples, &n, 1, out, err);
}

void ac_prediction_free(ac_prediction *p)
{
    if (!p) return;
    free(p->probs);
    free(p->window_probs);
    free(p->window_output);
    memset(p, 0, sizeof *p);
}

int ac_top_k(const float *probs, int n, int k, int *idx)
{
    if (k > n) k = n;
    for (int i = 0; i < k; i++) {
        int best = -1;
        for (int j = 0; j < n; j++) {
            int taken = 0;
            for (int t = 0; t < i && !taken; t++) taken = idx[t] == j;
            if (!taken && (best < 0 || probs[j] > probs[best])) best = j;
        }
        idx[i] = best;
    }
    return k;
}
