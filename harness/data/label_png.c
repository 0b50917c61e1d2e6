/* Label-map PNG files: raw 8-bit values in and out (see label_png.h). */
#include "harness/data/label_png.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/data/dataset_impl.h"
#include "harness/data/image_decode.h"
#include "harness/data/png_memory.h"
#include "kernels/error.h"

void tb_voc_colormap(uint8_t rgb[256 * 3])
{
    for (int i = 0; i < 256; i++) {
        int r = 0, g = 0, b = 0, id = i;
        for (int j = 0; j < 8; j++) {
            r |= ((id >> 0) & 1) << (7 - j);
            g |= ((id >> 1) & 1) << (7 - j);
            b |= ((id >> 2) & 1) << (7 - j);
            id >>= 3;
        }
        rgb[3 * i] = (uint8_t)r;
        rgb[3 * i + 1] = (uint8_t)g;
        rgb[3 * i + 2] = (uint8_t)b;
    }
}

/* The libpng read calls; the caller owns png/info and their cleanup. */
static int read_run(png_structp png, png_infop info, tb_png_memory *io, const char *path, tb_image *mask)
{
    if (setjmp(png_jmpbuf(png)))
        return tb_fail(TB_ERR_DATA, "%s: undecodable PNG label map: %s", path, io->msg);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    TB_CHECK((unsigned long long)w * h <= TB_DECODE_MAX_PIXELS, TB_ERR_DATA,
             "%s: PNG of %ux%u pixels is larger than supported", path, (unsigned)w, (unsigned)h);
    TB_CHECK((color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_PALETTE) && depth <= 8, TB_ERR_DATA,
             "%s: a label map must be an 8-bit (or less) gray or palette PNG, got colour type %d, bit depth %d", path,
             color, depth);
    if (depth < 8)
        png_set_packing(png); /* one byte per value, unscaled (not expand_gray, which rescales to 0..255) */
    png_read_update_info(png, info);
    TB_TRY(tb_image_reserve(mask, (int)h, (int)w, 1));
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < h; y++)
            png_read_row(png, mask->data + (size_t)y * w, NULL);
    png_read_end(png, NULL);
    return TB_OK;
}

int tb_label_png_read(const char *path, tb_image *mask)
{
    size_t size = 0;
    TB_TRY(tb_read_file(path, &mask->file, &mask->file_cap, &size));
    tb_png_memory io = {.bytes = mask->file, .size = size};
    TB_CHECK(size >= 8 && png_sig_cmp(mask->file, 0, 8) == 0, TB_ERR_DATA, "%s: not a PNG file", path);
    png_structp png;
    png_infop info;
    TB_TRY(tb_png_memory_open(&io, path, &png, &info));
    int rc = read_run(png, info, &io, path, mask);
    png_destroy_read_struct(&png, &info, NULL);
    return rc;
}

/* The libpng write calls; the caller owns png/info/f and their cleanup. */
static int write_run(png_structp png, png_infop info, FILE *f, const char *path, const uint8_t *labels, int h,
                     int w, char *msg)
{
    if (setjmp(png_jmpbuf(png)))
        return tb_fail(TB_ERR_IO, "%s: PNG writing failed: %s", path, msg);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    uint8_t map[256 * 3];
    png_color palette[256];
    tb_voc_colormap(map);
    for (int i = 0; i < 256; i++)
        palette[i] = (png_color){map[3 * i], map[3 * i + 1], map[3 * i + 2]};
    png_set_PLTE(png, info, palette, 256);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, labels + (size_t)y * w);
    png_write_end(png, NULL);
    return TB_OK;
}

static void on_write_error(png_structp png, png_const_charp msg)
{
    char *buf = png_get_error_ptr(png);
    snprintf(buf, 256, "%s", msg);
    png_longjmp(png, 1);
}

int tb_label_png_write(const char *path, const uint8_t *labels, int h, int w)
{
    TB_CHECK(h > 0 && w > 0, TB_ERR_INVALID, "%s: cannot write a %dx%d label map", path, h, w);
    FILE *f = fopen(path, "wb");
    TB_CHECK(f, TB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    char msg[256] = "";
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, msg, on_write_error, tb_png_ignore_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc;
    if (!info)
        rc = tb_fail(TB_ERR_NOMEM, "%s: cannot create a PNG writer", path);
    else
        rc = write_run(png, info, f, path, labels, h, w, msg);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0 && rc == TB_OK)
        rc = tb_fail(TB_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return rc;
}
