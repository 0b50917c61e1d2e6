/* CIFAR-10 / CIFAR-100 binary versions.
 *
 * CIFAR-10: data_batch_1.bin .. data_batch_5.bin and test_batch.bin, records
 * of 1 label byte + 3072 pixel bytes. CIFAR-100: train.bin and test.bin,
 * records of a coarse and a fine label byte + 3072 pixel bytes; we use the
 * fine labels (100 classes). Pixels are planar (1024 R, 1024 G, 1024 B,
 * row-major 32x32) and are stored here as HWC. Any whole number of records
 * per file is accepted (tests use small files); the files may sit in root or
 * in the archive's own folder (cifar-10-batches-bin, cifar-100-binary).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/data/dataset_impl.h"
#include "kernels/error.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_MAX_FILES 5

typedef struct cifar_layout {
    int label_bytes;  /* bytes before the pixels */
    int label_offset; /* which of them is the label we use */
    int classes;
    const char *subdir;
    const char *files[CIFAR_MAX_FILES];
    int n_files;
} cifar_layout;

static const cifar_layout cifar10_train = {1, 0, 10, "cifar-10-batches-bin",
    {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}, 5};
static const cifar_layout cifar10_test = {1, 0, 10, "cifar-10-batches-bin", {"test_batch.bin"}, 1};
static const cifar_layout cifar100_train = {2, 1, 100, "cifar-100-binary", {"train.bin"}, 1};
static const cifar_layout cifar100_test = {2, 1, 100, "cifar-100-binary", {"test.bin"}, 1};

/* Sizes every file first so that the arrays are allocated once. */
static int cifar_sizes(const char *dir, const cifar_layout *L, int64_t counts[CIFAR_MAX_FILES], int64_t *total)
{
    size_t rec = (size_t)L->label_bytes + 3 * CIFAR_PIXELS;
    *total = 0;
    for (int f = 0; f < L->n_files; f++) {
        char path[TB_DATA_PATH_MAX];
        TB_TRY(tb_path_join(path, sizeof path, dir, L->files[f], ""));
        struct stat st;
        TB_CHECK(stat(path, &st) == 0, errno == ENOENT ? TB_ERR_MISSING : TB_ERR_IO, "%s: cannot open: %s", path,
                 strerror(errno));
        size_t size = (size_t)st.st_size;
        TB_CHECK(size >= rec, TB_ERR_DATA, "%s: truncated: expected at least one %zu-byte record, got %zu bytes", path,
                 rec, size);
        TB_CHECK(size % rec == 0, TB_ERR_DATA,
                 "%s: truncated: %zu bytes is not a whole number of %zu-byte records (expected %zu bytes for %zu "
                 "records)", path, size, rec, (size / rec + 1) * rec, size / rec + 1);
        counts[f] = (int64_t)(size / rec);
        *total += counts[f];
    }
    return TB_OK;
}

/* Reads one file's records into labels/pixels starting at record `first`. */
static int cifar_read_file(tb_dataset *ds, const char *dir, const cifar_layout *L, int f, int64_t first, int64_t count)
{
    size_t rec = (size_t)L->label_bytes + 3 * CIFAR_PIXELS;
    char path[TB_DATA_PATH_MAX];
    TB_TRY(tb_path_join(path, sizeof path, dir, L->files[f], ""));
    uint8_t *buf = NULL;
    size_t cap = 0, size = 0;
    TB_TRY(tb_read_file(path, &buf, &cap, &size));
    int rc = TB_OK;
    if (size != (size_t)count * rec)
        rc = tb_fail(TB_ERR_DATA, "%s: truncated: expected %zu bytes, got %zu (file changed while reading)", path,
                     (size_t)count * rec, size);
    for (int64_t r = 0; rc == TB_OK && r < count; r++) {
        const uint8_t *p = buf + (size_t)r * rec;
        int label = p[L->label_offset];
        if (label >= L->classes) {
            rc = tb_fail(TB_ERR_DATA, "%s: label %d at offset %zu (record %lld) is out of range for %d classes", path,
                         label, (size_t)r * rec + (size_t)L->label_offset, (long long)r, L->classes);
            break;
        }
        ds->labels[first + r] = label;
        const uint8_t *planes = p + L->label_bytes;
        uint8_t *dst = ds->pixels + (size_t)(first + r) * 3 * CIFAR_PIXELS;
        for (int i = 0; i < CIFAR_PIXELS; i++)
            for (int ch = 0; ch < 3; ch++)
                dst[i * 3 + ch] = planes[ch * CIFAR_PIXELS + i];
    }
    free(buf);
    return rc;
}

int tb_cifar_open(tb_dataset *ds, const tb_data_config *cfg, const char *root, bool train_files)
{
    bool c100 = strcmp(cfg->dataset, "cifar100") == 0;
    const cifar_layout *L = c100 ? (train_files ? &cifar100_train : &cifar100_test)
                                 : (train_files ? &cifar10_train : &cifar10_test);
    char dir[TB_DATA_PATH_MAX], probe[TB_DATA_PATH_MAX];
    TB_CHECK(strlen(root) < sizeof dir, TB_ERR_INVALID, "path too long: %s", root);
    strcpy(dir, root);
    TB_TRY(tb_path_join(probe, sizeof probe, root, L->files[0], ""));
    if (!tb_path_exists(probe)) {
        TB_TRY(tb_path_join(dir, sizeof dir, root, L->subdir, ""));
        TB_TRY(tb_path_join(probe, sizeof probe, dir, L->files[0], ""));
        TB_CHECK(tb_path_exists(probe), TB_ERR_MISSING, "%s dataset: %s not found in %s or %s", cfg->dataset,
                 L->files[0], root, dir);
    }
    int64_t counts[CIFAR_MAX_FILES], total;
    TB_TRY(cifar_sizes(dir, L, counts, &total));
    ds->h = ds->w = CIFAR_SIDE;
    ds->c = 3;
    ds->classes = L->classes;
    ds->n_src = total;
    ds->labels = malloc((size_t)total * sizeof *ds->labels);
    ds->pixels = malloc((size_t)total * 3 * CIFAR_PIXELS);
    TB_CHECK(ds->labels && ds->pixels, TB_ERR_NOMEM, "%s dataset: cannot allocate %lld images", cfg->dataset,
             (long long)total);
    int64_t first = 0;
    for (int f = 0; f < L->n_files; f++) {
        TB_TRY(cifar_read_file(ds, dir, L, f, first, counts[f]));
        first += counts[f];
    }
    if (!tb_builtin_normalization(cfg->dataset, ds->mean, ds->std))
        return tb_fail(TB_ERR_INTERNAL, "no CIFAR normalisation constants for %s", cfg->dataset);
    return TB_OK;
}
