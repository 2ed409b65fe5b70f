/* vmath.h - internal to engine/ops/: AVX-512 activations, 8 or 16 values at a time.
 *
 * Why: tanh, sigmoid and GELU call a libm function per value, and GCC vectorises such calls
 * only under -ffast-math (which the engine does not use: it would change every kernel's
 * rounding). Kernels of their own (vmath.c), each checked against the double formula:
 * - erf-GELU: an erfc of Numerical Recipes' form with the exponent's -x^2 / 2 kept exact,
 *   6e-7 relative at worst down the negative tail (libmvec's erfcf lost up to 4e-6 at
 *   x = -8), at 1.7-1.8x its rate;
 * - tanh: Eigen's 13/6 rational function, 2.8e-7; sigmoid: 1 / (1 + e^-x) with the same
 *   exp as GELU, 2.3e-7; 1.6-1.9x the rate of libmvec's tanhf and expf;
 * - tanh-GELU: libmvec's double exp (4 ulp), loaded with dlopen like the BLAS, so the build
 *   needs no new library; without it that one activation keeps the scalar loop.
 * The others need AVX-512F only.
 *
 * Thread-safety: ac_vmath_span may be called from any number of threads at once.
 */
#ifndef AC_VMATH_H
#define AC_VMATH_H

#include <stddef.h>

#include "ops_graph.h"

/* y[i] = op(x[i]) with the vector functions, as ac_unary defines op, for the first values of
 * x, whole vectors of them; returns how many (the caller does the rest): 0 where they are
 * unavailable (no AVX-512F; no libmvec for tanh-GELU; relu) or the direct kernels are switched off
 * (ac_ops_set_direct(0), AUDIOCLASS_KERNELS=blas). x == y is allowed. */
size_t ac_vmath_span(ac_unary_op op, const float *x, float *y, size_t count);

#endif
