/* ogg_guard.h - refuses Ogg Vorbis uploads whose headers libsndfile would fail on.
 *
 * Why: libsndfile 1.2.0 (Debian 12) leaks 5784 bytes (libvorbis's codec setup) whenever it
 * fails to read the three Vorbis header packets, e.g. for every truncated .ogg upload:
 * ogg_vorbis_open returns before it installs vorbis_close, so vorbis_info_clear never runs.
 * A service that accepts uploads from anyone cannot leak per bad request, so Ogg Vorbis
 * bytes are first checked here with libogg/libvorbis (which we clean up ourselves), with
 * the same conditions libsndfile applies, and only well-formed headers reach libsndfile.
 * Chained and multiplexed Ogg streams (several logical streams) are refused too.
 * Reentrant.
 */
#ifndef AC_OGG_GUARD_H
#define AC_OGG_GUARD_H

#include <stddef.h>

/* 1: not Ogg Vorbis, or its headers are complete and valid (safe to hand to libsndfile).
 * 0: Ogg Vorbis that would fail to open; `why` says what is wrong. */
int ac_ogg_vorbis_headers_ok(const unsigned char *data, size_t len, char *why, size_t why_len);

#endif
