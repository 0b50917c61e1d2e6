/* JPEG encoding into memory with libjpeg(-turbo) (see jpeg_write.h). */
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "harness/data/jpeg_write.h"
#include "kernels/error.h"

typedef struct jpeg_werr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_werr;

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_werr *e = (jpeg_werr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* The libjpeg calls; the caller owns cinfo and the output buffer. */
static int jpeg_run(struct jpeg_compress_struct *cinfo, jpeg_werr *err, const uint8_t *px, int h, int w, int c,
                    int quality, const char *name, unsigned char **buf, unsigned long *len)
{
    if (setjmp(err->jump))
        return tb_fail(TB_ERR_IO, "%s: JPEG encoding failed: %s", name, err->msg);
    jpeg_create_compress(cinfo);
    jpeg_mem_dest(cinfo, buf, len);
    cinfo->image_width = (JDIMENSION)w;
    cinfo->image_height = (JDIMENSION)h;
    cinfo->input_components = c;
    cinfo->in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
    jpeg_start_compress(cinfo, TRUE);
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)cinfo->next_scanline * (size_t)w * (size_t)c);
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
    return TB_OK;
}

int tb_jpeg_encode(const uint8_t *px, int h, int w, int c, int quality, const char *name, uint8_t **out,
                   size_t *size)
{
    *out = NULL;
    *size = 0;
    TB_CHECK(h > 0 && w > 0 && h <= JPEG_MAX_DIMENSION && w <= JPEG_MAX_DIMENSION && (c == 1 || c == 3),
             TB_ERR_INVALID, "%s: cannot encode a %dx%dx%d image as JPEG", name, h, w, c);
    TB_CHECK(quality >= 1 && quality <= 100, TB_ERR_INVALID, "%s: JPEG quality %d outside 1..100", name, quality);
    struct jpeg_compress_struct cinfo;
    memset(&cinfo, 0, sizeof cinfo);
    jpeg_werr err;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error_exit;
    unsigned char *buf = NULL; /* libjpeg allocates and grows it */
    unsigned long len = 0;
    int rc = jpeg_run(&cinfo, &err, px, h, w, c, quality, name, &buf, &len);
    jpeg_destroy_compress(&cinfo);
    if (rc != TB_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *size = len;
    return TB_OK;
}
