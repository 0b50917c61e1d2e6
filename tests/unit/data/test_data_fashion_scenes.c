/* fashion-scenes: determinism of the files (and independence from the
 * writer threads), boxes tight and inside the canvas, masks consistent with
 * boxes and image, the VOC round trip, stamps and failures. The source is a
 * tiny Fashion-MNIST-like IDX set written by the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <unistd.h>

#include "data_test_util.h"
#include "det_test_util.h"
#include "harness/data/det_dataset.h"
#include "harness/data/fashion_scenes.h"
#include "kernels/error.h"

typedef struct fixture {
    char *src;   /* the IDX source */
    char *tmp;   /* roots go below */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->src = tdu_tempdir();
    f->tmp = tdu_tempdir();
    dtu_write_fashion_source(f->src, 300, 100);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tdu_rmtree(f->src);
    tdu_rmtree(f->tmp);
    free(f->src);
    free(f->tmp);
    free(f);
    return 0;
}

static tb_fashion_scenes_options small_options(const fixture *f)
{
    tb_fashion_scenes_options o;
    tb_fashion_scenes_defaults(&o);
    o.train_count = 20;
    o.test_count = 10;
    o.size = 96;
    snprintf(o.source, sizeof o.source, "%s", f->src);
    return o;
}

static tb_dataset *open_items(const fixture *f, bool train)
{
    tb_data_config cfg = tdu_config("fashion-mnist", f->src);
    tb_dataset *ds;
    if (tb_dataset_open(&ds, &cfg, train) != TB_OK)
        fail_msg("%s", tb_errmsg());
    return ds;
}

static void test_defaults(void **state)
{
    (void)state;
    tb_fashion_scenes_options o;
    tb_fashion_scenes_defaults(&o);
    assert_int_equal(o.train_count, 10000);
    assert_int_equal(o.test_count, 2000);
    assert_int_equal(o.size, 128);
    assert_int_equal(o.max_items, 5);
    assert_int_equal(tb_det_format_fashion_scenes.classes, 10);
    assert_string_equal(tb_det_format_fashion_scenes.class_names[9], "ankle-boot");
    assert_int_equal(tb_det_format_fashion_scenes.channels, 1);
}

static void test_determinism(void **state)
{
    fixture *f = *state;
    tb_fashion_scenes_options o = small_options(f);
    char a[4096], b[4096], fa[4096], fb[4096];
    tdu_pathf(a, sizeof a, "%s/a", f->tmp);
    tdu_pathf(b, sizeof b, "%s/b/nested", f->tmp); /* missing parents are created */
    o.threads = 1;
    if (tb_fashion_scenes_ensure(&o, a) != TB_OK)
        fail_msg("%s", tb_errmsg());
    o.threads = 2;
    if (tb_fashion_scenes_ensure(&o, b) != TB_OK)
        fail_msg("%s", tb_errmsg());
    int files;
    assert_true(dtu_trees_equal(tdu_pathf(fa, sizeof fa, "%s/FashionScenes", a),
                                tdu_pathf(fb, sizeof fb, "%s/FashionScenes", b), &files, true));
    assert_int_equal(files, 3 * 30 + 2 + 1); /* jpg + xml + png per scene, two image sets, the stamp */
    /* nothing else (no temporary directory) is left in the root */
    DIR *d = opendir(a);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        entries += e->d_name[0] != '.' || strncmp(e->d_name, ".FashionScenes", 14) == 0;
    closedir(d);
    assert_int_equal(entries, 1);
    /* another seed gives other scenes */
    char c[4096], fc[4096];
    o.seed = 2;
    if (tb_fashion_scenes_ensure(&o, tdu_pathf(c, sizeof c, "%s/c", f->tmp)) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_false(dtu_trees_equal(fa, tdu_pathf(fc, sizeof fc, "%s/FashionScenes", c), &files, false));
}

/* Checks one composed scene: boxes tight (on the image: pixels above the
 * threshold are exactly the mask), inside the canvas, with little overlap;
 * every mask pixel lies in a box of its class and every box shows its class. */
static void check_scene(const tb_fashion_scenes_options *o, const tb_fashion_scene *sc)
{
    int S = o->size;
    assert_true(sc->count >= 1 && sc->count <= o->max_items);
    for (int p = 0; p < S * S; p++)
        assert_int_equal(sc->image[p] > TB_FASHION_SCENES_THRESHOLD, sc->mask[p] != 0);
    for (int j = 0; j < sc->count; j++) {
        const float *b = sc->objects[j].box;
        assert_true(b[0] >= 0 && b[1] >= 0 && b[2] <= S && b[3] <= S && b[0] < b[2] && b[1] < b[3]);
        assert_true(b[0] == (int)b[0] && b[3] == (int)b[3]);
        assert_true(sc->objects[j].label >= 0 && sc->objects[j].label < 10);
        int shown = 0;
        for (int y = (int)b[1]; y < (int)b[3]; y++)
            for (int x = (int)b[0]; x < (int)b[2]; x++)
                shown += sc->mask[y * S + x] == sc->objects[j].label + 1;
        assert_true(shown > 0);
        for (int k = 0; k < j; k++) {
            const float *c = sc->objects[k].box;
            double iw = fmin(b[2], c[2]) - fmax(b[0], c[0]), ih = fmin(b[3], c[3]) - fmax(b[1], c[1]);
            double inter = iw > 0 && ih > 0 ? iw * ih : 0;
            double u = (b[2] - b[0]) * (b[3] - b[1]) + (c[2] - c[0]) * (c[3] - c[1]) - inter;
            assert_true(inter / u <= 0.3 + 1e-9);
        }
    }
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int m = sc->mask[y * S + x];
            if (!m)
                continue;
            bool inside = false;
            for (int j = 0; j < sc->count && !inside; j++) {
                const float *b = sc->objects[j].box;
                inside = sc->objects[j].label == m - 1 && x >= b[0] && x < b[2] && y >= b[1] && y < b[3];
            }
            assert_true(inside);
        }
}

static void test_scenes_valid(void **state)
{
    fixture *f = *state;
    tb_fashion_scenes_options o = small_options(f);
    tb_dataset *items = open_items(f, true);
    tb_fashion_scene sc = {0};
    tb_fashion_scratch s = {0};
    int multi = 0;
    for (int64_t i = 0; i < 60; i++) {
        if (tb_fashion_scene_compose(&o, items, i, &sc, &s) != TB_OK)
            fail_msg("%s", tb_errmsg());
        check_scene(&o, &sc);
        multi += sc.count > 1;
    }
    assert_true(multi > 20);
    /* one item: the box is exactly the bounding box of the mask */
    o.max_items = 1;
    o.size = 64;
    for (int64_t i = 0; i < 20; i++) {
        if (tb_fashion_scene_compose(&o, items, i, &sc, &s) != TB_OK)
            fail_msg("%s", tb_errmsg());
        check_scene(&o, &sc);
        assert_int_equal(sc.count, 1);
        int x0 = 64, y0 = 64, x1 = 0, y1 = 0;
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++)
                if (sc.mask[y * 64 + x]) {
                    x0 = x < x0 ? x : x0;
                    y0 = y < y0 ? y : y0;
                    x1 = x + 1 > x1 ? x + 1 : x1;
                    y1 = y + 1 > y1 ? y + 1 : y1;
                }
        const float *b = sc.objects[0].box;
        assert_true(b[0] == x0 && b[1] == y0 && b[2] == x1 && b[3] == y1);
    }
    tb_fashion_scene_free(&sc);
    tb_fashion_scratch_free(&s);
    tb_dataset_close(items);
}

/* The files read back through the VOC reader give the composed scenes. */
static void test_round_trip(void **state)
{
    fixture *f = *state;
    tb_fashion_scenes_options o = small_options(f);
    char root[4096];
    tdu_pathf(root, sizeof root, "%s/rt", f->tmp);
    if (tb_fashion_scenes_ensure(&o, root) != TB_OK)
        fail_msg("%s", tb_errmsg());
    tb_det_dataset *ds;
    if (tb_det_dataset_open(&ds, root, "FashionScenes:test", &tb_det_format_fashion_scenes) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_equal(tb_det_dataset_count(ds), 10);
    assert_string_equal(tb_det_dataset_image_name(ds, 3), "FashionScenes/test_000003");
    tb_dataset *items = open_items(f, false);
    tb_fashion_scene sc = {0};
    tb_fashion_scratch s = {0};
    tb_image img = {0}, mask = {0};
    for (int64_t i = 0; i < 10; i++) {
        if (tb_fashion_scene_compose(&o, items, i, &sc, &s) != TB_OK)
            fail_msg("%s", tb_errmsg());
        const tb_det_object *objs;
        int count;
        tb_det_dataset_objects(ds, i, &objs, &count);
        assert_int_equal(count, sc.count);
        for (int j = 0; j < count; j++) {
            assert_memory_equal(objs[j].box, sc.objects[j].box, sizeof objs[j].box);
            assert_int_equal(objs[j].label, sc.objects[j].label);
            assert_int_equal(objs[j].difficult, 0);
        }
        if (tb_det_dataset_read_mask(ds, i, &mask) != TB_OK)
            fail_msg("%s", tb_errmsg());
        assert_memory_equal(mask.data, sc.mask, (size_t)o.size * o.size);
        if (tb_det_dataset_read(ds, i, &img) != TB_OK)
            fail_msg("%s", tb_errmsg());
        assert_int_equal(img.c, 1);
        double err = 0;
        for (int p = 0; p < o.size * o.size; p++)
            err += abs((int)img.data[p] - (int)sc.image[p]);
        assert_true(err / (o.size * o.size) < 3.0); /* JPEG quality 95 */
    }
    tb_image_free(&img);
    tb_image_free(&mask);
    tb_fashion_scene_free(&sc);
    tb_fashion_scratch_free(&s);
    tb_dataset_close(items);
    tb_det_dataset_close(ds);
}

static void test_stamp(void **state)
{
    fixture *f = *state;
    tb_fashion_scenes_options o = small_options(f);
    o.train_count = 3;
    o.test_count = 2;
    char root[4096], p[4096];
    tdu_pathf(root, sizeof root, "%s/st", f->tmp);
    if (tb_fashion_scenes_ensure(&o, root) != TB_OK)
        fail_msg("%s", tb_errmsg());
    /* same options: nothing regenerated (a file removed stays removed) */
    remove(tdu_pathf(p, sizeof p, "%s/FashionScenes/JPEGImages/train_000000.jpg", root));
    if (tb_fashion_scenes_ensure(&o, root) != TB_OK)
        fail_msg("%s", tb_errmsg());
    assert_int_not_equal(access(p, F_OK), 0);
    /* other options: an error naming the dataset and both stamps */
    o.seed = 99;
    assert_int_equal(tb_fashion_scenes_ensure(&o, root), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), root));
    assert_non_null(strstr(tb_errmsg(), "seed 99"));
    assert_non_null(strstr(tb_errmsg(), "seed 1"));
    o.seed = 1;
    o.size = 128;
    assert_int_equal(tb_fashion_scenes_ensure(&o, root), TB_ERR_INVALID);
    /* a folder without a stamp (foreign or incomplete) */
    char other[4096];
    tdu_pathf(other, sizeof other, "%s/nostamp", f->tmp);
    tdu_mkdirs(tdu_pathf(p, sizeof p, "%s/FashionScenes", other));
    assert_int_equal(tb_fashion_scenes_ensure(&o, other), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "stamp.txt"));
}

static void test_failures_leave_nothing(void **state)
{
    fixture *f = *state;
    tb_fashion_scenes_options o = small_options(f);
    char root[4096], p[4096];
    tdu_pathf(root, sizeof root, "%s/fail", f->tmp);
    tdu_pathf(o.source, sizeof o.source, "%s/no-such-source", f->tmp);
    assert_int_equal(tb_fashion_scenes_ensure(&o, root), TB_ERR_MISSING);
    assert_non_null(strstr(tb_errmsg(), "no-such-source"));
    DIR *d = opendir(root);
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    assert_int_equal(entries, 0);
    /* bad options */
    o = small_options(f);
    o.max_items = 0;
    assert_int_equal(tb_fashion_scenes_ensure(&o, root), TB_ERR_INVALID);
    o = small_options(f);
    o.size = 16;
    assert_int_equal(tb_fashion_scenes_ensure(&o, root), TB_ERR_INVALID);
    assert_int_not_equal(access(tdu_pathf(p, sizeof p, "%s/FashionScenes", root), F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scenes_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_leave_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
