/* cli_bench.c - `audioclass bench`: forward-pass throughput and latency of one model at a
 * given batch size and thread count, as one JSON line. Inputs are random windows; the
 * FLOP count is the graph's exact one (the same as `audioclass info` prints). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "model_path.h"
#include "engine.h"
#include "roofline.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: audioclass bench --model MODEL [--batch N] [--threads T] [--seconds S]\n\n"
            "Runs forward passes of N windows for about S seconds (after one warm-up pass)\n"
            "and prints {model, batch, threads, items_per_s, latency_ms_p50, latency_ms_p99,\n"
            "gflops, gflop_per_item, iterations} on one line. MODEL is a name (m5-speech) or a\n"
            "model file.\n\n"
            "  --batch N     windows per forward pass                     (default 1)\n"
            "  --threads T   OpenMP threads                     (default: all cores)\n"
            "  --seconds S   measuring time                               (default 3)\n"
            "  --profile     also print per layer (to stderr) its time, GFLOP/s, GB/s and how far\n"
            "                it is from its roofline bound, max(FLOPs / peak, bytes / bandwidth),\n"
            "                with the peak and bandwidth measured first (\"x bound\": 1 = at the bound)\n");
}

int cli_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"seconds", required_argument, 0, 's'},
        {"profile", no_argument, 0, 'p'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *path = NULL;
    int batch = 1, threads = 0, profile = 0, c;
    double seconds = 3;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:b:t:s:ph", opts, NULL)) != -1) {
        switch (c) {
        case 'm': path = optarg; break;
        case 'b': batch = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'p': profile = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path || batch < 1 || threads < 0 || !(seconds > 0)) {
        usage(stderr);
        return 2;
    }
    char resolved[MODEL_PATH_MAX], why[AC_ERR_LEN + 512];
    if (model_path_resolve(path, resolved, sizeof resolved, why, sizeof why)) {
        fprintf(stderr, "audioclass bench: %s\n", why);
        return 1;
    }
    path = resolved;
    char err[AC_ERR_LEN];
    ac_model *m = NULL;
    ac_workspace *ws = NULL;
    if (ac_model_load(path, &m, err) || ac_workspace_create(m, batch, threads, &ws, err)) {
        fprintf(stderr, "audioclass bench: %s: %s\n", path, err);
        ac_model_free(m);
        return 1;
    }
    const ac_model_info *info = ac_model_get_info(m);
    size_t in = (size_t)batch * info->window;
    float *x = malloc(in * sizeof *x), *y = malloc((size_t)batch * info->n_labels * sizeof *y);
    for (size_t i = 0; i < in; i++) x[i] = 0.3f * sinf((float)i * 0.013f) + 0.1f * sinf((float)i * 0.71f);
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    ac_model_forward(m, ws, x, batch, y, err); /* warm-up: page in weights, fault scratch */
    double t_start = now_s(), t_end = t_start + seconds, cpu_start = cpu_s();
    const double *layer_s = ac_workspace_layer_seconds(ws);
    double *warm = malloc(sizeof *warm * (size_t)ac_model_layer_count(m));
    for (int l = 0; l < ac_model_layer_count(m); l++) warm[l] = layer_s[l];
    while (n < cap) {
        double t0 = now_s();
        if (ac_model_forward(m, ws, x, batch, y, err)) {
            fprintf(stderr, "audioclass bench: %s\n", err);
            break;
        }
        double t1 = now_s();
        lat[n++] = (t1 - t0) * 1e3;
        if (t1 >= t_end) break;
    }
    double total = now_s() - t_start;
    double cpu = cpu_s() - cpu_start;
    qsort(lat, n, sizeof *lat, cmp_double);
    double items = (double)n * batch;
    if (profile) {
        /* each layer against its roofline bound: max(FLOPs / peak, bytes / bandwidth), with
         * this machine's limits measured now on the same threads (roofline.h) */
        const ac_roofline rl = ac_roofline_measure(ac_workspace_threads(ws), 0.4);
        fprintf(stderr, "# roofline, %d threads: FP32 peak %.0f GFLOP/s, streaming %.1f GB/s\n",
                ac_workspace_threads(ws), rl.gflops, rl.gbs);
        fprintf(stderr, "%-3s %-66s %-16s %10s %7s %9s %8s %8s\n", "#", "layer", "kernel", "ms/pass", "share", "GFLOP/s",
                "GB/s", "x bound");
        double sum = 0;
        for (int l = 0; l < ac_model_layer_count(m); l++) sum += layer_s[l] - warm[l];
        for (int l = 0; l < ac_model_layer_count(m); l++) {
            char line[256];
            double t = layer_s[l] - warm[l];
            ac_model_layer_describe(m, l, line, sizeof line);
            line[66] = 0;
            ac_layer_info L;
            ac_model_layer_info(m, l, &L);
            const char *kernel = ac_model_layer_kernel(m, l, batch);
            double flops = (double)L.flops * batch, bytes = (double)L.act_bytes * batch + (double)L.weight_bytes;
            ac_layer_info A;
            if (l > 0 && !ac_model_layer_info(m, l - 1, &A) && A.in_next) { /* a chain: both layers' time */
                flops += (double)A.flops * batch;
                bytes += (double)A.act_bytes * batch + (double)A.weight_bytes;
            }
            const double per = t / (double)n, bound = ac_roofline_bound_s(&rl, flops, bytes);
            fprintf(stderr, "%-3d %-66s %-16s %10.3f %6.1f%% %9.1f %8.1f %8.2f\n", l, line, kernel, per * 1e3,
                    100 * t / sum, per > 0 ? flops / per / 1e9 : 0.0, per > 0 ? bytes / per / 1e9 : 0.0,
                    bound > 0 ? per / bound : 0.0);
        }
    }
    /* cpu_s: CPU time of the whole process; on a shared machine it is steadier than wall time */
    printf("{\"model\":\"%s\",\"batch\":%d,\"threads\":%d,\"items_per_s\":%.2f,\"latency_ms_p50\":%.4f,"
           "\"latency_ms_p99\":%.4f,\"gflops\":%.2f,\"gflop_per_item\":%.6f,\"iterations\":%zu,"
           "\"cpu_s_per_item\":%.6f}\n",
           info->name, batch, ac_workspace_threads(ws), items / total, lat[n / 2],
           lat[(size_t)fmin((double)n - 1, ceil(0.99 * (double)n) - 1)],
           items * (double)info->flops / total / 1e9, (double)info->flops / 1e9, n, cpu / items);
    free(warm);
    free(x), free(y), free(lat);
    ac_workspace_free(ws);
    ac_model_free(m);
    return 0;
}
