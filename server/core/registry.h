/* registry.h - the models a server hosts, by name: loaded once at start, immutable after.
 * Thread-safety: read-only after registry_load, so any thread may look models up. */
#ifndef AC_REGISTRY_H
#define AC_REGISTRY_H

#include "engine.h"
#include "serve_config.h"

typedef struct registry_entry {
    char name[64];     /* URL name: --model NAME, or the file name without extension */
    ac_model *model;   /* owned */
} registry_entry;

typedef struct registry {
    int n;
    registry_entry *models; /* [n], sorted by name */
} registry;

/* Loads c->models, or every *.safetensors in c->models_dir when none are named. Fails (with
 * a message in err) on an unreadable model, a duplicate name, or no model at all. */
ac_status registry_load(const serve_config *c, registry *r, char *err);
/* Index of `name`, or -1. */
int registry_find(const registry *r, const char *name);
/* "a, b, c" into buf: for messages that list the choices. */
void registry_names(const registry *r, char *buf, size_t len);
void registry_free(registry *r); /* zeroes *r; NULL is a no-op */

#endif
