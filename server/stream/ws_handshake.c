/* ws_handshake.c - the opening handshake's checks and Sec-WebSocket-Accept (ws_handshake.h). */
#include "ws_handshake.h"

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <strings.h>
#include <string.h>

/* Whether a comma-separated header value lists `token` (case-insensitive). */
static int has_token(const char *value, const char *token)
{
    const size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t')) end--;
        if (end == n && !strncasecmp(p, token, n)) return 1;
        p += len;
    }
    return 0;
}

const char *ws_handshake_check(const char *upgrade, const char *connection, const char *version,
                               const char *key, char accept[WS_ACCEPT_LEN + 1])
{
    if (!upgrade || !has_token(upgrade, "websocket") || !connection || !has_token(connection, "upgrade"))
        return "this is a WebSocket endpoint: send Connection: Upgrade and Upgrade: websocket";
    if (!version || strcmp(version, "13"))
        return "Sec-WebSocket-Version must be 13";
    /* the key: base64 of 16 random bytes */
    uint8_t raw[BASE64_DECODE_LENGTH(24) + 1];
    size_t got = sizeof raw;
    struct base64_decode_ctx d;
    base64_decode_init(&d);
    if (!key || strlen(key) != 24 || !base64_decode_update(&d, &got, raw, 24, key) || !base64_decode_final(&d) ||
        got != 16)
        return "Sec-WebSocket-Key must be the base64 of 16 bytes";
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    struct sha1_ctx sha;
    uint8_t digest[SHA1_DIGEST_SIZE];
    sha1_init(&sha);
    sha1_update(&sha, 24, (const uint8_t *)key);
    sha1_update(&sha, sizeof guid - 1, (const uint8_t *)guid);
    sha1_digest(&sha, sizeof digest, digest);
    base64_encode_raw(accept, sizeof digest, digest);
    accept[WS_ACCEPT_LEN] = 0;
    return NULL;
}
