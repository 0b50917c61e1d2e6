/* fashion-scenes: composing one scene (see fashion_scenes.h). The files on
 * disk are written by fashion_scenes_write.c. */
#include "harness/data/fashion_scenes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/rng.h"

#define ITEM_SIDE 28
#define SCALE_LO 0.75
#define SCALE_HI 2.0
#define MAX_SIDE 56 /* round(28 * SCALE_HI) */
#define PLACEMENT_TRIES 32
#define MAX_IOU 0.3
#define BG_MEAN 12.0
#define BG_STD 6.0
#define TRAIN_TAG 0x747261696e73ull /* "trains" */
#define TEST_TAG 0x7465737473ull    /* "tests" */

void tb_fashion_scenes_defaults(tb_fashion_scenes_options *o)
{
    memset(o, 0, sizeof *o);
    o->train_count = 10000;
    o->test_count = 2000;
    o->size = 128;
    o->max_items = 5;
    o->seed = 1;
}

void tb_fashion_scratch_free(tb_fashion_scratch *s)
{
    tb_image_free(&s->item);
    tb_resample_scratch_free(&s->rs);
    free(s->scaled_f);
    free(s->scaled);
    free(s->owner);
    memset(s, 0, sizeof *s);
}

void tb_fashion_scene_free(tb_fashion_scene *scene)
{
    free(scene->image);
    free(scene->mask);
    memset(scene, 0, sizeof *scene);
}

/* A candidate placement: the scaled item at (x0, y0) and its tight box. */
typedef struct placement {
    int side, x0, y0;
    int32_t label;
    int bx0, by0, bx1, by1; /* tight box in canvas pixels, [bx0, bx1) */
} placement;

static double box_iou(const placement *a, const float b[4])
{
    double ix = fmin(a->bx1, b[2]) - fmax(a->bx0, b[0]);
    double iy = fmin(a->by1, b[3]) - fmax(a->by0, b[1]);
    if (ix <= 0 || iy <= 0)
        return 0;
    double inter = ix * iy;
    double area_a = (double)(a->bx1 - a->bx0) * (a->by1 - a->by0);
    double area_b = (double)(b[2] - b[0]) * (b[3] - b[1]);
    return inter / (area_a + area_b - inter);
}

/* Draws an item, scales it into s->scaled and finds its tight box; false
 * when no pixel is above the threshold. */
static int draw_item(const tb_fashion_scenes_options *o, tb_dataset *items, tb_rng *r, tb_fashion_scratch *s,
                     placement *p, bool *ok)
{
    int64_t src = (int64_t)tb_rng_below(r, (uint64_t)tb_dataset_count(items));
    double scale = SCALE_LO + (SCALE_HI - SCALE_LO) * tb_rng_uniform(r);
    int side = (int)lround(ITEM_SIDE * scale);
    side = side > o->size ? o->size : side;
    p->side = side;
    p->x0 = (int)tb_rng_below(r, (uint64_t)(o->size - side + 1));
    p->y0 = (int)tb_rng_below(r, (uint64_t)(o->size - side + 1));
    TB_TRY(tb_dataset_read(items, src, 0, &s->item, &p->label));
    const double box[4] = {0, 0, ITEM_SIDE, ITEM_SIDE};
    TB_TRY(tb_resample_box(s->item.data, ITEM_SIDE, ITEM_SIDE, 1, box, s->scaled_f, side, side, false, &s->rs));
    int x0 = side, y0 = side, x1 = 0, y1 = 0;
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            float v = s->scaled_f[y * side + x];
            uint8_t u = (uint8_t)lrintf(v < 0 ? 0 : v > 255 ? 255 : v);
            s->scaled[y * side + x] = u;
            if (u > TB_FASHION_SCENES_THRESHOLD) {
                x0 = x < x0 ? x : x0;
                y0 = y < y0 ? y : y0;
                x1 = x + 1 > x1 ? x + 1 : x1;
                y1 = y + 1 > y1 ? y + 1 : y1;
            }
        }
    *ok = x1 > x0;
    p->bx0 = p->x0 + x0;
    p->by0 = p->y0 + y0;
    p->bx1 = p->x0 + x1;
    p->by1 = p->y0 + y1;
    return TB_OK;
}

/* True when the placement keeps IoU <= MAX_IOU with every earlier box and
 * leaves every earlier item at least half of its mask pixels. */
static bool placement_fits(const tb_fashion_scenes_options *o, const tb_fashion_scene *scene,
                           const tb_fashion_scratch *s, const placement *p, const int *visible, const int *total)
{
    for (int j = 0; j < scene->count; j++)
        if (box_iou(p, scene->objects[j].box) > MAX_IOU)
            return false;
    int lost[TB_FASHION_SCENES_MAX_ITEMS] = {0};
    for (int y = 0; y < p->side; y++)
        for (int x = 0; x < p->side; x++) {
            int owner = s->owner[(p->y0 + y) * o->size + p->x0 + x];
            if (owner && s->scaled[y * p->side + x] > TB_FASHION_SCENES_THRESHOLD)
                lost[owner - 1]++;
        }
    for (int j = 0; j < scene->count; j++)
        if (2 * (visible[j] - lost[j]) < total[j])
            return false;
    return true;
}

/* Composites the accepted placement as item number scene->count. */
static void place(const tb_fashion_scenes_options *o, tb_fashion_scene *scene, tb_fashion_scratch *s,
                  const placement *p, int *visible, int *total)
{
    int k = scene->count;
    total[k] = 0;
    for (int y = 0; y < p->side; y++)
        for (int x = 0; x < p->side; x++) {
            uint8_t v = s->scaled[y * p->side + x];
            size_t at = (size_t)(p->y0 + y) * o->size + p->x0 + x;
            scene->image[at] = v > scene->image[at] ? v : scene->image[at];
            if (v > TB_FASHION_SCENES_THRESHOLD) {
                if (s->owner[at])
                    visible[s->owner[at] - 1]--;
                s->owner[at] = (uint8_t)(k + 1);
                scene->mask[at] = (uint8_t)(p->label + 1);
                total[k]++;
            }
        }
    visible[k] = total[k];
    tb_det_object *obj = &scene->objects[k];
    obj->box[0] = (float)p->bx0;
    obj->box[1] = (float)p->by0;
    obj->box[2] = (float)p->bx1;
    obj->box[3] = (float)p->by1;
    obj->label = p->label;
    obj->difficult = 0;
    scene->count++;
}

/* Dark noise: BG_MEAN + BG_STD * z, z the standardised sum of four 16-bit
 * uniforms from one draw (Irwin-Hall, close to normal and ~10x cheaper than
 * Box-Muller), clamped below the item threshold. */
static uint8_t background_pixel(tb_rng *r)
{
    uint64_t u = tb_rng_next(r);
    double sum = (double)(u & 0xffff) + (double)((u >> 16) & 0xffff) + (double)((u >> 32) & 0xffff) +
                 (double)(u >> 48);
    double z = (sum / 65536.0 - 2.0) * 1.7320508075688772; /* mean 2, variance 4/12 */
    double v = BG_MEAN + BG_STD * z;
    v = v < 0 ? 0 : v > TB_FASHION_SCENES_THRESHOLD - 1 ? TB_FASHION_SCENES_THRESHOLD - 1 : v;
    return (uint8_t)(v + 0.5);
}

static int check_source(const tb_dataset *items)
{
    TB_CHECK(tb_dataset_height(items) == ITEM_SIDE && tb_dataset_width(items) == ITEM_SIDE &&
                 tb_dataset_channels(items) == 1 && tb_dataset_classes(items) <= 10 && tb_dataset_count(items) > 0,
             TB_ERR_DATA, "fashion-scenes: the source must be Fashion-MNIST-like (28x28 gray, <= 10 classes), got "
             "%lld images of %dx%dx%d, %d classes", (long long)tb_dataset_count(items), tb_dataset_height(items),
             tb_dataset_width(items), tb_dataset_channels(items), tb_dataset_classes(items));
    return TB_OK;
}

static int reserve(const tb_fashion_scenes_options *o, tb_fashion_scene *scene, tb_fashion_scratch *s)
{
    size_t npix = (size_t)o->size * o->size;
    if (scene->size != o->size) {
        free(scene->image);
        free(scene->mask);
        scene->image = malloc(npix);
        scene->mask = malloc(npix);
        scene->size = scene->image && scene->mask ? o->size : 0;
    }
    if (s->size != o->size) {
        free(s->owner);
        s->owner = malloc(npix);
        s->size = s->owner ? o->size : 0;
    }
    if (!s->scaled_f)
        s->scaled_f = malloc(MAX_SIDE * MAX_SIDE * sizeof(float));
    if (!s->scaled)
        s->scaled = malloc(MAX_SIDE * MAX_SIDE);
    TB_CHECK(scene->size && s->size && s->scaled_f && s->scaled, TB_ERR_NOMEM,
             "fashion-scenes: out of memory for a %dx%d scene", o->size, o->size);
    return TB_OK;
}

int tb_fashion_scene_compose(const tb_fashion_scenes_options *o, tb_dataset *items, int64_t index,
                             tb_fashion_scene *scene, tb_fashion_scratch *s)
{
    TB_TRY(check_source(items));
    TB_TRY(reserve(o, scene, s));
    size_t npix = (size_t)o->size * o->size;
    tb_rng r;
    tb_rng_seed(&r, o->seed ^ (tb_dataset_is_train(items) ? TRAIN_TAG : TEST_TAG), (uint64_t)index);
    for (size_t p = 0; p < npix; p++)
        scene->image[p] = background_pixel(&r);
    memset(scene->mask, 0, npix);
    memset(s->owner, 0, npix);
    scene->count = 0;
    int want = 1 + (int)tb_rng_below(&r, (uint64_t)o->max_items);
    int visible[TB_FASHION_SCENES_MAX_ITEMS], total[TB_FASHION_SCENES_MAX_ITEMS];
    for (int k = 0; k < want; k++)
        for (int t = 0; t < PLACEMENT_TRIES; t++) {
            placement p;
            bool ok;
            TB_TRY(draw_item(o, items, &r, s, &p, &ok));
            if (ok && placement_fits(o, scene, s, &p, visible, total)) {
                place(o, scene, s, &p, visible, total);
                break;
            }
        }
    TB_CHECK(scene->count > 0, TB_ERR_DATA,
             "fashion-scenes: scene %lld got no item: %d source images in a row had no pixel above %d",
             (long long)index, PLACEMENT_TRIES, TB_FASHION_SCENES_THRESHOLD);
    return TB_OK;
}

int tb_fashion_scenes_stamp(const tb_fashion_scenes_options *o, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "trickbench fashion-scenes 1\nsource %s\ntrain %lld\ntest %lld\nsize %d\nmax_items %d\nseed %llu\n",
                     o->source[0] ? o->source : TB_FASHION_MNIST_ROOT, (long long)o->train_count,
                     (long long)o->test_count, o->size, o->max_items, (unsigned long long)o->seed);
    TB_CHECK(n > 0 && (size_t)n < cap, TB_ERR_INVALID, "fashion-scenes: stamp too long");
    return TB_OK;
}
