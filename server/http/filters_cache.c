/* filters_cache.c - once-per-key filter analyses shared by all HTTP threads. */
#include "filters_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters_render.h"
#include "result_json.h"

/* Keys: layers x 2 modes x a few frequency counts per model; past this many entries the
 * oldest is dropped, so odd ?n= values cannot grow memory without bound. */
#define MAX_ENTRIES 64

typedef struct entry {
    /* The model by content and served name, not by pointer: after a SIGHUP reload a new
     * model may sit at a freed one's address, and the same file reloaded keeps its entries. */
    char sha256[65];
    char name[AC_NAME_LEN];
    char layer[AC_NAME_LEN];
    ac_filters_mode mode;
    int n;
    int ready;              /* 0 while its first thread computes */
    char *json, *svg;
    size_t json_len, svg_len;
    unsigned long stamp;    /* insertion order, for eviction */
} entry;

struct filters_cache {
    pthread_mutex_t mu;
    pthread_cond_t done;    /* signalled when an entry becomes ready or is abandoned */
    entry e[MAX_ENTRIES];
    int n;
    unsigned long clock;
};

filters_cache *filters_cache_new(void)
{
    filters_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->done, NULL);
    return c;
}

void filters_cache_free(filters_cache *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->e[i].json), free(c->e[i].svg);
    pthread_cond_destroy(&c->done);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static entry *find(filters_cache *c, const char *name, const ac_model *m, const char *layer,
                   ac_filters_mode mode, int n)
{
    const char *sha = ac_model_get_info(m)->sha256;
    for (int i = 0; i < c->n; i++) {
        entry *e = &c->e[i];
        if (!strcmp(e->sha256, sha) && !strcmp(e->name, name) && e->mode == mode && e->n == n &&
            !strcmp(e->layer, layer))
            return e;
    }
    return NULL;
}

static void drop(filters_cache *c, entry *e)
{
    free(e->json), free(e->svg);
    *e = c->e[--c->n];
}

/* A free slot for a new (not ready) entry; evicts the oldest ready one when full. */
static entry *claim(filters_cache *c)
{
    if (c->n == MAX_ENTRIES) {
        entry *old = NULL;
        for (int i = 0; i < c->n; i++)
            if (c->e[i].ready && (!old || c->e[i].stamp < old->stamp)) old = &c->e[i];
        if (!old) return NULL; /* every slot is being computed: do not cache this one */
        drop(c, old);
    }
    entry *e = &c->e[c->n++];
    memset(e, 0, sizeof *e);
    e->stamp = ++c->clock;
    return e;
}

static ac_status copy_out(const entry *e, int svg, char **text, size_t *len, char *err)
{
    const char *src = svg ? e->svg : e->json;
    size_t n = svg ? e->svg_len : e->json_len;
    if (!(*text = malloc(n + 1))) return ac_fail(err, AC_ERR_NOMEM, "out of memory");
    memcpy(*text, src, n + 1);
    *len = n;
    return AC_OK;
}

ac_status filters_cache_get(filters_cache *c, const char *model_name, const ac_model *m, const char *layer,
                            ac_filters_mode mode, int n_freqs, int svg, char **text, size_t *len, char *err)
{
    *text = NULL;
    *len = 0;
    if (!layer) layer = "";
    if (strlen(layer) >= AC_NAME_LEN) return ac_fail(err, AC_ERR_NOT_FOUND, "no conv layer with so long a name");
    pthread_mutex_lock(&c->mu);
    entry *e;
    while ((e = find(c, model_name, m, layer, mode, n_freqs)) && !e->ready) pthread_cond_wait(&c->done, &c->mu);
    if (e) {
        ac_status st = copy_out(e, svg, text, len, err);
        pthread_mutex_unlock(&c->mu);
        return st;
    }
    e = claim(c);
    if (e) {
        snprintf(e->sha256, sizeof e->sha256, "%s", ac_model_get_info(m)->sha256);
        snprintf(e->name, sizeof e->name, "%s", model_name);
        e->mode = mode, e->n = n_freqs;
        memcpy(e->layer, layer, strlen(layer) + 1);
    }
    unsigned long stamp = e ? e->stamp : 0;
    pthread_mutex_unlock(&c->mu);

    /* compute outside the lock: seconds for a deep probe, and other keys may proceed */
    ac_filterbank *fb = NULL;
    ac_status st = ac_filters_compute(m, layer, mode, n_freqs, 1, &fb, err);
    char *json = NULL, *svgt = NULL;
    size_t svg_len = 0;
    if (st == AC_OK) {
        json_t *j = ac_filters_json(model_name, fb);
        json = j ? ac_json_text(j, NULL) : NULL;
        json_decref(j);
        svgt = ac_filters_svg(model_name, fb, &svg_len);
        if (!json || !svgt) st = ac_fail(err, AC_ERR_NOMEM, "out of memory rendering filters");
    }
    ac_filterbank_free(fb);

    pthread_mutex_lock(&c->mu);
    /* the entry may have moved (another was dropped into its slot): find it by stamp */
    entry *mine = NULL;
    for (int i = 0; e && i < c->n; i++)
        if (c->e[i].stamp == stamp) mine = &c->e[i];
    if (st == AC_OK) {
        entry tmp = {.json = json, .svg = svgt, .json_len = strlen(json), .svg_len = svg_len};
        st = copy_out(&tmp, svg, text, len, err);
        if (mine) {
            mine->json = json, mine->svg = svgt, mine->json_len = tmp.json_len, mine->svg_len = svg_len;
            mine->ready = 1;
            json = svgt = NULL;
        }
    } else if (mine) {
        drop(c, mine); /* failures are not cached: the next request reports them afresh */
    }
    pthread_cond_broadcast(&c->done);
    pthread_mutex_unlock(&c->mu);
    free(json);
    free(svgt);
    return st;
}
