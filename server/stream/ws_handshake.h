/* ws_handshake.h - the server's half of the WebSocket opening handshake (RFC 6455 4.2):
 * checks the client's headers and computes Sec-WebSocket-Accept (SHA-1 and base64 from
 * nettle). Pure functions; any thread. */
#ifndef AC_WS_HANDSHAKE_H
#define AC_WS_HANDSHAKE_H

#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

/* NULL when the headers ask for a version-13 WebSocket with a valid key (accept[29] is then
 * filled), else a static sentence naming what is wrong. Header values may be NULL. */
const char *ws_handshake_check(const char *upgrade, const char *connection, const char *version,
                               const char *key, char accept[WS_ACCEPT_LEN + 1]);

#endif
