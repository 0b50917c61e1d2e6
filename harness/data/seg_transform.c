/* One segmentation sample onto its batch row (see seg_transform.h and the
 * rules in seg_loader.h). */
#include "harness/data/seg_transform.h"

#include <stdlib.h>
#include <string.h>

#include "harness/data/seg_dataset.h"
#include "kernels/error.h"

/* The other side when the shorter one becomes `side`: truncated, as
 * GluonCV's int(1.0 * w * oh / h) (exact in integers). */
static void resize_shorter(int h, int w, int side, int *oh, int *ow)
{
    if (h > w) {
        *ow = side;
        *oh = (int)((int64_t)h * side / w);
    } else {
        *oh = side;
        *ow = (int)((int64_t)w * side / h);
    }
    *oh = *oh < 1 ? 1 : *oh;
    *ow = *ow < 1 ? 1 : *ow;
}

void tb_seg_train_geometry(int h, int w, int base_size, int crop, tb_rng *rng, tb_seg_geometry *g)
{
    g->flip = tb_rng_uniform(rng) < 0.5;
    int lo = base_size / 2, hi = 2 * base_size;
    lo = lo < 1 ? 1 : lo;
    int side = lo + (int)tb_rng_below(rng, (uint64_t)(hi - lo + 1));
    resize_shorter(h, w, side, &g->oh, &g->ow);
    int ph = g->oh > crop ? g->oh : crop, pw = g->ow > crop ? g->ow : crop;
    g->x0 = (int)tb_rng_below(rng, (uint64_t)(pw - crop + 1));
    g->y0 = (int)tb_rng_below(rng, (uint64_t)(ph - crop + 1));
}

/* d / 2 rounded half to even (Python's round). */
static int half_even(int d)
{
    int k = d / 2;
    return d % 2 != 0 && k % 2 != 0 ? k + 1 : k;
}

void tb_seg_eval_geometry(int h, int w, int crop, tb_seg_geometry *g)
{
    resize_shorter(h, w, crop, &g->oh, &g->ow); /* GluonCV's _val_sync_transform (same rule) */
    g->y0 = half_even(g->oh - crop);
    g->x0 = half_even(g->ow - crop);
    g->flip = false;
}

void tb_seg_scratch_free(tb_seg_scratch *s)
{
    tb_resample_scratch_free(&s->rs);
    free(s->tmp);
    free(s->cols);
    memset(s, 0, sizeof *s);
}

void tb_seg_transform_pad(const tb_seg_transform *t, float *image, int32_t *labels)
{
    size_t npix = (size_t)t->crop * t->crop;
    memset(image, 0, npix * t->c * sizeof *image);
    for (size_t p = 0; p < npix; p++)
        labels[p] = TB_SEG_IGNORE;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem, const char *name)
{
    if (need <= *cap)
        return TB_OK;
    void *q = realloc(*p, need * elem);
    TB_CHECK(q, TB_ERR_NOMEM, "%s: cannot allocate %zu bytes for the segmentation transform", name, need * elem);
    *p = q;
    *cap = need;
    return TB_OK;
}

/* The resampled vh x vw window (0..255) normalised into the crop x crop
 * row, zero to its right and below. */
static void place_image(const tb_seg_transform *t, const float *src, int vh, int vw, float *image)
{
    size_t row_len = (size_t)t->crop * t->c;
    float inv[3];
    for (int k = 0; k < t->c; k++)
        inv[k] = 1.0f / t->std[k];
    for (int y = 0; y < vh; y++) {
        float *dst = image + (size_t)y * row_len;
        const float *s = src + (size_t)y * vw * t->c;
        for (int x = 0; x < vw; x++)
            for (int k = 0; k < t->c; k++)
                dst[x * t->c + k] = (s[x * t->c + k] - t->mean[k]) * inv[k];
        memset(dst + (size_t)vw * t->c, 0, (row_len - (size_t)vw * t->c) * sizeof(float));
    }
    memset(image + (size_t)vh * row_len, 0, (size_t)(t->crop - vh) * row_len * sizeof(float));
}

/* Nearest-neighbour labels of the window; cols[q] is the source column of
 * output column q (mirroring included). */
static void place_labels(const tb_seg_transform *t, const tb_image *labels, const tb_seg_geometry *g, int vh, int vw,
                         const int *cols, int32_t *out)
{
    for (int y = 0; y < t->crop; y++) {
        int32_t *dst = out + (size_t)y * t->crop;
        int x = 0;
        if (y < vh) {
            int64_t sr = g->y0 + y;
            int src_y = (int)((2 * sr + 1) * labels->h / (2 * (int64_t)g->oh));
            const uint8_t *row = labels->data + (size_t)src_y * labels->w;
            for (; x < vw; x++) {
                uint8_t v = row[cols[x]];
                dst[x] = v == TB_SEG_IGNORE_U8 ? TB_SEG_IGNORE : v;
            }
        }
        for (; x < t->crop; x++)
            dst[x] = TB_SEG_IGNORE;
    }
}

int tb_seg_transform_apply(const tb_seg_transform *t, const tb_image *img, const tb_image *labels,
                           const tb_seg_geometry *g, const char *name, float *image, int32_t *out_labels,
                           tb_seg_scratch *s)
{
    TB_CHECK(img->c == t->c, TB_ERR_INTERNAL, "%s: image has %d channels, the loader expects %d", name, img->c, t->c);
    TB_CHECK(labels->h == img->h && labels->w == img->w && labels->c == 1, TB_ERR_INTERNAL,
             "%s: label map %dx%dx%d for a %dx%d image", name, labels->h, labels->w, labels->c, img->h, img->w);
    TB_CHECK(g->oh > 0 && g->ow > 0 && g->y0 >= 0 && g->x0 >= 0 && g->y0 < g->oh && g->x0 < g->ow &&
                 (g->oh < t->crop ? g->y0 == 0 : g->y0 <= g->oh - t->crop) &&
                 (g->ow < t->crop ? g->x0 == 0 : g->x0 <= g->ow - t->crop),
             TB_ERR_INTERNAL, "%s: crop %d at (y %d, x %d) outside the %dx%d resized image", name, t->crop, g->y0,
             g->x0, g->oh, g->ow);
    /* the part of the window inside the resized image (padding is right and bottom) */
    int vh = g->oh - g->y0 < t->crop ? g->oh - g->y0 : t->crop;
    int vw = g->ow - g->x0 < t->crop ? g->ow - g->x0 : t->crop;
    /* its columns in the unmirrored resized image */
    int ux0 = g->flip ? g->ow - g->x0 - vw : g->x0;
    TB_TRY(grow((void **)&s->tmp, &s->tmp_cap, (size_t)vh * vw * t->c, sizeof *s->tmp, name));
    TB_TRY(grow((void **)&s->cols, &s->cols_cap, (size_t)vw, sizeof *s->cols, name));
    double sy = (double)img->h / g->oh, sx = (double)img->w / g->ow;
    const double box[4] = {g->y0 * sy, ux0 * sx, vh * sy, vw * sx};
    TB_TRY(tb_resample_box(img->data, img->h, img->w, img->c, box, s->tmp, vh, vw, g->flip, &s->rs));
    place_image(t, s->tmp, vh, vw, image);
    for (int x = 0; x < vw; x++) {
        int64_t sc = g->x0 + x, uc = g->flip ? g->ow - 1 - sc : sc;
        s->cols[x] = (int)((2 * uc + 1) * img->w / (2 * (int64_t)g->ow));
    }
    place_labels(t, labels, g, vh, vw, s->cols, out_labels);
    return TB_OK;
}
