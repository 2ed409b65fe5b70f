/* test_audio.c - the audio front end: every format and bit depth libsndfile writes here,
 * stereo downmix, resampling from 8/16/44.1/48 kHz, and refusal of bad input. */
#include <criterion/criterion.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio.h"
#include "testutil.h"

/* Writes `seconds` of a sine (amplitude amp, frequency hz) on channel 0 and `right_gain`
 * times it on the others, in `format`, and returns the file's bytes. */
static unsigned char *make_audio(int format, int rate, int channels, double seconds, double hz,
                                 double amp, double right_gain, size_t *len)
{
    char path[] = "/tmp/ac_test_audio_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
    cr_assert(sf_format_check(&info), "libsndfile cannot write format 0x%x", format);
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    cr_assert(sf, "sf_open write: %s", sf_strerror(NULL));
    size_t n = (size_t)(seconds * rate);
    float *buf = malloc(n * (size_t)channels * sizeof *buf);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < channels; c++)
            buf[i * channels + c] = (float)(amp * sin(2 * M_PI * hz * (double)i / rate) * (c ? right_gain : 1));
    sf_writef_float(sf, buf, (sf_count_t)n);
    sf_close(sf);
    free(buf);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *bytes = malloc(*len + 1);
    cr_assert_eq(fread(bytes, 1, *len, f), *len);
    fclose(f);
    unlink(path);
    return bytes;
}

/* Power of x at frequency hz (Goertzel), normalised so a full sine of amplitude a gives a^2/4. */
static double tone_power(const float *x, size_t n, int rate, double hz)
{
    double w = 2 * M_PI * hz / rate, c = 2 * cos(w), s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s0 = x[i] + c * s1 - s2;
        s2 = s1, s1 = s0;
    }
    double p = s1 * s1 + s2 * s2 - c * s1 * s2;
    return p / ((double)n * n);
}

static double rms(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s / (double)n);
}

/* Decodes a 1 s, 440 Hz, 0.5-amplitude tone of the given format to 16 kHz and checks it. */
static void check_format(int format, int rate, int channels, double tol, const char *what)
{
    size_t len;
    unsigned char *bytes = make_audio(format, rate, channels, 1.0, 440, 0.5, 1.0, &len);
    ac_audio a;
    char err[AC_ERR_LEN];
    ac_status st = ac_audio_decode(bytes, len, 16000, 60, &a, err);
    cr_assert_eq(st, AC_OK, "%s: %s", what, err);
    cr_expect_eq(a.rate, 16000, "%s", what);
    cr_expect_eq(a.src_rate, rate, "%s", what);
    cr_expect_eq(a.src_channels, channels, "%s", what);
    /* lossy codecs may add encoder delay/padding: allow 10% on the length */
    cr_expect(fabs((double)a.n - 16000) <= 1600, "%s: %zu samples", what, a.n);
    double r = rms(a.samples, a.n), want = 0.5 / sqrt(2);
    cr_expect(fabs(r - want) < tol, "%s: rms %.4f, expected %.4f", what, r, want);
    double p440 = tone_power(a.samples, a.n, 16000, 440), p1000 = tone_power(a.samples, a.n, 16000, 1000);
    cr_expect_gt(p440, 100 * p1000, "%s: the tone is not at 440 Hz", what);
    ac_audio_free(&a);
    ac_audio_free(&a); /* a second free is harmless */
    free(bytes);
}

Test(audio, wav_every_bit_depth)
{
    struct { int sub; const char *name; } subs[] = {
        {SF_FORMAT_PCM_U8, "WAV u8"}, {SF_FORMAT_PCM_16, "WAV 16"}, {SF_FORMAT_PCM_24, "WAV 24"},
        {SF_FORMAT_PCM_32, "WAV 32"}, {SF_FORMAT_FLOAT, "WAV float"}, {SF_FORMAT_DOUBLE, "WAV double"},
        {SF_FORMAT_ALAW, "WAV A-law"}, {SF_FORMAT_ULAW, "WAV u-law"}};
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++)
        check_format(SF_FORMAT_WAV | subs[i].sub, 16000, 1, subs[i].sub == SF_FORMAT_PCM_U8 ? 0.01 : 0.005,
                     subs[i].name);
}

Test(audio, flac_ogg_mp3_aiff)
{
    check_format(SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 1, 0.005, "FLAC 44.1k");
    check_format(SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 48000, 2, 0.005, "FLAC 24-bit 48k stereo");
    check_format(SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 2, 0.03, "OGG Vorbis");
    check_format(SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, 1, 0.03, "OGG Opus");
    check_format(SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, 2, 0.03, "MP3");
    check_format(SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 8000, 1, 0.005, "AIFF 8k");
}

Test(audio, rates_and_stereo)
{
    int rates[] = {8000, 16000, 22050, 44100, 48000, 96000};
    for (size_t i = 0; i < sizeof rates / sizeof *rates; i++) {
        char what[64];
        snprintf(what, sizeof what, "WAV 16 stereo %d Hz", rates[i]);
        check_format(SF_FORMAT_WAV | SF_FORMAT_PCM_16, rates[i], 2, 0.005, what);
    }
}

Test(audio, downmix_averages_channels)
{
    size_t len;
    unsigned char *bytes = make_audio(SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, 0.5, 300, 0.8, 0.0, &len);
    ac_audio a;
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_audio_decode(bytes, len, 0, 0, &a, err), AC_OK, "%s", err);
    cr_expect_eq(a.rate, 16000, "target 0 keeps the source rate");
    cr_expect_float_eq(rms(a.samples, a.n), 0.4 / sqrt(2), 1e-3, "L = s, R = 0 -> s/2");
    ac_audio_free(&a);
    free(bytes);
    bytes = make_audio(SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, 0.5, 300, 0.8, -1.0, &len);
    cr_assert_eq(ac_audio_decode(bytes, len, 0, 0, &a, err), AC_OK, "%s", err);
    cr_expect_lt(rms(a.samples, a.n), 1e-6, "L = s, R = -s cancels");
    ac_audio_free(&a);
    free(bytes);
}

Test(audio, resampling_keeps_band_and_removes_aliases)
{
    /* 1 kHz at 48 kHz -> 8 kHz survives; 6 kHz (above the new Nyquist) is filtered out */
    size_t len;
    unsigned char *bytes = make_audio(SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000, 1, 1.0, 1000, 0.5, 1, &len);
    ac_audio a;
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_audio_decode(bytes, len, 8000, 0, &a, err), AC_OK, "%s", err);
    cr_expect_eq(a.n, 8000);
    cr_expect_float_eq(rms(a.samples + 100, a.n - 200), 0.5 / sqrt(2), 5e-3);
    ac_audio_free(&a);
    free(bytes);
    bytes = make_audio(SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000, 1, 1.0, 6000, 0.5, 1, &len);
    cr_assert_eq(ac_audio_decode(bytes, len, 8000, 0, &a, err), AC_OK, "%s", err);
    cr_expect_lt(rms(a.samples + 100, a.n - 200), 0.005, "6 kHz aliased into an 8 kHz signal");
    ac_audio_free(&a);
    free(bytes);
}

static void expect_refused(const void *bytes, size_t len, double max_s, ac_status code, const char *needle)
{
    ac_audio a;
    char err[AC_ERR_LEN] = "";
    ac_status st = ac_audio_decode(bytes, len, 16000, max_s, &a, err);
    cr_expect_eq(st, code, "expected %s, got %s (%s)", ac_status_name(code), ac_status_name(st), err);
    cr_expect(strstr(err, needle) != NULL, "message \"%s\" should mention \"%s\"", err, needle);
    cr_expect_null(a.samples);
    cr_expect_eq(a.n, 0);
}

/* A canonical 44-byte PCM WAV header with chosen fields, then `data_bytes` of zeros. */
static unsigned char *wav_header(int channels, int rate, int bits, uint32_t data_bytes, size_t *len)
{
    *len = 44 + data_bytes;
    unsigned char *b = calloc(1, *len);
    uint32_t block = (uint32_t)(channels * bits / 8), byte_rate = (uint32_t)rate * block;
    memcpy(b, "RIFF", 4);
    uint32_t riff = (uint32_t)(*len - 8);
    memcpy(b + 4, &riff, 4);
    memcpy(b + 8, "WAVEfmt ", 8);
    uint32_t fmt_len = 16;
    uint16_t pcm = 1, ch = (uint16_t)channels, bl = (uint16_t)block, bps = (uint16_t)bits;
    uint32_t r = (uint32_t)rate;
    memcpy(b + 16, &fmt_len, 4), memcpy(b + 20, &pcm, 2), memcpy(b + 22, &ch, 2);
    memcpy(b + 24, &r, 4), memcpy(b + 28, &byte_rate, 4), memcpy(b + 32, &bl, 2), memcpy(b + 34, &bps, 2);
    memcpy(b + 36, "data", 4);
    memcpy(b + 40, &data_bytes, 4);
    return b;
}

Test(audio, refuses_bad_input_with_clear_errors)
{
    expect_refused("", 0, 0, AC_ERR_AUDIO_EMPTY, "empty");
    const char *text = "this is definitely not an audio file, just some text";
    expect_refused(text, strlen(text), 0, AC_ERR_BAD_AUDIO, "not a readable audio file");
    size_t len;
    unsigned char *w = wav_header(1, 16000, 16, 0, &len);
    expect_refused(w, len, 0, AC_ERR_AUDIO_EMPTY, "no samples");
    free(w);
    w = wav_header(1000, 16000, 16, 4000, &len);
    expect_refused(w, len, 0, AC_ERR_BAD_AUDIO, "");
    free(w);
    w = wav_header(0, 16000, 16, 4000, &len);
    expect_refused(w, len, 0, AC_ERR_BAD_AUDIO, "");
    free(w);
    w = wav_header(1, 5, 16, 4000, &len);
    expect_refused(w, len, 0, AC_ERR_BAD_AUDIO, "sample rate = 5 Hz");
    free(w);
    w = wav_header(1, 2000000, 16, 4000, &len);
    expect_refused(w, len, 0, AC_ERR_BAD_AUDIO, "sample rate");
    free(w);
    /* a RIFF header cut in the middle of the fmt chunk */
    w = wav_header(1, 16000, 16, 4000, &len);
    expect_refused(w, 30, 0, AC_ERR_BAD_AUDIO, "corrupt or truncated");
    free(w);
}

Test(audio, header_claiming_more_data_than_present_decodes_what_is_there)
{
    size_t len;
    unsigned char *w = wav_header(1, 16000, 16, 3200, &len); /* claims 3200 bytes */
    ac_audio a;
    char err[AC_ERR_LEN];
    ac_status st = ac_audio_decode(w, 44 + 1600, 16000, 0, &a, err); /* only 1600 present */
    cr_expect_eq(st, AC_OK, "%s", err);
    cr_expect_eq(a.n, 800);
    ac_audio_free(&a);
    free(w);
}

Test(audio, corrupted_compressed_streams_never_crash)
{
    int formats[] = {SF_FORMAT_FLAC | SF_FORMAT_PCM_16, SF_FORMAT_OGG | SF_FORMAT_VORBIS,
                     SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
        size_t len;
        unsigned char *bytes = make_audio(formats[f], 16000, 1, 1.0, 440, 0.5, 1, &len);
        for (unsigned k = 0; k < 20; k++) {
            unsigned char *copy = malloc(len);
            memcpy(copy, bytes, len);
            float r[8];
            tu_fill_random(r, 8, k * 7 + (unsigned)f);
            for (int j = 0; j < 8; j++) copy[(size_t)((r[j] + 1) / 2 * (len - 1))] ^= (unsigned char)(1 + k);
            size_t cut = k % 2 ? len : len / (2 + k % 5);
            ac_audio a;
            char err[AC_ERR_LEN];
            ac_status st = ac_audio_decode(copy, cut, 16000, 30, &a, err);
            cr_expect(st == AC_OK || st == AC_ERR_BAD_AUDIO || st == AC_ERR_AUDIO_EMPTY ||
                          st == AC_ERR_UNSUPPORTED_AUDIO || st == AC_ERR_AUDIO_TOO_SHORT,
                      "format %zu corruption %u: unexpected %s", f, k, ac_status_name(st));
            if (st == AC_OK) {
                for (size_t i = 0; i < a.n; i++) cr_assert(isfinite(a.samples[i]) && fabsf(a.samples[i]) <= 1);
            }
            ac_audio_free(&a);
            free(copy);
        }
        free(bytes);
    }
}

Test(audio, too_long_is_refused_early)
{
    size_t len;
    unsigned char *bytes = make_audio(SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 8000, 1, 3.0, 440, 0.5, 1, &len);
    expect_refused(bytes, len, 2.0, AC_ERR_AUDIO_TOO_LONG, "longer than the 2.0 s limit");
    ac_audio a;
    char err[AC_ERR_LEN];
    cr_expect_eq(ac_audio_decode(bytes, len, 16000, 3.5, &a, err), AC_OK, "%s", err);
    ac_audio_free(&a);
    free(bytes);
}

Test(audio, non_finite_float_samples_are_refused)
{
    size_t len;
    unsigned char *bytes = make_audio(SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, 0.1, 440, 0.5, 1, &len);
    float nan = __builtin_nanf("");
    memcpy(bytes + len - 40, &nan, 4); /* a sample near the end of the data chunk */
    expect_refused(bytes, len, 0, AC_ERR_BAD_AUDIO, "not a finite number");
    free(bytes);
}

Test(audio, one_sample_decodes)
{
    size_t len;
    unsigned char *bytes = make_audio(SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 1.0 / 16000, 440, 0.5, 1, &len);
    ac_audio a;
    char err[AC_ERR_LEN];
    cr_expect_eq(ac_audio_decode(bytes, len, 16000, 0, &a, err), AC_OK, "%s", err);
    cr_expect_eq(a.n, 1);
    ac_audio_free(&a);
    /* 1 sample at 16 kHz is less than one sample at 8 kHz after rounding? 0.5 -> rounds to 1 */
    cr_expect_eq(ac_audio_decode(bytes, len, 4000, 0, &a, err), AC_ERR_AUDIO_TOO_SHORT, "%s", err);
    ac_audio_free(&a);
    free(bytes);
}

/* libsndfile 1.2.0 leaks libvorbis's setup for every Ogg Vorbis file whose headers it fails
 * to read; engine/ogg_guard.c refuses those first. Under `make test-asan` a leak here fails. */
Test(audio, truncated_ogg_vorbis_is_refused_without_leaking)
{
    size_t len;
    unsigned char *bytes = make_audio(SF_FORMAT_OGG | SF_FORMAT_VORBIS, 16000, 1, 0.5, 440, 0.5, 1, &len);
    int refused_by_guard = 0;
    for (size_t cut = 64; cut < len; cut += len / 40 + 1) {
        ac_audio a;
        char err[AC_ERR_LEN] = "";
        ac_status st = ac_audio_decode(bytes, cut, 16000, 30, &a, err);
        cr_expect(st == AC_OK || st == AC_ERR_BAD_AUDIO || st == AC_ERR_AUDIO_EMPTY, "cut %zu: %s", cut, err);
        refused_by_guard += strstr(err, "Ogg Vorbis: truncated") != NULL;
        ac_audio_free(&a);
    }
    cr_expect_gt(refused_by_guard, 0, "cuts inside the Vorbis headers are refused by the guard");
    /* two encodes get different random serial numbers: concatenated, a chained stream */
    size_t len2;
    unsigned char *second = make_audio(SF_FORMAT_OGG | SF_FORMAT_VORBIS, 16000, 1, 0.5, 440, 0.5, 1, &len2);
    unsigned char *chained = malloc(len + len2);
    memcpy(chained, bytes, len);
    memcpy(chained + len, second, len2);
    cr_assert_neq(memcmp(bytes + 14, second + 14, 4), 0, "serial numbers should differ");
    ac_audio a;
    char err[AC_ERR_LEN] = "";
    cr_expect_eq(ac_audio_decode(chained, len + len2, 16000, 30, &a, err), AC_ERR_BAD_AUDIO);
    cr_expect(strstr(err, "chained or multiplexed") != NULL, "%s", err);
    free(chained);
    free(second);
    free(bytes);
}

/* Issue 8: a decompression bomb. 30 s of 8-channel 96 kHz FLAC silence is a few hundred kB
 * but 92 MB as interleaved floats; decoding used to hold all of it (at the defaults, 600 s of
 * 32-channel 384 kHz audio would have been 29 GB). Channels are now averaged chunk by chunk:
 * the peak is one mono float per frame (11.5 MB here). */
#include <sys/resource.h>
static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

Test(audio, many_channels_decode_in_mono_sized_memory)
{
    char path[] = "/tmp/ac_test_bomb_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    SF_INFO info = {.samplerate = 96000, .channels = 8, .format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    cr_assert(sf, "sf_open write: %s", sf_strerror(NULL));
    static float block[4096 * 8]; /* silence, written a block at a time */
    for (int i = 0; i < 30 * 96000 / 4096 + 1; i++) sf_writef_float(sf, block, 4096);
    sf_close(sf);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    rewind(f);
    unsigned char *bytes = malloc(len);
    cr_assert_eq(fread(bytes, 1, len, f), len);
    fclose(f);
    unlink(path);
    cr_assert_lt(len, 2u << 20, "the bomb is small: %zu bytes", len);

    long before = peak_rss_kb();
    ac_audio a;
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_audio_decode(bytes, len, 16000, 60, &a, err), AC_OK, "%s", err);
    long grew = peak_rss_kb() - before;
    cr_expect_eq(a.src_channels, 8);
    cr_expect_geq(a.src_frames, 30u * 96000);
    /* interleaved: 92 MB; mono at 96 kHz: 11.5 MB (+ the 16 kHz result, 2 MB) */
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine keeps every freed realloc step resident */
    cr_expect_lt(grew, 40 * 1024, "decoding grew the peak RSS by %ld kB", grew);
#endif
    if (getenv("AC_TEST_VERBOSE")) fprintf(stderr, "peak RSS grew by %ld kB\n", grew);
    ac_audio_free(&a);
    free(bytes);
}

/* Issue 8 (found by tests/fuzz/fuzz_http.c): a first Ogg page with a bad checksum is skipped
 * by libsndfile, which then opens the Vorbis stream on the next page; if that stream's
 * headers are truncated, libsndfile 1.2.0 leaks 5784 bytes. The guard used to stop at the
 * bad page ("not Vorbis") and let it through; it now skips it as libsndfile does. Under
 * `make test-asan` a leak here fails the test. */
Test(audio, ogg_vorbis_behind_a_corrupt_page_is_checked_too)
{
    size_t len;
    unsigned char *v = make_audio(SF_FORMAT_OGG | SF_FORMAT_VORBIS, 16000, 1, 0.5, 440, 0.5, 1, &len);
    /* the first page: 27-byte header + segment table + body */
    size_t page1 = 27 + v[26];
    for (int i = 0; i < v[26]; i++) page1 += v[27 + i];
    cr_assert_lt(page1, len);
    for (size_t cut = page1 + 10; cut < len; cut += len / 20 + 1) {
        unsigned char *x = malloc(page1 + cut);
        memcpy(x, v, page1);
        x[page1 - 1] ^= 0x55; /* body byte changed: the checksum no longer matches */
        memcpy(x + page1, v, cut); /* then the real stream, cut short */
        ac_audio a;
        char err[AC_ERR_LEN] = "";
        ac_status st = ac_audio_decode(x, page1 + cut, 16000, 30, &a, err);
        cr_expect(st == AC_OK || st == AC_ERR_BAD_AUDIO || st == AC_ERR_AUDIO_EMPTY, "cut %zu: %s", cut, err);
        ac_audio_free(&a);
        free(x);
    }
    /* a cut inside the headers is refused by the guard, not handed to libsndfile */
    unsigned char *x = malloc(page1 + page1 + 40);
    memcpy(x, v, page1);
    x[page1 - 1] ^= 0x55;
    memcpy(x + page1, v, page1 + 40);
    ac_audio a;
    char err[AC_ERR_LEN] = "";
    cr_expect_eq(ac_audio_decode(x, page1 + page1 + 40, 16000, 30, &a, err), AC_ERR_BAD_AUDIO);
    cr_expect(strstr(err, "Ogg Vorbis") != NULL, "refused by the guard: %s", err);
    free(x);
    free(v);
}

/* Issue 14 item 1: decoding and resampling are streamed in blocks. 120 s of 384 kHz FLAC
 * silence is a few hundred kB; as mono floats at the source rate it is 184 MB, and the
 * one-shot resampler held that and its output at once (1.9 GB for 599 s). The peak now is
 * the 8 kHz output (3.8 MB) plus fixed blocks and soxr's state. The budget callback sees
 * every growth of the output and can stop the decode. */
static size_t g_reserved;
static ac_status count_reserve(void *user, size_t bytes, char *err)
{
    size_t limit = *(size_t *)user;
    if (bytes > limit) return ac_fail(err, AC_ERR_QUEUE_FULL, "over the test budget of %zu", limit);
    g_reserved = bytes;
    return AC_OK;
}

static unsigned char *flac_silence(int rate, double seconds, size_t *len)
{
    char path[] = "/tmp/ac_test_long_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    SF_INFO info = {.samplerate = rate, .channels = 1, .format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    cr_assert(sf, "sf_open write: %s", sf_strerror(NULL));
    static float block[65536];
    for (long i = 0; i < (long)(seconds * rate / 65536); i++) sf_writef_float(sf, block, 65536);
    sf_close(sf);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *bytes = malloc(*len);
    cr_assert_eq(fread(bytes, 1, *len, f), *len);
    fclose(f);
    unlink(path);
    return bytes;
}

Test(audio, long_high_rate_audio_decodes_in_output_sized_memory, .timeout = 120)
{
    size_t len;
    unsigned char *bytes = flac_silence(384000, 120, &len);
    long before = peak_rss_kb();
    size_t limit = (size_t)64 << 20;
    ac_decode_opts o = {.target_rate = 8000, .max_seconds = 600, .reserve = count_reserve, .user = &limit};
    ac_audio a;
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_audio_decode_opts(bytes, len, &o, &a, err), AC_OK, "%s", err);
    long grew = peak_rss_kb() - before;
    size_t frames = (size_t)(120 * 384000 / 65536) * 65536;
    cr_expect_eq(a.src_frames, frames);
    cr_expect_eq(a.n, (size_t)((double)frames * 8000 / 384000 + 0.5));
    /* the budget saw the whole output, and not much more */
    cr_expect_geq(g_reserved, a.n * sizeof(float));
    cr_expect_leq(g_reserved, a.n * sizeof(float) * 5 / 4 + 65536);
#ifndef __SANITIZE_ADDRESS__
    cr_expect_lt(grew, 24 * 1024, "decoding grew the peak RSS by %ld kB (output %zu kB)", grew,
                 a.n * sizeof(float) / 1024);
#endif
    if (getenv("AC_TEST_VERBOSE")) fprintf(stderr, "peak RSS grew by %ld kB\n", grew);
    ac_audio_free(&a);

    /* a budget smaller than the output stops the decode with the callback's answer */
    limit = 1 << 20;
    cr_expect_eq(ac_audio_decode_opts(bytes, len, &o, &a, err), AC_ERR_QUEUE_FULL);
    cr_expect(strstr(err, "test budget"), "%s", err);
    cr_expect_null(a.samples);
    free(bytes);
}

/* Streaming in blocks gives the samples the one-shot resampler gave (what training used). */
#include <soxr.h>
Test(audio, streamed_resampling_matches_one_shot)
{
    size_t n = 3 * 44100 + 123; /* several blocks and a partial one */
    float *x = malloc(n * sizeof *x);
    tu_fill_random(x, n, 5);
    float *y = NULL;
    size_t ny = 0, want = (size_t)((double)n * 16000 / 44100 + 0.5), done = 0;
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_resample(x, n, 44100, 16000, &y, &ny, err), AC_OK, "%s", err);
    cr_assert_eq(ny, want);
    float *z = calloc(want, sizeof *z);
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1);
    cr_assert_null(soxr_oneshot(44100, 16000, 1, x, n, NULL, z, want, &done, &io, &q, &rt));
    double d = tu_max_abs_diff(y, z, want);
    cr_expect_lt(d, 1e-6, "streamed vs one-shot: max |diff| %g", d);
    free(x), free(y), free(z);
}
