/* fashion-scenes: writing the dataset once in the VOC layout, atomically
 * (see fashion_scenes.h). Scenes are written in parallel (OpenMP); each
 * file depends only on its scene, so the bytes do not depend on threads. */
#include <errno.h>
#include <ftw.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/data/dataset_impl.h"
#include "harness/data/fashion_scenes.h"
#include "harness/data/jpeg_write.h"
#include "harness/data/label_png.h"
#include "harness/fs.h"
#include "kernels/error.h"

#define JPEG_QUALITY 95
#define STAMP_FILE "stamp.txt"
#define STAMP_MAX 2048
#define XML_MAX (4096 + 512 * TB_FASHION_SCENES_MAX_ITEMS)

static const char *const subdirs[] = {"JPEGImages", "Annotations", "SegmentationClass", "ImageSets",
                                      "ImageSets/Main"};

static int check_options(const tb_fashion_scenes_options *o)
{
    TB_CHECK(o->train_count > 0 && o->train_count <= 10000000 && o->test_count > 0 && o->test_count <= 10000000,
             TB_ERR_INVALID, "fashion-scenes: train and test counts must be in 1..10000000, got %lld and %lld",
             (long long)o->train_count, (long long)o->test_count);
    TB_CHECK(o->size >= 32 && o->size <= 1024, TB_ERR_INVALID, "fashion-scenes: size must be in 32..1024, got %d",
             o->size);
    TB_CHECK(o->max_items >= 1 && o->max_items <= TB_FASHION_SCENES_MAX_ITEMS, TB_ERR_INVALID,
             "fashion-scenes: max_items must be in 1..%d, got %d", TB_FASHION_SCENES_MAX_ITEMS, o->max_items);
    TB_CHECK(o->threads >= 0 && o->threads <= 256, TB_ERR_INVALID, "fashion-scenes: threads must be in 0..256, got %d",
             o->threads);
    return TB_OK;
}

static int write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    TB_CHECK(f, TB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t put = fwrite(data, 1, n, f);
    int e = errno;
    if (fclose(f) != 0 || put != n)
        return tb_fail(TB_ERR_IO, "%s: cannot write: %s", path, strerror(put != n ? e : errno));
    return TB_OK;
}

/* The VOC annotation of one scene (boxes back to 1-based inclusive). */
static int scene_xml(const tb_fashion_scenes_options *o, const char *id, const tb_fashion_scene *scene, char *buf,
                     size_t cap, size_t *len)
{
    size_t n = 0;
    int k = snprintf(buf, cap,
                     "<annotation>\n\t<folder>%s</folder>\n\t<filename>%s.jpg</filename>\n"
                     "\t<source>\n\t\t<database>trickbench fashion-scenes</database>\n\t</source>\n"
                     "\t<size>\n\t\t<width>%d</width>\n\t\t<height>%d</height>\n\t\t<depth>1</depth>\n\t</size>\n"
                     "\t<segmented>1</segmented>\n",
                     TB_FASHION_SCENES_FOLDER, id, o->size, o->size);
    TB_CHECK(k > 0 && (size_t)k < cap, TB_ERR_INTERNAL, "fashion-scenes: annotation of %s too long", id);
    n += (size_t)k;
    for (int j = 0; j < scene->count; j++) {
        const tb_det_object *ob = &scene->objects[j];
        k = snprintf(buf + n, cap - n,
                     "\t<object>\n\t\t<name>%s</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
                     "\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>%d</xmin>\n\t\t\t<ymin>%d</ymin>\n"
                     "\t\t\t<xmax>%d</xmax>\n\t\t\t<ymax>%d</ymax>\n\t\t</bndbox>\n\t</object>\n",
                     tb_det_format_fashion_scenes.class_names[ob->label], (int)ob->box[0] + 1, (int)ob->box[1] + 1,
                     (int)ob->box[2], (int)ob->box[3]);
        TB_CHECK(k > 0 && (size_t)k < cap - n, TB_ERR_INTERNAL, "fashion-scenes: annotation of %s too long", id);
        n += (size_t)k;
    }
    k = snprintf(buf + n, cap - n, "</annotation>\n");
    TB_CHECK(k > 0 && (size_t)k < cap - n, TB_ERR_INTERNAL, "fashion-scenes: annotation of %s too long", id);
    *len = n + (size_t)k;
    return TB_OK;
}

static int scene_path(char *out, size_t cap, const char *dir, const char *sub, const char *id, const char *ext)
{
    int n = snprintf(out, cap, "%s/%s/%s%s", dir, sub, id, ext);
    TB_CHECK(n > 0 && (size_t)n < cap, TB_ERR_INVALID, "path too long: %s/%s/%s%s", dir, sub, id, ext);
    return TB_OK;
}

static int write_scene(const tb_fashion_scenes_options *o, const char *dir, const char *id,
                       const tb_fashion_scene *scene)
{
    char path[TB_DATA_PATH_MAX];
    TB_TRY(scene_path(path, sizeof path, dir, "JPEGImages", id, ".jpg"));
    uint8_t *jpg;
    size_t size;
    TB_TRY(tb_jpeg_encode(scene->image, o->size, o->size, 1, JPEG_QUALITY, path, &jpg, &size));
    int rc = write_bytes(path, jpg, size);
    free(jpg);
    TB_TRY(rc);
    char xml[XML_MAX];
    TB_TRY(scene_xml(o, id, scene, xml, sizeof xml, &size));
    TB_TRY(scene_path(path, sizeof path, dir, "Annotations", id, ".xml"));
    TB_TRY(write_bytes(path, xml, size));
    TB_TRY(scene_path(path, sizeof path, dir, "SegmentationClass", id, ".png"));
    return tb_label_png_write(path, scene->mask, o->size, o->size);
}

static void scene_id(char *buf, size_t cap, const char *split, int64_t i)
{
    snprintf(buf, cap, "%s_%06lld", split, (long long)i);
}

/* Composes and writes scenes 0..count-1 of one split, then its image set. */
static int write_split(const tb_fashion_scenes_options *o, const char *dir, tb_dataset *items, const char *split,
                       int64_t count)
{
    int rc_all = TB_OK;
    char msg[2048] = "";
    int threads = o->threads > 0 ? o->threads : omp_get_num_procs();
#pragma omp parallel num_threads(threads)
    {
        tb_fashion_scene scene = {0};
        tb_fashion_scratch s = {0};
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < count; i++) {
            int failed;
#pragma omp atomic read
            failed = rc_all;
            if (failed)
                continue;
            char id[64];
            scene_id(id, sizeof id, split, i);
            int rc = tb_fashion_scene_compose(o, items, i, &scene, &s);
            if (rc == TB_OK)
                rc = write_scene(o, dir, id, &scene);
            if (rc != TB_OK) {
#pragma omp critical(fashion_scenes_error)
                if (rc_all == TB_OK) {
                    snprintf(msg, sizeof msg, "%s", tb_errmsg());
#pragma omp atomic write
                    rc_all = rc;
                }
            }
        }
        tb_fashion_scene_free(&scene);
        tb_fashion_scratch_free(&s);
    }
    if (rc_all != TB_OK)
        return tb_fail(rc_all, "%s", msg);
    char path[TB_DATA_PATH_MAX];
    TB_TRY(scene_path(path, sizeof path, dir, "ImageSets/Main", split, ".txt"));
    FILE *f = fopen(path, "wb");
    TB_CHECK(f, TB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    for (int64_t i = 0; i < count; i++) {
        char id[64];
        scene_id(id, sizeof id, split, i);
        fprintf(f, "%s\n", id);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return tb_fail(TB_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return TB_OK;
}

static int open_items(const tb_fashion_scenes_options *o, bool train, tb_dataset **items)
{
    tb_data_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.dataset, sizeof cfg.dataset, "fashion-mnist");
    snprintf(cfg.root, sizeof cfg.root, "%s", o->source);
    return tb_err_context(tb_dataset_open(items, &cfg, train), "fashion-scenes source");
}

/* Writes the whole dataset into the (empty) directory dir. */
static int generate(const tb_fashion_scenes_options *o, const char *dir, const char *stamp)
{
    char path[TB_DATA_PATH_MAX];
    for (size_t k = 0; k < sizeof subdirs / sizeof subdirs[0]; k++) {
        TB_TRY(tb_path_join(path, sizeof path, dir, subdirs[k], ""));
        TB_CHECK(mkdir(path, 0755) == 0, TB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    tb_dataset *train = NULL, *test = NULL;
    int rc = open_items(o, true, &train);
    if (rc == TB_OK)
        rc = open_items(o, false, &test);
    if (rc == TB_OK)
        rc = write_split(o, dir, train, "train", o->train_count);
    if (rc == TB_OK)
        rc = write_split(o, dir, test, "test", o->test_count);
    tb_dataset_close(train);
    tb_dataset_close(test);
    TB_TRY(rc);
    /* the stamp last: a directory with a stamp is complete */
    TB_TRY(tb_path_join(path, sizeof path, dir, STAMP_FILE, ""));
    return write_bytes(path, stamp, strlen(stamp));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* One-line form of a stamp for messages. */
static void flatten(char *s)
{
    for (size_t n = strlen(s); n > 0 && s[n - 1] == '\n'; n--)
        s[n - 1] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '\n')
            *p = ';';
}

/* TB_OK when dir holds a dataset with this stamp; TB_ERR_INVALID naming it otherwise. */
static int check_existing(const char *dir, const char *stamp)
{
    char path[TB_DATA_PATH_MAX];
    TB_TRY(tb_path_join(path, sizeof path, dir, STAMP_FILE, ""));
    uint8_t *buf = NULL;
    size_t cap = 0, size = 0;
    int rc = tb_read_file(path, &buf, &cap, &size);
    if (rc != TB_OK) {
        free(buf);
        return tb_fail(TB_ERR_INVALID, "fashion-scenes: %s exists but has no readable %s (an incomplete or foreign "
                       "dataset): remove it or choose another root", dir, STAMP_FILE);
    }
    buf[size] = '\0';
    bool same = strcmp((const char *)buf, stamp) == 0;
    if (!same) {
        char have[STAMP_MAX], want[STAMP_MAX];
        snprintf(have, sizeof have, "%s", (const char *)buf);
        snprintf(want, sizeof want, "%s", stamp);
        flatten(have);
        flatten(want);
        rc = tb_fail(TB_ERR_INVALID, "fashion-scenes: %s was generated with other options (its %s: '%s'; asked for: "
                     "'%s'): remove it or choose another root", dir, STAMP_FILE, have, want);
    }
    free(buf);
    return rc;
}

int tb_fashion_scenes_ensure(const tb_fashion_scenes_options *o, const char *root)
{
    TB_TRY(check_options(o));
    TB_CHECK(root && root[0], TB_ERR_INVALID, "fashion-scenes: the root directory is not set");
    char stamp[STAMP_MAX], final[TB_DATA_PATH_MAX], tmp[TB_DATA_PATH_MAX];
    TB_TRY(tb_fashion_scenes_stamp(o, stamp, sizeof stamp));
    TB_TRY(tb_path_join(final, sizeof final, root, TB_FASHION_SCENES_FOLDER, ""));
    if (tb_path_exists(final))
        return check_existing(final, stamp);
    TB_TRY(tb_path_join(tmp, sizeof tmp, root, "." TB_FASHION_SCENES_FOLDER ".tmp-XXXXXX", ""));
    TB_TRY(tb_make_parent_dirs(tmp));
    TB_CHECK(mkdtemp(tmp), TB_ERR_IO, "fashion-scenes: cannot create a directory %s: %s", tmp, strerror(errno));
    int rc = generate(o, tmp, stamp);
    if (rc == TB_OK && rename(tmp, final) != 0) {
        /* another process may have finished first: then its dataset must match */
        int e = errno;
        rc = e == EEXIST || e == ENOTEMPTY ? check_existing(final, stamp)
                                           : tb_fail(TB_ERR_IO, "fashion-scenes: cannot rename %s to %s: %s", tmp,
                                                     final, strerror(e));
    }
    if (tb_path_exists(tmp))
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
