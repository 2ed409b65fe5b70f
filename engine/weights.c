/* weights.c - safetensors parsing and validation over an mmap'd (or copied) file. */
#include "weights.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"

/* A header this large is certainly not a model of ours; refuse before allocating. */
#define AC_MAX_HEADER (64u << 20)

struct ac_weights {
    unsigned char *base;  /* whole file */
    size_t len;
    int mapped;           /* 1: munmap, 0: free */
    json_t *header;       /* keeps metadata strings alive */
    json_t *meta;         /* borrowed from header; may be NULL */
    ac_tensor_ref *t;
    int n;
    char sha256[65];
};

const char *ac_dtype_name(ac_dtype t) { return t == AC_F32 ? "F32" : t == AC_F16 ? "F16" : "I8"; }
size_t ac_dtype_size(ac_dtype t) { return t == AC_F32 ? 4 : t == AC_F16 ? 2 : 1; }

float ac_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | exp << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int parse_dtype(const char *s, ac_dtype *t)
{
    if (!strcmp(s, "F32")) *t = AC_F32;
    else if (!strcmp(s, "F16")) *t = AC_F16;
    else if (!strcmp(s, "I8")) *t = AC_I8;
    else return -1;
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const ac_tensor_ref *x = *(ac_tensor_ref *const *)a, *y = *(ac_tensor_ref *const *)b;
    const unsigned char *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

/* Fills w->t from the parsed header; data section is base+8+hlen .. base+len. */
static ac_status parse_entries(ac_weights *w, size_t hlen, char *err)
{
    const unsigned char *data = w->base + 8 + hlen;
    size_t data_len = w->len - 8 - hlen;
    size_t count = json_object_size(w->header);
    w->t = calloc(count ? count : 1, sizeof *w->t);
    if (!w->t) return ac_fail(err, AC_ERR_NOMEM, "out of memory reading header");
    const char *key;
    json_t *v;
    json_object_foreach(w->header, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(v))
                return ac_fail(err, AC_ERR_BAD_MODEL, "__metadata__ is not a JSON object");
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) if (!json_is_string(mv))
                return ac_fail(err, AC_ERR_BAD_MODEL, "__metadata__ value of \"%s\" is not a string", mk);
            w->meta = v;
            continue;
        }
        ac_tensor_ref *t = &w->t[w->n];
        if (!json_is_object(v))
            return ac_fail(err, AC_ERR_BAD_MODEL, "tensor %s: header entry is not an object", key);
        json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
               *offs = json_object_get(v, "data_offsets");
        if (!json_is_string(dt))
            return ac_fail(err, AC_ERR_BAD_MODEL, "tensor %s: missing dtype", key);
        if (parse_dtype(json_string_value(dt), &t->dtype))
            return ac_fail(err, AC_ERR_BAD_MODEL, "tensor %s: dtype %s not supported (F32, F16, I8)",
                           key, json_string_value(dt));
        if (!json_is_array(shape) || json_array_size(shape) > AC_MAX_DIMS)
            return ac_fail(err, AC_ERR_BAD_MODEL, "tensor %s: shape missing or over %d dims", key,
                           AC_MAX_DIMS);
        t->ndim = (int)json_array_size(shape);
        t->numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            json_t *e = json_array_get(shape, (size_t)d);
            json_int_t s = json_is_integer(e) ? json_integer_value(e) : -1;
            if (s < 0 || s > (1LL << 40))
                return ac_fail(err, AC_ERR_BAD_MODEL, "tensor %s: shape[%d] is not a valid size", key, d);
            t->shape[d] = s;
            if (s && t->numel > (1LL << 40) / s)
                return ac_fail(err, AC_ERR_BAD_MODEL, "tensor %s: too many elements", key);
            t->numel *= s;
        }
        if (!json_is_array(offs) || json_array_size(offs) != 2 ||
            !json_is_integer(json_array_get(offs, 0)) || !json_is_integer(json_array_get(offs, 1)))
            return ac_fail(err, AC_ERR_BAD_MODEL, "tensor %s: data_offsets must be [begin, end]", key);
        json_int_t b = json_integer_value(json_array_get(offs, 0));
        json_int_t e = json_integer_value(json_array_get(offs, 1));
        if (b < 0 || e < b || (uint64_t)e > data_len)
            return ac_fail(err, AC_ERR_BAD_MODEL,
                           "tensor %s: data_offsets [%lld, %lld] outside the %zu data bytes", key,
                           (long long)b, (long long)e, data_len);
        t->nbytes = (size_t)(e - b);
        if ((uint64_t)t->numel * ac_dtype_size(t->dtype) != t->nbytes)
            return ac_fail(err, AC_ERR_BAD_MODEL,
                           "tensor %s: %zu bytes do not hold %lld %s values", key, t->nbytes,
                           (long long)t->numel, ac_dtype_name(t->dtype));
        t->data = data + b;
        t->name = strdup(key);
        if (!t->name) return ac_fail(err, AC_ERR_NOMEM, "out of memory reading header");
        w->n++;
    }
    /* The byte buffer must be covered exactly once: no overlaps, no holes (as the spec says). */
    ac_tensor_ref **order = malloc((size_t)(w->n ? w->n : 1) * sizeof *order);
    if (!order) return ac_fail(err, AC_ERR_NOMEM, "out of memory reading header");
    for (int i = 0; i < w->n; i++) order[i] = &w->t[i];
    qsort(order, (size_t)w->n, sizeof *order, cmp_offset);
    const unsigned char *expect = data;
    ac_status st = AC_OK;
    for (int i = 0; i < w->n && st == AC_OK; i++) {
        const unsigned char *p = order[i]->data;
        if (p < expect)
            st = ac_fail(err, AC_ERR_BAD_MODEL, "tensor %s overlaps tensor %s", order[i]->name,
                         order[i - 1]->name);
        else if (p > expect)
            st = ac_fail(err, AC_ERR_BAD_MODEL, "hole of %zu bytes before tensor %s",
                         (size_t)(p - expect), order[i]->name);
        expect = p + order[i]->nbytes;
    }
    if (st == AC_OK && expect != data + data_len)
        st = ac_fail(err, AC_ERR_BAD_MODEL, "%zu bytes after the last tensor are not described",
                     (size_t)(data + data_len - expect));
    free(order);
    return st;
}

static ac_status parse(ac_weights *w, char *err)
{
    if (w->len < 8)
        return ac_fail(err, AC_ERR_BAD_MODEL, "file of %zu bytes is too short for a header", w->len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | w->base[i];
    if (hlen > w->len - 8)
        return ac_fail(err, AC_ERR_BAD_MODEL, "header length %llu exceeds the file (%zu bytes)",
                       (unsigned long long)hlen, w->len);
    if (hlen > AC_MAX_HEADER)
        return ac_fail(err, AC_ERR_BAD_MODEL, "header length %llu is over the %u limit",
                       (unsigned long long)hlen, AC_MAX_HEADER);
    json_error_t je;
    w->header = json_loadb((const char *)w->base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!w->header)
        return ac_fail(err, AC_ERR_BAD_MODEL, "header is not valid JSON: %s (at byte %d)", je.text,
                       je.position);
    if (!json_is_object(w->header))
        return ac_fail(err, AC_ERR_BAD_MODEL, "header is not a JSON object");
    ac_status st = parse_entries(w, (size_t)hlen, err);
    if (st == AC_OK) ac_sha256_hex(w->base, w->len, w->sha256);
    return st;
}

static ac_status finish(ac_weights *w, ac_weights **out, char *err)
{
    ac_status st = parse(w, err);
    if (st != AC_OK) {
        ac_weights_close(w);
        return st;
    }
    *out = w;
    return AC_OK;
}

ac_status ac_weights_open(const char *path, ac_weights **out, char *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ac_fail(err, AC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ac_fail(err, AC_ERR_IO, "%s is not a regular file", path);
    }
    ac_weights *w = calloc(1, sizeof *w);
    if (!w) {
        close(fd);
        return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    }
    w->len = (size_t)sb.st_size;
    if (w->len > 0) {
        void *m = mmap(NULL, w->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            free(w);
            return ac_fail(err, AC_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        }
        w->base = m;
        w->mapped = 1;
    }
    close(fd);
    return finish(w, out, err);
}

ac_status ac_weights_open_memory(const void *buf, size_t len, ac_weights **out, char *err)
{
    *out = NULL;
    ac_weights *w = calloc(1, sizeof *w);
    if (!w) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    w->base = malloc(len ? len : 1);
    if (!w->base) {
        free(w);
        return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    }
    if (len) memcpy(w->base, buf, len);
    w->len = len;
    return finish(w, out, err);
}

void ac_weights_close(ac_weights *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    json_decref(w->header);
    if (w->mapped) munmap(w->base, w->len);
    else free(w->base);
    free(w);
}

int ac_weights_count(const ac_weights *w) { return w->n; }
ac_tensor_ref *ac_weights_at(ac_weights *w, int i) { return (i >= 0 && i < w->n) ? &w->t[i] : NULL; }

ac_tensor_ref *ac_weights_find(ac_weights *w, const char *name)
{
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name)) return &w->t[i];
    return NULL;
}

const char *ac_weights_meta(const ac_weights *w, const char *key)
{
    return w->meta ? json_string_value(json_object_get(w->meta, key)) : NULL;
}

int ac_weights_meta_all(const ac_weights *w, const char **keys, const char **values, int max)
{
    int n = 0;
    const char *k;
    json_t *v;
    if (!w->meta) return 0;
    json_object_foreach(w->meta, k, v) {
        if (n < max) keys[n] = k, values[n] = json_string_value(v);
        n++;
    }
    return n;
}

const char *ac_weights_sha256(const ac_weights *w) { return w->sha256; }
size_t ac_weights_file_size(const ac_weights *w) { return w->len; }
