/* media_type.c - classifies the Content-Type of an upload. */
#include "media_type.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Does the media type (before any ';') equal `want`, or start with it when want ends in '/'? */
static int is(const char *ct, size_t len, const char *want)
{
    size_t wl = strlen(want);
    if (want[wl - 1] == '/') return len > wl && !strncasecmp(ct, want, wl);
    return len == wl && !strncasecmp(ct, want, wl);
}

media_kind media_classify(const char *ct)
{
    if (!ct) return MEDIA_RAW_AUDIO;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t len = strcspn(ct, ";");
    while (len && isspace((unsigned char)ct[len - 1])) len--;
    if (len == 0) return MEDIA_RAW_AUDIO;
    if (is(ct, len, "audio/") || is(ct, len, "application/octet-stream") ||
        is(ct, len, "application/ogg"))
        return MEDIA_RAW_AUDIO;
    if (is(ct, len, "multipart/form-data")) return MEDIA_MULTIPART;
    return MEDIA_UNSUPPORTED;
}
