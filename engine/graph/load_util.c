/* load_util.c - JSON field readers and tensor lookups for the graph loader. */
#include "load_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lu_fail(parse_ctx *c, ac_status code, const char *fmt, ...)
{
    char msg[AC_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->status = ac_fail(c->err, code, "%s: %s", c->where, msg);
    return -1;
}

int lu_int(parse_ctx *c, json_t *obj, const char *key, int dflt, int required, int lo, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required) return lu_fail(c, AC_ERR_BAD_MODEL, "missing field \"%s\"", key);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > (1 << 28))
        return lu_fail(c, AC_ERR_BAD_MODEL, "\"%s\" must be an integer >= %d", key, lo);
    *out = (int)json_integer_value(v);
    return 0;
}

int lu_ints(parse_ctx *c, json_t *obj, const char *key, int n, int dflt, int required, int lo,
            int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_integer(v)) {
        int x = 0;
        if (lu_int(c, obj, key, dflt, required, lo, &x)) return -1;
        for (int i = 0; i < n; i++) out[i] = x;
        return 0;
    }
    if (!json_is_array(v) || (int)json_array_size(v) != n)
        return lu_fail(c, AC_ERR_BAD_MODEL, "\"%s\" must be an integer or a list of %d", key, n);
    for (int i = 0; i < n; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < lo || json_integer_value(e) > (1 << 28))
            return lu_fail(c, AC_ERR_BAD_MODEL, "\"%s\"[%d] must be an integer >= %d", key, i, lo);
        out[i] = (int)json_integer_value(e);
    }
    return 0;
}

int lu_bool(parse_ctx *c, json_t *obj, const char *key, int dflt, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (v && !json_is_boolean(v))
        return lu_fail(c, AC_ERR_BAD_MODEL, "\"%s\" must be true or false", key);
    *out = v ? json_is_true(v) : dflt;
    return 0;
}

int lu_num(parse_ctx *c, json_t *obj, const char *key, double dflt, double lo, double hi,
           double *out)
{
    json_t *v = json_object_get(obj, key);
    double x = v ? json_number_value(v) : dflt;
    if ((v && !json_is_number(v)) || !(x >= lo && x <= hi))
        return lu_fail(c, AC_ERR_BAD_MODEL, "\"%s\" must be a number in [%g, %g]", key, lo, hi);
    *out = x;
    return 0;
}

int lu_axis(parse_ctx *c, json_t *obj, const char *key, int rank, int *axis)
{
    int d = 0;
    if (lu_int(c, obj, key, 0, 1, 0, &d)) return -1;
    if (d < 1 || d > rank)
        return lu_fail(c, AC_ERR_BAD_MODEL, "\"%s\" %d must be an axis in 1..%d (0 is the batch)",
                       key, d, rank);
    *axis = d - 1;
    return 0;
}

ac_tensor_ref *lu_tensor(parse_ctx *c, const char *prefix, const char *suffix, int ndim,
                         const int64_t *want, int allow_i8)
{
    char name[160];
    if (suffix) snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    else snprintf(name, sizeof name, "%s", prefix);
    ac_tensor_ref *t = ac_weights_find(c->file, name);
    if (!t) return lu_fail(c, AC_ERR_BAD_MODEL, "tensor %s is missing", name), NULL;
    int ok = want ? t->ndim == ndim : 1;
    for (int i = 0; ok && want && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[96] = "", exp[96] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", i ? ", " : "",
                     (long long)want[i]);
        return lu_fail(c, AC_ERR_BAD_MODEL, "tensor %s has shape [%s], expected [%s]", name, got,
                       exp), NULL;
    }
    if (t->dtype == AC_I8 && !allow_i8)
        return lu_fail(c, AC_ERR_BAD_MODEL, "tensor %s: dtype I8 is only allowed for conv and "
                       "linear weights", name), NULL;
    if (t->used)
        return lu_fail(c, AC_ERR_BAD_MODEL, "tensor %s is already used by another node", name), NULL;
    t->used = 1;
    if (t->dtype == AC_I8) { /* needs its per-row scale */
        char sname[176];
        snprintf(sname, sizeof sname, "%s_scale", name);
        ac_tensor_ref *s = ac_weights_find(c->file, sname);
        if (!s || s->dtype != AC_F32 || s->ndim != 1 || s->shape[0] != t->shape[0])
            return lu_fail(c, AC_ERR_BAD_MODEL, "I8 tensor %s needs %s, F32 [%lld]", name, sname,
                           (long long)t->shape[0]), NULL;
        s->used = 1;
    }
    return t;
}

float lu_at(const ac_tensor_ref *t, int64_t i)
{
    if (t->dtype == AC_F32) {
        float f;
        memcpy(&f, (const char *)t->data + 4 * i, 4); /* the mapping may be unaligned */
        return f;
    }
    if (t->dtype == AC_F16) {
        uint16_t h;
        memcpy(&h, (const char *)t->data + 2 * i, 2);
        return ac_f16_to_f32(h);
    }
    return (float)((const int8_t *)t->data)[i]; /* scaled by the caller */
}

float *lu_to_f32(parse_ctx *c, const ac_tensor_ref *t)
{
    float *out = ac_alloc_floats(t->numel ? (size_t)t->numel : 1);
    if (!out) return lu_fail(c, AC_ERR_NOMEM, "out of memory loading %s", t->name), NULL;
    float *scale = NULL;
    if (t->dtype == AC_I8) {
        char sname[176];
        snprintf(sname, sizeof sname, "%s_scale", t->name);
        const ac_tensor_ref *s = ac_weights_find(c->file, sname);
        scale = malloc((size_t)s->numel * sizeof *scale);
        if (!scale) {
            ac_free_aligned(out);
            return lu_fail(c, AC_ERR_NOMEM, "out of memory loading %s", t->name), NULL;
        }
        for (int64_t i = 0; i < s->numel; i++) scale[i] = lu_at(s, i);
    }
    int64_t row = t->shape[0] ? t->numel / t->shape[0] : 0;
    for (int64_t i = 0; i < t->numel; i++) out[i] = lu_at(t, i) * (scale ? scale[i / row] : 1.f);
    free(scale);
    if (lu_finite(c, out, (size_t)t->numel, t->name)) {
        ac_free_aligned(out);
        return NULL;
    }
    return out;
}

int lu_finite(parse_ctx *c, const float *v, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return lu_fail(c, AC_ERR_BAD_MODEL, "%s holds a non-finite value at %zu", what, i);
    return 0;
}
