/* Final detections (torchvision's RoIHeads.postprocess_detections).
 *
 * Per image b, with P RoI rows per image, C classes (0 = background) and
 * D = max_per_image:
 *  1. for every foreground class c and RoI r < roi_count[b] whose score
 *     probs[r, c] > score_thresh: decode the class's deltas (columns 4c..4c+3,
 *     box_std) on the RoI and clip the box to im_size[b] = (height, width).
 *  2. per class: sort by score (ties: lower RoI first), greedy NMS at
 *     nms_iou, keep at most D (no more can make the final cut: the final sort
 *     puts a class's own better boxes before them).
 *  3. merge the classes, sort by score (ties: lower class, then lower RoI),
 *     keep the first D: boxes, scores, classes c - 1 (0-based, the dataset's
 *     numbering), count[b]. Rows past the count are zero boxes and scores
 *     with class -1 (ops.h: label -1 where there is a label).
 * The RoIs of image b are rows b * P .. b * P + P - 1 (their column 0 is not
 * read). roi_count values outside [0, P] are TB_ERR_INVALID naming the image,
 * checked before anything is written. Scratch (db_layout) comes from the
 * workspace, reserved from tb_detect_boxes_workspace_size.
 */
#include <string.h>

#include "kernels/cpu/box.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

typedef struct db_scratch {
    tb_cpu_keyed *order;  /* {P} one class's candidates by score */
    float *boxes;         /* {P, 4} indexed by RoI */
    float *sorted;        /* {P, 4} in score order, for the NMS */
    int32_t *keep;        /* {P} */
    tb_cpu_keyed *merged; /* {(C - 1) * min(P, D)}: index = class * P + RoI */
    void *nms;            /* tb_cpu_nms_scratch_size(P) */
} db_scratch;

/* Carves the scratch for P = np RoIs per image out of base (NULL: only
 * counts); returns its bytes. */
static size_t db_layout(db_scratch *s, void *base, int64_t np, int64_t classes, int64_t d)
{
    tb_cpu_carver c = {base, 0};
    int64_t mcap = (classes - 1) * tb_cpu_min64(np, d);
    s->order = tb_cpu_carve(&c, (size_t)np * sizeof(tb_cpu_keyed));
    s->merged = tb_cpu_carve(&c, (size_t)mcap * sizeof(tb_cpu_keyed));
    s->boxes = tb_cpu_carve(&c, (size_t)np * 4 * sizeof(float));
    s->sorted = tb_cpu_carve(&c, (size_t)np * 4 * sizeof(float));
    s->keep = tb_cpu_carve(&c, (size_t)np * sizeof(int32_t));
    s->nms = tb_cpu_carve(&c, tb_cpu_nms_scratch_size(np));
    return c.used;
}

size_t tb_cpu_detect_boxes_workspace_size(tb_backend *be, const tb_tensor *probs, const tb_tensor *roi_count,
                                          const tb_detect_params *p)
{
    (void)be;
    db_scratch s;
    return db_layout(&s, NULL, probs->shape[0] / roi_count->shape[0], probs->shape[1], p->max_per_image);
}

/* The views of one call. */
typedef struct db_call {
    const tb_tensor *probs, *deltas;
    const float *rois, *im_size;
    int64_t np, classes;
    const tb_detect_params *p;
} db_call;

/* The box of class c for RoI r of image b: decoded and clipped. */
static void db_box(float *box, const db_call *k, int64_t b, int64_t r, int64_t c)
{
    int64_t row = b * k->np + r;
    float delta[4];
    for (int q = 0; q < 4; q++)
        delta[q] = tb_load_f32(k->deltas->data, k->deltas->dtype, row * 4 * k->classes + 4 * c + q);
    tb_cpu_box_decode(box, delta, k->rois + 5 * row + 1, k->p->box_std);
    tb_cpu_box_clip(box, k->im_size[2 * b], k->im_size[2 * b + 1]);
}

/* Steps 1-2 for class c of image b: appends the kept (score, c * P + r) to
 * s->merged[merged..]; returns the merged list's new length. */
static int64_t db_class(db_scratch *s, const db_call *k, int64_t b, int64_t rcount, int64_t c,
                        int64_t merged)
{
    int64_t m = 0;
    const float *probs = k->probs->data;
    for (int64_t r = 0; r < rcount; r++) {
        float score = probs[(b * k->np + r) * k->classes + c];
        if (!(score > k->p->score_thresh)) /* NaN scores are never kept */
            continue;
        db_box(s->boxes + 4 * r, k, b, r, c);
        s->order[m].key = score;
        s->order[m++].index = (int32_t)r;
    }
    tb_cpu_sort_desc(s->order, m);
    for (int64_t t = 0; t < m; t++)
        memcpy(s->sorted + 4 * t, s->boxes + 4 * s->order[t].index, 4 * sizeof(float));
    int64_t kept = tb_cpu_nms(s->keep, s->sorted, m, k->p->nms_iou, k->p->max_per_image, s->nms);
    for (int64_t t = 0; t < kept; t++, merged++) {
        const tb_cpu_keyed *o = &s->order[s->keep[t]];
        s->merged[merged].key = o->key;
        s->merged[merged].index = (int32_t)(c * k->np + o->index);
    }
    return merged;
}

int tb_cpu_detect_boxes(tb_backend *be, tb_tensor *boxes, tb_tensor *scores, tb_tensor *classes, tb_tensor *count,
                        const tb_tensor *probs, const tb_tensor *deltas, const tb_tensor *rois,
                        const tb_tensor *roi_count, const tb_tensor *im_size, const tb_detect_params *p)
{
    /* sequential: a few thousand candidates per image */
    int64_t n = roi_count->shape[0], np = rois->shape[0] / n, nc = probs->shape[1], d = p->max_per_image;
    const int32_t *rc = roi_count->data;
    for (int64_t b = 0; b < n; b++)
        if (rc[b] < 0 || rc[b] > np)
            return tb_fail(TB_ERR_INVALID, "detect_boxes: roi_count[%lld] = %d is outside [0, %lld]", (long long)b,
                           (int)rc[b], (long long)np);
    db_scratch s;
    TB_TRY(tb_cpu_workspace_check(be, "detect_boxes", "detect_boxes", db_layout(&s, NULL, np, nc, d)));
    db_layout(&s, be->workspace, np, nc, d);
    db_call k = {probs, deltas, rois->data, im_size->data, np, nc, p};
    float *ob = boxes->data, *os = scores->data;
    int32_t *oc = classes->data, *on = count->data;
    for (int64_t b = 0; b < n; b++) {
        int64_t merged = 0;
        for (int64_t c = 1; c < nc; c++)
            merged = db_class(&s, &k, b, rc[b], c, merged);
        /* index c * P + r ascending = lower class, then lower RoI on equal scores */
        tb_cpu_sort_desc(s.merged, merged);
        int64_t kept = tb_cpu_min64(merged, d);
        for (int64_t t = 0; t < d; t++) {
            int64_t row = b * d + t;
            if (t < kept) {
                int64_t c = s.merged[t].index / np, r = s.merged[t].index % np;
                db_box(ob + 4 * row, &k, b, r, c); /* recomputed: the same arithmetic gives the same box */
                os[row] = s.merged[t].key;
                oc[row] = (int32_t)(c - 1);
            } else {
                memset(ob + 4 * row, 0, 4 * sizeof(float));
                os[row] = 0.0f;
                oc[row] = -1;
            }
        }
        on[b] = (int32_t)kept;
    }
    return TB_OK;
}
