/* libpng reading from memory (see png_memory.h). */
#include "harness/data/png_memory.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "kernels/error.h"

static void on_png_error(png_structp png, png_const_charp msg)
{
    tb_png_memory *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, "%s", msg);
    png_longjmp(png, 1);
}

void tb_png_ignore_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void read_bytes(png_structp png, png_bytep out, png_size_t n)
{
    tb_png_memory *src = png_get_io_ptr(png);
    if (n > src->size - src->pos) {
        snprintf(src->msg, sizeof src->msg, "truncated PNG data (needed %zu more bytes at offset %zu of %zu)", n,
                 src->pos, src->size);
        png_longjmp(png, 1);
    }
    memcpy(out, src->bytes + src->pos, n);
    src->pos += n;
}

int tb_png_memory_open(tb_png_memory *src, const char *name, png_structp *png, png_infop *info)
{
    snprintf(src->msg, sizeof src->msg, "unknown libpng error");
    *info = NULL;
    *png = png_create_read_struct(PNG_LIBPNG_VER_STRING, src, on_png_error, tb_png_ignore_warning);
    TB_CHECK(*png, TB_ERR_NOMEM, "%s: cannot create a PNG reader", name);
    *info = png_create_info_struct(*png);
    if (!*info) {
        png_destroy_read_struct(png, NULL, NULL);
        return tb_fail(TB_ERR_NOMEM, "%s: cannot create a PNG reader", name);
    }
    png_set_read_fn(*png, src, read_bytes);
    return TB_OK;
}
