/* elementwise.c - activations, broadcasting add/mul and per-channel affine (ops_graph.h). */
#include "ops_graph.h"

#include "ops_team.h"
#include "vmath.h"

#include <math.h>

/* Values per parallel task of the flat loops: whole cache lines, few enough tasks. */
#define AC_EW_CHUNK 4096

/* erf-GELU and tanh-GELU as PyTorch defines them, rewritten so the negative tail keeps its
 * precision: 1 + erf(x / sqrt 2) = erfc(-x / sqrt 2) and 1 + tanh(u) = 2 / (1 + e^-2u), where
 * the textbook forms cancel to 0 (x = -7: 1 + erff(-4.95) is 0 in float32; the true GELU is
 * -9e-12). The argument and the libm call are in double: in the tail the result's relative
 * error is about 2 |arg| times the argument's, which float32 would leave at 4e-6 for x = -8.
 * So both are within one float32 rounding of the exact value, and within 1e-6 relative of
 * PyTorch's float32 wherever that is itself exact. */
static inline float gelu_erf(float x) { return (float)(0.5 * x * erfc(-x * M_SQRT1_2)); }
static inline float gelu_tanh(float x)
{
    const double k = 0.7978845608028654; /* sqrt(2 / pi) */
    return (float)(x / (1.0 + exp(-2.0 * k * (x + 0.044715 * x * (double)x * x))));
}
/* 1 / (1 + e^-x) overflows harmlessly to 0 for x < -88 (e^-x = inf). */
static inline float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

__attribute__((target_clones("avx512f", "avx2", "default"))) static void unary_span(
    ac_unary_op op, const float *x, float *y, size_t count)
{
    switch (op) {
    case AC_UNARY_RELU:
        for (size_t i = 0; i < count; i++) y[i] = x[i] > 0.f ? x[i] : 0.f;
        break;
    case AC_UNARY_TANH:
        for (size_t i = 0; i < count; i++) y[i] = tanhf(x[i]);
        break;
    case AC_UNARY_SIGMOID:
        for (size_t i = 0; i < count; i++) y[i] = sigmoid(x[i]);
        break;
    case AC_UNARY_GELU_ERF:
        for (size_t i = 0; i < count; i++) y[i] = gelu_erf(x[i]);
        break;
    case AC_UNARY_GELU_TANH:
        for (size_t i = 0; i < count; i++) y[i] = gelu_tanh(x[i]);
        break;
    }
}

void ac_unary(ac_unary_op op, const float *x, float *y, size_t count, int threads)
{
    const long chunks = (long)((count + AC_EW_CHUNK - 1) / AC_EW_CHUNK);
    /* a libm call costs some ten multiply-adds; relu about one */
    const int nt = ac_ops_team(threads, chunks, (double)count * (op == AC_UNARY_RELU ? 1 : 10));
    AC_PARALLEL_FOR(nt, schedule(static),
        for (long c = 0; c < chunks; c++) {
            size_t i0 = (size_t)c * AC_EW_CHUNK, len = count - i0 < AC_EW_CHUNK ? count - i0 : AC_EW_CHUNK;
            const size_t done = op == AC_UNARY_RELU ? 0 : ac_vmath_span(op, x + i0, y + i0, len);
            unary_span(op, x + i0 + done, y + i0 + done, len - done);
        });
}

/* One row of the innermost axis: y[j] = a[j * sa] (op) b[j * sb], sa and sb 0 or 1. The three
 * stride patterns get loops of their own so each vectorises (a stride-0 operand is a scalar). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void binary_row(
    ac_binary_op op, const float *a, int sa, const float *b, int sb, float *y, int len)
{
    if (op == AC_BINARY_ADD) {
        if (sa && sb)
            for (int j = 0; j < len; j++) y[j] = a[j] + b[j];
        else if (sa) {
            const float s = b[0];
            for (int j = 0; j < len; j++) y[j] = a[j] + s;
        } else if (sb) {
            const float s = a[0];
            for (int j = 0; j < len; j++) y[j] = s + b[j];
        } else {
            const float s = a[0] + b[0];
            for (int j = 0; j < len; j++) y[j] = s;
        }
    } else {
        if (sa && sb)
            for (int j = 0; j < len; j++) y[j] = a[j] * b[j];
        else if (sa) {
            const float s = b[0];
            for (int j = 0; j < len; j++) y[j] = a[j] * s;
        } else if (sb) {
            const float s = a[0];
            for (int j = 0; j < len; j++) y[j] = s * b[j];
        } else {
            const float s = a[0] * b[0];
            for (int j = 0; j < len; j++) y[j] = s;
        }
    }
}

/* Collapses y's 4 axes to at most 4 with the longest possible innermost run: axes of size 1
 * are dropped, and two neighbouring axes merge when each operand either has both in full or
 * broadcasts both. Fills dims and the operands' element strides (0 where broadcast); returns
 * the number of axes (>= 1), outermost first. */
static int collapse(const int a_dims[4], const int b_dims[4], const int y_dims[4], long dims[4],
                    long sa[4], long sb[4])
{
    int m = 0;
    int fa[4], fb[4]; /* per kept axis: 1 if the operand has it in full */
    for (int i = 0; i < 4; i++) {
        if (y_dims[i] == 1) continue;
        int ia = a_dims[i] != 1, ib = b_dims[i] != 1;
        if (m > 0 && fa[m - 1] == ia && fb[m - 1] == ib) {
            dims[m - 1] *= y_dims[i];
        } else {
            dims[m] = y_dims[i];
            fa[m] = ia, fb[m] = ib;
            m++;
        }
    }
    if (m == 0) { /* a single value */
        dims[0] = 1, fa[0] = fb[0] = 1, m = 1;
    }
    long ea = 1, eb = 1; /* element strides of the operands' own (collapsed) layouts */
    for (int i = m - 1; i >= 0; i--) {
        sa[i] = fa[i] ? ea : 0;
        sb[i] = fb[i] ? eb : 0;
        if (fa[i]) ea *= dims[i];
        if (fb[i]) eb *= dims[i];
    }
    return m;
}

void ac_binary(ac_binary_op op, const float *a, const int a_dims[4], const float *b,
               const int b_dims[4], float *y, const int y_dims[4], int threads)
{
    long dims[4], sa[4], sb[4];
    const int m = collapse(a_dims, b_dims, y_dims, dims, sa, sb);
    /* view as [d0, d1, d2, inner] (missing outer axes of size 1) */
    long d[4] = {1, 1, 1, 1}, ta[4] = {0, 0, 0, 0}, tb[4] = {0, 0, 0, 0};
    for (int i = 0; i < m; i++) d[4 - m + i] = dims[i], ta[4 - m + i] = sa[i], tb[4 - m + i] = sb[i];
    const long inner = d[3], rows = d[0] * d[1] * d[2];
    /* tasks: rows cut into runs of at most AC_EW_CHUNK values, so that a same-shape add (one
     * row after the collapse) is shared by the threads like a long broadcast row */
    const long chunks = (inner + AC_EW_CHUNK - 1) / AC_EW_CHUNK, tasks = rows * chunks;
    const int nt = ac_ops_team(threads, tasks, (double)rows * inner);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (long t = 0; t < tasks; t++) {
            const long r = t / chunks, j0 = t % chunks * AC_EW_CHUNK;
            const long len = inner - j0 < AC_EW_CHUNK ? inner - j0 : AC_EW_CHUNK;
            const long i2 = r % d[2], i1 = r / d[2] % d[1], i0 = r / (d[2] * d[1]);
            const float *ar = a + i0 * ta[0] + i1 * ta[1] + i2 * ta[2] + (ta[3] ? j0 : 0);
            const float *br = b + i0 * tb[0] + i1 * tb[1] + i2 * tb[2] + (tb[3] ? j0 : 0);
            binary_row(op, ar, ta[3] != 0, br, tb[3] != 0, y + r * inner + j0, (int)len);
        });
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void affine_row(
    const float *x, float s, float t, float *y, size_t len)
{
    for (size_t j = 0; j < len; j++) y[j] = x[j] * s + t;
}

void ac_channel_affine(const float *x, int n, int c, size_t inner, const float *scale,
                       const float *shift, float *y, int threads)
{
    const long rows = (long)n * c;
    const int nt = ac_ops_team(threads, rows, (double)rows * inner);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (long r = 0; r < rows; r++) {
            affine_row(x + (size_t)r * inner, scale[r % c], shift[r % c], y + (size_t)r * inner, inner);
        });
}
