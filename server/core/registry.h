/* registry.h - the models a server hosts, by name: a reference-counted, immutable snapshot.
 *
 * A snapshot is loaded at start and again on each reload (SIGHUP); the server holds the
 * current one in a registry_holder, and each request takes a reference for its whole life,
 * so a request finishes on the models it started with while a reload swaps the holder to a
 * new snapshot. The last reference frees the snapshot (after its on_free hook, which the
 * server uses to take the models out of the scheduler).
 *
 * Bad model files: with cfg->strict, any bad file fails the load. Without it, a bad file is
 * skipped, listed in `failed` with the reason (shown by GET /models), and the load fails
 * only when no model is left.
 * Thread-safety: a snapshot is read-only once loaded; retain/release and the holder may be
 * used from any thread. */
#ifndef AC_REGISTRY_H
#define AC_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>

#include "engine.h"
#include "serve_config.h"

typedef struct registry_entry {
    char name[64];     /* URL name: --model NAME, or the file name without extension */
    ac_model *model;   /* owned */
    int slot;          /* the scheduler's index for this model (-1 until the server sets it) */
} registry_entry;

/* A model file that could not be loaded, and why. */
typedef struct registry_failed {
    char name[64];
    char error[AC_ERR_LEN + 160]; /* "path: why" */
} registry_failed;

typedef struct registry {
    int n;
    registry_entry *models;   /* [n], sorted by name */
    int n_failed;
    registry_failed *failed;  /* [n_failed] */
    atomic_int refs;
    void (*on_free)(void *user, struct registry *r); /* optional, before the models go */
    void *on_free_user;
} registry;

/* Loads c->models, or every *.safetensors in c->models_dir when none are named, into a new
 * snapshot with one reference. Fails on an unreadable directory, a duplicate or bad name, no
 * model at all, or (with c->strict) any bad model file. */
ac_status registry_load(const serve_config *c, registry **out, char *err);
/* A reload: as registry_load, and also refused (the caller keeps `old`) when a file that is
 * a good model in `old` now fails to load: a bad new file never replaces a good one. */
ac_status registry_reload(const serve_config *c, const registry *old, registry **out, char *err);
registry *registry_retain(registry *r);
void registry_release(registry *r); /* NULL is a no-op */
/* Index of `name`, or -1. */
int registry_find(const registry *r, const char *name);
/* "a, b, c" into buf: for messages that list the choices. */
void registry_names(const registry *r, char *buf, size_t len);

/* The current snapshot. get() returns it with a reference taken (release it when done). */
typedef struct registry_holder {
    pthread_mutex_t mu;
    registry *cur;
} registry_holder;
void registry_holder_init(registry_holder *h, registry *r /* reference taken over */);
registry *registry_holder_get(registry_holder *h);
/* Installs r (reference taken over) and releases the holder's reference to the old one. */
void registry_holder_swap(registry_holder *h, registry *r);
void registry_holder_destroy(registry_holder *h); /* releases the current snapshot */

#endif
