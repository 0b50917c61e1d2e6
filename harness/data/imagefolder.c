/* ImageNet-style folders: root/train/<class>/<image> and root/val/<class>/<image>.
 *
 * Classes are the training split's sub-folders sorted by name (strcmp, as
 * torchvision's ImageFolder); a validation folder's classes must be among
 * them. Images are the files ending in .jpg, .jpeg or .png (any case),
 * sorted by name; other files are ignored, hidden entries (".*") too. An
 * empty class folder is an error. Files are decoded on demand (JPEG/PNG by
 * their magic bytes) to RGB.
 *
 * Normalisation: ImageNet's constants when every class folder is a WordNet
 * id (n + 8 digits); otherwise mean/std of a sample of up to
 * FOLDER_STATS_IMAGES training images spread evenly over the split, decoded
 * at reduced size (JPEG DCT scaling to a shorter side >= 32).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/data/dataset_impl.h"
#include "kernels/error.h"

#define FOLDER_STATS_IMAGES 256
#define FOLDER_STATS_SIDE 32

typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

typedef struct folder_impl {
    char dir[TB_DATA_PATH_MAX]; /* root/train or root/val */
    char *names;               /* "class/file\0" for every image, back to back */
    size_t len, cap;
    int64_t *offsets;          /* n_src offsets into names */
    int64_t n, offsets_cap;
} folder_impl;

static void names_free(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int names_push(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        TB_CHECK(v, TB_ERR_NOMEM, "imagefolder: out of memory listing a folder");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(s);
    TB_CHECK(l->v[l->n], TB_ERR_NOMEM, "imagefolder: out of memory listing a folder");
    l->n++;
    return TB_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".png") == 0);
}

/* Sorted sub-folders (want_dirs) or image files of dir. */
static int list_dir(const char *dir, bool want_dirs, name_list *out)
{
    DIR *d = opendir(dir);
    TB_CHECK(d, errno == ENOENT ? TB_ERR_MISSING : TB_ERR_IO, "imagefolder: cannot open folder %s: %s", dir,
             strerror(errno));
    int rc = TB_OK;
    struct dirent *e;
    while (rc == TB_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        bool is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            char path[TB_DATA_PATH_MAX];
            rc = tb_path_join(path, sizeof path, dir, e->d_name, "");
            is_dir = rc == TB_OK && tb_is_dir(path);
        }
        if (want_dirs ? is_dir : (!is_dir && has_image_ext(e->d_name)))
            rc = names_push(out, e->d_name);
    }
    closedir(d);
    if (rc == TB_OK && out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return rc;
}

static int impl_add(folder_impl *f, const char *cls, const char *file)
{
    size_t need = strlen(cls) + 1 + strlen(file) + 1;
    if (f->len + need > f->cap) {
        size_t cap = f->cap ? f->cap : 1 << 16;
        while (f->len + need > cap)
            cap *= 2;
        char *p = realloc(f->names, cap);
        TB_CHECK(p, TB_ERR_NOMEM, "imagefolder: out of memory listing images");
        f->names = p;
        f->cap = cap;
    }
    if (f->n == f->offsets_cap) {
        int64_t cap = f->offsets_cap ? 2 * f->offsets_cap : 1024;
        int64_t *p = realloc(f->offsets, (size_t)cap * sizeof *p);
        TB_CHECK(p, TB_ERR_NOMEM, "imagefolder: out of memory listing images");
        f->offsets = p;
        f->offsets_cap = cap;
    }
    f->offsets[f->n++] = (int64_t)f->len;
    f->len += (size_t)sprintf(f->names + f->len, "%s/%s", cls, file) + 1;
    return TB_OK;
}

static void impl_free(folder_impl *f)
{
    if (!f)
        return;
    free(f->names);
    free(f->offsets);
    free(f);
}

/* Lists every image of one split; labels index into `classes`. */
static int scan_split(const char *root, const char *split, const name_list *classes, folder_impl **out_impl,
                      int32_t **out_labels)
{
    folder_impl *f = calloc(1, sizeof *f);
    TB_CHECK(f, TB_ERR_NOMEM, "imagefolder: out of memory");
    name_list dirs = {0}, files = {0};
    int32_t *labels = NULL;
    int64_t labels_cap = 0;
    int rc = tb_path_join(f->dir, sizeof f->dir, root, split, "");
    if (rc == TB_OK)
        rc = tb_is_dir(f->dir) ? list_dir(f->dir, true, &dirs)
                               : tb_fail(TB_ERR_MISSING, "imagefolder: %s does not exist (expected %s/<class>/*.jpg)",
                                         f->dir, f->dir);
    if (rc == TB_OK && dirs.n == 0)
        rc = tb_fail(TB_ERR_DATA, "imagefolder: %s has no class folders", f->dir);
    for (int d = 0; rc == TB_OK && d < dirs.n; d++) {
        char *key = dirs.v[d];
        char **hit = bsearch(&key, classes->v, (size_t)classes->n, sizeof *classes->v, cmp_str);
        if (!hit) {
            rc = tb_fail(TB_ERR_DATA, "imagefolder: %s/%s is not one of the %d training classes", f->dir, key,
                         classes->n);
            break;
        }
        char cdir[TB_DATA_PATH_MAX];
        names_free(&files);
        rc = tb_path_join(cdir, sizeof cdir, f->dir, key, "");
        if (rc == TB_OK)
            rc = list_dir(cdir, false, &files);
        if (rc == TB_OK && files.n == 0)
            rc = tb_fail(TB_ERR_DATA, "imagefolder: empty class folder %s: no .jpg, .jpeg or .png images", cdir);
        if (rc == TB_OK && f->n + files.n > labels_cap) {
            int64_t cap = labels_cap ? labels_cap : 1024;
            while (cap < f->n + files.n)
                cap *= 2;
            int32_t *p = realloc(labels, (size_t)cap * sizeof *p);
            if (!p)
                rc = tb_fail(TB_ERR_NOMEM, "imagefolder: out of memory listing images");
            else {
                labels = p;
                labels_cap = cap;
            }
        }
        for (int i = 0; rc == TB_OK && i < files.n; i++) {
            labels[f->n] = (int32_t)(hit - classes->v);
            rc = impl_add(f, key, files.v[i]);
        }
    }
    names_free(&dirs);
    names_free(&files);
    if (rc != TB_OK) {
        impl_free(f);
        free(labels);
        return rc;
    }
    *out_impl = f;
    *out_labels = labels;
    return TB_OK;
}

static int folder_read_impl(const folder_impl *f, int64_t src, int min_side, tb_image *img)
{
    char path[TB_DATA_PATH_MAX];
    TB_TRY(tb_path_join(path, sizeof path, f->dir, f->names + f->offsets[src], ""));
    size_t size;
    TB_TRY(tb_read_file(path, &img->file, &img->file_cap, &size));
    return tb_image_decode(img->file, size, path, min_side, img);
}

static int folder_read(tb_dataset *ds, int64_t src, int min_side, tb_image *img)
{
    return folder_read_impl(ds->impl, src, min_side, img);
}

static void folder_close(tb_dataset *ds)
{
    impl_free(ds->impl);
    ds->impl = NULL;
}

static const tb_dataset_ops folder_ops = {folder_read, folder_close};

static bool all_wordnet_ids(const name_list *classes)
{
    for (int i = 0; i < classes->n; i++) {
        const char *s = classes->v[i];
        if (strlen(s) != 9 || s[0] != 'n')
            return false;
        for (int k = 1; k < 9; k++)
            if (!isdigit((unsigned char)s[k]))
                return false;
    }
    return true;
}

/* Mean/std over a sample of the training split (see the file comment). */
static int folder_stats(tb_dataset *ds, const folder_impl *train, bool skip_bad)
{
    tb_pixel_stats st = {0};
    tb_image img = {0};
    int64_t k = train->n < FOLDER_STATS_IMAGES ? train->n : FOLDER_STATS_IMAGES;
    int rc = TB_OK;
    for (int64_t i = 0; i < k && rc == TB_OK; i++) {
        int64_t src = i * train->n / k;
        rc = folder_read_impl(train, src, FOLDER_STATS_SIDE, &img);
        if (rc == TB_OK)
            tb_pixel_stats_add(&st, img.data, (int64_t)img.h * img.w, 3);
        else if (rc == TB_ERR_DATA && skip_bad)
            rc = TB_OK;
    }
    tb_image_free(&img);
    TB_TRY(rc);
    return tb_pixel_stats_finish(&st, 3, ds->mean, ds->std, "imagefolder training sample");
}

int tb_imagefolder_open(tb_dataset *ds, const tb_data_config *cfg, const char *root, bool train_files)
{
    char train_dir[TB_DATA_PATH_MAX];
    TB_TRY(tb_path_join(train_dir, sizeof train_dir, root, "train", ""));
    TB_CHECK(tb_is_dir(train_dir), TB_ERR_MISSING,
             "imagefolder: %s does not exist (expected %s/train/<class>/*.jpg and %s/val/<class>/*.jpg)", train_dir,
             root, root);
    name_list classes = {0};
    int rc = list_dir(train_dir, true, &classes);
    if (rc == TB_OK && classes.n == 0)
        rc = tb_fail(TB_ERR_DATA, "imagefolder: %s has no class folders", train_dir);
    folder_impl *impl = NULL;
    if (rc == TB_OK)
        rc = scan_split(root, train_files ? "train" : "val", &classes, &impl, &ds->labels);
    if (rc == TB_OK) {
        ds->impl = impl;
        ds->ops = &folder_ops;
        ds->n_src = impl->n;
        ds->c = 3;
        ds->classes = classes.n;
        if (all_wordnet_ids(&classes)) {
            tb_builtin_normalization("imagenet", ds->mean, ds->std);
        } else if (train_files) {
            rc = folder_stats(ds, impl, cfg->skip_bad);
        } else {
            folder_impl *train = NULL;
            int32_t *train_labels = NULL;
            rc = scan_split(root, "train", &classes, &train, &train_labels);
            if (rc == TB_OK)
                rc = folder_stats(ds, train, cfg->skip_bad);
            impl_free(train);
            free(train_labels);
        }
    }
    names_free(&classes);
    return rc;
}
