/* transpose.c - 2-D float transposes in 16 x 16 AVX-512 register tiles (transpose.h). */
#include "transpose.h"

#include <immintrin.h>

/* r[i] (row i of a 16 x 16 tile) becomes column i. After the first stage t[2p], t[2p+1] hold
 * rows 2p and 2p+1 interleaved; after the second, u[4g + j] lane k is column 4k + j of rows
 * 4g..4g+3; the two lane shuffles then gather the four 4-row pieces of each column. */
__attribute__((target("avx512f"), always_inline)) static inline void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int p = 0; p < 8; p++) {
        t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    for (int g = 0; g < 4; g++) {
        const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 2]);
        const __m512d c = _mm512_castps_pd(t[4 * g + 1]), d = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int j = 0; j < 4; j++) { /* lanes 0, 2 (0x88) and 1, 3 (0xdd) of two registers */
        t[j] = _mm512_shuffle_f32x4(u[j], u[j + 4], 0x88);
        t[j + 4] = _mm512_shuffle_f32x4(u[j], u[j + 4], 0xdd);
        t[j + 8] = _mm512_shuffle_f32x4(u[j + 8], u[j + 12], 0x88);
        t[j + 12] = _mm512_shuffle_f32x4(u[j + 8], u[j + 12], 0xdd);
    }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
}

/* One tile: x [rows, cols] -> y [cols, rows], rows and cols at most 16. */
__attribute__((target("avx512f"), always_inline)) static inline void tile(const float *x, size_t ldx,
                                                                          float *y, size_t ldy,
                                                                          int rows, int cols)
{
    __m512 r[16];
    if (rows == 16 && cols == 16) {
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(x + i * ldx);
        transpose16(r);
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++) _mm512_storeu_ps(y + j * ldy, r[j]);
        return;
    }
    const __mmask16 mc = (__mmask16)((1u << cols) - 1), mr = (__mmask16)((1u << rows) - 1);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) /* rows past the block: zeros, whose columns are not stored */
        r[i] = i < rows ? _mm512_maskz_loadu_ps(mc, x + i * ldx) : _mm512_setzero_ps();
    transpose16(r);
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++)
        if (j < cols) _mm512_mask_storeu_ps(y + j * ldy, mr, r[j]);
}

__attribute__((target("avx512f"))) void ac_transpose_block(const float *x, size_t ldx, float *y,
                                                           size_t ldy, int rows, int cols)
{
    for (int i = 0; i < rows; i += 16)
        for (int j = 0; j < cols; j += 16)
            tile(x + (size_t)i * ldx + j, ldx, y + (size_t)j * ldy + i, ldy, rows - i < 16 ? rows - i : 16,
                 cols - j < 16 ? cols - j : 16);
}

/* (prfchw: PREFETCHW, which CPUs without it run as a no-op) */
__attribute__((target("avx512f,prfchw"))) void ac_transpose_prefetch(const float *x, size_t ld, int rows,
                                                                     int cols, int write)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j += 16) {
            if (write)
                __builtin_prefetch(x + i * ld + j, 1, 3);
            else
                __builtin_prefetch(x + i * ld + j, 0, 3);
        }
}
