/* media_type.h - what a POST /classify Content-Type means for how the body is read. */
#ifndef AC_MEDIA_TYPE_H
#define AC_MEDIA_TYPE_H

typedef enum media_kind {
    MEDIA_RAW_AUDIO,   /* the body is the audio file */
    MEDIA_MULTIPART,   /* multipart/form-data; the audio is field `file` */
    MEDIA_UNSUPPORTED  /* 415 */
} media_kind;

/* audio/ *, application/octet-stream and application/ogg (and no Content-Type at all, which
 * RFC 9110 lets a server treat as octet-stream) are raw audio; parameters such as
 * "; charset=..." are ignored; matching is case-insensitive. Everything else, e.g.
 * text/plain, application/json or the form encoding curl -d sends, is unsupported. */
media_kind media_classify(const char *content_type);

#endif
