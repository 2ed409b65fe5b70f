/* linear_direct.c - the AVX-512 I8/F16/F32 linear kernel (see linear_direct.h). */
#include "linear_direct.h"

#include <immintrin.h>

/* Register block: RB weight rows x BB batch items = 24 accumulators of 16 partial sums. Per
 * 16 inputs: RB widened weight vectors, BB input loads, RB * BB FMAs. */
#define RB 4
#define BB 6

__attribute__((target("avx512f"))) static inline __m512 load_w(ac_dtype dt, const void *row, int i)
{
    if (dt == AC_I8) /* 16 int8 -> 16 int32 -> 16 float */
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)((const int8_t *)row + i))));
    if (dt == AC_F32) return _mm512_loadu_ps((const float *)row + i);
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i)));
}

static inline float w_at(ac_dtype dt, const void *row, int i)
{
    return dt == AC_I8    ? (float)((const int8_t *)row)[i]
           : dt == AC_F32 ? ((const float *)row)[i]
                          : ac_f16_to_f32(((const uint16_t *)row)[i]);
}

/* R rows (r .. r + R - 1) x B batch items (b0 .. b0 + B - 1). */
#define DEFINE_LINEAR_BLOCK(R, B)                                                                  \
    __attribute__((target("avx512f"))) static void block_##R##x##B(                                \
        const float *x, const ac_matrix *W, const float *bias, int relu, int r, int b0, float *y)  \
    {                                                                                              \
        const int in = W->cols, vec_end = in / 16 * 16;                                            \
        const size_t esize = W->dtype == AC_I8 ? 1 : W->dtype == AC_F32 ? 4 : 2;                  \
        const void *row[R];                                                                        \
        _Pragma("GCC unroll 4") for (int q = 0; q < R; q++)                                        \
            row[q] = (const char *)W->data + (size_t)(r + q) * in * esize;                         \
        const float *xb = x + (size_t)b0 * in;                                                     \
        __m512 acc[R][B];                                                                          \
        _Pragma("GCC unroll 4") for (int q = 0; q < R; q++)                                        \
            _Pragma("GCC unroll 6") for (int b = 0; b < B; b++) acc[q][b] = _mm512_setzero_ps();   \
        for (int i = 0; i < vec_end; i += 16) {                                                    \
            __m512 wv[R];                                                                          \
            _Pragma("GCC unroll 4") for (int q = 0; q < R; q++) wv[q] = load_w(W->dtype, row[q], i); \
            _Pragma("GCC unroll 6") for (int b = 0; b < B; b++) {                                  \
                const __m512 xv = _mm512_loadu_ps(xb + (size_t)b * in + i);                        \
                _Pragma("GCC unroll 4") for (int q = 0; q < R; q++)                                \
                    acc[q][b] = _mm512_fmadd_ps(wv[q], xv, acc[q][b]);                             \
            }                                                                                      \
        }                                                                                          \
        for (int q = 0; q < R; q++) {                                                              \
            const int o = r + q;                                                                   \
            const float s = W->dtype == AC_I8 ? W->scale[o] : 1.f, bv = bias ? bias[o] : 0.f;     \
            for (int b = 0; b < B; b++) {                                                          \
                float t = _mm512_reduce_add_ps(acc[q][b]);                                         \
                for (int i = vec_end; i < in; i++) /* the last in % 16 inputs */                  \
                    t += w_at(W->dtype, row[q], i) * xb[(size_t)b * in + i];                      \
                const float v = s * t + bv;                                                        \
                y[(size_t)(b0 + b) * W->rows + o] = relu && v < 0.f ? 0.f : v;                     \
            }                                                                                      \
        }                                                                                          \
    }

#define DEFINE_FOR_ROWS(R)                                                                         \
    DEFINE_LINEAR_BLOCK(R, 1) DEFINE_LINEAR_BLOCK(R, 2) DEFINE_LINEAR_BLOCK(R, 3)                  \
    DEFINE_LINEAR_BLOCK(R, 4) DEFINE_LINEAR_BLOCK(R, 5) DEFINE_LINEAR_BLOCK(R, 6)
DEFINE_FOR_ROWS(4)
DEFINE_FOR_ROWS(1)

typedef void block_fn(const float *, const ac_matrix *, const float *, int, int, int, float *);

void ac_linear_direct_rows(const float *x, int n, const ac_matrix *W, const float *bias, int relu,
                           int r0, int r1, float *y)
{
    static block_fn *const by_rows4[BB] = {block_4x1, block_4x2, block_4x3, block_4x4, block_4x5, block_4x6};
    static block_fn *const by_rows1[BB] = {block_1x1, block_1x2, block_1x3, block_1x4, block_1x5, block_1x6};
    int r = r0;
    for (; r + RB <= r1; r += RB) /* batch loop inside: the block's rows stay in L1 */
        for (int b0 = 0; b0 < n; b0 += BB)
            by_rows4[(n - b0 < BB ? n - b0 : BB) - 1](x, W, bias, relu, r, b0, y);
    for (; r < r1; r++)
        for (int b0 = 0; b0 < n; b0 += BB)
            by_rows1[(n - b0 < BB ? n - b0 : BB) - 1](x, W, bias, relu, r, b0, y);
}
