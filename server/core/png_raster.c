/* png_raster.c - 8-bit palette PNG (zlib for IDAT and CRCs), base64 into a data: URI. */
#include "png_raster.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Appends one chunk (length, type, data, CRC of type+data) at out + *pos. */
static void chunk(unsigned char *out, size_t *pos, const char type[4], const unsigned char *data, size_t n)
{
    unsigned char *p = out + *pos;
    be32(p, (uint32_t)n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    be32(p + 8 + n, (uint32_t)crc32(0, p + 4, (uInt)(n + 4)));
    *pos += 12 + n;
}

static char *base64_uri(const unsigned char *in, size_t n, size_t *len)
{
    static const char prefix[] = "data:image/png;base64,";
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out_n = sizeof prefix - 1 + (n + 2) / 3 * 4;
    char *out = malloc(out_n + 1);
    if (!out) return NULL;
    memcpy(out, prefix, sizeof prefix - 1);
    char *o = out + sizeof prefix - 1;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = 0;
    if (len) *len = out_n;
    return out;
}

char *ac_png_data_uri(const unsigned char *pixels, int w, int h, const unsigned char (*palette)[3],
                      int n_colours, size_t *len)
{
    if (!pixels || !palette || w < 1 || h < 1 || w > 16384 || h > 16384 || n_colours < 1 || n_colours > 256)
        return NULL;
    /* Scanlines: a filter byte (0, none) then w indices. */
    size_t raw_n = (size_t)h * ((size_t)w + 1);
    unsigned char *raw = malloc(raw_n);
    uLongf z_n = compressBound((uLong)raw_n);
    unsigned char *z = malloc(z_n);
    size_t png_cap = 8 + 25 + 12 + 3 * (size_t)n_colours + 12 + z_n + 12;
    unsigned char *png = malloc(png_cap);
    char *uri = NULL;
    if (!raw || !z || !png) goto out;
    for (int y = 0; y < h; y++) {
        raw[(size_t)y * ((size_t)w + 1)] = 0;
        memcpy(raw + (size_t)y * ((size_t)w + 1) + 1, pixels + (size_t)y * (size_t)w, (size_t)w);
    }
    if (compress2(z, &z_n, raw, (uLong)raw_n, 9) != Z_OK) goto out;
    size_t pos = 8;
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    unsigned char ihdr[13];
    be32(ihdr, (uint32_t)w);
    be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8, ihdr[9] = 3, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0; /* 8-bit palette */
    chunk(png, &pos, "IHDR", ihdr, sizeof ihdr);
    chunk(png, &pos, "PLTE", &palette[0][0], 3 * (size_t)n_colours);
    chunk(png, &pos, "IDAT", z, z_n);
    chunk(png, &pos, "IEND", NULL, 0);
    uri = base64_uri(png, pos, len);
out:
    free(raw);
    free(z);
    free(png);
    return uri;
}
