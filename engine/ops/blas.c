/* blas.c - OpenBLAS loaded with dlopen after choosing its kernel (see blas.h for why). */
#include "blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* CBLAS constants, as every cblas.h defines them. */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float beta, float *C, int ldc);
typedef char *(*name_fn)(void);

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static sgemm_fn g_sgemm;
static ac_status g_status = AC_ERR_INTERNAL;
static char g_err[AC_ERR_LEN];
static char g_desc[256] = "not loaded";

/* The best generic OpenBLAS kernel family this CPU can run. */
static const char *core_for_cpu(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    if (__builtin_cpu_supports("avx")) return "Sandybridge";
    return NULL;
}

static void load(void)
{
    const char *chosen = NULL;
    if (!getenv("OPENBLAS_CORETYPE") && (chosen = core_for_cpu())) setenv("OPENBLAS_CORETYPE", chosen, 0);
    if (!getenv("OPENBLAS_NUM_THREADS")) setenv("OPENBLAS_NUM_THREADS", "1", 0);
    const char *path = getenv("AUDIOCLASS_BLAS") ? getenv("AUDIOCLASS_BLAS") : "libopenblas.so.0";
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        g_status = ac_fail(g_err, AC_ERR_IO, "cannot load the BLAS (%s): %s; install libopenblas0", path, dlerror());
        return;
    }
    g_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    if (!g_sgemm) {
        g_status = ac_fail(g_err, AC_ERR_IO, "%s has no cblas_sgemm", path);
        return;
    }
    void (*set_threads)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    if (set_threads) set_threads(1);
    name_fn core = (name_fn)dlsym(h, "openblas_get_corename"), config = (name_fn)dlsym(h, "openblas_get_config");
    snprintf(g_desc, sizeof g_desc, "%s (core %s%s)", config ? config() : path, core ? core() : "?",
             chosen ? ", chosen by audioclass from the CPU's features" : "");
    g_status = AC_OK;
}

ac_status ac_blas_init(char *err)
{
    pthread_once(&g_once, load);
    return g_status == AC_OK ? AC_OK : ac_fail(err, g_status, "%s", g_err);
}

void ac_sgemm(int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              float *C, int ldc)
{
    g_sgemm(ROW_MAJOR, NO_TRANS, trans_b ? TRANS : NO_TRANS, M, N, K, 1.f, A, lda, B, ldb, 0.f, C, ldc);
}

const char *ac_blas_description(void) { return g_desc; }
