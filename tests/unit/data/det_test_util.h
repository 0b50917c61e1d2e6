/* Helpers for the detection data tests: small VOC-layout folders, a tiny
 * Fashion-MNIST-like IDX source, and tree comparison. Every helper fails
 * the current cmocka test on error. */
#ifndef TB_DET_TEST_UTIL_H
#define TB_DET_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* One object of a hand-written annotation; difficult < 0 omits the tag. */
typedef struct dtu_obj {
    const char *name;
    int xmin, ymin, xmax, ymax; /* 1-based inclusive, as VOC files */
    int difficult;
} dtu_obj;

/* Writes ROOT/FOLDER/Annotations/<id>.xml for a w x h image. */
void dtu_write_voc_xml(const char *root, const char *folder, const char *id, int w, int h, const dtu_obj *objs,
                       int n);
/* Writes ROOT/FOLDER/Annotations/<id>.xml with this exact text. */
void dtu_write_text_xml(const char *root, const char *folder, const char *id, const char *text);
/* Creates ROOT/FOLDER/{Annotations,JPEGImages,ImageSets/Main,SegmentationClass}. */
void dtu_make_voc_dirs(const char *root, const char *folder);
/* Writes ROOT/FOLDER/ImageSets/Main/<set>.txt listing ids. */
void dtu_write_image_set(const char *root, const char *folder, const char *set, const char *const *ids, int n);
/* Writes ROOT/FOLDER/JPEGImages/<id>.jpg: a w x h RGB (or gray) image whose
 * pixel (y, x) is dtu_pixel(seed, y, x, k), quality 100. */
void dtu_write_voc_jpeg(const char *root, const char *folder, const char *id, int w, int h, int c, int seed);
uint8_t dtu_pixel(int seed, int y, int x, int k);

/* A Fashion-MNIST-like IDX directory (uncompressed): n_train / n_test 28x28
 * images of filled shapes (never blank) with labels i % 10. */
void dtu_write_fashion_source(const char *dir, int n_train, int n_test);

/* True when both trees hold the same relative paths with the same bytes;
 * `files` receives the number of regular files compared; `report` prints
 * each difference. */
bool dtu_trees_equal(const char *a, const char *b, int *files, bool report);

#endif
