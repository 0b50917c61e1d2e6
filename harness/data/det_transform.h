/* Internal to harness/data: one detection sample made ready for a batch
 * (resize, optional flip, normalise, place on the canvas, boxes with it);
 * the rules are documented in det_loader.h. Exposed for tests. */
#ifndef TB_DET_TRANSFORM_H
#define TB_DET_TRANSFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/data/det_dataset.h"
#include "harness/data/resample.h"

/* The resized size of an h x w image and its scale factor. */
void tb_det_resize_size(int h, int w, int min_side, int max_side, int *nh, int *nw, float *scale);
/* The largest resized height and width over the images of ds. */
void tb_det_resized_max(const tb_det_dataset *ds, int min_side, int max_side, int *h, int *w);

typedef struct tb_det_transform {
    int min_side, max_side;
    int canvas_h, canvas_w, c;
    int max_objects;
    float mean[3], std[3];   /* 0..255 scale */
} tb_det_transform;

/* Where one batch row goes. */
typedef struct tb_det_row {
    float *image;            /* canvas_h * canvas_w * c */
    float *boxes;            /* max_objects * 4 */
    int32_t *labels;         /* max_objects */
    uint8_t *difficult;      /* max_objects */
    int32_t *count;
    float *im_size;          /* 2 */
    float *scale;
} tb_det_row;

typedef struct tb_det_scratch {
    tb_resample_scratch rs;
    float *tmp;
    size_t tmp_cap;          /* floats */
} tb_det_scratch;

void tb_det_scratch_free(tb_det_scratch *s);

/* img (u8 HWC, t->c channels) with its objects -> one row. `name` is the
 * image's name for errors (too many objects, does not fit the canvas). */
int tb_det_transform_apply(const tb_det_transform *t, const tb_image *img, const tb_det_object *objects, int count,
                           bool flip, const char *name, const tb_det_row *row, tb_det_scratch *s);
/* A padding row (see det_loader.h). */
void tb_det_transform_pad(const tb_det_transform *t, const tb_det_row *row);

#endif
