/* conv_frames.c - a 1-D convolution over the few frames one stream piece brings (ops.h,
 * ac_conv1d_frames): the stream executor's convolutions compute 1 to ~50 output frames at a
 * time, where im2col + SGEMM and the OpenMP team of ac_conv2d cost more than the arithmetic
 * (a libgomp region costs 2-5 us even when it runs one thread). One thread, no OpenMP. */
#include "ops.h"

#include <string.h>

void ac_conv1d_frames_pack(const float *weight, int cout, int cin, int k, float *wt)
{
    for (int co = 0; co < cout; co++)
        for (int ci = 0; ci < cin; ci++)
            for (int j = 0; j < k; j++) wt[((size_t)ci * k + j) * cout + co] = weight[((size_t)co * cin + ci) * k + j];
}

/* acc[nb][cout] += wt[cin, k, cout] . x at nb output positions t0, t0 + s, ... (x[ci * w +
 * t + j * dil]). Register-blocked: 16 output channels x up to 8 positions of accumulators,
 * each weight vector loaded once per block, each input value broadcast once. */
#define BLOCK 8
typedef float v16 __attribute__((vector_size(64)));

/* an unaligned load (a macro: a function returning v16 would change the ABI per clone) */
#define LOAD16(p) ({ v16 v_; __builtin_memcpy(&v_, (p), sizeof v_); v_; })

__attribute__((target_clones("avx512f", "avx2", "default"))) static void block_dot(
    const float *restrict x, int w, int t0, int s, int nb, int dil, const float *restrict wt, int cin, int k,
    int cout, float (*restrict acc)[AC_FRAMES_MAX_COUT])
{
    int co0 = 0;
    for (; co0 + 16 <= cout; co0 += 16) {
        v16 a[BLOCK];
        for (int b = 0; b < BLOCK; b++) a[b] = b < nb ? LOAD16(acc[b] + co0) : (v16){0};
        for (int ci = 0; ci < cin; ci++)
            for (int j = 0; j < k; j++) {
                const v16 wv = LOAD16(wt + ((size_t)ci * k + j) * cout + co0);
                const float *xr = x + (size_t)ci * w + t0 + (size_t)j * dil;
                if (nb == BLOCK) {
#pragma GCC unroll 8
                    for (int b = 0; b < BLOCK; b++) a[b] += wv * xr[(size_t)b * s];
                } else {
                    for (int b = 0; b < nb; b++) a[b] += wv * xr[(size_t)b * s];
                }
            }
        for (int b = 0; b < nb; b++) __builtin_memcpy(acc[b] + co0, &a[b], sizeof a[b]);
    }
    for (int ci = 0; ci < cin && co0 < cout; ci++) /* the last cout % 16 channels */
        for (int j = 0; j < k; j++)
            for (int b = 0; b < nb; b++) {
                const float v = x[(size_t)ci * w + t0 + (size_t)j * dil + (size_t)b * s];
                for (int co = co0; co < cout; co++) acc[b][co] += wt[((size_t)ci * k + j) * cout + co] * v;
            }
}

void ac_conv1d_frames(const float *x, int w, const float *wt, const float *bias, const ac_conv_params *p,
                      int relu, float *y)
{
    const int cout = p->cout, cin = p->cin, k = p->kw, s = p->sw, d = p->dw, pool = p->pool_w > 0 ? p->pool_w : 1;
    const int wo = ac_out_size(w, k, s, d, 0, 0), yo = wo / pool, n = yo * pool; /* positions used */
    float acc[BLOCK][AC_FRAMES_MAX_COUT];
    for (int t0 = 0; t0 < n; t0 += BLOCK) {
        const int nb = n - t0 < BLOCK ? n - t0 : BLOCK;
        for (int b = 0; b < nb; b++)
            for (int co = 0; co < cout; co++) acc[b][co] = bias ? bias[co] : 0.f;
        block_dot(x, w, t0 * s, s, nb, d, wt, cin, k, cout, acc);
        for (int b = 0; b < nb; b++) {
            const int t = t0 + b; /* conv output position; pooled output t / pool */
            float *yr = y + t / pool;
            for (int co = 0; co < cout; co++) {
                float v = acc[b][co];
                if (relu && v < 0.f) v = 0.f;
                float *o = yr + (size_t)co * yo;
                *o = t % pool == 0 || v > *o ? v : *o; /* the max over the pool's window */
            }
        }
    }
}
