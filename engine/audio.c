/* audio.c - decode from memory with libsndfile virtual I/O, downmix, resample with soxr. */
#include "audio.h"

#include "audio_av.h"
#include "audio_names.h"
#include "ogg_guard.h"
#include "resample.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A read cursor over the caller's bytes, for libsndfile's virtual I/O. */
typedef struct mem_cursor {
    const unsigned char *data;
    sf_count_t len, pos;
} mem_cursor;

static sf_count_t vio_len(void *u) { return ((mem_cursor *)u)->len; }
static sf_count_t vio_tell(void *u) { return ((mem_cursor *)u)->pos; }

static sf_count_t vio_seek(sf_count_t off, int whence, void *u)
{
    mem_cursor *c = u;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? c->pos : c->len;
    sf_count_t p = base + off;
    if (p < 0) p = 0;
    if (p > c->len) p = c->len;
    c->pos = p;
    return p;
}

static sf_count_t vio_read(void *dst, sf_count_t n, void *u)
{
    mem_cursor *c = u;
    sf_count_t left = c->len - c->pos;
    if (n > left) n = left;
    if (n <= 0) return 0;
    memcpy(dst, c->data + c->pos, (size_t)n);
    c->pos += n;
    return n;
}

static sf_count_t vio_write(const void *src, sf_count_t n, void *u)
{
    (void)src, (void)n, (void)u;
    return 0; /* read-only */
}

static void format_names(int format, char *container, size_t cl, char *encoding, size_t el)
{
    ac_audio_sf_format_name(format, container, cl);
    SF_FORMAT_INFO si = {.format = format & SF_FORMAT_SUBMASK};
    snprintf(encoding, el, "%s",
             sf_command(NULL, SFC_GET_FORMAT_INFO, &si, sizeof si) == 0 && si.name
                 ? si.name : "unknown");
}

/* The bytes start like a container libsndfile reads. */
static int sndfile_magic(const unsigned char *d, size_t len)
{
    return len >= 4 && (!memcmp(d, "RIFF", 4) || !memcmp(d, "RIFX", 4) || !memcmp(d, "fLaC", 4) ||
                        !memcmp(d, "OggS", 4) || !memcmp(d, "FORM", 4) || !memcmp(d, "ID3", 3) ||
                        !memcmp(d, ".snd", 4));
}

int ac_audio_recognises(const void *data, size_t len)
{
    const unsigned char *d = data;
    return sndfile_magic(d, len) || ac_audio_av_recognises(d, len) ||
           (len >= 2 && d[0] == 0xff && (d[1] & 0xe0) == 0xe0); /* an MPEG audio frame */
}

/* Maps libsndfile's open failure to our codes with a message naming the problem. */
static ac_status open_failure(const unsigned char *d, size_t len, char *err)
{
    const char *why = sf_strerror(NULL);
    int code = sf_error(NULL);
    if (why && strstr(why, "malloc")) /* libsndfile's "Internal malloc () failed" */
        return ac_fail(err, AC_ERR_NOMEM, "out of memory opening the audio: %s", why);
    if (code == SF_ERR_UNSUPPORTED_ENCODING)
        return ac_fail(err, AC_ERR_UNSUPPORTED_AUDIO, "unsupported audio encoding: %s", why);
    /* Recognisable containers that fail to open are corrupt; anything else is not audio. */
    int known = sndfile_magic(d, len);
    return ac_fail(err, AC_ERR_BAD_AUDIO, "%s: %s",
                   known ? "corrupt or truncated audio"
                         : "not a readable audio file (reads WAV, AIFF, FLAC, Ogg, MP3, WebM, M4A)",
                   why);
}

ac_status ac_audio_decode(const void *data, size_t len, int target_rate, double max_seconds,
                          ac_audio *out, char *err)
{
    ac_decode_opts o = {.target_rate = target_rate, .max_seconds = max_seconds};
    return ac_audio_decode_opts(data, len, &o, out, err);
}

/* Decoding in bounded blocks: libsndfile reads AC_DECODE_BLOCK frames at a time, channels
 * are averaged into one mono block, and libsoxr's streaming interface resamples the block
 * into the output. What a decode holds is therefore the output (mono at the target rate)
 * plus fixed-size blocks and soxr's filter state, whatever the source rate, channel count
 * or length; a one-shot resample held the whole source and output at once (1.9 GB for a
 * 599 s 384 kHz upload). */
#define AC_DECODE_BLOCK 16384

ac_status ac_audio_decode_opts(const void *data, size_t len, const ac_decode_opts *opts,
                               ac_audio *out, char *err)
{
    if (!out) return ac_fail(err, AC_ERR_INVALID_ARG, "ac_audio_decode: out is NULL");
    memset(out, 0, sizeof *out);
    if (!opts) return ac_fail(err, AC_ERR_INVALID_ARG, "ac_audio_decode: opts is NULL");
    const int target_rate = opts->target_rate;
    const double max_seconds = opts->max_seconds;
    if (!data || len == 0) return ac_fail(err, AC_ERR_AUDIO_EMPTY, "audio body is empty (0 bytes)");
    if (target_rate < 0 || target_rate > AC_AUDIO_MAX_RATE)
        return ac_fail(err, AC_ERR_INVALID_ARG, "target rate %d Hz out of range", target_rate);

    char why[160];
    if (!ac_ogg_vorbis_headers_ok(data, len, why, sizeof why))
        return ac_fail(err, AC_ERR_BAD_AUDIO, "corrupt or truncated audio: Ogg Vorbis: %s", why);

    mem_cursor cur = {.data = data, .len = (sf_count_t)len, .pos = 0};
    SF_VIRTUAL_IO vio = {vio_len, vio_seek, vio_read, vio_write, vio_tell};
    SF_INFO info = {0};
    SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &info, &cur);
    if (!sf && ac_audio_av_recognises(data, len)) /* WebM/Matroska, MP4/M4A: libavformat */
        return ac_audio_av_decode(data, len, target_rate, max_seconds, out, err);
    if (!sf) return open_failure(data, len, err);

    ac_status st = AC_OK;
    float *interleaved = NULL, *mono = NULL;
    soxr_t sx = NULL;
    ac_out_buf ob = {.o = opts};
    if (info.channels < 1 || info.channels > AC_AUDIO_MAX_CHANNELS) {
        st = ac_fail(err, AC_ERR_BAD_AUDIO, "channels = %d: must be 1..%d", info.channels,
                     AC_AUDIO_MAX_CHANNELS);
        goto out;
    }
    if (info.samplerate < AC_AUDIO_MIN_RATE || info.samplerate > AC_AUDIO_MAX_RATE) {
        st = ac_fail(err, AC_ERR_BAD_AUDIO, "sample rate = %d Hz: must be %d..%d",
                     info.samplerate, AC_AUDIO_MIN_RATE, AC_AUDIO_MAX_RATE);
        goto out;
    }
    const int rate = target_rate > 0 ? target_rate : info.samplerate;
    /* Frame counts in headers can lie (streamed WAV, MP3): the cap is checked on what is
     * actually decoded, and the header's count is only a hint for the output's size. */
    double cap_d = max_seconds > 0 ? max_seconds * info.samplerate : 1e15;
    size_t max_frames = (size_t)cap_d;
    size_t hint = 0;
    if (info.frames > 0 && (double)info.frames <= cap_d)
        hint = (size_t)((double)info.frames * rate / info.samplerate + 0.5) + 1;
    size_t n = 0, ch = (size_t)info.channels;
    interleaved = malloc(AC_DECODE_BLOCK * ch * sizeof *interleaved);
    mono = malloc(AC_DECODE_BLOCK * sizeof *mono);
    if (!interleaved || !mono) { st = ac_fail(err, AC_ERR_NOMEM, "out of memory decoding audio"); goto out; }
    if (rate != info.samplerate) {
        if ((st = ac_soxr_new(info.samplerate, rate, &sx, err))) goto out;
    }
    for (;;) {
        sf_count_t got = sf_readf_float(sf, interleaved, (sf_count_t)AC_DECODE_BLOCK);
        if (got <= 0) break;
        if (n + (size_t)got > max_frames) {
            st = ac_fail(err, AC_ERR_AUDIO_TOO_LONG, "audio is longer than the %.1f s limit",
                         max_seconds);
            goto out;
        }
        for (size_t i = 0; i < (size_t)got; i++) {
            float v = 0.f;
            for (size_t c = 0; c < ch; c++) v += interleaved[i * ch + c];
            v /= (float)ch;
            /* Float files may hold NaN or values beyond full scale; integer ones never do. */
            if (!isfinite(v)) {
                st = ac_fail(err, AC_ERR_BAD_AUDIO, "sample %zu is not a finite number", n + i);
                goto out;
            }
            mono[i] = v > 1.f ? 1.f : v < -1.f ? -1.f : v;
        }
        n += (size_t)got;
        if ((st = ac_resample_block(sx, mono, (size_t)got, &ob, hint, err))) goto out;
    }
    if (sf_error(sf) != SF_ERR_NO_ERROR && n == 0) {
        st = ac_fail(err, AC_ERR_BAD_AUDIO, "corrupt audio: %s", sf_strerror(sf));
        goto out;
    }
    if (n == 0) {
        st = ac_fail(err, AC_ERR_AUDIO_EMPTY, "audio contains no samples");
        goto out;
    }
    if ((st = ac_resample_block(sx, NULL, 0, &ob, hint, err))) goto out;
    /* The length a one-shot resample gives: round(n * rate / src_rate); the streamed tail
     * may differ by a sample or two. */
    size_t want = rate == info.samplerate ? n : (size_t)((double)n * rate / info.samplerate + 0.5);
    if (want == 0) {
        st = ac_fail(err, AC_ERR_AUDIO_TOO_SHORT, "audio of %zu frames at %d Hz is empty at %d Hz",
                     n, info.samplerate, rate);
        goto out;
    }
    if (want > ob.n) {
        if ((st = ac_out_room(&ob, want - ob.n, want, err))) goto out;
        memset(ob.x + ob.n, 0, (want - ob.n) * sizeof *ob.x);
    }
    ob.n = want;
    out->samples = ob.x;
    out->n = want;
    ob.x = NULL;
    out->src_rate = info.samplerate;
    out->src_channels = info.channels;
    out->src_frames = n;
    format_names(info.format, out->container, sizeof out->container, out->encoding,
                 sizeof out->encoding);
    out->rate = rate;
out:
    soxr_delete(sx);
    free(interleaved);
    free(mono);
    free(ob.x);
    sf_close(sf);
    if (st != AC_OK) memset(out, 0, sizeof *out);
    return st;
}

ac_status ac_resample(const float *in, size_t n_in, int in_rate, int out_rate, float **out,
                      size_t *n_out, char *err)
{
    *out = NULL;
    *n_out = 0;
    if (in_rate <= 0 || out_rate <= 0)
        return ac_fail(err, AC_ERR_INVALID_ARG, "resample: rates must be positive (%d -> %d)",
                       in_rate, out_rate);
    size_t want = in_rate == out_rate ? n_in
                                      : (size_t)((double)n_in * out_rate / in_rate + 0.5);
    ac_out_buf ob = {0};
    soxr_t sx = NULL;
    ac_status st = AC_OK;
    if (in_rate != out_rate && want > 0) {
        if ((st = ac_soxr_new(in_rate, out_rate, &sx, err))) return st;
        for (size_t i = 0; i < n_in && st == AC_OK; i += AC_DECODE_BLOCK) {
            size_t k = n_in - i < AC_DECODE_BLOCK ? n_in - i : AC_DECODE_BLOCK;
            st = ac_resample_block(sx, in + i, k, &ob, want + 1, err);
        }
        if (st == AC_OK) st = ac_resample_block(sx, NULL, 0, &ob, want + 1, err);
        soxr_delete(sx);
    } else if (want > 0) {
        st = ac_resample_block(NULL, in, n_in, &ob, want, err);
    }
    if (st == AC_OK) st = ac_out_room(&ob, want > ob.n ? want - ob.n : 1, want, err);
    if (st != AC_OK) {
        free(ob.x);
        return st;
    }
    if (want > ob.n) memset(ob.x + ob.n, 0, (want - ob.n) * sizeof *ob.x);
    *out = ob.x;
    *n_out = want;
    return AC_OK;
}

ac_status ac_audio_decode_file(const char *path, int target_rate, double max_seconds,
                               ac_audio *out, char *err)
{
    if (out) memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return ac_fail(err, AC_ERR_IO, "cannot open %s", path);
    unsigned char *buf = NULL;
    size_t len = 0;
    ac_status st = ac_read_all(f, path, &buf, &len, err);
    fclose(f);
    if (st == AC_OK) st = ac_audio_decode(buf, len, target_rate, max_seconds, out, err);
    free(buf);
    return st;
}

ac_status ac_read_all(FILE *f, const char *what, unsigned char **out, size_t *n, char *err)
{
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    ac_status st = AC_OK;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            unsigned char *p = realloc(buf, ncap);
            if (!p) { st = ac_fail(err, AC_ERR_NOMEM, "out of memory reading %s", what); break; }
            buf = p;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) st = ac_fail(err, AC_ERR_IO, "error reading %s", what);
            break;
        }
    }
    if (st != AC_OK) {
        free(buf);
        buf = NULL, len = 0;
    }
    *out = buf, *n = len;
    return st;
}

void ac_audio_free(ac_audio *a)
{
    if (!a) return;
    free(a->samples);
    memset(a, 0, sizeof *a);
}
