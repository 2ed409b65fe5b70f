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

#include "roofline.h"

#define CHAINS 12 /* > latency (4) x ports (2) */
#define INNER 1000

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

int main(int argc, char **argv)
{
    double seconds = 1.0;
    if (argc == 3 && !strcmp(argv[1], "--seconds")) seconds = atof(argv[2]);
    int maxt = omp_get_max_threads();
    double best = 0;
    const char *best_isa = "none";
    /* the FP32 kernels are the engine's own (roofline.h: `audioclass bench --profile`) */
    struct { const char *isa; ac_rate_kernel fn; int ok; } isas[] = {
        {"avx2", ac_roofline_fma(0), ac_roofline_fma(0) != NULL},
        {"avx512", ac_roofline_fma(1), ac_roofline_fma(1) != NULL},
        {"bf16", run_bf16, __builtin_cpu_supports("avx512bf16")},
        {"int8", run_int8, __builtin_cpu_supports("avx512vnni")}};
    double best_bf16 = 0, best_int8 = 0;
    for (int i = 0; i < 4; i++) {
        if (!isas[i].ok) continue;
        for (int t = 1; t <= maxt; t *= 2) {
            double g = ac_roofline_rate(isas[i].fn, t, seconds);
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
