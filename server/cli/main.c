/* main.c - `audioclass` command line: dispatches to the subcommands in cli_*.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef AC_VERSION
#define AC_VERSION "dev"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "audioclass %s - raw-waveform audio classification\n\n"
            "usage: audioclass COMMAND [OPTIONS]\n\n"
            "commands:\n"
            "  info MODEL                        print a model: metadata, layers, FLOPs\n"
            "  classify --model MODEL [--top-k K] [--windows] [--events] FILES...\n"
            "                                    classify audio files, one JSON line each\n"
            "  stream --model MODEL [--rate HZ] [--realtime] FILE|-\n"
            "                                    live classification of a stream: results\n"
            "                                    and events as JSON lines (as GET /stream)\n"
            "  decode --rate R --out PREFIX FILES...\n"
            "                                    decode+resample audio as the server does\n"
            "                                    (used to prepare training data)\n"
            "  serve [--port P] [--model NAME=PATH]...\n"
            "                                    HTTP API (every models/*.safetensors by default)\n"
            "  filters --model MODEL [--layer L] [--mode kernel|probe] [--format json|svg]\n"
            "                                    frequency responses of learned filters\n"
            "  bench --model MODEL [--batch N] [--threads T] [--seconds S]\n"
            "                                    forward-pass throughput, latency, GFLOP/s\n"
            "  forward --model MODEL --input IN.f32 --out OUT.safetensors [--nodes]\n"
            "                                    raw outputs and every node's value (parity checks)\n\n"
            "MODEL is a model name (m5-speech: a file in the models directory) or a model file.\n"
            "`audioclass COMMAND --help` describes a command's options.\n",
            AC_VERSION);
}

/* Between forward passes libgomp's idle workers spin (OMP_WAIT_POLICY unset = spin for a
 * while), and in a server that burns the cores the HTTP threads need to decode the next
 * requests: measured with M5 on 2 cores, 3,864 req/s at saturation spinning, 6,033 passive
 * (bench/README.md). libgomp reads the variable when it is loaded, before main runs, so
 * `serve` sets it and executes itself once more. An explicit OMP_WAIT_POLICY is kept; if the
 * exec fails (no /proc, binary replaced), the server runs on with spinning workers. */
static void reexec_with_passive_openmp(char **argv)
{
    if (getenv("OMP_WAIT_POLICY")) return;
    /* Executing /proc/self/exe itself would name the new process "exe" (the kernel takes
     * the command name from the path executed), so ps, pgrep and ss would no longer show
     * "audioclass": execute the file the link resolves to. */
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0 || (size_t)len >= sizeof self - 1) return;
    self[len] = 0;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv(self, argv);
    unsetenv("OMP_WAIT_POLICY"); /* exec failed: run on as we are, spinning */
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("audioclass %s\n", AC_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "info")) return cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "classify")) return cli_classify(argc - 1, argv + 1);
    if (!strcmp(cmd, "decode")) return cli_decode(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) {
        reexec_with_passive_openmp(argv);
        return cli_serve(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "filters")) return cli_filters(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "forward")) return cli_forward(argc - 1, argv + 1);
    if (!strcmp(cmd, "stream")) return cli_stream(argc - 1, argv + 1);
    fprintf(stderr, "audioclass: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
