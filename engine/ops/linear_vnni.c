/* linear_vnni.c - I8 x u8 fully connected layers with vpdpbusd (see linear_vnni.h).
 *
 * Register block: RB weight rows x BB batch items = 20 accumulators of 16 lanes, each lane
 * four products per instruction. Per 64 inputs: RB weight loads, BB input loads, RB * BB
 * vpdpbusd. A row's weight sum (for a zero point) is taken only when an input needs one.
 */
#include "linear_vnni.h"

#include <immintrin.h>
#include <math.h>

#define RB 4
#define BB 5

int ac_vnni_supported(void)
{
    static int cpu = -1;
    if (cpu < 0) {
        __builtin_cpu_init();
        cpu = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
    }
    return cpu && ac_ops_direct();
}

int ac_vnni_row_bytes(int in) { return (in + 63) / 64 * 64; }

/* o[i] = clamp(rint(r[i] * inv) + z, 0, 255) for i < in (rint: round half to even, as
 * lrintf in the default rounding mode); [lo, hi] of r, 0 included. AVX-512: this ran as a
 * libm lrintf call per input (fc7 of EnvNet, 4096 x 10 inputs: most of its time). */
__attribute__((target("avx512f,avx512bw"))) static void row_range(const float *r, int in, float *lo, float *hi)
{
    __m512 l = _mm512_setzero_ps(), h = _mm512_setzero_ps();
    for (int i = 0; i < in; i += 16) {
        const __mmask16 m = in - i >= 16 ? 0xFFFF : (__mmask16)((1u << (in - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, r + i); /* masked lanes read as 0: in range */
        l = _mm512_min_ps(v, l), h = _mm512_max_ps(v, h); /* a NaN lane keeps l, h (as before) */
    }
    *lo = _mm512_reduce_min_ps(l), *hi = _mm512_reduce_max_ps(h);
}

__attribute__((target("avx512f,avx512bw"))) static void quantize_row(const float *r, int in, float inv, int z,
                                                                    uint8_t *o)
{
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i vz = _mm512_set1_epi32(z), zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
    for (int i = 0; i < in; i += 16) {
        const __mmask16 m = in - i >= 16 ? 0xFFFF : (__mmask16)((1u << (in - i)) - 1);
        __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, r + i), vinv)), vz);
        v = _mm512_min_epi32(_mm512_max_epi32(v, zero), top);
        _mm512_mask_cvtepi32_storeu_epi8(o + i, m, v);
    }
}

void ac_vnni_quantize(const float *x, int n, int in, uint8_t *q, int ldq, float *scale, int32_t *zp)
{
    for (int b = 0; b < n; b++) {
        const float *r = x + (size_t)b * in;
        float lo, hi;
        row_range(r, in, &lo, &hi);
        const int z = lo < 0.f ? 128 : 0;
        const float top = z ? fmaxf(-lo, hi) : hi, s = top > 0.f ? top / (z ? 127.f : 255.f) : 1.f;
        uint8_t *o = q + (size_t)b * ldq;
        quantize_row(r, in, 1.f / s, z, o);
        for (int i = in; i < ldq; i++) o[i] = (uint8_t)z; /* (z - z) * w = 0, and w is 0 there */
        scale[b] = s, zp[b] = z;
    }
}

/* R rows (r ..) x B batch items (b0 ..). */
/* sum_i W[row, i] over a row of in int8 weights (for the zero point). */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static int32_t row_sum(const int8_t *row, int in)
{
    __m512i s = _mm512_setzero_si512();
    const __m512i ones = _mm512_set1_epi8(1);
    for (int i = 0; i < in; i += 64) {
        const __mmask64 m = in - i >= 64 ? ~0ULL : (1ULL << (in - i)) - 1;
        s = _mm512_dpbusd_epi32(s, ones, _mm512_maskz_loadu_epi8(m, row + i));
    }
    return _mm512_reduce_add_epi32(s);
}

/* R rows (r ..) x B batch items (b0 ..). The loops over R and B are unrolled everywhere,
 * so that the accumulators live in registers only. */
#define DEFINE_VNNI_BLOCK(R, B)                                                                    \
    __attribute__((target("avx512f,avx512bw,avx512vnni"))) static void vblock_##R##x##B(          \
        const uint8_t *q, int ldq, const float *scale, const int32_t *zp, const ac_matrix *W,      \
        const float *bias, int relu, int r, int b0, float *y)                                      \
    {                                                                                              \
        const int in = W->cols;                                                                    \
        const int8_t *row[R];                                                                      \
        _Pragma("GCC unroll 4") for (int k = 0; k < R; k++) row[k] = (const int8_t *)W->data + (size_t)(r + k) * in; \
        const uint8_t *xq = q + (size_t)b0 * ldq;                                                  \
        __m512i acc[R][B];                                                                         \
        _Pragma("GCC unroll 4") for (int k = 0; k < R; k++)                                        \
            _Pragma("GCC unroll 5") for (int b = 0; b < B; b++) acc[k][b] = _mm512_setzero_si512(); \
        for (int i = 0; i < in; i += 64) {                                                         \
            const __mmask64 m = in - i >= 64 ? ~0ULL : (1ULL << (in - i)) - 1;                     \
            __m512i wv[R];                                                                         \
            _Pragma("GCC unroll 4") for (int k = 0; k < R; k++) wv[k] = _mm512_maskz_loadu_epi8(m, row[k] + i); \
            _Pragma("GCC unroll 5") for (int b = 0; b < B; b++) {                                  \
                const __m512i xv = _mm512_loadu_si512(xq + (size_t)b * ldq + i);                   \
                _Pragma("GCC unroll 4") for (int k = 0; k < R; k++)                                \
                    acc[k][b] = _mm512_dpbusd_epi32(acc[k][b], xv, wv[k]);                         \
            }                                                                                      \
        }                                                                                          \
        int32_t t[R][B];                                                                           \
        _Pragma("GCC unroll 4") for (int k = 0; k < R; k++)                                        \
            _Pragma("GCC unroll 5") for (int b = 0; b < B; b++) t[k][b] = _mm512_reduce_add_epi32(acc[k][b]); \
        int any_zp = 0;                                                                            \
        for (int b = 0; b < B; b++) any_zp |= zp[b0 + b];                                          \
        for (int k = 0; k < R; k++) {                                                              \
            const int o = r + k;                                                                   \
            const int32_t wsum = any_zp ? row_sum(row[k], in) : 0;                                 \
            for (int b = 0; b < B; b++) {                                                          \
                const int32_t d = t[k][b] - zp[b0 + b] * wsum;                                     \
                const float v = scale[b0 + b] * W->scale[o] * (float)d + (bias ? bias[o] : 0.f);   \
                y[(size_t)(b0 + b) * W->rows + o] = relu && v < 0.f ? 0.f : v;                     \
            }                                                                                      \
        }                                                                                          \
    }

#define DEFINE_VNNI_ROWS(R)                                                                        \
    DEFINE_VNNI_BLOCK(R, 1) DEFINE_VNNI_BLOCK(R, 2) DEFINE_VNNI_BLOCK(R, 3)                        \
    DEFINE_VNNI_BLOCK(R, 4) DEFINE_VNNI_BLOCK(R, 5)
DEFINE_VNNI_ROWS(4)
DEFINE_VNNI_ROWS(1)

typedef void vblock_fn(const uint8_t *, int, const float *, const int32_t *, const ac_matrix *,
                       const float *, int, int, int, float *);

void ac_linear_vnni_rows(const uint8_t *q, int ldq, const float *scale, const int32_t *zp, int n,
                         const ac_matrix *W, const float *bias, int relu, int r0, int r1, float *y)
{
    static vblock_fn *const by4[BB] = {vblock_4x1, vblock_4x2, vblock_4x3, vblock_4x4, vblock_4x5};
    static vblock_fn *const by1[BB] = {vblock_1x1, vblock_1x2, vblock_1x3, vblock_1x4, vblock_1x5};
    int r = r0;
    for (; r + RB <= r1; r += RB) /* batch loop inside: the block's rows stay in L1 */
        for (int b0 = 0; b0 < n; b0 += BB)
            by4[(n - b0 < BB ? n - b0 : BB) - 1](q, ldq, scale, zp, W, bias, relu, r, b0, y);
    for (; r < r1; r++)
        for (int b0 = 0; b0 < n; b0 += BB)
            by1[(n - b0 < BB ? n - b0 : BB) - 1](q, ldq, scale, zp, W, bias, relu, r, b0, y);
}
