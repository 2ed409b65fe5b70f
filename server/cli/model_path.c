/* model_path.c - where the models are: the models directory searched from any working
 * directory, and MODEL arguments given as a name (m5-speech) or as a file path. */
#include "model_path.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AC_MODELS_DIR
#define AC_MODELS_DIR "/usr/local/share/audioclass/models"
#endif
#ifndef AC_MODELS_REL_DIR
#define AC_MODELS_REL_DIR "share/audioclass/models"
#endif

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory of the running executable ("" when /proc is missing). */
static void exe_dir(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    out[0] = 0;
    if (n <= 0) return;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return;
    *slash = 0;
    snprintf(out, cap, "%s", self[0] ? self : "/");
}

int model_dir_candidates(char cand[][MODEL_PATH_MAX], int max)
{
    char dir[PATH_MAX];
    int n = 0;
    exe_dir(dir, sizeof dir);
    /* The working directory (a source checkout), a build tree beside models/ (build/ in a
     * checkout), a relocated install (PREFIX/bin/../share/...), the configured install. */
    static const char rel_install[] = "%s/../" AC_MODELS_REL_DIR;
    const char *fmt[] = {"models", "%s/../models", rel_install, AC_MODELS_DIR};
    for (int i = 0; i < 4 && n < max; i++) {
        if (strstr(fmt[i], "%s") && !dir[0]) continue;
        int w = snprintf(cand[n], MODEL_PATH_MAX, fmt[i], dir);
        if (w <= 0 || w >= MODEL_PATH_MAX) continue;
        int dup = 0;
        for (int j = 0; j < n; j++) dup |= !strcmp(cand[j], cand[n]);
        if (!dup) n++;
    }
    return n;
}

int model_dir_find(char *out, size_t cap, char *looked, size_t lcap)
{
    char cand[8][MODEL_PATH_MAX];
    int n = model_dir_candidates(cand, 8);
    size_t used = 0;
    if (looked && lcap) looked[0] = 0;
    for (int i = 0; i < n; i++) {
        if (is_dir(cand[i])) {
            snprintf(out, cap, "%s", cand[i]);
            return 0;
        }
        if (looked && used < lcap) {
            int w = snprintf(looked + used, lcap - used, "%s%s", i ? ", " : "", cand[i]);
            if (w > 0) used += (size_t)w;
        }
    }
    return -1;
}

/* "a, b" of the *.safetensors names in dir, for error messages. */
static void list_names(const char *dir, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) && used < cap) {
        size_t len = strlen(e->d_name);
        const char *ext = ".safetensors";
        if (len <= strlen(ext) || strcmp(e->d_name + len - strlen(ext), ext)) continue;
        int w = snprintf(buf + used, cap - used, "%s%.*s", used ? ", " : "",
                         (int)(len - strlen(ext)), e->d_name);
        if (w > 0) used += (size_t)w;
    }
    closedir(d);
}

int model_path_resolve(const char *arg, char *out, size_t cap, char *err, size_t errcap)
{
    /* A file that exists is taken as given; so is anything that looks like a path. */
    if (is_file(arg) || strchr(arg, '/') || strstr(arg, ".safetensors")) {
        snprintf(out, cap, "%s", arg);
        return 0;
    }
    char dir[MODEL_PATH_MAX], looked[1024];
    if (model_dir_find(dir, sizeof dir, looked, sizeof looked)) {
        snprintf(err, errcap,
                 "no model file \"%s\", and no models directory to find a model of that name "
                 "in (looked in: %s)", arg, looked);
        return -1;
    }
    int w = snprintf(out, cap, "%s/%s.safetensors", dir, arg);
    if (w > 0 && (size_t)w < cap && is_file(out)) return 0;
    char names[512];
    list_names(dir, names, sizeof names);
    snprintf(err, errcap, "no model named \"%s\" in %s (models: %s)", arg, dir,
             names[0] ? names : "none");
    return -1;
}
