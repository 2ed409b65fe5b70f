/* ops_graph.h - kernels of the graph ops of format version 2 (models/FORMAT.md): elementwise
 * maths with broadcasting, normalisation, shape ops, reductions and recurrent layers.
 *
 * Same rules as ops.h: kernels know buffers and shapes only; every value is float32,
 * row-major, batch first; each kernel runs its own OpenMP region with `threads` threads and
 * is called from outside any parallel region; nothing here allocates (scratch is the
 * caller's, sized by the *_scratch function). Unless a kernel says otherwise, x and y must
 * not overlap. "Axis" arguments use the (outer, k, inner) view: a value [n, ...] is seen as
 * [n * outer, k, inner] around the axis an op works on.
 */
#ifndef AC_OPS_GRAPH_H
#define AC_OPS_GRAPH_H

#include <stddef.h>

typedef enum ac_unary_op {
    AC_UNARY_RELU, AC_UNARY_TANH, AC_UNARY_SIGMOID,
    AC_UNARY_GELU_ERF,  /* x * 0.5 * (1 + erf(x / sqrt 2)), nn.GELU() */
    AC_UNARY_GELU_TANH  /* nn.GELU(approximate="tanh") */
} ac_unary_op;

/* y[i] = f(x[i]) for count values; x == y (in place) is allowed. */
void ac_unary(ac_unary_op op, const float *x, float *y, size_t count, int threads);

typedef enum ac_binary_op { AC_BINARY_ADD, AC_BINARY_MUL } ac_binary_op;

/* y = a (op) b with PyTorch broadcasting. Shapes are 4 axes, batch first, right-aligned and
 * padded with 1s by the caller: a [a0, a1, a2, a3], b [b0, ...], y [y0, ...] where each
 * y_i = max(a_i, b_i) and a_i, b_i are y_i or 1. y may be a (or b) when that operand has
 * y's shape (in place). */
void ac_binary(ac_binary_op op, const float *a, const int a_dims[4], const float *b,
               const int b_dims[4], float *y, const int y_dims[4], int threads);

/* Per-channel affine (a batch norm that could not be folded): x, y [n, c, inner];
 * y = x * scale[c] + shift[c]. In place allowed. */
void ac_channel_affine(const float *x, int n, int c, size_t inner, const float *scale,
                       const float *shift, float *y, int threads);

/* LayerNorm over the last axis: x, y [rows, d]; gamma/beta [d] or NULL (no affine).
 * Biased variance, as PyTorch. In place allowed. */
void ac_layernorm_last(const float *x, size_t rows, int d, const float *gamma, const float *beta,
                       float eps, float *y, int threads);
/* LayerNorm over channels at every position: x, y [n, c, inner] normalised over c for each
 * (item, position); gamma/beta [c] or NULL. In place allowed. */
void ac_layernorm_channels(const float *x, int n, int c, size_t inner, const float *gamma,
                           const float *beta, float eps, float *y, int threads);

/* Concatenation along one axis: xs[i] is [rows, ks[i], inner] (rows = n * outer);
 * y [rows, sum ks, inner]. */
void ac_concat(const float *const *xs, const int *ks, int count, size_t rows, size_t inner,
               float *y, int threads);

/* y[r, j, :] = x[r, start + j * step, :] for j < count: x [rows, k, inner], y [rows, count, inner]
 * (slice with count = 1 is select). */
void ac_slice(const float *x, size_t rows, int k, size_t inner, int start, int step, int count,
              float *y, int threads);

/* Constant padding of the last two axes: x [planes, h, w] -> y [planes, h + pt + pb, w + pl + pr]
 * (1-D: h = 1, pt = pb = 0). */
void ac_pad2d(const float *x, size_t planes, int h, int w, int pt, int pb, int pl, int pr,
              float value, float *y, int threads);

/* Mean over one axis: x [rows, k, inner] -> y [rows, inner]. */
void ac_mean_axis(const float *x, size_t rows, int k, size_t inner, float *y, int threads);

/* General permutation of up to 4 axes (batch included, so items may be permuted as well):
 * y axis i = x axis perm[i]; dims are x's. */
void ac_permute4(const float *x, const int dims[4], const int perm[4], float *y, int threads);

/* Recurrent layers, batch-first, as nn.GRU / nn.LSTM with h0 = c0 = 0. Weights per layer l
 * and direction d (index l * dirs + d) exactly as PyTorch stores them:
 *   w_ih [G*H, in_l] (in_0 = input_size, in_l = H * dirs after), w_hh [G*H, H],
 *   b_ih, b_hh [G*H] or NULL; G = 3 for GRU (gates r, z, n), 4 for LSTM (i, f, g, o). */
typedef enum ac_rnn_cell { AC_RNN_GRU, AC_RNN_LSTM } ac_rnn_cell;
typedef struct ac_rnn_params {
    ac_rnn_cell cell;
    int input_size, hidden, layers, dirs; /* dirs: 1 or 2 */
    const float *const *w_ih, *const *w_hh, *const *b_ih, *const *b_hh; /* [layers * dirs] */
} ac_rnn_params;
/* Floats of scratch a forward of n sequences of length T needs (all threads together). */
size_t ac_rnn_scratch(const ac_rnn_params *p, int n, int T);
/* x [n, T, input_size] -> y [n, T, hidden * dirs] (the output sequence of the last layer). */
void ac_rnn(const ac_rnn_params *p, const float *x, int n, int T, float *y, float *scratch,
            int threads);
/* The same, starting from and leaving the state in `state` [layers][n][2 * hidden] (h then c
 * per item; c unused by GRU), so a sequence can be fed in pieces (the stream executor);
 * one direction only (dirs == 1); NULL state: h0 = c0 = 0, as ac_rnn. */
void ac_rnn_carry(const ac_rnn_params *p, const float *x, int n, int T, float *y, float *scratch,
                  float *state, int threads);

#endif
