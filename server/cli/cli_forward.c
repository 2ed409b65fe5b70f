/* cli_forward.c - `audioclass forward`: raw network outputs (and every node's value) for
 * given input windows, written as safetensors, so an exporter or a test can compare the
 * engine with PyTorch tensor by tensor. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "model_path.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: audioclass forward --model MODEL --input IN.f32 --out OUT.safetensors [--nodes]\n\n"
            "Runs the network on the windows in IN.f32 (float32 little-endian, a whole number of\n"
            "items of the model's input_shape) and writes OUT.safetensors with `output` [N, labels]\n"
            "(the raw last value), `probs` [N, labels] and, with --nodes, `node/<id>` [N, ...] for\n"
            "every value the engine computes (a fused chain such as conv+batchnorm+relu under its\n"
            "last node's id; folded and identity nodes have none). MODEL is a model name or file.\n\n"
            "  --threads T   OpenMP threads (default: all cores)\n");
}

typedef struct tensor_out {
    char name[96];
    int ndim;
    int64_t shape[4];
    float *data;
    size_t count;
} tensor_out;

typedef struct collect {
    tensor_out *t;
    int n, cap;
} collect;

static int push(collect *c, const char *name, const float *v, int n, ac_shape s)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        tensor_out *t = realloc(c->t, sizeof *t * (size_t)cap);
        if (!t) return AC_ERR_NOMEM;
        c->t = t, c->cap = cap;
    }
    tensor_out *t = &c->t[c->n];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->shape[0] = n;
    if (s.rank <= 2) t->ndim = 2, t->shape[1] = s.c;
    else if (s.rank == 3) t->ndim = 3, t->shape[1] = s.c, t->shape[2] = s.w;
    else t->ndim = 4, t->shape[1] = s.c, t->shape[2] = s.h, t->shape[3] = s.w;
    t->count = ac_shape_numel(s) * (size_t)n;
    if (!(t->data = malloc(t->count * sizeof *t->data))) return AC_ERR_NOMEM;
    memcpy(t->data, v, t->count * sizeof *t->data);
    c->n++;
    return 0;
}

static int on_node(void *ctx, const char *id, const float *value, int n, ac_shape shape)
{
    char name[96];
    snprintf(name, sizeof name, "node/%s", id);
    return push(ctx, name, value, n, shape);
}

/* safetensors: 8-byte header length, JSON header padded to 8 bytes, F32 data. */
static int write_safetensors(const char *path, const collect *c)
{
    json_t *h = json_object();
    size_t off = 0;
    for (int i = 0; i < c->n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < c->t[i].ndim; d++) json_array_append_new(shape, json_integer(c->t[i].shape[d]));
        size_t bytes = c->t[i].count * sizeof(float);
        json_object_set_new(h, c->t[i].name, json_pack("{s:s,s:o,s:[I,I]}", "dtype", "F32", "shape", shape,
                                                       "data_offsets", (json_int_t)off, (json_int_t)(off + bytes)));
        off += bytes;
    }
    char *hs = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!hs) return -1;
    size_t hl = strlen(hs), padded = (hl + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    int rc = f ? 0 : -1;
    if (f) {
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
        rc |= fwrite(len8, 1, 8, f) != 8;
        rc |= fwrite(hs, 1, hl, f) != hl;
        for (size_t i = hl; i < padded; i++) rc |= fputc(' ', f) == EOF;
        for (int i = 0; i < c->n; i++)
            rc |= fwrite(c->t[i].data, sizeof(float), c->t[i].count, f) != c->t[i].count;
        rc |= fclose(f) != 0;
    }
    free(hs);
    return rc ? -1 : 0;
}

static float *read_input(const char *path, size_t item, size_t *n_items)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *x = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len > 0 && (size_t)len % (item * sizeof(float)) == 0 && fseek(f, 0, SEEK_SET) == 0) {
        *n_items = (size_t)len / (item * sizeof(float));
        x = malloc((size_t)len);
        if (x && fread(x, 1, (size_t)len, f) != (size_t)len) {
            free(x);
            x = NULL;
        }
    }
    fclose(f);
    return x;
}

int cli_forward(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"input", required_argument, 0, 'i'},
        {"out", required_argument, 0, 'o'},   {"nodes", no_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL, *input = NULL, *outp = NULL;
    int nodes = 0, threads = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:i:o:nt:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'i': input = optarg; break;
        case 'o': outp = optarg; break;
        case 'n': nodes = 1; break;
        case 't': threads = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model || !input || !outp || optind != argc) {
        fprintf(stderr, "audioclass forward: --model, --input and --out are required\n\n");
        usage(stderr);
        return 2;
    }
    char resolved[MODEL_PATH_MAX], why[AC_ERR_LEN + 512];
    if (model_path_resolve(model, resolved, sizeof resolved, why, sizeof why)) {
        fprintf(stderr, "audioclass forward: %s\n", why);
        return 1;
    }
    model = resolved;
    char err[AC_ERR_LEN] = "";
    ac_model *m = NULL;
    ac_workspace *ws = NULL;
    collect col = {0};
    float *x = NULL, *out = NULL;
    int rc = 1;
    ac_status st = ac_model_load(model, &m, err);
    if (st) {
        fprintf(stderr, "audioclass forward: %s\n", err);
        return 1;
    }
    const ac_model_info *info = ac_model_get_info(m);
    size_t n = 0, k = (size_t)info->n_labels;
    if (!(x = read_input(input, (size_t)info->window, &n))) {
        fprintf(stderr, "audioclass forward: %s: cannot read a whole number of %d-sample float32 windows\n",
                input, info->window);
        goto out;
    }
    if (n > 4096) {
        fprintf(stderr, "audioclass forward: %zu windows; at most 4096 per call\n", n);
        goto out;
    }
    ac_shape flat = {(int)k, 1, 1, 2};
    if ((st = ac_workspace_create(m, (int)n, threads, &ws, err)) ||
        (nodes && (st = ac_model_forward_nodes(m, ws, x, (int)n, on_node, &col, err))) ||
        !(out = malloc(n * k * sizeof *out)) || (st = ac_model_forward(m, ws, x, (int)n, out, err)) ||
        push(&col, "output", out, (int)n, flat)) {
        fprintf(stderr, "audioclass forward: %s\n", err[0] ? err : "out of memory");
        goto out;
    }
    ac_model_probs(m, out, (int)n);
    if (push(&col, "probs", out, (int)n, flat) || write_safetensors(outp, &col)) {
        fprintf(stderr, "audioclass forward: cannot write %s\n", outp);
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < col.n; i++) free(col.t[i].data);
    free(col.t);
    free(x);
    free(out);
    ac_workspace_free(ws);
    ac_model_free(m);
    return rc;
}
