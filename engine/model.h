/* model.h - a network built from a model file's metadata; forward pass; test-time windows.
 *
 * Ownership and threads: an ac_model is immutable after ac_model_load and may be shared by
 * any number of threads. All mutable state of a forward pass lives in an ac_workspace,
 * which belongs to one thread at a time (the scheduler's dispatcher, or a CLI loop).
 */
#ifndef AC_MODEL_H
#define AC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"
#include "weights.h"

#define AC_FORMAT_VERSION 2 /* reads 1 (a layer list) and 2 (a graph) */
#define AC_NAME_LEN 64

/* One executed step of the network, as tools and /models show it. A step runs one node of
 * the file's graph and may carry nodes fused into it (batch norm folded, relu and a max
 * pool fused); identity-like nodes (dropout, flatten) have no step. Strings point into the
 * model and live as long as it. */
typedef struct ac_layer_info {
    const char *id;          /* node id whose value the step produces (last of a fused chain) */
    const char *name;        /* tensor prefix ("conv1"), "" for ops without tensors */
    const char *kind;        /* op as written in the file: "conv1d", "add", "gru", ... */
    const char *folded;      /* batch norm folded in, "" if none */
    int relu, pooled;        /* relu / max pool fused into this conv or linear */
    int is_conv;
    int n_inputs;
    ac_shape in, out;        /* per item: first input, output */
    ac_shape conv_out;       /* conv: output before a fused pool (= out otherwise) */
    int in_next;             /* computed inside the next step (ac_conv2d_chain), whose time
                                covers both */
    int64_t flops;           /* 2 * multiply-adds of one item */
    int64_t act_bytes;       /* activations one item reads and writes at least: every
                                input once, the output once (F32) */
    int64_t weight_bytes;    /* weights a pass reads at least once (as stored) */
    const char *dtype;       /* linear weights as stored ("F32", "F16", "I8"), else NULL */
} ac_layer_info;

typedef struct ac_model_info {
    const char *name;            /* metadata "name" */
    const char *arch, *description, *license, *training; /* "" if absent */
    int format_version;
    int sample_rate;
    int window, hop, pad;        /* test-time policy, samples at sample_rate */
    int n_labels;
    const char *const *labels;   /* [n_labels] */
    int64_t n_params;            /* as PyTorch's parameters() counts them */
    int64_t flops;               /* per window (2 * multiply-adds of conv and linear) */
    size_t file_bytes;
    const char *sha256;          /* of the file */
    const char *path;
    int causal;                  /* the stream executor can run it incrementally (stream.h) */
    int running_mean;            /* causal, but its answer is a mean over all time */
    const char *causal_why;      /* not causal: the node that prevents it, and why; else "" */
    const char *compute;         /* metadata "compute": "fp32" (the default), "bf16", "int8"
                                  * or "bf16+int8" */
    int bf16_active;             /* bf16 asked and the CPU has AVX-512 BF16: its convs run in
                                  * BF16 (gemm_bf16.h); 0: in FP32 */
    int int8_active;             /* int8 asked, the file has I8 linear layers and the CPU has
                                  * AVX-512 VNNI: they run on 8-bit inputs (linear_vnni.h) */
} ac_model_info;

/* What runs on this CPU: "fp32", "bf16", "int8" or "bf16+int8" (static text). */
const char *ac_model_compute_active(const ac_model_info *info);

typedef struct ac_model ac_model;
typedef struct ac_workspace ac_workspace;

/* Loads and validates a model file: format and version, graph ops and fields, every
 * tensor's presence, shape and dtype, shapes through the whole graph, labels vs outputs,
 * the policy; no tensor may be left unused. Errors name the layer or tensor. */
ac_status ac_model_load(const char *path, ac_model **out, char *err);
/* The same from bytes in memory (copied); `path` is only used in messages and info. */
ac_status ac_model_load_memory(const void *buf, size_t len, const char *path, ac_model **out,
                               char *err);
void ac_model_free(ac_model *m); /* NULL is a no-op */

const ac_model_info *ac_model_get_info(const ac_model *m);
/* Executed steps: count, and step i's description (0, or -1 when i is out of range). */
int ac_model_layer_count(const ac_model *m);
int ac_model_layer_info(const ac_model *m, int i, ac_layer_info *out);
/* The kernel that step i runs at this batch ("direct-time", "im2col+sgemm", "direct-i8", ...;
 * "-" for ops with one kernel), for profiles. */
const char *ac_model_layer_kernel(const ac_model *m, int i, int batch);
/* A metadata value of the file, or NULL. */
const char *ac_model_meta(const ac_model *m, const char *key);
/* The file's metadata keys and values (for `info`); returns the count. */
int ac_model_meta_all(const ac_model *m, const char **keys, const char **values, int max);
/* One line describing executable layer i, e.g. "conv1  conv1d+bn+relu  [1, 8000] -> [32, 496]". */
void ac_model_layer_describe(const ac_model *m, int i, char *buf, size_t len);

/* Scratch for forward passes of up to max_batch windows with `threads` OpenMP threads
 * (0 = omp_get_max_threads()). Allocates everything up front: forward never allocates. */
ac_status ac_workspace_create(const ac_model *m, int max_batch, int threads, ac_workspace **out,
                              char *err);
/* The same, with room for convolutions run without their fused pool
 * (ac_model_forward_conv_output needs it; EnvNet's takes 3.8 MB more per window). */
ac_status ac_workspace_create_probe(const ac_model *m, int max_batch, int threads,
                                    ac_workspace **out, char *err);
void ac_workspace_free(ac_workspace *ws); /* NULL is a no-op */
/* Activation floats per batch item that a workspace holds: the sum of the planned buffers,
 * each sized for the largest value that lives in it (values whose lifetimes do not overlap
 * share a buffer). */
size_t ac_model_activation_floats(const ac_model *m);
/* Largest batch (<= max_batch) whose workspace takes at most budget_bytes (at least 1).
 * EnvNet needs 2 x 3.8 MB of activations per window, M5 0.13 MB: one batch size for both
 * would either starve M5 or spend hundreds of MB on EnvNet. */
int ac_workspace_batch_for_budget(const ac_model *m, int max_batch, int threads, size_t budget_bytes);
int ac_workspace_max_batch(const ac_workspace *ws);
int ac_workspace_threads(const ac_workspace *ws);
/* Seconds spent in each step by forward passes through ws ([layer count]). */
const double *ac_workspace_layer_seconds(const ac_workspace *ws);

/* Whether a forward pass of n items on `threads` threads splits the batch (each thread runs
 * every layer on its own items) instead of each layer's work: small networks (at most 50
 * MFLOP per item, no recurrence) with at least 4 items per thread. The results are the same
 * either way; exposed for tests and benchmarks. */
int ac_model_splits_batch(const ac_model *m, int n, int threads);

/* out[n, n_labels] = the last layer's raw output for windows x[n, window]; 1 <= n <= max_batch.
 * Runs up to layer `upto` (exclusive, -1 = all) when probing: then out must hold the
 * shape of that step's output (ac_model_layer_info(m, upto-1).out). */
ac_status ac_model_forward(const ac_model *m, ac_workspace *ws, const float *x, int n,
                           float *out, char *err);
ac_status ac_model_forward_upto(const ac_model *m, ac_workspace *ws, const float *x, int n,
                                int upto, float *out, char *err);
/* Runs layers before conv layer `li`, then that layer without its fused max pool, into
 * out [n, conv_out of step li]: what the filter probe measures. ws must come
 * from ac_workspace_create_probe. */
ac_status ac_model_forward_conv_output(const ac_model *m, ac_workspace *ws, const float *x, int n,
                                       int li, float *out, char *err);
/* Every value of a forward pass, for parity checks (tests, `audioclass forward --nodes`;
 * not the serving path): runs x [n, input] through ws and calls fn once per graph value
 * the engine materialises, in execution order, with the file's node id, the value
 * [n, shape] (valid only during the call) and its per-item shape. A chain fused into one
 * step (conv+batchnorm+relu, conv+maxpool) is reported under its last node's id; folded
 * and identity nodes (batchnorm, dropout, flatten) have no value of their own. The network
 * input is not reported. Returns the first non-zero status fn returns, if any. */
typedef int (*ac_node_fn)(void *ctx, const char *id, const float *value, int n, ac_shape shape);
ac_status ac_model_forward_nodes(const ac_model *m, ac_workspace *ws, const float *x, int n,
                                 ac_node_fn fn, void *ctx, char *err);

/* Turns raw outputs [n, n_labels] into probabilities in place, according to the last op. */
void ac_model_probs(const ac_model *m, float *x, int n);

/* Test-time policy (models/FORMAT.md). Number of windows for a clip of n samples; fills
 * starts[] (in padded coordinates) up to max_starts entries when starts is not NULL. */
size_t ac_model_windows(const ac_model *m, size_t n, size_t *starts, size_t max_starts);
/* Cuts window k of the clip into dst[window] (zero padding included). */
void ac_model_cut_window(const ac_model *m, const float *samples, size_t n, size_t k, float *dst);
/* Start of window k in seconds of the original clip (negative inside the left padding). */
double ac_model_window_time(const ac_model *m, size_t n, size_t k);

/* A whole clip classified: windows batched through ws, probabilities averaged. */
typedef struct ac_prediction {
    int n_labels;
    size_t n_windows;
    float *probs;          /* [n_labels], mean over windows */
    float *window_probs;   /* [n_windows, n_labels] */
    float *window_output;  /* [n_windows, n_labels] raw last-layer output */
} ac_prediction;

ac_status ac_classify(const ac_model *m, ac_workspace *ws, const float *samples, size_t n,
                      ac_prediction *out, char *err);
/* Several clips at once: windows of all clips are packed into shared batches, so many
 * short clips keep every thread busy. samples[c][n[c]]; out[count]. On failure every
 * out[c] is freed. Windows are cut into the workspace's batch buffer; the only allocations
 * are the predictions handed back. */
ac_status ac_classify_many(const ac_model *m, ac_workspace *ws, const float *const *samples,
                           const size_t *n, int count, ac_prediction *out, char *err);
void ac_prediction_free(ac_prediction *p); /* zeroes *p; NULL is a no-op */

/* Indices of the k highest probabilities, best first (ties: lower index first). */
int ac_top_k(const float *probs, int n, int k, int *idx);

#endif
