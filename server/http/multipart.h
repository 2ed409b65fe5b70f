/* multipart.h - multipart/form-data bodies (RFC 7578 over RFC 2046), parsed in place.
 *
 * The whole body is in memory (it was bounded by --max-body-bytes while it arrived), so a
 * part is a slice of it: nothing is copied. RFC 2046 rules: a boundary is 1-70 characters
 * of bchars, optionally quoted in the Content-Type; anything before the first delimiter
 * (preamble) and after the closing one (epilogue) is ignored; a delimiter line may carry
 * trailing blanks (transport padding). A body without a closing delimiter is malformed.
 * Thread-safety: pure functions over caller memory. */
#ifndef AC_MULTIPART_H
#define AC_MULTIPART_H

#include <stddef.h>

#define MP_BOUNDARY_MAX 70

/* One part. Pointers point into the body (or are empty strings); data[len] is the content. */
typedef struct mp_part {
    char name[64];          /* Content-Disposition name="...", cut to 63 bytes */
    char filename[128];     /* filename="..." or "" */
    char content_type[128]; /* the part's Content-Type header, cut to 127 bytes, or "" */
    const char *data;
    size_t len;
} mp_part;

/* Boundary from a Content-Type ("multipart/form-data; boundary=..."): 0 and the boundary in
 * out[MP_BOUNDARY_MAX + 1], or -1 with the reason in why[why_len]. */
int mp_boundary(const char *content_type, char *out, char *why, size_t why_len);

/* Calls on_part for each part in order; stops early when it returns nonzero (that value is
 * returned). Returns 0 when the body is well formed and every part was visited, -1 when it
 * is malformed (why says where). */
int mp_parse(const char *body, size_t len, const char *boundary,
             int (*on_part)(void *user, const mp_part *p), void *user, char *why, size_t why_len);

#endif
