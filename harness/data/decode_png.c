/* PNG decoding with libpng into RGB u8 (the classic API with transforms):
 * palette -> RGB, gray (any depth) -> RGB, 16-bit -> 8-bit (scaled, rounded),
 * alpha and tRNS dropped (as PIL's convert("RGB")), interlacing handled.
 */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "harness/data/image_decode.h"
#include "harness/data/png_memory.h"
#include "kernels/error.h"

/* The libpng calls; the caller owns png/info and their cleanup. */
static int png_run(png_structp png, png_infop info, tb_png_memory *src, const char *name, tb_image *img)
{
    if (setjmp(png_jmpbuf(png)))
        return tb_fail(TB_ERR_DATA, "%s: undecodable PNG: %s", name, src->msg);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    TB_CHECK((unsigned long long)w * h <= TB_DECODE_MAX_PIXELS, TB_ERR_DATA,
             "%s: PNG of %ux%u pixels is larger than supported", name, (unsigned)w, (unsigned)h);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16)
        png_set_scale_16(png);
    if (color & PNG_COLOR_MASK_ALPHA || png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_strip_alpha(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    TB_CHECK(png_get_rowbytes(png, info) == (size_t)w * 3, TB_ERR_INTERNAL,
             "%s: PNG rows have %zu bytes after conversion, expected %zu", name, (size_t)png_get_rowbytes(png, info),
             (size_t)w * 3);
    TB_TRY(tb_image_reserve(img, (int)h, (int)w, 3));
    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < h; y++)
            png_read_row(png, img->data + (size_t)y * w * 3, NULL);
    png_read_end(png, NULL);
    return TB_OK;
}

int tb_png_decode(const uint8_t *bytes, size_t size, const char *name, tb_image *img)
{
    tb_png_memory src = {.bytes = bytes, .size = size};
    png_structp png;
    png_infop info;
    TB_TRY(tb_png_memory_open(&src, name, &png, &info));
    int rc = png_run(png, info, &src, name, img);
    png_destroy_read_struct(&png, &info, NULL);
    return rc;
}
