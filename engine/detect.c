/* detect.c - the event rule (detect.h). */
#include "detect.h"

#include "model_internal.h"

#include <jansson.h>
#include <string.h>

static void mark(const ac_model_info *in, unsigned char *bg, const char *label)
{
    for (int i = 0; i < in->n_labels && i < AC_MAX_LABELS; i++)
        if (!strcmp(in->labels[i], label)) bg[i] = 1;
}

ac_status ac_detect_defaults(const ac_model *m, ac_detect_params *out, char *err)
{
    (void)err; /* parsed and checked when the model was loaded */
    *out = m->detect;
    return AC_OK;
}

ac_status ac_detect_parse(const ac_model *m, ac_detect_params *out, char *err)
{
    const ac_model_info *in = ac_model_get_info(m);
    memset(out, 0, sizeof *out);
    out->threshold = 0.5f, out->min_hops = 2;
    mark(in, out->background, "_silence_");
    mark(in, out->background, "_unknown_");
    const char *s = ac_model_meta(m, "stream");
    if (!s) return AC_OK;
    json_error_t je;
    json_t *o = json_loads(s, 0, &je), *v;
    ac_status st = AC_OK;
    if (!json_is_object(o)) {
        st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"stream\" is not a JSON object");
        goto out;
    }
    if ((v = json_object_get(o, "threshold"))) {
        double t = json_number_value(v);
        if (!json_is_number(v) || !(t > 0 && t <= 1)) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"stream\": \"threshold\" must be in (0, 1]");
            goto out;
        }
        out->threshold = (float)t;
    }
    if ((v = json_object_get(o, "min_hops"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"stream\": \"min_hops\" must be 1..1000");
            goto out;
        }
        out->min_hops = (int)json_integer_value(v);
    }
    if ((v = json_object_get(o, "hop"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > (1 << 24)) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"stream\": \"hop\" must be a positive number of samples");
            goto out;
        }
        out->hop = (int)json_integer_value(v);
    }
    if ((v = json_object_get(o, "background"))) {
        size_t i;
        json_t *e;
        if (!json_is_array(v)) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"stream\": \"background\" must be a list of labels");
            goto out;
        }
        json_array_foreach(v, i, e) {
            int found = 0;
            for (int k = 0; json_is_string(e) && k < in->n_labels; k++)
                found |= !strcmp(in->labels[k], json_string_value(e));
            if (!found) {
                st = ac_fail(err, AC_ERR_BAD_MODEL, "metadata \"stream\": background label %s is not a label",
                             json_is_string(e) ? json_string_value(e) : "(not a string)");
                goto out;
            }
            mark(in, out->background, json_string_value(e));
        }
    }
out:
    json_decref(o);
    return st;
}

void ac_detector_init(ac_detector *d, const ac_detect_params *p, int n_labels)
{
    memset(d, 0, sizeof *d);
    d->p = *p;
    d->n_labels = n_labels;
    d->run_label = -1;
}

int ac_detector_feed(ac_detector *d, const float *probs, double t_start_s, double t_end_s, ac_event *ev)
{
    int best = 0;
    for (int i = 1; i < d->n_labels; i++)
        if (probs[i] > probs[best]) best = i;
    const float p = probs[best], on = d->p.threshold, off = d->p.threshold * 0.5f;
    const int eligible = best < AC_MAX_LABELS && !d->p.background[best];
    if (!(eligible && best == d->run_label && p >= off)) { /* the run (if any) is over */
        d->run_label = -1;
        if (!eligible || p < on) return 0;
        d->run_label = best, d->run_len = 0, d->run_start_s = t_start_s, d->run_best = 0, d->fired = 0;
    }
    if (p >= on) d->run_len++;
    if (p > d->run_best) d->run_best = p;
    if (d->fired || d->run_len < d->p.min_hops) return 0;
    d->fired = 1;
    ev->label = best, ev->t_start_s = d->run_start_s, ev->t_end_s = t_end_s, ev->score = d->run_best;
    return 1;
}
