/* Box-head training targets (torchvision's RoIHeads.select_training_samples).
 *
 * Per image b, with P proposal rows per image, G gt rows, R = rois_per_image:
 *  1. candidates: the first proposal_count[b] proposals, then the gt boxes
 *     i < gt_count[b] (so every gt is a foreground candidate of IoU 1).
 *  2. best IoU of each candidate over the gts, arg = its gt (lowest on ties).
 *     Foreground: best >= fg_iou, label gt_labels[b, arg] + 1. Background:
 *     bg_iou_lo <= best < bg_iou_hi, label 0. An image without gts has every
 *     candidate background (as torchvision and Detectron2).
 *  3. sampling: at most round(R * pos_fraction) foreground, then background
 *     up to R, by tb_cpu_sample_subset (box.h) with seed p->seed and key index
 *     b * (P + G) + cand, where cand is the proposal row i, or P + i for gt i.
 *  4. output rows b * R + t: the sampled foreground in candidate order, then
 *     the sampled background in candidate order, then padding rows
 *     (b, 0, 0, 0, 0) with label -1. Foreground rows have targets =
 *     encode(gt arg, candidate, box_std) in columns 4L..4L+3 of their label L
 *     and weights 1 there; every other target and weight is 0.
 * proposal_count, gt_count and the labels of the counted gts are checked
 * first (TB_ERR_INVALID naming the image and row; nothing written).
 * Scratch (rg_layout: 36 bytes per candidate row P + G) comes from the
 * workspace, reserved from tb_roi_targets_workspace_size.
 */
#include <math.h>
#include <string.h>

#include "kernels/cpu/box.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

typedef struct rg_scratch {
    float *boxes;       /* {P + G, 4} candidate boxes */
    int32_t *arg;       /* {P + G} */
    int32_t *fg, *bg;   /* {P + G} candidate lists */
    tb_cpu_keyed *keys; /* {P + G} */
} rg_scratch;

/* Carves the scratch for m candidates out of base (NULL: only counts); returns its bytes. */
static size_t rg_layout(rg_scratch *s, void *base, int64_t m)
{
    tb_cpu_carver c = {base, 0};
    s->keys = tb_cpu_carve(&c, (size_t)m * sizeof(tb_cpu_keyed));
    s->boxes = tb_cpu_carve(&c, (size_t)m * 4 * sizeof(float));
    s->arg = tb_cpu_carve(&c, (size_t)m * sizeof(int32_t));
    s->fg = tb_cpu_carve(&c, (size_t)m * sizeof(int32_t));
    s->bg = tb_cpu_carve(&c, (size_t)m * sizeof(int32_t));
    return c.used;
}

/* Candidates per image: P proposal rows + G gt rows. */
static int64_t rg_candidates(const tb_tensor *proposals, const tb_tensor *gt_boxes)
{
    return proposals->shape[0] / gt_boxes->shape[0] + gt_boxes->shape[1];
}

size_t tb_cpu_roi_targets_workspace_size(tb_backend *be, const tb_tensor *proposals, const tb_tensor *gt_boxes,
                                         const tb_roi_target_params *p)
{
    (void)be, (void)p;
    rg_scratch s;
    return rg_layout(&s, NULL, rg_candidates(proposals, gt_boxes));
}

static int rg_check(const tb_tensor *proposal_count, const tb_tensor *gt_labels, const tb_tensor *gt_count,
                    int64_t np, int64_t classes)
{
    int64_t n = gt_count->shape[0], g = gt_labels->shape[1];
    const int32_t *pc = proposal_count->data, *gc = gt_count->data, *gl = gt_labels->data;
    for (int64_t b = 0; b < n; b++) {
        if (pc[b] < 0 || pc[b] > np)
            return tb_fail(TB_ERR_INVALID, "roi_targets: proposal_count[%lld] = %d is outside [0, %lld]",
                           (long long)b, (int)pc[b], (long long)np);
        if (gc[b] < 0 || gc[b] > g)
            return tb_fail(TB_ERR_INVALID, "roi_targets: gt_count[%lld] = %d is outside [0, %lld]", (long long)b,
                           (int)gc[b], (long long)g);
        for (int64_t i = 0; i < gc[b]; i++)
            if (gl[b * g + i] < 0 || gl[b * g + i] >= classes - 1)
                return tb_fail(TB_ERR_INVALID,
                               "roi_targets: gt_labels[%lld,%lld] = %d is outside [0, %lld) (targets have %lld "
                               "classes with the background)",
                               (long long)b, (long long)i, (int)gl[b * g + i], (long long)(classes - 1),
                               (long long)classes);
    }
    return TB_OK;
}

/* Steps 1-2 for image b: fills the candidates and their fg / bg lists. */
static void rg_match(rg_scratch *s, int64_t *nfg, int64_t *nbg, const float *props, int64_t pcount, const float *gts,
                     int64_t gcount, const tb_roi_target_params *p)
{
    int64_t m = 0;
    for (int64_t i = 0; i < pcount; i++, m++)
        memcpy(s->boxes + 4 * m, props + 5 * i + 1, 4 * sizeof(float));
    for (int64_t i = 0; i < gcount; i++, m++)
        memcpy(s->boxes + 4 * m, gts + 4 * i, 4 * sizeof(float));
    *nfg = *nbg = 0;
    for (int64_t c = 0; c < m; c++) {
        float best = gcount > 0 ? -1.0f : 0.0f;
        int32_t arg = 0;
        for (int64_t i = 0; i < gcount; i++) {
            float iou = tb_cpu_box_iou(gts + 4 * i, s->boxes + 4 * c);
            if (iou > best)
                best = iou, arg = (int32_t)i;
        }
        s->arg[c] = arg;
        if (gcount > 0 && best >= p->fg_iou)
            s->fg[(*nfg)++] = (int32_t)c;
        else if (gcount == 0 || (best >= p->bg_iou_lo && best < p->bg_iou_hi))
            s->bg[(*nbg)++] = (int32_t)c;
    }
}

/* Samples k of the candidate positions in list (ascending), keyed by their
 * ids: proposal i has id i, gt i id np + i (monotonic in the position, so the
 * list stays ascending); returns the number kept, positions again. */
static int64_t rg_sample(int32_t *list, int64_t count, int64_t k, int64_t np, int64_t pcount, uint64_t seed,
                         uint64_t key_base, tb_cpu_keyed *keys)
{
    for (int64_t t = 0; t < count; t++)
        list[t] = list[t] < pcount ? list[t] : (int32_t)(np + list[t] - pcount);
    int64_t kept = tb_cpu_sample_subset(list, count, k, seed, key_base, keys);
    for (int64_t t = 0; t < kept; t++)
        list[t] = list[t] < np ? list[t] : (int32_t)(pcount + list[t] - np);
    return kept;
}

/* Output row `row`: RoI (b, box), its label, and for foreground the target of gt. */
static void rg_write(float *rois, int32_t *labels, float *targets, float *weights, int64_t row, int64_t b,
                     int64_t classes, const float *box, int32_t label, const float *gt, const float *std)
{
    float *r = rois + 5 * row;
    r[0] = (float)b;
    for (int q = 0; q < 4; q++)
        r[1 + q] = box ? box[q] : 0.0f;
    labels[row] = label;
    if (label <= 0)
        return;
    tb_cpu_box_encode(targets + row * 4 * classes + 4 * label, gt, box, std);
    for (int q = 0; q < 4; q++)
        weights[row * 4 * classes + 4 * label + q] = 1.0f;
}

int tb_cpu_roi_targets(tb_backend *be, tb_tensor *rois, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                       const tb_tensor *proposals, const tb_tensor *proposal_count, const tb_tensor *gt_boxes,
                       const tb_tensor *gt_labels, const tb_tensor *gt_count, const tb_roi_target_params *p)
{
    /* sequential: a few thousand candidates per image */
    int64_t n = gt_count->shape[0], g = gt_boxes->shape[1], np = proposals->shape[0] / n;
    int64_t classes = targets->shape[1] / 4, per = p->rois_per_image;
    TB_TRY(rg_check(proposal_count, gt_labels, gt_count, np, classes));
    rg_scratch s;
    int64_t m = rg_candidates(proposals, gt_boxes);
    TB_TRY(tb_cpu_workspace_check(be, "roi_targets", "roi_targets", rg_layout(&s, NULL, m)));
    rg_layout(&s, be->workspace, m);
    const int32_t *pc = proposal_count->data, *gc = gt_count->data, *gl = gt_labels->data;
    const float *props = proposals->data, *gts = gt_boxes->data;
    float *out = rois->data, *tgt = targets->data, *wgt = weights->data;
    int32_t *lab = labels->data;
    memset(tgt, 0, tb_nbytes(targets));
    memset(wgt, 0, tb_nbytes(weights));
    int64_t fg_cap = tb_cpu_min64((int64_t)floor((double)per * (double)p->pos_fraction + 0.5), per);
    for (int64_t b = 0; b < n; b++) {
        int64_t nfg, nbg;
        const float *gb = gts + b * g * 4;
        rg_match(&s, &nfg, &nbg, props + b * np * 5, pc[b], gb, gc[b], p);
        uint64_t key_base = (uint64_t)b * (uint64_t)(np + g);
        int64_t kfg = rg_sample(s.fg, nfg, fg_cap, np, pc[b], p->seed, key_base, s.keys);
        int64_t kbg = rg_sample(s.bg, nbg, per - kfg, np, pc[b], p->seed, key_base, s.keys);
        int64_t row = b * per;
        for (int64_t t = 0; t < kfg; t++, row++) {
            int32_t c = s.fg[t];
            rg_write(out, lab, tgt, wgt, row, b, classes, s.boxes + 4 * c, gl[b * g + s.arg[c]] + 1,
                     gb + 4 * s.arg[c], p->box_std);
        }
        for (int64_t t = 0; t < kbg; t++, row++)
            rg_write(out, lab, tgt, wgt, row, b, classes, s.boxes + 4 * s.bg[t], 0, NULL, NULL);
        for (; row < (b + 1) * per; row++)
            rg_write(out, lab, tgt, wgt, row, b, classes, NULL, -1, NULL, NULL);
    }
    return TB_OK;
}
