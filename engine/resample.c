/* resample.c - the output buffer and the libsoxr stream both decoders share (resample.h). */
#include "resample.h"

#include <stdlib.h>
#include <string.h>

ac_status ac_soxr_new(int in_rate, int out_rate, soxr_t *out, char *err)
{
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1); /* threads are the engine's business */
    soxr_error_t e = NULL;
    *out = soxr_create(in_rate, out_rate, 1, &e, &io, &q, &rt);
    if (*out && !e) return AC_OK;
    /* With valid rates, soxr_create fails only when it cannot allocate. */
    soxr_delete(*out);
    *out = NULL;
    return ac_fail(err, AC_ERR_NOMEM, "resampling %d -> %d Hz: %s", in_rate, out_rate, e ? e : "out of memory");
}

ac_status ac_out_room(ac_out_buf *b, size_t more, size_t hint, char *err)
{
    if (more <= b->cap - b->n) return AC_OK;
    size_t need = b->n + more, ncap;
    if (hint >= need) {
        ncap = b->cap ? b->cap * 2 : 16384; /* up to the expected length, never past it */
        if (ncap > hint) ncap = hint;
    } else if (hint) {
        ncap = hint + hint / 8 + 4096;      /* a resampler tail or a header that lied a bit */
    } else {
        ncap = b->cap ? b->cap * 2 : 16384; /* no length known: double */
    }
    if (ncap < need) ncap = need > b->cap * 2 ? need : b->cap * 2;
    if (b->o && b->o->reserve) {
        ac_status st = b->o->reserve(b->o->user, (ncap + AC_OUT_SLACK) * sizeof(float), err);
        if (st != AC_OK) return st;
    }
    float *p = realloc(b->x, (ncap + AC_OUT_SLACK) * sizeof *p);
    if (!p) return ac_fail(err, AC_ERR_NOMEM, "out of memory for %zu decoded samples", ncap);
    b->x = p, b->cap = ncap;
    return AC_OK;
}

ac_status ac_resample_block(soxr_t sx, const float *in, size_t n, ac_out_buf *b, size_t hint,
                            char *err)
{
    ac_status st;
    if (!sx) {
        if (!in || !n) return AC_OK;
        if ((st = ac_out_room(b, n, hint, err))) return st;
        memcpy(b->x + b->n, in, n * sizeof *in);
        b->n += n;
        return AC_OK;
    }
    size_t used = 0;
    for (;;) {
        if ((st = ac_out_room(b, 1, hint, err))) return st;
        size_t space = b->cap - b->n, idone = 0, odone = 0;
        soxr_error_t e = soxr_process(sx, in ? in + used : NULL, in ? n - used : 0, &idone,
                                      b->x + b->n, space, &odone);
        if (e) return ac_fail(err, AC_ERR_NOMEM, "resampling failed: %s", e);
        used += idone;
        b->n += odone;
        if (in ? used >= n && odone < space : odone == 0) return AC_OK;
    }
}

