/* Segmentation datasets: ADE20K folders and detection-dataset masks (see
 * seg_dataset.h). */
#include "harness/data/seg_dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/data/dataset_impl.h"
#include "harness/data/label_png.h"
#include "kernels/error.h"

/* ADE20K SceneParsing's 150 classes in label order (objectInfo150.csv, as
 * GluonCV's ADE20KSegmentation.CLASSES), each cut to its first synonym. */
static const char *const ade20k_classes[TB_ADE20K_CLASSES] = {
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
    "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van",
    "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel",
    "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name",
    "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce",
    "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board",
    "shower", "radiator", "glass", "clock", "flag",
};

struct tb_seg_dataset {
    char name[64];
    int classes, channels;
    float mean[3], std[3];
    const char *const *class_names;
    int64_t n;
    /* ADE20K */
    char img_dir[TB_DATA_PATH_MAX], ann_dir[TB_DATA_PATH_MAX];
    char **names;            /* n strings "SPLIT/STEM" */
    size_t stem_at;          /* offset of STEM in each name */
    /* detection masks */
    tb_det_dataset *det;
    const char **det_names;  /* "background" + the format's classes */
    char root[TB_DATA_PATH_MAX];
};

static int new_dataset(tb_seg_dataset **out)
{
    *out = calloc(1, sizeof **out);
    TB_CHECK(*out, TB_ERR_NOMEM, "segmentation dataset: out of memory");
    return TB_OK;
}

void tb_seg_dataset_close(tb_seg_dataset *ds)
{
    if (!ds)
        return;
    for (int64_t i = 0; ds->names && i < ds->n; i++)
        free(ds->names[i]);
    free(ds->names);
    tb_det_dataset_close(ds->det);
    free(ds->det_names);
    free(ds);
}

/* ---- ADE20K ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_jpg(const char *name)
{
    size_t len = strlen(name);
    return len > 4 && strcmp(name + len - 4, ".jpg") == 0;
}

static int push_name(tb_seg_dataset *ds, int64_t *cap, const char *split, const char *file)
{
    if (ds->n == *cap) {
        int64_t c = *cap ? *cap * 2 : 256;
        char **p = realloc(ds->names, (size_t)c * sizeof *p);
        TB_CHECK(p, TB_ERR_NOMEM, "ade20k: out of memory listing %s", ds->img_dir);
        ds->names = p;
        *cap = c;
    }
    size_t stem = strlen(file) - 4, len = strlen(split) + 1 + stem + 1;
    char *s = malloc(len);
    TB_CHECK(s, TB_ERR_NOMEM, "ade20k: out of memory listing %s", ds->img_dir);
    snprintf(s, len, "%s/%.*s", split, (int)stem, file);
    ds->names[ds->n++] = s;
    return TB_OK;
}

/* The .jpg files of img_dir, sorted (byte order). */
static int list_images(tb_seg_dataset *ds, const char *split)
{
    DIR *d = opendir(ds->img_dir);
    TB_CHECK(d, errno == ENOENT ? TB_ERR_MISSING : TB_ERR_IO, "ade20k: cannot open folder %s: %s", ds->img_dir,
             strerror(errno));
    int rc = TB_OK;
    int64_t cap = 0;
    struct dirent *e;
    while (rc == TB_OK && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && is_jpg(e->d_name))
            rc = push_name(ds, &cap, split, e->d_name);
    closedir(d);
    TB_TRY(rc);
    TB_CHECK(ds->n > 0, TB_ERR_DATA, "ade20k: no .jpg images in %s", ds->img_dir);
    qsort(ds->names, (size_t)ds->n, sizeof *ds->names, cmp_str);
    return TB_OK;
}

static int ade_path(const tb_seg_dataset *ds, int64_t i, bool annotation, char *out, size_t cap)
{
    const char *dir = annotation ? ds->ann_dir : ds->img_dir;
    return tb_path_join(out, cap, dir, ds->names[i] + ds->stem_at, annotation ? ".png" : ".jpg");
}

static int check_annotations(const tb_seg_dataset *ds)
{
    char path[TB_DATA_PATH_MAX], img[TB_DATA_PATH_MAX];
    for (int64_t i = 0; i < ds->n; i++) {
        TB_TRY(ade_path(ds, i, true, path, sizeof path));
        if (!tb_path_exists(path)) {
            TB_TRY(ade_path(ds, i, false, img, sizeof img));
            return tb_fail(TB_ERR_DATA, "ade20k: %s has no annotation (expected %s)", img, path);
        }
    }
    return TB_OK;
}

static int ade_open(tb_seg_dataset *ds, const char *root, const char *split)
{
    char base[TB_DATA_PATH_MAX], sub[64];
    TB_CHECK(tb_is_dir(root), TB_ERR_MISSING, "ade20k: root directory '%s' does not exist", root);
    TB_TRY(tb_path_join(base, sizeof base, root, TB_ADE20K_FOLDER, ""));
    if (!tb_is_dir(base)) /* root is the ADEChallengeData2016 folder (shorter than base: fits) */
        snprintf(base, sizeof base, "%s", root);
    snprintf(sub, sizeof sub, "images/%s", split);
    TB_TRY(tb_path_join(ds->img_dir, sizeof ds->img_dir, base, sub, ""));
    snprintf(sub, sizeof sub, "annotations/%s", split);
    TB_TRY(tb_path_join(ds->ann_dir, sizeof ds->ann_dir, base, sub, ""));
    TB_CHECK(tb_is_dir(ds->img_dir), TB_ERR_MISSING, "ade20k: folder %s does not exist (expected the "
             "ADEChallengeData2016 layout under %s)", ds->img_dir, root);
    TB_CHECK(tb_is_dir(ds->ann_dir), TB_ERR_MISSING, "ade20k: folder %s does not exist", ds->ann_dir);
    ds->stem_at = strlen(split) + 1;
    TB_TRY(list_images(ds, split));
    return check_annotations(ds);
}

int tb_seg_dataset_open_ade20k(tb_seg_dataset **out, const char *root, const char *split)
{
    *out = NULL;
    TB_CHECK(root && root[0], TB_ERR_INVALID, "ade20k: the root directory is not set");
    const char *s = split ? split : "";
    if (strcmp(s, "train") == 0)
        s = "training";
    else if (strcmp(s, "val") == 0)
        s = "validation";
    TB_CHECK(strcmp(s, "training") == 0 || strcmp(s, "validation") == 0, TB_ERR_INVALID,
             "ade20k: split '%s' is not one of training, validation (or train, val)", split ? split : "(null)");
    tb_seg_dataset *ds;
    TB_TRY(new_dataset(&ds));
    snprintf(ds->name, sizeof ds->name, "ade20k");
    ds->classes = TB_ADE20K_CLASSES;
    ds->class_names = ade20k_classes;
    ds->channels = 3;
    /* ImageNet mean/std, as the VOC format (ImageNet-pretrained backbones) */
    memcpy(ds->mean, tb_det_format_voc.mean, sizeof ds->mean);
    memcpy(ds->std, tb_det_format_voc.std, sizeof ds->std);
    int rc = ade_open(ds, root, s);
    if (rc != TB_OK) {
        tb_seg_dataset_close(ds);
        return rc;
    }
    *out = ds;
    return TB_OK;
}

/* Stored v: 1..150 -> class v - 1, 0 -> ignored. */
static int ade_map_labels(tb_image *labels, const char *path)
{
    size_t npix = (size_t)labels->h * labels->w;
    for (size_t p = 0; p < npix; p++) {
        unsigned v = labels->data[p];
        TB_CHECK(v <= TB_ADE20K_CLASSES, TB_ERR_DATA,
                 "%s: value %u at (x %zu, y %zu) is not a label (0 = other, 1..%d = the classes)", path, v,
                 p % (size_t)labels->w, p / (size_t)labels->w, TB_ADE20K_CLASSES);
        labels->data[p] = v == 0 ? TB_SEG_IGNORE_U8 : (uint8_t)(v - 1);
    }
    return TB_OK;
}

static int ade_read(const tb_seg_dataset *ds, int64_t i, tb_image *img, tb_image *labels)
{
    char path[TB_DATA_PATH_MAX], ann[TB_DATA_PATH_MAX];
    TB_TRY(ade_path(ds, i, false, path, sizeof path));
    TB_TRY(ade_path(ds, i, true, ann, sizeof ann));
    size_t size = 0;
    TB_TRY(tb_read_file(path, &img->file, &img->file_cap, &size));
    TB_TRY(tb_image_decode(img->file, size, path, 0, img));
    TB_TRY(tb_label_png_read(ann, labels));
    TB_CHECK(labels->h == img->h && labels->w == img->w, TB_ERR_DATA,
             "%s: the annotation is %dx%d (width x height) but its image %s is %dx%d", ann, labels->w, labels->h,
             path, img->w, img->h);
    return ade_map_labels(labels, ann);
}

/* ---- detection-dataset masks --------------------------------------------- */

int tb_seg_dataset_open_det(tb_seg_dataset **out, const char *root, const char *sets, const tb_det_format *format)
{
    *out = NULL;
    TB_CHECK(format && format->classes > 0 && format->classes < TB_SEG_IGNORE_U8, TB_ERR_INVALID,
             "segmentation dataset: a mask format needs 1..%d classes", TB_SEG_IGNORE_U8 - 1);
    tb_seg_dataset *ds;
    TB_TRY(new_dataset(&ds));
    snprintf(ds->name, sizeof ds->name, "%s", format->name ? format->name : "detection masks");
    snprintf(ds->root, sizeof ds->root, "%s", root ? root : "");
    ds->classes = format->classes + 1;
    ds->channels = format->channels;
    memcpy(ds->mean, format->mean, sizeof ds->mean);
    memcpy(ds->std, format->std, sizeof ds->std);
    ds->det_names = malloc((size_t)ds->classes * sizeof *ds->det_names);
    int rc = ds->det_names ? TB_OK : tb_fail(TB_ERR_NOMEM, "segmentation dataset: out of memory");
    if (rc == TB_OK) {
        ds->det_names[0] = "background";
        for (int k = 0; k < format->classes; k++)
            ds->det_names[k + 1] = format->class_names[k];
        ds->class_names = ds->det_names;
        rc = tb_det_dataset_open(&ds->det, root, sets, format);
    }
    if (rc != TB_OK) {
        tb_seg_dataset_close(ds);
        return rc;
    }
    ds->n = tb_det_dataset_count(ds->det);
    *out = ds;
    return TB_OK;
}

/* Stored v: 0..classes-1 is the class, 255 (VOC "void") ignored. */
static int det_map_labels(const tb_seg_dataset *ds, int64_t i, const tb_image *labels)
{
    size_t npix = (size_t)labels->h * labels->w;
    for (size_t p = 0; p < npix; p++) {
        unsigned v = labels->data[p];
        if (v >= (unsigned)ds->classes && v != TB_SEG_IGNORE_U8) {
            const char *name = tb_det_dataset_image_name(ds->det, i), *slash = strchr(name, '/');
            int folder = slash ? (int)(slash - name) : 0;
            return tb_fail(TB_ERR_DATA,
                           "%s/%.*s/SegmentationClass/%s.png: value %u at (x %zu, y %zu) is not a class "
                           "(0 = background, 1..%d, 255 = void)",
                           ds->root, folder, name, slash ? slash + 1 : name, v, p % (size_t)labels->w,
                           p / (size_t)labels->w, ds->classes - 1);
        }
    }
    return TB_OK;
}

static int det_read(const tb_seg_dataset *ds, int64_t i, tb_image *img, tb_image *labels)
{
    TB_TRY(tb_det_dataset_read(ds->det, i, img));
    TB_TRY(tb_det_dataset_read_mask(ds->det, i, labels));
    /* both were checked against the annotation's size */
    return det_map_labels(ds, i, labels);
}

/* ---- common ----------------------------------------------------------------- */

int tb_seg_dataset_open(tb_seg_dataset **out, const char *format, const char *root, bool train)
{
    *out = NULL;
    const char *f = format ? format : "";
    if (strcmp(f, "ade20k") == 0)
        return tb_seg_dataset_open_ade20k(out, root, train ? "training" : "validation");
    if (strcmp(f, "fashion-scenes") == 0)
        return tb_seg_dataset_open_det(out, root, train ? "FashionScenes:train" : "FashionScenes:test",
                                       &tb_det_format_fashion_scenes);
    return tb_fail(TB_ERR_INVALID, "segmentation dataset: unknown format '%s' (ade20k, fashion-scenes)", f);
}

const char *tb_seg_dataset_name(const tb_seg_dataset *ds) { return ds->name; }
int64_t tb_seg_dataset_count(const tb_seg_dataset *ds) { return ds->n; }
int tb_seg_dataset_classes(const tb_seg_dataset *ds) { return ds->classes; }
int tb_seg_dataset_channels(const tb_seg_dataset *ds) { return ds->channels; }

const char *tb_seg_dataset_class_name(const tb_seg_dataset *ds, int label)
{
    return label >= 0 && label < ds->classes ? ds->class_names[label] : "?";
}

void tb_seg_dataset_normalization(const tb_seg_dataset *ds, float mean[3], float std[3])
{
    for (int k = 0; k < 3; k++) {
        mean[k] = ds->mean[k];
        std[k] = ds->std[k];
    }
}

const char *tb_seg_dataset_image_name(const tb_seg_dataset *ds, int64_t i)
{
    return ds->det ? tb_det_dataset_image_name(ds->det, i) : ds->names[i];
}

int tb_seg_dataset_read(const tb_seg_dataset *ds, int64_t i, tb_image *img, tb_image *labels)
{
    TB_CHECK(i >= 0 && i < ds->n, TB_ERR_INVALID, "segmentation dataset: image %lld out of range [0, %lld)",
             (long long)i, (long long)ds->n);
    return ds->det ? det_read(ds, i, img, labels) : ade_read(ds, i, img, labels);
}
