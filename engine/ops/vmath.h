/* vmath.h - internal to engine/ops/: AVX-512 activations through glibc's vector maths
 * library (libmvec), loaded at run time.
 *
 * Why: tanh, sigmoid and GELU call a libm function per value, and GCC vectorises such calls
 * only under -ffast-math (which the engine does not use: it would change every kernel's
 * rounding). glibc ships vector versions of the same functions in libmvec (exp: 4 ulp; since
 * glibc 2.35 tanhf); calling them 8 or 16 values at a time is several times faster than the
 * scalar loop. Loaded with dlopen, like the BLAS, so the build needs no new library and a
 * system without it (or without AVX-512) keeps the scalar loops.
 * erf-GELU has a kernel of its own (vmath.c: an erfc of Numerical Recipes' form with the
 * exponent's -x^2 / 2 kept exact): 6e-7 relative at worst down the negative tail, where
 * libmvec's erfcf lost up to 4e-6 at x = -8, at 1.7-1.8x its rate. It needs AVX-512F only.
 *
 * Thread-safety: ac_vmath_span may be called from any number of threads at once.
 */
#ifndef AC_VMATH_H
#define AC_VMATH_H

#include <stddef.h>

#include "ops_graph.h"

/* y[i] = op(x[i]) with the vector functions, as ac_unary defines op, for the first values of
 * x, whole vectors of them; returns how many (the caller does the rest): 0 where they are
 * unavailable (no AVX-512F; no libmvec, except for erf-GELU; relu) or the direct kernels are switched off
 * (ac_ops_set_direct(0), AUDIOCLASS_KERNELS=blas). x == y is allowed. */
size_t ac_vmath_span(ac_unary_op op, const float *x, float *y, size_t count);

#endif
