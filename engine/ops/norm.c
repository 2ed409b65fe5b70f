/* norm.c - LayerNorm over the last axis and over channels (ops_graph.h); AVX-512 row and
 * block kernels where the direct kernels are on (ac_ops_direct), portable loops elsewhere. */
#include "ops_graph.h"

#include "ops.h"
#include "ops_team.h"

#include <immintrin.h>
#include <math.h>

/* Positions normalised together by ac_layernorm_channels: their sums live on the stack. */
#define AC_LN_BLOCK 256

/* One row of d values. Two passes (mean, then the mean square of the deviations) in double:
 * the textbook formula, no cancellation, as exact as PyTorch's float32 kernel or better. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void ln_row(
    const float *x, int d, const float *gamma, const float *beta, float eps, float *y)
{
    double s = 0, q = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < d; i++) s += x[i];
    const double mean = s / d;
#pragma omp simd reduction(+ : q)
    for (int i = 0; i < d; i++) q += ((double)x[i] - mean) * ((double)x[i] - mean);
    const float m = (float)mean, rstd = (float)(1.0 / sqrt(q / d + eps));
    for (int i = 0; i < d; i++) { /* (unswitched by the compiler: one loop per case) */
        float v = (x[i] - m) * rstd;
        if (gamma) v *= gamma[i];
        if (beta) v += beta[i];
        y[i] = v;
    }
}

/* Rows that ln_rows_avx512 normalises together. */
#define LN_ROWS 4

/* ln_row with AVX-512 for nr <= LN_ROWS rows at once, the same sums in double: 16 floats per
 * step, each half widened to 8 doubles, the d % 16 tail in scalar code. One row alone is a
 * chain of dependent steps (sum, reduction, mean, squares, reduction, square root, division)
 * that left the vector units idle most of the time (ConvNeXt's rows of 128 ran at 3.2x their
 * memory bound); LN_ROWS independent chains side by side keep them busy. A row of 128 stays
 * in L1 across the three passes, so it is read from memory once and written once. */
__attribute__((target("avx512f"))) static void ln_rows_avx512(const float *x, int nr, int d,
                                                              const float *gamma, const float *beta,
                                                              float eps, float *y)
{
    const int dv = d & ~15;
    const float *xr[LN_ROWS];
    for (int r = 0; r < LN_ROWS; r++) /* past nr: the last row again, not stored */
        xr[r] = x + (size_t)(r < nr ? r : nr - 1) * d;
    __m512d a[LN_ROWS][2];
    double mean[LN_ROWS], q[LN_ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < LN_ROWS; r++) a[r][0] = a[r][1] = _mm512_setzero_pd();
    for (int i = 0; i < dv; i += 16)
#pragma GCC unroll 4
        for (int r = 0; r < LN_ROWS; r++) {
            a[r][0] = _mm512_add_pd(a[r][0], _mm512_cvtps_pd(_mm256_loadu_ps(xr[r] + i)));
            a[r][1] = _mm512_add_pd(a[r][1], _mm512_cvtps_pd(_mm256_loadu_ps(xr[r] + i + 8)));
        }
    __m512d mv[LN_ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < LN_ROWS; r++) {
        double s = _mm512_reduce_add_pd(_mm512_add_pd(a[r][0], a[r][1]));
        for (int i = dv; i < d; i++) s += xr[r][i];
        mean[r] = s / d;
        mv[r] = _mm512_set1_pd(mean[r]);
        a[r][0] = a[r][1] = _mm512_setzero_pd();
    }
    for (int i = 0; i < dv; i += 16)
#pragma GCC unroll 4
        for (int r = 0; r < LN_ROWS; r++) {
            const __m512d e0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(xr[r] + i)), mv[r]);
            const __m512d e1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(xr[r] + i + 8)), mv[r]);
            a[r][0] = _mm512_fmadd_pd(e0, e0, a[r][0]);
            a[r][1] = _mm512_fmadd_pd(e1, e1, a[r][1]);
        }
#pragma GCC unroll 4
    for (int r = 0; r < LN_ROWS; r++) {
        q[r] = _mm512_reduce_add_pd(_mm512_add_pd(a[r][0], a[r][1]));
        for (int i = dv; i < d; i++) q[r] += ((double)xr[r][i] - mean[r]) * ((double)xr[r][i] - mean[r]);
    }
    for (int r = 0; r < nr; r++) { /* in place: row r is read here last, after its statistics */
        const float m = (float)mean[r], rstd = (float)(1.0 / sqrt(q[r] / d + eps));
        const __m512 m16 = _mm512_set1_ps(m), r16 = _mm512_set1_ps(rstd);
        const float *xi = xr[r];
        float *yi = y + (size_t)r * d;
        int i = 0;
        for (; i < dv; i += 16) {
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xi + i), m16), r16);
            if (gamma) v = _mm512_mul_ps(v, _mm512_loadu_ps(gamma + i));
            if (beta) v = _mm512_add_ps(v, _mm512_loadu_ps(beta + i));
            _mm512_storeu_ps(yi + i, v);
        }
        for (; i < d; i++) {
            float v = (xi[i] - m) * rstd;
            if (gamma) v *= gamma[i];
            if (beta) v += beta[i];
            yi[i] = v;
        }
    }
}

void ac_layernorm_last(const float *x, size_t rows, int d, const float *gamma, const float *beta,
                       float eps, float *y, int threads)
{
    if (ac_ops_direct()) {
        const long groups = (long)((rows + LN_ROWS - 1) / LN_ROWS);
        const int ng = ac_ops_team(threads, groups, 4.0 * rows * d);
        AC_PARALLEL_FOR(ng, schedule(static),
            for (long gi = 0; gi < groups; gi++) {
                const size_t r = (size_t)gi * LN_ROWS;
                const int nr = rows - r < LN_ROWS ? (int)(rows - r) : LN_ROWS;
                ln_rows_avx512(x + r * d, nr, d, gamma, beta, eps, y + r * d);
            });
        return;
    }
    const int nt = ac_ops_team(threads, (long)rows, 4.0 * rows * d);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (size_t r = 0; r < rows; r++) {
            ln_row(x + r * d, d, gamma, beta, eps, y + r * d);
        });
}

/* Positions [j0, j0 + len) of one item x [c, inner]: the sums run across the channels with the
 * positions as the vector lanes, so every pass reads rows contiguously. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void ln_block(
    const float *x, int c, size_t inner, int len, const float *gamma, const float *beta, float eps,
    float *y)
{
    double mean[AC_LN_BLOCK], var[AC_LN_BLOCK];
    for (int j = 0; j < len; j++) mean[j] = var[j] = 0;
    for (int ch = 0; ch < c; ch++) {
        const float *r = x + (size_t)ch * inner;
        for (int j = 0; j < len; j++) mean[j] += r[j];
    }
    for (int j = 0; j < len; j++) mean[j] /= c;
    for (int ch = 0; ch < c; ch++) {
        const float *r = x + (size_t)ch * inner;
        for (int j = 0; j < len; j++) var[j] += ((double)r[j] - mean[j]) * ((double)r[j] - mean[j]);
    }
    float m[AC_LN_BLOCK], rstd[AC_LN_BLOCK];
    for (int j = 0; j < len; j++) {
        m[j] = (float)mean[j];
        rstd[j] = (float)(1.0 / sqrt(var[j] / c + eps));
    }
    for (int ch = 0; ch < c; ch++) {
        const float *r = x + (size_t)ch * inner;
        float *o = y + (size_t)ch * inner;
        const float g = gamma ? gamma[ch] : 1.f, b = beta ? beta[ch] : 0.f;
        for (int j = 0; j < len; j++) o[j] = (r[j] - m[j]) * rstd[j] * g + b;
    }
}

/* Positions per block of ln_block_avx512: 4 vectors (8 accumulators in double), so a block of
 * 128 channels (32 kB) stays in L1 across the three passes. */
#define LN_BLOCK_V 64

/* 16 floats at p as two vectors of 8 doubles: in a full block straight from memory, in a
 * partial one from a masked load (lanes off the mask read as 0 and are not touched). */
#define LN_WIDEN(p, mask, full, lo, hi)                                                            \
    do {                                                                                           \
        if (full) {                                                                                \
            lo = _mm512_cvtps_pd(_mm256_loadu_ps(p));                                              \
            hi = _mm512_cvtps_pd(_mm256_loadu_ps((p) + 8));                                        \
        } else {                                                                                   \
            const __m512 xv_ = _mm512_maskz_loadu_ps(mask, p);                                     \
            lo = _mm512_cvtps_pd(_mm512_castps512_ps256(xv_));                                     \
            hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(xv_), 1))); \
        }                                                                                          \
    } while (0)

/* Two vectors of 8 doubles as one of 16 floats (lo in lanes 0-7). */
#define LN_NARROW(lo, hi)                                                                          \
    _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(_mm512_cvtpd_ps(lo))), \
                                        _mm256_castps_pd(_mm512_cvtpd_ps(hi)), 1))

/* ln_block with AVX-512: the statistics of len <= LN_BLOCK_V positions in 8 double vectors,
 * the last, partial vector masked (its lanes beyond len are neither read nor stored). */
__attribute__((target("avx512f"))) static void ln_block_avx512(const float *x, int c, size_t inner, int len,
                                                               const float *gamma, const float *beta,
                                                               float eps, float *y)
{
    const int full = len == LN_BLOCK_V;
    __mmask16 mk[4];
    for (int v = 0; v < 4; v++) {
        const int l = len - 16 * v;
        mk[v] = l >= 16 ? 0xffff : l > 0 ? (__mmask16)((1u << l) - 1) : 0;
    }
    __m512d s[8], q[8], mean[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) s[k] = q[k] = _mm512_setzero_pd();
    for (int ch = 0; ch < c; ch++) {
        const float *r = x + (size_t)ch * inner;
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            __m512d lo, hi;
            LN_WIDEN(r + 16 * v, mk[v], full, lo, hi);
            s[2 * v] = _mm512_add_pd(s[2 * v], lo);
            s[2 * v + 1] = _mm512_add_pd(s[2 * v + 1], hi);
        }
    }
    const __m512d cd = _mm512_set1_pd(c);
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) mean[k] = _mm512_div_pd(s[k], cd);
    for (int ch = 0; ch < c; ch++) {
        const float *r = x + (size_t)ch * inner;
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            __m512d lo, hi;
            LN_WIDEN(r + 16 * v, mk[v], full, lo, hi);
            const __m512d e0 = _mm512_sub_pd(lo, mean[2 * v]), e1 = _mm512_sub_pd(hi, mean[2 * v + 1]);
            q[2 * v] = _mm512_fmadd_pd(e0, e0, q[2 * v]);
            q[2 * v + 1] = _mm512_fmadd_pd(e1, e1, q[2 * v + 1]);
        }
    }
    __m512 m[4], rstd[4]; /* back to float, 16 positions each */
    const __m512d one = _mm512_set1_pd(1.0), ed = _mm512_set1_pd(eps);
    __m512d rs[8]; /* 1 / sqrt(variance + eps), in double as ln_block */
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) rs[k] = _mm512_div_pd(one, _mm512_sqrt_pd(_mm512_add_pd(_mm512_div_pd(q[k], cd), ed)));
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        m[v] = LN_NARROW(mean[2 * v], mean[2 * v + 1]);
        rstd[v] = LN_NARROW(rs[2 * v], rs[2 * v + 1]);
    }
    for (int ch = 0; ch < c; ch++) {
        const float *r = x + (size_t)ch * inner;
        float *o = y + (size_t)ch * inner;
        const __m512 g = _mm512_set1_ps(gamma ? gamma[ch] : 1.f), b = _mm512_set1_ps(beta ? beta[ch] : 0.f);
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            const __m512 xv = _mm512_maskz_loadu_ps(mk[v], r + 16 * v);
            const __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(xv, m[v]), rstd[v]), g);
            if (full)
                _mm512_storeu_ps(o + 16 * v, _mm512_add_ps(t, b));
            else
                _mm512_mask_storeu_ps(o + 16 * v, mk[v], _mm512_add_ps(t, b));
        }
    }
}

void ac_layernorm_channels(const float *x, int n, int c, size_t inner, const float *gamma,
                           const float *beta, float eps, float *y, int threads)
{
    const int vec = ac_ops_direct();
    const size_t bl = vec ? LN_BLOCK_V : AC_LN_BLOCK;
    const long blocks = (long)((inner + bl - 1) / bl), tasks = (long)n * blocks;
    const int nt = ac_ops_team(threads, tasks, 4.0 * n * c * inner);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (long t = 0; t < tasks; t++) {
            const size_t item = (size_t)(t / blocks) * c * inner, j0 = (size_t)(t % blocks) * bl;
            const int len = inner - j0 < bl ? (int)(inner - j0) : (int)bl;
            if (vec)
                ln_block_avx512(x + item + j0, c, inner, len, gamma, beta, eps, y + item + j0);
            else
                ln_block(x + item + j0, c, inner, len, gamma, beta, eps, y + item + j0);
        });
}
