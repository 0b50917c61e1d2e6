/* Internal to harness/data: JPEG encoding with libjpeg(-turbo), for the
 * datasets trickbench generates (fashion_scenes.h). */
#ifndef TB_JPEG_WRITE_H
#define TB_JPEG_WRITE_H

#include <stddef.h>
#include <stdint.h>

/* Encodes px (h x w x c, c = 1 gray or 3 RGB) at `quality` (1..100, baseline,
 * 4:2:0 for RGB as libjpeg's default) into a malloc'd buffer (*out, *size;
 * the caller frees it). The bytes are a pure function of the inputs for a
 * given libjpeg build. `name` is used in error messages. */
int tb_jpeg_encode(const uint8_t *px, int h, int w, int c, int quality, const char *name, uint8_t **out,
                   size_t *size);

#endif
