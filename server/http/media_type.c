/* media_type.c - classifies the Content-Type of an upload and reads raw PCM parameters. */
#include "media_type.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Does the media type (before any ';') equal `want`, or start with it when want ends in '/'? */
static int is(const char *ct, size_t len, const char *want)
{
    size_t wl = strlen(want);
    if (want[wl - 1] == '/') return len > wl && !strncasecmp(ct, want, wl);
    return len == wl && !strncasecmp(ct, want, wl);
}

/* Value of parameter `name` in "; a=1; b="2"" into val (quotes removed); 0 if absent. */
static int param(const char *params, const char *name, char *val, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = params; p && *p;) {
        while (*p == ';' || isspace((unsigned char)*p)) p++;
        size_t klen = strcspn(p, "=;");
        size_t kl = klen;
        while (kl && isspace((unsigned char)p[kl - 1])) kl--;
        if (p[klen] != '=') {
            p += klen;
            continue;
        }
        const char *v = p + klen + 1;
        while (*v == ' ' || *v == '\t') v++;
        size_t vl;
        if (*v == '"') {
            v++;
            vl = strcspn(v, "\"");
        } else {
            vl = strcspn(v, ";");
            while (vl && isspace((unsigned char)v[vl - 1])) vl--;
        }
        if (kl == nl && !strncasecmp(p, name, nl)) {
            snprintf(val, cap, "%.*s", (int)(vl < cap ? vl : cap - 1), v);
            return 1;
        }
        p = v + vl;
        if (*p == '"') p++;
    }
    return 0;
}

/* A whole number in [lo, hi] from a parameter, else -1. */
static long number(const char *s, long lo, long hi)
{
    if (!isdigit((unsigned char)s[0])) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return *end || errno || v < lo || v > hi ? -1 : v;
}

static media_kind pcm(const char *params, int big_endian, media_info *out)
{
    char v[32];
    out->pcm.big_endian = big_endian;
    out->pcm.channels = 1;
    if (!param(params, "rate", v, sizeof v)) {
        snprintf(out->why, sizeof out->why, "raw PCM needs its sample rate: add ;rate=16000 (Hz)");
        return out->kind = MEDIA_BAD_PCM;
    }
    long r = number(v, AC_AUDIO_MIN_RATE, AC_AUDIO_MAX_RATE);
    if (r < 0) {
        snprintf(out->why, sizeof out->why, "rate=%.20s: must be a whole number of Hz, %d..%d", v,
                 AC_AUDIO_MIN_RATE, AC_AUDIO_MAX_RATE);
        return out->kind = MEDIA_BAD_PCM;
    }
    out->pcm.rate = (int)r;
    if (param(params, "channels", v, sizeof v)) {
        long c = number(v, 1, AC_AUDIO_MAX_CHANNELS);
        if (c < 0) {
            snprintf(out->why, sizeof out->why, "channels=%.20s: must be 1..%d", v, AC_AUDIO_MAX_CHANNELS);
            return out->kind = MEDIA_BAD_PCM;
        }
        out->pcm.channels = (int)c;
    }
    /* audio/pcm may say its sample format; only the one it means by default is read. */
    if (!big_endian && param(params, "format", v, sizeof v) && strcasecmp(v, "s16le")) {
        snprintf(out->why, sizeof out->why, "format=%.20s: audio/pcm is read as s16le only", v);
        return out->kind = MEDIA_BAD_PCM;
    }
    return out->kind = MEDIA_PCM;
}

media_kind media_parse(const char *ct, media_info *out)
{
    memset(out, 0, sizeof *out);
    if (!ct) return out->kind = MEDIA_RAW_AUDIO;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t len = strcspn(ct, ";");
    const char *params = ct + len;
    while (len && isspace((unsigned char)ct[len - 1])) len--;
    if (len == 0) return out->kind = MEDIA_RAW_AUDIO;
    if (is(ct, len, "audio/L16")) return pcm(params, 1, out);
    if (is(ct, len, "audio/pcm") || is(ct, len, "audio/x-pcm")) return pcm(params, 0, out);
    if (is(ct, len, "audio/") || is(ct, len, "application/octet-stream") ||
        is(ct, len, "application/ogg"))
        return out->kind = MEDIA_RAW_AUDIO;
    if (is(ct, len, "multipart/form-data")) return out->kind = MEDIA_MULTIPART;
    return out->kind = MEDIA_UNSUPPORTED;
}

media_kind media_classify(const char *ct)
{
    media_info mi;
    return media_parse(ct, &mi);
}
