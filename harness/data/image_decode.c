/* Image decoding entry point: the format is taken from the magic bytes, not
 * the file name (ImageNet's training set has PNG data in a .JPEG file). */
#include <string.h>

#include "harness/data/image_decode.h"
#include "kernels/error.h"

int tb_image_decode(const uint8_t *bytes, size_t size, const char *name, int min_side, tb_image *img)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff)
        return tb_jpeg_decode(bytes, size, name, min_side, img);
    if (size >= sizeof png_sig && memcmp(bytes, png_sig, sizeof png_sig) == 0)
        return tb_png_decode(bytes, size, name, img);
    TB_CHECK(size > 0, TB_ERR_DATA, "%s: undecodable image: the file is empty", name);
    uint8_t head[4] = {0};
    memcpy(head, bytes, size < 4 ? size : 4);
    return tb_fail(TB_ERR_DATA, "%s: undecodable image: neither JPEG nor PNG (first bytes %02x %02x %02x %02x)", name,
                   head[0], head[1], head[2], head[3]);
}
