/* One detection sample onto its batch row (see det_transform.h and the
 * rules in det_loader.h). */
#include "harness/data/det_transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

void tb_det_resize_size(int h, int w, int min_side, int max_side, int *nh, int *nw, float *scale)
{
    int shorter = h < w ? h : w, longer = h < w ? w : h;
    double s = min_side > 0 ? (double)min_side / shorter : 1.0;
    if (max_side > 0 && longer * s > max_side)
        s = (double)max_side / longer;
    long rh = lround(h * s), rw = lround(w * s);
    *nh = rh < 1 ? 1 : (int)rh;
    *nw = rw < 1 ? 1 : (int)rw;
    *scale = (float)s;
}

void tb_det_resized_max(const tb_det_dataset *ds, int min_side, int max_side, int *h, int *w)
{
    *h = *w = 0;
    for (int64_t i = 0; i < tb_det_dataset_count(ds); i++) {
        int ih, iw, nh, nw;
        float s;
        tb_det_dataset_image_size(ds, i, &ih, &iw);
        tb_det_resize_size(ih, iw, min_side, max_side, &nh, &nw, &s);
        *h = nh > *h ? nh : *h;
        *w = nw > *w ? nw : *w;
    }
}

void tb_det_scratch_free(tb_det_scratch *s)
{
    tb_resample_scratch_free(&s->rs);
    free(s->tmp);
    memset(s, 0, sizeof *s);
}

static void clear_objects(const tb_det_transform *t, const tb_det_row *row, int from)
{
    for (int k = from; k < t->max_objects; k++) {
        memset(row->boxes + 4 * k, 0, 4 * sizeof(float));
        row->labels[k] = -1;
        row->difficult[k] = 0;
    }
}

void tb_det_transform_pad(const tb_det_transform *t, const tb_det_row *row)
{
    memset(row->image, 0, (size_t)t->canvas_h * t->canvas_w * t->c * sizeof(float));
    clear_objects(t, row, 0);
    *row->count = 0;
    row->im_size[0] = (float)t->canvas_h;
    row->im_size[1] = (float)t->canvas_w;
    *row->scale = 1.0f;
}

/* The resampled nh x nw image (0..255) normalised onto the zero canvas. */
static void place(const tb_det_transform *t, const float *src, int nh, int nw, float *canvas)
{
    size_t row_len = (size_t)t->canvas_w * t->c;
    float inv[3];
    for (int k = 0; k < t->c; k++)
        inv[k] = 1.0f / t->std[k];
    for (int y = 0; y < nh; y++) {
        float *dst = canvas + (size_t)y * row_len;
        const float *s = src + (size_t)y * nw * t->c;
        for (int x = 0; x < nw; x++)
            for (int k = 0; k < t->c; k++)
                dst[x * t->c + k] = (s[x * t->c + k] - t->mean[k]) * inv[k];
        memset(dst + (size_t)nw * t->c, 0, (row_len - (size_t)nw * t->c) * sizeof(float));
    }
    memset(canvas + (size_t)nh * row_len, 0, (size_t)(t->canvas_h - nh) * row_len * sizeof(float));
}

int tb_det_transform_apply(const tb_det_transform *t, const tb_image *img, const tb_det_object *objects, int count,
                           bool flip, const char *name, const tb_det_row *row, tb_det_scratch *s)
{
    TB_CHECK(img->c == t->c, TB_ERR_INTERNAL, "%s: image has %d channels, the loader expects %d", name, img->c, t->c);
    TB_CHECK(count <= t->max_objects, TB_ERR_DATA, "%s: %d objects, more than max_objects = %d", name, count,
             t->max_objects);
    int nh, nw;
    float scale;
    tb_det_resize_size(img->h, img->w, t->min_side, t->max_side, &nh, &nw, &scale);
    TB_CHECK(nh <= t->canvas_h && nw <= t->canvas_w, TB_ERR_INVALID,
             "%s: resized to %dx%d (height x width), larger than the %dx%d canvas", name, nh, nw, t->canvas_h,
             t->canvas_w);
    size_t need = (size_t)nh * nw * t->c;
    if (need > s->tmp_cap) {
        float *p = realloc(s->tmp, need * sizeof *p);
        TB_CHECK(p, TB_ERR_NOMEM, "%s: cannot allocate %zu floats for resizing", name, need);
        s->tmp = p;
        s->tmp_cap = need;
    }
    const double box[4] = {0, 0, img->h, img->w};
    TB_TRY(tb_resample_box(img->data, img->h, img->w, img->c, box, s->tmp, nh, nw, flip, &s->rs));
    place(t, s->tmp, nh, nw, row->image);
    /* per-axis ratios: exact for the rounded size */
    float sx = (float)nw / (float)img->w, sy = (float)nh / (float)img->h;
    for (int k = 0; k < count; k++) {
        const float *b = objects[k].box;
        float x1 = b[0] * sx, x2 = b[2] * sx;
        float *o = row->boxes + 4 * k;
        o[0] = flip ? (float)nw - x2 : x1;
        o[1] = b[1] * sy;
        o[2] = flip ? (float)nw - x1 : x2;
        o[3] = b[3] * sy;
        row->labels[k] = objects[k].label;
        row->difficult[k] = objects[k].difficult;
    }
    clear_objects(t, row, count);
    *row->count = count;
    row->im_size[0] = (float)nh;
    row->im_size[1] = (float)nw;
    *row->scale = scale;
    return TB_OK;
}
