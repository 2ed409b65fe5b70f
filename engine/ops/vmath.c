/* vmath.c - erf-GELU, tanh and sigmoid with vector kernels of their own, tanh-GELU through
 * libmvec's double exp; 8 or 16 values at a time (vmath.h). */
#include "vmath.h"

#include "ops.h"

#include <dlfcn.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
/* libmvec's double exp (AVX-512 variant), as an untyped pointer: its vector type may only
 * cross calls made from AVX-512 code */
static void *g_exp8;

static void load(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return;
    void *h = dlopen("libmvec.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    g_exp8 = dlsym(h, "_ZGVeN8v_exp"); /* double exp, 8 lanes */
}

typedef __m512d (*vd8)(__m512d);

/* tanh-GELU as elementwise.c writes it, vectorised in double (see there why):
 * x / (1 + exp(-2 k (x + 0.044715 x^3))). Whole vectors only; the caller does the tail. */
__attribute__((target("avx512f"))) static size_t gelu_tanh_vec(const float *x, float *y, size_t count)
{
    const vd8 exp8 = (vd8)g_exp8;
    const __m512d one = _mm512_set1_pd(1.0), m2k = _mm512_set1_pd(-2.0 * 0.7978845608028654);
    const __m512d c = _mm512_set1_pd(0.044715);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
        const __m512d inner = _mm512_fmadd_pd(_mm512_mul_pd(c, v), _mm512_mul_pd(v, v), v);
        const __m512d r = _mm512_div_pd(v, _mm512_add_pd(one, exp8(_mm512_mul_pd(m2k, inner))));
        _mm256_storeu_ps(y + i, _mm512_cvtpd_ps(r));
    }
    return i;
}

/* e^(hi + lo), 16 lanes, for |lo| small against |hi|: hi - n ln2_hi is exact (n ln2_hi has 9
 * significant bits), so the low part is added after the reduction and keeps its precision
 * even where hi is large (hi = -z^2 = -64 has an ulp of 8e-6); degree-6 polynomial on
 * [-ln2 / 2, ln2 / 2] (2e-7 relative), then scalef by 2^n, which underflows gracefully. */
__attribute__((target("avx512f"))) static inline __m512 exp_split16(__m512 hi, __m512 lo)
{
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_add_ps(hi, lo), _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), hi);
    r = _mm512_add_ps(_mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r), lo);
    __m512 p = _mm512_set1_ps(1.3981999507e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
    return _mm512_scalef_ps(p, n);
}

/* erf-GELU in float, 16 lanes, without libmvec: 0.5 x erfc(u), u = -x / sqrt 2, with
 * erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z / 2), z = |u| (Numerical Recipes' erfcc:
 * 1.2e-7 relative for every z >= 0; erfc(u) = 2 - erfc(z) for u < 0). -z^2 = -x^2 / 2 is
 * formed from x exactly (x^2 and its FMA rounding error), not from the rounded u, so the
 * negative tail keeps its relative precision: 6e-7 at worst over [-14, 14] (checked against
 * double erfc on 4 M points), where libmvec's erfcf(u) lost 2 z^2 x 6e-8 (4e-6 at x = -8).
 * 1.7-1.8x the rate of the erfcf form, which ConvNeXt's GELU spent its time in. |x| is
 * clamped at 15 for the erfc part (erfc(10.6) underflows to 0; beyond, x^2 would overflow
 * the reduction); the product takes x itself, so +-inf and NaN give what PyTorch gives. */
__attribute__((target("avx512f"))) static size_t gelu_erf16(const float *x, float *y, size_t count)
{
    static const float P[10] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                                -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f};
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.f), two = _mm512_set1_ps(2.f);
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m512 xc = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-15.f)), _mm512_set1_ps(15.f));
        const __m512 z = _mm512_abs_ps(_mm512_mul_ps(xc, _mm512_set1_ps(0.70710678118654752f)));
        const __m512 d = _mm512_fmadd_ps(z, half, one);
        __m512 t = _mm512_rcp14_ps(d);
        t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, two)); /* one Newton step: 1 / d to 2e-8 */
        __m512 p = _mm512_set1_ps(P[0]);
        for (int k = 1; k < 10; k++) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(P[k]));
        const __m512 xx = _mm512_mul_ps(xc, xc), xx_err = _mm512_fmsub_ps(xc, xc, xx);
        const __m512 hi = _mm512_mul_ps(xx, _mm512_set1_ps(-0.5f)); /* -z^2 = hi + lo */
        const __m512 lo = _mm512_fnmadd_ps(xx_err, half, p);
        __m512 e = _mm512_mul_ps(t, exp_split16(hi, lo)); /* erfc(z) */
        const __mmask16 u_negative = _mm512_cmp_ps_mask(xc, _mm512_setzero_ps(), _CMP_GT_OQ);
        e = _mm512_mask_sub_ps(e, u_negative, two, e);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(half, v), e));
    }
    return i;
}

/* tanh, 16 lanes: the odd/even rational function of degree 13/6 in x that Eigen uses
 * (ptanh_float), x clamped at +-7.9053 where it reaches +-1; 2.8e-7 relative at worst over
 * [-12, 12] against double tanh (8 M points, 1e-30 .. 3e-4 among them). Clamped with the
 * constant first so that NaN passes through (maxps returns its second operand on NaN).
 * 1.8-1.9x the rate of libmvec's tanhf. */
__attribute__((target("avx512f"))) static inline __m512 tanh16(__m512 v)
{
    const __m512 lim = _mm512_set1_ps(7.90531110763549805f);
    const __m512 x = _mm512_min_ps(lim, _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), lim), v));
    const __m512 x2 = _mm512_mul_ps(x, x);
    static const float P[7] = {-2.76076847742355e-16f, 2.00018790482477e-13f, -8.60467152213735e-11f,
                               5.12229709037114e-08f, 1.48572235717979e-05f, 6.37261928875436e-04f,
                               4.89352455891786e-03f};
    static const float Q[4] = {1.19825839466702e-06f, 1.18534705686654e-04f, 2.26843463243900e-03f,
                               4.89352518554385e-03f};
    __m512 p = _mm512_set1_ps(P[0]), q = _mm512_set1_ps(Q[0]);
    for (int k = 1; k < 7; k++) p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(P[k]));
    for (int k = 1; k < 4; k++) q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(Q[k]));
    return _mm512_div_ps(_mm512_mul_ps(p, x), q);
}

/* 1 / (1 + e^-x), 16 lanes, with exp_split16: 2.3e-7 relative at worst; -x is clamped to
 * [-104, 89] (e^89 is inf in float: the result 0, as libm's float gives it; e^-104 is 0:
 * the result 1), which also keeps the reduction exact; NaN passes through.
 * 1.6x the rate of libmvec's expf in the same formula. */
__attribute__((target("avx512f"))) static inline __m512 sigmoid16(__m512 v)
{
    const __m512 a = _mm512_max_ps(_mm512_set1_ps(-104.f), /* e^-104 is 0 in float */
                                   _mm512_min_ps(_mm512_set1_ps(89.f), _mm512_sub_ps(_mm512_setzero_ps(), v)));
    const __m512 one = _mm512_set1_ps(1.f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp_split16(a, _mm512_setzero_ps())));
}

__attribute__((target("avx512f"))) static size_t float_vec(ac_unary_op op, const float *x, float *y,
                                                           size_t count)
{
    size_t i = 0;
    if (op == AC_UNARY_TANH)
        for (; i + 16 <= count; i += 16) _mm512_storeu_ps(y + i, tanh16(_mm512_loadu_ps(x + i)));
    else
        for (; i + 16 <= count; i += 16) _mm512_storeu_ps(y + i, sigmoid16(_mm512_loadu_ps(x + i)));
    return i;
}

size_t ac_vmath_span(ac_unary_op op, const float *x, float *y, size_t count)
{
    pthread_once(&g_once, load);
    if (!ac_ops_direct()) return 0;
    switch (op) {
    case AC_UNARY_GELU_ERF:
        return gelu_erf16(x, y, count);
    case AC_UNARY_GELU_TANH: return g_exp8 ? gelu_tanh_vec(x, y, count) : 0;
    case AC_UNARY_TANH: case AC_UNARY_SIGMOID: return float_vec(op, x, y, count);
    default: return 0;
    }
}
