/* filters.h - what the first layers learned: frequency responses of conv filters.
 *
 * Two analyses of a conv layer (named as in the file, e.g. "conv1"; NULL = the first):
 *  - AC_FILTERS_KERNEL: magnitude response of each kernel (zero-padded DFT) at n_freqs
 *    frequencies linearly spaced from 0 Hz to Nyquist. Only for a layer that sees the
 *    raw waveform (one input channel per group, a 1-D kernel over time).
 *  - AC_FILTERS_PROBE: the network up to and including that layer (with its folded batch
 *    norm and fused ReLU) is fed pure sine tones at n_freqs frequencies log-spaced from
 *    10 Hz to just below Nyquist; each channel's output is averaged over time. This is
 *    how EnvNet's authors showed their learned filterbank, and it works for any depth.
 * Kernels are the ones the network applies: batch norm folded in.
 *
 * Ownership: the result belongs to the caller (ac_filterbank_free). The computation is
 * read-only on the model; probe mode runs forward passes in its own workspace with
 * `threads` OpenMP threads, so call it where parallel regions may start.
 */
#ifndef AC_FILTERS_H
#define AC_FILTERS_H

#include "model.h"
#include "status.h"

#define AC_FILTERS_MIN_FREQS 8
#define AC_FILTERS_MAX_FREQS 4096
#define AC_FILTERS_DEFAULT_FREQS 256
#define AC_FILTERS_FLOOR_DB (-120.0) /* responses are clamped here (silent channels) */

typedef enum ac_filters_mode { AC_FILTERS_KERNEL, AC_FILTERS_PROBE } ac_filters_mode;

typedef struct ac_filter {
    int index;              /* channel index in the layer */
    int dead;               /* no response at any frequency (e.g. a ReLU that never fires) */
    double centre_hz;       /* frequency of the peak response */
    double low_hz, high_hz; /* -3 dB edges around the peak (interpolated) */
    double bandwidth_hz;    /* high_hz - low_hz */
    double peak_db;         /* peak gain: 20 log10 |H| (kernel) or of mean output / tone amplitude (probe) */
    float *response_db;     /* [n_freqs], in dB relative to unit gain */
} ac_filter;

typedef struct ac_filterbank {
    char layer[AC_NAME_LEN];
    int layer_index;        /* executed step (ac_model_layer_info) */
    ac_filters_mode mode;
    int sample_rate;
    int n_freqs;
    double *freqs_hz;       /* [n_freqs], ascending */
    int n_filters;
    ac_filter *filters;     /* [n_filters], sorted by centre_hz (dead ones last) */
    /* summary over live filters */
    int n_dead;
    double mel_correlation;    /* Pearson r of sorted centres vs mel-spaced centres */
    double linear_correlation; /* the same against linearly spaced centres */
    double coverage_low_hz, coverage_high_hz; /* lowest low edge, highest high edge */
    double coverage_fraction;  /* share of analysed frequencies inside some filter's -3 dB band */
} ac_filterbank;

const char *ac_filters_mode_name(ac_filters_mode m);
/* "kernel" / "probe" -> mode; -1 if unknown. */
int ac_filters_mode_parse(const char *s);

/* Computes the analysis. Errors: AC_ERR_NOT_FOUND (no conv layer of that name; the message
 * lists the names), AC_ERR_INVALID_ARG (n_freqs out of range, kernel mode on a layer that
 * does not see raw audio), AC_ERR_NOMEM. */
ac_status ac_filters_compute(const ac_model *m, const char *layer, ac_filters_mode mode, int n_freqs,
                             int threads, ac_filterbank **out, char *err);
void ac_filterbank_free(ac_filterbank *fb); /* NULL is a no-op */

/* Hz <-> mel (HTK formula: 2595 log10(1 + f/700)). */
double ac_hz_to_mel(double hz);
double ac_mel_to_hz(double mel);

#endif
