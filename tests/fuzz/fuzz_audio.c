/* fuzz_audio.c - libFuzzer harness: any bytes through the audio front end (decode,
 * downmix, resample): libsndfile, the libavformat fallback (WebM/Matroska, MP4/M4A seeds in
 * the corpus) and, when the first byte says so, headerless PCM (audio/L16, audio/pcm).
 * Invariants: a known status, and on success finite samples in [-1, 1] at the source rate
 * (|x| <= 4 after resampling, which rings past full scale on clipped input) at the requested
 * rate; never a crash, leak or hang. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "audio_raw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte picks the target rate, as requests for different models would. Seeds
     * are whole files, so the byte is part of the file: a file's first byte ('R', 'f', 'O',
     * 0x1a...) then also decides, through bit 7 (clear in every container's magic), whether
     * the rest is taken as raw PCM with byte order and channels from bits 2-6. */
    static const int rates[4] = {8000, 16000, 22050, 44100};
    int rate = size ? rates[data[0] & 3] : 16000;
    ac_audio a;
    char err[AC_ERR_LEN];
    ac_status st;
    if (size && (data[0] & 0x80)) {
        ac_pcm_format f = {.rate = rates[(data[0] >> 2) & 3], .channels = 1 + ((data[0] >> 4) & 3),
                           .big_endian = (data[0] >> 6) & 1};
        st = ac_audio_decode_pcm(data + 1, size - 1, &f, rate, 30.0, &a, err);
    } else {
        st = ac_audio_decode(data, size, rate, 30.0, &a, err);
    }
    if (st == AC_OK) {
        if (a.rate != rate || a.n == 0 || !a.samples) abort();
        for (size_t i = 0; i < a.n; i++)
            if (!isfinite(a.samples[i]) || fabsf(a.samples[i]) > (a.src_rate == rate ? 1.f : 4.f)) abort();
    } else if (st >= AC_STATUS_COUNT || a.samples) {
        abort();
    }
    ac_audio_free(&a);
    return 0;
}
