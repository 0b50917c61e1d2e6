/* Internal to harness/data: the per-format decoders behind tb_image_decode.
 * Both write RGB u8 HWC into img and name the file (`name`) on failure. */
#ifndef TB_IMAGE_DECODE_H
#define TB_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "harness/data/dataset.h"

/* Decoded images larger than this many pixels are refused as bad data
 * (a corrupt header must not make us allocate gigabytes). */
#define TB_DECODE_MAX_PIXELS (1ull << 28)

int tb_jpeg_decode(const uint8_t *bytes, size_t size, const char *name, int min_side, tb_image *img);
int tb_png_decode(const uint8_t *bytes, size_t size, const char *name, tb_image *img);

#endif
