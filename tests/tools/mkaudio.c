/* mkaudio.c - writes small deterministic audio fixtures with libsndfile for the HTTP tests.
 *
 * usage: mkaudio OUT KIND RATE CHANNELS SECONDS [SIGNAL [FREQ_OR_SEED]]
 *   KIND    wav16 | wav8 (unsigned 8-bit) | wav24 | wavf (float) | flac | ogg (Vorbis) |
 *           opus | mp3 (MPEG Layer III) | aiff
 *   SIGNAL  tone (FREQ Hz, default 440) | noise (seed, default 1) | silence
 * Each channel gets the signal at a slightly different amplitude, so a downmix is not a
 * copy of one channel. SECONDS may be 0 (a valid file with no frames). */
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int format_of(const char *kind)
{
    static const struct { const char *name; int fmt; } k[] = {
        {"wav16", SF_FORMAT_WAV | SF_FORMAT_PCM_16}, {"wav8", SF_FORMAT_WAV | SF_FORMAT_PCM_U8},
        {"wav24", SF_FORMAT_WAV | SF_FORMAT_PCM_24}, {"wavf", SF_FORMAT_WAV | SF_FORMAT_FLOAT},
        {"flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16}, {"ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS},
        {"opus", SF_FORMAT_OGG | SF_FORMAT_OPUS},
        {"mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III},
        {"aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16},
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        if (!strcmp(kind, k[i].name)) return k[i].fmt;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: mkaudio OUT KIND RATE CHANNELS SECONDS [tone|noise|silence [ARG]]\n");
        return 2;
    }
    SF_INFO info = {0};
    info.format = format_of(argv[2]);
    info.samplerate = atoi(argv[3]);
    info.channels = atoi(argv[4]);
    double seconds = atof(argv[5]);
    const char *signal = argc > 6 ? argv[6] : "tone";
    double arg = argc > 7 ? atof(argv[7]) : (strcmp(signal, "tone") ? 1 : 440);
    if (!info.format || info.samplerate <= 0 || info.channels <= 0 || seconds < 0) {
        fprintf(stderr, "mkaudio: bad arguments\n");
        return 2;
    }
    SNDFILE *f = sf_open(argv[1], SFM_WRITE, &info);
    if (!f) {
        fprintf(stderr, "mkaudio: %s: %s\n", argv[1], sf_strerror(NULL));
        return 1;
    }
    sf_count_t frames = (sf_count_t)llround(seconds * info.samplerate);
    float *buf = malloc((size_t)(frames ? frames : 1) * (size_t)info.channels * sizeof *buf);
    if (!buf) return 1;
    unsigned long long s = (unsigned long long)arg * 6364136223846793005ull + 1442695040888963407ull;
    for (sf_count_t i = 0; i < frames; i++) {
        double v = 0;
        if (!strcmp(signal, "tone")) {
            v = 0.5 * sin(2 * M_PI * arg * (double)i / info.samplerate);
        } else if (!strcmp(signal, "noise")) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            v = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.8;
        }
        for (int c = 0; c < info.channels; c++) buf[i * info.channels + c] = (float)(v * (1.0 - 0.2 * c));
    }
    if (frames && sf_writef_float(f, buf, frames) != frames) {
        fprintf(stderr, "mkaudio: %s: %s\n", argv[1], sf_strerror(f));
        return 1;
    }
    free(buf);
    return sf_close(f) ? 1 : 0;
}
