/* registry.c - loads the served models (named list or directory scan) into reference-counted
 * snapshots, and the holder a reload swaps. */
#include "registry.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_name(const void *a, const void *b)
{
    return strcmp(((const registry_entry *)a)->name, ((const registry_entry *)b)->name);
}

static void free_snapshot(registry *r)
{
    for (int i = 0; i < r->n; i++) ac_model_free(r->models[i].model);
    free(r->models);
    free(r->failed);
    free(r);
}

static int find_failed(const registry *r, const char *name)
{
    for (int i = 0; i < r->n_failed; i++)
        if (!strcmp(r->failed[i].name, name)) return i;
    return -1;
}

/* Adds one model file. A name problem is always an error; a file that does not load is an
 * error with `strict`, otherwise it is recorded in r->failed. */
static ac_status add(registry *r, const char *name, const char *path, int strict, char *err)
{
    /* Names appear in URLs, JSON and metric labels: keep them to a safe alphabet. */
    if (!name[0] || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789._-") != strlen(name))
        return ac_fail(err, AC_ERR_INVALID_ARG,
                       "model name \"%s\" (%s) may only contain letters, digits, '.', '_', '-'",
                       name, path);
    if (registry_find(r, name) >= 0 || find_failed(r, name) >= 0)
        return ac_fail(err, AC_ERR_INVALID_ARG, "two models are named \"%s\"", name);
    char lerr[AC_ERR_LEN];
    ac_model *m = NULL;
    ac_status st = ac_model_load(path, &m, lerr);
    if (st) {
        if (strict) return ac_fail(err, st, "%s: %s", path, lerr);
        registry_failed *f = realloc(r->failed, (size_t)(r->n_failed + 1) * sizeof *f);
        if (!f) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
        r->failed = f;
        f = &r->failed[r->n_failed++];
        snprintf(f->name, sizeof f->name, "%s", name);
        snprintf(f->error, sizeof f->error, "%.150s: %s", path, lerr);
        return AC_OK;
    }
    registry_entry *e = realloc(r->models, (size_t)(r->n + 1) * sizeof *e);
    if (!e) {
        ac_model_free(m);
        return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    }
    r->models = e;
    e = &r->models[r->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->model = m;
    e->slot = -1;
    return AC_OK;
}

static ac_status scan_dir(const char *dir, registry *r, int strict, char *err)
{
    DIR *d = opendir(dir);
    if (!d) return ac_fail(err, AC_ERR_IO, "cannot open models directory %s", dir);
    static const char ext[] = ".safetensors";
    const size_t elen = sizeof ext - 1;
    ac_status st = AC_OK;
    struct dirent *de;
    while (st == AC_OK && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= elen || strcmp(de->d_name + len - elen, ext)) continue;
        char name[64], path[4096];
        if (len - elen >= sizeof name) continue;
        memcpy(name, de->d_name, len - elen);
        name[len - elen] = 0;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        st = add(r, name, path, strict, err);
    }
    closedir(d);
    return st;
}

ac_status registry_load(const serve_config *c, registry **out, char *err)
{
    *out = NULL;
    registry *r = calloc(1, sizeof *r);
    if (!r) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    atomic_init(&r->refs, 1);
    ac_status st = AC_OK;
    if (c->n_models == 0) st = scan_dir(c->models_dir, r, c->strict, err);
    for (int i = 0; i < c->n_models && st == AC_OK; i++)
        st = add(r, c->models[i].name, c->models[i].path, c->strict, err);
    if (st == AC_OK && r->n == 0) {
        if (r->n_failed)
            st = ac_fail(err, AC_ERR_BAD_MODEL, "no model could be loaded (%s)", r->failed[0].error);
        else if (c->n_models == 0)
            st = ac_fail(err, AC_ERR_NOT_FOUND, "no *.safetensors model in %s (use --model NAME=PATH)",
                         c->models_dir);
    }
    if (st) {
        free_snapshot(r);
        return st;
    }
    qsort(r->models, (size_t)r->n, sizeof *r->models, by_name);
    *out = r;
    return AC_OK;
}

ac_status registry_reload(const serve_config *c, const registry *old, registry **out, char *err)
{
    ac_status st = registry_load(c, out, err);
    if (st) return st;
    for (int i = 0; i < (*out)->n_failed; i++) {
        const registry_failed *f = &(*out)->failed[i];
        if (old && registry_find(old, f->name) >= 0) {
            st = ac_fail(err, AC_ERR_BAD_MODEL, "model \"%s\" would be replaced by a bad file: %s",
                         f->name, f->error);
            registry_release(*out);
            *out = NULL;
            return st;
        }
    }
    return AC_OK;
}

registry *registry_retain(registry *r)
{
    if (r) atomic_fetch_add(&r->refs, 1);
    return r;
}

void registry_release(registry *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1) return;
    if (r->on_free) r->on_free(r->on_free_user, r);
    free_snapshot(r);
}

int registry_find(const registry *r, const char *name)
{
    for (int i = 0; name && i < r->n; i++)
        if (!strcmp(r->models[i].name, name)) return i;
    return -1;
}

void registry_names(const registry *r, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < r->n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", r->models[i].name);
        if (w < 0) break;
        used += (size_t)w;
    }
}

void registry_holder_init(registry_holder *h, registry *r)
{
    pthread_mutex_init(&h->mu, NULL);
    h->cur = r;
}

registry *registry_holder_get(registry_holder *h)
{
    pthread_mutex_lock(&h->mu);
    registry *r = registry_retain(h->cur);
    pthread_mutex_unlock(&h->mu);
    return r;
}

void registry_holder_swap(registry_holder *h, registry *r)
{
    pthread_mutex_lock(&h->mu);
    registry *old = h->cur;
    h->cur = r;
    pthread_mutex_unlock(&h->mu);
    registry_release(old);
}

void registry_holder_destroy(registry_holder *h)
{
    registry_release(h->cur);
    h->cur = NULL;
    pthread_mutex_destroy(&h->mu);
}
