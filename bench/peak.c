/* peak.c - the machine's peak FP32 FMA throughput, so engine GFLOP/s can be read as a
 * fraction of the physical limit. Runs independent FMA chains (enough accumulators to hide
 * the FMA latency) in registers on every thread, for AVX2 and, where present, AVX-512, and
 * prints one JSON line per (ISA, threads) plus the best. Also the reduced-precision dot
 * products the quantized paths use: vdpbf16ps (BF16 pairs) and vpdpbusd (INT8 quads).
 *
 *   build/bench/peak [--seconds S]
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 12 /* > latency (4) x ports (2) */
#define INNER 1000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((target("avx2,fma"))) static double run_avx2(long iters, float *sink)
{
    __m256 acc[CHAINS], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int k = 0; k < INNER; k++)
#pragma GCC unroll 16
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    float out[8];
    __m256 s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(out, s);
    *sink = out[0];
    return 2.0 * 8 * CHAINS * INNER * (double)iters;
}

__attribute__((target("avx512f"))) static double run_avx512(long iters, float *sink)
{
    __m512 acc[CHAINS], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int k = 0; k < INNER; k++)
#pragma GCC unroll 16
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    *sink = _mm512_reduce_add_ps(s);
    return 2.0 * 16 * CHAINS * INNER * (double)iters;
}

/* BF16 pairs (vdpbf16ps): 16 lanes x 2 products x 2 ops per instruction, FP32 sums. */
__attribute__((target("avx512f,avx512bf16"))) static double run_bf16(long iters, float *sink)
{
    __m512 acc[CHAINS];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int k = 0; k < INNER; k++)
#pragma GCC unroll 16
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    *sink = _mm512_reduce_add_ps(s);
    return 2.0 * 32 * CHAINS * INNER * (double)iters;
}

/* INT8 quads (vpdpbusd, u8 x s8): 16 lanes x 4 products x 2 ops per instruction, s32 sums. */
__attribute__((target("avx512f,avx512vnni"))) static double run_int8(long iters, float *sink)
{
    __m512i acc[CHAINS], a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_epi32(i);
    for (long it = 0; it < iters; it++)
        for (int k = 0; k < INNER; k++)
#pragma GCC unroll 16
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    __m512i s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm512_add_epi32(s, acc[i]);
    *sink = (float)_mm512_reduce_add_epi32(s);
    return 2.0 * 64 * CHAINS * INNER * (double)iters;
}

/* GFLOP/s of `threads` threads each running kernel for about `seconds`. */
static double measure(double (*kernel)(long, float *), int threads, double seconds)
{
    long iters = 1;
    float sink;
    double t0 = now();
    while (now() - t0 < 0.05) kernel(iters, &sink), iters *= 2; /* calibrate */
    iters = (long)(iters * seconds / 0.1) + 1;
    double flops = 0, start = now();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    {
        float s;
        flops += kernel(iters, &s);
        if (s == 12345.f) printf(" "); /* keep the result alive */
    }
    return flops / (now() - start) / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    if (argc == 3 && !strcmp(argv[1], "--seconds")) seconds = atof(argv[2]);
    int maxt = omp_get_max_threads();
    double best = 0;
    const char *best_isa = "none";
    struct { const char *isa; double (*fn)(long, float *); int ok; } isas[] = {
        {"avx2", run_avx2, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
        {"avx512", run_avx512, __builtin_cpu_supports("avx512f")},
        {"bf16", run_bf16, __builtin_cpu_supports("avx512bf16")},
        {"int8", run_int8, __builtin_cpu_supports("avx512vnni")}};
    double best_bf16 = 0, best_int8 = 0;
    for (int i = 0; i < 4; i++) {
        if (!isas[i].ok) continue;
        for (int t = 1; t <= maxt; t *= 2) {
            double g = measure(isas[i].fn, t, seconds);
            printf("{\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n", isas[i].isa, t, g);
            if (t == maxt && i == 2) best_bf16 = g;
            else if (t == maxt && i == 3) best_int8 = g;
            else if (t == maxt && g > best) best = g, best_isa = isas[i].isa;
            if (t * 2 > maxt && t != maxt) t = maxt / 2;
        }
    }
    printf("{\"peak_fp32_gflops\":%.1f,\"isa\":\"%s\",\"threads\":%d,\"peak_bf16_gflops\":%.1f,"
           "\"peak_int8_gops\":%.1f}\n", best, best_isa, maxt, best_bf16, best_int8);
    return 0;
}
