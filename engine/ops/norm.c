/* norm.c - LayerNorm over the last axis and over channels (ops_graph.h). */
#include "ops_graph.h"

#include "ops_team.h"

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

void ac_layernorm_last(const float *x, size_t rows, int d, const float *gamma, const float *beta,
                       float eps, float *y, int threads)
{
    const int nt = ac_ops_team(threads, (long)rows, 4.0 * rows * d);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (size_t r = 0; r < rows; r++)
        ln_row(x + r * d, d, gamma, beta, eps, y + r * d);
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

void ac_layernorm_channels(const float *x, int n, int c, size_t inner, const float *gamma,
                           const float *beta, float eps, float *y, int threads)
{
    const long blocks = (long)((inner + AC_LN_BLOCK - 1) / AC_LN_BLOCK), tasks = (long)n * blocks;
    const int nt = ac_ops_team(threads, tasks, 4.0 * n * c * inner);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (long t = 0; t < tasks; t++) {
        const size_t item = (size_t)(t / blocks) * c * inner, j0 = (size_t)(t % blocks) * AC_LN_BLOCK;
        const int len = inner - j0 < AC_LN_BLOCK ? (int)(inner - j0) : AC_LN_BLOCK;
        ln_block(x + item + j0, c, inner, len, gamma, beta, eps, y + item + j0);
    }
}
