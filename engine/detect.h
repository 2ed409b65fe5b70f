/* detect.h - the event rule: a label that is not background stays on top, above a
 * threshold, for a run of answers. One rule for live streams (server /stream, `audioclass
 * stream`) and for the windows of a whole recording (/classify?events=1), so a recording
 * gives the events a live stream of it would.
 *
 * A run starts when a non-background label is on top with probability >= threshold, and
 * goes on while that label stays on top with probability >= threshold / 2 (the release
 * level: a word whose score dips for a moment is still one word). When min_hops answers of
 * the run have reached the threshold, one event fires: the label, t_start_s = the start of
 * the run's first answer's span, t_end_s = the end of the answer that completed it, score =
 * the highest probability in the run so far. A run fires once; the next event needs a new
 * run (another label on top, or the score below the release level first).
 *
 * Defaults come from the model file's metadata "stream" (models/FORMAT.md): {"threshold",
 * "min_hops", "background": [labels], "hop"}; without it, threshold 0.5, min_hops 2,
 * background _silence_ and _unknown_ (those present). A detector is plain state owned by
 * its caller; one thread at a time.
 */
#ifndef AC_DETECT_H
#define AC_DETECT_H

#include "model.h"

#define AC_MAX_LABELS 1024

typedef struct ac_detect_params {
    float threshold;         /* 0 < threshold <= 1 */
    int min_hops;            /* >= 1 */
    int hop;                 /* the model's suggested stream hop, samples (0: none given) */
    unsigned char background[AC_MAX_LABELS]; /* 1: never an event */
} ac_detect_params;

typedef struct ac_event {
    int label;
    double t_start_s, t_end_s;
    float score;
} ac_event;

typedef struct ac_detector {
    ac_detect_params p;
    int n_labels;
    int run_label;           /* -1: no run */
    int run_len;             /* answers of the run at or above the threshold */
    int fired;
    double run_start_s;
    float run_best;
} ac_detector;

/* The model's defaults (metadata "stream", or the built-in ones), as parsed at load: a
 * copy, AC_OK for every loaded model. */
ac_status ac_detect_defaults(const ac_model *m, ac_detect_params *out, char *err);
/* For the loader (model.c): parses and checks the metadata; AC_ERR_BAD_MODEL when it is
 * malformed (err names the field). */
ac_status ac_detect_parse(const ac_model *m, ac_detect_params *out, char *err);
void ac_detector_init(ac_detector *d, const ac_detect_params *p, int n_labels);
/* One answer, covering [t_start_s, t_end_s]: returns 1 and fills *ev when it completes a run. */
int ac_detector_feed(ac_detector *d, const float *probs, double t_start_s, double t_end_s, ac_event *ev);

#endif
