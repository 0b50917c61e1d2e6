/* Helpers for the data tests: temporary folders and small dataset files
 * written with the same libraries the readers use (zlib, libjpeg, libpng).
 * Every helper fails the current cmocka test on error. */
#ifndef TB_DATA_TEST_UTIL_H
#define TB_DATA_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/config.h"

/* A fresh directory under $TMPDIR (or /tmp); the caller frees the string. */
char *tdu_tempdir(void);
/* Removes a directory tree (no-op when NULL). */
void tdu_rmtree(const char *path);
void tdu_mkdirs(const char *path);
/* path = a + "/" + b into a static per-call-site buffer supplied by the caller. */
const char *tdu_join(char *buf, size_t cap, const char *a, const char *b);

/* snprintf into buf that fails the test instead of truncating. */
const char *tdu_pathf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void tdu_write_file(const char *path, const void *data, size_t n);
void tdu_write_gz(const char *path, const void *data, size_t n);

/* IDX files: n images h x w (u8) and n labels; gz appends ".gz" and compresses. */
void tdu_write_idx_images(const char *dir, const char *base, bool gz, int n, int h, int w, const uint8_t *px);
void tdu_write_idx_labels(const char *dir, const char *base, bool gz, int n, const uint8_t *labels);

/* JPEG: components 3 (RGB), 1 (gray) or 4 (CMYK, written with libjpeg's
 * Adobe marker, i.e. inverted as Photoshop does). */
void tdu_write_jpeg(const char *path, int w, int h, int components, const uint8_t *px, int quality);
/* PNG of the given libpng color type (PNG_COLOR_TYPE_*) and bit depth; px
 * holds the raw samples (palette images: indices, with `palette` of
 * n_palette RGB triples). */
void tdu_write_png(const char *path, int w, int h, int color_type, int bit_depth, const uint8_t *px,
                   const uint8_t *palette, int n_palette);

/* A data config with the documented defaults and the given dataset/root. */
tb_data_config tdu_config(const char *dataset, const char *root);

#endif
