/* roofline.h - this machine's limits, measured, for reading per-layer times against them
 * (`audioclass bench --profile`): the FP32 FMA peak and the rate at which memory streams.
 *
 * A layer cannot run faster than max(FLOPs / peak, bytes / bandwidth): its roofline bound.
 * Bandwidth is measured on a 16 MiB copy (read + write), which lands in this machine's L3
 * or DRAM like the activations of a batch; data that stays in L1/L2 can beat it, so a
 * layer under its bound is possible for small tensors.
 *
 * Thread-safety: runs OpenMP teams of `threads`; call from one thread, not inside a forward.
 */
#ifndef AC_ROOFLINE_H
#define AC_ROOFLINE_H

typedef struct ac_roofline {
    double gflops;   /* FP32 FMA peak of `threads` threads (AVX-512 or AVX2, whichever the CPU has) */
    double gbs;      /* GB/s of a streaming copy (bytes read + written) by `threads` threads */
} ac_roofline;

/* A throughput kernel: `iters` x 1000 rounds of work on registers; returns the operations
 * done; *sink keeps the result alive. */
typedef double (*ac_rate_kernel)(long iters, float *sink);

/* G operations per second of `threads` threads, each running k for about `seconds`. */
double ac_roofline_rate(ac_rate_kernel k, int threads, double seconds);

/* The FP32 FMA kernel on AVX-512 (avx512 = 1) or AVX2 + FMA (0); NULL where the CPU lacks it. */
ac_rate_kernel ac_roofline_fma(int avx512);

/* About `seconds` in all. */
ac_roofline ac_roofline_measure(int threads, double seconds);

/* Seconds the bound allows for flops and bytes. */
double ac_roofline_bound_s(const ac_roofline *r, double flops, double bytes);

#endif
