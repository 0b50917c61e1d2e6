/* Internal to harness/data: class masks ("label maps") as 8-bit PNG files,
 * read and written as raw values (no palette expansion): VOC's
 * SegmentationClass (palette PNG, 0 background, k = class k-1, 255 void)
 * and ADE20K-style gray label maps both read as they are stored.
 */
#ifndef TB_LABEL_PNG_H
#define TB_LABEL_PNG_H

#include <stdint.h>

#include "harness/data/dataset.h"

/* The PASCAL VOC colour map (256 RGB triples, the bit-interleaving rule of
 * the VOC devkit's labelcolormap.m). */
void tb_voc_colormap(uint8_t rgb[256 * 3]);

/* Reads a gray (bit depth 1..8) or palette PNG into mask (h x w x 1) as its
 * stored values (palette indices, not colours). Other colour types and
 * 16-bit files are TB_ERR_DATA naming the file. Uses mask->file as scratch. */
int tb_label_png_read(const char *path, tb_image *mask);

/* Writes labels (h x w, row-major) as an 8-bit palette PNG with the VOC
 * colour map; the bytes are a pure function of the input. TB_ERR_IO names
 * the file on failure. */
int tb_label_png_write(const char *path, const uint8_t *labels, int h, int w);

#endif
