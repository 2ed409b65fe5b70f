/* conv_depthwise.c - depthwise convolution with output positions as vector lanes (conv_depthwise.h):
 * an AVX-512 row kernel for stride 1 (dw_row_avx512), the portable one (dw_row) elsewhere. */
#include "conv_depthwise.h"

#include "ops_team.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* 16 floats: one AVX-512 register, two AVX2 or four SSE registers in the other clones.
 * Macros, not functions, so no vector crosses a call boundary (whose ABI would differ
 * between the clones). */
typedef float v16 __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));
#define LOAD16(p) ({ v16 v_; __builtin_memcpy(&v_, (p), sizeof v_); v_; }) /* unaligned */
#define STORE16(p, v) do { v16 v_ = (v); __builtin_memcpy((p), &v_, sizeof v_); } while (0)
#define RELU16(a) ((v16)((v16i)(a) & ((a) > (v16){0}))) /* lanes <= 0 (and -0) become +0 */

int ac_conv_is_depthwise(const ac_conv_params *p)
{
    return p->groups > 1 && p->groups == p->cin && p->cout % p->cin == 0 && p->kh <= AC_DEPTHWISE_MAX_KH;
}

size_t ac_conv_depthwise_scratch(const ac_conv_params *p, int h, int w)
{
    (void)h;
    return p->pool_w > 0 ? (size_t)ac_out_size(w, p->kw, p->sw, p->dw, p->pad_l, p->pad_r) : 0;
}

/* One output row of one plane: out[ox] = act(bias + sum over valid taps of wk[ky, kx] *
 * in[iy(ky), ox * sw - pad_l + kx * dw]) for ox < wo. rows[i] is the input row of the i-th
 * valid kernel row ky[i] (rows outside the input are zero padding and left out). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void dw_row(
    const float *const *rows, const int *kys, int nrows, const float *wk, float bias, int w,
    const ac_conv_params *p, int wo, int relu, float *out)
{
    const int kw = p->kw, sw = p->sw, dw = p->dw, pl = p->pad_l;
    /* interior [lo, hi): positions where every tap lies inside the row */
    int lo = (pl + sw - 1) / sw, hi = (w - 1 + pl - (kw - 1) * dw);
    hi = hi < 0 ? 0 : hi / sw + 1;
    if (lo > wo) lo = wo;
    if (hi > wo) hi = wo;
    if (hi < lo) hi = lo;
    /* the borders, with bounds checks */
    for (int ox = 0; ox < wo; ox++) {
        if (ox == lo) ox = hi; /* skip the interior */
        if (ox >= wo) break;
        float s = bias;
        for (int r = 0; r < nrows; r++)
            for (int kx = 0; kx < kw; kx++) {
                const int ix = ox * sw - pl + kx * dw;
                if (ix >= 0 && ix < w) s += wk[kys[r] * kw + kx] * rows[r][ix];
            }
        out[ox] = relu && s < 0.f ? 0.f : s;
    }
    int ox = lo;
    if (sw == 1) { /* blocks of 64 and 16 positions in registers over all taps */
        for (; ox + 64 <= hi; ox += 64) {
            v16 a0 = (v16){0} + bias, a1 = a0, a2 = a0, a3 = a0;
            for (int r = 0; r < nrows; r++) {
                const float *q = rows[r] + ox - pl, *wr = wk + kys[r] * kw;
                for (int kx = 0; kx < kw; kx++, q += dw) {
                    const float wv = wr[kx];
                    a0 += wv * LOAD16(q), a1 += wv * LOAD16(q + 16);
                    a2 += wv * LOAD16(q + 32), a3 += wv * LOAD16(q + 48);
                }
            }
            if (relu) {
                a0 = RELU16(a0), a1 = RELU16(a1);
                a2 = RELU16(a2), a3 = RELU16(a3);
            }
            STORE16(out + ox, a0);
            STORE16(out + ox + 16, a1);
            STORE16(out + ox + 32, a2);
            STORE16(out + ox + 48, a3);
        }
        for (; ox < hi && hi - lo >= 16; ox += 16) {
            if (ox + 16 > hi) /* the last, partial block: one ending at hi, which recomputes a
                                 few positions (and stores the same values again) */
                ox = hi - 16;
            v16 a = (v16){0} + bias;
            for (int r = 0; r < nrows; r++) {
                const float *q = rows[r] + ox - pl, *wr = wk + kys[r] * kw;
                for (int kx = 0; kx < kw; kx++, q += dw) a += wr[kx] * LOAD16(q);
            }
            if (relu) a = RELU16(a);
            STORE16(out + ox, a);
        }
    }
    /* the rest of the interior (all of it when strided or shorter than 16): tap by tap */
    if (ox < hi) {
        for (int j = ox; j < hi; j++) out[j] = bias;
        for (int r = 0; r < nrows; r++)
            for (int kx = 0; kx < kw; kx++) {
                const float wv = wk[kys[r] * kw + kx];
                const float *q = rows[r];
                for (int j = ox; j < hi; j++) out[j] += wv * q[j * sw - pl + kx * dw];
            }
        if (relu)
            for (int j = ox; j < hi; j++) out[j] = out[j] > 0.f ? out[j] : 0.f;
    }
}

/* Output vectors of the AVX-512 row kernel's blocks: 8 x 16 positions, 8 accumulators (two
 * FMA pipes x four cycles of latency), the 9 input vectors they read and the tap's weight. */
#define DW_NV 8
/* Floats ahead of a block that it prefetches (its own 8 lines per kernel row, 4 kB on): with
 * the inputs in DRAM, the hardware prefetcher alone fed this loop 13-14 GB/s on one core
 * against 34-42 with these (a plain copy: 36-40). */
#define DW_PREFETCH 1024
/* The same for the output, for writing (PREFETCHW): in a network the output buffer was last
 * read by the layer before, on the other core for half of it, and each line written had to
 * be taken from there on demand (DS-CNN's depthwise layers, 2 threads: 0.40-0.71 ->
 * 0.21-0.52 ms). */
#define DW_PREFETCH_W 1024

/* DW_SHIFT(c): acc[v] += wv * the 16 inputs that start c lanes into X[v] (the rest from
 * X[v + 1]), v < DW_NV; DW_TAPS: that for every tap of kernel row r, whose offset kx * dw from
 * the block's first input is 0..16. valignd takes the shift as an immediate, hence the switch
 * (one branch per tap and block, taken the same way in every block). */
#define DW_SHIFT(c)                                                                                \
    case c:                                                                                        \
        _Pragma("GCC unroll 8") for (int v = 0; v < DW_NV; v++) acc[v] = _mm512_fmadd_ps(          \
            wv, _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(X[v + 1]),            \
                                                        _mm512_castps_si512(X[v]), c)),            \
            acc[v]);                                                                               \
        break;
#define DW_TAPS()                                                                                  \
    do {                                                                                           \
        const float *wr = wk + kys[r] * kw;                                                        \
        for (int kx = 0; kx < kw; kx++) {                                                          \
            const __m512 wv = _mm512_set1_ps(wr[kx]);                                              \
            switch (kx * dw) {                                                                     \
            case 0:                                                                                \
                for (int v = 0; v < DW_NV; v++) acc[v] = _mm512_fmadd_ps(wv, X[v], acc[v]);        \
                break;                                                                             \
            DW_SHIFT(1) DW_SHIFT(2) DW_SHIFT(3) DW_SHIFT(4) DW_SHIFT(5) DW_SHIFT(6) DW_SHIFT(7)    \
            DW_SHIFT(8) DW_SHIFT(9) DW_SHIFT(10) DW_SHIFT(11) DW_SHIFT(12) DW_SHIFT(13)            \
            DW_SHIFT(14) DW_SHIFT(15)                                                              \
            default: /* 16 */                                                                      \
                for (int v = 0; v < DW_NV; v++) acc[v] = _mm512_fmadd_ps(wv, X[v + 1], acc[v]);    \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Lanes l of a vector of a row of w values, starting at (signed) position i0, that lie in the
 * row: the others are zero padding. */
__attribute__((target("avx512f"))) static inline __mmask16 dw_lanes(long i0, int w)
{
    const long lo = i0 < 0 ? -i0 : 0, hi = w - i0 < 16 ? w - i0 : 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << (hi - lo)) - 1) << lo);
}

/* dw_row for stride 1 and a kernel span (kw - 1) * dw of at most 16 positions, so that the
 * inputs of 16 outputs lie in two consecutive vectors: per kernel row, each input vector is
 * loaded once and every tap is a lane shift of two of them (valignd) and an FMA. Unaligned
 * loads per tap, as dw_row does, cross a cache line 15 times in 16 and ran at 13.6 cycles per
 * 16 outputs of a 9-tap kernel against 6.0 here (one core, data in L1). Blocks of DW_NV
 * vectors; where a block reaches past either end of the row (the borders, the tail), its
 * loads are masked to the row, the zeroed lanes being the padding, and its stores to wo. */
__attribute__((target("avx512f,prfchw"), always_inline)) static inline void dw_row_avx512_body(
    const float *const *rows, const int *kys, int nrows, const float *wk, float bias, int w,
    const ac_conv_params *p, int wo, int relu, float *out)
{
    const int kw = p->kw, dw = p->dw, pl = p->pad_l, span = (kw - 1) * dw;
    const __m512 b = _mm512_set1_ps(bias), zero = _mm512_setzero_ps();
    /* the last vector of a block is read only up to the span */
    const __mmask16 last = (__mmask16)((1u << span) - 1);
    for (int ox = 0; ox < wo; ox += 16 * DW_NV) {
        const long i0 = (long)ox - pl; /* the block's first input */
        const int inside = i0 >= 0 && i0 + 16 * DW_NV + span <= w && ox + 16 * DW_NV <= wo;
        for (int r = 0; r < nrows; r++) /* a hint: an address past the buffer does not fault */
            for (int l = 0; l < 16 * DW_NV; l += 16)
                _mm_prefetch((const char *)(rows[r] + i0 + DW_PREFETCH + l), _MM_HINT_T0);
        for (int l = 0; l < 16 * DW_NV; l += 16)
            __builtin_prefetch(out + ox + DW_PREFETCH_W + l, 1, 3);
        __m512 acc[DW_NV], X[DW_NV + 1];
        for (int v = 0; v < DW_NV; v++) acc[v] = b;
        for (int r = 0; r < nrows; r++) {
            const float *q = rows[r]; /* masked-off lanes are not read: nothing outside the row is */
            if (inside) {
#pragma GCC unroll 8
                for (int v = 0; v < DW_NV; v++) X[v] = _mm512_loadu_ps(q + i0 + 16 * v);
                X[DW_NV] = _mm512_maskz_loadu_ps(last, q + i0 + 16 * DW_NV);
            } else {
#pragma GCC unroll 8
                for (int v = 0; v < DW_NV; v++)
                    X[v] = _mm512_maskz_loadu_ps(dw_lanes(i0 + 16 * v, w), q + i0 + 16 * v);
                X[DW_NV] = _mm512_maskz_loadu_ps(dw_lanes(i0 + 16 * DW_NV, w) & last, q + i0 + 16 * DW_NV);
            }
            DW_TAPS();
        }
#pragma GCC unroll 8
        for (int v = 0; v < DW_NV; v++) {
            const __m512 o = relu ? _mm512_max_ps(acc[v], zero) : acc[v];
            const int left = wo - ox - 16 * v;
            if (left >= 16)
                _mm512_storeu_ps(out + ox + 16 * v, o);
            else if (left > 0)
                _mm512_mask_storeu_ps(out + ox + 16 * v, (__mmask16)((1u << left) - 1), o);
        }
    }
}

/* The body above with nrows known: one kernel row (every 1-D convolution) as a constant, so
 * that the 9 input vectors and 8 accumulators stay in registers; with nrows read at run
 * time GCC kept them on the stack, and the kernel streamed 29 instead of 53 GB/s (k = 7, one
 * core, data in L3). (prfchw: PREFETCHW, which CPUs without it run as a no-op.) */
__attribute__((target("avx512f,prfchw"))) static void dw_row_avx512(const float *const *rows, const int *kys,
                                                            int nrows, const float *wk, float bias,
                                                            int w, const ac_conv_params *p, int wo,
                                                            int relu, float *out)
{
    if (nrows == 1)
        dw_row_avx512_body(rows, kys, 1, wk, bias, w, p, wo, relu, out);
    else
        dw_row_avx512_body(rows, kys, nrows, wk, bias, w, p, wo, relu, out);
}

/* y's plane pc (item pc / cout, channel pc % cout) = relu(bias + depthwise conv of x); row is
 * the calling thread's scratch slice (one output row, for a fused pool). */
static void dw_plane(const float *x, int h, int w, const float *weight, const float *bias,
                     const ac_conv_params *p, int relu, float *y, long pc, int vec, float *row)
{
    const int ho = ac_out_size(h, p->kh, p->sh, p->dh, p->pad_t, p->pad_b);
    const int wo = ac_out_size(w, p->kw, p->sw, p->dw, p->pad_l, p->pad_r);
    const int mult = p->cout / p->cin, pw = p->pool_w;
    const int Y = pw > 0 ? wo / pw : ho * wo; /* values stored per channel of y */
    const float *rows[AC_DEPTHWISE_MAX_KH];
    int kys[AC_DEPTHWISE_MAX_KH];
    const int b = (int)(pc / p->cout), o = (int)(pc % p->cout);
    const float *in = x + ((size_t)b * p->cin + (size_t)(o / mult)) * h * w;
    const float *wk = weight + (size_t)o * p->kh * p->kw;
    const float bv = bias ? bias[o] : 0.f;
    float *out = y + (size_t)pc * Y;
    for (int oy = 0; oy < ho; oy++) {
        int nrows = 0;
        for (int ky = 0; ky < p->kh; ky++) {
            const int iy = oy * p->sh - p->pad_t + ky * p->dh;
            if (iy < 0 || iy >= h) continue;
            rows[nrows] = in + (size_t)iy * w;
            kys[nrows++] = ky;
        }
        float *dst = pw > 0 ? row : out + (size_t)oy * wo;
        if (vec)
            dw_row_avx512(rows, kys, nrows, wk, bv, w, p, wo, relu, dst);
        else
            dw_row(rows, kys, nrows, wk, bv, w, p, wo, relu, dst);
        if (pw > 0) /* one-row output: max over whole windows, the tail dropped */
            for (int j = 0; j < wo / pw; j++) {
                float m = row[j * pw];
                for (int i = 1; i < pw; i++) m = row[j * pw + i] > m ? row[j * pw + i] : m;
                out[j] = m;
            }
    }
}

void ac_conv_depthwise(const float *x, int n, int h, int w, const float *weight, const float *bias,
                       const ac_conv_params *p, int relu, float *y, float *scratch, int threads)
{
    const int ho = ac_out_size(h, p->kh, p->sh, p->dh, p->pad_t, p->pad_b);
    const int wo = ac_out_size(w, p->kw, p->sw, p->dw, p->pad_l, p->pad_r);
    const long planes = (long)n * p->cout;
    const size_t slice = ac_conv_depthwise_scratch(p, h, w);
    const int nt = ac_ops_team(threads, planes, (double)planes * ho * wo * p->kh * p->kw);
    const int vec = ac_ops_direct() && p->sw == 1 && (p->kw - 1) * p->dw <= 16;
    /* planes in static blocks, as `omp parallel for` would; no region for one thread */
    AC_PARALLEL_FOR(nt, schedule(static),
        for (long pc = 0; pc < planes; pc++)
            dw_plane(x, h, w, weight, bias, p, relu, y, pc, vec,
                     scratch + slice * (size_t)AC_OPS_THREAD(nt));
    );
}
