/* Helpers for the segmentation data tests: small ADE20K folders
 * (ADEChallengeData2016 layout) and a small fashion-scenes dataset. Every
 * helper fails the current cmocka test on error. */
#ifndef TB_SEG_TEST_UTIL_H
#define TB_SEG_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Creates BASE/{images,annotations}/{training,validation}. */
void stu_make_ade_dirs(const char *base);
/* Pixel (y, x) channel k of image `seed`: the smooth ramp
 * 10 + 5 seed + 2y + 3x + 30k, capped at 255 (no edges, so JPEG keeps it). */
uint8_t stu_pixel(int seed, int y, int x, int k);
/* BASE/images/SPLIT/STEM.jpg: an h x w RGB JPEG (quality 100, via
 * jpeg_write.h) whose pixel (y, x) channel k is stu_pixel(seed, y, x, k). */
void stu_write_ade_image(const char *base, const char *split, const char *stem, int h, int w, int seed);
/* BASE/annotations/SPLIT/STEM.png: the stored values (h x w), as an 8-bit
 * gray PNG (ADE's files) or a palette one (label_png.h). */
void stu_write_ade_labels(const char *base, const char *split, const char *stem, int h, int w,
                          const uint8_t *stored, bool palette);
/* Generates ROOT/FashionScenes (size x size scenes) from a tiny IDX source
 * written into SRC (det_test_util.h). */
void stu_make_fashion_scenes(const char *root, const char *src, int train_count, int test_count, int size);

#endif
