/* Dataset selection, subsets (holdout, limits) and the shared accessors. */
#include "harness/data/dataset_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/error.h"
#include "kernels/rng.h"

void tb_image_free(tb_image *img)
{
    free(img->data);
    free(img->file);
    memset(img, 0, sizeof *img);
}

int tb_image_reserve(tb_image *img, int h, int w, int c)
{
    size_t need = (size_t)h * (size_t)w * (size_t)c;
    if (need > img->cap) {
        uint8_t *p = realloc(img->data, need);
        if (!p)
            return tb_fail(TB_ERR_NOMEM, "image buffer: cannot allocate %zu bytes for %dx%dx%d", need, h, w, c);
        img->data = p;
        img->cap = need;
    }
    img->h = h;
    img->w = w;
    img->c = c;
    return TB_OK;
}

int tb_path_join(char *out, size_t cap, const char *dir, const char *name, const char *suffix)
{
    int n = snprintf(out, cap, "%s/%s%s", dir, name, suffix);
    TB_CHECK(n >= 0 && (size_t)n < cap, TB_ERR_INVALID, "path too long: %s/%s%s", dir, name, suffix);
    return TB_OK;
}

bool tb_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

bool tb_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int tb_read_file(const char *path, uint8_t **buf, size_t *cap, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return tb_fail(errno == ENOENT ? TB_ERR_MISSING : TB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return tb_fail(TB_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    size_t n = (size_t)st.st_size;
    if (n + 1 > *cap) {
        uint8_t *p = realloc(*buf, n + 1);
        if (!p) {
            fclose(f);
            return tb_fail(TB_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path, n + 1);
        }
        *buf = p;
        *cap = n + 1;
    }
    size_t got = fread(*buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n)
        return tb_fail(err ? TB_ERR_IO : TB_ERR_DATA, "%s: read %zu of %zu bytes%s", path, got, n,
                       err ? " (I/O error)" : " (file shrank while reading)");
    *size = n;
    return TB_OK;
}

/* A fixed permutation of 0..n-1 (seed TB_DATA_SUBSET_SEED), used by holdout
 * and limits so that every run, whatever its seed, sees the same subsets. */
static int subset_permutation(int64_t n, int32_t **out)
{
    if (n > INT32_MAX)
        return tb_fail(TB_ERR_INVALID, "dataset subsets: %lld images is more than supported (2^31 - 1)", (long long)n);
    int32_t *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p)
        return tb_fail(TB_ERR_NOMEM, "dataset subsets: cannot allocate a permutation of %lld", (long long)n);
    for (int64_t i = 0; i < n; i++)
        p[i] = (int32_t)i;
    tb_rng r;
    tb_rng_seed(&r, TB_DATA_SUBSET_SEED, 0);
    tb_rng_shuffle_i32(&r, p, n);
    *out = p;
    return TB_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Builds ds->map from holdout and the split's limit (see dataset.h). */
static int apply_subsets(tb_dataset *ds, const tb_data_config *cfg, bool train_split)
{
    int64_t limit = train_split ? cfg->train_limit : cfg->val_limit;
    TB_CHECK(cfg->holdout >= 0, TB_ERR_INVALID, "data.holdout must be >= 0, got %lld", (long long)cfg->holdout);
    TB_CHECK(limit >= 0, TB_ERR_INVALID, "data.%s must be >= 0, got %lld", train_split ? "train_limit" : "val_limit",
             (long long)limit);
    if (cfg->holdout == 0 && (limit == 0 || limit >= ds->n_src)) {
        ds->n = ds->n_src;
        return TB_OK;
    }
    int64_t lo = 0, hi = ds->n_src; /* the window of the permutation this split uses */
    if (cfg->holdout > 0) {
        TB_CHECK(cfg->holdout < ds->n_src, TB_ERR_INVALID,
                 "data.holdout = %lld leaves no training images: the %s training split has %lld",
                 (long long)cfg->holdout, ds->name, (long long)ds->n_src);
        if (train_split)
            hi = ds->n_src - cfg->holdout;
        else
            lo = ds->n_src - cfg->holdout;
    }
    if (limit > 0 && limit < hi - lo)
        hi = lo + limit;
    int32_t *perm = NULL;
    TB_TRY(subset_permutation(ds->n_src, &perm));
    ds->n = hi - lo;
    ds->map = malloc((size_t)ds->n * sizeof *ds->map);
    if (!ds->map) {
        free(perm);
        return tb_fail(TB_ERR_NOMEM, "dataset subsets: cannot allocate a map of %lld", (long long)ds->n);
    }
    for (int64_t i = 0; i < ds->n; i++)
        ds->map[i] = perm[lo + i];
    free(perm);
    qsort(ds->map, (size_t)ds->n, sizeof *ds->map, cmp_i64);
    return TB_OK;
}

static int open_source(tb_dataset *ds, const tb_data_config *cfg, bool train_files)
{
    const char *name = cfg->dataset;
    const char *root = cfg->root;
    if (strcmp(name, "fashion-mnist") == 0)
        return tb_idx_open(ds, cfg, root[0] ? root : TB_FASHION_MNIST_ROOT, train_files);
    if (strcmp(name, "synthetic") == 0)
        return tb_synthetic_open(ds, cfg, train_files);
    bool known = strcmp(name, "idx") == 0 || strcmp(name, "cifar10") == 0 || strcmp(name, "cifar100") == 0 ||
                 strcmp(name, "imagefolder") == 0;
    TB_CHECK(known, TB_ERR_INVALID,
             "data.dataset: unknown dataset '%s' (expected fashion-mnist, idx, cifar10, cifar100, imagefolder or "
             "synthetic)", name);
    TB_CHECK(root[0], TB_ERR_INVALID, "data.root must name the %s directory (there is no default)", name);
    TB_CHECK(tb_is_dir(root), TB_ERR_MISSING, "%s dataset: root directory '%s' does not exist", name, root);
    if (strcmp(name, "idx") == 0)
        return tb_idx_open(ds, cfg, root, train_files);
    if (strcmp(name, "imagefolder") == 0)
        return tb_imagefolder_open(ds, cfg, root, train_files);
    return tb_cifar_open(ds, cfg, root, train_files);
}

int tb_dataset_open(tb_dataset **out, const tb_data_config *cfg, bool train_split)
{
    *out = NULL;
    tb_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return tb_fail(TB_ERR_NOMEM, "dataset: out of memory");
    snprintf(ds->name, sizeof ds->name, "%s", cfg->dataset);
    ds->train = train_split;
    ds->skip_bad = cfg->skip_bad;
    atomic_init(&ds->skipped, 0);
    /* a holdout validation split is cut from the training files */
    bool train_files = train_split || cfg->holdout > 0;
    int rc = open_source(ds, cfg, train_files);
    if (rc == TB_OK)
        rc = apply_subsets(ds, cfg, train_split);
    if (rc == TB_OK && ds->n == 0)
        rc = tb_fail(TB_ERR_DATA, "%s dataset: the %s split is empty", ds->name, train_split ? "training" : "validation");
    if (rc == TB_OK && ds->skip_bad && ds->ops) {
        ds->bad = calloc((size_t)ds->n_src, sizeof *ds->bad);
        if (!ds->bad)
            rc = tb_fail(TB_ERR_NOMEM, "dataset: cannot allocate %lld skip flags", (long long)ds->n_src);
    }
    if (rc != TB_OK) {
        tb_dataset_close(ds);
        return rc;
    }
    *out = ds;
    return TB_OK;
}

void tb_dataset_close(tb_dataset *ds)
{
    if (!ds)
        return;
    if (ds->ops && ds->ops->close)
        ds->ops->close(ds);
    free(ds->labels);
    free(ds->pixels);
    free(ds->map);
    free((void *)ds->bad);
    free(ds);
}

int64_t tb_dataset_count(const tb_dataset *ds) { return ds->n; }
int tb_dataset_height(const tb_dataset *ds) { return ds->h; }
int tb_dataset_width(const tb_dataset *ds) { return ds->w; }
int tb_dataset_channels(const tb_dataset *ds) { return ds->c; }
int tb_dataset_classes(const tb_dataset *ds) { return ds->classes; }
const char *tb_dataset_name(const tb_dataset *ds) { return ds->name; }
bool tb_dataset_is_train(const tb_dataset *ds) { return ds->train; }
int64_t tb_dataset_skipped(const tb_dataset *ds) { return atomic_load(&ds->skipped); }

int64_t tb_dataset_source_index(const tb_dataset *ds, int64_t i) { return ds->map ? ds->map[i] : i; }

int32_t tb_dataset_label(const tb_dataset *ds, int64_t i) { return ds->labels[tb_dataset_source_index(ds, i)]; }

void tb_dataset_normalization(const tb_dataset *ds, float mean[3], float std[3])
{
    for (int k = 0; k < 3; k++) {
        mean[k] = ds->mean[k];
        std[k] = ds->std[k];
    }
}

static int read_source(tb_dataset *ds, int64_t src, int min_side, tb_image *img)
{
    if (ds->ops)
        return ds->ops->read(ds, src, min_side, img);
    TB_TRY(tb_image_reserve(img, ds->h, ds->w, ds->c));
    size_t bytes = (size_t)ds->h * (size_t)ds->w * (size_t)ds->c;
    memcpy(img->data, ds->pixels + (size_t)src * bytes, bytes);
    return TB_OK;
}

int tb_dataset_read(tb_dataset *ds, int64_t i, int min_side, tb_image *img, int32_t *label)
{
    TB_CHECK(i >= 0 && i < ds->n, TB_ERR_INVALID, "%s dataset: sample %lld out of range [0, %lld)", ds->name,
             (long long)i, (long long)ds->n);
    /* with skip_bad, walk forward to the next decodable sample (deterministic in i) */
    for (int64_t k = 0; k < ds->n; k++) {
        int64_t j = (i + k) % ds->n;
        int64_t src = tb_dataset_source_index(ds, j);
        if (ds->bad && atomic_load(&ds->bad[src]))
            continue;
        int rc = read_source(ds, src, min_side, img);
        if (rc == TB_OK) {
            *label = ds->labels[src];
            return TB_OK;
        }
        if (rc != TB_ERR_DATA || !ds->bad)
            return rc;
        if (atomic_exchange(&ds->bad[src], 1) == 0)
            atomic_fetch_add(&ds->skipped, 1);
    }
    return tb_fail(TB_ERR_DATA, "%s dataset: every image of the %s split is undecodable (skip_bad skipped %lld)",
                   ds->name, ds->train ? "training" : "validation", (long long)tb_dataset_skipped(ds));
}
