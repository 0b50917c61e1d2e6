/* RPN training targets on the device: the CPU's kernels/cpu/rpn_targets.c
 * (torchvision's assign_targets_to_anchors with its Matcher and
 * BalancedPositiveNegativeSampler), step for step, with the same results:
 *
 *  1. gt_best[b, i] = max over anchors of IoU(gt i, anchor j): one block per
 *     (gt, image), a block max (exact: max does not round).
 *  2. match, one thread per (image, anchor): best IoU and its gt (lowest i on
 *     ties), label 1 / 0 / -1 against pos_iou / neg_iou, then label 1 where
 *     the IoU with some gt equals that gt's positive gt_best (low-quality
 *     matches, ties included; the IoUs are bitwise the CPU's, box.cuh, and
 *     the same function in steps 1 and 2, so the equality is the CPU's). An
 *     image without gts has every anchor a negative candidate. The thread
 *     writes the sort key (class << 24 | the draw's 24 hash bits of key
 *     index b * a + j) and counts its image's candidates per class.
 *  3. one stable segmented sort per image (box_sort.cu): positives in draw
 *     order, then negatives, then the rest.
 *  4. select, one thread per sorted position: the first
 *     min(floor(samples_per_image * pos_fraction), positives) positives and
 *     the first min(samples_per_image - kept positives, negatives) negatives
 *     are sampled (tb_cpu_sample_subset's k smallest keys, ties to the lower
 *     anchor); every anchor gets its label, its targets (encode of its best
 *     gt, std 1) and weights 1 when sampled positive, zeros otherwise. Every
 *     anchor is one sorted position, so every output row is written once.
 * gt_count values outside [0, g] cannot be checked on the host without
 * waiting for the device: they are clamped into [0, g] on the device (the
 * loaders guarantee the range; the CPU reports TB_ERR_INVALID).
 * Scratch (rt_layout: 20 bytes per anchor and image, 4 per gt, the sort's)
 * comes from the workspace, reserved from tb_rpn_targets_workspace_size. */
#include "kernels/cuda/box.cuh"

typedef struct rt_scratch {
    tb_cuda_seg_sort sort;
    size_t sort_bytes;
    void *sort_scratch;
    uint32_t *keys, *keys_sorted; /* {n, a} */
    int32_t *vals, *vals_sorted;  /* {n, a} anchor of each key */
    int32_t *arg;                 /* {n, a} best gt of each anchor */
    float *gt_best;               /* {n, g} */
    int32_t *counts;              /* {n, 2} positive and negative candidates */
} rt_scratch;

/* Carves the scratch out of base (NULL: only counts) into *bytes. */
static int rt_layout(rt_scratch *s, void *base, int64_t n, int64_t a, int64_t g, size_t *bytes)
{
    s->sort = tb_cuda_seg_sort{n, a, TB_BOX_DRAW_BITS, false};
    TB_TRY(tb_cuda_seg_sort_bytes(&s->sort, &s->sort_bytes));
    size_t rows = (size_t)(n * a);
    tb_cuda_carver c = {(char *)base, 0};
    s->keys = (uint32_t *)tb_cuda_carve(&c, rows * sizeof(uint32_t));
    s->keys_sorted = (uint32_t *)tb_cuda_carve(&c, rows * sizeof(uint32_t));
    s->vals = (int32_t *)tb_cuda_carve(&c, rows * sizeof(int32_t));
    s->vals_sorted = (int32_t *)tb_cuda_carve(&c, rows * sizeof(int32_t));
    s->arg = (int32_t *)tb_cuda_carve(&c, rows * sizeof(int32_t));
    s->gt_best = (float *)tb_cuda_carve(&c, (size_t)(n * g) * sizeof(float));
    s->counts = (int32_t *)tb_cuda_carve(&c, (size_t)(2 * n) * sizeof(int32_t));
    s->sort_scratch = tb_cuda_carve(&c, s->sort_bytes);
    *bytes = c.used;
    return TB_OK;
}

/* 0 when the size cannot be known (CUB's query failed); the op then reports why. */
size_t tb_cuda_rpn_targets_workspace_size(tb_backend *be, const tb_tensor *anchors, const tb_tensor *gt_boxes,
                                          const tb_rpn_target_params *p)
{
    (void)be, (void)p;
    rt_scratch s;
    size_t bytes = 0;
    return rt_layout(&s, NULL, gt_boxes->shape[0], anchors->shape[0], gt_boxes->shape[1], &bytes) == TB_OK ? bytes
                                                                                                          : 0;
}

/* ---------------------------------------------------------------- kernels */

/* Step 1: block x = b * g + i. */
static __global__ void rt_gt_best_kernel(float *gt_best, const float *anchors, const float *gts,
                                         const int32_t *gt_count, int64_t a, int64_t g)
{
    __shared__ float scratch[32];
    int64_t b = blockIdx.x / g, i = blockIdx.x % g;
    if (i >= tb_box_count(gt_count, b, g)) { /* the whole block leaves */
        if (threadIdx.x == 0)
            gt_best[blockIdx.x] = 0.0f;
        return;
    }
    const float *gt = gts + (b * g + i) * 4;
    float best = 0.0f;
    for (int64_t j = threadIdx.x; j < a; j += blockDim.x) {
        float iou = tb_box_iou(gt, anchors + 4 * j);
        best = iou > best ? iou : best;
    }
    best = tb_block_max(best, scratch); /* IoUs are >= 0 and never NaN here */
    if (threadIdx.x == 0)
        gt_best[blockIdx.x] = best;
}

/* Step 2: row = b * a + j. */
static __global__ void rt_match_kernel(uint32_t *keys, int32_t *vals, int32_t *arg, int32_t *counts,
                                       const float *anchors, const float *gts, const int32_t *gt_count,
                                       const float *gt_best, int64_t n, int64_t a, int64_t g, float pos_iou,
                                       float neg_iou, uint64_t seed)
{
    TB_GRID_STRIDE_LOOP(row, n * a)
    {
        int64_t b = row / a, j = row % a, gc = tb_box_count(gt_count, b, g);
        const float *anc = anchors + 4 * j, *gb = gts + b * g * 4;
        int label = 0;
        int32_t best_i = 0;
        if (gc > 0) {
            float best = -1.0f;
            for (int64_t i = 0; i < gc; i++) {
                float iou = tb_box_iou(gb + 4 * i, anc);
                if (iou > best)
                    best = iou, best_i = (int32_t)i;
            }
            label = best >= pos_iou ? 1 : (best < neg_iou ? 0 : -1);
            for (int64_t i = 0; i < gc; i++) {
                float top = gt_best[b * g + i];
                if (top > 0.0f && tb_box_iou(gb + 4 * i, anc) == top) {
                    label = 1;
                    break;
                }
            }
        }
        arg[row] = best_i;
        uint32_t cls = label == 1 ? 0u : (label == 0 ? 1u : 2u);
        keys[row] = cls << 24 | tb_box_key24(seed, (uint64_t)row); /* key index b * a + j */
        vals[row] = (int32_t)j;
        tb_box_count_add(counts, cls < 2 ? (int)(2 * b + cls) : -1);
    }
}

/* Step 4: pos = b * a + t, t the sorted position in image b. */
static __global__ void rt_select_kernel(int32_t *labels, float *targets, float *weights, const uint32_t *keys_sorted,
                                        const int32_t *vals_sorted, const int32_t *arg, const int32_t *counts,
                                        const float *anchors, const float *gts, int64_t n, int64_t a, int64_t g,
                                        int64_t pos_cap, int64_t samples)
{
    const float unit_std[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    TB_GRID_STRIDE_LOOP(pos, n * a)
    {
        int64_t b = pos / a, t = pos % a;
        uint32_t cls = keys_sorted[pos] >> 24;
        int64_t j = vals_sorted[pos], row = b * a + j;
        int64_t npos = counts[2 * b], nneg = counts[2 * b + 1];
        int64_t kpos = pos_cap < npos ? pos_cap : npos;
        int64_t kneg = samples - kpos < nneg ? samples - kpos : nneg;
        int32_t label = cls == 0 && t < kpos ? 1 : (cls == 1 && t - npos < kneg ? 0 : -1);
        labels[row] = label;
        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f}, w = 0.0f;
        if (label == 1) {
            tb_box_encode(d, gts + (b * g + arg[row]) * 4, anchors + 4 * j, unit_std);
            w = 1.0f;
        }
        for (int q = 0; q < 4; q++) {
            targets[4 * row + q] = d[q];
            weights[4 * row + q] = w;
        }
    }
}

/* ---------------------------------------------------------------- launcher */

static int rpn_targets(tb_backend *be, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                       const tb_tensor *anchors, const tb_tensor *gt_boxes, const tb_tensor *gt_count,
                       const tb_rpn_target_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = gt_boxes->shape[0], g = gt_boxes->shape[1], a = anchors->shape[0];
    if (n * a == 0)
        return TB_OK;
    rt_scratch s;
    size_t need = 0;
    TB_TRY(rt_layout(&s, NULL, n, a, g, &need));
    TB_TRY(tb_cuda_workspace_check(be, "rpn_targets", need));
    TB_TRY(rt_layout(&s, be->workspace, n, a, g, &need));
    const float *anc = (const float *)anchors->data, *gts = (const float *)gt_boxes->data;
    const int32_t *gtc = (const int32_t *)gt_count->data;
    CUDA_CHECK(cudaMemsetAsync(s.counts, 0, (size_t)(2 * n) * sizeof(int32_t), ctx->stream));
    if (g > 0) {
        rt_gt_best_kernel<<<(unsigned)(n * g), TB_CUDA_THREADS, 0, ctx->stream>>>(s.gt_best, anc, gts, gtc, a, g);
        CUDA_CHECK_LAUNCH();
    }
    rt_match_kernel<<<tb_cuda_blocks(ctx, n * a), TB_CUDA_THREADS, 0, ctx->stream>>>(
        s.keys, s.vals, s.arg, s.counts, anc, gts, gtc, s.gt_best, n, a, g, p->pos_iou, p->neg_iou, p->seed);
    CUDA_CHECK_LAUNCH();
    TB_TRY(tb_cuda_seg_sort_run(ctx, &s.sort, s.sort_scratch, s.sort_bytes, s.keys, s.keys_sorted, s.vals,
                                s.vals_sorted));
    int64_t pos_cap = (int64_t)floor((double)p->samples_per_image * (double)p->pos_fraction);
    rt_select_kernel<<<tb_cuda_blocks(ctx, n * a), TB_CUDA_THREADS, 0, ctx->stream>>>(
        (int32_t *)labels->data, (float *)targets->data, (float *)weights->data, s.keys_sorted, s.vals_sorted, s.arg,
        s.counts, anc, gts, n, a, g, pos_cap, p->samples_per_image);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_rpn_targets(tb_backend *be, tb_tensor *labels, tb_tensor *targets, tb_tensor *weights,
                        const tb_tensor *anchors, const tb_tensor *gt_boxes, const tb_tensor *gt_count,
                        const tb_rpn_target_params *p)
{
    TB_CUDA_OP_RETURN(rpn_targets(be, labels, targets, weights, anchors, gt_boxes, gt_count, p), "rpn_targets",
                      "labels", labels, "anchors", anchors, "gt_boxes", gt_boxes, "gt_count", gt_count);
}
