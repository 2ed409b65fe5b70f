/* audio_raw.c - headerless 16-bit PCM: a header is put in front (Sun AU for big-endian,
 * WAV for little-endian) and the result goes through ac_audio_decode, so raw uploads get
 * exactly the checks, downmix and resampling of every other format. */
#include "audio_raw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

static void le16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }

/* Sun AU: ".snd", data offset 24, data size, encoding 3 (16-bit linear PCM, big-endian). */
static size_t au_header(unsigned char *h, size_t len, const ac_pcm_format *f)
{
    memcpy(h, ".snd", 4);
    be32(h + 4, 24);
    be32(h + 8, (uint32_t)len);
    be32(h + 12, 3);
    be32(h + 16, (uint32_t)f->rate);
    be32(h + 20, (uint32_t)f->channels);
    return 24;
}

/* Canonical 44-byte WAV header, PCM 16-bit little-endian. */
static size_t wav_header(unsigned char *h, size_t len, const ac_pcm_format *f)
{
    memcpy(h, "RIFF", 4);
    le32(h + 4, (uint32_t)(36 + len));
    memcpy(h + 8, "WAVEfmt ", 8);
    le32(h + 16, 16);
    le16(h + 20, 1);
    le16(h + 22, (uint16_t)f->channels);
    le32(h + 24, (uint32_t)f->rate);
    le32(h + 28, (uint32_t)f->rate * (uint32_t)f->channels * 2);
    le16(h + 32, (uint16_t)(f->channels * 2));
    le16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    le32(h + 40, (uint32_t)len);
    return 44;
}

ac_status ac_audio_decode_pcm(const void *data, size_t len, const ac_pcm_format *f, int target_rate,
                              double max_seconds, ac_audio *out, char *err)
{
    if (!out) return ac_fail(err, AC_ERR_INVALID_ARG, "ac_audio_decode_pcm: out is NULL");
    memset(out, 0, sizeof *out);
    if (!f) return ac_fail(err, AC_ERR_INVALID_ARG, "ac_audio_decode_pcm: no format");
    if (f->rate < AC_AUDIO_MIN_RATE || f->rate > AC_AUDIO_MAX_RATE)
        return ac_fail(err, AC_ERR_INVALID_ARG, "rate = %d Hz: must be %d..%d", f->rate,
                       AC_AUDIO_MIN_RATE, AC_AUDIO_MAX_RATE);
    if (f->channels < 1 || f->channels > AC_AUDIO_MAX_CHANNELS)
        return ac_fail(err, AC_ERR_INVALID_ARG, "channels = %d: must be 1..%d", f->channels,
                       AC_AUDIO_MAX_CHANNELS);
    if (!data || len == 0) return ac_fail(err, AC_ERR_AUDIO_EMPTY, "audio body is empty (0 bytes)");
    size_t frame = 2 * (size_t)f->channels;
    if (len % frame)
        return ac_fail(err, AC_ERR_BAD_AUDIO,
                       "%zu bytes is not a whole number of %zu-byte frames (16-bit, %d channel%s)", len,
                       frame, f->channels, f->channels > 1 ? "s" : "");
    if (len > UINT32_MAX - 64) return ac_fail(err, AC_ERR_AUDIO_TOO_LONG, "raw PCM body over 4 GiB");
    unsigned char *buf = malloc(44 + len);
    if (!buf) return ac_fail(err, AC_ERR_NOMEM, "out of memory decoding audio");
    size_t h = f->big_endian ? au_header(buf, len, f) : wav_header(buf, len, f);
    memcpy(buf + h, data, len);
    ac_status st = ac_audio_decode(buf, h + len, target_rate, max_seconds, out, err);
    free(buf);
    if (st == AC_OK) {
        snprintf(out->container, sizeof out->container, "raw PCM");
        snprintf(out->encoding, sizeof out->encoding, "%s",
                 f->big_endian ? "Signed 16 bit PCM, big-endian" : "Signed 16 bit PCM");
    }
    return st;
}
