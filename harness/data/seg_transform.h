/* Internal to harness/data: one segmentation sample made ready for a batch
 * (resize, mirror, crop, pad, normalise; labels with the image). The rules
 * are documented in seg_loader.h. Exposed for tests. */
#ifndef TB_SEG_TRANSFORM_H
#define TB_SEG_TRANSFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/data/dataset.h"
#include "harness/data/resample.h"
#include "kernels/rng.h"

/* Where a sample's crop comes from: the image resized to oh x ow, mirrored
 * when flip, padded right and bottom to at least crop x crop, and the crop
 * x crop window at (y0, x0) of that (mirrored, padded) image. */
typedef struct tb_seg_geometry {
    int oh, ow;
    int y0, x0;
    bool flip;
} tb_seg_geometry;

/* Training geometry of an h x w image, drawn from rng in this order: flip
 * (p = 0.5), shorter side uniform in base/2 .. 2*base (integers, inclusive),
 * then x0, then y0 uniform over the valid offsets. */
void tb_seg_train_geometry(int h, int w, int base_size, int crop, tb_rng *rng, tb_seg_geometry *g);
/* Evaluation geometry: shorter side = crop, center crop (offset rounded half
 * to even, as Python's round), no flip. */
void tb_seg_eval_geometry(int h, int w, int crop, tb_seg_geometry *g);

typedef struct tb_seg_transform {
    int crop, c;
    float mean[3], std[3];   /* 0..255 scale */
} tb_seg_transform;

typedef struct tb_seg_scratch {
    tb_resample_scratch rs;
    float *tmp;
    size_t tmp_cap;          /* floats */
    int *cols;
    size_t cols_cap;
} tb_seg_scratch;

void tb_seg_scratch_free(tb_seg_scratch *s);

/* img (u8 HWC, t->c channels) and labels (u8 h x w, TB_SEG_IGNORE_U8 =
 * ignored) -> image (f32 crop x crop x c, normalised, 0 where padded) and
 * out_labels (i32 crop x crop, -1 where ignored or padded). The image is
 * resampled with resample.h's antialiased bilinear filter, the labels with
 * nearest neighbour (source index floor((o + 0.5) * in / out), PIL's
 * NEAREST), so no label value is invented. */
int tb_seg_transform_apply(const tb_seg_transform *t, const tb_image *img, const tb_image *labels,
                           const tb_seg_geometry *g, const char *name, float *image, int32_t *out_labels,
                           tb_seg_scratch *s);
/* A padding row: zero image, every label -1. */
void tb_seg_transform_pad(const tb_seg_transform *t, float *image, int32_t *labels);

#endif
