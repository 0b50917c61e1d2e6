#include "det_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_test_util.h"

static const char *pathf(char *buf, size_t cap, const char *root, const char *folder, const char *sub,
                         const char *name)
{
    return tdu_pathf(buf, cap, "%s/%s/%s/%s", root, folder, sub, name);
}

void dtu_make_voc_dirs(const char *root, const char *folder)
{
    char p[4096];
    const char *subs[] = {"Annotations", "JPEGImages", "ImageSets/Main", "SegmentationClass"};
    for (int k = 0; k < 4; k++)
        tdu_mkdirs(tdu_pathf(p, sizeof p, "%s/%s/%s", root, folder, subs[k]));
}

void dtu_write_text_xml(const char *root, const char *folder, const char *id, const char *text)
{
    char p[4096], name[512];
    snprintf(name, sizeof name, "%s.xml", id);
    tdu_write_file(pathf(p, sizeof p, root, folder, "Annotations", name), text, strlen(text));
}

void dtu_write_voc_xml(const char *root, const char *folder, const char *id, int w, int h, const dtu_obj *objs,
                       int n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fprintf(f, "<annotation>\n  <folder>%s</folder>\n  <filename>%s.jpg</filename>\n", folder, id);
    fprintf(f, "  <size><width>%d</width><height>%d</height><depth>3</depth></size>\n", w, h);
    for (int i = 0; i < n; i++) {
        fprintf(f, "  <object>\n    <name>%s</name>\n    <truncated>1</truncated>\n", objs[i].name);
        if (objs[i].difficult >= 0)
            fprintf(f, "    <difficult>%d</difficult>\n", objs[i].difficult);
        fprintf(f, "    <bndbox><xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox>\n",
                objs[i].xmin, objs[i].ymin, objs[i].xmax, objs[i].ymax);
        fprintf(f, "  </object>\n");
    }
    fprintf(f, "</annotation>\n");
    assert_int_equal(fclose(f), 0);
    dtu_write_text_xml(root, folder, id, text);
    free(text);
}

void dtu_write_image_set(const char *root, const char *folder, const char *set, const char *const *ids, int n)
{
    char p[4096], name[512];
    snprintf(name, sizeof name, "%s.txt", set);
    FILE *f = fopen(pathf(p, sizeof p, root, folder, "ImageSets/Main", name), "w");
    assert_non_null(f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\n", ids[i]);
    assert_int_equal(fclose(f), 0);
}

uint8_t dtu_pixel(int seed, int y, int x, int k) { return (uint8_t)((seed * 37 + y * 5 + x * 3 + k * 60) % 256); }

void dtu_write_voc_jpeg(const char *root, const char *folder, const char *id, int w, int h, int c, int seed)
{
    uint8_t *px = malloc((size_t)w * h * c);
    assert_non_null(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                px[((size_t)y * w + x) * c + k] = dtu_pixel(seed, y, x, k);
    char p[4096], name[512];
    snprintf(name, sizeof name, "%s.jpg", id);
    tdu_write_jpeg(pathf(p, sizeof p, root, folder, "JPEGImages", name), w, h, c, px, 100);
    free(px);
}

/* Image i: a filled ellipse or rectangle of brightness 120..250 on black. */
static void shape(int i, uint8_t *px)
{
    int x0 = 2 + i % 7, y0 = 3 + i % 5, x1 = 18 + i % 9, y1 = 20 + i % 7;
    uint8_t v = (uint8_t)(120 + (i * 13) % 131);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            bool in = x >= x0 && x <= x1 && y >= y0 && y <= y1;
            if (i % 2) {
                double cx = (x0 + x1) / 2.0, cy = (y0 + y1) / 2.0, rx = (x1 - x0) / 2.0, ry = (y1 - y0) / 2.0;
                in = (x - cx) * (x - cx) / (rx * rx) + (y - cy) * (y - cy) / (ry * ry) <= 1.0;
            }
            px[y * 28 + x] = in ? v : 0;
        }
}

static void write_split(const char *dir, const char *images, const char *labels, int n, int offset)
{
    uint8_t *px = malloc((size_t)n * 784), *lab = malloc((size_t)n);
    assert_non_null(px);
    assert_non_null(lab);
    for (int i = 0; i < n; i++) {
        shape(i + offset, px + (size_t)i * 784);
        lab[i] = (uint8_t)((i + offset) % 10);
    }
    tdu_write_idx_images(dir, images, false, n, 28, 28, px);
    tdu_write_idx_labels(dir, labels, false, n, lab);
    free(px);
    free(lab);
}

void dtu_write_fashion_source(const char *dir, int n_train, int n_test)
{
    write_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", n_train, 0);
    write_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", n_test, 1000);
}

/* nftw has no user pointer: the comparison walks one tree at a time. */
static const char *g_other, *g_base;
static int g_files;
static bool g_equal, g_report;

static bool same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag != FTW_F)
        return 0;
    char other[4096];
    snprintf(other, sizeof other, "%s%s", g_other, path + strlen(g_base));
    g_files++;
    if (!same_file(path, other)) {
        if (g_report)
            print_message("differs: %s vs %s\n", path, other);
        g_equal = false;
    }
    return 0;
}

static int count_files(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)st;
    (void)ftw;
    g_files += flag == FTW_F;
    return 0;
}

bool dtu_trees_equal(const char *a, const char *b, int *files, bool report)
{
    g_report = report;
    g_base = a;
    g_other = b;
    g_files = 0;
    g_equal = true;
    assert_int_equal(nftw(a, visit, 16, FTW_PHYS), 0);
    int na = g_files;
    g_files = 0;
    assert_int_equal(nftw(b, count_files, 16, FTW_PHYS), 0);
    *files = na;
    return g_equal && na == g_files;
}
