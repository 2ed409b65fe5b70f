/* test_formats.c - what uploads the service reads beyond libsndfile: raw PCM by Content-Type
 * (media_type.h, audio_raw.h), WebM/Matroska and MP4/M4A (audio_av.h), the names results
 * give formats, the minimum duration per model, and the error codes openapi.json lists. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http_status.h"
#include "media_type.h"
#include "min_duration.h"
#include "testutil.h"

/* --- Content-Type -> how the body is read --- */

Test(media_type, raw_pcm_parameters)
{
    media_info mi;
    cr_assert_eq(media_parse("audio/L16; rate=16000; channels=2", &mi), MEDIA_PCM);
    cr_assert(mi.pcm.rate == 16000 && mi.pcm.channels == 2 && mi.pcm.big_endian == 1);
    cr_assert_eq(media_parse("AUDIO/l16;rate=\"8000\"", &mi), MEDIA_PCM, "case and quotes");
    cr_assert(mi.pcm.rate == 8000 && mi.pcm.channels == 1, "channels default to 1");
    cr_assert_eq(media_parse("audio/pcm;rate=44100;format=s16le", &mi), MEDIA_PCM);
    cr_assert(mi.pcm.rate == 44100 && mi.pcm.big_endian == 0, "audio/pcm is little-endian");
    cr_assert_eq(media_parse("audio/x-pcm; channels=1; rate=22050", &mi), MEDIA_PCM);
    cr_assert_eq(media_parse("audio/L16", &mi), MEDIA_BAD_PCM, "RFC 2586: rate is required");
    cr_assert(strstr(mi.why, "rate"), "%s", mi.why);
    cr_assert_eq(media_parse("audio/L16;rate=12k", &mi), MEDIA_BAD_PCM);
    cr_assert_eq(media_parse("audio/L16;rate=100", &mi), MEDIA_BAD_PCM, "below the lowest rate");
    cr_assert_eq(media_parse("audio/L16;rate=16000;channels=0", &mi), MEDIA_BAD_PCM);
    cr_assert_eq(media_parse("audio/L16;rate=16000;channels=99", &mi), MEDIA_BAD_PCM);
    cr_assert_eq(media_parse("audio/pcm;rate=16000;format=f32le", &mi), MEDIA_BAD_PCM);
    cr_assert_eq(media_parse("audio/L16x;rate=16000", &mi), MEDIA_RAW_AUDIO, "another audio/* type");
    cr_assert_eq(media_parse("audio/wav; rate=16000", &mi), MEDIA_RAW_AUDIO, "a header says the rest");
}

/* --- raw PCM decoding --- */

static const short k_pcm[] = {0, 16384, -16384, 32767, -32768, 1000, -1000, 0};

Test(audio_raw, both_byte_orders_decode_to_the_same_samples)
{
    unsigned char be[sizeof k_pcm], le[sizeof k_pcm];
    for (size_t i = 0; i < sizeof k_pcm / 2; i++) {
        unsigned short v = (unsigned short)k_pcm[i];
        be[2 * i] = (unsigned char)(v >> 8), be[2 * i + 1] = (unsigned char)v;
        le[2 * i] = (unsigned char)v, le[2 * i + 1] = (unsigned char)(v >> 8);
    }
    ac_pcm_format fb = {.rate = 8000, .channels = 1, .big_endian = 1}, fl = fb;
    fl.big_endian = 0;
    ac_audio a, b;
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_audio_decode_pcm(be, sizeof be, &fb, 0, 0, &a, err), AC_OK, "%s", err);
    cr_assert_eq(ac_audio_decode_pcm(le, sizeof le, &fl, 0, 0, &b, err), AC_OK, "%s", err);
    cr_assert_eq(a.n, sizeof k_pcm / 2);
    cr_assert_eq(a.src_rate, 8000);
    for (size_t i = 0; i < a.n; i++) {
        cr_assert_float_eq(a.samples[i], k_pcm[i] / 32768.0f, 1e-6, "sample %zu", i);
        cr_assert_float_eq(b.samples[i], a.samples[i], 1e-7, "sample %zu", i);
    }
    cr_assert_str_eq(a.container, "raw PCM");
    ac_audio_free(&a);
    ac_audio_free(&b);
}

Test(audio_raw, stereo_downmix_resample_and_refusals)
{
    short st[2 * 800];
    for (int i = 0; i < 800; i++) st[2 * i] = 8000, st[2 * i + 1] = -4000; /* mean 2000 */
    ac_pcm_format f = {.rate = 8000, .channels = 2, .big_endian = 0};
    ac_audio a;
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_audio_decode_pcm(st, sizeof st, &f, 16000, 0, &a, err), AC_OK, "%s", err);
    cr_assert_eq(a.n, 1600, "resampled to 16 kHz");
    cr_assert_eq(a.src_channels, 2);
    cr_assert_float_eq(a.samples[800], 2000 / 32768.0f, 1e-3);
    ac_audio_free(&a);
    cr_assert_eq(ac_audio_decode_pcm(st, 3, &f, 0, 0, &a, err), AC_ERR_BAD_AUDIO, "half a frame");
    cr_assert(strstr(err, "whole number"), "%s", err);
    cr_assert_eq(ac_audio_decode_pcm(st, 0, &f, 0, 0, &a, err), AC_ERR_AUDIO_EMPTY);
    cr_assert_eq(ac_audio_decode_pcm(st, sizeof st, &f, 0, 0.05, &a, err), AC_ERR_AUDIO_TOO_LONG,
                 "the duration limit holds for raw PCM too");
    f.rate = 10;
    cr_assert_eq(ac_audio_decode_pcm(st, sizeof st, &f, 0, 0, &a, err), AC_ERR_INVALID_ARG);
    cr_assert_null(a.samples);
}

/* --- WebM/Matroska and MP4/M4A through libavformat --- */

static unsigned char *slurp(const char *rel, size_t *len)
{
    FILE *f = fopen(tu_src_path(rel), "rb");
    cr_assert_not_null(f, "%s", rel);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Correlation of the first n samples of a and b. */
static double correlation(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
    return ab / sqrt(aa * bb + 1e-30);
}

/* Best correlation within +-lag samples (codecs add a small delay). */
static double best_correlation(const ac_audio *a, const ac_audio *ref, int lag)
{
    double best = -1;
    size_t n = (a->n < ref->n ? a->n : ref->n) - (size_t)lag;
    for (int d = -lag; d <= lag; d++) {
        double c = d >= 0 ? correlation(a->samples + d, ref->samples, n) : correlation(a->samples, ref->samples - d, n);
        if (c > best) best = c;
    }
    return best;
}

Test(audio_av, webm_opus_and_m4a_aac_decode_like_the_flac_they_came_from)
{
    char err[AC_ERR_LEN];
    ac_audio ref;
    cr_assert_eq(ac_audio_decode_file(tu_src_path("examples/yes.flac"), 16000, 0, &ref, err), AC_OK, "%s", err);
    const struct { const char *file, *format, *encoding; } k[] = {
        {"tests/fixtures/yes.webm", "WebM/Opus", "Opus"},
        {"tests/fixtures/yes.m4a", "M4A/AAC", "AAC"},
    };
    for (size_t i = 0; i < 2; i++) {
        size_t len;
        unsigned char *b = slurp(k[i].file, &len);
        ac_audio a;
        cr_assert_eq(ac_audio_decode(b, len, 16000, 600, &a, err), AC_OK, "%s: %s", k[i].file, err);
        cr_assert_str_eq(a.container, k[i].format);
        cr_assert_str_eq(a.encoding, k[i].encoding);
        cr_assert(a.src_channels == 1 && a.rate == 16000);
        double secs = (double)a.src_frames / a.src_rate;
        cr_assert(secs > 0.95 && secs < 1.1, "%s: %.3f s", k[i].file, secs);
        double c = best_correlation(&a, &ref, 1200);
        cr_assert(c > 0.8, "%s: correlation with the FLAC %.3f", k[i].file, c);
        ac_audio_free(&a);
        /* the same limits as every format: a cap on seconds, and truncation is an error */
        cr_assert_eq(ac_audio_decode(b, len, 16000, 0.5, &a, err), AC_ERR_AUDIO_TOO_LONG, "%s", k[i].file);
        ac_status st = ac_audio_decode(b, len / 3, 16000, 600, &a, err);
        cr_assert(st == AC_ERR_BAD_AUDIO || st == AC_OK, "%s cut short: %s", k[i].file, ac_status_name(st));
        ac_audio_free(&a);
        cr_assert_eq(ac_audio_decode(b, 40, 16000, 600, &a, err), AC_ERR_BAD_AUDIO, "%s: header only",
                     k[i].file);
        free(b);
    }
    ac_audio_free(&ref);
}

Test(audio_av, stereo_vorbis_alac_and_what_is_refused)
{
    char err[AC_ERR_LEN];
    ac_audio a;
    cr_assert_eq(ac_audio_decode_file(tu_src_path("tests/fixtures/tone-stereo.mka"), 0, 0, &a, err), AC_OK, "%s", err);
    cr_assert_str_eq(a.container, "Matroska/Vorbis");
    cr_assert(a.src_channels == 2 && a.src_rate == 44100);
    ac_audio_free(&a);
    cr_assert_eq(ac_audio_decode_file(tu_src_path("tests/fixtures/tone-alac.m4a"), 8000, 0, &a, err), AC_OK, "%s", err);
    cr_assert_str_eq(a.container, "M4A/ALAC");
    cr_assert(a.src_rate == 22050 && a.rate == 8000 && a.n > 3900 && a.n < 4100);
    ac_audio_free(&a);
    cr_assert_eq(ac_audio_decode_file(tu_src_path("tests/fixtures/video-only.webm"), 0, 0, &a, err),
                 AC_ERR_BAD_AUDIO);
    cr_assert(strstr(err, "without an audio stream"), "%s", err);
    cr_assert_eq(ac_audio_decode_file(tu_src_path("tests/fixtures/pcm-in.mka"), 0, 0, &a, err),
                 AC_ERR_UNSUPPORTED_AUDIO, "a decoder outside the allowed list");
    cr_assert(strstr(err, "Opus") && strstr(err, "AAC"), "the message lists what is read: %s", err);
}

/* --- names in results --- */

/* Writes a short tone in `format` to memory through libsndfile's virtual I/O. */
typedef struct membuf { unsigned char *d; sf_count_t len, pos, cap; } membuf;
static sf_count_t m_len(void *u) { return ((membuf *)u)->len; }
static sf_count_t m_tell(void *u) { return ((membuf *)u)->pos; }
static sf_count_t m_seek(sf_count_t o, int w, void *u)
{
    membuf *m = u;
    m->pos = (w == SEEK_SET ? 0 : w == SEEK_CUR ? m->pos : m->len) + o;
    return m->pos;
}
static sf_count_t m_read(void *p, sf_count_t n, void *u)
{
    membuf *m = u;
    if (n > m->len - m->pos) n = m->len - m->pos;
    memcpy(p, m->d + m->pos, (size_t)n);
    m->pos += n;
    return n;
}
static sf_count_t m_write(const void *p, sf_count_t n, void *u)
{
    membuf *m = u;
    if (m->pos + n > m->cap) {
        m->cap = (m->pos + n) * 2;
        m->d = realloc(m->d, (size_t)m->cap);
    }
    memcpy(m->d + m->pos, p, (size_t)n);
    m->pos += n;
    if (m->pos > m->len) m->len = m->pos;
    return n;
}

static void format_name_of(int format, const char *want)
{
    membuf m = {0};
    SF_VIRTUAL_IO vio = {m_len, m_seek, m_read, m_write, m_tell};
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = format};
    SNDFILE *sf = sf_open_virtual(&vio, SFM_WRITE, &info, &m);
    cr_assert_not_null(sf, "%s: %s", want, sf_strerror(NULL));
    float x[4000];
    for (int i = 0; i < 4000; i++) x[i] = 0.3f * sinf(i * 0.2f);
    sf_write_float(sf, x, 4000);
    sf_close(sf);
    ac_audio a;
    char err[AC_ERR_LEN];
    cr_assert_eq(ac_audio_decode(m.d, (size_t)m.len, 0, 0, &a, err), AC_OK, "%s: %s", want, err);
    cr_assert_str_eq(a.container, want);
    ac_audio_free(&a);
    free(m.d);
}

Test(audio_names, human_format_names)
{
    format_name_of(SF_FORMAT_WAV | SF_FORMAT_PCM_16, "WAV");
    format_name_of(SF_FORMAT_FLAC | SF_FORMAT_PCM_16, "FLAC");
    format_name_of(SF_FORMAT_OGG | SF_FORMAT_VORBIS, "Ogg Vorbis");
    format_name_of(SF_FORMAT_OGG | SF_FORMAT_OPUS, "Ogg Opus");
    format_name_of(SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, "MP3");
    format_name_of(SF_FORMAT_AIFF | SF_FORMAT_PCM_16, "AIFF");
}

/* --- minimum duration --- */

Test(min_duration, from_the_window_or_the_metadata)
{
    char err[AC_ERR_LEN];
    ac_model *m;
    cr_assert_eq(ac_model_load(tu_src_path("models/m5-speech.safetensors"), &m, err), AC_OK, "%s", err);
    const ac_model_info *in = ac_model_get_info(m);
    double min = ac_min_duration_s(m);
    cr_assert_float_eq(min, AC_MIN_DURATION_WINDOW_FRACTION * in->window / in->sample_rate, 1e-12);
    cr_assert(min > 0.05 && min < 0.5, "%g s", min);
    cr_assert_eq(ac_check_min_duration(m, 3.0 / 16000, err), AC_ERR_AUDIO_TOO_SHORT, "3 samples");
    cr_assert(strstr(err, "m5-speech needs at least"), "%s", err);
    cr_assert_eq(ac_check_min_duration(m, min, err), AC_OK);
    cr_assert_eq(ac_check_min_duration(m, 1.0, err), AC_OK);
    ac_model_free(m);

    /* a model file may set its own minimum: the same file with the key added */
    size_t len;
    unsigned char *file = slurp("models/m5-speech.safetensors", &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | file[i];
    json_error_t je;
    json_t *head = json_loadb((const char *)file + 8, (size_t)hlen, 0, &je);
    cr_assert_not_null(head, "%s", je.text);
    json_object_set_new(json_object_get(head, "__metadata__"), AC_META_MIN_DURATION, json_string("0.5"));
    char *h = json_dumps(head, JSON_COMPACT);
    size_t nh = (strlen(h) + 7) / 8 * 8, nlen = 8 + nh + (len - 8 - (size_t)hlen);
    unsigned char *out = malloc(nlen);
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)nh >> (8 * i));
    memset(out + 8, ' ', nh);
    memcpy(out + 8, h, strlen(h));
    memcpy(out + 8 + nh, file + 8 + hlen, len - 8 - (size_t)hlen);
    ac_status st = ac_model_load_memory(out, nlen, "m5-min", &m, err);
    free(out), free(h), free(file), json_decref(head);
    cr_assert_eq(st, AC_OK, "%s", err);
    cr_assert_float_eq(ac_min_duration_s(m), 0.5, 1e-12);
    cr_assert_eq(ac_check_min_duration(m, 0.4, err), AC_ERR_AUDIO_TOO_SHORT);
    cr_assert_eq(ac_check_min_duration(m, 0.5, err), AC_OK);
    ac_model_free(m);
}

/* --- openapi.json lists every error code the server can send --- */

Test(openapi, error_codes_are_all_documented)
{
    json_error_t je;
    json_t *doc = json_load_file(tu_src_path("server/http/openapi.json"), 0, &je);
    cr_assert_not_null(doc, "%s", je.text);
    json_t *e = json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "Error");
    json_t *list = json_object_get(json_object_get(json_object_get(json_object_get(
        json_object_get(e, "properties"), "error"), "properties"), "code"), "enum");
    cr_assert(json_is_array(list));
    int n = 0;
    for (int s = AC_OK + 1; s < AC_STATUS_COUNT; s++, n++) {
        const char *name = hs_from_status((ac_status)s).code;
        int found = 0;
        for (size_t i = 0; i < json_array_size(list); i++)
            found |= !strcmp(json_string_value(json_array_get(list, i)), name);
        cr_assert(found, "status code %s is not in openapi.json", name);
    }
    for (int h = 0; h < HS_ERROR_COUNT; h++, n++) {
        const char *name = hs_from_error((hs_error)h).code;
        int found = 0;
        for (size_t i = 0; i < json_array_size(list); i++)
            found |= !strcmp(json_string_value(json_array_get(list, i)), name);
        cr_assert(found, "error code %s is not in openapi.json", name);
    }
    cr_assert_null(json_object_get(doc, "security"), "authentication is off by default");
    cr_assert_not_null(json_object_get(json_object_get(doc, "info"), "license"));
    json_decref(doc);
}
