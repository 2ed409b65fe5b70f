/* shape.c - copies that move values between axes: concat, slice, pad, mean, permute (ops_graph.h);
 * permute transposes with the AVX-512 kernel of transpose.c where the direct kernels are on. */
#include "ops_graph.h"

#include "ops.h"
#include "ops_team.h"
#include "transpose.h"

#include <string.h>

/* Positions per block of ac_mean_axis's double accumulators (on the stack). */
#define AC_MEAN_BLOCK 256
/* Side of the square tiles in which ac_permute4 transposes, so that both the reads and the
 * writes of a tile stay within a few cache lines per row: AC_PERM_TILE element by element,
 * AC_PERM_TILE_V with the AVX-512 kernel (16 x 16 register tiles inside; a 64 x 64 tile's
 * 16 kB read and 16 kB written stay in L1). */
#define AC_PERM_TILE 32
#define AC_PERM_TILE_V 64

void ac_concat(const float *const *xs, const int *ks, int count, size_t rows, size_t inner,
               float *y, int threads)
{
    size_t ktot = 0;
    for (int i = 0; i < count; i++) ktot += (size_t)ks[i];
    const int nt = ac_ops_team(threads, (long)rows, (double)rows * ktot * inner);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (size_t r = 0; r < rows; r++) {
            float *dst = y + r * ktot * inner;
            for (int i = 0; i < count; i++) {
                const size_t len = (size_t)ks[i] * inner;
                memcpy(dst, xs[i] + r * len, len * sizeof *dst);
                dst += len;
            }
        });
}

void ac_slice(const float *x, size_t rows, int k, size_t inner, int start, int step, int count,
              float *y, int threads)
{
    const int nt = ac_ops_team(threads, (long)rows, (double)rows * count * inner);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (size_t r = 0; r < rows; r++) {
            const float *src = x + (r * k + (size_t)start) * inner;
            float *dst = y + r * count * inner;
            if (step == 1) {
                memcpy(dst, src, (size_t)count * inner * sizeof *dst);
            } else if (inner == 1) {
                for (int j = 0; j < count; j++) dst[j] = src[(size_t)j * step];
            } else {
                for (int j = 0; j < count; j++)
                    memcpy(dst + (size_t)j * inner, src + (size_t)j * step * inner, inner * sizeof *dst);
            }
        });
}

void ac_pad2d(const float *x, size_t planes, int h, int w, int pt, int pb, int pl, int pr,
              float value, float *y, int threads)
{
    const int ho = h + pt + pb, wo = w + pl + pr;
    const int nt = ac_ops_team(threads, (long)planes, (double)planes * ho * wo);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (size_t pc = 0; pc < planes; pc++) {
            const float *in = x + pc * h * w;
            float *out = y + pc * ho * wo;
            for (int oy = 0; oy < ho; oy++) {
                float *o = out + (size_t)oy * wo;
                const int iy = oy - pt;
                if (iy < 0 || iy >= h) {
                    for (int j = 0; j < wo; j++) o[j] = value;
                    continue;
                }
                for (int j = 0; j < pl; j++) o[j] = value;
                memcpy(o + pl, in + (size_t)iy * w, (size_t)w * sizeof *o);
                for (int j = pl + w; j < wo; j++) o[j] = value;
            }
        });
}

/* Positions [j0, j0 + len) of one row x [k, inner]: sums over k in double, lanes over positions. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void mean_block(
    const float *x, int k, size_t inner, int len, float *y)
{
    double acc[AC_MEAN_BLOCK];
    for (int j = 0; j < len; j++) acc[j] = 0;
    for (int i = 0; i < k; i++) {
        const float *r = x + (size_t)i * inner;
        for (int j = 0; j < len; j++) acc[j] += r[j];
    }
    for (int j = 0; j < len; j++) y[j] = (float)(acc[j] / k);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static float mean_contiguous(
    const float *x, int k)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < k; i++) s += x[i];
    return (float)(s / k);
}

void ac_mean_axis(const float *x, size_t rows, int k, size_t inner, float *y, int threads)
{
    if (k == 1) { /* a mean over one value (M5's time axis at its 1 s window): a copy */
        if (y != x) memcpy(y, x, rows * inner * sizeof *y);
        return;
    }
    const long blocks = (long)((inner + AC_MEAN_BLOCK - 1) / AC_MEAN_BLOCK), tasks = (long)rows * blocks;
    const int nt = ac_ops_team(threads, tasks, (double)rows * k * inner);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (long t = 0; t < tasks; t++) {
            const size_t r = (size_t)(t / blocks), j0 = (size_t)(t % blocks) * AC_MEAN_BLOCK;
            if (inner == 1) {
                y[r] = mean_contiguous(x + r * k, k);
                continue;
            }
            const int len = inner - j0 < AC_MEAN_BLOCK ? (int)(inner - j0) : AC_MEAN_BLOCK;
            mean_block(x + r * k * inner + j0, k, inner, len, y + r * inner + j0);
        });
}

void ac_permute4(const float *x, const int dims[4], const int perm[4], float *y, int threads)
{
    size_t in_stride[4];
    in_stride[3] = 1;
    for (int i = 2; i >= 0; i--) in_stride[i] = in_stride[i + 1] * (size_t)dims[i + 1];
    size_t od[4], s[4], out_stride[4];
    for (int i = 0; i < 4; i++) od[i] = (size_t)dims[perm[i]], s[i] = in_stride[perm[i]];
    out_stride[3] = 1;
    for (int i = 2; i >= 0; i--) out_stride[i] = out_stride[i + 1] * od[i + 1];
    const size_t total = od[0] * od[1] * od[2] * od[3];
    /* q: the output axis that walks the input's last axis. When it is not the output's last
     * axis, axes q and 3 are transposed tile by tile; the other two axes are outer loops. */
    int q = 0;
    while (perm[q] != 3) q++;
    if (q == 3 || od[3] == 1 || od[q] == 1) { /* rows of the output: a strided gather each */
        const size_t rows = od[0] * od[1] * od[2];
        const int nt = ac_ops_team(threads, (long)rows, (double)total);
        AC_PARALLEL_FOR(nt, schedule(static),
            for (size_t r = 0; r < rows; r++) {
                const size_t i2 = r % od[2], i1 = r / od[2] % od[1], i0 = r / (od[2] * od[1]);
                const float *in = x + i0 * s[0] + i1 * s[1] + i2 * s[2];
                float *out = y + r * od[3];
                if (s[3] == 1)
                    memcpy(out, in, od[3] * sizeof *out);
                else
                    for (size_t j = 0; j < od[3]; j++) out[j] = in[j * s[3]];
            });
        return;
    }
    int outer[2], m = 0; /* the two output axes besides q and 3 */
    for (int i = 0; i < 3; i++)
        if (i != q) outer[m++] = i;
    const int vec = ac_ops_direct();
    const size_t side = vec ? AC_PERM_TILE_V : AC_PERM_TILE;
    const size_t ta = (od[q] + side - 1) / side, tb = (od[3] + side - 1) / side;
    /* Consecutive tasks walk the shorter of the two axes (b when od[3] <= od[q]): a run of
     * them then reads (x [b, a], rows along b) or writes (y [a, b]) one contiguous strip,
     * and the cache lines the other side shares between neighbouring tiles are still in L1. */
    const int b_inner = od[3] <= od[q];
    const size_t tasks = od[outer[0]] * od[outer[1]] * ta * tb;
    const int nt = ac_ops_team(threads, (long)tasks, (double)total);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (size_t t = 0; t < tasks; t++) {
            const size_t ia = b_inner ? t / tb % ta : t % ta, ib = b_inner ? t % tb : t / ta % tb;
            const size_t a0 = ia * side, b0 = ib * side, rest = t / (tb * ta);
            const size_t u1 = rest % od[outer[1]], u0 = rest / od[outer[1]];
            const float *in = x + u0 * s[outer[0]] + u1 * s[outer[1]];
            float *out = y + u0 * out_stride[outer[0]] + u1 * out_stride[outer[1]];
            const size_t a1 = a0 + side < od[q] ? a0 + side : od[q];
            const size_t b1 = b0 + side < od[3] ? b0 + side : od[3];
            if (vec) { /* in [b, a] (row stride s3) -> out [a, b] (row stride out_stride[q]) */
                /* the output of the tile this run of tasks reaches next, for writing: when tiles
                 * walk a, rows a0..a1 one tile further along b; when they walk b, the rows one
                 * tile further along a (prefetching input rows gained nothing measurable) */
                if (!b_inner && b1 < od[3])
                    ac_transpose_prefetch(out + a0 * out_stride[q] + b1, out_stride[q], (int)(a1 - a0),
                                          (int)(od[3] - b1 < side ? od[3] - b1 : side), 1);
                if (b_inner && a1 < od[q])
                    ac_transpose_prefetch(out + a1 * out_stride[q] + b0, out_stride[q],
                                          (int)(od[q] - a1 < side ? od[q] - a1 : side), (int)(b1 - b0), 1);
                ac_transpose_block(in + a0 + b0 * s[3], s[3], out + a0 * out_stride[q] + b0, out_stride[q],
                                   (int)(b1 - b0), (int)(a1 - a0));
            } else
                for (size_t a = a0; a < a1; a++) /* out[.., a (axis q), .., b] = in[a + b * s3] */
                    for (size_t b = b0; b < b1; b++) out[a * out_stride[q] + b] = in[a + b * s[3]];
        });
}
