/* gemm_bf16.c - C = A . B in bfloat16 with FP32 sums (gemm_bf16.h).
 *
 * Micro-kernel: MR rows x 32 columns of C in 2*MR registers. Per pair of k, two loads of B
 * (32 columns x 2 k, bfloat16) and MR broadcasts of A's pair (k, k+1) of each row feed 2*MR
 * vdpbf16ps. 32 columns of B are packed at a time ([K/2][32][2], at most K*64 bytes, in L1)
 * and every panel of A runs over them before the next 32.
 */
#include "gemm_bf16.h"

#include <immintrin.h>
#include <string.h>

#include "ops.h"

#define NR 32

int ac_bf16_supported(void)
{
    static int cpu = -1;
    if (cpu < 0) {
        __builtin_cpu_init();
        cpu = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
    }
    return cpu && ac_ops_direct();
}

int ac_bf16_panel_rows(int M)
{
    int best = 12, waste = 1 << 30;
    for (int mr = 12; mr >= 8; mr -= 2) {
        int w = (M + mr - 1) / mr * mr - M;
        if (w < waste) best = mr, waste = w;
    }
    return best;
}

static int even(int K) { return (K + 1) & ~1; }

size_t ac_bf16_packed_size(int M, int K)
{
    int mr = ac_bf16_panel_rows(M);
    return (size_t)((M + mr - 1) / mr) * mr * even(K);
}

size_t ac_bf16_scratch(int K) { return (size_t)even(K) * NR; }

static uint16_t to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even, as vcvtne2ps2bf16 does */
    return (uint16_t)(u >> 16);
}

float ac_bf16_round(float x)
{
    uint32_t u = (uint32_t)to_bf16(x) << 16;
    float y;
    memcpy(&y, &u, 4);
    return y;
}

void ac_bf16_pack_a(const float *A, int M, int K, int lda, uint16_t *out)
{
    const int mr = ac_bf16_panel_rows(M), K2 = even(K);
    for (int p0 = 0; p0 < M; p0 += mr)
        for (int k = 0; k < K2; k += 2)
            for (int r = 0; r < mr; r++)
                for (int e = 0; e < 2; e++) {
                    int row = p0 + r, col = k + e;
                    *out++ = row < M && col < K ? to_bf16(A[(size_t)row * lda + col]) : 0;
                }
}

/* Lanes of columns 0..15 and 16..31 that a block of n columns has. */
static inline __mmask16 mask_lo(int n) { return n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1); }
static inline __mmask16 mask_hi(int n) { return n >= 32 ? 0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0; }

/* acc[r][0..1] += (A's pair of row r: two bfloat16 at a + 2r) . (b0, b1), for r < MR. */
#define DOT_ROWS(MR, acc, a, b0, b1)                                                               \
    _Pragma("GCC unroll 12") for (int r = 0; r < MR; r++)                                          \
    {                                                                                              \
        int32_t pair;                                                                              \
        memcpy(&pair, a + 2 * r, 4);                                                               \
        __m512bh av = (__m512bh)_mm512_set1_epi32(pair);                                           \
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);                                           \
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);                                           \
    }

/* c[0..n) = relu?(v0 | v1 + *bias): one row of a 32-column block. */
__attribute__((target("avx512f"))) static inline void store_row(float *c, int n, __m512 v0, __m512 v1,
                                                                const float *bias, int relu)
{
    if (bias) {
        __m512 bv = _mm512_set1_ps(*bias);
        v0 = _mm512_add_ps(v0, bv), v1 = _mm512_add_ps(v1, bv);
    }
    if (relu) v0 = _mm512_max_ps(v0, _mm512_setzero_ps()), v1 = _mm512_max_ps(v1, _mm512_setzero_ps());
    _mm512_mask_storeu_ps(c, mask_lo(n), v0);
    _mm512_mask_storeu_ps(c + 16, mask_hi(n), v1);
}

/* dst[K/2][32][2] = B[0..K, j0..j0+n] as bfloat16 pairs along k; zero past n and K. */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void pack_b(const float *const *brow, int j0,
                                                                          int K, int n, uint16_t *dst)
{
    const __mmask16 m0 = mask_lo(n), m1 = mask_hi(n);
    /* cvtne2ps gives [16 of k (lo), 16 of k+1 (hi)]; this interleaves them into pairs */
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                           23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int k = 0; k < K; k += 2) {
        const int has1 = k + 1 < K;
        const float *r0 = brow[k] + j0, *r1 = has1 ? brow[k + 1] + j0 : r0;
        for (int h = 0; h < 2; h++) {
            __mmask16 m = h ? m1 : m0;
            __m512 lo = _mm512_maskz_loadu_ps(m, r0 + 16 * h);
            __m512 hi = has1 ? _mm512_maskz_loadu_ps(m, r1 + 16 * h) : _mm512_setzero_ps();
            __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            _mm512_storeu_si512(dst + (size_t)k * NR + 32 * h, _mm512_permutexvar_epi16(inter, both));
        }
    }
}

/* C[mr rows, n <= 32 columns] = panel . Bp, for a compile-time MR. */
#define KERNEL(MR)                                                                                 \
    __attribute__((target("avx512f,avx512bw,avx512bf16"))) static void kernel_##MR(               \
        const uint16_t *a, const uint16_t *b, int K2, int rows, int n, float *C, int ldc,        \
        const float *bias, int relu)                                                               \
    {                                                                                              \
        __m512 acc[MR][2];                                                                         \
        for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();                  \
        for (int k = 0; k < K2; k += 2, a += 2 * MR, b += 2 * NR) {                                \
            __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 32); \
            DOT_ROWS(MR, acc, a, b0, b1);                                                          \
        }                                                                                          \
        for (int r = 0; r < rows; r++)                                                             \
            store_row(C + (size_t)r * ldc, n, acc[r][0], acc[r][1], bias ? bias + r : NULL, relu);  \
    }
KERNEL(8)
KERNEL(10)
KERNEL(12)

void ac_gemm_bf16(int M, int N, int K, const uint16_t *Ap, const float *const *brow, float *C,
                  int ldc, const float *bias, int relu, uint16_t *scratch)
{
    const int mr = ac_bf16_panel_rows(M), K2 = even(K);
    const size_t panel = (size_t)mr * K2;
    for (int j0 = 0; j0 < N; j0 += NR) {
        const int n = N - j0 < NR ? N - j0 : NR;
        pack_b(brow, j0, K, n, scratch);
        for (int p0 = 0; p0 < M; p0 += mr) {
            const uint16_t *a = Ap + (size_t)(p0 / mr) * panel;
            const int rows = M - p0 < mr ? M - p0 : mr;
            float *c = C + (size_t)p0 * ldc + j0;
            const float *b = bias ? bias + p0 : NULL;
            if (mr == 8) kernel_8(a, scratch, K2, rows, n, c, ldc, b, relu);
            else if (mr == 10) kernel_10(a, scratch, K2, rows, n, c, ldc, b, relu);
            else kernel_12(a, scratch, K2, rows, n, c, ldc, b, relu);
        }
    }
}

/* ---- one-row convolutions straight from a bfloat16 copy of the input ----
 * With stride 1, dilation 1 and an even kernel width, the pair (kx, kx + 1) of input row ci
 * for output column j is the two bfloat16 values at xb[ci][j + kx]: a 32-bit word. 16 words
 * from xb + kx are the pairs of the even columns, 16 from xb + kx + 1 those of the odd
 * ones, so B needs no packing at all; the sums come out as [even | odd] columns and are
 * interleaved once, when stored. */

__attribute__((target("avx512f,avx512bw,avx512bf16"))) void ac_bf16_convert(const float *x, int n, uint16_t *out)
{
    int i = 0;
    for (; i + 32 <= n; i += 32)
        _mm512_storeu_si512(out + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i)));
    for (; i < n; i++) out[i] = to_bf16(x[i]);
}

#define SHIFT_KERNEL(MR)                                                                           \
    __attribute__((target("avx512f,avx512bw,avx512bf16"))) static void shift_##MR(                \
        const uint16_t *a, const uint16_t *xb, int ldx, int cin, int kw, int rows, int n,          \
        float *C, int ldc, const float *bias, int relu)                                            \
    {                                                                                              \
        __m512 acc[MR][2];                                                                         \
        for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();                  \
        for (int ci = 0; ci < cin; ci++)                                                           \
            for (int kx = 0; kx < kw; kx += 2, a += 2 * MR) {                                      \
                const uint16_t *row = xb + (size_t)ci * ldx + kx;                                  \
                __m512bh b0 = (__m512bh)_mm512_loadu_si512(row);                                   \
                __m512bh b1 = (__m512bh)_mm512_loadu_si512(row + 1);                               \
                DOT_ROWS(MR, acc, a, b0, b1);                                                      \
            }                                                                                      \
        const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0); \
        const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8); \
        for (int r = 0; r < rows; r++)                                                             \
            store_row(C + (size_t)r * ldc, n, _mm512_permutex2var_ps(acc[r][0], lo, acc[r][1]),    \
                      _mm512_permutex2var_ps(acc[r][0], hi, acc[r][1]), bias ? bias + r : NULL, relu); \
    }
SHIFT_KERNEL(8)
SHIFT_KERNEL(10)
SHIFT_KERNEL(12)

void ac_conv1d_bf16(int M, int N, int cin, int kw, const uint16_t *Ap, const uint16_t *xb, int ldx,
                    float *C, int ldc, const float *bias, int relu)
{
    const int mr = ac_bf16_panel_rows(M);
    const size_t panel = (size_t)mr * cin * kw;
    for (int j0 = 0; j0 < N; j0 += NR) {
        const int n = N - j0 < NR ? N - j0 : NR;
        for (int p0 = 0; p0 < M; p0 += mr) {
            const uint16_t *a = Ap + (size_t)(p0 / mr) * panel;
            const int rows = M - p0 < mr ? M - p0 : mr;
            float *c = C + (size_t)p0 * ldc + j0;
            const float *b = bias ? bias + p0 : NULL;
            if (mr == 8) shift_8(a, xb + j0, ldx, cin, kw, rows, n, c, ldc, b, relu);
            else if (mr == 10) shift_10(a, xb + j0, ldx, cin, kw, rows, n, c, ldc, b, relu);
            else shift_12(a, xb + j0, ldx, cin, kw, rows, n, c, ldc, b, relu);
        }
    }
}
