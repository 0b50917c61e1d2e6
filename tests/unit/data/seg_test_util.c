#include "seg_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <png.h>
#include <stdio.h>
#include <stdlib.h>

#include "data_test_util.h"
#include "det_test_util.h"
#include "harness/data/fashion_scenes.h"
#include "harness/data/jpeg_write.h"
#include "harness/data/label_png.h"
#include "kernels/error.h"

void stu_make_ade_dirs(const char *base)
{
    char p[4096];
    const char *subs[] = {"images/training", "images/validation", "annotations/training", "annotations/validation"};
    for (int k = 0; k < 4; k++)
        tdu_mkdirs(tdu_pathf(p, sizeof p, "%s/%s", base, subs[k]));
}

uint8_t stu_pixel(int seed, int y, int x, int k)
{
    int v = 10 + 5 * seed + 2 * y + 3 * x + 30 * k;
    return (uint8_t)(v > 255 ? 255 : v);
}

void stu_write_ade_image(const char *base, const char *split, const char *stem, int h, int w, int seed)
{
    char p[4096];
    tdu_pathf(p, sizeof p, "%s/images/%s/%s.jpg", base, split, stem);
    uint8_t *px = malloc((size_t)h * w * 3), *jpg = NULL;
    assert_non_null(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < 3; k++)
                px[((size_t)y * w + x) * 3 + k] = stu_pixel(seed, y, x, k);
    size_t size = 0;
    if (tb_jpeg_encode(px, h, w, 3, 100, p, &jpg, &size) != TB_OK)
        fail_msg("%s", tb_errmsg());
    tdu_write_file(p, jpg, size);
    free(jpg);
    free(px);
}

void stu_write_ade_labels(const char *base, const char *split, const char *stem, int h, int w,
                          const uint8_t *stored, bool palette)
{
    char p[4096];
    tdu_pathf(p, sizeof p, "%s/annotations/%s/%s.png", base, split, stem);
    if (!palette)
        tdu_write_png(p, w, h, PNG_COLOR_TYPE_GRAY, 8, stored, NULL, 0);
    else if (tb_label_png_write(p, stored, h, w) != TB_OK)
        fail_msg("%s", tb_errmsg());
}

void stu_make_fashion_scenes(const char *root, const char *src, int train_count, int test_count, int size)
{
    dtu_write_fashion_source(src, 40, 20);
    tb_fashion_scenes_options fo;
    tb_fashion_scenes_defaults(&fo);
    fo.train_count = train_count;
    fo.test_count = test_count;
    fo.size = size;
    snprintf(fo.source, sizeof fo.source, "%s", src);
    if (tb_fashion_scenes_ensure(&fo, root) != TB_OK)
        fail_msg("%s", tb_errmsg());
}
