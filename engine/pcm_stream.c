/* pcm_stream.c - live PCM to model-rate floats (pcm_stream.h). */
#include "pcm_stream.h"

#include "resample.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ac_pcm_stream {
    ac_pcm_encoding enc;
    int in_rate, out_rate;
    soxr_t sx;                 /* NULL when the rates are equal */
    unsigned char carry[4];    /* bytes of a sample split across feeds */
    size_t n_carry;
    float *in;                 /* converted input samples */
    size_t in_cap;
    ac_out_buf out;            /* resampled samples handed back (refilled by each feed) */
    uint64_t samples_in;
};

ac_status ac_pcm_stream_create(ac_pcm_encoding enc, int in_rate, int out_rate, ac_pcm_stream **out,
                               char *err)
{
    *out = NULL;
    if (in_rate < AC_AUDIO_MIN_RATE || in_rate > AC_AUDIO_MAX_RATE || out_rate < 1)
        return ac_fail(err, AC_ERR_INVALID_ARG, "rate %d Hz outside %d..%d", in_rate, AC_AUDIO_MIN_RATE,
                       AC_AUDIO_MAX_RATE);
    ac_pcm_stream *p = calloc(1, sizeof *p);
    if (!p) return ac_fail(err, AC_ERR_NOMEM, "out of memory for a PCM stream");
    p->enc = enc, p->in_rate = in_rate, p->out_rate = out_rate;
    ac_status st = in_rate != out_rate ? ac_soxr_new(in_rate, out_rate, &p->sx, err) : AC_OK;
    if (st) {
        ac_pcm_stream_free(p);
        return st;
    }
    *out = p;
    return AC_OK;
}

void ac_pcm_stream_free(ac_pcm_stream *p)
{
    if (!p) return;
    if (p->sx) soxr_delete(p->sx);
    free(p->in);
    free(p->out.x);
    free(p);
}

static int reserve(float **buf, size_t *cap, size_t n)
{
    if (n <= *cap) return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < n) c *= 2;
    float *b = realloc(*buf, c * sizeof *b);
    if (!b) return -1;
    *buf = b, *cap = c;
    return 0;
}

static float sample_at(ac_pcm_encoding enc, const unsigned char *b)
{
    if (enc == AC_PCM_S16LE) return (float)(int16_t)(uint16_t)(b[0] | b[1] << 8) / 32768.f;
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* n input samples (or the tail: in == NULL) through the resampler into p->out, from its start. */
static ac_status resample(ac_pcm_stream *p, const float *in, size_t n, size_t *n_out, char *err)
{
    p->out.n = 0;
    ac_status st = ac_resample_block(p->sx, in, n, &p->out, 0, err);
    *n_out = p->out.n;
    return st;
}

ac_status ac_pcm_stream_feed(ac_pcm_stream *p, const void *bytes, size_t len, const float **x, size_t *n,
                             char *err)
{
    const size_t width = p->enc == AC_PCM_S16LE ? 2 : 4;
    const unsigned char *b = bytes;
    const size_t total = p->n_carry + len, count = total / width;
    *x = NULL, *n = 0;
    if (reserve(&p->in, &p->in_cap, count + 1)) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    size_t at = 0; /* bytes of `bytes` used */
    for (size_t i = 0; i < count; i++) {
        unsigned char s[4];
        for (size_t k = 0; k < width; k++) {
            size_t pos = i * width + k; /* position in carry ++ bytes */
            s[k] = pos < p->n_carry ? p->carry[pos] : b[at++];
        }
        float v = sample_at(p->enc, s);
        if (!isfinite(v))
            return ac_fail(err, AC_ERR_BAD_AUDIO, "sample %llu is not a finite number",
                           (unsigned long long)(p->samples_in + i));
        p->in[i] = v;
    }
    /* what is left of carry ++ bytes: a partial sample for the next feed */
    unsigned char rest[4];
    size_t r = 0;
    for (size_t pos = count * width; pos < total; pos++) rest[r++] = pos < p->n_carry ? p->carry[pos] : b[at++];
    memcpy(p->carry, rest, r);
    p->n_carry = r;
    p->samples_in += count;
    ac_status st = resample(p, p->in, count, n, err);
    if (!st) *x = p->out.x;
    return st;
}

ac_status ac_pcm_stream_flush(ac_pcm_stream *p, const float **x, size_t *n, size_t *partial, char *err)
{
    *partial = p->n_carry;
    p->n_carry = 0;
    ac_status st = resample(p, NULL, 0, n, err);
    *x = st ? NULL : p->out.x;
    return st;
}
