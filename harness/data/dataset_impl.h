/* Internal to harness/data: the dataset object and the per-format openers.
 *
 * A format's opener fills the source fields (n_src, labels, shape, classes,
 * mean/std and either in-memory pixels or a read function); dataset.c then
 * applies holdout and limits through `map`.
 */
#ifndef TB_DATASET_IMPL_H
#define TB_DATASET_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "harness/data/dataset.h"

typedef struct tb_dataset_ops {
    /* Reads source sample `src` (an index into the split's files) as u8 HWC. */
    int (*read)(tb_dataset *ds, int64_t src, int min_side, tb_image *img);
    void (*close)(tb_dataset *ds);
} tb_dataset_ops;

struct tb_dataset {
    char name[TB_NAME_MAX];
    bool train;
    bool skip_bad;
    int h, w, c;           /* native size; h = w = 0 when images vary */
    int classes;
    int64_t n_src;         /* images in the split's files */
    int32_t *labels;       /* n_src labels */
    uint8_t *pixels;       /* in-memory formats: n_src * h * w * c bytes, HWC; else NULL */
    int64_t *map;          /* subset index -> source index; NULL = identity */
    int64_t n;             /* images in the subset */
    float mean[3], std[3]; /* 0..255 scale, from the training split */
    atomic_uchar *bad;     /* skip_bad: one flag per source image */
    atomic_llong skipped;
    const tb_dataset_ops *ops; /* NULL for in-memory formats */
    void *impl;
};

/* Openers: `train_files` selects the training files (also for a holdout
 * validation split). Each names the file and the problem on failure. */
int tb_idx_open(tb_dataset *ds, const tb_data_config *cfg, const char *root, bool train_files);
int tb_cifar_open(tb_dataset *ds, const tb_data_config *cfg, const char *root, bool train_files);
int tb_imagefolder_open(tb_dataset *ds, const tb_data_config *cfg, const char *root, bool train_files);
int tb_synthetic_open(tb_dataset *ds, const tb_data_config *cfg, bool train_files);

/* Per-channel statistics accumulated over u8 pixels (stats.c). */
typedef struct tb_pixel_stats {
    double sum[3], sumsq[3];
    int64_t count; /* pixels per channel */
} tb_pixel_stats;

void tb_pixel_stats_add(tb_pixel_stats *s, const uint8_t *px, int64_t npix, int c);
/* Writes mean/std (0..255); fails when nothing was accumulated. */
int tb_pixel_stats_finish(const tb_pixel_stats *s, int c, float mean[3], float std[3], const char *what);
/* Built-in constants; false when the dataset has none. */
bool tb_builtin_normalization(const char *dataset, float mean[3], float std[3]);

/* Paths built from a root and names: longer ones are refused, not cut. */
#define TB_DATA_PATH_MAX 4096
/* out = dir + "/" + name (+ suffix, may be ""); TB_ERR_INVALID when too long. */
int tb_path_join(char *out, size_t cap, const char *dir, const char *name, const char *suffix);

/* Reads a whole file into a growable buffer; TB_ERR_MISSING / TB_ERR_IO. */
int tb_read_file(const char *path, uint8_t **buf, size_t *cap, size_t *size);
bool tb_path_exists(const char *path);
bool tb_is_dir(const char *path);

#endif
