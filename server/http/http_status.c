/* http_status.c - ac_status / HTTP-level failures -> HTTP status and JSON error code. */
#include "http_status.h"

hs_mapping hs_from_status(ac_status st)
{
    switch (st) {
    case AC_OK: return (hs_mapping){200, "ok"};
    case AC_ERR_INVALID_ARG: return (hs_mapping){400, ac_status_name(st)};
    case AC_ERR_BAD_AUDIO: return (hs_mapping){400, ac_status_name(st)};
    /* Recognised audio in an encoding we cannot decode: a media-type problem. */
    case AC_ERR_UNSUPPORTED_AUDIO: return (hs_mapping){415, ac_status_name(st)};
    case AC_ERR_AUDIO_EMPTY: return (hs_mapping){422, ac_status_name(st)};
    case AC_ERR_AUDIO_TOO_SHORT: return (hs_mapping){422, ac_status_name(st)};
    /* The clip is bigger than we take, like a body over the byte limit. */
    case AC_ERR_AUDIO_TOO_LONG: return (hs_mapping){413, ac_status_name(st)};
    case AC_ERR_NOT_FOUND: return (hs_mapping){404, ac_status_name(st)};
    /* Out of memory under load is the server's capacity, not the client's fault. */
    case AC_ERR_NOMEM: return (hs_mapping){503, ac_status_name(st)};
    case AC_ERR_QUEUE_FULL: return (hs_mapping){503, ac_status_name(st)};
    case AC_ERR_SHUTTING_DOWN: return (hs_mapping){503, ac_status_name(st)};
    case AC_ERR_IO:
    case AC_ERR_BAD_MODEL:
    case AC_ERR_INTERNAL: return (hs_mapping){500, ac_status_name(st)};
    case AC_STATUS_COUNT: break;
    }
    return (hs_mapping){500, "internal_error"}; /* not a status at all: a bug */
}

hs_mapping hs_from_error(hs_error e)
{
    switch (e) {
    case HS_BAD_REQUEST: return (hs_mapping){400, "bad_request"};
    case HS_UNAUTHORIZED: return (hs_mapping){401, "unauthorized"};
    case HS_FORBIDDEN: return (hs_mapping){403, "forbidden_origin"};
    case HS_NO_ROUTE: return (hs_mapping){404, "not_found"};
    case HS_UNKNOWN_MODEL: return (hs_mapping){404, "unknown_model"};
    case HS_METHOD_NOT_ALLOWED: return (hs_mapping){405, "method_not_allowed"};
    case HS_BODY_TOO_LARGE: return (hs_mapping){413, "body_too_large"};
    case HS_UNSUPPORTED_MEDIA: return (hs_mapping){415, "unsupported_media_type"};
    case HS_UPGRADE_REQUIRED: return (hs_mapping){426, "upgrade_required"};
    case HS_TOO_MANY_STREAMS: return (hs_mapping){503, "too_many_streams"};
    case HS_ERROR_COUNT: break;
    }
    return (hs_mapping){500, "internal_error"};
}
