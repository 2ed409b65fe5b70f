/* rnn.c - GRU and LSTM layers, batch-first, as nn.GRU / nn.LSTM (ops_graph.h). */
#include "ops_graph.h"

#include "blas.h"
#include "ops.h"
#include "vmath.h"
#include "ops_team.h"

#include <immintrin.h>
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
 *   wt   [dirs][H][G * H]       W_hh transposed for the step kernel (recur_step), per layer
 * Layers run one after the other and reuse all of it; the output of layer l is written to y
 * and is the input of layer l + 1 (its projections are computed before y is overwritten). */
size_t ac_rnn_scratch(const ac_rnn_params *p, int n, int T)
{
    const size_t gh = (size_t)gates(p) * p->hidden, dirs = (size_t)p->dirs;
    return dirs * (size_t)n * ((size_t)T * gh + 2 * (size_t)p->hidden + gh) + dirs * (size_t)p->hidden * gh;
}

/* Steps at least for the step kernel: transposing W_hh costs about one step of the batch. */
#define AC_RNN_KERNEL_MIN_STEPS 8

/* wt[H][GH] = w[GH][H]^T */
static void transpose_whh(const float *w, int GH, int H, float *wt)
{
    for (int r = 0; r < GH; r++)
        for (int k = 0; k < H; k++) wt[(size_t)k * GH + r] = w[(size_t)r * H + k];
}

/* gh[nb][GH] = h[nb][H] . W_hh^T with wt = W_hh^T [H][GH]: 4 items x 64 columns per block
 * (16 accumulators); per k, 4 loads of wt and 4 broadcasts of h feed 16 FMAs. OpenBLAS
 * instead packs all of W_hh again on every step (71% of a GRU's time, 8 items, H = 128).
 * A block of fewer than 4 items repeats its first item's row in the missing ones and does
 * not store them: a choice per item inside the k loop (`i < ni ? h : 0`) had GCC keep all
 * 16 accumulators on the stack, a store and a load per FMA (56% of a GRU's time). */
__attribute__((target("avx512f"))) static void recur_step(const float *h, int nb, int H, const float *wt,
                                                          int GH, float *gh)
{
    for (int i0 = 0; i0 < nb; i0 += 4) {
        const int ni = nb - i0 < 4 ? nb - i0 : 4;
        const float *hr[4];
        for (int i = 0; i < 4; i++) hr[i] = h + (size_t)(i0 + (i < ni ? i : 0)) * H;
        for (int c0 = 0; c0 < GH; c0 += 64) {
            const int nc = GH - c0 < 64 ? GH - c0 : 64;
            __mmask16 m[4];
            for (int q = 0; q < 4; q++) {
                const int left = nc - 16 * q;
                m[q] = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            }
            __m512 acc[4][4];
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) acc[i][q] = _mm512_setzero_ps();
            for (int k = 0; k < H; k++) {
                const float *w = wt + (size_t)k * GH + c0;
                __m512 wv[4];
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) wv[q] = _mm512_maskz_loadu_ps(m[q], w + 16 * q);
                _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
                    const __m512 hv = _mm512_set1_ps(hr[i][k]);
                    _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) acc[i][q] = _mm512_fmadd_ps(hv, wv[q], acc[i][q]);
                }
            }
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) /* constant indices: acc stays in registers */
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                    if (i < ni) _mm512_mask_storeu_ps(gh + (size_t)(i0 + i) * GH + c0 + 16 * q, m[q], acc[i][q]);
        }
    }
}

static inline float sigmoid(float v) { return 1.f / (1.f + expf(-v)); }

/* v[0..len) = op(v) (sigmoid or tanh): 16 at a time through libmvec where it is loaded
 * (vmath.h), the rest with libm. */
static void act_span(ac_unary_op op, float *v, int len)
{
    for (int i = (int)ac_vmath_span(op, v, v, (size_t)len); i < len; i++)
        v[i] = op == AC_UNARY_SIGMOID ? sigmoid(v[i]) : tanhf(v[i]);
}

#define GATE_COLS 64 /* columns of the gates computed at a time (stack buffers) */

/* One time step of nb items after gh = h . W_hh^T: the gates and the new state, as PyTorch:
 *   GRU:  r = s(x_r + g_r), z = s(x_z + g_z), m = tanh(x_n + r * g_n), h = (1 - z) m + z h
 *   LSTM: i, f, o = s(x_. + g_.), g = tanh(x_g + g_g), c = f c + i g, h = o tanh(c)
 * where x_. are the input projections (with b_ih) and g_. = (W_hh h + b_hh) of each gate.
 * The activations run over runs of GATE_COLS columns, so that they vectorise.
 * xp: item i's projections at xp + i * xp_stride; out: h of item i at out + i * out_stride. */
static void rnn_gates(ac_rnn_cell cell, int nb, int H, const float *xp, size_t xp_stride,
                      const float *gh, const float *b_hh, float *h, float *c, float *out,
                      size_t out_stride)
{
    const int G = cell == AC_RNN_GRU ? 3 : 4;
    float a[4][GATE_COLS];
    for (int i = 0; i < nb; i++) {
        const float *x = xp + (size_t)i * xp_stride, *g = gh + (size_t)i * G * H;
        float *hi = h + (size_t)i * H, *o = out + (size_t)i * out_stride, *ci = c + (size_t)i * H;
        for (int j0 = 0; j0 < H; j0 += GATE_COLS) {
            const int len = H - j0 < GATE_COLS ? H - j0 : GATE_COLS;
            for (int k = 0; k < G; k++) /* a[k] = g_k (+ b_hh) + x_k, except GRU's n: g_n only */
                for (int j = 0; j < len; j++) {
                    const int col = k * H + j0 + j;
                    a[k][j] = g[col] + (b_hh ? b_hh[col] : 0.f) + (cell == AC_RNN_GRU && k == 2 ? 0.f : x[col]);
                }
            if (cell == AC_RNN_GRU) {
                act_span(AC_UNARY_SIGMOID, a[0], len == GATE_COLS ? 2 * len : len);
                if (len < GATE_COLS) act_span(AC_UNARY_SIGMOID, a[1], len);
                for (int j = 0; j < len; j++) a[2][j] = x[2 * H + j0 + j] + a[0][j] * a[2][j];
                act_span(AC_UNARY_TANH, a[2], len);
                for (int j = 0; j < len; j++) {
                    const float z = a[1][j];
                    hi[j0 + j] = (1.f - z) * a[2][j] + z * hi[j0 + j];
                    o[j0 + j] = hi[j0 + j];
                }
            } else {
                act_span(AC_UNARY_SIGMOID, a[0], len == GATE_COLS ? 2 * len : len);
                if (len < GATE_COLS) act_span(AC_UNARY_SIGMOID, a[1], len);
                act_span(AC_UNARY_TANH, a[2], len);
                act_span(AC_UNARY_SIGMOID, a[3], len);
                for (int j = 0; j < len; j++) {
                    ci[j0 + j] = a[1][j] * ci[j0 + j] + a[0][j] * a[2][j];
                    a[2][j] = ci[j0 + j];
                }
                act_span(AC_UNARY_TANH, a[2], len);
                for (int j = 0; j < len; j++) {
                    hi[j0 + j] = a[3][j] * a[2][j];
                    o[j0 + j] = hi[j0 + j];
                }
            }
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
    float *const wtbuf = gbuf + (size_t)D * n * GH;
    const int step_kernel = ac_ops_direct() && T >= AC_RNN_KERNEL_MIN_STEPS;
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

/* a region even for one thread: its `omp for` must not be orphaned (an orphaned
     * worksharing loop on a thread that has led teams before hung in libgomp) */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
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
            if (step_kernel) {
#pragma omp for schedule(static)
                for (int d = 0; d < D; d++) transpose_whh(p->w_hh[l * D + d], GH, H, wtbuf + (size_t)d * H * GH);
            }
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
                    else if (step_kernel) /* gh[nb, GH] = h[nb, H] . w_hh^T */
                        recur_step(h, nb, H, wtbuf + (size_t)d * H * GH, GH, gh);
                    else
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
}
