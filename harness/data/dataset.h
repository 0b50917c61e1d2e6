/* Classification datasets: one split of one dataset, read into u8 HWC images.
 *
 * cfg->dataset selects the format and cfg->root its directory:
 *   fashion-mnist  the Debian package dataset-fashion-mnist (IDX files, gzip),
 *                  root default /usr/share/datasets/fashion-mnist, 10 classes
 *   idx            any directory with the four MNIST-layout files
 *                  (train-images-idx3-ubyte, train-labels-idx1-ubyte,
 *                  t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte), each
 *                  optionally gzipped (.gz); classes = max training label + 1
 *   cifar10        data_batch_1..5.bin + test_batch.bin (root, or root/cifar-10-batches-bin)
 *   cifar100       train.bin + test.bin, fine labels (root, or root/cifar-100-binary)
 *   imagefolder    root/train/<class>/<image> (.jpg, .jpeg, .png) and root/val/<class>/...,
 *                  classes sorted by name (byte order), always decoded to RGB
 *   synthetic      generated from (index, split): learnable class patterns
 *                  plus noise, sizes from cfg->synthetic_*
 *
 * Subsets (documented decisions):
 *   - cfg->holdout > 0: both splits come from the training files; a fixed
 *     permutation (seed TB_DATA_SUBSET_SEED, independent of the run seed) of
 *     the training split is cut so that its last `holdout` images form the
 *     validation split and the rest the training split. The test split is
 *     never read, so tuning never touches it.
 *   - cfg->train_limit / val_limit > 0: the first N images of a fixed
 *     permutation (same constant seed) of the split, so that a limit on a
 *     class-sorted dataset (imagefolder) still covers every class. A subset is
 *     kept in ascending file order (sequential reads).
 *
 * The images of the two splits are normalised with the statistics of the
 * training split (tb_dataset_normalization): built-in constants for
 * fashion-mnist, CIFAR and ImageNet-style folders (class folders named
 * n########), otherwise computed on a sample of the training split.
 */
#ifndef TB_DATASET_H
#define TB_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_FASHION_MNIST_ROOT "/usr/share/datasets/fashion-mnist"
/* The seed of the fixed permutations behind holdout and limits ("subset"). */
#define TB_DATA_SUBSET_SEED 0x7375627365747ull

typedef struct tb_dataset tb_dataset;

/* A decoded image, u8 HWC. Buffers are owned by the struct and grown as
 * needed, so a worker reuses one tb_image for every sample it reads.
 * Zero-initialise before first use; release with tb_image_free. */
typedef struct tb_image {
    uint8_t *data;
    int h, w, c;
    size_t cap;        /* bytes allocated at data */
    uint8_t *file;     /* scratch: the encoded file's bytes (imagefolder) */
    size_t file_cap;
} tb_image;

void tb_image_free(tb_image *img);
/* Makes room for h*w*c bytes and sets the shape. */
int tb_image_reserve(tb_image *img, int h, int w, int c);

/* Opens the training (train_split) or validation split described by cfg.
 * Errors: TB_ERR_MISSING (root or a file absent), TB_ERR_DATA (bad contents,
 * the message names the file and the problem), TB_ERR_INVALID (bad config). */
int tb_dataset_open(tb_dataset **out, const tb_data_config *cfg, bool train_split);
void tb_dataset_close(tb_dataset *ds);

int64_t tb_dataset_count(const tb_dataset *ds);
/* Native image size; 0 for datasets whose images vary in size (imagefolder). */
int tb_dataset_height(const tb_dataset *ds);
int tb_dataset_width(const tb_dataset *ds);
int tb_dataset_channels(const tb_dataset *ds);
int tb_dataset_classes(const tb_dataset *ds);
const char *tb_dataset_name(const tb_dataset *ds);
bool tb_dataset_is_train(const tb_dataset *ds);
/* Label of sample i (0 <= i < count). */
int32_t tb_dataset_label(const tb_dataset *ds, int64_t i);
/* Index of sample i in its split's files (the training files with holdout). */
int64_t tb_dataset_source_index(const tb_dataset *ds, int64_t i);
/* Per-channel mean and std in the 0..255 pixel scale (channels() entries,
 * always 3 slots written; gray datasets repeat channel 0). */
void tb_dataset_normalization(const tb_dataset *ds, float mean[3], float std[3]);
/* Number of distinct undecodable images skipped so far (cfg->skip_bad). */
int64_t tb_dataset_skipped(const tb_dataset *ds);

/* Reads sample i into img (u8 HWC) and its label. min_side > 0 allows a
 * decoder to produce a smaller image (JPEG DCT scaling) as long as its
 * shorter side stays >= min_side (or the original size when smaller).
 * With cfg->skip_bad an undecodable image is counted and replaced by the
 * next decodable sample (i+1, i+2, ... wrapping), so results stay a pure
 * function of i. Thread-safe: many workers read one dataset concurrently. */
int tb_dataset_read(tb_dataset *ds, int64_t i, int min_side, tb_image *img, int32_t *label);

/* Decodes one JPEG or PNG file (detected by its magic bytes, not its name)
 * from memory into RGB u8; `name` is used in error messages. Grayscale,
 * palette, alpha (dropped), 16-bit and CMYK (Adobe inverted or not) inputs
 * are converted. */
int tb_image_decode(const uint8_t *bytes, size_t size, const char *name, int min_side, tb_image *img);

#ifdef __cplusplus
}
#endif
#endif
