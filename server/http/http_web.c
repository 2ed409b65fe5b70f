/* http_web.c - GET / and GET /ui/NAME: the web page (server/web/), compiled into the binary,
 * with a strict Content-Security-Policy and ETag revalidation. Nothing is read from disk. */
#include <string.h>

#include "http_internal.h"
#include "web_assets.h"

/* Everything the page uses comes from this server, and it has no inline script or style.
 * blob: is for what the page builds itself: the recording's playback and the filter picture
 * (fetched with the API key, which an <img src> could not send). */
#define WEB_CSP                                                                                    \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "            \
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "           \
    "frame-ancestors 'none'"

/* The files change only with the binary: browsers revalidate each time (no-cache) and get a
 * 304 without a body while the ETag (the file's SHA-256, computed at build time) matches. */
#define WEB_CACHE "no-cache"

static const char *content_type(const char *name)
{
    static const struct { const char *ext, *type; } k[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".png", "image/png"},
    };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        size_t e = strlen(k[i].ext);
        if (n > e && !strcmp(name + n - e, k[i].ext)) return k[i].type;
    }
    return "application/octet-stream";
}

static const ac_web_asset *find_asset(const char *url)
{
    const char *name;
    if (!strcmp(url, "/")) name = "index.html";
    else if (!strncmp(url, "/ui/", 4)) name = url + 4;
    else return NULL;
    for (int i = 0; i < ac_web_asset_count; i++)
        if (!strcmp(ac_web_assets[i].name, name)) return &ac_web_assets[i];
    return NULL;
}

/* If-None-Match lists ETags (weak ones as W/"..."): any that names ours, or "*", matches. */
static int etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match) return 0;
    if (strchr(if_none_match, '*')) return 1;
    return strstr(if_none_match, etag) != NULL;
}

enum MHD_Result route_web(request *rq, const char *url)
{
    const ac_web_asset *a = find_asset(url);
    if (!a) return reply_error(rq, hs_from_error(HS_NO_ROUTE), "no route %s (see /openapi.json)", rq->path);
    char etag[2 + 16 + 1]; /* "16 hex digits": 64 bits of the SHA-256 */
    etag[0] = '"';
    memcpy(etag + 1, a->sha256, 16);
    etag[17] = '"';
    etag[18] = 0;
    const char *inm = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    int not_modified = etag_matches(inm, etag);
    /* The bytes are static: MHD sends them from where they are (no copy). MHD leaves the
     * body out of answers to HEAD by itself. */
    struct MHD_Response *r = not_modified
        ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)
        : MHD_create_response_from_buffer(*a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    if (!not_modified) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(a->name));
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, WEB_CACHE);
    MHD_add_response_header(r, "Content-Security-Policy", WEB_CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    /* The page asks for the microphone itself; nothing it embeds may. */
    MHD_add_response_header(r, "Permissions-Policy", "microphone=(self), camera=(), geolocation=()");
    return reply_response(rq, not_modified ? 304 : 200, r);
}
