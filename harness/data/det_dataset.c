/* Detection datasets in the VOC layout (see det_dataset.h). */
#include "harness/data/det_dataset.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/data/dataset_impl.h"
#include "harness/data/label_png.h"
#include "harness/data/voc.h"
#include "kernels/error.h"

static const char *const voc_classes[20] = {
    "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",         "car",   "cat",  "chair", "cow",
    "diningtable", "dog",   "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
};

/* Fashion-MNIST's classes in label order, as single words. */
static const char *const fashion_classes[10] = {
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot",
};

/* ImageNet mean/std (VOC detectors start from ImageNet backbones) and the
 * Fashion-MNIST gray constants: the values of stats.c, repeated here because
 * a const initialiser cannot call tb_builtin_normalization. */
const tb_det_format tb_det_format_voc = {
    .name = "voc",
    .class_names = voc_classes,
    .classes = 20,
    .channels = 3,
    .mean = {123.675f, 116.28f, 103.53f},
    .std = {58.395f, 57.12f, 57.375f},
};

const tb_det_format tb_det_format_fashion_scenes = {
    .name = "fashion-scenes",
    .class_names = fashion_classes,
    .classes = 10,
    .channels = 1,
    .mean = {72.940352f, 72.940352f, 72.940352f},
    .std = {90.021182f, 90.021182f, 90.021182f},
};

const tb_det_format *tb_det_format_find(const char *name)
{
    if (strcmp(name, "voc") == 0)
        return &tb_det_format_voc;
    if (strcmp(name, "fashion-scenes") == 0)
        return &tb_det_format_fashion_scenes;
    return NULL;
}

typedef struct det_set {
    char folder[256];
    char set[256];
    char **ids;   /* tb_voc_read_image_set's block */
    int64_t n;
} det_set;

typedef struct det_image {
    int set;
    const char *id;
    int h, w;
    int64_t first; /* into objects */
    int count;
} det_image;

struct tb_det_dataset {
    char root[TB_DATA_PATH_MAX];
    tb_det_format format;
    det_set *sets;
    int nsets;
    det_image *images;
    int64_t n;
    tb_det_object *objects;
    int64_t nobj, obj_cap;
    char *names;      /* n strings "FOLDER/ID" of name_len bytes each */
    size_t name_len;
    int max_objects, max_h, max_w;
};

/* Splits "FOLDER:SET[,FOLDER:SET...]" into ds->sets. */
static int parse_sets(tb_det_dataset *ds, const char *sets)
{
    int n = 1;
    for (const char *p = sets; *p; p++)
        n += *p == ',';
    ds->sets = calloc((size_t)n, sizeof *ds->sets);
    TB_CHECK(ds->sets, TB_ERR_NOMEM, "detection dataset: out of memory");
    const char *p = sets;
    for (int k = 0; k < n; k++) {
        const char *end = strchr(p, ',');
        const char *next = end ? end + 1 : p + strlen(p);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) { /* "A:x, B:y" */
            p++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        const char *colon = memchr(p, ':', len);
        size_t flen = colon ? (size_t)(colon - p) : 0, slen = colon ? len - flen - 1 : 0;
        TB_CHECK(colon && flen > 0 && slen > 0 && !memchr(colon + 1, ':', slen), TB_ERR_INVALID,
                 "detection dataset: '%.*s' in the set list '%s' is not FOLDER:SET (e.g. VOC2007:trainval)", (int)len,
                 p, sets);
        det_set *s = &ds->sets[k];
        TB_CHECK(flen < sizeof s->folder && slen < sizeof s->set, TB_ERR_INVALID,
                 "detection dataset: '%.*s' is too long a FOLDER:SET", (int)len, p);
        memcpy(s->folder, p, flen);
        memcpy(s->set, colon + 1, slen);
        ds->nsets++;
        p = next;
    }
    return TB_OK;
}

static int add_objects(tb_det_dataset *ds, const tb_voc_annotation *a)
{
    if (ds->nobj + a->count > ds->obj_cap) {
        int64_t cap = ds->obj_cap ? ds->obj_cap * 2 : 1024;
        while (cap < ds->nobj + a->count)
            cap *= 2;
        tb_det_object *p = realloc(ds->objects, (size_t)cap * sizeof *p);
        TB_CHECK(p, TB_ERR_NOMEM, "detection dataset: out of memory for %lld objects", (long long)cap);
        ds->objects = p;
        ds->obj_cap = cap;
    }
    memcpy(ds->objects + ds->nobj, a->objects, (size_t)a->count * sizeof *a->objects);
    ds->nobj += a->count;
    return TB_OK;
}

static int set_path(char *out, size_t cap, const tb_det_dataset *ds, const det_set *s, const char *sub,
                    const char *name, const char *ext)
{
    int n = snprintf(out, cap, "%s/%s/%s/%s%s", ds->root, s->folder, sub, name, ext);
    TB_CHECK(n >= 0 && (size_t)n < cap, TB_ERR_INVALID, "path too long: %s/%s/%s/%s%s", ds->root, s->folder, sub, name,
             ext);
    return TB_OK;
}

/* Reads every image set and parses every annotation. */
static int load_annotations(tb_det_dataset *ds)
{
    char path[TB_DATA_PATH_MAX];
    int64_t total = 0;
    for (int k = 0; k < ds->nsets; k++) {
        det_set *s = &ds->sets[k];
        TB_TRY(set_path(path, sizeof path, ds, s, "ImageSets/Main", s->set, ".txt"));
        TB_TRY(tb_voc_read_image_set(path, &s->ids, &s->n));
        TB_CHECK(s->n > 0, TB_ERR_DATA, "%s: the image set is empty", path);
        total += s->n;
    }
    ds->images = calloc((size_t)total, sizeof *ds->images);
    TB_CHECK(ds->images, TB_ERR_NOMEM, "detection dataset: out of memory for %lld images", (long long)total);
    for (int k = 0; k < ds->nsets; k++)
        for (int64_t j = 0; j < ds->sets[k].n; j++) {
            det_set *s = &ds->sets[k];
            TB_TRY(set_path(path, sizeof path, ds, s, "Annotations", s->ids[j], ".xml"));
            tb_voc_annotation a;
            TB_TRY(tb_voc_parse_annotation(path, ds->format.class_names, ds->format.classes, &a));
            det_image *im = &ds->images[ds->n++];
            *im = (det_image){.set = k, .id = s->ids[j], .h = a.height, .w = a.width, .first = ds->nobj,
                              .count = a.count};
            int rc = add_objects(ds, &a);
            tb_voc_annotation_free(&a);
            TB_TRY(rc);
            ds->max_objects = im->count > ds->max_objects ? im->count : ds->max_objects;
            ds->max_h = im->h > ds->max_h ? im->h : ds->max_h;
            ds->max_w = im->w > ds->max_w ? im->w : ds->max_w;
        }
    return TB_OK;
}

/* ds->names: "FOLDER/ID" per image, fixed-width slots. */
static int build_names(tb_det_dataset *ds)
{
    size_t len = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        size_t l = strlen(ds->sets[ds->images[i].set].folder) + strlen(ds->images[i].id) + 2;
        len = l > len ? l : len;
    }
    ds->name_len = len;
    ds->names = malloc((size_t)ds->n * len);
    TB_CHECK(ds->names, TB_ERR_NOMEM, "detection dataset: out of memory for image names");
    for (int64_t i = 0; i < ds->n; i++)
        snprintf(ds->names + (size_t)i * len, len, "%s/%s", ds->sets[ds->images[i].set].folder, ds->images[i].id);
    return TB_OK;
}

int tb_det_dataset_open(tb_det_dataset **out, const char *root, const char *sets, const tb_det_format *format)
{
    *out = NULL;
    TB_CHECK(format && format->classes > 0 && format->class_names && (format->channels == 1 || format->channels == 3),
             TB_ERR_INVALID, "detection dataset: a format needs classes and 1 or 3 channels");
    TB_CHECK(root && root[0], TB_ERR_INVALID, "detection dataset: the root directory is not set");
    TB_CHECK(sets && sets[0], TB_ERR_INVALID, "detection dataset: the set list is empty (e.g. VOC2007:trainval)");
    TB_CHECK(tb_is_dir(root), TB_ERR_MISSING, "detection dataset: root directory '%s' does not exist", root);
    tb_det_dataset *ds = calloc(1, sizeof *ds);
    TB_CHECK(ds, TB_ERR_NOMEM, "detection dataset: out of memory");
    ds->format = *format;
    int n = snprintf(ds->root, sizeof ds->root, "%s", root);
    int rc = n < (int)sizeof ds->root ? TB_OK : tb_fail(TB_ERR_INVALID, "detection dataset: root path too long: %s", root);
    if (rc == TB_OK)
        rc = parse_sets(ds, sets);
    if (rc == TB_OK)
        rc = load_annotations(ds);
    if (rc == TB_OK)
        rc = build_names(ds);
    if (rc != TB_OK) {
        tb_det_dataset_close(ds);
        return rc;
    }
    *out = ds;
    return TB_OK;
}

void tb_det_dataset_close(tb_det_dataset *ds)
{
    if (!ds)
        return;
    for (int k = 0; k < ds->nsets; k++)
        free(ds->sets[k].ids);
    free(ds->sets);
    free(ds->images);
    free(ds->objects);
    free(ds->names);
    free(ds);
}

int64_t tb_det_dataset_count(const tb_det_dataset *ds) { return ds->n; }
int tb_det_dataset_classes(const tb_det_dataset *ds) { return ds->format.classes; }
int tb_det_dataset_channels(const tb_det_dataset *ds) { return ds->format.channels; }
const tb_det_format *tb_det_dataset_format(const tb_det_dataset *ds) { return &ds->format; }
int tb_det_dataset_max_objects(const tb_det_dataset *ds) { return ds->max_objects; }

const char *tb_det_dataset_class_name(const tb_det_dataset *ds, int label)
{
    return label >= 0 && label < ds->format.classes ? ds->format.class_names[label] : "?";
}

void tb_det_dataset_normalization(const tb_det_dataset *ds, float mean[3], float std[3])
{
    for (int k = 0; k < 3; k++) {
        mean[k] = ds->format.mean[k];
        std[k] = ds->format.std[k];
    }
}

const char *tb_det_dataset_image_name(const tb_det_dataset *ds, int64_t i)
{
    return ds->names + (size_t)i * ds->name_len;
}

void tb_det_dataset_image_size(const tb_det_dataset *ds, int64_t i, int *h, int *w)
{
    *h = ds->images[i].h;
    *w = ds->images[i].w;
}

void tb_det_dataset_objects(const tb_det_dataset *ds, int64_t i, const tb_det_object **objects, int *count)
{
    *objects = ds->objects + ds->images[i].first;
    *count = ds->images[i].count;
}

void tb_det_dataset_max_size(const tb_det_dataset *ds, int *h, int *w)
{
    *h = ds->max_h;
    *w = ds->max_w;
}

/* RGB -> gray in place with the ITU-R 601 luma (PIL's convert("L")); exact
 * for gray files, which the decoder expands to R = G = B. */
static void to_gray(tb_image *img)
{
    size_t npix = (size_t)img->h * (size_t)img->w;
    for (size_t p = 0; p < npix; p++) {
        const uint8_t *s = img->data + 3 * p;
        img->data[p] = (uint8_t)((299u * s[0] + 587u * s[1] + 114u * s[2] + 500u) / 1000u);
    }
    img->c = 1;
}

int tb_det_dataset_read(const tb_det_dataset *ds, int64_t i, tb_image *img)
{
    TB_CHECK(i >= 0 && i < ds->n, TB_ERR_INVALID, "detection dataset: image %lld out of range [0, %lld)", (long long)i,
             (long long)ds->n);
    const det_image *im = &ds->images[i];
    char path[TB_DATA_PATH_MAX];
    TB_TRY(set_path(path, sizeof path, ds, &ds->sets[im->set], "JPEGImages", im->id, ".jpg"));
    size_t size = 0;
    TB_TRY(tb_read_file(path, &img->file, &img->file_cap, &size));
    TB_TRY(tb_image_decode(img->file, size, path, 0, img));
    TB_CHECK(img->h == im->h && img->w == im->w, TB_ERR_DATA,
             "%s: the image is %dx%d (width x height) but its annotation says %dx%d", path, img->w, img->h, im->w,
             im->h);
    if (ds->format.channels == 1)
        to_gray(img);
    return TB_OK;
}

int tb_det_dataset_read_mask(const tb_det_dataset *ds, int64_t i, tb_image *mask)
{
    TB_CHECK(i >= 0 && i < ds->n, TB_ERR_INVALID, "detection dataset: image %lld out of range [0, %lld)", (long long)i,
             (long long)ds->n);
    const det_image *im = &ds->images[i];
    char path[TB_DATA_PATH_MAX];
    TB_TRY(set_path(path, sizeof path, ds, &ds->sets[im->set], "SegmentationClass", im->id, ".png"));
    TB_TRY(tb_label_png_read(path, mask));
    TB_CHECK(mask->h == im->h && mask->w == im->w, TB_ERR_DATA,
             "%s: the mask is %dx%d (width x height) but the annotation says %dx%d", path, mask->w, mask->h, im->w,
             im->h);
    return TB_OK;
}
