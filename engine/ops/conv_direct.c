/* conv_direct.c - the AVX-512 direct convolution kernels, TIME and CHANNELS (conv_direct.h). */
#include "conv_direct.h"

#include "transpose.h"

#include <immintrin.h>
#include <math.h>

/* Register block: CO output channels x TV vectors of 16 time steps = 24 accumulators of
 * the 32 zmm registers, leaving room for the TV input vectors. Per tap: TV input loads,
 * CO broadcasts (folded into the FMAs), CO * TV = 24 FMAs, so the FMA units, not the
 * loads, set the pace. */
#define TV 3
#define TB (16 * TV)
_Static_assert(TB == AC_CONV_DIRECT_BLOCK, "conv_direct.h announces the block size");

ac_conv_direct_kind ac_conv_direct_choose(const ac_conv_params *p, int h, int w)
{
    const int span = (p->kw - 1) * p->dw + 1; /* input columns one output reads */
    if (p->sh != 1 || p->dh != 1 || p->pad_t || p->pad_b || p->pad_l || p->pad_r || w < span ||
        h < p->kh)
        return AC_DIRECT_NONE;
    const int wo = (w - span) / p->sw + 1;
    if (h == 1 && p->kh == 1 && (p->sw > 1 || wo < AC_CONV_DIRECT_SHORT_ROW))
        return p->dw == 1 ? AC_DIRECT_CHANNELS : AC_DIRECT_NONE;
    return p->sw == 1 && wo >= AC_CONV_DIRECT_MIN_COLS ? AC_DIRECT_TIME : AC_DIRECT_NONE;
}

/* One block: y[c, 16 v + lane] for c < CO, lanes enabled in mask[v], with the bias added
 * and ReLU applied on the way out. MASKED = 0 is the full block (all 48 lanes, plain loads);
 * MASKED = 1 the last, partial block of a row: disabled lanes are neither loaded nor
 * stored, and an enabled lane j reads x[ci, j + k dw] with j + k dw < cols + (kw - 1) dw. */
#define DEFINE_BLOCK(CO, MASKED)                                                                   \
    __attribute__((target("avx512f"))) static void block_##CO##_##MASKED(                          \
        const float *x, const ac_direct_geom *g, const float *w, const float *bias, int relu,      \
        const __mmask16 mask[TV], float *y, int ld)                                               \
    {                                                                                              \
        const int kw = g->kw, dw = g->dw, w_stride = g->cin * g->kh * kw;                          \
        __m512 acc[CO][TV];                                                                        \
        _Pragma("GCC unroll 8") for (int c = 0; c < CO; c++)                                       \
            _Pragma("GCC unroll 3") for (int v = 0; v < TV; v++) acc[c][v] = _mm512_setzero_ps();  \
        for (int r = 0; r < g->cin * g->kh; r++) { /* input row r: channel r / kh, kernel row r % kh */ \
            const float *xr = x + (size_t)(r / g->kh) * g->x_stride + (size_t)(r % g->kh) * g->row_stride; \
            const float *wr = w + (size_t)r * kw;                                                  \
            for (int k = 0; k < kw; k++) {                                                         \
                __m512 xv[TV];                                                                     \
                _Pragma("GCC unroll 3") for (int v = 0; v < TV; v++)                               \
                    xv[v] = MASKED ? _mm512_maskz_loadu_ps(mask[v], xr + k * dw + 16 * v)          \
                                   : _mm512_loadu_ps(xr + k * dw + 16 * v);                        \
                _Pragma("GCC unroll 8") for (int c = 0; c < CO; c++) {                             \
                    const __m512 wv = _mm512_set1_ps(wr[(size_t)c * w_stride + k]);                \
                    _Pragma("GCC unroll 3") for (int v = 0; v < TV; v++)                           \
                        acc[c][v] = _mm512_fmadd_ps(wv, xv[v], acc[c][v]);                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int c = 0; c < CO; c++) {                                     \
            const __m512 b = _mm512_set1_ps(bias ? bias[c] : 0.f);                                 \
            _Pragma("GCC unroll 3") for (int v = 0; v < TV; v++) {                                 \
                __m512 o = _mm512_add_ps(acc[c][v], b);                                            \
                if (relu) o = _mm512_max_ps(o, _mm512_setzero_ps());                               \
                if (MASKED)                                                                        \
                    _mm512_mask_storeu_ps(y + (size_t)c * ld + 16 * v, mask[v], o);                \
                else                                                                               \
                    _mm512_storeu_ps(y + (size_t)c * ld + 16 * v, o);                              \
            }                                                                                      \
        }                                                                                          \
    }

#define DEFINE_BLOCKS(CO) DEFINE_BLOCK(CO, 0) DEFINE_BLOCK(CO, 1)
DEFINE_BLOCKS(8)
DEFINE_BLOCKS(4)
DEFINE_BLOCKS(2)
DEFINE_BLOCKS(1)

typedef void block_fn(const float *, const ac_direct_geom *, const float *, const float *, int,
                      const __mmask16 *, float *, int);

__attribute__((target("avx512f"))) void ac_conv_direct_rows(const float *x, const ac_direct_geom *g,
                                                            const float *w, const float *bias,
                                                            int relu, int cout, int cols, float *y,
                                                            int ld)
{
    static block_fn *const blocks[2][4] = {{block_8_0, block_4_0, block_2_0, block_1_0},
                                           {block_8_1, block_4_1, block_2_1, block_1_1}};
    const int w_stride = g->cin * g->kh * g->kw;
    for (int j0 = 0; j0 < cols; j0 += TB) {
        __mmask16 mask[TV];
        for (int v = 0; v < TV; v++) {
            int lanes = cols - j0 - 16 * v;
            lanes = lanes < 0 ? 0 : lanes > 16 ? 16 : lanes;
            mask[v] = (__mmask16)((1u << lanes) - 1u);
        }
        block_fn *const *fn = blocks[cols - j0 < TB];
        for (int o = 0, size = 8, which = 0; o < cout; size /= 2, which++)
            for (; o + size <= cout; o += size) /* 8-channel blocks, then one of 4, 2, 1 each */
                fn[which](x + j0, g, w + (size_t)o * w_stride, bias ? bias + o : NULL, relu, mask,
                          y + (size_t)o * ld + j0, ld);
    }
}

/* out[r, j] = max(y[r, j pw .. j pw + pw - 1]) for r < rows, j < cols / pw. */
__attribute__((target("avx512f"))) void ac_conv_direct_maxpool(const float *y, int rows, int ld,
                                                               int cols, int pw, float *out,
                                                               int out_ld)
{
    for (int r = 0; r < rows; r++) {
        const float *in = y + (size_t)r * ld;
        float *o = out + (size_t)r * out_ld;
        for (int j = 0; j < cols / pw; j++) {
            const float *win = in + (size_t)j * pw;
            int i = 0;
            float m = win[0];
            if (pw >= 16) {
                __m512 v = _mm512_loadu_ps(win);
                for (i = 16; i + 16 <= pw; i += 16) v = _mm512_max_ps(v, _mm512_loadu_ps(win + i));
                m = _mm512_reduce_max_ps(v);
            }
            for (; i < pw; i++) m = win[i] > m ? win[i] : m;
            o[j] = m;
        }
    }
}

/* ---- channel-vectorised kernel: strided or narrow one-row convolutions ----
 * Lanes run over 16 output channels; a block is OV vectors (16 OV channels) x J output
 * positions = OV * J accumulators. Per tap: OV packed weight loads, J broadcasts of input
 * samples, OV * J FMAs. Weights are packed [cin, kw, cout rounded up to 16] (zeros past
 * cout) so a tap's channels are one contiguous vector; the finished block is written out
 * transposed ([channel, position]) through a small buffer. */
#define CJ 12 /* positions per full block */

size_t ac_conv_direct_packed_floats(int cout, int cin, int kw)
{
    return (size_t)cin * kw * (size_t)((cout + 15) / 16 * 16);
}

void ac_conv_direct_pack(const float *w, int cout, int cin, int kw, float *packed)
{
    const int cp = (cout + 15) / 16 * 16;
    for (int ci = 0; ci < cin; ci++)
        for (int k = 0; k < kw; k++) {
            float *dst = packed + ((size_t)ci * kw + k) * cp;
            for (int o = 0; o < cp; o++) dst[o] = o < cout ? w[((size_t)o * cin + ci) * kw + k] : 0.f;
        }
}

#define DEFINE_CBLOCK(OV, J)                                                                       \
    __attribute__((target("avx512f"))) static void cblock_##OV##x##J(                              \
        const float *x, int x_stride, int stride, const float *packed, int cp, int cin, int kw,   \
        __m512 *out)                                                                               \
    {                                                                                              \
        __m512 acc[OV][J];                                                                         \
        _Pragma("GCC unroll 2") for (int v = 0; v < OV; v++)                                       \
            _Pragma("GCC unroll 12") for (int j = 0; j < J; j++) acc[v][j] = _mm512_setzero_ps();  \
        for (int ci = 0; ci < cin; ci++) {                                                         \
            const float *xr = x + (size_t)ci * x_stride;                                           \
            const float *wr = packed + (size_t)ci * kw * cp;                                       \
            for (int k = 0; k < kw; k++) {                                                         \
                __m512 wv[OV];                                                                     \
                _Pragma("GCC unroll 2") for (int v = 0; v < OV; v++)                               \
                    wv[v] = _mm512_loadu_ps(wr + (size_t)k * cp + 16 * v);                        \
                _Pragma("GCC unroll 12") for (int j = 0; j < J; j++) {                             \
                    const __m512 xv = _mm512_set1_ps(xr[(size_t)j * stride + k]);                  \
                    _Pragma("GCC unroll 2") for (int v = 0; v < OV; v++)                           \
                        acc[v][j] = _mm512_fmadd_ps(wv[v], xv, acc[v][j]);                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 2") for (int v = 0; v < OV; v++)                                       \
            _Pragma("GCC unroll 12") for (int j = 0; j < J; j++) out[v * J + j] = acc[v][j];      \
    }
DEFINE_CBLOCK(2, 12)
DEFINE_CBLOCK(2, 4)
DEFINE_CBLOCK(2, 1)
DEFINE_CBLOCK(1, 12)
DEFINE_CBLOCK(1, 4)
DEFINE_CBLOCK(1, 1)

__attribute__((target("avx512f"))) void ac_conv_direct_cols(const float *x, int x_stride,
                                                            int stride, const float *packed,
                                                            const float *bias, int relu, int cout,
                                                            int cin, int kw, int cols, int pool,
                                                            float *y, int ld)
{
    const int cp = (cout + 15) / 16 * 16;
    float tmp[2 * 16 * CJ] __attribute__((aligned(64))); /* [position][channel] of one block */
    __m512 out[2 * CJ]; /* [ov][J] of the block just computed */
    for (int o0 = 0; o0 < cout; o0 += 32) {
        const int ov = cout - o0 > 16 ? 2 : 1, nch = cout - o0 < 32 ? cout - o0 : 32;
        const float *pk = packed + o0;
        __m512 run[2] = {_mm512_set1_ps(-INFINITY), _mm512_set1_ps(-INFINITY)}; /* pool window so far */
        int in_window = 0, window = 0;
        for (int j0 = 0; j0 < cols;) {
            const int left = cols - j0, J = left >= CJ ? CJ : left >= 4 ? 4 : 1;
            const float *xb = x + (size_t)j0 * stride;
            switch (ov * 100 + J) {
            case 212: cblock_2x12(xb, x_stride, stride, pk, cp, cin, kw, out); break;
            case 204: cblock_2x4(xb, x_stride, stride, pk, cp, cin, kw, out); break;
            case 201: cblock_2x1(xb, x_stride, stride, pk, cp, cin, kw, out); break;
            case 112: cblock_1x12(xb, x_stride, stride, pk, cp, cin, kw, out); break;
            case 104: cblock_1x4(xb, x_stride, stride, pk, cp, cin, kw, out); break;
            default: cblock_1x1(xb, x_stride, stride, pk, cp, cin, kw, out); break;
            }
            __m512 b[2];
            for (int v = 0; v < ov; v++) {
                const int lanes = nch - 16 * v < 16 ? nch - 16 * v : 16; /* channels < cout */
                b[v] = bias ? _mm512_maskz_loadu_ps((__mmask16)((1u << lanes) - 1u), bias + o0 + 16 * v)
                            : _mm512_setzero_ps();
            }
            if (pool > 0) { /* running max over each window; one transposed store per window */
                for (int j = 0; j < J; j++) {
                    for (int v = 0; v < ov; v++) {
                        __m512 r = _mm512_add_ps(out[v * J + j], b[v]);
                        if (relu) r = _mm512_max_ps(r, _mm512_setzero_ps());
                        run[v] = _mm512_max_ps(run[v], r);
                    }
                    if (++in_window < pool) continue;
                    for (int v = 0; v < ov; v++) {
                        _mm512_store_ps(tmp + 16 * v, run[v]);
                        run[v] = _mm512_set1_ps(-INFINITY);
                    }
                    for (int c = 0; c < nch; c++) y[(size_t)(o0 + c) * ld + window] = tmp[c];
                    window++;
                    in_window = 0;
                }
            } else {
                for (int v = 0; v < ov; v++)
                    for (int j = 0; j < J; j++) {
                        __m512 r = _mm512_add_ps(out[v * J + j], b[v]);
                        if (relu) r = _mm512_max_ps(r, _mm512_setzero_ps());
                        _mm512_store_ps(tmp + (size_t)j * 32 + 16 * v, r);
                    }
                /* y[o0 + c, j0 + j] = tmp[j][c]: 16 x 16 register transposes, whole-vector
                 * stores (element by element, a stem with 128 channels and 16 taps ran at 4-8x
                 * its roofline bound on these stores) */
                ac_transpose_block(tmp, 32, y + (size_t)o0 * ld + j0, (size_t)ld, J, nch);
            }
            j0 += J;
        }
    }
}
