/* test_server_parts.c - the server's small pure parts: settings (defaults < env < flags),
 * Content-Type classes, request ids, API keys. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "http_internal.h"
#include "media_type.h"
#include "request_id.h"
#include "serve_config.h"

static int parse(serve_config *c, int argc, const char **argv)
{
    return serve_config_parse(argc, (char **)argv, c);
}

Test(serve_config, defaults)
{
    unsetenv("AUDIOCLASS_PORT");
    serve_config c;
    const char *argv[] = {"serve"};
    cr_assert_eq(parse(&c, 1, argv), 0);
    cr_assert_eq(c.port, 8080);
    cr_assert_str_eq(c.bind, "0.0.0.0");
    cr_assert_null(c.models_dir, "unset: the directory is searched for (model_path.h)");
    cr_assert_eq(c.n_models, 0);
    cr_assert_eq(c.max_body_bytes, 20.0 * 1024 * 1024);
    cr_assert_eq(c.max_queue_bytes, 1024.0 * 1024 * 1024); /* queued audio has a memory cap */
    cr_assert_eq(c.shutdown_timeout_s, 30);
    cr_assert_null(c.api_key_file);
    cr_assert_null(c.cors_origin);
}

Test(serve_config, env_then_flags)
{
    setenv("AUDIOCLASS_PORT", "9000", 1);
    setenv("AUDIOCLASS_QUEUE_SIZE", "17", 1);
    setenv("AUDIOCLASS_MAX_BODY_BYTES", "2M", 1);
    setenv("AUDIOCLASS_MODELS", "a=/x/a.safetensors,/y/b.v2.safetensors", 1);
    serve_config c;
    const char *argv[] = {"serve", "--port", "9100"};
    cr_assert_eq(parse(&c, 3, argv), 0);
    cr_assert_eq(c.port, 9100, "the flag wins");
    cr_assert_eq(c.queue_size, 17, "the environment beats the default");
    cr_assert_eq(c.max_body_bytes, 2.0 * 1024 * 1024);
    cr_assert_eq(c.n_models, 2);
    cr_assert_str_eq(c.models[0].name, "a");
    cr_assert_str_eq(c.models[0].path, "/x/a.safetensors");
    cr_assert_str_eq(c.models[1].name, "b.v2", "name = file name without its extension");
    const char *argv2[] = {"serve", "--model", "m=/z.safetensors"};
    cr_assert_eq(parse(&c, 3, argv2), 0);
    cr_assert_eq(c.n_models, 1, "--model replaces the environment's list");
    cr_assert_str_eq(c.models[0].name, "m");
    unsetenv("AUDIOCLASS_PORT");
    unsetenv("AUDIOCLASS_QUEUE_SIZE");
    unsetenv("AUDIOCLASS_MAX_BODY_BYTES");
    unsetenv("AUDIOCLASS_MODELS");
}

Test(serve_config, bad_values, .init = cr_redirect_stderr)
{
    serve_config c;
    const char *bad[][3] = {
        {"serve", "--port", "70000"}, {"serve", "--port", "12x"},
        {"serve", "--queue-size", "0"}, {"serve", "--max-batch-wait-ms", "-1"},
        {"serve", "--max-body-bytes", "1.5"}, {"serve", "--max-body-bytes", "3T"},
        {"serve", "--model", "=/x"},     {"serve", "--threads", "1e9"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(parse(&c, 3, bad[i]), 2, "%s %s accepted", bad[i][1], bad[i][2]);
    const char *extra[] = {"serve", "stray"};
    cr_assert_eq(parse(&c, 2, extra), 2);
    setenv("AUDIOCLASS_MAX_BATCH", "lots", 1);
    const char *none[] = {"serve"};
    cr_assert_eq(parse(&c, 1, none), 2, "a bad environment value is an error too");
    unsetenv("AUDIOCLASS_MAX_BATCH");
}

Test(media_type, classes)
{
    cr_assert_eq(media_classify(NULL), MEDIA_RAW_AUDIO);
    cr_assert_eq(media_classify(""), MEDIA_RAW_AUDIO);
    cr_assert_eq(media_classify("audio/wav"), MEDIA_RAW_AUDIO);
    cr_assert_eq(media_classify("Audio/MPEG; rate=44100"), MEDIA_RAW_AUDIO);
    cr_assert_eq(media_classify("application/octet-stream"), MEDIA_RAW_AUDIO);
    cr_assert_eq(media_classify("application/ogg"), MEDIA_RAW_AUDIO);
    cr_assert_eq(media_classify("multipart/form-data; boundary=x"), MEDIA_MULTIPART);
    cr_assert_eq(media_classify("text/plain"), MEDIA_UNSUPPORTED);
    cr_assert_eq(media_classify("application/json"), MEDIA_UNSUPPORTED);
    cr_assert_eq(media_classify("application/x-www-form-urlencoded"), MEDIA_UNSUPPORTED);
    cr_assert_eq(media_classify("audio/"), MEDIA_UNSUPPORTED);
    cr_assert_eq(media_classify("application/octet-streamy"), MEDIA_UNSUPPORTED);
}

Test(request_id, sanitised_or_generated)
{
    char id[REQUEST_ID_MAX + 1], id2[REQUEST_ID_MAX + 1];
    request_id_make("abc-1.2:3_X", id);
    cr_assert_str_eq(id, "abc-1.2:3_X");
    const char *bad[] = {NULL, "", "has space", "quote\"", "new\nline", "\xc3\xa9t\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        request_id_make(bad[i], id);
        cr_assert(!strncmp(id, "ac-", 3) && strlen(id) == 19, "%s", id);
    }
    char longest[REQUEST_ID_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[REQUEST_ID_MAX] = 0;
    request_id_make(longest, id);
    cr_assert_str_eq(id, longest, "64 characters are fine");
    longest[REQUEST_ID_MAX] = 'a', longest[REQUEST_ID_MAX + 1] = 0;
    request_id_make(longest, id);
    cr_assert(!strncmp(id, "ac-", 3), "65 characters are not");
    request_id_make(NULL, id);
    request_id_make(NULL, id2);
    cr_assert_str_neq(id, id2);
}

Test(auth, keys_from_file)
{
    char path[] = "/tmp/ackeysXXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("# comment\n\n  first-key \t\nsecond\n", f);
    fclose(f);
    char err[AC_ERR_LEN];
    auth *a = NULL;
    cr_assert_eq(auth_load(path, &a, err), AC_OK, "%s", err);
    cr_assert(auth_check(a, "Bearer first-key", NULL));
    cr_assert(auth_check(a, "bearer second", NULL));
    cr_assert(auth_check(a, NULL, "second"));
    cr_assert(auth_check(a, "Bearer nope", "first-key"));
    cr_assert_not(auth_check(a, NULL, NULL));
    cr_assert_not(auth_check(a, "first-key", NULL), "the Bearer scheme is required");
    cr_assert_not(auth_check(a, "Bearer first-ke", NULL));
    cr_assert_not(auth_check(a, "Bearer first-keyy", NULL));
    cr_assert_not(auth_check(a, NULL, "# comment"));
    cr_assert_not(auth_check(a, NULL, ""));
    auth_free(a);
    auth_free(NULL);
    f = fopen(path, "w");
    fputs("# only a comment\n", f);
    fclose(f);
    cr_assert_eq(auth_load(path, &a, err), AC_ERR_INVALID_ARG);
    cr_assert_null(a);
    unlink(path);
    cr_assert_eq(auth_load(path, &a, err), AC_ERR_IO);
}

/* Issue 8 (found by tests/fuzz/fuzz_params.c): query integers are digits with an optional
 * '-', nothing else; strtol alone took leading blanks and '+'. */
Test(params, strict_integers)
{
    cr_assert_eq(http_parse_int("7", 1, 1000), 7);
    cr_assert_eq(http_parse_int("0007", 1, 1000), 7);
    cr_assert_eq(http_parse_int("1000", 1, 1000), 1000);
    cr_assert_eq(http_parse_int("-3", -5, 5), -3);
    const char *bad[] = {" 7", "+7", "\t7", "7 ", "7x", "", "-", "1001", "0", "99999999999999999999999", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(http_parse_int(bad[i], 1, 1000), -1, "\"%s\" accepted", bad[i]);
    cr_assert_eq(http_parse_int(NULL, 1, 1000), -1);
}
