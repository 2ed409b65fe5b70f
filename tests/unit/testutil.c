/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <string.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>

void tu_fill_random(float *x, size_t n, unsigned seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
    }
}

double tu_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

const char *tu_src_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", AC_SOURCE_DIR, rel);
    return buf;
}

#include <stdlib.h>
#include <string.h>

struct tu_st {
    json_t *header;
    unsigned char *data;
    size_t len;
};

tu_st *tu_st_new(void)
{
    tu_st *b = calloc(1, sizeof *b);
    b->header = json_object();
    return b;
}

void tu_st_add(tu_st *b, const char *name, int ndim, const int64_t *shape, const float *data)
{
    size_t n = 1;
    json_t *sh = json_array();
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i], json_array_append_new(sh, json_integer(shape[i]));
    json_object_set_new(b->header, name,
                        json_pack("{s:s,s:o,s:[I,I]}", "dtype", "F32", "shape", sh, "data_offsets",
                                  (json_int_t)b->len, (json_int_t)(b->len + 4 * n)));
    b->data = realloc(b->data, b->len + 4 * n);
    memcpy(b->data + b->len, data, 4 * n);
    b->len += 4 * n;
}

unsigned char *tu_st_finish(tu_st *b, json_t *meta, size_t *len)
{
    json_object_set(b->header, "__metadata__", meta);
    char *hs = json_dumps(b->header, JSON_COMPACT);
    size_t hl = strlen(hs), padded = (hl + 7) / 8 * 8;
    unsigned char *out = malloc(8 + padded + b->len);
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(out + 8, hs, hl);
    memset(out + 8 + hl, ' ', padded - hl);
    memcpy(out + 8 + padded, b->data, b->len);
    *len = 8 + padded + b->len;
    free(hs);
    json_decref(b->header);
    free(b->data);
    free(b);
    return out;
}

int tu_for_each_file(const char *dir_in, const char *suffix, void (*fn)(const char *path))
{
    char dir[4096]; /* a copy: dir_in may be tu_src_path's buffer, which fn may reuse */
    snprintf(dir, sizeof dir, "%s", dir_in);
    DIR *d = opendir(dir);
    cr_assert(d, "cannot open %s", dir);
    size_t sl = strlen(suffix);
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < sl || strcmp(e->d_name + n - sl, suffix)) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        fn(path);
        count++;
    }
    closedir(d);
    return count;
}

float *tu_fixture_f32(ac_weights *fx, const char *what, const char *name, int64_t *numel)
{
    ac_tensor_ref *t = ac_weights_find(fx, name);
    cr_assert(t, "%s: fixture tensor %s missing", what, name);
    cr_assert_eq(t->dtype, AC_F32, "%s: fixture tensor %s is not F32", what, name);
    float *out = malloc((size_t)t->numel * sizeof *out + 1);
    cr_assert(out);
    memcpy(out, t->data, (size_t)t->numel * sizeof *out);
    *numel = t->numel;
    return out;
}
