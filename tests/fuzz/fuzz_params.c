/* fuzz_params.c - libFuzzer harness: the parsers that see client strings before any audio
 * does: query integers (top_k, n, ...: http_parse_int), Content-Type classes
 * and raw PCM parameters (media_parse), X-Request-Id (request_id_make), API keys (auth_check) and the
 * sanitiser that makes client text safe for JSON, headers and logs (http_sanitize).
 *
 * The input is split at NUL bytes into up to 4 strings; each function gets them in turn.
 * Invariants: results within their documented ranges; http_parse_int accepts exactly the
 * strings of decimal digits (optionally '-') whose value is in range; media_parse ignores
 * case and unknown parameters, and raw PCM rates and channels are in range; a request id is 1..64 safe characters, the client's when it was
 * safe; auth_check agrees with a plain reference implementation; sanitised text is
 * printable ASCII and a prefix-length copy. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth.h"
#include "http_internal.h"
#include "media_type.h"
#include "request_id.h"

#define KEY1 "s3cret-key"
#define KEY2 "other-key"

static auth *g_auth;

static void load_keys(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_params_keys.%d", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fputs("# keys\n  " KEY1 "  \n" KEY2 "\n", f);
    fclose(f);
    char err[AC_ERR_LEN];
    if (auth_load(path, &g_auth, err)) abort();
    unlink(path);
}

static void check_int(const char *s)
{
    static const long bounds[][2] = {{1, 1000}, {8, 4096}, {0, 0}, {-5, 5}};
    for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
        long lo = bounds[b][0], hi = bounds[b][1];
        long v = http_parse_int(s, lo, hi);
        /* reference: optional '-', then digits only, no overflow, value in range */
        const char *d = s + (s[0] == '-');
        size_t nd = strspn(d, "0123456789");
        long want = -1;
        if (nd >= 1 && d[nd] == 0) {
            errno = 0;
            long x = strtol(s, NULL, 10);
            if (!errno && x >= lo && x <= hi) want = x;
        }
        if (lo < 0 && want == -1 && v == -1) continue; /* -1 is ambiguous in [-5, 5] */
        if (v != want) {
            fprintf(stderr, "http_parse_int(\"%s\", %ld, %ld) = %ld, want %ld\n", s, lo, hi, v, want);
            abort();
        }
    }
}

static void check_media(const char *s)
{
    media_info mi;
    media_kind k = media_parse(s, &mi);
    if (k != MEDIA_RAW_AUDIO && k != MEDIA_MULTIPART && k != MEDIA_PCM && k != MEDIA_BAD_PCM &&
        k != MEDIA_UNSUPPORTED)
        abort();
    if (k == MEDIA_PCM && (mi.pcm.rate < AC_AUDIO_MIN_RATE || mi.pcm.rate > AC_AUDIO_MAX_RATE ||
                           mi.pcm.channels < 1 || mi.pcm.channels > AC_AUDIO_MAX_CHANNELS))
        abort(); /* raw PCM parameters are in range */
    if (k == MEDIA_BAD_PCM && (!mi.why[0] || strnlen(mi.why, sizeof mi.why) == sizeof mi.why))
        abort(); /* a refusal says why */
    size_t n = strlen(s);
    char *up = malloc(n + 16);
    if (!up) return;
    for (size_t i = 0; i <= n; i++) up[i] = (char)toupper((unsigned char)s[i]);
    if (media_classify(up) != k) abort(); /* case-insensitive */
    if (!strchr(s, ';')) {
        memcpy(up, s, n);
        memcpy(up + n, "; charset=x", 12);
        if (media_classify(up) != k) abort(); /* parameters are ignored */
    }
    free(up);
}

static void check_request_id(const char *s)
{
    char out[REQUEST_ID_MAX + 1];
    memset(out, 'Z', sizeof out);
    request_id_make(s, out);
    size_t n = strnlen(out, sizeof out);
    if (n == sizeof out || n == 0) abort();
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-";
    if (strspn(out, safe) != n) abort();
    size_t sn = strlen(s);
    int acceptable = sn >= 1 && sn <= REQUEST_ID_MAX && strspn(s, safe) == sn;
    if (acceptable != !strcmp(out, s)) abort();
}

static int ref_key(const char *k) { return !strcmp(k, KEY1) || !strcmp(k, KEY2); }

static void check_auth(const char *authz, const char *key)
{
    int bearer = 0;
    if (!strncasecmp(authz, "Bearer ", 7)) {
        const char *k = authz + 7;
        while (*k == ' ') k++;
        bearer = ref_key(k);
    }
    if (auth_check(g_auth, authz, key) != (bearer || ref_key(key))) abort();
    if (auth_check(g_auth, NULL, key) != ref_key(key)) abort();
    if (auth_check(g_auth, authz, NULL) != bearer) abort();
}

static void check_sanitize(const char *s)
{
    char out[80];
    http_sanitize(out, sizeof out, s);
    size_t n = strlen(out), sn = strlen(s);
    if (n != (sn < sizeof out - 1 ? sn : sizeof out - 1)) abort();
    for (size_t i = 0; i < n; i++) {
        if (out[i] < 0x20 || out[i] > 0x7e) abort();
        if (out[i] != s[i] && out[i] != '?') abort();
    }
    http_sanitize(out, 1, s);
    if (out[0]) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_auth) load_keys();
    /* NUL-terminated copy, split into fields at NUL bytes */
    char *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    const char *f[4] = {"", "", "", ""};
    size_t nf = 0;
    for (char *p = copy; nf < 4 && p <= copy + size; p += strlen(p) + 1) f[nf++] = p;
    check_int(f[0]);
    check_media(f[1]);
    check_request_id(f[2]);
    check_auth(f[3], f[0]);
    check_auth(f[0], f[3]);
    check_sanitize(f[0]);
    check_sanitize(f[1]);
    free(copy);
    return 0;
}
