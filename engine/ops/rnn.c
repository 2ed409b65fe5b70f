/* rnn.c - GRU and LSTM layers, batch-first, as nn.GRU / nn.LSTM (ops_graph.h). */
#include "ops_graph.h"

#include "blas.h"
#include "ops_team.h"

#include <math.h>
#include <string.h>

/* Rows (item x time step) of one input-projection SGEMM task at least: fewer would leave
 * OpenBLAS's kernels mostly in their edge cases. */
#define AC_RNN_MIN_ROWS 64

static int gates(const ac_rnn_params *p) { return p->cell == AC_RNN_GRU ? 3 : 4; }

/* Scratch layout, all floats:
 *   proj [dirs][n * T][G * H]   input projections of the layer being computed (+ b_ih)
 *   h    [dirs][n][H]           hidden state
 *   c    [dirs][n][H]           cell state (LSTM; present but unused for GRU)
 *   gh   [dirs][n][G * H]       W_hh . h of the current step
 * Layers run one after the other and reuse all of it; the output of layer l is written to y
 * and is the input of layer l + 1 (its projections are computed before y is overwritten). */
size_t ac_rnn_scratch(const ac_rnn_params *p, int n, int T)
{
    const size_t gh = (size_t)gates(p) * p->hidden, dirs = (size_t)p->dirs;
    return dirs * (size_t)n * ((size_t)T * gh + 2 * (size_t)p->hidden + gh);
}

static inline float sigmoid(float v) { return 1.f / (1.f + expf(-v)); }

/* One time step of nb items after gh = h . W_hh^T: the gates and the new state, as PyTorch:
 *   GRU:  r = s(x_r + g_r), z = s(x_z + g_z), m = tanh(x_n + r * g_n), h = (1 - z) m + z h
 *   LSTM: i, f, o = s(x_. + g_.), g = tanh(x_g + g_g), c = f c + i g, h = o tanh(c)
 * where x_. are the input projections (with b_ih) and g_. = (W_hh h + b_hh) of each gate.
 * xp: item i's projections at xp + i * xp_stride; out: h of item i at out + i * out_stride. */
static void rnn_gates(ac_rnn_cell cell, int nb, int H, const float *xp, size_t xp_stride,
                      const float *gh, const float *b_hh, float *h, float *c, float *out,
                      size_t out_stride)
{
    const int G = cell == AC_RNN_GRU ? 3 : 4;
    for (int i = 0; i < nb; i++) {
        const float *x = xp + (size_t)i * xp_stride, *g = gh + (size_t)i * G * H;
        float *hi = h + (size_t)i * H, *o = out + (size_t)i * out_stride;
        for (int j = 0; j < H; j++) {
            float a[4];
            for (int k = 0; k < G; k++) a[k] = g[k * H + j] + (b_hh ? b_hh[k * H + j] : 0.f);
            if (cell == AC_RNN_GRU) {
                const float r = sigmoid(x[j] + a[0]), z = sigmoid(x[H + j] + a[1]);
                const float m = tanhf(x[2 * H + j] + r * a[2]);
                hi[j] = (1.f - z) * m + z * hi[j];
            } else {
                float *ci = c + (size_t)i * H;
                const float in = sigmoid(x[j] + a[0]), f = sigmoid(x[H + j] + a[1]);
                const float gg = tanhf(x[2 * H + j] + a[2]), og = sigmoid(x[3 * H + j] + a[3]);
                ci[j] = f * ci[j] + in * gg;
                hi[j] = og * tanhf(ci[j]);
            }
            o[j] = hi[j];
        }
    }
}

void ac_rnn(const ac_rnn_params *p, const float *x, int n, int T, float *y, float *scratch,
            int threads)
{
    ac_rnn_carry(p, x, n, T, y, scratch, NULL, threads);
}

void ac_rnn_carry(const ac_rnn_params *p, const float *x, int n, int T, float *y, float *scratch,
                  float *state, int threads)
{
    const int G = gates(p), H = p->hidden, GH = G * H, D = p->dirs, YW = H * D;
    const size_t rows = (size_t)n * T;
    float *const proj = scratch;
    float *const hbuf = proj + (size_t)D * rows * GH;
    float *const cbuf = hbuf + (size_t)D * n * H;
    float *const gbuf = cbuf + (size_t)D * n * H;
    /* multiply-adds of the largest layer */
    const int in_max = p->input_size > YW ? p->input_size : YW;
    const double work = (double)D * rows * GH * (in_max + H);
    const int nt = ac_ops_team(threads, (long)D * n * T, work);
    /* projection tasks: row chunks per direction, about one per thread */
    size_t chunk = (rows + (size_t)nt - 1) / (size_t)nt;
    if (chunk < AC_RNN_MIN_ROWS) chunk = AC_RNN_MIN_ROWS;
    const long pchunks = (long)((rows + chunk - 1) / chunk);
    /* recurrence tasks: groups of items per direction, so each step is one small SGEMM */
    long groups = (nt + D - 1) / D;
    if (groups > n) groups = n;
    if (groups < 1) groups = 1;

#pragma omp parallel num_threads(nt) if (nt > 1)
    for (int l = 0; l < p->layers; l++) {
        const float *in = l == 0 ? x : y;
        const int K = l == 0 ? p->input_size : YW;
#pragma omp for schedule(static)
        for (long t = 0; t < D * pchunks; t++) { /* proj[d][r0.., :] = in[r0.., :] . w_ih^T + b_ih */
            const int d = (int)(t / pchunks);
            const size_t r0 = (size_t)(t % pchunks) * chunk, m = rows - r0 < chunk ? rows - r0 : chunk;
            const float *w = p->w_ih[l * D + d], *b = p->b_ih ? p->b_ih[l * D + d] : NULL;
            float *dst = proj + ((size_t)d * rows + r0) * GH;
            ac_sgemm(1, (int)m, GH, K, in + r0 * K, K, w, K, dst, GH);
            if (b)
                for (size_t r = 0; r < m; r++)
                    for (int j = 0; j < GH; j++) dst[r * GH + j] += b[j];
        }
        /* (the implicit barrier: every projection is done before y is overwritten) */
#pragma omp for schedule(static)
        for (long t = 0; t < D * groups; t++) {
            const int d = (int)(t / groups), gi = (int)(t % groups);
            const int b0 = (int)((long)n * gi / groups), nb = (int)((long)n * (gi + 1) / groups) - b0;
            const float *w_hh = p->w_hh[l * D + d], *b_hh = p->b_hh ? p->b_hh[l * D + d] : NULL;
            float *h = hbuf + ((size_t)d * n + b0) * H, *c = cbuf + ((size_t)d * n + b0) * H;
            float *gh = gbuf + ((size_t)d * n + b0) * GH;
            /* state: [layers][n][2H] (h then c) of the one direction, carried across calls */
            float *carry = state ? state + ((size_t)l * n + b0) * 2 * H : NULL;
            for (int i = 0; i < nb; i++) {
                if (carry) {
                    memcpy(h + (size_t)i * H, carry + (size_t)i * 2 * H, (size_t)H * sizeof *h);
                    memcpy(c + (size_t)i * H, carry + (size_t)i * 2 * H + H, (size_t)H * sizeof *c);
                } else {
                    memset(h + (size_t)i * H, 0, (size_t)H * sizeof *h);
                    memset(c + (size_t)i * H, 0, (size_t)H * sizeof *c);
                }
            }
            for (int s = 0; s < T; s++) {
                const int step = d == 0 ? s : T - 1 - s; /* the reverse direction runs backwards */
                if (s == 0 && !carry) /* h = 0 */
                    memset(gh, 0, (size_t)nb * GH * sizeof *gh);
                else /* gh[nb, GH] = h[nb, H] . w_hh^T */
                    ac_sgemm(1, nb, GH, H, h, H, w_hh, H, gh, GH);
                rnn_gates(p->cell, nb, H, proj + ((size_t)d * rows + (size_t)b0 * T + step) * GH,
                          (size_t)T * GH, gh, b_hh, h, c, y + ((size_t)b0 * T + step) * YW + (size_t)d * H,
                          (size_t)T * YW);
            }
            for (int i = 0; carry && i < nb; i++) {
                memcpy(carry + (size_t)i * 2 * H, h + (size_t)i * H, (size_t)H * sizeof *h);
                memcpy(carry + (size_t)i * 2 * H + H, c + (size_t)i * H, (size_t)H * sizeof *c);
            }
        }
    }
}
