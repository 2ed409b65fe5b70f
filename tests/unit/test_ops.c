/* test_ops.c - every op against a naive reference: odd sizes, stride > 1, dilation,
 * causal and asymmetric padding, groups, batch > 1, several thread counts. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "conv_depthwise.h"
#include "conv_direct.h"
#include "gemm_bf16.h"
#include "linear_vnni.h"
#include "ops.h"
#include "tensor.h"
#include "testutil.h"

#define TOL 1e-4
/* shape fields in declaration order; no prepacked weights; kernel chosen per call */
#define CONV(...) ((ac_conv_params){__VA_ARGS__, NULL, AC_CONV_AUTO, NULL})

/* Direct 7-loop convolution: the definition, with no cleverness. */
static void ref_conv2d(const float *x, int n, int h, int w, const float *wt, const float *b,
                       const ac_conv_params *p, int relu, float *y)
{
    int ho = ac_out_size(h, p->kh, p->sh, p->dh, p->pad_t, p->pad_b);
    int wo = ac_out_size(w, p->kw, p->sw, p->dw, p->pad_l, p->pad_r);
    int cin_g = p->cin / p->groups, cout_g = p->cout / p->groups;
    for (int bi = 0; bi < n; bi++)
        for (int o = 0; o < p->cout; o++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    double s = b ? b[o] : 0;
                    int g = o / cout_g;
                    for (int ci = 0; ci < cin_g; ci++)
                        for (int ky = 0; ky < p->kh; ky++)
                            for (int kx = 0; kx < p->kw; kx++) {
                                int iy = oy * p->sh - p->pad_t + ky * p->dh;
                                int ix = ox * p->sw - p->pad_l + kx * p->dw;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                s += (double)x[((size_t)(bi * p->cin + g * cin_g + ci) * h + iy) * w + ix] *
                                     wt[((size_t)(o * cin_g + ci) * p->kh + ky) * p->kw + kx];
                            }
                    if (relu && s < 0) s = 0;
                    y[((size_t)(bi * p->cout + o) * ho + oy) * wo + ox] = (float)s;
                }
}

/* The reference with the layer's fused pool applied (one-row outputs: max over whole
 * windows of pool_w, tail dropped). r: [n, cout, ho, wo] floats. Returns the values kept. */
static size_t ref_conv_pooled(const float *x, int n, int h, int w, const float *wt, const float *b,
                              const ac_conv_params *p, int relu, float *r)
{
    int ho = ac_out_size(h, p->kh, p->sh, p->dh, p->pad_t, p->pad_b);
    int wo = ac_out_size(w, p->kw, p->sw, p->dw, p->pad_l, p->pad_r);
    ref_conv2d(x, n, h, w, wt, b, p, relu, r);
    if (p->pool_w <= 0) return (size_t)n * p->cout * ho * wo;
    int wp = wo / p->pool_w;
    for (size_t row = 0; row < (size_t)n * p->cout; row++)
        for (int j = 0; j < wp; j++) {
            float m = r[row * wo + (size_t)j * p->pool_w];
            for (int i = 1; i < p->pool_w; i++) m = fmaxf(m, r[row * wo + (size_t)j * p->pool_w + i]);
            r[row * wp + j] = m; /* row * wp + j <= row * wo + j * pool_w: never ahead of reads */
        }
    return (size_t)n * p->cout * wp;
}

/* BF16 weights (as a model that asks for BF16 compute gets them): where the CPU has
 * AVX-512 BF16, the result is the reference on bfloat16-rounded inputs and weights (sums in
 * FP32, 1e-4); elsewhere, or with the hand-written kernels off, the FP32 result. */
static void check_conv_bf16(const ac_conv_params *p, const float *x, int n, int h, int w,
                            const float *wt, const float *b, int relu, int threads, const float *fp32)
{
    if (ac_conv_is_depthwise(p)) return; /* depthwise layers stay FP32 */
    const int G = p->groups, cog = p->cout / G, K = p->cin / G * p->kh * p->kw;
    const size_t per = ac_bf16_packed_size(cog, K), nx = (size_t)n * p->cin * h * w;
    const size_t nw = (size_t)p->cout * K;
    uint16_t *packed = malloc(sizeof(uint16_t) * per * (size_t)G);
    for (int g = 0; g < G; g++) ac_bf16_pack_a(wt + (size_t)g * cog * K, cog, K, K, packed + per * (size_t)g);
    ac_conv_params pp = *p;
    pp.bf16 = packed;
    pp.kernel = ac_conv2d_choose(&pp, h, w);
    const int bf16 = ac_bf16_supported() && K >= AC_BF16_MIN_K;
    cr_expect_eq(pp.kernel == AC_CONV_BF16, bf16, "BF16 weights choose im2col+bf16 where the CPU can (K = %d)", K);
    int ho = ac_out_size(h, p->kh, p->sh, p->dh, p->pad_t, p->pad_b);
    int wo = ac_out_size(w, p->kw, p->sw, p->dw, p->pad_l, p->pad_r);
    size_t ny = (size_t)n * p->cout * ho * wo;
    float *y = malloc(ny * 4), *r = malloc(ny * 4), *rx = malloc(nx * 4), *rw = malloc(nw * 4);
    float *scratch = ac_alloc_floats(ac_conv2d_scratch(&pp, h, w) * (size_t)threads);
    ac_conv2d(x, n, h, w, wt, b, &pp, relu, y, scratch, threads);
    size_t kept;
    if (bf16) {
        for (size_t i = 0; i < nx; i++) rx[i] = ac_bf16_round(x[i]);
        for (size_t i = 0; i < nw; i++) rw[i] = ac_bf16_round(wt[i]);
        kept = ref_conv_pooled(rx, n, h, w, rw, b, p, relu, r);
    } else {
        kept = ref_conv_pooled(x, n, h, w, wt, b, p, relu, r);
    }
    double d = tu_max_abs_diff(y, r, kept);
    cr_expect_leq(d, TOL, "bf16 conv cin=%d cout=%d g=%d k=%dx%d s=%dx%d pool=%d n=%d h=%d w=%d bf16=%d: diff %g",
                  p->cin, p->cout, p->groups, p->kh, p->kw, p->sh, p->sw, p->pool_w, n, h, w,
                  bf16, d);
    /* rounding the inputs is all BF16 changes: within what K bfloat16 rounding errors allow */
    double e = tu_max_abs_diff(y, fp32, kept);
    cr_expect_leq(e, 1e-2 * sqrt((double)K), "bf16 conv strays from FP32 by %g (K = %d)", e, K);
    free(packed), free(y), free(r), free(rx), free(rw);
    ac_free_aligned(scratch);
}

static void check_conv(ac_conv_params p, int n, int h, int w, int relu, int threads, unsigned seed)
{
    int ho = ac_out_size(h, p.kh, p.sh, p.dh, p.pad_t, p.pad_b);
    int wo = ac_out_size(w, p.kw, p.sw, p.dw, p.pad_l, p.pad_r);
    cr_assert_gt(ho, 0);
    cr_assert_gt(wo, 0);
    size_t nx = (size_t)n * p.cin * h * w, nw = (size_t)p.cout * (p.cin / p.groups) * p.kh * p.kw;
    size_t ny = (size_t)n * p.cout * ho * wo; /* unpooled; a fused pool shrinks wo to wo / pool_w */
    float *x = malloc(nx * 4), *wt = malloc(nw * 4), *b = malloc((size_t)p.cout * 4);
    float *y = malloc(ny * 4), *r = malloc(ny * 4);
    float *scratch = ac_alloc_floats(ac_conv2d_scratch(&p, h, w) * (size_t)threads);
    tu_fill_random(x, nx, seed);
    tu_fill_random(wt, nw, seed + 1);
    tu_fill_random(b, (size_t)p.cout, seed + 2);
    ac_conv2d(x, n, h, w, wt, b, &p, relu, y, scratch, threads);
    float *packed = NULL;
    if (ac_ops_direct() && ac_conv_direct_choose(&p, h, w) == AC_DIRECT_CHANNELS) {
        /* the same with weights packed up front (as models do at load): same result */
        const int G = p.groups, cig = p.cin / G, cog = p.cout / G;
        const size_t per = ac_conv_direct_packed_floats(cog, cig, p.kw);
        packed = ac_alloc_floats(per * (size_t)G);
        for (int g = 0; g < G; g++)
            ac_conv_direct_pack(wt + (size_t)g * cog * cig * p.kw, cog, cig, p.kw, packed + per * (size_t)g);
        ac_conv_params pp = p;
        pp.packed = packed;
        float *y2 = malloc(ny * 4);
        ac_conv2d(x, n, h, w, wt, b, &pp, relu, y2, scratch, threads);
        cr_expect_eq(memcmp(y, y2, (p.pool_w > 0 ? (size_t)n * p.cout * (wo / p.pool_w) : ny) * 4), 0,
                     "prepacked weights change the result");
        free(y2);
    }
    ac_free_aligned(packed);
    ny = ref_conv_pooled(x, n, h, w, wt, b, &p, relu, r);
    check_conv_bf16(&p, x, n, h, w, wt, b, relu, threads, y);
    double d = tu_max_abs_diff(y, r, ny);
    cr_expect_leq(d, TOL, "conv cin=%d cout=%d g=%d k=%dx%d s=%dx%d d=%dx%d pad=%d,%d,%d,%d pool=%d n=%d h=%d w=%d direct=%d: diff %g",
                  p.cin, p.cout, p.groups, p.kh, p.kw, p.sh, p.sw, p.dh, p.dw, p.pad_t, p.pad_b,
                  p.pad_l, p.pad_r, p.pool_w, n, h, w, ac_ops_direct() ? (int)ac_conv_direct_choose(&p, h, w) : 0, d);
    free(x), free(wt), free(b), free(y), free(r);
    ac_free_aligned(scratch);
}

Test(ops, conv1d_basic_stride_and_odd_sizes)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    /* M5's first layer shape, batch 3 */
    check_conv(CONV(1, 32, 1, 1, 80, 1, 16, 1, 1, 0, 0, 0, 0, 0), 3, 1, 8000, 1, 2, 1);
    check_conv(CONV(3, 5, 1, 1, 7, 1, 3, 1, 1, 0, 0, 0, 0, 0), 2, 1, 101, 0, 1, 2);
    check_conv(CONV(7, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0), 1, 1, 13, 0, 2, 3);
}

/* strided one-row convs take the im2row path: padding on both sides, groups, odd tails */
Test(ops, conv1d_strided_rows_with_padding_and_groups)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    check_conv(CONV(3, 4, 1, 1, 7, 1, 3, 1, 1, 0, 0, 5, 2, 0), 2, 1, 50, 0, 2, 12);
    check_conv(CONV(4, 6, 2, 1, 5, 1, 2, 1, 1, 0, 0, 1, 3, 0), 3, 1, 41, 1, 2, 13);
    check_conv(CONV(1, 8, 1, 1, 9, 1, 4, 1, 1, 0, 0, 9, 9, 0), 2, 1, 30, 1, 1, 14);
    check_conv(CONV(2, 3, 1, 1, 3, 1, 2, 1, 1, 0, 0, 7, 6, 0), 1, 1, 5, 0, 1, 15); /* pad > kernel */
}

Test(ops, conv1d_dilation_and_causal_padding)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    /* causal: (k-1)*dilation zeros on the left only; output length = input length */
    ac_conv_params p = CONV(4, 6, 1, 1, 3, 1, 1, 1, 4, 0, 0, 8, 0, 0);
    check_conv(p, 2, 1, 50, 0, 2, 4);
    cr_expect_eq(ac_out_size(50, 3, 1, 4, 8, 0), 50);
    check_conv(CONV(2, 2, 1, 1, 5, 1, 2, 1, 3, 0, 0, 1, 6, 0), 3, 1, 37, 1, 2, 5);
}

/* Unpadded dilated convolutions (WaveNet's and the TCNs' after their pad node) through the
 * TIME kernel, which reads tap k at k * dw: 1-D rows past the short-row limit, a 2-D layer
 * dilated along its width, odd channel counts (blocks of 8, 4, 2, 1) and a masked last block;
 * a short dilated row stays on im2col (the CHANNELS kernel is undilated). */
Test(ops, conv_dilated_rows_through_the_time_kernel)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    for (int d = 2; d <= 16; d *= 2) {
        ac_conv_params p = CONV(8, 13, 1, 1, 3, 1, 1, 1, d, 0, 0, 0, 0, 0);
        cr_expect_eq(ac_conv_direct_choose(&p, 1, 301), AC_DIRECT_TIME, "d = %d", d);
        check_conv(p, 2, 1, 301, d & 4 ? 1 : 0, 2, 40 + (unsigned)d);
    }
    ac_conv_params q = CONV(3, 10, 1, 2, 3, 1, 1, 1, 3, 0, 0, 0, 0, 0);
    cr_expect_eq(ac_conv_direct_choose(&q, 4, 100), AC_DIRECT_TIME);
    check_conv(q, 2, 4, 100, 1, 2, 50);
    ac_conv_params r = CONV(5, 7, 1, 1, 3, 1, 1, 1, 2, 0, 0, 0, 0, 0);
    cr_expect_eq(ac_conv_direct_choose(&r, 1, 60), AC_DIRECT_NONE);
    check_conv(r, 2, 1, 60, 0, 2, 51);
}

Test(ops, conv_groups_and_depthwise)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    check_conv(CONV(8, 12, 4, 1, 3, 1, 1, 1, 1, 0, 0, 1, 1, 0), 2, 1, 33, 0, 2, 6);
    check_conv(CONV(6, 6, 6, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 0), 2, 9, 11, 1, 2, 7);
}

Test(ops, conv2d_stride_dilation_padding_batch)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    /* EnvNet conv3 shape on a small batch */
    check_conv(CONV(1, 50, 1, 8, 13, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 40, 150, 1, 2, 8);
    check_conv(CONV(3, 4, 1, 3, 5, 2, 3, 2, 1, 1, 2, 0, 3, 0), 3, 17, 23, 0, 2, 9);
    check_conv(CONV(5, 2, 1, 2, 2, 1, 1, 3, 2, 2, 0, 1, 1, 0), 1, 12, 12, 0, 1, 10);
}

Test(ops, conv_result_independent_of_threads)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    ac_conv_params p = CONV(4, 8, 1, 1, 9, 1, 2, 1, 1, 0, 0, 4, 4, 0);
    for (int t = 1; t <= 4; t++) check_conv(p, 5, 1, 999, 1, t, 11);
}

/* One-row, unpadded convolutions go through the AVX-512 direct kernels where the CPU has
 * them: output-channel counts that exercise the 8/4/2/1 blocks and partial channel vectors,
 * widths around the 48-step block (narrow ones take the channel-vectorised kernel), strides,
 * groups, fused pools, and the EnvNet/M5 shapes. Each case runs on the direct path and on
 * im2col + GEMM. */
Test(ops, direct_conv_matches_reference_on_both_paths)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    if (!ac_ops_direct()) cr_log_warn("no AVX-512F on this CPU: only the GEMM path is checked");
    int couts[] = {1, 2, 3, 5, 7, 8, 13, 40};
    int widths[] = {8, 9, 23, 55, 56, 57, 200};
    for (int path = 1; path >= 0; path--) {
        int prev = ac_ops_set_direct(path);
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 7; j++)
                check_conv(CONV(3, couts[i], 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1,
                           widths[j], (i + j) & 1, 2, (unsigned)(100 + 10 * i + j));
        check_conv(CONV(1, 40, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1, 2401, 1, 2, 150);
        check_conv(CONV(40, 40, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1, 1207, 1, 2, 151);
        check_conv(CONV(32, 32, 1, 1, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0), 3, 1, 124, 1, 1, 152);
        check_conv(CONV(64, 64, 1, 1, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0), 3, 1, 7, 1, 2, 153);
        check_conv(CONV(8, 12, 4, 1, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1, 61, 0, 2, 154);
        check_conv(CONV(6, 10, 2, 1, 5, 1, 1, 1, 1, 0, 0, 0, 0, 4), 3, 1, 333, 1, 2, 155);
        check_conv(CONV(40, 40, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 160), 2, 1, 1767, 1, 2, 156);
        /* K >= 32 with partial panels and column blocks: the BF16 one-row kernel's edges */
        check_conv(CONV(5, 13, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1, 77, 1, 2, 165);
        check_conv(CONV(4, 25, 1, 1, 10, 1, 1, 1, 1, 0, 0, 0, 0, 3), 1, 1, 100, 0, 1, 166);
        check_conv(CONV(6, 12, 1, 1, 7, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1, 40, 1, 2, 167);
        /* 2-D, stride 1: row by row (EnvNet's conv3 on a small batch; several channels and
         * kernel rows; rows of 48, 49 and 100 outputs; chunks of whole rows) */
        check_conv(CONV(1, 50, 1, 8, 13, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 40, 150, 1, 2, 161);
        check_conv(CONV(3, 5, 1, 3, 4, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 7, 51, 0, 2, 162);
        check_conv(CONV(2, 9, 1, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0), 1, 5, 49, 1, 1, 163);
        check_conv(CONV(64, 8, 1, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0), 1, 30, 102, 1, 2, 164);
        /* strided: the channel-vectorised kernel (M5's conv1 with its fused pool, groups,
         * a channel count that leaves a partial vector) */
        check_conv(CONV(1, 32, 1, 1, 80, 1, 16, 1, 1, 0, 0, 0, 0, 4), 3, 1, 8000, 1, 2, 157);
        check_conv(CONV(4, 6, 2, 1, 5, 1, 2, 1, 1, 0, 0, 0, 0, 0), 3, 1, 41, 0, 2, 158);
        check_conv(CONV(40, 20, 1, 1, 3, 1, 3, 1, 1, 0, 0, 0, 0, 0), 2, 1, 100, 1, 1, 159);
        check_conv(CONV(3, 50, 1, 1, 4, 1, 4, 1, 1, 0, 0, 0, 0, 0), 1, 1, 4, 1, 1, 160);
        ac_ops_set_direct(prev);
    }
}

/* The BF16 product alone, on sizes around its 8/10/12-row panels, 32-column blocks and odd
 * K, with and without bias and relu: the reference on bfloat16-rounded operands. */
Test(ops, gemm_bf16_matches_reference_on_rounded_operands)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    if (!ac_bf16_supported()) {
        cr_log_warn("no AVX-512 BF16 on this CPU: the BF16 product is not run here");
        return;
    }
    const int Ms[] = {1, 7, 8, 10, 12, 13, 25, 40}, Ns[] = {1, 17, 32, 33, 70}, Ks[] = {1, 2, 3, 8, 33, 67, 320};
    for (int a = 0; a < 8; a++)
        for (int b = 0; b < 5; b++)
            for (int c = 0; c < 7; c++) {
                const int M = Ms[a], N = Ns[b], K = Ks[c], ldc = N + 3, relu = (a + b + c) & 1;
                float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
                float *bias = malloc(sizeof(float) * M), *C = malloc(sizeof(float) * M * ldc);
                uint16_t *Ap = malloc(sizeof(uint16_t) * ac_bf16_packed_size(M, K));
                uint16_t *scratch = malloc(sizeof(uint16_t) * ac_bf16_scratch(K));
                const float **rows = malloc(sizeof(float *) * K);
                tu_fill_random(A, (size_t)M * K, (unsigned)(a * 100 + b * 10 + c));
                tu_fill_random(B, (size_t)K * N, (unsigned)(a * 100 + b * 10 + c + 7));
                tu_fill_random(bias, (size_t)M, 3);
                for (int k = 0; k < K; k++) rows[k] = B + (size_t)k * N;
                for (int i = 0; i < M * ldc; i++) C[i] = -99.f; /* columns past N must stay */
                ac_bf16_pack_a(A, M, K, K, Ap);
                ac_gemm_bf16(M, N, K, Ap, rows, C, ldc, (c & 1) ? bias : NULL, relu, scratch);
                double worst = 0;
                int kept = 1;
                for (int m = 0; m < M; m++) {
                    for (int n = 0; n < N; n++) {
                        double s = (c & 1) ? bias[m] : 0;
                        for (int k = 0; k < K; k++)
                            s += (double)ac_bf16_round(A[m * K + k]) * ac_bf16_round(B[k * N + n]);
                        if (relu && s < 0) s = 0;
                        worst = fmax(worst, fabs(s - C[m * ldc + n]));
                    }
                    for (int n = N; n < ldc; n++) kept &= C[m * ldc + n] == -99.f;
                }
                cr_expect_leq(worst, 1e-5 * K, "gemm_bf16 M=%d N=%d K=%d: diff %g", M, N, K, worst);
                cr_expect(kept, "gemm_bf16 M=%d N=%d K=%d wrote past column N", M, N, K);
                free(A), free(B), free(bias), free(C), free(Ap), free(scratch), free(rows);
            }
}

Test(ops, out_size_edge_cases)
{
    cr_expect_eq(ac_out_size(8000, 80, 16, 1, 0, 0), 496);
    cr_expect_eq(ac_out_size(5, 8, 1, 1, 0, 0), 0, "input shorter than the kernel");
    cr_expect_eq(ac_out_size(5, 3, 0, 1, 0, 0), 0, "stride 0 is refused");
    cr_expect_eq(ac_out_size(24000, 160, 160, 1, 0, 0), 150);
}

static void ref_pool(const float *x, int n, int c, int h, int w, const ac_pool_params *p, int max,
                     float *y)
{
    int ho = ac_out_size(h, p->kh, p->sh, 1, p->ph, p->ph), wo = ac_out_size(w, p->kw, p->sw, 1, p->pw, p->pw);
    for (int i = 0; i < n * c; i++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                double acc = max ? -INFINITY : 0;
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++) {
                        int iy = oy * p->sh - p->ph + ky, ix = ox * p->sw - p->pw + kx;
                        double v = (iy < 0 || iy >= h || ix < 0 || ix >= w) ? (max ? -INFINITY : 0)
                                                                               : x[((size_t)i * h + iy) * w + ix];
                        acc = max ? fmax(acc, v) : acc + v;
                    }
                y[((size_t)i * ho + oy) * wo + ox] = (float)(max ? acc : acc / (p->kh * p->kw));
            }
}

/* Padded and unpadded windows, overlapping or not; unpadded max pools (EnvNet's 3x3 and
 * 1x3) on rows whose last window ends before the row does, and rows narrower than 16. */
Test(ops, pools_match_reference)
{
    ac_pool_params cases[] = {{1, 4, 1, 4, 0, 0}, {3, 3, 3, 3, 0, 0}, {1, 160, 1, 160, 0, 0},
                              {2, 3, 1, 2, 1, 1}, {3, 2, 2, 1, 0, 1}, {3, 3, 2, 2, 0, 0},
                              {1, 3, 1, 3, 0, 0}, {1, 16, 1, 16, 0, 0}, {2, 5, 1, 3, 0, 0}};
    const int widths[] = {481, 46, 17};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        for (int wi = 0; wi < 3; wi++) {
            ac_pool_params p = cases[k];
            int n = 2, c = 3, h = p.kh == 1 ? 1 : 11, w = widths[wi];
            if (w + 2 * p.pw < p.kw) continue;
            int ho = ac_out_size(h, p.kh, p.sh, 1, p.ph, p.ph), wo = ac_out_size(w, p.kw, p.sw, 1, p.pw, p.pw);
            size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * ho * wo;
            float *x = malloc(nx * 4), *y = malloc(ny * 4), *r = malloc(ny * 4);
            tu_fill_random(x, nx, 20 + (unsigned)k);
            for (int max = 0; max < 2; max++) {
                (max ? ac_maxpool2d : ac_avgpool2d)(x, n, c, h, w, &p, y, 2);
                ref_pool(x, n, c, h, w, &p, max, r);
                cr_expect_leq(tu_max_abs_diff(y, r, ny), 1e-6, "%s pool case %zu, width %d",
                              max ? "max" : "avg", k, w);
            }
            free(x), free(y), free(r);
        }
}

Test(ops, global_avgpool_and_permute)
{
    float x[2 * 3 * 4], y[6], z[2 * 3 * 4];
    for (int i = 0; i < 24; i++) x[i] = (float)i;
    ac_global_avgpool(x, 2, 3, 4, y, 2);
    for (int i = 0; i < 6; i++) cr_expect_float_eq(y[i], 4.f * i + 1.5f, 1e-6);
    int dims[3] = {3, 1, 4}, perm[3] = {2, 1, 0}; /* [3, 1, 4] -> [4, 1, 3] per item */
    ac_permute3(x, 2, dims, perm, z, 2);
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++)
                cr_expect_eq(z[b * 12 + i * 3 + j], x[b * 12 + j * 4 + i]);
    int dims2[3] = {2, 3, 4}, perm2[3] = {1, 0, 2}; /* swap first two axes */
    ac_permute3(x, 1, dims2, perm2, z, 1);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 4; k++) cr_expect_eq(z[(i * 2 + j) * 4 + k], x[(j * 3 + i) * 4 + k]);
}

static uint16_t f32_to_f16(float f)
{ /* round-to-nearest for normal values, enough for test data in [-1, 1] */
    uint32_t b;
    memcpy(&b, &f, 4);
    uint32_t sign = (b >> 16) & 0x8000, exp = (b >> 23) & 0xff, man = b & 0x7fffff;
    if (exp < 103) return (uint16_t)sign;
    if (exp < 113) return (uint16_t)(sign | ((man | 0x800000) >> (126 - exp)));
    return (uint16_t)(sign | (((exp - 112) << 10) + ((man + 0x1000) >> 13)));
}

Test(ops, linear_f32_f16_i8_batches)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    const int in = 77, out = 131; /* odd sizes and more than two tiles of rows */
    float *w = malloc(sizeof(float) * in * out), *deq = malloc(sizeof(float) * in * out);
    uint16_t *w16 = malloc(2 * (size_t)in * out);
    int8_t *w8 = malloc((size_t)in * out);
    float scale[131], bias[131];
    tu_fill_random(w, (size_t)in * out, 30);
    tu_fill_random(bias, out, 31);
    for (int r = 0; r < out; r++) {
        float mx = 0;
        for (int i = 0; i < in; i++) mx = fmaxf(mx, fabsf(w[r * in + i]));
        scale[r] = mx / 127.f;
    }
    for (int dt = 0; dt < 3; dt++) {
        ac_matrix M = {.rows = out, .cols = in};
        for (int i = 0; i < in * out; i++) {
            if (dt == 0) deq[i] = w[i];
            if (dt == 1) { w16[i] = f32_to_f16(w[i]); deq[i] = ac_f16_to_f32(w16[i]); }
            if (dt == 2) { w8[i] = (int8_t)lrintf(w[i] / scale[i / in]); deq[i] = w8[i] * scale[i / in]; }
        }
        M.dtype = dt == 0 ? AC_F32 : dt == 1 ? AC_F16 : AC_I8;
        M.data = dt == 0 ? (const void *)w : dt == 1 ? (const void *)w16 : (const void *)w8;
        M.scale = scale;
        if (dt == 1) cr_expect_leq(tu_max_abs_diff(deq, w, (size_t)in * out), 1e-3, "f16 round trip");
        /* batches: the direct kernel's 6-item blocks and their remainders, and 17 (> its
         * maximum batch: dequantize + SGEMM); each with the direct kernels on and off */
        static const int batches[] = {1, 5, 7, 13, 17};
        for (int k = 0; k < 10; k++)
            for (int relu = 0; relu < 2; relu++) {
                int n = batches[k % 5], prev = ac_ops_set_direct(k < 5);
                float x[17 * 77], y[17 * 131], r[17 * 131];
                tu_fill_random(x, (size_t)n * in, 32 + (unsigned)n);
                float *scratch = ac_alloc_floats(ac_linear_scratch(&M) * 2 + 1);
                ac_linear(x, n, &M, bias, relu, y, scratch, 2);
                if (dt == 0) /* 77 x 131 is a small F32 matrix: the direct kernel up to 16 items */
                    cr_expect_str_eq(ac_linear_kernel(&M, n), ac_ops_direct() && n <= 16 ? "direct-f32" : "sgemm");
                for (int b = 0; b < n; b++)
                    for (int o = 0; o < out; o++) {
                        double s = bias[o];
                        for (int i = 0; i < in; i++) s += (double)x[b * in + i] * deq[o * in + i];
                        r[b * out + o] = (float)(relu && s < 0 ? 0 : s);
                    }
                cr_expect_leq(tu_max_abs_diff(y, r, (size_t)n * out), TOL, "linear dtype %d n %d relu %d direct %d",
                              dt, n, relu, ac_ops_direct());
                ac_ops_set_direct(prev);
                ac_free_aligned(scratch);
            }
    }
    free(w), free(deq), free(w16), free(w8);
}

/* I8 layers on 8-bit inputs (VNNI): the result is the exact integer sum of the quantized
 * inputs and weights, scaled (checked against that, to float rounding), and it strays from
 * the FP32 result by no more than the inputs' rounding allows (half a step per input).
 * Inputs with and without negative values (zero point 128 / 0), sizes around the 64-byte
 * vectors and the 4x5 register blocks, batches past AC_VNNI_BATCH; with the hand-written
 * kernels off, the FP32 result. */
Test(ops, linear_i8_vnni_matches_quantized_reference)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    if (!ac_vnni_supported()) cr_log_warn("no AVX-512 VNNI on this CPU: only the FP32 fallback is checked");
    const int ins[] = {1, 63, 64, 65, 200, 1000}, outs[] = {1, 5, 33}, ns[] = {1, 3, 6, 11, 17, 40};
    for (int a = 0; a < 6; a++)
        for (int c = 0; c < 3; c++)
            for (int e = 0; e < 6; e++) {
                const int in = ins[a], out = outs[c], n = ns[e], relu = (a + e) & 1, signed_x = (a + c + e) & 1;
                int8_t *w8 = malloc((size_t)in * out);
                float *wf = malloc(sizeof(float) * in * out), *scale = malloc(sizeof(float) * out);
                float *bias = malloc(sizeof(float) * out), *x = malloc(sizeof(float) * n * in);
                float *y = malloc(sizeof(float) * n * out);
                tu_fill_random(wf, (size_t)in * out, (unsigned)(a * 36 + c * 6 + e));
                tu_fill_random(bias, (size_t)out, 5);
                tu_fill_random(x, (size_t)n * in, (unsigned)(a + 100 * e));
                if (!signed_x)
                    for (int i = 0; i < n * in; i++) x[i] = fabsf(x[i]) * 3.f; /* after a ReLU */
                for (int o = 0; o < out; o++) scale[o] = 0.01f * (float)(o + 1);
                for (int i = 0; i < in * out; i++) w8[i] = (int8_t)lrintf(wf[i] * 127.f);
                ac_matrix M = {.dtype = AC_I8, .data = w8, .scale = scale, .rows = out, .cols = in, .vnni = 1};
                for (int on = 1; on >= 0; on--) {
                    int prev = ac_ops_set_direct(on);
                    const int vnni = ac_vnni_supported();
                    float *scratch = ac_alloc_floats(ac_linear_scratch(&M) * 2 + 1);
                    ac_linear(x, n, &M, bias, relu, y, scratch, 2);
                    cr_expect_str_eq(ac_linear_kernel(&M, n), vnni ? "vnni-i8" : on ? (n <= 16 ? "direct-i8" : "dequant+sgemm") : "dequant+sgemm");
                    double worst = 0, worst_fp = 0, bound = 0;
                    for (int b = 0; b < n; b++) {
                        const float *xb = x + (size_t)b * in;
                        float lo = 0, hi = 0;
                        for (int i = 0; i < in; i++) lo = fminf(lo, xb[i]), hi = fmaxf(hi, xb[i]);
                        const int zp = lo < 0 ? 128 : 0;
                        const float top = zp ? fmaxf(-lo, hi) : hi, sx = top > 0 ? top / (zp ? 127.f : 255.f) : 1.f;
                        for (int o = 0; o < out; o++) {
                            long long t = 0;
                            double fp = bias[o], wabs = 0;
                            for (int i = 0; i < in; i++) {
                                long qv = lrintf(xb[i] * (1.f / sx)) + zp;
                                qv = qv < 0 ? 0 : qv > 255 ? 255 : qv;
                                t += (qv - zp) * (long long)w8[(size_t)o * in + i];
                                fp += (double)xb[i] * w8[(size_t)o * in + i] * scale[o];
                                wabs += fabs((double)w8[(size_t)o * in + i] * scale[o]);
                            }
                            double q = (double)sx * scale[o] * (double)t + bias[o];
                            if (relu) q = q < 0 ? 0 : q, fp = fp < 0 ? 0 : fp;
                            const double got = y[(size_t)b * out + o];
                            worst = fmax(worst, fabs(got - (vnni ? q : fp)) / (1 + fabs(q)));
                            worst_fp = fmax(worst_fp, fabs(got - fp));
                            bound = fmax(bound, 0.5 * sx * wabs * 1.001 + 1e-5);
                        }
                    }
                    cr_expect_leq(worst, vnni ? 1e-5 : TOL, "linear i8 in=%d out=%d n=%d relu=%d signed=%d vnni=%d: diff %g",
                                  in, out, n, relu, signed_x, vnni, worst);
                    cr_expect_leq(worst_fp, bound, "linear i8 in=%d out=%d n=%d: %g from FP32, more than the inputs' "
                                  "rounding allows (%g)", in, out, n, worst_fp, bound);
                    ac_free_aligned(scratch);
                    ac_ops_set_direct(prev);
                }
                free(w8), free(wf), free(scale), free(bias), free(x), free(y);
            }
}

/* An F32 layer over many rows (a sequence of frames: ConvNeXt's 1x1 MLP) runs in chunks of
 * rows, each one SGEMM: every chunk and the partial last one, with and without relu. */
Test(ops, linear_f32_many_rows)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    const int n = 777, in = 33, out = 70;
    float *w = malloc(sizeof(float) * in * out), *x = malloc(sizeof(float) * n * in);
    float *y = malloc(sizeof(float) * n * out), *r = malloc(sizeof(float) * n * out), bias[70];
    tu_fill_random(w, (size_t)in * out, 40);
    tu_fill_random(x, (size_t)n * in, 41);
    tu_fill_random(bias, out, 42);
    ac_matrix M = {.dtype = AC_F32, .data = w, .rows = out, .cols = in};
    for (int relu = 0; relu < 2; relu++) {
        ac_linear(x, n, &M, relu ? bias : NULL, relu, y, NULL, 2);
        for (int b = 0; b < n; b++)
            for (int o = 0; o < out; o++) {
                double s = relu ? bias[o] : 0;
                for (int i = 0; i < in; i++) s += (double)x[b * in + i] * w[o * in + i];
                r[b * out + o] = (float)(relu && s < 0 ? 0 : s);
            }
        cr_expect_leq(tu_max_abs_diff(y, r, (size_t)n * out), TOL, "linear F32 n=%d relu=%d", n, relu);
    }
    free(w), free(x), free(y), free(r);
}

Test(ops, f16_special_values)
{
    cr_expect_eq(ac_f16_to_f32(0x3c00), 1.0f);
    cr_expect_eq(ac_f16_to_f32(0xc000), -2.0f);
    cr_expect_eq(ac_f16_to_f32(0x0001), 5.9604644775390625e-08f, "smallest subnormal");
    cr_expect(isinf(ac_f16_to_f32(0x7c00)));
    cr_expect(isnan(ac_f16_to_f32(0x7e00)));
}

Test(ops, softmax_and_log_softmax)
{
    float a[6] = {1, 2, 3, 1000, 1000, -1000}, b[6];
    memcpy(b, a, sizeof a);
    ac_softmax(a, 2, 3);
    ac_log_softmax(b, 2, 3);
    double e = exp(1) + exp(2) + exp(3);
    cr_expect_float_eq(a[2], exp(3) / e, 1e-6);
    cr_expect_float_eq(b[0], 1 - log(e), 1e-5);
    cr_expect_float_eq(a[3], 0.5f, 1e-6, "large logits do not overflow");
    cr_expect_float_eq(a[5], 0.f, 1e-6);
    cr_expect_float_eq(b[3], -logf(2.f), 1e-5);
    float relu[5] = {-1, 0, 2, -0.5f, 3};
    ac_relu(relu, 5, 2);
    cr_expect(relu[0] == 0 && relu[1] == 0 && relu[2] == 2 && relu[3] == 0 && relu[4] == 3);
}

/* A max pool fused into the conv's epilogue equals conv then pool (floor mode, tail dropped). */
Test(ops, conv_with_fused_maxpool)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    int widths[] = {4, 7, 160};
    for (size_t k = 0; k < 3; k++) {
        ac_conv_params p = CONV(6, 10, 2, 1, 5, 1, 1, 1, 1, 0, 0, 2, 1, 0);
        int n = 3, w = 1000 + 13 * (int)k, pw = widths[k];
        int wo = ac_out_size(w, p.kw, p.sw, p.dw, p.pad_l, p.pad_r), wp = wo / pw;
        size_t nx = (size_t)n * p.cin * w, nw = (size_t)p.cout * (p.cin / p.groups) * p.kw;
        float *x = malloc(nx * 4), *wt = malloc(nw * 4), *b = malloc(40);
        float *full = malloc((size_t)n * p.cout * wo * 4), *ref = malloc((size_t)n * p.cout * wp * 4);
        float *got = malloc((size_t)n * p.cout * wp * 4);
        tu_fill_random(x, nx, 40 + (unsigned)k);
        tu_fill_random(wt, nw, 41);
        tu_fill_random(b, 10, 42);
        ref_conv2d(x, n, 1, w, wt, b, &p, 1, full);
        ac_pool_params pool = {1, pw, 1, pw, 0, 0};
        ref_pool(full, n, p.cout, 1, wo, &pool, 1, ref);
        p.pool_w = pw;
        float *scratch = ac_alloc_floats(ac_conv2d_scratch(&p, 1, w) * 2);
        ac_conv2d(x, n, 1, w, wt, b, &p, 1, got, scratch, 2);
        cr_expect_leq(tu_max_abs_diff(got, ref, (size_t)n * p.cout * wp), TOL, "pool %d", pw);
        free(x), free(wt), free(b), free(full), free(ref), free(got);
        ac_free_aligned(scratch);
    }
}

/* Depthwise (groups == cin > 1, cout a multiple of cin) and pointwise (1x1, stride 1,
 * unpadded) convolutions have kernels of their own: 1-D and 2-D, channel multipliers, stride,
 * dilation, causal and symmetric padding, rows shorter than the kernel's span (no interior),
 * widths around the 64- and 16-position blocks, fused pools; each case with the kernel
 * chosen per call and preset (as the model does at load), on both the direct and GEMM paths. */
Test(ops, depthwise_and_pointwise_kernels)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    static const struct { ac_conv_params p; int n, h, w, relu; const char *kernel; } cases[] = {
        /* cin, cout, groups, kh, kw, sh, sw, dh, dw, pad t/b/l/r, pool */
        {CONV(64, 64, 64, 1, 7, 1, 1, 1, 1, 0, 0, 3, 3, 0), 3, 1, 2000, 0, "depthwise"}, /* ConvNeXt */
        {CONV(5, 15, 5, 1, 5, 1, 1, 1, 2, 0, 0, 8, 0, 0), 2, 1, 33, 1, "depthwise"},      /* causal */
        {CONV(3, 3, 3, 1, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1, 64 + 16 + 5, 1, "depthwise"},
        {CONV(3, 6, 3, 1, 4, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1, 67, 0, "depthwise"},
        {CONV(4, 4, 4, 1, 9, 1, 1, 1, 3, 0, 0, 24, 0, 0), 3, 1, 17, 0, "depthwise"}, /* span > row */
        {CONV(4, 8, 4, 1, 5, 1, 2, 1, 1, 0, 0, 2, 2, 0), 2, 1, 101, 1, "depthwise"}, /* strided */
        {CONV(6, 6, 6, 1, 7, 1, 3, 1, 2, 0, 0, 5, 1, 0), 2, 1, 200, 0, "depthwise"},
        {CONV(8, 8, 8, 1, 3, 1, 1, 1, 1, 0, 0, 0, 0, 4), 2, 1, 203, 1, "depthwise"}, /* fused pool */
        {CONV(17, 17, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0), 2, 33, 70, 1, "depthwise"}, /* 2-D */
        {CONV(6, 12, 6, 3, 5, 2, 2, 2, 1, 2, 1, 0, 3, 0), 3, 17, 23, 0, "depthwise"},
        {CONV(5, 5, 5, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, 0), 1, 9, 81, 0, "depthwise"},
        /* the AVX-512 row kernel's limits: blocks of 128 outputs, spans 0..16 (above: dw_row) */
        {CONV(3, 3, 3, 1, 9, 1, 1, 1, 1, 0, 0, 4, 4, 0), 2, 1, 128 * 2 + 17, 1, "depthwise"}, /* DS-CNN */
        {CONV(3, 3, 3, 1, 9, 1, 1, 1, 2, 0, 0, 8, 8, 0), 2, 1, 300, 0, "depthwise"},  /* span 16 */
        {CONV(3, 3, 3, 1, 17, 1, 1, 1, 1, 0, 0, 20, 3, 0), 2, 1, 250, 1, "depthwise"}, /* span 16, pad > 16 */
        {CONV(3, 3, 3, 1, 6, 1, 1, 1, 3, 0, 0, 15, 0, 0), 2, 1, 129, 0, "depthwise"}, /* span 15, causal */
        {CONV(3, 3, 3, 1, 7, 1, 1, 1, 3, 0, 0, 9, 9, 0), 2, 1, 140, 1, "depthwise"},  /* span 18 */
        {CONV(3, 6, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1, 145, 0, "depthwise"},  /* span 0 */
        {CONV(2, 2, 2, 1, 3, 1, 1, 1, 1, 0, 0, 1, 1, 0), 2, 1, 5, 1, "depthwise"},    /* row < 16 */
        {CONV(2, 2, 2, 1, 5, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1, 128 + 4, 0, "depthwise"}, /* 128 outputs */
        {CONV(17, 33, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0), 3, 1, 101, 1, "pointwise+sgemm"},
        {CONV(64, 256, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 1, 500, 0, "pointwise+sgemm"},
        {CONV(8, 6, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0), 2, 5, 7, 0, "pointwise+sgemm"}, /* groups */
        {CONV(7, 5, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 3), 2, 1, 100, 1, "pointwise+sgemm"}, /* pool */
        {CONV(3, 4, 1, 1, 1, 1, 1, 3, 3, 0, 0, 0, 0, 0), 2, 9, 11, 1, "pointwise+sgemm"}, /* 2-D */
    };
    for (int path = 1; path >= 0; path--) {
        int prev = ac_ops_set_direct(path);
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            ac_conv_params p = cases[k].p;
            const int h = cases[k].h, w = cases[k].w, pointwise = !strcmp(cases[k].kernel, "pointwise+sgemm");
            /* 1x1 layers go to the direct kernels where those are on and take them */
            if (!pointwise || !ac_ops_direct())
                cr_expect_str_eq(ac_conv2d_kernel(&p, h, w), cases[k].kernel, "case %zu", k);
            check_conv(p, cases[k].n, h, w, cases[k].relu, 2, 400 + (unsigned)k);
            p.kernel = ac_conv2d_choose(&p, h, w);
            cr_expect_str_eq(ac_conv2d_kernel(&p, h, w), ac_conv2d_kernel(&cases[k].p, h, w), "case %zu preset", k);
            check_conv(p, cases[k].n, h, w, cases[k].relu, 1, 450 + (unsigned)k);
            if (pointwise) { /* the pointwise kernel itself, also where the direct ones are on */
                p.kernel = AC_CONV_POINTWISE;
                cr_expect_str_eq(ac_conv2d_kernel(&p, h, w), "pointwise+sgemm", "case %zu", k);
                check_conv(p, cases[k].n, h, w, cases[k].relu, 2, 470 + (unsigned)k);
            }
        }
        ac_ops_set_direct(prev);
    }
}

/* A preset kernel that cannot compute the layer is not run: ac_conv2d falls back to choosing. */
Test(ops, preset_conv_kernel_that_does_not_fit_is_ignored)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    /* EnvNet's conv1 shape: groups == cin == 1 is not depthwise */
    ac_conv_params p = CONV(1, 40, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 0);
    cr_expect_neq(ac_conv2d_choose(&p, 1, 500), AC_CONV_DEPTHWISE);
    for (int k = AC_CONV_AUTO; k <= AC_CONV_POINTWISE + 1; k++) {
        p.kernel = k;
        check_conv(p, 2, 1, 500, 1, 2, 500 + (unsigned)k);
    }
    ac_conv_params m = CONV(3, 8, 1, 2, 5, 1, 1, 1, 1, 0, 0, 0, 0, 0); /* fits none but the direct/GEMM ones */
    for (int k = AC_CONV_AUTO; k <= AC_CONV_POINTWISE; k++) {
        m.kernel = k;
        check_conv(m, 2, 3, 90, 1, 2, 510 + (unsigned)k);
    }
    ac_conv_params d = CONV(4, 4, 4, 1, 3, 1, 2, 1, 1, 0, 0, 1, 1, 0); /* strided depthwise */
    for (int k = AC_CONV_AUTO; k <= AC_CONV_POINTWISE; k++) {
        d.kernel = k;
        check_conv(d, 2, 1, 77, 0, 2, 520 + (unsigned)k);
    }
    int prev = ac_ops_set_direct(0);
    ac_conv_params t = CONV(3, 8, 1, 1, 5, 1, 1, 1, 1, 0, 0, 0, 0, 0);
    t.kernel = AC_CONV_DIRECT_TIME; /* chosen with the direct kernels on, then turned off */
    cr_expect_str_eq(ac_conv2d_kernel(&t, 1, 300), "im2col+sgemm");
    check_conv(t, 2, 1, 300, 1, 2, 540);
    ac_ops_set_direct(prev);
}

/* ac_conv2d_chain(a, b) gives ac_conv2d(b, ac_conv2d(a, x)) bit for bit (the same kernel on
 * the same sums, only a's output is cut into chunks): EnvNet's conv1 -> conv2 (pooled), a
 * dilated pair, ReLU on and off, no bias, batch 1 and 3, 1 and 2 threads, widths that leave
 * partial blocks. */
static void check_chain(ac_conv_params a, ac_conv_params b, int n, int w, int relu_a, int relu_b,
                        int with_bias, int threads, unsigned seed, int bf16)
{
    uint16_t *packed = NULL;
    if (bf16) { /* b with BF16 weights, as a file with compute bf16 gets them */
        packed = malloc(sizeof(uint16_t) * ac_bf16_packed_size(b.cout, b.cin * b.kw));
        b.bf16 = packed;
    }
    cr_assert(ac_conv2d_chain_fits(&a, 1, w, &b), "chain a %dx%d d%d -> b %d k%d d%d pool %d, w %d does not fit",
              a.cin, a.cout, a.dw, b.cout, b.kw, b.dw, b.pool_w, w);
    const int wa = ac_out_size(w, a.kw, 1, a.dw, 0, 0), wb = ac_out_size(wa, b.kw, 1, b.dw, 0, 0);
    const int yb = b.pool_w > 0 ? wb / b.pool_w : wb;
    const size_t nx = (size_t)n * a.cin * w, nmid = (size_t)n * a.cout * wa, ny = (size_t)n * b.cout * yb;
    float *x = malloc(nx * 4), *wta = malloc((size_t)a.cout * a.cin * a.kw * 4);
    float *wtb = malloc((size_t)b.cout * b.cin * b.kw * 4), *ba = malloc((size_t)a.cout * 4);
    float *bb = malloc((size_t)b.cout * 4), *mid = malloc(nmid * 4), *want = malloc(ny * 4), *got = malloc(ny * 4);
    tu_fill_random(x, nx, seed);
    tu_fill_random(wta, (size_t)a.cout * a.cin * a.kw, seed + 1);
    tu_fill_random(wtb, (size_t)b.cout * b.cin * b.kw, seed + 2);
    tu_fill_random(ba, (size_t)a.cout, seed + 3);
    tu_fill_random(bb, (size_t)b.cout, seed + 4);
    if (packed) ac_bf16_pack_a(wtb, b.cout, b.cin * b.kw, b.cin * b.kw, packed);
    size_t sa = ac_conv2d_scratch(&a, 1, w), sb = ac_conv2d_scratch(&b, 1, wa);
    size_t sc = ac_conv2d_chain_scratch(&a, 1, w, &b), most = sa > sb ? sa : sb;
    float *scratch = ac_alloc_floats((most > sc ? most : sc) * (size_t)threads);
    ac_conv2d(x, n, 1, w, wta, with_bias ? ba : NULL, &a, relu_a, mid, scratch, threads);
    ac_conv2d(mid, n, 1, wa, wtb, with_bias ? bb : NULL, &b, relu_b, want, scratch, threads);
    const ac_conv_layer la = {&a, wta, with_bias ? ba : NULL, relu_a}, lb = {&b, wtb, with_bias ? bb : NULL, relu_b};
    for (size_t i = 0; i < ny; i++) got[i] = NAN;
    ac_conv2d_chain(x, n, 1, w, &la, &lb, got, scratch, threads);
    cr_expect_eq(memcmp(got, want, ny * 4), 0,
                 "chain %d->%d->%d k %d,%d d %d,%d pool %d n %d w %d threads %d: max diff %g", a.cin, a.cout,
                 b.cout, a.kw, b.kw, a.dw, b.dw, b.pool_w, n, w, threads, tu_max_abs_diff(got, want, ny));
    free(x), free(wta), free(wtb), free(ba), free(bb), free(mid), free(want), free(got), free(packed);
    ac_free_aligned(scratch);
}

Test(ops, conv_chain_equals_two_convs)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    if (!ac_ops_direct()) return; /* the chain runs on the direct kernel only (fits says so) */
    /* EnvNet's conv1 (1 -> 40, k 8) -> conv2 (40 -> 40, k 8, pool 160), shortened */
    const ac_conv_params c1 = CONV(1, 40, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 0);
    const ac_conv_params c2 = CONV(40, 40, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 160);
    for (int threads = 1; threads <= 2; threads++) {
        check_chain(c1, c2, 3, 2014, 1, 1, 1, threads, 10, 0);
        check_chain(c1, c2, 1, 4014, 1, 1, 1, threads, 11, 0); /* batch 1: chunks split for 2 threads */
        if (ac_bf16_supported()) { /* conv2 in BF16, as EnvNet ships */
            check_chain(c1, c2, 3, 2014, 1, 1, 1, threads, 14, 1);
            check_chain(c1, c2, 1, 4014, 1, 1, 1, threads, 15, 1);
        }
    }
    /* unpooled, dilated, odd channel counts, no bias, no ReLU, a tail of every block size */
    const ac_conv_params d1 = CONV(3, 13, 1, 1, 5, 1, 1, 1, 2, 0, 0, 0, 0, 0);
    const ac_conv_params d2 = CONV(13, 7, 1, 1, 3, 1, 1, 1, 4, 0, 0, 0, 0, 0);
    check_chain(d1, d2, 2, 977, 0, 0, 0, 2, 12, 0);
    check_chain(d1, d2, 3, 1201, 1, 0, 1, 1, 13, 0);
}

Test(ops, conv_chain_refuses_what_it_cannot_do)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    const ac_conv_params c1 = CONV(1, 40, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 0);
    const ac_conv_params c2 = CONV(40, 40, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 160);
    ac_conv_params grouped = c2, strided = c2, padded = c2, pooled_first = c1, wrong_cin = c2;
    grouped.groups = 2, strided.sw = 2, padded.pad_l = 7, pooled_first.pool_w = 4, wrong_cin.cin = 20;
    cr_expect(!ac_conv2d_chain_shape(&c1, 1, 4014, &grouped), "groups");
    cr_expect(!ac_conv2d_chain_shape(&c1, 1, 4014, &strided), "a strided second layer");
    cr_expect(!ac_conv2d_chain_shape(&c1, 1, 4014, &padded), "a padded second layer");
    cr_expect(!ac_conv2d_chain_shape(&pooled_first, 1, 4014, &c2), "a pooled first layer");
    cr_expect(!ac_conv2d_chain_shape(&c1, 1, 4014, &wrong_cin), "channels that do not match");
    cr_expect(!ac_conv2d_chain_shape(&c1, 2, 4014, &c2), "two rows");
    cr_expect(ac_conv2d_chain_shape(&c1, 1, 4014, &c2), "EnvNet's pair");
    /* with the hand-written kernels off the pair runs unchained (the graph asks fits) */
    int prev = ac_ops_set_direct(0);
    cr_expect(!ac_conv2d_chain_fits(&c1, 1, 4014, &c2), "fits with the direct kernels off");
    ac_ops_set_direct(prev);
}

/* A kernel told to use one thread runs outside any OpenMP region of its own, and must then
 * use the first slice of its scratch even when its caller is thread 1 of an enclosing team
 * (the scheduler runs stream jobs that way): each thread here gives its call exactly one
 * slice, followed by a guard slice that must stay untouched. A depthwise conv with a fused
 * pool (its row buffer) and an I8 linear layer over more than 16 rows (its dequantized
 * tile). */
Test(ops, one_thread_kernels_stay_in_the_first_slice_inside_a_team)
{
    cr_assert_eq(ac_ops_init(NULL), AC_OK);
    const ac_conv_params dw = CONV(6, 6, 6, 1, 5, 1, 1, 1, 1, 0, 0, 0, 0, 4);
    const int n = 2, w = 203, in = 70, out = 33, rows = 20;
    const size_t dslice = ac_conv2d_scratch(&dw, 1, w);
    int8_t w8[70 * 33];
    float scale[33], x[2 * 6 * 203], wt[6 * 5], b[6], xl[20 * 70];
    for (int i = 0; i < in * out; i++) w8[i] = (int8_t)(i * 37 % 255 - 127);
    for (int o = 0; o < out; o++) scale[o] = 0.01f * (float)(o + 1);
    tu_fill_random(x, sizeof x / sizeof *x, 41);
    tu_fill_random(wt, sizeof wt / sizeof *wt, 42);
    tu_fill_random(b, sizeof b / sizeof *b, 43);
    tu_fill_random(xl, sizeof xl / sizeof *xl, 44);
    const ac_matrix M = {.dtype = AC_I8, .data = w8, .scale = scale, .rows = out, .cols = in};
    const size_t lslice = ac_linear_scratch(&M);
    float want_dw[2 * 6 * 49], want_l[20 * 33];
    float *s0 = ac_alloc_floats(dslice > lslice ? dslice : lslice);
    ac_conv2d(x, n, 1, w, wt, b, &dw, 1, want_dw, s0, 1);
    ac_linear(xl, rows, &M, NULL, 0, want_l, s0, 1);
    ac_free_aligned(s0);
    int bad_guard[2] = {0, 0}, bad_dw[2] = {0, 0}, bad_l[2] = {0, 0};
#pragma omp parallel num_threads(2)
    {
        const int t = omp_get_thread_num();
        const size_t slice = dslice > lslice ? dslice : lslice;
        float *scratch = ac_alloc_floats(2 * slice), got_dw[2 * 6 * 49], got_l[20 * 33];
        for (size_t i = slice; i < 2 * slice; i++) scratch[i] = 12345.f; /* the guard */
        ac_conv2d(x, n, 1, w, wt, b, &dw, 1, got_dw, scratch, 1);
        ac_linear(xl, rows, &M, NULL, 0, got_l, scratch, 1);
        for (size_t i = slice; i < 2 * slice; i++) bad_guard[t] |= scratch[i] != 12345.f;
        bad_dw[t] = memcmp(got_dw, want_dw, sizeof got_dw) != 0;
        bad_l[t] = memcmp(got_l, want_l, sizeof got_l) != 0;
        ac_free_aligned(scratch);
    }
    for (int t = 0; t < 2; t++) {
        cr_expect(!bad_guard[t], "thread %d of the team: a one-thread kernel wrote past its slice", t);
        cr_expect(!bad_dw[t] && !bad_l[t], "thread %d of the team: results differ (depthwise %d, linear %d)", t,
                  bad_dw[t], bad_l[t]);
    }
}
