/* fuzz_audio.c - libFuzzer harness: any bytes through the audio front end (decode,
 * downmix, resample). Invariants: a known status, and on success finite samples in [-1, 1]
 * at the source rate (|x| <= 4 after resampling, which rings past full scale on clipped input)
 * at the requested rate; never a crash, leak or hang. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte picks the target rate, as requests for different models would */
    static const int rates[4] = {8000, 16000, 22050, 44100};
    int rate = size ? rates[data[0] & 3] : 16000;
    ac_audio a;
    char err[AC_ERR_LEN];
    ac_status st = ac_audio_decode(data, size, rate, 30.0, &a, err);
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
