/* audio_names.c - human names of libsndfile's file types (see audio_names.h). */
#include "audio_names.h"

#include <sndfile.h>
#include <stdio.h>

void ac_audio_sf_format_name(int sf_format, char *out, size_t cap)
{
    int sub = sf_format & SF_FORMAT_SUBMASK;
    const char *name = NULL;
    switch (sf_format & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV: name = "WAV"; break;
    case SF_FORMAT_WAVEX: name = "WAV"; break;
    case SF_FORMAT_RF64: name = "RF64 (WAV)"; break;
    case SF_FORMAT_W64: name = "Wave64"; break;
    case SF_FORMAT_AIFF: name = "AIFF"; break;
    case SF_FORMAT_AU: name = "AU"; break;
    case SF_FORMAT_CAF: name = "CAF"; break;
    case SF_FORMAT_FLAC: name = "FLAC"; break;
    case SF_FORMAT_OGG:
        name = sub == SF_FORMAT_VORBIS ? "Ogg Vorbis" : sub == SF_FORMAT_OPUS ? "Ogg Opus"
             : "Ogg";
        break;
    case SF_FORMAT_MPEG:
        name = sub == SF_FORMAT_MPEG_LAYER_I ? "MP1" : sub == SF_FORMAT_MPEG_LAYER_II ? "MP2" : "MP3";
        break;
    case SF_FORMAT_RAW: name = "raw"; break;
    case SF_FORMAT_PAF: name = "PAF"; break;
    case SF_FORMAT_SVX: name = "8SVX"; break;
    case SF_FORMAT_NIST: name = "NIST SPHERE"; break;
    case SF_FORMAT_VOC: name = "VOC"; break;
    case SF_FORMAT_IRCAM: name = "IRCAM"; break;
    case SF_FORMAT_MAT4: name = "MATLAB 4"; break;
    case SF_FORMAT_MAT5: name = "MATLAB 5"; break;
    case SF_FORMAT_PVF: name = "PVF"; break;
    case SF_FORMAT_XI: name = "XI"; break;
    case SF_FORMAT_HTK: name = "HTK"; break;
    case SF_FORMAT_SDS: name = "SDS"; break;
    case SF_FORMAT_AVR: name = "AVR"; break;
    case SF_FORMAT_SD2: name = "Sound Designer II"; break;
    case SF_FORMAT_WVE: name = "WVE"; break;
    case SF_FORMAT_MPC2K: name = "MPC2000"; break;
    default: break;
    }
    if (name) {
        snprintf(out, cap, "%s", name);
        return;
    }
    /* A type added to libsndfile after this table: its own description. */
    SF_FORMAT_INFO fi = {.format = sf_format & SF_FORMAT_TYPEMASK};
    snprintf(out, cap, "%s",
             sf_command(NULL, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name ? fi.name : "unknown");
}
