/* cli.h - the `audioclass` subcommands; each takes argv after the subcommand name and
 * returns the process exit status. main.c only dispatches. */
#ifndef AC_CLI_H
#define AC_CLI_H

int cli_info(int argc, char **argv);
int cli_classify(int argc, char **argv);
int cli_decode(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_filters(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_forward(int argc, char **argv);
int cli_stream(int argc, char **argv);

/* Reads paths from `list` ("-" = stdin), one per line, appending to paths and n.
 * Returns 0, or -1 with a message on stderr. */
int cli_read_list(const char *list, char ***paths, int *n, int *cap);
int cli_push_path(char ***paths, int *n, int *cap, const char *p);
void cli_free_paths(char **paths, int n);

#endif
