/* Box-head training targets on the device: the CPU's
 * kernels/cpu/roi_targets.c (torchvision's select_training_samples) with the
 * same results. Per image b, P proposal rows, G gt rows, M = P + G candidate
 * ids (proposal i: id i; gt i: id P + i), R = rois_per_image:
 *
 *  1. match, one thread per (image, id): a candidate is a proposal below
 *     proposal_count[b] or a gt below gt_count[b]. Its best IoU over the gts
 *     and that gt (lowest on ties; box.cuh's IoU, bitwise the CPU's) make it
 *     foreground (best >= fg_iou), background (bg_iou_lo <= best <
 *     bg_iou_hi, or any candidate of an image without gts) or neither. The
 *     key is class << 24 | the draw's 24 hash bits of key index b * M + id
 *     (the CPU's b * (P + G) + id); candidates are counted per class.
 *  2. a stable segmented sort per image (box_sort.cu): foreground in draw
 *     order, then background, then the rest.
 *  3. select: the first min(round(R * pos_fraction), foreground) foreground
 *     and the first min(R - those, background) background are sampled
 *     (tb_cpu_sample_subset's rule); each id gets a second key, 0 sampled
 *     foreground, 1 sampled background, 2 not sampled.
 *  4. a second stable sort of those keys over the ids in ascending order:
 *     sampled foreground in candidate order, then sampled background in
 *     candidate order (the CPU's output order).
 *  5. output, one thread per element of targets: row b * R + t is the t-th of
 *     that order (RoI (b, box), label gt class + 1 or 0), or padding
 *     (b, 0, 0, 0, 0) with label -1; a foreground row has its gt's deltas
 *     (box_std) and weights 1 in its label's four columns, every other
 *     element 0. Every output element is written once.
 * Counts and labels live on the device, so the CPU's checks of them cannot
 * run on the host without waiting: proposal_count and gt_count are clamped
 * into [0, P] and [0, G] on the device (the loaders and rpn_proposals
 * guarantee the range). A sampled foreground RoI whose gt label is outside
 * [0, classes - 1) has no target columns: its row gets label -1 (ignored by
 * the classification loss) and NaN weights in columns 0-3, so the box loss
 * turns NaN and the trainer's divergence check reports the run (as roi_align
 * does for a bad image index) instead of training on a wrong class.
 * Scratch (rg_layout: 20 bytes per candidate, the sorts') comes from the
 * workspace, reserved from tb_roi_targets_workspace_size. */
#include "kernels/cuda/box.cuh"

typedef struct rg_scratch {
    tb_cuda_seg_sort draw, order; /* steps 2 and 4 */
    size_t sort_bytes;            /* the larger of the two */
    void *sort_scratch;
    uint32_t *keys, *keys_sorted; /* {n, M} */
    int32_t *vals, *vals_sorted;  /* {n, M} candidate ids */
    int32_t *arg;                 /* {n, M} best gt of each candidate id */
    int32_t *counts;              /* {n, 2} foreground and background candidates */
} rg_scratch;

/* Carves the scratch for m candidates per image out of base (NULL: only
 * counts) into *bytes. */
static int rg_layout(rg_scratch *s, void *base, int64_t n, int64_t m, size_t *bytes)
{
    s->draw = tb_cuda_seg_sort{n, m, TB_BOX_DRAW_BITS, false};
    s->order = tb_cuda_seg_sort{n, m, 2, false};
    size_t draw_bytes = 0, order_bytes = 0;
    TB_TRY(tb_cuda_seg_sort_bytes(&s->draw, &draw_bytes));
    TB_TRY(tb_cuda_seg_sort_bytes(&s->order, &order_bytes));
    s->sort_bytes = draw_bytes > order_bytes ? draw_bytes : order_bytes;
    size_t rows = (size_t)(n * m);
    tb_cuda_carver c = {(char *)base, 0};
    s->keys = (uint32_t *)tb_cuda_carve(&c, rows * sizeof(uint32_t));
    s->keys_sorted = (uint32_t *)tb_cuda_carve(&c, rows * sizeof(uint32_t));
    s->vals = (int32_t *)tb_cuda_carve(&c, rows * sizeof(int32_t));
    s->vals_sorted = (int32_t *)tb_cuda_carve(&c, rows * sizeof(int32_t));
    s->arg = (int32_t *)tb_cuda_carve(&c, rows * sizeof(int32_t));
    s->counts = (int32_t *)tb_cuda_carve(&c, (size_t)(2 * n) * sizeof(int32_t));
    s->sort_scratch = tb_cuda_carve(&c, s->sort_bytes);
    *bytes = c.used;
    return TB_OK;
}

/* 0 when the size cannot be known (CUB's query failed); the op then reports why. */
size_t tb_cuda_roi_targets_workspace_size(tb_backend *be, const tb_tensor *proposals, const tb_tensor *gt_boxes,
                                          const tb_roi_target_params *p)
{
    (void)be, (void)p;
    int64_t n = gt_boxes->shape[0];
    rg_scratch s;
    size_t bytes = 0;
    return rg_layout(&s, NULL, n, proposals->shape[0] / n + gt_boxes->shape[1], &bytes) == TB_OK ? bytes : 0;
}

/* The sizes of one call. */
typedef struct rg_dims {
    int64_t n, np, g, m, per, classes, fg_cap;
} rg_dims;

typedef struct rg_std {
    float v[4];
} rg_std;

/* Candidate id of image b: a proposal row or a gt box. */
__device__ __forceinline__ const float *rg_box(const float *proposals, const float *gts, const rg_dims &d, int64_t b,
                                               int64_t id)
{
    return id < d.np ? proposals + (b * d.np + id) * 5 + 1 : gts + (b * d.g + id - d.np) * 4;
}

/* Sampled foreground and background of image b (tb_cpu_sample_subset's counts). */
__device__ __forceinline__ void rg_kept(const int32_t *counts, const rg_dims &d, int64_t b, int64_t *nfg, int64_t *kfg,
                                        int64_t *kbg)
{
    *nfg = counts[2 * b];
    int64_t nbg = counts[2 * b + 1];
    *kfg = d.fg_cap < *nfg ? d.fg_cap : *nfg;
    *kbg = d.per - *kfg < nbg ? d.per - *kfg : nbg;
}

/* ---------------------------------------------------------------- kernels */

/* Step 1: e = b * M + id. */
static __global__ void rg_match_kernel(uint32_t *keys, int32_t *vals, int32_t *arg, int32_t *counts,
                                       const float *proposals, const int32_t *proposal_count, const float *gts,
                                       const int32_t *gt_count, rg_dims d, float fg_iou, float bg_lo, float bg_hi,
                                       uint64_t seed)
{
    TB_GRID_STRIDE_LOOP(e, d.n * d.m)
    {
        int64_t b = e / d.m, id = e % d.m;
        int64_t pc = tb_box_count(proposal_count, b, d.np), gc = tb_box_count(gt_count, b, d.g);
        bool candidate = id < d.np ? id < pc : id - d.np < gc;
        uint32_t cls = 2;
        int32_t best_i = 0;
        if (candidate) {
            const float *box = rg_box(proposals, gts, d, b, id), *gb = gts + b * d.g * 4;
            float best = gc > 0 ? -1.0f : 0.0f;
            for (int64_t i = 0; i < gc; i++) {
                float iou = tb_box_iou(gb + 4 * i, box);
                if (iou > best)
                    best = iou, best_i = (int32_t)i;
            }
            if (gc > 0 && best >= fg_iou)
                cls = 0;
            else if (gc == 0 || (best >= bg_lo && best < bg_hi))
                cls = 1;
        }
        arg[e] = best_i;
        keys[e] = cls << 24 | tb_box_key24(seed, (uint64_t)e); /* key index b * (P + G) + id */
        vals[e] = (int32_t)id;
        tb_box_count_add(counts, cls < 2 ? (int)(2 * b + cls) : -1);
    }
}

/* Step 3: pos = b * M + t, t the position in the draw order; writes the key of id. */
static __global__ void rg_select_kernel(uint32_t *order_keys, int32_t *order_vals, const uint32_t *keys_sorted,
                                        const int32_t *vals_sorted, const int32_t *counts, rg_dims d)
{
    TB_GRID_STRIDE_LOOP(pos, d.n * d.m)
    {
        int64_t b = pos / d.m, t = pos % d.m, id = vals_sorted[pos];
        uint32_t cls = keys_sorted[pos] >> 24;
        int64_t nfg, kfg, kbg;
        rg_kept(counts, d, b, &nfg, &kfg, &kbg);
        order_keys[b * d.m + id] = cls == 0 && t < kfg ? 0u : (cls == 1 && t - nfg < kbg ? 1u : 2u);
        order_vals[b * d.m + id] = (int32_t)id;
    }
}

/* Step 5: e = row * 4 * classes + col, row = b * R + t. */
static __global__ void rg_output_kernel(float *rois, int32_t *labels, float *targets, float *weights,
                                        const int32_t *order, const int32_t *arg, const int32_t *counts,
                                        const float *proposals, const float *gts, const int32_t *gt_labels,
                                        rg_dims d, rg_std std)
{
    int64_t cols = 4 * d.classes;
    TB_GRID_STRIDE_LOOP(e, d.n * d.per * cols)
    {
        int64_t row = e / cols, col = e % cols, b = row / d.per, t = row % d.per;
        int64_t nfg, kfg, kbg;
        rg_kept(counts, d, b, &nfg, &kfg, &kbg);
        int32_t label = -1, gt = 0;
        bool bad_label = false;
        const float *box = NULL;
        if (t < kfg + kbg) {
            int64_t id = order[b * d.m + t];
            box = rg_box(proposals, gts, d, b, id);
            label = 0;
            if (t < kfg) {
                gt = arg[b * d.m + id];
                int32_t cls = gt_labels[b * d.g + gt];
                bad_label = cls < 0 || cls >= d.classes - 1;
                label = bad_label ? -1 : cls + 1;
            }
        }
        float target = 0.0f, weight = 0.0f;
        if (label > 0 && col / 4 == label) {
            float delta[4];
            tb_box_encode(delta, gts + (b * d.g + gt) * 4, box, std.v);
            target = delta[col % 4];
            weight = 1.0f;
        }
        if (bad_label && col < 4)
            weight = NAN;
        targets[e] = target;
        weights[e] = weight;
        if (col == 0) {
            float *r = rois + 5 * row;
            r[0] = (float)b;
            for (int q = 0; q < 4; q++)
                r[1 + q] = box ? box[q] : 0.0f;
            labels[row] = label;
        }
    }
}

/* ---------------------------------------------------------------- launcher */

static int roi_targets(tb_backend *be, tb_tensor *rois, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                       const tb_tensor *proposals, const tb_tensor *proposal_count, const tb_tensor *gt_boxes,
                       const tb_tensor *gt_labels, const tb_tensor *gt_count, const tb_roi_target_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    rg_dims d;
    d.n = gt_count->shape[0];
    if (d.n == 0)
        return TB_OK;
    d.np = proposals->shape[0] / d.n;
    d.g = gt_boxes->shape[1];
    d.m = d.np + d.g;
    d.per = p->rois_per_image;
    d.classes = targets->shape[1] / 4;
    int64_t fg_cap = (int64_t)floor((double)d.per * (double)p->pos_fraction + 0.5);
    d.fg_cap = fg_cap < d.per ? fg_cap : d.per;
    rg_std std;
    for (int q = 0; q < 4; q++)
        std.v[q] = p->box_std[q];
    rg_scratch s;
    size_t need = 0;
    TB_TRY(rg_layout(&s, NULL, d.n, d.m, &need));
    TB_TRY(tb_cuda_workspace_check(be, "roi_targets", need));
    TB_TRY(rg_layout(&s, be->workspace, d.n, d.m, &need));
    const float *props = (const float *)proposals->data, *gts = (const float *)gt_boxes->data;
    CUDA_CHECK(cudaMemsetAsync(s.counts, 0, (size_t)(2 * d.n) * sizeof(int32_t), ctx->stream));
    unsigned blocks = tb_cuda_blocks(ctx, d.n * d.m);
    rg_match_kernel<<<blocks, TB_CUDA_THREADS, 0, ctx->stream>>>(
        s.keys, s.vals, s.arg, s.counts, props, (const int32_t *)proposal_count->data, gts,
        (const int32_t *)gt_count->data, d, p->fg_iou, p->bg_iou_lo, p->bg_iou_hi, p->seed);
    CUDA_CHECK_LAUNCH();
    TB_TRY(tb_cuda_seg_sort_run(ctx, &s.draw, s.sort_scratch, s.sort_bytes, s.keys, s.keys_sorted, s.vals,
                                s.vals_sorted));
    /* the draw's inputs are free again: they take the order's keys */
    rg_select_kernel<<<blocks, TB_CUDA_THREADS, 0, ctx->stream>>>(s.keys, s.vals, s.keys_sorted, s.vals_sorted,
                                                                  s.counts, d);
    CUDA_CHECK_LAUNCH();
    TB_TRY(tb_cuda_seg_sort_run(ctx, &s.order, s.sort_scratch, s.sort_bytes, s.keys, s.keys_sorted, s.vals,
                                s.vals_sorted));
    int64_t elems = d.n * d.per * 4 * d.classes;
    rg_output_kernel<<<tb_cuda_blocks(ctx, elems), TB_CUDA_THREADS, 0, ctx->stream>>>(
        (float *)rois->data, (int32_t *)labels->data, (float *)targets->data, (float *)weights->data, s.vals_sorted,
        s.arg, s.counts, props, gts, (const int32_t *)gt_labels->data, d, std);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_roi_targets(tb_backend *be, tb_tensor *rois, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                        const tb_tensor *proposals, const tb_tensor *proposal_count, const tb_tensor *gt_boxes,
                        const tb_tensor *gt_labels, const tb_tensor *gt_count, const tb_roi_target_params *p)
{
    TB_CUDA_OP_RETURN(roi_targets(be, rois, labels, targets, weights, proposals, proposal_count, gt_boxes, gt_labels,
                                  gt_count, p),
                      "roi_targets", "rois", rois, "targets", targets, "proposals", proposals, "gt_boxes", gt_boxes);
}
