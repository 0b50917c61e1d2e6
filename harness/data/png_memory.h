/* A libpng reader over bytes in memory, shared by the RGB decoder
 * (decode_png.c) and the label-map reader (label_png.c): libpng's errors
 * longjmp back to the caller's setjmp with their message in msg, a read past
 * the end is such an error naming the offset, and warnings (problems of
 * ancillary chunks: bad iCCP, CRC of text chunks) are ignored because they
 * change neither the pixels nor the labels. */
#ifndef TB_PNG_MEMORY_H
#define TB_PNG_MEMORY_H

#include <png.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tb_png_memory {
    const uint8_t *bytes;
    size_t size, pos;
    char msg[256];
} tb_png_memory;

/* Creates *png and *info reading src->bytes from src->pos (TB_ERR_NOMEM
 * naming `name` when libpng cannot); the caller sets its setjmp before the
 * first read and frees both with png_destroy_read_struct(png, info, NULL). */
int tb_png_memory_open(tb_png_memory *src, const char *name, png_structp *png, png_infop *info);

/* The warning handler above, for libpng writers too. */
void tb_png_ignore_warning(png_structp png, png_const_charp msg);

#endif
