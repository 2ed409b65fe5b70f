/* png_raster.h - a palette image as a PNG `data:` URI, for raster parts of SVG pictures (a
 * heat map drawn as one image instead of thousands of rectangles). Compression is zlib's.
 * Thread-safety: reentrant; any thread. The returned string belongs to the caller (free). */
#ifndef AC_PNG_RASTER_H
#define AC_PNG_RASTER_H

#include <stddef.h>

/* pixels[h][w]: palette indices < n_colours (1..256); palette[n_colours][3]: RGB.
 * Returns "data:image/png;base64,..." (NUL-terminated, length in *len if len), or NULL when
 * out of memory or the arguments are out of range. */
char *ac_png_data_uri(const unsigned char *pixels, int w, int h, const unsigned char (*palette)[3],
                      int n_colours, size_t *len);

#endif
