/* Data-layer throughput (a benchmark, not a test):
 *   (a) Fashion-MNIST training batches/s: batch 128, small augmentation
 *   (b) images/s of decode + imagenet augmentation (224 px) over a folder of
 *       500x375 JPEGs, generated once under the given folder (default
 *       /tmp/tb-bench-jpegs) when it does not exist yet
 * Usage: bench_data [--workers N] [--epochs E] [--jpeg-dir DIR] [--jpegs N] [--only fashion|jpeg]
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jpeglib.h>

#include "harness/data/dataset.h"
#include "harness/data/loader.h"
#include "kernels/error.h"
#include "kernels/rng.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* snprintf that refuses to truncate a path. */
static int pathf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    TB_CHECK(n > 0 && (size_t)n < cap, TB_ERR_INVALID, "bench: path too long");
    return TB_OK;
}

static tb_data_config config(const char *dataset, const char *root, int workers)
{
    tb_data_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.dataset, sizeof c.dataset, "%s", dataset);
    snprintf(c.root, sizeof c.root, "%s", root);
    c.workers = workers;
    return c;
}

/* Smooth random colour fields with noise, so the JPEGs compress like photos. */
static int write_jpeg(const char *path, int w, int h, uint64_t seed)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    if (!px)
        return tb_fail(TB_ERR_NOMEM, "bench: out of memory");
    tb_rng r;
    tb_rng_seed(&r, seed, 0);
    double fx[3], fy[3], ph[3];
    for (int c = 0; c < 3; c++) {
        fx[c] = 0.005 + 0.03 * tb_rng_uniform(&r);
        fy[c] = 0.005 + 0.03 * tb_rng_uniform(&r);
        ph[c] = 6.28 * tb_rng_uniform(&r);
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double v = 128 + 90 * sin(fx[c] * x + fy[c] * y + ph[c]) + 20 * (tb_rng_uniform(&r) - 0.5);
                px[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(px);
        return tb_fail(TB_ERR_IO, "bench: cannot write %s", path);
    }
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr err;
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 90, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = px + (size_t)cinfo.next_scanline * w * 3;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(f);
    free(px);
    return TB_OK;
}

/* root/train/c<k>/<i>.jpg and root/val/c<k>/<i>.jpg, 4 classes. */
static int make_jpeg_folder(const char *root, int n)
{
    char path[4096];
    TB_TRY(pathf(path, sizeof path, "%s/train/c0", root));
    struct stat st;
    if (stat(path, &st) == 0)
        return TB_OK;
    mkdir(root, 0755);
    for (const char *split = "train"; split; split = strcmp(split, "train") == 0 ? "val" : NULL) {
        TB_TRY(pathf(path, sizeof path, "%s/%s", root, split));
        mkdir(path, 0755);
        for (int k = 0; k < 4; k++) {
            TB_TRY(pathf(path, sizeof path, "%s/%s/c%d", root, split, k));
            mkdir(path, 0755);
        }
        int count = strcmp(split, "train") == 0 ? n : 8;
        for (int i = 0; i < count; i++) {
            TB_TRY(pathf(path, sizeof path, "%s/%s/c%d/%05d.jpg", root, split, i % 4, i));
            TB_TRY(write_jpeg(path, 500, 375, (uint64_t)i + (split[0] == 'v' ? 100000 : 0)));
        }
    }
    return TB_OK;
}

/* Runs `epochs` epochs and returns the seconds spent waiting on the loader. */
static int run(tb_dataset *ds, const tb_loader_options *opt, int epochs, double *seconds, int64_t *batches)
{
    tb_loader *ld;
    TB_TRY(tb_loader_create(&ld, ds, opt));
    double t0 = now();
    *batches = 0;
    int rc = TB_OK;
    for (int e = 0; e < epochs && rc == TB_OK; e++) {
        rc = tb_loader_start_epoch(ld, e);
        tb_batch *b;
        while (rc == TB_OK && (rc = tb_loader_next(ld, &b)) == TB_OK && b) {
            (*batches)++;
            tb_loader_release(ld, b);
        }
    }
    *seconds = now() - t0;
    tb_loader_destroy(ld);
    return rc;
}

int main(int argc, char **argv)
{
    int workers = 2, epochs = 2, jpegs = 200;
    const char *jpeg_dir = "/tmp/tb-bench-jpegs", *only = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            workers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc)
            epochs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--jpeg-dir") == 0 && i + 1 < argc)
            jpeg_dir = argv[++i];
        else if (strcmp(argv[i], "--jpegs") == 0 && i + 1 < argc)
            jpegs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--workers N] [--epochs E] [--jpeg-dir DIR] [--jpegs N] [--only fashion|jpeg]\n",
                    argv[0]);
            return 64;
        }
    }
    tb_dataset *ds;
    double s;
    int64_t batches;
    tb_data_config cfg = config("fashion-mnist", "", workers);
    int rc = TB_OK;
    if (strcmp(only, "jpeg") != 0 && (rc = tb_dataset_open(&ds, &cfg, true)) == TB_OK) {
        tb_loader_options opt = {.batch = 128, .train = true, .seed = 1, .workers = workers, .augment = "small"};
        rc = run(ds, &opt, epochs, &s, &batches);
        tb_dataset_close(ds);
        if (rc == TB_OK)
            printf("fashion-mnist train, batch 128, small augment, %d workers: %.1f batches/s (%.0f images/s, %lld "
                   "batches in %.2f s)\n", workers, batches / s, batches * 128 / s, (long long)batches, s);
    }
    if (rc != TB_OK)
        fprintf(stderr, "fashion-mnist: %s\n", tb_errmsg());
    if (strcmp(only, "fashion") == 0)
        return rc == TB_OK ? 0 : 1;

    rc = make_jpeg_folder(jpeg_dir, jpegs);
    cfg = config("imagefolder", jpeg_dir, workers);
    if (rc == TB_OK)
        rc = tb_dataset_open(&ds, &cfg, true);
    if (rc == TB_OK) {
        tb_loader_options opt = {.batch = 32, .train = true, .seed = 1, .workers = workers, .augment = "imagenet",
                                 .image_size = 224};
        rc = run(ds, &opt, epochs, &s, &batches);
        int64_t images = tb_dataset_count(ds);
        tb_dataset_close(ds);
        if (rc == TB_OK)
            printf("imagefolder %lld JPEGs 500x375, decode + imagenet augment to 224, %d workers: %.1f images/s "
                   "(%lld images in %.2f s)\n", (long long)images, workers, batches * 32 / s,
                   (long long)(batches * 32), s);
    }
    if (rc != TB_OK) {
        fprintf(stderr, "imagefolder: %s\n", tb_errmsg());
        return 1;
    }
    return 0;
}
