/* test_http_status.c - the one mapping from ac_status / HTTP failures to status and code. */
#include <criterion/criterion.h>
#include <string.h>

#include "http_status.h"

static void expect(ac_status st, int http, const char *code)
{
    hs_mapping m = hs_from_status(st);
    cr_assert_eq(m.http, http, "%s -> %d, expected %d", ac_status_name(st), m.http, http);
    cr_assert_str_eq(m.code, code);
}

Test(http_status, engine_codes)
{
    expect(AC_OK, 200, "ok");
    expect(AC_ERR_BAD_AUDIO, 400, "bad_audio");
    expect(AC_ERR_INVALID_ARG, 400, "invalid_argument");
    expect(AC_ERR_UNSUPPORTED_AUDIO, 415, "unsupported_audio");
    expect(AC_ERR_AUDIO_EMPTY, 422, "audio_empty");
    expect(AC_ERR_AUDIO_TOO_SHORT, 422, "audio_too_short");
    expect(AC_ERR_AUDIO_TOO_LONG, 413, "audio_too_long");
    expect(AC_ERR_NOT_FOUND, 404, "not_found");
    expect(AC_ERR_QUEUE_FULL, 503, "queue_full");
    expect(AC_ERR_SHUTTING_DOWN, 503, "shutting_down");
    expect(AC_ERR_NOMEM, 503, "out_of_memory");
    expect(AC_ERR_IO, 500, "io_error");
    expect(AC_ERR_BAD_MODEL, 500, "bad_model");
    expect(AC_ERR_INTERNAL, 500, "internal_error");
}

/* Bad input must never look like a server bug: every code that input can cause is 4xx. */
Test(http_status, input_problems_are_never_5xx)
{
    const ac_status input[] = {AC_ERR_BAD_AUDIO, AC_ERR_UNSUPPORTED_AUDIO, AC_ERR_AUDIO_EMPTY,
                               AC_ERR_AUDIO_TOO_SHORT, AC_ERR_AUDIO_TOO_LONG, AC_ERR_INVALID_ARG,
                               AC_ERR_NOT_FOUND};
    for (size_t i = 0; i < sizeof input / sizeof *input; i++) {
        int h = hs_from_status(input[i]).http;
        cr_assert(h >= 400 && h < 500, "%s -> %d", ac_status_name(input[i]), h);
    }
}

Test(http_status, every_code_is_mapped)
{
    for (int s = 0; s < AC_STATUS_COUNT; s++) {
        hs_mapping m = hs_from_status((ac_status)s);
        cr_assert(m.http >= 200 && m.http < 600);
        cr_assert(m.code && m.code[0]);
        cr_assert_str_eq(m.code, ac_status_name((ac_status)s));
    }
    /* Out-of-range values are a bug, answered as one. */
    cr_assert_eq(hs_from_status((ac_status)999).http, 500);
    cr_assert_str_eq(hs_from_status((ac_status)999).code, "internal_error");
}

Test(http_status, http_level_errors)
{
    static const struct { hs_error e; int http; const char *code; } k[] = {
        {HS_BAD_REQUEST, 400, "bad_request"},
        {HS_UNAUTHORIZED, 401, "unauthorized"},
        {HS_FORBIDDEN, 403, "forbidden_origin"},
        {HS_NO_ROUTE, 404, "not_found"},
        {HS_UNKNOWN_MODEL, 404, "unknown_model"},
        {HS_METHOD_NOT_ALLOWED, 405, "method_not_allowed"},
        {HS_BODY_TOO_LARGE, 413, "body_too_large"},
        {HS_UNSUPPORTED_MEDIA, 415, "unsupported_media_type"},
        {HS_UPGRADE_REQUIRED, 426, "upgrade_required"},
        {HS_TOO_MANY_STREAMS, 503, "too_many_streams"},
    };
    cr_assert_eq(sizeof k / sizeof *k, HS_ERROR_COUNT, "a new hs_error needs a row here");
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        hs_mapping m = hs_from_error(k[i].e);
        cr_assert_eq(m.http, k[i].http, "error %d", (int)k[i].e);
        cr_assert_str_eq(m.code, k[i].code);
    }
    cr_assert_eq(hs_from_error(HS_ERROR_COUNT).http, 500);
}
