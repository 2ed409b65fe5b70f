/* ops.c - the kernels: im2col + GEMM convolution, pools, tiled linear, softmax. */
#include "ops.h"

#include "blas.h"
#include "conv_depthwise.h"
#include "conv_direct.h"
#include "gemm_bf16.h"
#include "linear_direct.h"
#include "linear_vnni.h"
#include "ops_graph.h"
#include "ops_team.h"

#include <assert.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Columns per im2col chunk are chosen so a chunk holds about this many floats (512 KiB):
 * big enough for an efficient GEMM, small enough to stay in L2 while it is consumed. */
#define AC_COL_BUDGET (1 << 17)
/* Rows of a quantized weight matrix dequantized at once per thread: as many as fit in
 * about 256 KB, so the tile is still in L2 when the GEMM reads it. Measured on EnvNet (batch
 * 10, one core): fc6 at 16 rows (256 KB) 61 GFLOP/s, at 32 rows 26; fc5 at 16 rows (493 KB)
 * 23 GFLOP/s. */
#define AC_LINEAR_TILE_FLOATS 65536
/* Rows of x per SGEMM when an F32 linear layer has many (a sequence of frames). */
#define AC_LINEAR_ROW_CHUNK 256
static int linear_tile_rows(const ac_matrix *W)
{
    int r = AC_LINEAR_TILE_FLOATS / (W->cols > 0 ? W->cols : 1);
    return r < 4 ? 4 : r > 64 ? 64 : r;
}

ac_status ac_ops_init(char *err) { return ac_blas_init(err); }

static int direct_setting = -1; /* -1: not decided yet (AUDIOCLASS_KERNELS read on first use) */

static int cpu_has_avx512f(void)
{
    static int cpu = -1;
    if (cpu < 0) {
        __builtin_cpu_init();
        cpu = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return cpu;
}

int ac_ops_direct(void)
{
    if (direct_setting < 0) {
        const char *e = getenv("AUDIOCLASS_KERNELS");
        direct_setting = !(e && !strcmp(e, "blas"));
    }
    return direct_setting && cpu_has_avx512f();
}

int ac_ops_set_direct(int on)
{
    int prev = ac_ops_direct();
    direct_setting = on ? 1 : 0;
    return prev;
}

static int team(int threads, long tasks, double work) { return ac_ops_team(threads, tasks, work); }

int ac_out_size(int in, int k, int stride, int dil, int pad_lo, int pad_hi)
{
    long span = (long)dil * (k - 1) + 1, avail = (long)in + pad_lo + pad_hi;
    if (stride <= 0 || avail < span) return 0;
    return (int)((avail - span) / stride + 1);
}

static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

/* Positions per chunk: about AC_COL_BUDGET floats of columns, whole pool windows, and for
 * shapes the time-vectorised direct kernel takes, whole output rows (2-D) or whole
 * multiples of its 48-step block where the row is long enough (EnvNet conv2: 480 = 3 pool
 * windows of 160, no partial block).
 * Depends on the shape only, not on whether the direct kernels are on, so the scratch size
 * holds for both paths. */
static int chunk_cols(const ac_conv_params *p, int h, int w, int positions, int *unit_out)
{
    int k = p->cin / p->groups * p->kh * p->kw;
    int c = AC_COL_BUDGET / (k > 0 ? k : 1);
    if (c < 32) c = 32;
    int unit = p->pool_w > 0 ? p->pool_w : 1;
    if (ac_conv_direct_choose(p, h, w) == AC_DIRECT_TIME) {
        int ho = ac_out_size(h, p->kh, p->sh, p->dh, p->pad_t, p->pad_b);
        int both = unit / gcd(unit, AC_CONV_DIRECT_BLOCK) * AC_CONV_DIRECT_BLOCK;
        if (ho > 1) /* 2-D: whole output rows, so each kernel call gets a full row */
            unit = ac_out_size(w, p->kw, p->sw, p->dw, p->pad_l, p->pad_r);
        else if (both <= positions)
            unit = both;
    }
    c = c < unit ? unit : c / unit * unit;
    if (unit_out) *unit_out = unit;
    return c < positions ? c : positions;
}

/* Output positions computed: with a fused pool, only those that some window covers. */
static int conv_positions(const ac_conv_params *p, int ho, int wo)
{
    return p->pool_w > 0 ? wo / p->pool_w * p->pool_w : ho * wo;
}

/* Floats at the front of a scratch slice: the im2col/im2row columns, or the packed weights of
 * the channel-vectorised direct kernel, whichever is larger; a fused pool's chunk follows. */
static size_t conv_front(const ac_conv_params *p, int cols)
{
    const int cin_g = p->cin / p->groups, cout_g = p->cout / p->groups;
    size_t k = (size_t)cin_g * p->kh * p->kw, front = k * (size_t)cols;
    size_t packed = ac_conv_direct_packed_floats(cout_g, cin_g, p->kw);
    return front > packed ? front : packed;
}

static int bf16_k(const ac_conv_params *p) { return p->cin / p->groups * p->kh * p->kw; }

/* bfloat16 elements per input row that ac_conv1d_bf16 reads for a chunk of cols outputs */
static int bf16_row(const ac_conv_params *p, int cols) { return (cols + 31) / 32 * 32 + p->kw; }

/* Floats of a scratch slice before the BF16 product's packed columns. */
static size_t conv_before_bf16(const ac_conv_params *p, int cols)
{
    return conv_front(p, cols) + (p->pool_w > 0 ? (size_t)(p->cout / p->groups) * cols : 0);
}

size_t ac_conv2d_scratch(const ac_conv_params *p, int h, int w)
{
    int ho = ac_out_size(h, p->kh, p->sh, p->dh, p->pad_t, p->pad_b);
    int wo = ac_out_size(w, p->kw, p->sw, p->dw, p->pad_l, p->pad_r);
    int cols = chunk_cols(p, h, w, conv_positions(p, ho, wo), NULL);
    size_t general = conv_before_bf16(p, cols);
    if (p->bf16) /* 64-byte alignment, K row pointers, the packed columns or the input rows
                    as bfloat16 (two per float) */
        general += 16 + 2 * (size_t)bf16_k(p) + (ac_bf16_scratch(bf16_k(p)) + 1) / 2 +
                   ((size_t)(p->cin / p->groups) * bf16_row(p, cols) + 1) / 2;
    size_t dw = ac_conv_is_depthwise(p) ? ac_conv_depthwise_scratch(p, h, w) : 0;
    return general > dw ? general : dw;
}

/* col[K, cols] for output positions p0 .. p0+cols of one item and one group.
 * x: [cin_g, h, w] (the group's channels); row r of col = (ci, ky, kx). */
static void im2col_chunk(const float *x, int h, int w, const ac_conv_params *p, int ho, int wo,
                         int p0, int cols, float *col)
{
    (void)ho;
    int cin_g = p->cin / p->groups;
    for (int ci = 0; ci < cin_g; ci++)
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++) {
                float *dst = col + ((size_t)(ci * p->kh + ky) * p->kw + kx) * cols;
                const float *plane = x + (size_t)ci * h * w;
                int oy = p0 / wo, ox = p0 % wo, j = 0;
                while (j < cols) {
                    int run = wo - ox; /* positions left in this output row */
                    if (run > cols - j) run = cols - j;
                    int iy = oy * p->sh - p->pad_t + ky * p->dh;
                    if (iy < 0 || iy >= h) {
                        memset(dst + j, 0, (size_t)run * sizeof *dst);
                    } else {
                        const float *row = plane + (size_t)iy * w;
                        int ix = ox * p->sw - p->pad_l + kx * p->dw;
                        if (p->sw == 1 && ix >= 0 && ix + run <= w) {
                            memcpy(dst + j, row + ix, (size_t)run * sizeof *dst);
                        } else {
                            for (int t = 0; t < run; t++, ix += p->sw)
                                dst[j + t] = (ix >= 0 && ix < w) ? row[ix] : 0.f;
                        }
                    }
                    j += run;
                    ox = 0;
                    oy++;
                }
            }
}

/* The transposed layout for strided one-row convolutions: row j of `rows` holds the K
 * inputs of output position p0+j, channel after channel. Each channel's kw taps are
 * contiguous in the input, so a row is a few memcpys, where im2col would gather every
 * value with a stride (M5's first layer: 80 taps, stride 16). */
static void im2row_chunk(const float *x, int w, const ac_conv_params *p, int p0, int cols, float *rows)
{
    const int cin_g = p->cin / p->groups, kw = p->kw;
    for (int j = 0; j < cols; j++) {
        int ix0 = (p0 + j) * p->sw - p->pad_l;
        float *dst = rows + (size_t)j * cin_g * kw;
        /* taps [a, b) lie inside the input; padding can exceed the kernel, so clamp both */
        int a = -ix0 < 0 ? 0 : -ix0 > kw ? kw : -ix0;
        int b = w - ix0 > kw ? kw : w - ix0 < a ? a : w - ix0;
        for (int ci = 0; ci < cin_g; ci++, dst += kw) {
            memset(dst, 0, (size_t)a * sizeof *dst);
            if (b > a) /* (never form a pointer before the input: ix0 + a >= 0) */
                memcpy(dst + a, x + (size_t)ci * w + (ix0 + a), (size_t)(b - a) * sizeof *dst);
            memset(dst + b, 0, (size_t)(kw - b) * sizeof *dst);
        }
    }
}

/* one-row, strided, undilated: contiguous rows beat a strided column gather */
static int use_im2row(const ac_conv_params *p, int h)
{
    return h == 1 && p->kh == 1 && p->sw > 1 && p->dw == 1;
}

/* One row, stride 1, unpadded: row (ci, kx) of im2col is input row ci from kx * dw on, so
 * the BF16 product packs straight from the input. */
static int shifted_rows(const ac_conv_params *p, int h)
{
    return h == 1 && p->kh == 1 && p->sw == 1 && !p->pad_l && !p->pad_r;
}

/* 1x1, stride 1, unpadded: the input is already the GEMM's right operand ([cin_g, h*w]) */
static int is_pointwise(const ac_conv_params *p)
{
    return p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && !p->pad_t && !p->pad_b &&
           !p->pad_l && !p->pad_r;
}

/* One-row, stride 1, dilation 1, unpadded, even width: ac_conv1d_bf16, which packs nothing. */
static int bf16_shift(const ac_conv_params *p, int h)
{
    return shifted_rows(p, h) && p->dw == 1 && p->kw % 2 == 0;
}

/* BF16 weights, a CPU with AVX-512 BF16, and a sum long enough to pay (AC_BF16_MIN_K; the
 * one-row kernel too: EnvNet's conv1, K = 8, ran at 19 GFLOP/s in it vs 42-61 in FP32). */
static int bf16_fits(const ac_conv_params *p)
{
    return p->bf16 && bf16_k(p) >= AC_BF16_MIN_K && ac_bf16_supported();
}

ac_conv_kernel ac_conv2d_choose(const ac_conv_params *p, int h, int w)
{
    if (ac_conv_is_depthwise(p)) return AC_CONV_DEPTHWISE;
    if (bf16_fits(p)) return AC_CONV_BF16;
    /* a 1x1 layer goes to the direct kernels where they take it: on one core of the shared
     * (loaded) development machine, best of 1.5 s of runs, 64 -> 256 and 256 -> 64 channels,
     * 2000 steps, batch 8, the TIME kernel ran at 119-166 and 72-108 GFLOP/s, SGEMM straight
     * on the input at 64-72 and 67-105 */
    switch (ac_ops_direct() ? ac_conv_direct_choose(p, h, w) : AC_DIRECT_NONE) {
    case AC_DIRECT_TIME: return AC_CONV_DIRECT_TIME;
    case AC_DIRECT_CHANNELS: return AC_CONV_DIRECT_CHANNELS;
    case AC_DIRECT_NONE: break;
    }
    if (is_pointwise(p)) return AC_CONV_POINTWISE;
    return use_im2row(p, h) ? AC_CONV_IM2ROW : AC_CONV_IM2COL;
}

/* Whether kernel k can compute p on [cin, h, w] (a preset is checked, never trusted). */
static int kernel_fits(int k, const ac_conv_params *p, int h, int w)
{
    switch (k) {
    case AC_CONV_IM2COL: return 1;
    case AC_CONV_IM2ROW: return use_im2row(p, h);
    case AC_CONV_DIRECT_TIME: return ac_ops_direct() && ac_conv_direct_choose(p, h, w) == AC_DIRECT_TIME;
    case AC_CONV_DIRECT_CHANNELS:
        return ac_ops_direct() && ac_conv_direct_choose(p, h, w) == AC_DIRECT_CHANNELS;
    case AC_CONV_DEPTHWISE: return ac_conv_is_depthwise(p);
    case AC_CONV_POINTWISE: return is_pointwise(p);
    case AC_CONV_BF16: return bf16_fits(p) && !ac_conv_is_depthwise(p);
    default: return 0;
    }
}

/* The kernel ac_conv2d runs: the preset one where it fits, else the choice of now. */
static ac_conv_kernel conv_kernel(const ac_conv_params *p, int h, int w)
{
    return kernel_fits(p->kernel, p, h, w) ? (ac_conv_kernel)p->kernel : ac_conv2d_choose(p, h, w);
}

const char *ac_conv2d_kernel(const ac_conv_params *p, int h, int w)
{
    switch (conv_kernel(p, h, w)) {
    case AC_CONV_DIRECT_TIME: return "direct-time";
    case AC_CONV_DIRECT_CHANNELS: return "direct-channels";
    case AC_CONV_DEPTHWISE: return "depthwise";
    case AC_CONV_POINTWISE: return "pointwise+sgemm";
    case AC_CONV_IM2ROW: return "im2row+sgemm";
    case AC_CONV_BF16: return "im2col+bf16";
    default: return "im2col+sgemm";
    }
}

/* Integer products: the file asks, the CPU can, and the sums fit in 32 bits. */
static int linear_vnni(const ac_matrix *W)
{
    return W->vnni && W->dtype == AC_I8 && W->cols <= AC_VNNI_MAX_IN && ac_vnni_supported();
}

static int linear_direct(const ac_matrix *W, int n)
{
    const int small = (size_t)W->rows * (size_t)W->cols <= AC_LINEAR_DIRECT_F32_MAX;
    return (W->dtype != AC_F32 || small) && n <= AC_LINEAR_DIRECT_MAX_BATCH && ac_ops_direct();
}

const char *ac_linear_kernel(const ac_matrix *W, int n)
{
    if (linear_vnni(W)) return "vnni-i8";
    if (linear_direct(W, n))
        return W->dtype == AC_I8 ? "direct-i8" : W->dtype == AC_F32 ? "direct-f32" : "direct-f16";
    return W->dtype == AC_F32 ? "sgemm" : "dequant+sgemm";
}

/* One convolution task, and what all tasks share: batch item b, group g, chunk c of the
 * positions. Built once by ac_conv2d, read by every thread (never written). */
typedef struct {
    const float *x, *weight, *bias;
    const ac_conv_params *p;
    float *y;
    int h, w, ho, wo, relu;
    int G, cin_g, cout_g, pw, P, Y, K, cols, nchunks;
    int by_rows, pointwise, bf16;
    size_t bf16_group, front;
    ac_conv_direct_kind direct;
    const ac_conv_layer *pre; /* the chain's first layer (ac_conv2d_chain), else NULL */
    const float *pre_x;       /* its input [n, pre.cin, 1, pre_w] */
    int pre_w;
    size_t pre_at;            /* where its rows go in a task's scratch slice */
} conv2d_job;

/* The chain's first layer over columns p0 .. p0 + cols - 1 of its output, for item b:
 * rows[cout, cols] (row stride cols). */
static void chain_rows(const conv2d_job *J, int b, int p0, int cols, float *rows)
{
    const ac_conv_params *a = J->pre->p;
    const ac_direct_geom ga = {a->cin, 1, a->kw, J->pre_w, J->pre_w, a->dw};
    ac_conv_direct_rows(J->pre_x + (size_t)b * a->cin * J->pre_w + p0, &ga, J->pre->weight, J->pre->bias,
                        J->pre->relu, a->cout, cols, rows, cols);
}

/* Computes task t of job J (chunk t % nchunks of group t / nchunks % G of item
 * t / (G * nchunks)). col is the calling thread's scratch slice; *packed_group names the
 * group whose weights the channel kernel last packed into it (-1: none). */
static void conv2d_task(const conv2d_job *J, long t, float *col, int *packed_group)
{
    const ac_conv_params *p = J->p;
    const float *x = J->x, *weight = J->weight, *bias = J->bias;
    float *y = J->y;
    const int h = J->h, w = J->w, ho = J->ho, wo = J->wo, relu = J->relu;
    const int G = J->G, cin_g = J->cin_g, cout_g = J->cout_g, pw = J->pw, P = J->P, Y = J->Y;
    const int K = J->K, cols = J->cols, nchunks = J->nchunks;
    const int by_rows = J->by_rows, pointwise = J->pointwise, bf16 = J->bf16;
    const size_t bf16_group = J->bf16_group, front = J->front;
    const ac_conv_direct_kind direct = J->direct;
    int b = (int)(t / ((long)G * nchunks)), g = (int)(t / nchunks % G), c = (int)(t % nchunks);
    int p0 = c * cols, cw = P - p0 < cols ? P - p0 : cols;
    const float *xg = x ? x + ((size_t)b * p->cin + (size_t)g * cin_g) * h * w : NULL; /* NULL: a chain */
    float *yg = y + ((size_t)b * p->cout + (size_t)g * cout_g) * Y;
    const float *wg = weight + (size_t)g * cout_g * K;
    /* with a fused pool the conv writes a chunk buffer after the front, else y itself */
    float *dst = pw > 0 ? col + front : yg + p0;
    const int ld = pw > 0 ? cw : P;
    const float *bg = bias ? bias + (size_t)g * cout_g : NULL;
    if (J->pre && !bf16) { /* the chain: the first layer's rows that this chunk reads, then this layer */
        const int span = cw + (p->kw - 1) * p->dw;          /* columns of a's output read */
        float *rows = col + J->pre_at;                      /* [cin_g, span] */
        chain_rows(J, b, p0, span, rows);
        const ac_direct_geom gb = {cin_g, 1, p->kw, span, span, p->dw};
        ac_conv_direct_rows(rows, &gb, wg, bg, relu, cout_g, cw, dst, ld);
        if (pw > 0) ac_conv_direct_maxpool(dst, cout_g, ld, cw, pw, yg + p0 / pw, Y);
        return;
    }
    if (direct != AC_DIRECT_NONE) { /* dst[cout_g, cw] = relu(bg + conv(wg, xg) at p0..) */
        if (direct == AC_DIRECT_TIME) { /* output row by output row (2-D: whole rows) */
            const ac_direct_geom geom = {cin_g, p->kh, p->kw, h * w, w, p->dw};
            for (int q = p0; q < p0 + cw; q += wo - q % wo) {
                int oy = q / wo, ox = q % wo, seg = wo - ox < p0 + cw - q ? wo - ox : p0 + cw - q;
                ac_conv_direct_rows(xg + (size_t)oy * w + ox, &geom, wg, bg, relu, cout_g, seg,
                                    dst + (q - p0), ld);
            }
        } else {
            const float *pk = p->packed ? p->packed + (size_t)g * ac_conv_direct_packed_floats(cout_g, cin_g, p->kw) : col;
            if (!p->packed && *packed_group != g) ac_conv_direct_pack(wg, cout_g, cin_g, p->kw, col);
            *packed_group = g;
            ac_conv_direct_cols(xg + (size_t)p0 * p->sw, w, p->sw, pk, bg, relu, cout_g, cin_g,
                                p->kw, cw, pw, pw > 0 ? yg + p0 / pw : dst, pw > 0 ? Y : ld);
            return;
        }
        if (pw > 0) ac_conv_direct_maxpool(dst, cout_g, ld, cw, pw, yg + p0 / pw, Y);
        return;
    }
    if (bf16) { /* dst[cout_g, cw] = relu(bg + bf16(wg) . bf16(rows of B)) */
        uintptr_t at = (uintptr_t)(col + conv_before_bf16(p, cols));
        const float **brow = (const float **)((at + 63) & ~(uintptr_t)63);
        uint16_t *bscratch = (uint16_t *)(brow + K);
        if (bf16_shift(p, h)) { /* no B at all */
            const int ldx = bf16_row(p, cw), have = w - p0 < ldx ? w - p0 : ldx;
            const float *src = xg ? xg + p0 : col + J->pre_at; /* a chain: the first layer's rows */
            const size_t src_ld = xg ? (size_t)w : (size_t)have;
            if (!xg) chain_rows(J, b, p0, have, col + J->pre_at);
            for (int ci = 0; ci < cin_g; ci++) {
                uint16_t *xr = bscratch + (size_t)ci * ldx;
                ac_bf16_convert(src + (size_t)ci * src_ld, have, xr);
                memset(xr + have, 0, sizeof(uint16_t) * (size_t)(ldx - have));
            }
            ac_conv1d_bf16(cout_g, cw, cin_g, p->kw, p->bf16 + (size_t)g * bf16_group, bscratch, ldx,
                           dst, ld, bg, relu);
        } else {
        if (shifted_rows(p, h)) { /* row (ci, kx) of B is the input row, shifted */
            for (int ci = 0; ci < cin_g; ci++)
                for (int kx = 0; kx < p->kw; kx++)
                    brow[ci * p->kw + kx] = xg + (size_t)ci * w + p0 + kx * p->dw;
        } else if (is_pointwise(p)) {
            for (int k = 0; k < K; k++) brow[k] = xg + (size_t)k * h * w + p0;
        } else {
            im2col_chunk(xg, h, w, p, ho, wo, p0, cw, col);
            for (int k = 0; k < K; k++) brow[k] = col + (size_t)k * cw;
        }
        ac_gemm_bf16(cout_g, cw, K, p->bf16 + (size_t)g * bf16_group, brow, dst, ld, bg, relu, bscratch);
        }
        if (pw > 0) ac_conv_direct_maxpool(dst, cout_g, ld, cw, pw, yg + p0 / pw, Y);
        return;
    }
    if (pointwise) { /* dst[cout_g, cw] = wg[cout_g, cin_g] . xg[cin_g, p0 .. p0 + cw] */
        ac_sgemm(0, cout_g, cw, K, wg, K, xg + p0, h * w, dst, ld);
    } else if (by_rows) { /* dst[cout_g, cw] = wg[cout_g, K] . rows[cw, K]^T */
        im2row_chunk(xg, w, p, p0, cw, col);
        ac_sgemm(1, cout_g, cw, K, wg, K, col, K, dst, ld);
    } else { /* dst[cout_g, cw] (row stride ld) = wg[cout_g, K] . col[K, cw] */
        im2col_chunk(xg, h, w, p, ho, wo, p0, cw, col);
        ac_sgemm(0, cout_g, cw, K, wg, K, col, cw, dst, ld);
    }
    for (int o = 0; o < cout_g; o++) {
        float bv = bg ? bg[o] : 0.f, *r = dst + (size_t)o * ld;
        if (relu)
            for (int j = 0; j < cw; j++) r[j] = r[j] + bv > 0.f ? r[j] + bv : 0.f;
        else if (bias)
            for (int j = 0; j < cw; j++) r[j] += bv;
        if (pw > 0) { /* max over each window of pw outputs (relu and max commute) */
            float *out = yg + (size_t)o * Y + p0 / pw;
            for (int j = 0; j < cw / pw; j++) {
                float m = r[j * pw];
                for (int i = 1; i < pw; i++) m = r[j * pw + i] > m ? r[j * pw + i] : m;
                out[j] = m;
            }
        }
    }
}

/* Fills J for ac_conv2d(x, n, h, w, ...) with kernel `kernel` (not depthwise): the chunking
 * of the positions and what every task shares. -> the number of tasks; *nt: threads worth
 * starting for them. */
static long conv2d_setup(conv2d_job *J, ac_conv_kernel kernel, const float *x, int n, int h, int w,
                         const float *weight, const float *bias, const ac_conv_params *p, int relu,
                         float *y, int threads, int *nt)
{
    const int ho = ac_out_size(h, p->kh, p->sh, p->dh, p->pad_t, p->pad_b);
    const int wo = ac_out_size(w, p->kw, p->sw, p->dw, p->pad_l, p->pad_r);
    const int G = p->groups, cin_g = p->cin / G, cout_g = p->cout / G, pw = p->pool_w;
    const int P = conv_positions(p, ho, wo);       /* positions computed per channel */
    const int Y = pw > 0 ? wo / pw : ho * wo;      /* values stored per channel of y */
    const int K = cin_g * p->kh * p->kw;
    int unit, cols = chunk_cols(p, h, w, P, &unit);
    const double work = (double)n * p->cout * K * P;
    if ((long)n * G * ((P + cols - 1) / cols) < threads && work >= 2 * AC_MIN_WORK_PER_THREAD) {
        /* fewer tasks than threads (batch 1): smaller chunks, whole units, so all can work */
        long want = (threads + (long)n * G - 1) / ((long)n * G);
        long c = ((P + want - 1) / want + unit - 1) / unit * unit;
        if (c < cols) cols = (int)c;
    }
    const int nchunks = (P + cols - 1) / cols;
    const long tasks = (long)n * G * nchunks;
    *nt = team(threads, tasks, work);
    const int bf16 = kernel == AC_CONV_BF16;
    *J = (conv2d_job){
        .x = x, .weight = weight, .bias = bias, .p = p, .y = y, .h = h, .w = w, .ho = ho, .wo = wo,
        .relu = relu, .G = G, .cin_g = cin_g, .cout_g = cout_g, .pw = pw, .P = P, .Y = Y, .K = K,
        .cols = cols, .nchunks = nchunks, .by_rows = kernel == AC_CONV_IM2ROW,
        .pointwise = kernel == AC_CONV_POINTWISE, .bf16 = bf16,
        .bf16_group = bf16 ? ac_bf16_packed_size(cout_g, K) : 0, .front = conv_front(p, cols),
        .direct = kernel == AC_CONV_DIRECT_TIME       ? AC_DIRECT_TIME
                  : kernel == AC_CONV_DIRECT_CHANNELS ? AC_DIRECT_CHANNELS
                                                      : AC_DIRECT_NONE};
    return tasks;
}

/* Runs the tasks of J on nt threads, each with its slice of `slice` floats of scratch. */
static void conv2d_run(const conv2d_job *J, long tasks, int nt, float *scratch, size_t slice)
{
    if (nt == 1) { /* no OpenMP region: see ops_team.h */
        int packed_group = -1;
        for (long t = 0; t < tasks; t++) conv2d_task(J, t, scratch, &packed_group);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        float *col = scratch + slice * (size_t)omp_get_thread_num();
        int packed_group = -1;
#pragma omp for schedule(dynamic, 1)
        for (long t = 0; t < tasks; t++) conv2d_task(J, t, col, &packed_group);
    }
}

void ac_conv2d(const float *x, int n, int h, int w, const float *weight, const float *bias,
               const ac_conv_params *p, int relu, float *y, float *scratch, int threads)
{
    const ac_conv_kernel kernel = conv_kernel(p, h, w);
    if (kernel == AC_CONV_DEPTHWISE) {
        ac_conv_depthwise(x, n, h, w, weight, bias, p, relu, y, scratch, threads);
        return;
    }
    conv2d_job J;
    int nt;
    const long tasks = conv2d_setup(&J, kernel, x, n, h, w, weight, bias, p, relu, y, threads, &nt);
    conv2d_run(&J, tasks, nt, scratch, ac_conv2d_scratch(p, h, w));
}

/* Width of the first layer's output row: the second layer's input width. */
static int chain_width(const ac_conv_params *a, int w)
{
    return ac_out_size(w, a->kw, a->sw, a->dw, a->pad_l, a->pad_r);
}

int ac_conv2d_chain_shape(const ac_conv_params *a, int h, int w, const ac_conv_params *b)
{
    if (h != 1 || a->kh != 1 || b->kh != 1 || a->groups != 1 || b->groups != 1 || a->pool_w ||
        b->cin != a->cout)
        return 0;
    const int wb = chain_width(a, w);
    return wb > 0 && ac_conv_direct_choose(a, 1, w) == AC_DIRECT_TIME &&
           ac_conv_direct_choose(b, 1, wb) == AC_DIRECT_TIME;
}

int ac_conv2d_chain_fits(const ac_conv_params *a, int h, int w, const ac_conv_params *b)
{
    if (!ac_conv2d_chain_shape(a, h, w, b) || conv_kernel(a, 1, w) != AC_CONV_DIRECT_TIME) return 0;
    const ac_conv_kernel kb = conv_kernel(b, 1, chain_width(a, w));
    /* b in BF16: the one-row kernel that converts its input rows chunk by chunk anyway */
    return kb == AC_CONV_DIRECT_TIME || (kb == AC_CONV_BF16 && bf16_shift(b, 1));
}

size_t ac_conv2d_chain_scratch(const ac_conv_params *a, int h, int w, const ac_conv_params *b)
{
    (void)h;
    const int wb = chain_width(a, w), wo = ac_out_size(wb, b->kw, b->sw, b->dw, b->pad_l, b->pad_r);
    const int cols = chunk_cols(b, 1, wb, conv_positions(b, 1, wo), NULL);
    /* b's own slice, then a's rows [b.cin, span]: span is cols + (kw - 1) dw in FP32, up to
     * bf16_row(cols) = cols rounded up to 32, + kw, in BF16 */
    return ac_conv2d_scratch(b, 1, wb) + (size_t)b->cin * (cols + 32 + (size_t)b->kw * b->dw);
}

void ac_conv2d_chain(const float *x, int n, int h, int w, const ac_conv_layer *a, const ac_conv_layer *b,
                     float *y, float *scratch, int threads)
{
    assert(ac_conv2d_chain_fits(a->p, h, w, b->p)); /* the caller's check (ac_graph_chain_here) */
    const int wb = chain_width(a->p, w);
    conv2d_job J;
    int nt;
    const long tasks = conv2d_setup(&J, conv_kernel(b->p, 1, wb), NULL, n, 1, wb, b->weight, b->bias, b->p,
                                    b->relu, y, threads, &nt);
    J.pre = a, J.pre_x = x, J.pre_w = w, J.pre_at = ac_conv2d_scratch(b->p, 1, wb);
    conv2d_run(&J, tasks, nt, scratch, ac_conv2d_chain_scratch(a->p, h, w, b->p));
}

/* Max pool of one [h, w] plane without padding: row by row, a running maximum over the
 * window's rows, then over its columns; no bounds checks (EnvNet's 3x3 pool on 33 x 138). */
static void unpadded_max_plane(const float *in, int w, const ac_pool_params *p, int ho, int wo,
                               float *out)
{
    for (int oy = 0; oy < ho; oy++) {
        float *o = out + (size_t)oy * wo;
        for (int ox = 0; ox < wo; ox++) o[ox] = -INFINITY;
        for (int ky = 0; ky < p->kh; ky++) {
            const float *row = in + (size_t)(oy * p->sh + ky) * w;
            for (int ox = 0; ox < wo; ox++) {
                const float *win = row + (size_t)ox * p->sw;
                float m = o[ox];
                for (int kx = 0; kx < p->kw; kx++) m = win[kx] > m ? win[kx] : m;
                o[ox] = m;
            }
        }
    }
}

/* Max (is_max) or average pool; padding is -inf for max and counted for average, as in
 * PyTorch's defaults. One body for both keeps their indexing identical. */
static void pool2d(const float *x, int n, int c, int h, int w, const ac_pool_params *p, float *y,
                   int threads, int is_max)
{
    const int ho = ac_out_size(h, p->kh, p->sh, 1, p->ph, p->ph);
    const int wo = ac_out_size(w, p->kw, p->sw, 1, p->pw, p->pw);
    const float inv = 1.f / (float)(p->kh * p->kw);
    const int nt = team(threads, (long)n * c, (double)n * c * ho * wo * p->kh * p->kw);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (long pc = 0; pc < (long)n * c; pc++) {
            const float *in = x + (size_t)pc * h * w;
            float *out = y + (size_t)pc * ho * wo;
            if (is_max && p->ph == 0 && p->pw == 0) { /* no padding: every window is inside */
                unpadded_max_plane(in, w, p, ho, wo, out);
                continue;
            }
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    float acc = is_max ? -INFINITY : 0.f;
                    for (int ky = 0; ky < p->kh; ky++) {
                        int iy = oy * p->sh - p->ph + ky;
                        if (iy < 0 || iy >= h) continue;
                        const float *row = in + (size_t)iy * w;
                        for (int kx = 0; kx < p->kw; kx++) {
                            int ix = ox * p->sw - p->pw + kx;
                            if (ix < 0 || ix >= w) continue;
                            if (!is_max) acc += row[ix];
                            else if (row[ix] > acc) acc = row[ix];
                        }
                    }
                    out[(size_t)oy * wo + ox] = is_max ? acc : acc * inv;
                }
        });
}

void ac_maxpool2d(const float *x, int n, int c, int h, int w, const ac_pool_params *p,
                  float *y, int threads)
{
    pool2d(x, n, c, h, w, p, y, threads, 1);
}

void ac_avgpool2d(const float *x, int n, int c, int h, int w, const ac_pool_params *p,
                  float *y, int threads)
{
    pool2d(x, n, c, h, w, p, y, threads, 0);
}

void ac_global_avgpool(const float *x, int n, int c, int hw, float *y, int threads)
{
    const int nt = team(threads, (long)n * c, (double)n * c * hw);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (long pc = 0; pc < (long)n * c; pc++) {
            const float *in = x + (size_t)pc * hw;
            double s = 0;
            for (int i = 0; i < hw; i++) s += in[i];
            y[pc] = (float)(s / hw);
        });
}

void ac_permute3(const float *x, int n, const int dims[3], const int perm[3], float *y,
                 int threads)
{
    /* the batch as a fourth, unmoved axis: ac_permute4 transposes tile by tile (ConvNeXt's
     * [128, 2000] <-> [2000, 128] ran 3-9x over their memory bound element by element) */
    const int d4[4] = {n, dims[0], dims[1], dims[2]}, p4[4] = {0, perm[0] + 1, perm[1] + 1, perm[2] + 1};
    ac_permute4(x, d4, p4, y, threads);
}

size_t ac_linear_scratch(const ac_matrix *W)
{
    if (W->dtype == AC_F32) return 0;
    size_t tile = (size_t)linear_tile_rows(W) * W->cols;
    /* the VNNI path's quantized inputs (in thread 0's slice): AC_VNNI_BATCH rows, scales */
    size_t vnni = ((size_t)AC_VNNI_BATCH * ac_vnni_row_bytes(W->cols) + 3) / 4 + 2 * AC_VNNI_BATCH;
    return tile > vnni ? tile : vnni;
}

/* tile[rows, cols] = rows r0.. of W as float32. Cloned per ISA so the conversion loops are
 * vectorised with the widest registers the CPU has (the baseline build targets SSE2). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void dequantize_rows(const ac_matrix *W, int r0, int rows, float *tile)
{
    const size_t cols = (size_t)W->cols;
    if (W->dtype == AC_F16) {
        const uint16_t *src = (const uint16_t *)W->data + (size_t)r0 * cols;
        for (size_t i = 0; i < (size_t)rows * cols; i++) tile[i] = ac_f16_to_f32(src[i]);
    } else {
        const int8_t *src = (const int8_t *)W->data + (size_t)r0 * cols;
        for (int r = 0; r < rows; r++) {
            const float s = W->scale[r0 + r];
            for (size_t i = 0; i < cols; i++) tile[r * cols + i] = (float)src[r * cols + i] * s;
        }
    }
}

/* r[j] = relu?(r[j] + bias[j]) for j < len; bias may be NULL. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void bias_relu_row(float *r, const float *bias,
                                                                                     int len, int relu)
{
    if (bias)
        for (int j = 0; j < len; j++) r[j] += bias[j];
    if (relu)
        for (int j = 0; j < len; j++) r[j] = r[j] > 0.f ? r[j] : 0.f;
}

void ac_linear(const float *x, int n, const ac_matrix *W, const float *bias, int relu,
               float *y, float *scratch, int threads)
{
    const int out = W->rows, in = W->cols;
    const int tile = linear_tile_rows(W), tiles = (out + tile - 1) / tile;
    const size_t slice = ac_linear_scratch(W);
    if (linear_vnni(W)) { /* AC_VNNI_BATCH items at a time: quantize, then rows in parallel */
        const int ldq = ac_vnni_row_bytes(in), rows = 32, blocks = (out + rows - 1) / rows;
        float *qscale = scratch;
        int32_t *zp = (int32_t *)(scratch + AC_VNNI_BATCH);
        uint8_t *q = (uint8_t *)(scratch + 2 * AC_VNNI_BATCH);
        for (int b0 = 0; b0 < n; b0 += AC_VNNI_BATCH) {
            const int nb = n - b0 < AC_VNNI_BATCH ? n - b0 : AC_VNNI_BATCH;
            ac_vnni_quantize(x + (size_t)b0 * in, nb, in, q, ldq, qscale, zp);
            const int nt = team(threads, blocks, (double)nb * out * in);
            AC_PARALLEL_FOR(nt, schedule(dynamic, 1),
                for (int t = 0; t < blocks; t++) {
                    ac_linear_vnni_rows(q, ldq, qscale, zp, nb, W, bias, relu, t * rows,
                                        t * rows + rows < out ? t * rows + rows : out, y + (size_t)b0 * out);
                });
        }
        return;
    }
    if (linear_direct(W, n)) {
        const int rows = 32, blocks = (out + rows - 1) / rows;
        const int nt = team(threads, blocks, (double)n * out * in);
        AC_PARALLEL_FOR(nt, schedule(dynamic, 1),
            for (int t = 0; t < blocks; t++) {
                ac_linear_direct_rows(x, n, W, bias, relu, t * rows, t * rows + rows < out ? t * rows + rows : out, y);
            });
        return;
    }
    if (W->dtype == AC_F32 && n >= 2 * AC_LINEAR_ROW_CHUNK) {
        /* Many rows (a [T, C] sequence through a Linear: ConvNeXt's 1x1 MLP): chunks of x's
         * rows, each one SGEMM with all of W. Tiles of W's rows would have the BLAS pack
         * the whole of x again for every tile (ConvNeXt 128 -> 512 over 16,000 rows: 36
         * GFLOP/s in 8 tiles). */
        const int chunks = (n + AC_LINEAR_ROW_CHUNK - 1) / AC_LINEAR_ROW_CHUNK;
        const int nt = team(threads, chunks, (double)n * out * in);
        AC_PARALLEL_FOR(nt, schedule(dynamic, 1),
            for (int t = 0; t < chunks; t++) {
                const int b0 = t * AC_LINEAR_ROW_CHUNK, nb = n - b0 < AC_LINEAR_ROW_CHUNK ? n - b0 : AC_LINEAR_ROW_CHUNK;
                float *yb = y + (size_t)b0 * out;
                /* yb[nb, out] = x[b0 .. b0 + nb, in] . W[out, in]^T */
                ac_sgemm(1, nb, out, in, x + (size_t)b0 * in, in, (const float *)W->data, in, yb, out);
                for (int b = 0; b < nb; b++) bias_relu_row(yb + (size_t)b * out, bias, out, relu);
            });
        return;
    }
    const int nt = team(threads, tiles, (double)(n + 1) * out * in); /* +1: dequantization */
    AC_PARALLEL_FOR(nt, schedule(dynamic, 1),
        for (int t = 0; t < tiles; t++) {
            int r0 = t * tile, rows = out - r0 < tile ? out - r0 : tile;
            const float *wt;
            if (W->dtype == AC_F32) {
                wt = (const float *)W->data + (size_t)r0 * in;
            } else {
                float *buf = scratch + slice * (size_t)AC_OPS_THREAD(nt);
                dequantize_rows(W, r0, rows, buf);
                wt = buf;
            }
            /* y[:, r0:r0+rows] (row stride out) = x[n, in] . wt[rows, in]^T */
            ac_sgemm(1, n, rows, in, x, in, wt, in, y + r0, out);
            for (int b = 0; b < n; b++) bias_relu_row(y + (size_t)b * out + r0, bias ? bias + r0 : NULL, rows, relu);
        });
}

void ac_relu(float *x, size_t count, int threads)
{
    const int nt = team(threads, (long)count, (double)count);
    AC_PARALLEL_FOR(nt, schedule(static),
        for (size_t i = 0; i < count; i++) {
            if (x[i] < 0.f) x[i] = 0.f;
        });
}

void ac_softmax(float *x, int n, int k)
{
    for (int b = 0; b < n; b++) {
        float *r = x + (size_t)b * k, m = -INFINITY;
        double s = 0;
        for (int i = 0; i < k; i++) m = r[i] > m ? r[i] : m;
        for (int i = 0; i < k; i++) s += (r[i] = expf(r[i] - m));
        for (int i = 0; i < k; i++) r[i] = (float)(r[i] / s);
    }
}

void ac_log_softmax(float *x, int n, int k)
{
    for (int b = 0; b < n; b++) {
        float *r = x + (size_t)b * k, m = -INFINITY;
        double s = 0;
        for (int i = 0; i < k; i++) m = r[i] > m ? r[i] : m;
        for (int i = 0; i < k; i++) s += exp((double)r[i] - m);
        const float log_s = (float)log(s); /* (x - m) - log s keeps precision for large x */
        for (int i = 0; i < k; i++) r[i] = (r[i] - m) - log_s;
    }
}
