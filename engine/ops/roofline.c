/* roofline.c - the FP32 FMA peak and the streaming bandwidth (roofline.h). */
#include "roofline.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 12 /* independent FMA chains: more than latency (4) x ports (2) */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* FLOPs of `iters` x 1000 rounds of CHAINS FMAs on the widest vectors the CPU has. */
__attribute__((target("avx512f"))) static double fma512(long iters, float *sink)
{
    __m512 acc[CHAINS], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters * 1000; it++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    *sink = _mm512_reduce_add_ps(s);
    return 2.0 * 16 * CHAINS * 1000 * (double)iters;
}

__attribute__((target("avx2,fma"))) static double fma256(long iters, float *sink)
{
    __m256 acc[CHAINS], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters * 1000; it++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    __m256 s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    *sink = out[0];
    return 2.0 * 8 * CHAINS * 1000 * (double)iters;
}

ac_rate_kernel ac_roofline_fma(int avx512)
{
    __builtin_cpu_init();
    if (avx512) return __builtin_cpu_supports("avx512f") ? fma512 : NULL;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? fma256 : NULL;
}

double ac_roofline_rate(ac_rate_kernel k, int threads, double seconds)
{
    float sink;
    long iters = 1;
    double t0 = now();
    while (now() - t0 < 0.02) k(iters, &sink), iters *= 2; /* calibrate: about 0.01 s per call */
    iters = (long)(iters * seconds / 0.02) + 1;
    double ops = 0, start = now();
#pragma omp parallel num_threads(threads) reduction(+ : ops)
    {
        float s;
        ops += k(iters, &s);
        if (s == 12345.f) ops += 1; /* keep the result alive */
    }
    return ops / (now() - start) / 1e9;
}

static double peak(int threads, double seconds)
{
    ac_rate_kernel k = ac_roofline_fma(1) ? ac_roofline_fma(1) : ac_roofline_fma(0);
    return k ? ac_roofline_rate(k, threads, seconds) : 0;
}

static double bandwidth(int threads, double seconds)
{
    const size_t n = (size_t)8 << 20 >> 2; /* 8 MiB per buffer, 16 MiB moved per copy */
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!a || !b) {
        free(a), free(b);
        return 0;
    }
    memset(a, 0, n * sizeof *a);
    memset(b, 1, n * sizeof *b);
    double bytes = 0, start = now();
    while (now() - start < seconds) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] * 1.0001f;
        bytes += 2.0 * n * sizeof *a;
    }
    double gbs = bytes / (now() - start) / 1e9;
    free(a), free(b);
    return gbs;
}

ac_roofline ac_roofline_measure(int threads, double seconds)
{
    return (ac_roofline){.gflops = peak(threads, seconds / 2), .gbs = bandwidth(threads, seconds / 2)};
}

double ac_roofline_bound_s(const ac_roofline *r, double flops, double bytes)
{
    double c = r->gflops > 0 ? flops / (r->gflops * 1e9) : 0, m = r->gbs > 0 ? bytes / (r->gbs * 1e9) : 0;
    return c > m ? c : m;
}
