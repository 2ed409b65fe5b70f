/* cli_util.c - helpers shared by the subcommands: path lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_push_path(char ***paths, int *n, int *cap, const char *p)
{
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 64;
        char **np = realloc(*paths, (size_t)ncap * sizeof *np);
        if (!np) return -1;
        *paths = np;
        *cap = ncap;
    }
    if (!((*paths)[*n] = strdup(p))) return -1;
    (*n)++;
    return 0;
}

int cli_read_list(const char *list, char ***paths, int *n, int *cap)
{
    FILE *f = strcmp(list, "-") ? fopen(list, "r") : stdin;
    if (!f) {
        fprintf(stderr, "audioclass: cannot open list %s\n", list);
        return -1;
    }
    char *line = NULL;
    size_t len = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &len, f)) > 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got && cli_push_path(paths, n, cap, line)) {
            fprintf(stderr, "audioclass: out of memory reading %s\n", list);
            rc = -1;
            break;
        }
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

void cli_free_paths(char **paths, int n)
{
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
}
