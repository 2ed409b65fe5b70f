/* test_ops_graph.c - the version 2 kernels (ops_graph.h) against naive references in double:
 * batch > 1, odd sizes, broadcasting, in-place calls, one and two threads; the RNN also against
 * PyTorch (tests/golden/rnn_ops.safetensors, made by tests/golden/make_rnn_fixture.py). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "ops_graph.h"
#include "tensor.h"
#include "testutil.h"
#include "weights.h"

/* max over i of |got - want| / (abs + rel |want|): <= 1 when every value is within tolerance */
static double tol_ratio(const float *got, const double *want, size_t n, double abs_tol, double rel_tol)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)got[i] - want[i]) / (abs_tol + rel_tol * fabs(want[i]));
        if (!(r <= worst)) worst = isnan(r) ? INFINITY : r;
    }
    return worst;
}

static float *rnd(size_t n, unsigned seed, float scale)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    tu_fill_random(x, n, seed);
    for (size_t i = 0; i < n; i++) x[i] *= scale;
    return x;
}

/* ---------------------------------------------------------------- unary */

static double ref_unary(ac_unary_op op, double v)
{
    switch (op) {
    case AC_UNARY_RELU: return v > 0 ? v : 0;
    case AC_UNARY_TANH: return tanh(v);
    case AC_UNARY_SIGMOID: return 1 / (1 + exp(-v));
    /* (1 + erf) and (1 + tanh) written without their cancellation for large negative v,
     * which would cost even double precision its last digits in the tail) */
    case AC_UNARY_GELU_ERF: return 0.5 * v * erfc(-v / sqrt(2.0));
    case AC_UNARY_GELU_TANH: return v / (1 + exp(-2 * sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    }
    return NAN;
}

/* With the direct kernels on (where the CPU has AVX-512F: libmvec's vector functions, vmath.h)
 * and off (the scalar libm loops). */
Test(ops_graph, unary_all_ops_in_and_out_of_place)
{
    const size_t sizes[] = {1, 17 * 33, 300001}; /* the last one is split over threads */
    for (int path = 1; path >= 0; path--) {
    const int prev = ac_ops_set_direct(path);
    for (int op = AC_UNARY_RELU; op <= AC_UNARY_GELU_TANH; op++)
        for (int s = 0; s < 3; s++)
            for (int inplace = 0; inplace < 2; inplace++) {
                size_t n = sizes[s];
                float *x = rnd(n, 10 + (unsigned)s, 8.f), *y = malloc(n * sizeof *y);
                double *want = malloc(n * sizeof *want);
                x[0] = -7.f; /* deep in the negative tail (GELU's relative error is worst there) */
                for (size_t i = 0; i < n; i++) want[i] = ref_unary((ac_unary_op)op, x[i]);
                float *out = inplace ? x : y;
                ac_unary((ac_unary_op)op, x, out, n, 2);
                /* float32's own rounding of the result is 6e-8 relative; libm's erff/tanhf/expf
                 * add an ulp or two, the vectorised erf-GELU's erfc form 6e-7 at worst; what is
                 * left for the formula is nothing */
                double r = tol_ratio(out, want, n, 1e-30, 1e-6);
                cr_expect_leq(r, 1.0, "op %d n %zu inplace %d direct %d: %g x tolerance", op, n, inplace,
                              ac_ops_direct(), r);
                free(x), free(y), free(want);
            }
    ac_ops_set_direct(prev);
    }
}

/* The vector kernels of erf-GELU, tanh and sigmoid at the edges: a dense sweep of [-14, 14]
 * (GELU's negative tail: its exponent's -x^2 / 2 is kept exact there), values past their
 * clamps (GELU |x| = 15, tanh 7.9, sigmoid's e^89), infinities and NaN, each as the scalar
 * double form gives them (NaN where PyTorch gives NaN); direct kernels on and off. */
static void check_unary_edges(ac_unary_op op)
{
    enum { SWEEP = 4096, SPECIAL = 16 };
    const float special[SPECIAL] = {INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 20.f, -20.f, 15.f, -15.f,
                                    7.95f, -100.f, 0.f, -0.f, 1e-30f, -1e-30f, 3e-4f};
    float x[SWEEP + SPECIAL], y[SWEEP + SPECIAL];
    double want[SWEEP + SPECIAL];
    for (int i = 0; i < SWEEP; i++) x[i] = -14.f + 28.f * (float)i / SWEEP;
    for (int i = 0; i < SPECIAL; i++) x[SWEEP + i] = special[i];
    for (int i = 0; i < SWEEP + SPECIAL; i++) want[i] = ref_unary(op, x[i]);
    for (int path = 1; path >= 0; path--) {
        const int prev = ac_ops_set_direct(path);
        ac_unary(op, x, y, SWEEP + SPECIAL, 1);
        for (int i = 0; i < SWEEP + SPECIAL; i++) {
            if (isnan(want[i]) || isinf(want[i])) {
                cr_expect(isnan(want[i]) ? isnan(y[i]) : y[i] == (float)want[i], "op %d x = %g: %g, want %g (direct %d)",
                          op, x[i], y[i], want[i], path);
                continue;
            }
            const double err = fabs(y[i] - want[i]) / (1e-30 + 1e-6 * fabs(want[i]));
            cr_expect_leq(err, 1.0, "op %d x = %g: %.9g, want %.9g (direct %d)", op, x[i], y[i], want[i], path);
        }
        ac_ops_set_direct(prev);
    }
}

Test(ops_graph, activation_tails_and_special_values)
{
    check_unary_edges(AC_UNARY_GELU_ERF);
    check_unary_edges(AC_UNARY_TANH);
    check_unary_edges(AC_UNARY_SIGMOID);
}

/* ---------------------------------------------------------------- binary */

static void check_binary(ac_binary_op op, const int ad[4], const int bd[4], int inplace, unsigned seed,
                         int threads)
{
    int yd[4];
    for (int i = 0; i < 4; i++) yd[i] = ad[i] > bd[i] ? ad[i] : bd[i];
    const size_t na = (size_t)ad[0] * ad[1] * ad[2] * ad[3], nb = (size_t)bd[0] * bd[1] * bd[2] * bd[3];
    const size_t ny = (size_t)yd[0] * yd[1] * yd[2] * yd[3];
    float *a = rnd(na, seed, 1.f), *b = rnd(nb, seed + 1, 1.f), *y = malloc(ny * sizeof *y);
    double *want = malloc(ny * sizeof *want);
    size_t k = 0;
    for (int i0 = 0; i0 < yd[0]; i0++)
        for (int i1 = 0; i1 < yd[1]; i1++)
            for (int i2 = 0; i2 < yd[2]; i2++)
                for (int i3 = 0; i3 < yd[3]; i3++, k++) {
                    const int i[4] = {i0, i1, i2, i3};
                    size_t ia = 0, ib = 0;
                    for (int j = 0; j < 4; j++) {
                        ia = ia * ad[j] + (ad[j] == 1 ? 0 : i[j]);
                        ib = ib * bd[j] + (bd[j] == 1 ? 0 : i[j]);
                    }
                    want[k] = op == AC_BINARY_ADD ? (double)a[ia] + b[ib] : (double)a[ia] * b[ib];
                }
    float *out = y;
    if (inplace == 1) out = a; /* a has y's shape */
    if (inplace == 2) out = b;
    ac_binary(op, a, ad, b, bd, out, yd, threads);
    double r = tol_ratio(out, want, ny, 1e-7, 1e-7);
    cr_expect_leq(r, 1.0, "op %d a [%d,%d,%d,%d] b [%d,%d,%d,%d] inplace %d threads %d: %g x tolerance", op,
                  ad[0], ad[1], ad[2], ad[3], bd[0], bd[1], bd[2], bd[3], inplace, threads, r);
    free(a), free(b), free(y), free(want);
}

Test(ops_graph, binary_broadcasting_and_in_place)
{
    static const int cases[][2][4] = {
        {{2, 3, 1, 5}, {1, 1, 4, 1}},     /* both operands stretch */
        {{2, 3, 4, 5}, {2, 3, 4, 5}},     /* same shapes */
        {{3, 1, 17, 33}, {1, 1, 17, 33}}, /* a const with batch 1 */
        {{3, 1, 17, 33}, {1, 1, 17, 1}},  /* a per-channel scale [C, 1] (layer scale) */
        {{3, 5, 7, 1}, {3, 5, 1, 1}},     /* gating by a per-item vector */
        {{1, 1, 1, 1}, {3, 5, 7, 9}},     /* a scalar on the left */
        {{5, 1, 33, 1}, {5, 17, 1, 3}},   /* interleaved broadcasts */
        {{1, 1, 1, 1}, {1, 1, 1, 1}},
        {{4, 64, 1, 2000}, {4, 64, 1, 2000}}, /* large: split over threads */
        /* rows cut into runs of 4096 values: one same-shape row with a partial last run, long
         * rows against a per-row scalar and against a row broadcast over items */
        {{3, 1, 1, 20001}, {3, 1, 1, 20001}},
        {{2, 1, 3, 9000}, {1, 1, 3, 1}},
        {{3, 1, 1, 8193}, {1, 1, 1, 8193}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int op = AC_BINARY_ADD; op <= AC_BINARY_MUL; op++) {
            const int *ad = cases[c][0], *bd = cases[c][1];
            const int threads = 1 + (int)(c + (size_t)op) % 2;
            check_binary((ac_binary_op)op, ad, bd, 0, 50 + (unsigned)c, threads);
            check_binary((ac_binary_op)op, bd, ad, 0, 60 + (unsigned)c, 3 - threads); /* swapped */
            int a_full = 1, b_full = 1;
            for (int i = 0; i < 4; i++) {
                a_full &= ad[i] >= bd[i];
                b_full &= bd[i] >= ad[i];
            }
            if (a_full) check_binary((ac_binary_op)op, ad, bd, 1, 70 + (unsigned)c, threads);
            if (b_full) check_binary((ac_binary_op)op, ad, bd, 2, 80 + (unsigned)c, 3 - threads);
        }
}

Test(ops_graph, channel_affine_in_and_out_of_place)
{
    const int n = 3, c = 5;
    const size_t sizes[] = {1, 17, 4001};
    for (int s = 0; s < 3; s++)
        for (int inplace = 0; inplace < 2; inplace++) {
            const size_t inner = sizes[s], total = (size_t)n * c * inner;
            float *x = rnd(total, 90 + (unsigned)s, 1.f), *sc = rnd(c, 91, 2.f), *sh = rnd(c, 92, 1.f);
            float *y = malloc(total * sizeof *y);
            double *want = malloc(total * sizeof *want);
            for (size_t i = 0; i < total; i++) {
                int ch = (int)(i / inner % c);
                want[i] = (double)x[i] * sc[ch] + sh[ch];
            }
            float *out = inplace ? x : y;
            ac_channel_affine(x, n, c, inner, sc, sh, out, 2);
            cr_expect_leq(tol_ratio(out, want, total, 1e-6, 1e-6), 1.0, "inner %zu inplace %d", inner, inplace);
            free(x), free(sc), free(sh), free(y), free(want);
        }
}

/* ---------------------------------------------------------------- layernorm */

/* Normalises the values x[base + i * stride], i < d, as nn.LayerNorm does (biased variance). */
static void ref_ln(const float *x, size_t base, size_t stride, int d, const float *g, const float *b,
                   double eps, double *want)
{
    double s = 0, q = 0;
    for (int i = 0; i < d; i++) s += x[base + i * stride];
    double m = s / d;
    for (int i = 0; i < d; i++) q += (x[base + i * stride] - m) * (x[base + i * stride] - m);
    double rstd = 1 / sqrt(q / d + eps);
    for (int i = 0; i < d; i++)
        want[base + i * stride] = (x[base + i * stride] - m) * rstd * (g ? g[i] : 1) + (b ? b[i] : 0);
}

/* Both kernels (the AVX-512 row and the portable loop), one thread and two; d below, at and
 * between multiples of 16 and 32 (the vector loop's steps), ConvNeXt's 128. */
Test(ops_graph, layernorm_last_axis)
{
    const int ds[] = {1, 5, 16, 33, 48, 128, 131, 768};
    const int nd = (int)(sizeof ds / sizeof *ds);
    for (int direct = 0; direct < 2; direct++) {
        const int prev = ac_ops_set_direct(direct);
        for (int k = 0; k < nd; k++)
            for (int affine = 0; affine < 2; affine++)
                for (int inplace = 0; inplace < 2; inplace++) {
                    const int d = ds[k], threads = 1 + (k + affine) % 2;
                    /* two threads: enough work to split; row counts of every remainder mod 4 (the
                     * AVX-512 kernel's groups of rows) */
                    const size_t rows = threads == 2 ? 1601 + (size_t)inplace : 36 + (size_t)inplace * 3;
                    const size_t total = rows * d;
                    float *x = rnd(total, 100 + (unsigned)k, 3.f), *y = malloc(total * sizeof *y);
                    for (size_t i = 0; i < total; i++) x[i] += 5.f; /* a mean far from 0 */
                    float *g = affine ? rnd(d, 101, 2.f) : NULL, *b = affine ? rnd(d, 102, 1.f) : NULL;
                    double *want = malloc(total * sizeof *want);
                    for (size_t r = 0; r < rows; r++) ref_ln(x, r * d, 1, d, g, b, 1e-5, want);
                    float *out = inplace ? x : y;
                    ac_layernorm_last(x, rows, d, g, b, 1e-5f, out, threads);
                    cr_expect_leq(tol_ratio(out, want, total, 1e-5, 1e-5), 1.0,
                                  "d %d affine %d inplace %d direct %d threads %d", d, affine, inplace,
                                  direct, threads);
                    free(x), free(y), free(g), free(b), free(want);
                }
        ac_ops_set_direct(prev);
    }
}

/* Both kernels (AVX-512 blocks of 64 positions, the portable one's of 256), one thread and
 * two; positions below, at and between the block sizes. */
Test(ops_graph, layernorm_over_channels)
{
    const size_t inners[] = {1, 17, 64, 300}; /* 300: more than one block of positions */
    const int cs[] = {1, 5, 64};
    for (int direct = 0; direct < 2; direct++) {
        const int prev = ac_ops_set_direct(direct);
        for (int k = 0; k < 4; k++)
            for (int ci = 0; ci < 3; ci++)
                for (int affine = 0; affine < 2; affine++)
                    for (int inplace = 0; inplace < 2; inplace++) {
                        const int n = 3, c = cs[ci], threads = 1 + (affine + inplace) % 2;
                        const size_t inner = inners[k], total = (size_t)n * c * inner;
                        float *x = rnd(total, 110 + (unsigned)k, 2.f), *y = malloc(total * sizeof *y);
                        for (size_t i = 0; i < total; i++) x[i] += 3.f; /* a mean far from 0 */
                        float *g = affine ? rnd(c, 111, 2.f) : NULL, *b = affine ? rnd(c, 112, 1.f) : NULL;
                        double *want = malloc(total * sizeof *want);
                        for (int bi = 0; bi < n; bi++)
                            for (size_t j = 0; j < inner; j++)
                                ref_ln(x, (size_t)bi * c * inner + j, inner, c, g, b, 1e-6, want);
                        float *out = inplace ? x : y;
                        ac_layernorm_channels(x, n, c, inner, g, b, 1e-6f, out, threads);
                        cr_expect_leq(tol_ratio(out, want, total, 1e-5, 1e-5), 1.0,
                                      "c %d inner %zu affine %d inplace %d direct %d threads %d", c, inner,
                                      affine, inplace, direct, threads);
                        free(x), free(y), free(g), free(b), free(want);
                    }
        ac_ops_set_direct(prev);
    }
}

/* ---------------------------------------------------------------- shape ops */

/* Concatenation of three [2, 3, 4, 5]-like tensors along axis `ax` (1, 2 or 3), whose sizes on
 * that axis are 3, 1 and 6; checked by 4-D indexing, not by the (outer, k, inner) view. */
Test(ops_graph, concat_three_inputs_on_each_axis)
{
    for (int ax = 1; ax <= 3; ax++) {
        const int base[4] = {2, 3, 4, 5}, ks[3] = {3, 1, 6};
        float *xs[3];
        int d[3][4];
        for (int i = 0; i < 3; i++) {
            memcpy(d[i], base, sizeof base);
            d[i][ax] = ks[i];
            xs[i] = rnd((size_t)d[i][0] * d[i][1] * d[i][2] * d[i][3], 120 + (unsigned)i, 1.f);
        }
        int yd[4];
        memcpy(yd, base, sizeof base);
        yd[ax] = 10;
        size_t rows = 1, inner = 1;
        for (int i = 0; i < ax; i++) rows *= (size_t)base[i];
        for (int i = ax + 1; i < 4; i++) inner *= (size_t)base[i];
        const size_t ny = (size_t)yd[0] * yd[1] * yd[2] * yd[3];
        float *y = malloc(ny * sizeof *y);
        ac_concat((const float *const *)xs, ks, 3, rows, inner, y, 2);
        int bad = 0;
        for (int i0 = 0; i0 < yd[0]; i0++)
            for (int i1 = 0; i1 < yd[1]; i1++)
                for (int i2 = 0; i2 < yd[2]; i2++)
                    for (int i3 = 0; i3 < yd[3]; i3++) {
                        int idx[4] = {i0, i1, i2, i3}, src = 0;
                        while (idx[ax] >= ks[src]) idx[ax] -= ks[src++];
                        const int *sd = d[src];
                        float want = xs[src][((idx[0] * sd[1] + idx[1]) * sd[2] + idx[2]) * sd[3] + idx[3]];
                        bad += y[((i0 * yd[1] + i1) * yd[2] + i2) * yd[3] + i3] != want;
                    }
        cr_expect_eq(bad, 0, "axis %d: %d values wrong", ax, bad);
        for (int i = 0; i < 3; i++) free(xs[i]);
        free(y);
    }
}

Test(ops_graph, slice_with_steps_and_select)
{
    static const int cases[][6] = {/* rows, k, inner, start, step, count */
                                   {6, 17, 5, 2, 3, 5},  {6, 17, 5, 0, 1, 17}, {6, 17, 5, 4, 1, 9},
                                   {7, 33, 1, 1, 2, 16}, {7, 33, 1, 32, 1, 1}, {3, 9, 11, 8, 1, 1},
                                   {2, 100, 300, 0, 7, 15}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const int rows = cases[c][0], k = cases[c][1], inner = cases[c][2];
        const int start = cases[c][3], step = cases[c][4], count = cases[c][5];
        float *x = rnd((size_t)rows * k * inner, 130 + (unsigned)c, 1.f);
        float *y = malloc((size_t)rows * count * inner * sizeof *y);
        ac_slice(x, (size_t)rows, k, (size_t)inner, start, step, count, y, 2);
        int bad = 0;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < count; j++)
                for (int i = 0; i < inner; i++)
                    bad += y[((size_t)r * count + j) * inner + i] != x[((size_t)r * k + start + j * step) * inner + i];
        cr_expect_eq(bad, 0, "case %zu: %d wrong", c, bad);
        free(x), free(y);
    }
}

Test(ops_graph, pad_two_axes_and_one)
{
    static const int cases[][7] = {/* planes, h, w, pt, pb, pl, pr */
                                   {6, 5, 7, 1, 2, 3, 0}, {6, 1, 17, 0, 0, 4, 0}, {3, 1, 33, 0, 0, 0, 5},
                                   {2, 3, 3, 0, 4, 1, 1}, {2, 4, 5, 0, 0, 0, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const int P = cases[c][0], h = cases[c][1], w = cases[c][2];
        const int pt = cases[c][3], pb = cases[c][4], pl = cases[c][5], pr = cases[c][6];
        const int ho = h + pt + pb, wo = w + pl + pr;
        float *x = rnd((size_t)P * h * w, 140 + (unsigned)c, 1.f), *y = malloc((size_t)P * ho * wo * sizeof *y);
        ac_pad2d(x, (size_t)P, h, w, pt, pb, pl, pr, -1.5f, y, 2);
        int bad = 0;
        for (int p = 0; p < P; p++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    int iy = oy - pt, ix = ox - pl;
                    float want = iy < 0 || iy >= h || ix < 0 || ix >= w ? -1.5f : x[((size_t)p * h + iy) * w + ix];
                    bad += y[((size_t)p * ho + oy) * wo + ox] != want;
                }
        cr_expect_eq(bad, 0, "case %zu: %d wrong", c, bad);
        free(x), free(y);
    }
}

Test(ops_graph, mean_over_an_axis)
{
    static const int cases[][3] = {{6, 33, 17}, {6, 2001, 1}, {3, 7, 300}, {5, 1, 9}, {2, 1, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const int rows = cases[c][0], k = cases[c][1], inner = cases[c][2];
        float *x = rnd((size_t)rows * k * inner, 150 + (unsigned)c, 1.f);
        for (size_t i = 0; i < (size_t)rows * k * inner; i++) x[i] += 100.f; /* large mean */
        float *y = malloc((size_t)rows * inner * sizeof *y);
        double *want = malloc((size_t)rows * inner * sizeof *want);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < inner; i++) {
                double s = 0;
                for (int j = 0; j < k; j++) s += x[((size_t)r * k + j) * inner + i];
                want[(size_t)r * inner + i] = s / k;
            }
        ac_mean_axis(x, (size_t)rows, k, (size_t)inner, y, 2);
        cr_expect_leq(tol_ratio(y, want, (size_t)rows * inner, 0, 1e-7), 1.0, "case %zu", c);
        free(x), free(y), free(want);
    }
}

static void check_permute_on(const int dims[4], const int perm[4], unsigned seed, int threads)
{
    const size_t total = (size_t)dims[0] * dims[1] * dims[2] * dims[3];
    float *x = rnd(total, seed, 1.f), *y = malloc(total * sizeof *y);
    ac_permute4(x, dims, perm, y, threads);
    int od[4], bad = 0;
    for (int i = 0; i < 4; i++) od[i] = dims[perm[i]];
    size_t k = 0;
    for (int a = 0; a < od[0]; a++)
        for (int b = 0; b < od[1]; b++)
            for (int c = 0; c < od[2]; c++)
                for (int d = 0; d < od[3]; d++, k++) {
                    int o[4] = {a, b, c, d}, in[4];
                    for (int i = 0; i < 4; i++) in[perm[i]] = o[i]; /* out axis i = in axis perm[i] */
                    bad += y[k] != x[((in[0] * dims[1] + in[1]) * dims[2] + in[2]) * dims[3] + in[3]];
                }
    cr_expect_eq(bad, 0, "dims [%d,%d,%d,%d] perm (%d,%d,%d,%d) threads %d direct %d: %d wrong", dims[0],
                 dims[1], dims[2], dims[3], perm[0], perm[1], perm[2], perm[3], threads, ac_ops_direct(), bad);
    free(x), free(y);
}

static void check_permute(const int dims[4], const int perm[4], unsigned seed)
{
    check_permute_on(dims, perm, seed, 2);
}

Test(ops_graph, permute4_all_24_permutations)
{
    const int dims[4] = {2, 3, 4, 5};
    int n = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++)
                for (int d = 0; d < 4; d++) {
                    if (a == b || a == c || a == d || b == c || b == d || c == d) continue;
                    const int perm[4] = {a, b, c, d};
                    check_permute(dims, perm, 160 + (unsigned)n++);
                }
    cr_expect_eq(n, 24);
    /* tiles larger than one 32 x 32 block and partial ones: ConvNeXt's [n, C, T] <-> [n, T, C] */
    check_permute((const int[4]){3, 1, 64, 101}, (const int[4]){0, 1, 3, 2}, 190);
    check_permute((const int[4]){3, 101, 64, 1}, (const int[4]){0, 2, 1, 3}, 191);
    check_permute((const int[4]){2, 33, 7, 45}, (const int[4]){3, 0, 2, 1}, 192);
}

/* The transposing permutes through both kernels (AVX-512 16 x 16 register tiles in 64 x 64
 * tiles, and the scalar loop): sides below, at and between multiples of 16 and 64, either
 * side the longer, the other axes outer or moved, one thread and two. */
Test(ops_graph, permute4_transposes_both_kernels)
{
    static const int cases[][2][4] = {
        {{3, 1, 128, 131}, {0, 1, 3, 2}},  /* [n, C, T] -> [n, T, C]: T > C */
        {{3, 1, 131, 128}, {0, 1, 3, 2}},  /* [n, T, C] -> [n, C, T] */
        {{2, 1, 16, 16}, {0, 1, 3, 2}},    /* exactly one register tile */
        {{2, 1, 17, 15}, {0, 1, 3, 2}},
        {{1, 1, 1, 70}, {0, 1, 3, 2}},     /* a row to a column */
        {{2, 3, 65, 79}, {0, 1, 3, 2}},
        {{2, 65, 5, 33}, {0, 3, 2, 1}},    /* the transposed axes not neighbours */
        {{2, 33, 7, 45}, {3, 0, 2, 1}},    /* the input's last axis to the front */
        {{4, 1, 64, 2000}, {0, 1, 3, 2}},  /* ConvNeXt's at batch 4 */
    };
    for (int direct = 0; direct < 2; direct++) {
        const int prev = ac_ops_set_direct(direct);
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
            for (int threads = 1; threads <= 2; threads++)
                check_permute_on(cases[c][0], cases[c][1], 200 + (unsigned)c, threads);
        ac_ops_set_direct(prev);
    }
}

/* ---------------------------------------------------------------- GRU and LSTM */

/* The weights of one RNN, random, owned here; params points into them. */
typedef struct rnn_case {
    ac_rnn_params p;
    float *w[4][8]; /* w_ih, w_hh, b_ih, b_hh per layer * dir (at most 4 x 2) */
} rnn_case;

static void rnn_case_init(rnn_case *c, ac_rnn_cell cell, int in, int H, int layers, int dirs, int bias,
                          unsigned seed)
{
    memset(c, 0, sizeof *c);
    c->p = (ac_rnn_params){cell, in, H, layers, dirs, NULL, NULL, NULL, NULL};
    const int G = cell == AC_RNN_GRU ? 3 : 4;
    const float scale = 1.f / sqrtf((float)H); /* PyTorch's init range */
    for (int i = 0; i < layers * dirs; i++) {
        const int K = i < dirs ? in : H * dirs;
        c->w[0][i] = rnd((size_t)G * H * K, seed++, scale);
        c->w[1][i] = rnd((size_t)G * H * H, seed++, scale);
        if (bias) {
            c->w[2][i] = rnd((size_t)G * H, seed++, scale);
            c->w[3][i] = rnd((size_t)G * H, seed++, scale);
        }
    }
    c->p.w_ih = (const float *const *)c->w[0];
    c->p.w_hh = (const float *const *)c->w[1];
    c->p.b_ih = bias ? (const float *const *)c->w[2] : NULL;
    c->p.b_hh = bias ? (const float *const *)c->w[3] : NULL;
}

static void rnn_case_free(rnn_case *c)
{
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 8; i++) free(c->w[k][i]);
}

static double sig(double v) { return 1 / (1 + exp(-v)); }

/* nn.GRU / nn.LSTM, batch_first, h0 = c0 = 0, in double, straight from PyTorch's equations. */
static void ref_rnn(const ac_rnn_params *p, const float *x, int n, int T, double *y)
{
    const int H = p->hidden, D = p->dirs, G = p->cell == AC_RNN_GRU ? 3 : 4;
    double *in = malloc(sizeof(double) * n * T * (p->input_size > H * D ? p->input_size : H * D));
    double *out = malloc(sizeof(double) * n * T * H * D);
    for (int i = 0; i < n * T * p->input_size; i++) in[i] = x[i];
    int K = p->input_size;
    for (int l = 0; l < p->layers; l++) {
        for (int d = 0; d < D; d++) {
            const float *wi = p->w_ih[l * D + d], *wh = p->w_hh[l * D + d];
            const float *bi = p->b_ih ? p->b_ih[l * D + d] : NULL, *bh = p->b_hh ? p->b_hh[l * D + d] : NULL;
            for (int b = 0; b < n; b++) {
                double h[128] = {0}, c[128] = {0}, hn[128], a[4][128], g[4][128]; /* H <= 128 */
                for (int s = 0; s < T; s++) {
                    int t = d == 0 ? s : T - 1 - s;
                    const double *xt = in + ((size_t)b * T + t) * K;
                    for (int k = 0; k < G; k++)
                        for (int j = 0; j < H; j++) {
                            int row = k * H + j;
                            double si = bi ? bi[row] : 0, sh = bh ? bh[row] : 0;
                            for (int q = 0; q < K; q++) si += wi[(size_t)row * K + q] * xt[q];
                            for (int q = 0; q < H; q++) sh += wh[(size_t)row * H + q] * h[q];
                            a[k][j] = si, g[k][j] = sh;
                        }
                    for (int j = 0; j < H; j++) {
                        if (p->cell == AC_RNN_GRU) {
                            double r = sig(a[0][j] + g[0][j]), z = sig(a[1][j] + g[1][j]);
                            double m = tanh(a[2][j] + r * g[2][j]);
                            hn[j] = (1 - z) * m + z * h[j];
                        } else {
                            double i_ = sig(a[0][j] + g[0][j]), f = sig(a[1][j] + g[1][j]);
                            double gg = tanh(a[2][j] + g[2][j]), o = sig(a[3][j] + g[3][j]);
                            c[j] = f * c[j] + i_ * gg;
                            hn[j] = o * tanh(c[j]);
                        }
                    }
                    for (int j = 0; j < H; j++) {
                        h[j] = hn[j];
                        out[((size_t)b * T + t) * H * D + d * H + j] = h[j];
                    }
                }
            }
        }
        K = H * D;
        memcpy(in, out, sizeof(double) * n * T * K);
    }
    memcpy(y, out, sizeof(double) * n * T * H * D);
    free(in), free(out);
}

/* Runs ac_rnn with a scratch full of NaN (so a value read before it is written shows). */
static float *run_rnn(const ac_rnn_params *p, const float *x, int n, int T, int threads)
{
    const size_t ns = ac_rnn_scratch(p, n, T);
    float *scratch = malloc((ns ? ns : 1) * sizeof *scratch);
    for (size_t i = 0; i < ns; i++) scratch[i] = NAN;
    float *y = malloc((size_t)n * T * p->hidden * p->dirs * sizeof *y);
    ac_rnn(p, x, n, T, y, scratch, threads);
    free(scratch);
    return y;
}

Test(ops_graph, rnn_gru_lstm_layers_directions_bias_lengths)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    unsigned seed = 200;
    for (int cell = AC_RNN_GRU; cell <= AC_RNN_LSTM; cell++)
        for (int layers = 1; layers <= 2; layers++)
            for (int dirs = 1; dirs <= 2; dirs++)
                for (int bias = 0; bias < 2; bias++)
                    for (int ti = 0; ti < 2; ti++) {
                        /* in != H; half the time H over 64 (a whole run of gate columns plus a part, vectorised)
                         * and T >= AC_RNN_KERNEL_MIN_STEPS (the AVX-512 step kernel) */
                        const int n = 3, T = ti ? (bias ? 9 : 7) : 1, in = 5, H = (bias ? 70 : 6) + layers + dirs;
                        rnn_case c;
                        rnn_case_init(&c, (ac_rnn_cell)cell, in, H, layers, dirs, bias, seed);
                        float *x = rnd((size_t)n * T * in, seed + 99, 1.f);
                        seed += 100;
                        const size_t ny = (size_t)n * T * H * dirs;
                        double *want = malloc(ny * sizeof *want);
                        ref_rnn(&c.p, x, n, T, want);
                        for (int threads = 1; threads <= 2; threads++) {
                            float *y = run_rnn(&c.p, x, n, T, threads);
                            double r = tol_ratio(y, want, ny, 1e-6, 1e-5);
                            cr_expect_leq(r, 1.0, "%s layers %d dirs %d bias %d T %d threads %d: %g x tolerance",
                                          cell == AC_RNN_GRU ? "gru" : "lstm", layers, dirs, bias, T, threads, r);
                            free(y);
                        }
                        free(x), free(want);
                        rnn_case_free(&c);
                    }
}

/* Larger: more items than threads, a longer sequence, wider layers (the SGEMM paths). */
Test(ops_graph, rnn_larger_batch_and_sequence)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    for (int cell = AC_RNN_GRU; cell <= AC_RNN_LSTM; cell++) {
        const int n = 5, T = 41, in = 33, H = 48, layers = 2, dirs = 2;
        rnn_case c;
        rnn_case_init(&c, (ac_rnn_cell)cell, in, H, layers, dirs, 1, 300 + (unsigned)cell * 50);
        float *x = rnd((size_t)n * T * in, 399, 1.f);
        const size_t ny = (size_t)n * T * H * dirs;
        double *want = malloc(ny * sizeof *want);
        ref_rnn(&c.p, x, n, T, want);
        float *y = run_rnn(&c.p, x, n, T, 2);
        double r = tol_ratio(y, want, ny, 1e-6, 1e-5);
        cr_expect_leq(r, 1.0, "%s: %g x tolerance", cell == AC_RNN_GRU ? "gru" : "lstm", r);
        free(x), free(y), free(want);
        rnn_case_free(&c);
    }
}

/* The F32 tensor `prefix.suffix` of the fixture, checked for its size; NULL if absent. */
static const float *fixture_tensor(ac_weights *w, const char *prefix, const char *suffix, int64_t numel)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    ac_tensor_ref *t = ac_weights_find(w, name);
    cr_assert_not_null(t, "fixture lacks %s", name);
    cr_assert_eq(t->dtype, AC_F32, "%s", name);
    cr_assert_eq(t->numel, numel, "%s: %lld values, expected %lld", name, (long long)t->numel, (long long)numel);
    return t->data;
}

/* ac_rnn against nn.GRU / nn.LSTM themselves (float64 PyTorch on the stored float32 weights and
 * inputs), with the weights read by their state_dict names. */
Test(ops_graph, rnn_matches_pytorch_fixture)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    char err[AC_ERR_LEN];
    ac_weights *w = NULL;
    cr_assert_eq(ac_weights_open(tu_src_path("tests/golden/rnn_ops.safetensors"), &w, err), AC_OK, "%s", err);
    const char *meta = ac_weights_meta(w, "cases");
    cr_assert_not_null(meta);
    json_error_t jerr;
    json_t *cases = json_loads(meta, 0, &jerr);
    cr_assert(json_is_array(cases) && json_array_size(cases) >= 6, "cases: %s", jerr.text);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const int lstm = !strcmp(json_string_value(json_object_get(c, "cell")), "lstm");
        const int in = (int)json_integer_value(json_object_get(c, "input_size"));
        const int H = (int)json_integer_value(json_object_get(c, "hidden"));
        const int layers = (int)json_integer_value(json_object_get(c, "layers"));
        const int D = json_is_true(json_object_get(c, "bidirectional")) ? 2 : 1;
        const int bias = json_is_true(json_object_get(c, "bias"));
        const int n = (int)json_integer_value(json_object_get(c, "n"));
        const int T = (int)json_integer_value(json_object_get(c, "T"));
        const int G = lstm ? 4 : 3;
        const float *wih[8], *whh[8], *bih[8], *bhh[8];
        cr_assert_leq(layers * D, 8);
        for (int l = 0; l < layers; l++)
            for (int d = 0; d < D; d++) {
                char sfx[64];
                const char *rev = d ? "_reverse" : "";
                const int K = l == 0 ? in : H * D;
                snprintf(sfx, sizeof sfx, "weight_ih_l%d%s", l, rev);
                wih[l * D + d] = fixture_tensor(w, name, sfx, (int64_t)G * H * K);
                snprintf(sfx, sizeof sfx, "weight_hh_l%d%s", l, rev);
                whh[l * D + d] = fixture_tensor(w, name, sfx, (int64_t)G * H * H);
                if (!bias) continue;
                snprintf(sfx, sizeof sfx, "bias_ih_l%d%s", l, rev);
                bih[l * D + d] = fixture_tensor(w, name, sfx, (int64_t)G * H);
                snprintf(sfx, sizeof sfx, "bias_hh_l%d%s", l, rev);
                bhh[l * D + d] = fixture_tensor(w, name, sfx, (int64_t)G * H);
            }
        const ac_rnn_params p = {lstm ? AC_RNN_LSTM : AC_RNN_GRU, in, H, layers, D, wih, whh,
                                 bias ? bih : NULL, bias ? bhh : NULL};
        const float *x = fixture_tensor(w, name, "x", (int64_t)n * T * in);
        const float *want = fixture_tensor(w, name, "y", (int64_t)n * T * H * D);
        for (int threads = 1; threads <= 2; threads++) {
            float *y = run_rnn(&p, x, n, T, threads);
            double d = tu_max_abs_diff(y, want, (size_t)n * T * H * D);
            cr_expect_leq(d, 1e-5, "%s threads %d: max |C - PyTorch| = %g", name, threads, d);
            free(y);
        }
    }
    json_decref(cases);
    ac_weights_close(w);
}
