/* registry.c - loads the served models (named list or directory scan) and finds them. */
#include "registry.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_name(const void *a, const void *b)
{
    return strcmp(((const registry_entry *)a)->name, ((const registry_entry *)b)->name);
}

static ac_status add(registry *r, const char *name, const char *path, char *err)
{
    /* Names appear in URLs, JSON and metric labels: keep them to a safe alphabet. */
    if (!name[0] || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789._-") != strlen(name))
        return ac_fail(err, AC_ERR_INVALID_ARG,
                       "model name \"%s\" (%s) may only contain letters, digits, '.', '_', '-'",
                       name, path);
    if (registry_find(r, name) >= 0)
        return ac_fail(err, AC_ERR_INVALID_ARG, "two models are named \"%s\"", name);
    registry_entry *e = realloc(r->models, (size_t)(r->n + 1) * sizeof *e);
    if (!e) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    r->models = e;
    e = &r->models[r->n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    char lerr[AC_ERR_LEN];
    ac_status st = ac_model_load(path, &e->model, lerr);
    if (st) return ac_fail(err, st, "%s: %s", path, lerr);
    r->n++;
    return AC_OK;
}

static ac_status scan_dir(const char *dir, registry *r, char *err)
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
        st = add(r, name, path, err);
    }
    closedir(d);
    if (st == AC_OK && r->n == 0)
        st = ac_fail(err, AC_ERR_NOT_FOUND, "no *.safetensors model in %s (use --model NAME=PATH)", dir);
    return st;
}

ac_status registry_load(const serve_config *c, registry *r, char *err)
{
    memset(r, 0, sizeof *r);
    ac_status st = AC_OK;
    if (c->n_models == 0) st = scan_dir(c->models_dir, r, err);
    for (int i = 0; i < c->n_models && st == AC_OK; i++)
        st = add(r, c->models[i].name, c->models[i].path, err);
    if (st) {
        registry_free(r);
        return st;
    }
    qsort(r->models, (size_t)r->n, sizeof *r->models, by_name);
    return AC_OK;
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

void registry_free(registry *r)
{
    if (!r) return;
    for (int i = 0; i < r->n; i++) ac_model_free(r->models[i].model);
    free(r->models);
    memset(r, 0, sizeof *r);
}
