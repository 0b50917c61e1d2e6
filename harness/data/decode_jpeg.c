/* JPEG decoding with libjpeg-turbo into RGB u8.
 *
 * - DCT scaling (scale_denom 2, 4 or 8) when the image is larger than
 *   needed: the largest reduction that keeps the shorter side >= min_side.
 * - Grayscale is expanded to RGB by libjpeg; CMYK/YCCK is decoded as CMYK
 *   and converted here. Files with an Adobe APP14 marker (Photoshop, and
 *   libjpeg's own CMYK writer) store inverted CMYK: R = C*K/255; others
 *   store plain CMYK: R = (255-C)(255-K)/255 (as PIL does).
 * - A premature end of data is an error (libjpeg only warns and pads with
 *   gray); other corrupt-data warnings are tolerated, as PIL does.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "harness/data/image_decode.h"
#include "kernels/error.h"

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    bool truncated;
} jpeg_err;

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        e->truncated = true;
}

static unsigned pick_denom(unsigned w, unsigned h, int min_side)
{
    unsigned shorter = w < h ? w : h;
    if (min_side <= 0)
        return 1;
    for (unsigned d = 8; d > 1; d /= 2)
        if ((shorter + d - 1) / d >= (unsigned)min_side) /* libjpeg rounds output sizes up */
            return d;
    return 1;
}

static void cmyk_to_rgb(uint8_t *px, size_t npix, bool inverted)
{
    /* in place, forwards: pixel i's 3 outputs never overtake its 4 inputs */
    for (size_t i = 0; i < npix; i++) {
        unsigned c = px[4 * i], m = px[4 * i + 1], y = px[4 * i + 2], k = px[4 * i + 3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        px[3 * i] = (uint8_t)((c * k + 127) / 255);
        px[3 * i + 1] = (uint8_t)((m * k + 127) / 255);
        px[3 * i + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

/* The libjpeg calls; the caller owns cinfo and its cleanup. */
static int jpeg_run(struct jpeg_decompress_struct *cinfo, jpeg_err *err, const uint8_t *bytes, size_t size,
                    const char *name, int min_side, tb_image *img, bool *cmyk)
{
    if (setjmp(err->jump))
        return tb_fail(TB_ERR_DATA, "%s: undecodable JPEG: %s", name, err->msg);
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, bytes, (unsigned long)size);
    jpeg_read_header(cinfo, TRUE);
    *cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    cinfo->out_color_space = *cmyk ? JCS_CMYK : JCS_RGB;
    cinfo->scale_num = 1;
    cinfo->scale_denom = pick_denom(cinfo->image_width, cinfo->image_height, min_side);
    jpeg_calc_output_dimensions(cinfo);
    unsigned long long npix = (unsigned long long)cinfo->output_width * cinfo->output_height;
    TB_CHECK(npix <= TB_DECODE_MAX_PIXELS, TB_ERR_DATA, "%s: JPEG of %ux%u pixels is larger than supported", name,
             cinfo->output_width, cinfo->output_height);
    int comps = *cmyk ? 4 : 3;
    TB_TRY(tb_image_reserve(img, (int)cinfo->output_height, (int)cinfo->output_width, comps));
    jpeg_start_decompress(cinfo);
    TB_CHECK(cinfo->output_components == comps, TB_ERR_DATA, "%s: JPEG decodes to %d components, expected %d", name,
             cinfo->output_components, comps);
    size_t stride = (size_t)cinfo->output_width * (size_t)comps;
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = img->data + (size_t)cinfo->output_scanline * stride;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_decompress(cinfo);
    return TB_OK;
}

int tb_jpeg_decode(const uint8_t *bytes, size_t size, const char *name, int min_side, tb_image *img)
{
    struct jpeg_decompress_struct cinfo;
    memset(&cinfo, 0, sizeof cinfo); /* so that cleanup after an early failure is safe */
    jpeg_err err = {0};
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error_exit;
    err.pub.emit_message = on_emit_message;
    bool cmyk = false;
    int rc = jpeg_run(&cinfo, &err, bytes, size, name, min_side, img, &cmyk);
    bool inverted = cinfo.saw_Adobe_marker;
    jpeg_destroy_decompress(&cinfo);
    TB_TRY(rc);
    TB_CHECK(!err.truncated, TB_ERR_DATA, "%s: truncated JPEG data (premature end of file after %zu bytes)", name,
             size);
    if (cmyk) {
        cmyk_to_rgb(img->data, (size_t)img->h * (size_t)img->w, inverted);
        img->c = 3;
    }
    return TB_OK;
}
