/* model_internal.h - the model and workspace structs, shared by the engine files that
 * implement model.h (model.c: load and forward; policy.c: windows and whole clips;
 * filters.c: filter analysis). Not for server/: it sees the opaque types of model.h. */
#ifndef AC_MODEL_INTERNAL_H
#define AC_MODEL_INTERNAL_H

#include "detect.h"
#include "graph.h"
#include "model.h"

struct ac_model {
    ac_weights *file;        /* the mapped file; tensors point into it */
    ac_model_info info;
    char path[512];
    char **labels;           /* [info.n_labels], owned */
    ac_graph graph;          /* nodes, order, steps, slots */
    int last_op_softmax;     /* 1: the output is softmax, 2: log_softmax, 0: logits */
    ac_detect_params detect; /* the event rule's defaults (metadata "stream"), parsed at load */
};

struct ac_workspace {
    const ac_model *m;
    int max_batch, threads, probe;
    float **slot;            /* [n_slots] each [max_batch * floats of that slot] */
    float *scratch;          /* [scratch_floats]: per-thread conv/linear slices or RNN scratch */
    double *layer_s;         /* [n_steps] seconds spent per step since creation (profiling) */
    /* ac_classify_many's batch assembly, allocated once: */
    float *batch;            /* [max_batch, window] cut windows */
    float *raw;              /* [max_batch, n_labels] outputs */
    int *owner;              /* [max_batch] clip of each window */
    size_t *index;           /* [max_batch] window index within its clip */
};

/* The graph of m (filters.c reads conv nodes). */
static inline const ac_graph *ac_model_graph(const ac_model *m) { return &m->graph; }

#endif
