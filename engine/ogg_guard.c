/* ogg_guard.c - validates Ogg Vorbis headers before libsndfile sees them (see ogg_guard.h). */
#include "ogg_guard.h"

#include <ogg/ogg.h>
#include <stdio.h>
#include <string.h>
#include <vorbis/codec.h>

/* Next page of stream `serial` into os; 1 = got one, 0 = end of data, -1 = other stream. */
static int next_page(ogg_sync_state *oy, ogg_stream_state *os, long serial)
{
    ogg_page og;
    for (;;) {
        int r = ogg_sync_pageout(oy, &og);
        if (r == 0) return 0;
        if (r < 0) continue; /* skipped bytes while resynchronising, as libogg readers do */
        if (ogg_page_serialno(&og) != serial) return -1;
        ogg_stream_pagein(os, &og);
        return 1;
    }
}

int ac_ogg_vorbis_headers_ok(const unsigned char *data, size_t len, char *why, size_t why_len)
{
    if (len < 4 || memcmp(data, "OggS", 4)) return 1;
    ogg_sync_state oy;
    ogg_stream_state os;
    ogg_page og;
    ogg_packet op;
    vorbis_info vi;
    vorbis_comment vc;
    int ok = 1, have_stream = 0, have_codec = 0;
    const char *reason = NULL;

    ogg_sync_init(&oy);
    char *buf = ogg_sync_buffer(&oy, (long)len);
    if (!buf) { /* cannot check: let libsndfile refuse or accept it */
        ogg_sync_clear(&oy);
        return 1;
    }
    memcpy(buf, data, len);
    ogg_sync_wrote(&oy, (long)len);
    /* libsndfile (ogg_sync_next_page) skips bytes that are not a page, e.g. a first page
     * with a bad checksum, and classifies the first good page: so must we, or such a page
     * smuggles a Vorbis stream with bad headers past the guard (found by fuzz_http). */
    int first;
    while ((first = ogg_sync_pageout(&oy, &og)) < 0) {}
    if (first != 1) goto out; /* no page: libsndfile fails before Vorbis */
    long serial = ogg_page_serialno(&og);
    ogg_stream_init(&os, (int)serial);
    have_stream = 1;
    ogg_stream_pagein(&os, &og);
    if (ogg_stream_packetout(&os, &op) != 1) goto out;
    if (op.bytes < 7 || op.packet[0] != 1 || memcmp(op.packet + 1, "vorbis", 6)) goto out; /* not Vorbis */

    vorbis_info_init(&vi);
    vorbis_comment_init(&vc);
    have_codec = 1;
    ok = 0;
    if (!op.b_o_s) { reason = "first Vorbis packet lacks the beginning-of-stream flag"; goto out; }
    if (ogg_stream_packetpeek(&os, NULL)) { reason = "first Ogg page holds more than the Vorbis identification header"; goto out; }
    if (vorbis_synthesis_headerin(&vi, &vc, &op) < 0) { reason = "invalid Vorbis identification header"; goto out; }
    for (int i = 0; i < 2;) {
        int r = ogg_stream_packetout(&os, &op);
        if (r == 0) {
            int p = next_page(&oy, &os, serial);
            if (p == 0) { reason = "truncated: the Vorbis headers are incomplete"; goto out; }
            if (p < 0) { reason = "chained or multiplexed Ogg streams are not supported"; goto out; }
            continue;
        }
        if (r < 0) { reason = "a page is missing inside the Vorbis headers"; goto out; }
        if (vorbis_synthesis_headerin(&vi, &vc, &op) < 0) {
            reason = i == 0 ? "corrupt Vorbis comment header" : "corrupt Vorbis setup header";
            goto out;
        }
        i++;
    }
    for (;;) { /* the rest must belong to the same logical stream */
        int r = ogg_sync_pageout(&oy, &og);
        if (r == 0) break;
        if (r > 0 && ogg_page_serialno(&og) != serial) {
            reason = "chained or multiplexed Ogg streams are not supported";
            goto out;
        }
    }
    ok = 1;
out:
    if (have_codec) {
        vorbis_comment_clear(&vc);
        vorbis_info_clear(&vi);
    }
    if (have_stream) ogg_stream_clear(&os);
    ogg_sync_clear(&oy);
    if (!ok && why) snprintf(why, why_len, "%s", reason ? reason : "invalid Ogg Vorbis stream");
    return ok;
}
