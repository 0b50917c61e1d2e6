/* IDX files (MNIST layout), plain or gzipped, read through zlib: gzread
 * reads uncompressed files transparently, so both go through one path.
 *
 * Image file: magic 0x00000803, then n, rows, cols (big-endian u32), then
 * n*rows*cols bytes. Label file: magic 0x00000801, then n, then n bytes.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "harness/data/dataset_impl.h"
#include "kernels/error.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
/* Images sampled for the normalisation statistics of an "idx" dataset. */
#define IDX_STATS_IMAGES 10000

typedef struct idx_file {
    char path[TB_DATA_PATH_MAX];
    gzFile gz;
} idx_file;

static int idx_find(idx_file *f, const char *root, const char *base)
{
    TB_TRY(tb_path_join(f->path, sizeof f->path, root, base, ""));
    if (!tb_path_exists(f->path)) {
        TB_TRY(tb_path_join(f->path, sizeof f->path, root, base, ".gz"));
        TB_CHECK(tb_path_exists(f->path), TB_ERR_MISSING, "IDX dataset: neither %s/%s nor %s/%s.gz exists", root,
                 base, root, base);
    }
    f->gz = gzopen(f->path, "rb");
    TB_CHECK(f->gz, TB_ERR_IO, "%s: cannot open", f->path);
    gzbuffer(f->gz, 1 << 17);
    return TB_OK;
}

static void idx_close(idx_file *f)
{
    if (f->gz)
        gzclose(f->gz);
    f->gz = NULL;
}

/* zlib's message without the "path: " prefix it adds. */
static const char *gz_message(idx_file *f)
{
    int errnum;
    const char *msg = gzerror(f->gz, &errnum);
    size_t n = strlen(f->path);
    if (strncmp(msg, f->path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        msg += n + 2;
    return msg;
}

/* Reads exactly n bytes at byte offset `offset` of the (decompressed) stream;
 * `what` describes the bytes for the truncation message. */
static int idx_read(idx_file *f, void *dst, size_t n, size_t offset, const char *what)
{
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f->gz, (uint8_t *)dst + got, (unsigned)chunk);
        if (r < 0)
            return tb_fail(TB_ERR_DATA, "%s: corrupt gzip stream while reading %s at offset %zu: %s", f->path, what,
                           offset + got, gz_message(f));
        if (r == 0)
            break;
        got += (size_t)r;
    }
    TB_CHECK(got == n, TB_ERR_DATA, "%s: truncated: expected %zu bytes of %s at offset %zu, got %zu", f->path, n,
             what, offset, got);
    return TB_OK;
}

/* After the last expected byte the stream must end: reading on verifies a
 * gzip member's CRC and length, and catches trailing data. */
static int idx_expect_end(idx_file *f, size_t offset)
{
    uint8_t extra;
    int r = gzread(f->gz, &extra, 1);
    if (r < 0)
        return tb_fail(TB_ERR_DATA, "%s: corrupt gzip stream at its end: %s", f->path, gz_message(f));
    TB_CHECK(r == 0, TB_ERR_DATA, "%s: unexpected data after the %zu bytes the header announces", f->path, offset);
    return TB_OK;
}

/* An uncompressed file's size is known up front: a header announcing more
 * data than the file holds is reported before allocating for it. */
static int idx_check_plain_size(idx_file *f, size_t expected)
{
    struct stat st;
    if (!gzdirect(f->gz) || stat(f->path, &st) != 0)
        return TB_OK;
    TB_CHECK((size_t)st.st_size >= expected, TB_ERR_DATA, "%s: truncated: the header announces %zu bytes, the file has %lld",
             f->path, expected, (long long)st.st_size);
    return TB_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Opens and checks an image file's header; leaves the stream at the pixels. */
static int idx_images_header(idx_file *f, const char *root, const char *base, int64_t *n, int *h, int *w)
{
    TB_TRY(idx_find(f, root, base));
    uint8_t hdr[16];
    TB_TRY(idx_read(f, hdr, sizeof hdr, 0, "header"));
    uint32_t magic = be32(hdr);
    TB_CHECK(magic == IDX_IMAGES_MAGIC, TB_ERR_DATA,
             "%s: bad magic number 0x%08x at offset 0 (expected 0x%08x: an IDX image file of unsigned bytes with 3 "
             "dimensions)", f->path, magic, IDX_IMAGES_MAGIC);
    uint32_t count = be32(hdr + 4), rows = be32(hdr + 8), cols = be32(hdr + 12);
    TB_CHECK(count > 0 && count <= INT32_MAX, TB_ERR_DATA, "%s: bad image count %u at offset 4", f->path, count);
    TB_CHECK(rows > 0 && rows <= 4096 && cols > 0 && cols <= 4096, TB_ERR_DATA,
             "%s: bad image size %ux%u at offset 8 (expected 1..4096)", f->path, rows, cols);
    *n = count;
    *h = (int)rows;
    *w = (int)cols;
    return TB_OK;
}

static int idx_load_images(const char *root, const char *base, tb_dataset *ds)
{
    idx_file f = {0};
    int64_t n = 0;
    int h = 0, w = 0;
    int rc = idx_images_header(&f, root, base, &n, &h, &w);
    size_t bytes = rc == TB_OK ? (size_t)n * (size_t)h * (size_t)w : 0;
    if (rc == TB_OK)
        rc = idx_check_plain_size(&f, 16 + bytes);
    if (rc == TB_OK) {
        ds->pixels = malloc(bytes);
        if (!ds->pixels)
            rc = tb_fail(TB_ERR_NOMEM, "%s: cannot allocate %zu bytes for %lld images", f.path, bytes, (long long)n);
    }
    if (rc == TB_OK)
        rc = idx_read(&f, ds->pixels, bytes, 16, "image data");
    if (rc == TB_OK)
        rc = idx_expect_end(&f, 16 + bytes);
    idx_close(&f);
    TB_TRY(rc);
    ds->n_src = n;
    ds->h = h;
    ds->w = w;
    ds->c = 1;
    return TB_OK;
}

/* Reads a label file; *n_out labels into a new array. */
static int idx_load_labels(const char *root, const char *base, int32_t **out, int64_t *n_out, char *path_out,
                           size_t path_cap)
{
    idx_file f = {0};
    TB_TRY(idx_find(&f, root, base));
    snprintf(path_out, path_cap, "%s", f.path);
    uint8_t hdr[8];
    uint8_t *raw = NULL;
    int32_t *labels = NULL;
    int rc = idx_read(&f, hdr, sizeof hdr, 0, "header");
    uint32_t magic = rc == TB_OK ? be32(hdr) : 0, count = rc == TB_OK ? be32(hdr + 4) : 0;
    if (rc == TB_OK && magic != IDX_LABELS_MAGIC)
        rc = tb_fail(TB_ERR_DATA,
                     "%s: bad magic number 0x%08x at offset 0 (expected 0x%08x: an IDX label file of unsigned bytes "
                     "with 1 dimension)", f.path, magic, IDX_LABELS_MAGIC);
    if (rc == TB_OK && (count == 0 || count > INT32_MAX))
        rc = tb_fail(TB_ERR_DATA, "%s: bad label count %u at offset 4", f.path, count);
    if (rc == TB_OK) {
        raw = malloc(count);
        labels = malloc((size_t)count * sizeof *labels);
        if (!raw || !labels)
            rc = tb_fail(TB_ERR_NOMEM, "%s: cannot allocate %u labels", f.path, count);
    }
    if (rc == TB_OK)
        rc = idx_read(&f, raw, count, 8, "labels");
    if (rc == TB_OK)
        rc = idx_expect_end(&f, 8 + (size_t)count);
    idx_close(&f);
    if (rc == TB_OK) {
        for (uint32_t i = 0; i < count; i++)
            labels[i] = raw[i];
        *out = labels;
        *n_out = count;
    } else {
        free(labels);
    }
    free(raw);
    return rc;
}

/* Labels must be < classes; the message names the file and the byte offset. */
static int check_labels(const int32_t *labels, int64_t n, int classes, const char *path, const char *why)
{
    for (int64_t i = 0; i < n; i++)
        TB_CHECK(labels[i] < classes, TB_ERR_DATA, "%s: label %d at offset %lld is out of range for %d classes (%s)",
                 path, labels[i], (long long)(8 + i), classes, why);
    return TB_OK;
}

static int max_label(const int32_t *labels, int64_t n)
{
    int m = 0;
    for (int64_t i = 0; i < n; i++)
        m = labels[i] > m ? labels[i] : m;
    return m;
}

/* Mean/std of the first IDX_STATS_IMAGES training images, streamed from the
 * file when the dataset holds the test split. */
static int idx_stats(tb_dataset *ds, const char *root, bool train_files)
{
    if (tb_builtin_normalization(ds->name, ds->mean, ds->std))
        return TB_OK;
    tb_pixel_stats st = {0};
    if (train_files) {
        int64_t k = ds->n_src < IDX_STATS_IMAGES ? ds->n_src : IDX_STATS_IMAGES;
        tb_pixel_stats_add(&st, ds->pixels, k * ds->h * ds->w, 1);
        return tb_pixel_stats_finish(&st, 1, ds->mean, ds->std, "IDX training images");
    }
    idx_file f = {0};
    int64_t n;
    int h, w;
    int rc = idx_images_header(&f, root, "train-images-idx3-ubyte", &n, &h, &w);
    int64_t k = n < IDX_STATS_IMAGES ? n : IDX_STATS_IMAGES;
    uint8_t *buf = NULL;
    if (rc == TB_OK) {
        buf = malloc((size_t)k * (size_t)h * (size_t)w);
        if (!buf)
            rc = tb_fail(TB_ERR_NOMEM, "%s: cannot allocate a sample for statistics", f.path);
    }
    if (rc == TB_OK)
        rc = idx_read(&f, buf, (size_t)k * (size_t)h * (size_t)w, 16, "image data");
    if (rc == TB_OK)
        tb_pixel_stats_add(&st, buf, k * h * w, 1);
    free(buf);
    idx_close(&f);
    TB_TRY(rc);
    return tb_pixel_stats_finish(&st, 1, ds->mean, ds->std, f.path);
}

int tb_idx_open(tb_dataset *ds, const tb_data_config *cfg, const char *root, bool train_files)
{
    bool fashion = strcmp(cfg->dataset, "fashion-mnist") == 0;
    TB_CHECK(tb_is_dir(root), TB_ERR_MISSING, "%s dataset: directory '%s' does not exist%s", cfg->dataset, root,
             fashion && strcmp(root, TB_FASHION_MNIST_ROOT) == 0 ? " (install the Debian package dataset-fashion-mnist)"
                                                                : "");
    const char *img_base = train_files ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
    const char *lbl_base = train_files ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";
    TB_TRY(idx_load_images(root, img_base, ds));
    int64_t n_labels;
    char lbl_path[TB_DATA_PATH_MAX];
    TB_TRY(idx_load_labels(root, lbl_base, &ds->labels, &n_labels, lbl_path, sizeof lbl_path));
    TB_CHECK(n_labels == ds->n_src, TB_ERR_DATA, "%s: %lld labels, but %s/%s has %lld images", lbl_path,
             (long long)n_labels, root, img_base, (long long)ds->n_src);
    if (fashion) {
        ds->classes = 10;
        TB_TRY(check_labels(ds->labels, n_labels, 10, lbl_path, "Fashion-MNIST has 10 classes"));
    } else if (train_files) {
        ds->classes = max_label(ds->labels, n_labels) + 1;
    } else {
        /* the class count comes from the training labels */
        int32_t *train_labels;
        int64_t n_train;
        char train_path[TB_DATA_PATH_MAX];
        TB_TRY(idx_load_labels(root, "train-labels-idx1-ubyte", &train_labels, &n_train, train_path,
                               sizeof train_path));
        ds->classes = max_label(train_labels, n_train) + 1;
        free(train_labels);
        TB_TRY(check_labels(ds->labels, n_labels, ds->classes, lbl_path, "classes come from the training labels"));
    }
    return idx_stats(ds, root, train_files);
}
