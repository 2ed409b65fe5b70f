/* audio_av.c - WebM/Matroska and MP4/M4A audio from memory with libavformat/libavcodec,
 * under the same limits as the libsndfile path (see audio_av.h). */
#include "audio_av.h"

#if !AC_HAVE_AV
/* Built without libavformat (cmake -DAC_AV=OFF): no bytes are taken for WebM/M4A, so they
 * end up refused like any other unreadable format. */
int ac_audio_av_recognises(const void *data, size_t len)
{
    (void)data, (void)len;
    return 0;
}

ac_status ac_audio_av_decode(const void *data, size_t len, int target_rate, double max_seconds,
                             ac_audio *out, char *err)
{
    (void)data, (void)len, (void)target_rate, (void)max_seconds, (void)out;
    return ac_fail(err, AC_ERR_UNSUPPORTED_AUDIO, "this build reads no WebM/Matroska or MP4/M4A (AC_AV=OFF)");
}
#else

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IO_BUF 32768
/* Demuxers and decoders that may run: nothing else is reachable from a request. */
#define FORMATS "matroska,webm,mov,mp4,m4a,3gp,3g2,mj2"
#define DECODERS "opus,vorbis,aac,aac_fixed,alac,flac,mp3,mp3float"

typedef struct cursor {
    const uint8_t *data;
    int64_t len, pos;
} cursor;

static int io_read(void *u, uint8_t *buf, int n)
{
    cursor *c = u;
    int64_t left = c->len - c->pos;
    if (left <= 0) return AVERROR_EOF;
    if (n > left) n = (int)left;
    memcpy(buf, c->data + c->pos, (size_t)n);
    c->pos += n;
    return n;
}

static int64_t io_seek(void *u, int64_t off, int whence)
{
    cursor *c = u;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE) return c->len;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? c->pos : whence == SEEK_END ? c->len : -1;
    if (base < 0 || off > c->len || off < -c->len) return AVERROR(EINVAL);
    int64_t p = base + off;
    if (p < 0 || p > c->len) return AVERROR(EINVAL);
    return c->pos = p;
}

/* MP4 "dref" boxes and HLS-like references would open other files or URLs: never. */
static int refuse_open(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                       AVDictionary **options)
{
    (void)s, (void)pb, (void)url, (void)flags, (void)options;
    return AVERROR(EPERM);
}

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void quiet(void) { av_log_set_level(AV_LOG_QUIET); } /* errors come back as codes */

static int is_ebml(const uint8_t *d, size_t len) { return len >= 4 && !memcmp(d, "\x1a\x45\xdf\xa3", 4); }
static int is_isobmff(const uint8_t *d, size_t len) { return len >= 12 && !memcmp(d + 4, "ftyp", 4); }

int ac_audio_av_recognises(const void *data, size_t len)
{
    return data && (is_ebml(data, len) || is_isobmff(data, len));
}

/* "WebM", "Matroska", "M4A", "MP4", "3GP": from the EBML DocType or the MP4 major brand. */
static const char *container_name(const uint8_t *d, size_t len)
{
    if (is_ebml(d, len)) {
        size_t n = len < 64 ? len : 64;
        for (size_t i = 0; i + 4 <= n; i++)
            if (!memcmp(d + i, "webm", 4)) return "WebM";
        return "Matroska";
    }
    if (!memcmp(d + 8, "M4A ", 4) || !memcmp(d + 8, "M4B ", 4)) return "M4A";
    if (!memcmp(d + 8, "3gp", 3) || !memcmp(d + 8, "3g2", 3)) return "3GP";
    return "MP4";
}

static const char *codec_name(enum AVCodecID id)
{
    switch (id) {
    case AV_CODEC_ID_OPUS: return "Opus";
    case AV_CODEC_ID_VORBIS: return "Vorbis";
    case AV_CODEC_ID_AAC: return "AAC";
    case AV_CODEC_ID_ALAC: return "ALAC";
    case AV_CODEC_ID_FLAC: return "FLAC";
    case AV_CODEC_ID_MP3: return "MP3";
    default: return NULL; /* not one we decode */
    }
}

/* Sample i of channel c of a decoded frame, as a float in [-1, 1] for integer formats. */
static double sample_at(const AVFrame *f, int c, int i, int ch)
{
    enum AVSampleFormat fmt = (enum AVSampleFormat)f->format;
    int planar = av_sample_fmt_is_planar(fmt);
    const uint8_t *p = planar ? f->extended_data[c] : f->extended_data[0];
    size_t k = planar ? (size_t)i : (size_t)i * (size_t)ch + (size_t)c;
    switch (av_get_packed_sample_fmt(fmt)) {
    case AV_SAMPLE_FMT_U8: return ((double)p[k] - 128.0) / 128.0;
    case AV_SAMPLE_FMT_S16: return ((const int16_t *)(const void *)p)[k] / 32768.0;
    case AV_SAMPLE_FMT_S32: return ((const int32_t *)(const void *)p)[k] / 2147483648.0;
    case AV_SAMPLE_FMT_S64: return (double)((const int64_t *)(const void *)p)[k] / 9223372036854775808.0;
    case AV_SAMPLE_FMT_FLT: return ((const float *)(const void *)p)[k];
    case AV_SAMPLE_FMT_DBL: return ((const double *)(const void *)p)[k];
    default: return NAN;
    }
}

typedef struct decoded {
    float *mono;              /* [n] of cap, at rate */
    size_t n, cap, max_frames;
    int rate, channels;
} decoded;

/* Downmixes one frame onto d. */
static ac_status take_frame(decoded *d, const AVFrame *f, double max_seconds, char *err)
{
    int ch = f->ch_layout.nb_channels;
    if (ch < 1 || ch > AC_AUDIO_MAX_CHANNELS)
        return ac_fail(err, AC_ERR_BAD_AUDIO, "channels = %d: must be 1..%d", ch, AC_AUDIO_MAX_CHANNELS);
    if (f->sample_rate != d->rate)
        return ac_fail(err, AC_ERR_BAD_AUDIO, "sample rate changes from %d to %d Hz inside the stream",
                       d->rate, f->sample_rate);
    size_t got = f->nb_samples > 0 ? (size_t)f->nb_samples : 0;
    if (got > d->max_frames - d->n)
        return ac_fail(err, AC_ERR_AUDIO_TOO_LONG, "audio is longer than the %.1f s limit", max_seconds);
    if (d->n + got > d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 65536;
        if (ncap > d->max_frames) ncap = d->max_frames;
        if (ncap < d->n + got) ncap = d->n + got;
        float *p = realloc(d->mono, ncap * sizeof *p);
        if (!p) return ac_fail(err, AC_ERR_NOMEM, "out of memory decoding audio");
        d->mono = p, d->cap = ncap;
    }
    if (ch > d->channels) d->channels = ch;
    for (size_t i = 0; i < got; i++) {
        double v = 0;
        for (int c = 0; c < ch; c++) v += sample_at(f, c, (int)i, ch);
        v /= ch;
        if (!isfinite(v)) return ac_fail(err, AC_ERR_BAD_AUDIO, "sample %zu is not a finite number", d->n + i);
        d->mono[d->n + i] = v > 1.0 ? 1.f : v < -1.0 ? -1.f : (float)v;
    }
    d->n += got;
    return AC_OK;
}

/* Receives every frame the decoder has ready. */
static ac_status drain(AVCodecContext *cc, AVFrame *f, decoded *d, double max_seconds, char *err)
{
    for (;;) {
        int r = avcodec_receive_frame(cc, f);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return AC_OK;
        if (r < 0) return AC_OK; /* a damaged frame: skipped, as libsndfile skips them */
        ac_status st = take_frame(d, f, max_seconds, err);
        av_frame_unref(f);
        if (st) return st;
    }
}

ac_status ac_audio_av_decode(const void *data, size_t len, int target_rate, double max_seconds,
                             ac_audio *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (!ac_audio_av_recognises(data, len))
        return ac_fail(err, AC_ERR_BAD_AUDIO, "not a readable audio file");
    pthread_once(&quiet_once, quiet);
    const char *cname = container_name(data, len);
    cursor cur = {.data = data, .len = (int64_t)len};
    AVFormatContext *fc = NULL;
    AVIOContext *io = NULL;
    AVCodecContext *cc = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    decoded d = {0};
    ac_status st = AC_OK;
    unsigned char *iobuf = av_malloc(IO_BUF);
    if (!pkt || !frame || !iobuf || !(fc = avformat_alloc_context()) ||
        !(io = avio_alloc_context(iobuf, IO_BUF, 0, &cur, io_read, NULL, io_seek))) {
        if (!io) av_free(iobuf);
        st = ac_fail(err, AC_ERR_NOMEM, "out of memory decoding audio");
        goto out;
    }
    fc->pb = io;
    fc->flags |= AVFMT_FLAG_CUSTOM_IO;
    fc->io_open = refuse_open;
    fc->format_whitelist = av_strdup(FORMATS);
    fc->codec_whitelist = av_strdup(DECODERS);
    fc->protocol_whitelist = av_strdup("none");
    if (!fc->format_whitelist || !fc->codec_whitelist || !fc->protocol_whitelist) {
        st = ac_fail(err, AC_ERR_NOMEM, "out of memory decoding audio");
        goto out;
    }
    const AVInputFormat *ifmt = av_find_input_format(is_ebml(data, len) ? "matroska" : "mov");
    int r = avformat_open_input(&fc, NULL, ifmt, NULL); /* frees fc on failure */
    if (r < 0) {
        st = ac_fail(err, AC_ERR_BAD_AUDIO, "corrupt or truncated audio: %s: %s", cname, av_err2str(r));
        goto out;
    }
    const AVCodec *dec = NULL;
    int si = av_find_best_stream(fc, AVMEDIA_TYPE_AUDIO, -1, -1, &dec, 0);
    if (si < 0 && si != AVERROR_DECODER_NOT_FOUND) {
        st = ac_fail(err, AC_ERR_BAD_AUDIO, "%s file without an audio stream", cname);
        goto out;
    }
    AVCodecParameters *par = fc->streams[si < 0 ? 0 : si]->codecpar;
    const char *enc = codec_name(par->codec_id);
    if (si < 0 || !dec || !enc) {
        st = ac_fail(err, AC_ERR_UNSUPPORTED_AUDIO, "unsupported audio encoding in %s: %s (read: Opus, "
                     "Vorbis, AAC, ALAC, FLAC, MP3)", cname, avcodec_get_name(par->codec_id));
        goto out;
    }
    if (par->ch_layout.nb_channels < 1 || par->ch_layout.nb_channels > AC_AUDIO_MAX_CHANNELS) {
        st = ac_fail(err, AC_ERR_BAD_AUDIO, "channels = %d: must be 1..%d", par->ch_layout.nb_channels,
                     AC_AUDIO_MAX_CHANNELS);
        goto out;
    }
    if (par->sample_rate < AC_AUDIO_MIN_RATE || par->sample_rate > AC_AUDIO_MAX_RATE) {
        st = ac_fail(err, AC_ERR_BAD_AUDIO, "sample rate = %d Hz: must be %d..%d", par->sample_rate,
                     AC_AUDIO_MIN_RATE, AC_AUDIO_MAX_RATE);
        goto out;
    }
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "codec_whitelist", DECODERS, 0);
    if (!(cc = avcodec_alloc_context3(dec)) || avcodec_parameters_to_context(cc, par) < 0) {
        av_dict_free(&opts);
        st = ac_fail(err, AC_ERR_NOMEM, "out of memory decoding audio");
        goto out;
    }
    cc->thread_count = 1; /* threads are the engine's business */
    r = avcodec_open2(cc, dec, &opts);
    av_dict_free(&opts);
    if (r < 0) {
        st = ac_fail(err, AC_ERR_BAD_AUDIO, "corrupt audio: %s %s: %s", cname, enc, av_err2str(r));
        goto out;
    }
    /* The decoder's rate, not the header's: Opus always decodes at 48 kHz. */
    d.rate = cc->sample_rate;
    if (d.rate < AC_AUDIO_MIN_RATE || d.rate > AC_AUDIO_MAX_RATE) {
        st = ac_fail(err, AC_ERR_BAD_AUDIO, "sample rate = %d Hz: must be %d..%d", d.rate,
                     AC_AUDIO_MIN_RATE, AC_AUDIO_MAX_RATE);
        goto out;
    }
    double cap_d = max_seconds > 0 ? max_seconds * d.rate : 1e15;
    d.max_frames = (size_t)cap_d;
    int damaged = 0;
    while ((r = av_read_frame(fc, pkt)) >= 0) {
        if (pkt->stream_index == si) {
            if (avcodec_send_packet(cc, pkt) < 0) damaged++;
            st = drain(cc, frame, &d, max_seconds, err);
        }
        av_packet_unref(pkt);
        if (st) goto out;
    }
    avcodec_send_packet(cc, NULL); /* flush */
    if ((st = drain(cc, frame, &d, max_seconds, err))) goto out;
    if (d.n == 0) {
        st = damaged || r != AVERROR_EOF
                 ? ac_fail(err, AC_ERR_BAD_AUDIO, "corrupt audio: %s %s: no frame decodes", cname, enc)
                 : ac_fail(err, AC_ERR_AUDIO_EMPTY, "audio contains no samples");
        goto out;
    }
    out->src_rate = d.rate;
    out->src_channels = d.channels;
    out->src_frames = d.n;
    snprintf(out->container, sizeof out->container, "%s/%s", cname, enc);
    snprintf(out->encoding, sizeof out->encoding, "%s", enc);
    int rate = target_rate > 0 ? target_rate : d.rate;
    st = ac_resample(d.mono, d.n, d.rate, rate, &out->samples, &out->n, err);
    if (st == AC_OK && out->n == 0)
        st = ac_fail(err, AC_ERR_AUDIO_TOO_SHORT, "audio of %zu frames at %d Hz is empty at %d Hz", d.n,
                     d.rate, rate);
    if (st == AC_OK) out->rate = rate;
out:
    avcodec_free_context(&cc);
    avformat_close_input(&fc); /* NULL-safe; leaves the custom pb to us */
    if (io) {
        av_freep(&io->buffer);
        avio_context_free(&io);
    }
    av_packet_free(&pkt);
    av_frame_free(&frame);
    free(d.mono);
    if (st != AC_OK) {
        free(out->samples);
        memset(out, 0, sizeof *out);
    }
    return st;
}

#endif /* AC_HAVE_AV */
