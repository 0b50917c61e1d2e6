/* RPN proposals on the device: the CPU's kernels/cpu/rpn_proposals.c
 * (torchvision's filter_proposals, one feature level) with the same results:
 *
 *  1. rank: one thread per (image, anchor) writes the key l1 - l0 (exact in
 *     f32, as on the CPU) mapped to tb_box_desc_key; a stable descending
 *     segmented sort per image (box_sort.cu) gives the CPU's order: best
 *     first, ties to the lower anchor, NaN last.
 *  2. decode, one thread per (image, rank < k = min(pre_nms_topk, a)): the
 *     anchor's deltas (std 1) decoded, clipped to im_size[b], and marked
 *     valid when at least min_size wide and high (box.cuh: the CPU's
 *     arithmetic).
 *  3. NMS per image at nms_iou over the k ranked boxes (nms.cu); invalid
 *     boxes take no part, which is the CPU's NMS over the compacted list of
 *     valid boxes: the same boxes kept, in the same order, at most
 *     post_nms_topk.
 *  4. rows (b, box) in rank order, (b, 0, 0, 0, 0) past the count;
 *     roi_count[b] = boxes kept.
 * A whole sort rather than a top-k: one launch sequence sorts every image
 * at once, and 20k keys per image are small next to the step's convolutions.
 * Images run in parallel; the NMS masks take k * ceil(k / 64) * 8 bytes per
 * image (18 MB at k = 12000). Scratch (rp_layout) comes from the workspace, reserved from
 * tb_rpn_proposals_workspace_size; nothing is read back to the host. */
#include "kernels/cuda/box.cuh"

typedef struct rp_scratch {
    tb_cuda_seg_sort sort;
    size_t sort_bytes;
    void *sort_scratch;
    tb_cuda_nms nms;
    uint32_t *keys, *keys_sorted; /* {n, a} */
    int32_t *vals, *vals_sorted;  /* {n, a} anchor of each key */
    float *boxes;                 /* {n, k, 4} decoded in rank order */
    uint8_t *valid;               /* {n, k} */
    uint64_t *mask;               /* NMS masks */
    int32_t *keep;                /* {n, min(k, post)} */
    int32_t *kept;                /* {n} */
} rp_scratch;

/* Carves the scratch out of base (NULL: only counts) into *bytes. */
static int rp_layout(rp_scratch *s, void *base, int64_t n, int64_t a, const tb_proposal_params *p, size_t *bytes)
{
    int64_t k = p->pre_nms_topk < a ? p->pre_nms_topk : a, post = p->post_nms_topk;
    s->sort = tb_cuda_seg_sort{n, a, 32, true};
    s->nms = tb_cuda_nms{n, k, post, p->nms_iou};
    TB_TRY(tb_cuda_seg_sort_bytes(&s->sort, &s->sort_bytes));
    TB_TRY(tb_cuda_nms_check(&s->nms));
    size_t rows = (size_t)(n * a), ranked = (size_t)(n * k);
    tb_cuda_carver c = {(char *)base, 0};
    s->keys = (uint32_t *)tb_cuda_carve(&c, rows * sizeof(uint32_t));
    s->keys_sorted = (uint32_t *)tb_cuda_carve(&c, rows * sizeof(uint32_t));
    s->vals = (int32_t *)tb_cuda_carve(&c, rows * sizeof(int32_t));
    s->vals_sorted = (int32_t *)tb_cuda_carve(&c, rows * sizeof(int32_t));
    s->boxes = (float *)tb_cuda_carve(&c, ranked * 4 * sizeof(float));
    s->valid = (uint8_t *)tb_cuda_carve(&c, ranked);
    s->mask = (uint64_t *)tb_cuda_carve(&c, tb_cuda_nms_mask_bytes(&s->nms));
    s->keep = (int32_t *)tb_cuda_carve(&c, (size_t)n * (size_t)(k < post ? k : post) * sizeof(int32_t));
    s->kept = (int32_t *)tb_cuda_carve(&c, (size_t)n * sizeof(int32_t));
    s->sort_scratch = tb_cuda_carve(&c, s->sort_bytes);
    *bytes = c.used;
    return TB_OK;
}

/* 0 when the size cannot be known (CUB's query failed, or lists too long for
 * the NMS); the op then reports why. */
size_t tb_cuda_rpn_proposals_workspace_size(tb_backend *be, const tb_tensor *logits, const tb_tensor *anchors,
                                            const tb_proposal_params *p)
{
    (void)be;
    int64_t a = anchors->shape[0];
    rp_scratch s;
    size_t bytes = 0;
    return rp_layout(&s, NULL, logits->shape[0] / a, a, p, &bytes) == TB_OK ? bytes : 0;
}

/* ---------------------------------------------------------------- kernels */

/* Step 1: row = b * a + j. */
template <typename T>
static __global__ void rp_key_kernel(uint32_t *keys, int32_t *vals, const T *logits, int64_t n, int64_t a)
{
    TB_GRID_STRIDE_LOOP(row, n * a)
    {
        keys[row] = tb_box_desc_key(__fsub_rn(tb_f32(logits[2 * row + 1]), tb_f32(logits[2 * row])));
        vals[row] = (int32_t)(row % a);
    }
}

/* Step 2: e = b * k + t, t the rank. */
template <typename T>
static __global__ void rp_decode_kernel(float *boxes, uint8_t *valid, const int32_t *vals_sorted, const T *deltas,
                                        const float *anchors, const float *im_size, int64_t n, int64_t a, int64_t k,
                                        float min_size)
{
    const float unit_std[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    TB_GRID_STRIDE_LOOP(e, n * k)
    {
        int64_t b = e / k, t = e % k;
        int64_t j = vals_sorted[b * a + t], row = b * a + j;
        float d[4], box[4];
        for (int q = 0; q < 4; q++)
            d[q] = tb_f32(deltas[4 * row + q]);
        tb_box_decode(box, d, anchors + 4 * j, unit_std);
        tb_box_clip(box, im_size[2 * b], im_size[2 * b + 1]);
        for (int q = 0; q < 4; q++)
            boxes[4 * e + q] = box[q];
        valid[e] = __fsub_rn(box[2], box[0]) >= min_size && __fsub_rn(box[3], box[1]) >= min_size;
    }
}

/* Step 4: e = b * post + t. */
static __global__ void rp_output_kernel(float *rois, int32_t *roi_count, const float *boxes, const int32_t *keep,
                                        const int32_t *kept, int64_t n, int64_t k, int64_t post, int64_t keep_cap)
{
    TB_GRID_STRIDE_LOOP(e, n * post)
    {
        int64_t b = e / post, t = e % post, count = kept[b];
        float *r = rois + 5 * e;
        r[0] = (float)b;
        const float *box = t < count ? boxes + 4 * (b * k + keep[b * keep_cap + t]) : NULL;
        for (int q = 0; q < 4; q++)
            r[1 + q] = box ? box[q] : 0.0f;
        if (t == 0)
            roi_count[b] = (int32_t)count;
    }
}

/* ---------------------------------------------------------------- launcher */

static int rpn_proposals(tb_backend *be, tb_tensor *rois, tb_tensor *roi_count, const tb_tensor *logits,
                         const tb_tensor *deltas, const tb_tensor *anchors, const tb_tensor *im_size,
                         const tb_proposal_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    int64_t n = im_size->shape[0], a = anchors->shape[0], post = p->post_nms_topk;
    int64_t k = p->pre_nms_topk < a ? p->pre_nms_topk : a;
    if (n == 0)
        return TB_OK;
    rp_scratch s;
    size_t need = 0;
    TB_TRY(rp_layout(&s, NULL, n, a, p, &need));
    TB_TRY(tb_cuda_workspace_check(be, "rpn_proposals", need));
    TB_TRY(rp_layout(&s, be->workspace, n, a, p, &need));
    TB_TRY(tb_dispatch_float(logits->dtype, "rpn_proposals logits", [&](auto tag) {
        using T = typename decltype(tag)::type;
        rp_key_kernel<T><<<tb_cuda_blocks(ctx, n * a), TB_CUDA_THREADS, 0, ctx->stream>>>(
            s.keys, s.vals, (const T *)logits->data, n, a);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    TB_TRY(tb_cuda_seg_sort_run(ctx, &s.sort, s.sort_scratch, s.sort_bytes, s.keys, s.keys_sorted, s.vals,
                                s.vals_sorted));
    TB_TRY(tb_dispatch_float(deltas->dtype, "rpn_proposals deltas", [&](auto tag) {
        using T = typename decltype(tag)::type;
        rp_decode_kernel<T><<<tb_cuda_blocks(ctx, n * k), TB_CUDA_THREADS, 0, ctx->stream>>>(
            s.boxes, s.valid, s.vals_sorted, (const T *)deltas->data, (const float *)anchors->data,
            (const float *)im_size->data, n, a, k, p->min_size);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    TB_TRY(tb_cuda_nms_run(ctx, &s.nms, s.mask, s.boxes, s.valid, s.keep, s.kept));
    rp_output_kernel<<<tb_cuda_blocks(ctx, n * post), TB_CUDA_THREADS, 0, ctx->stream>>>(
        (float *)rois->data, (int32_t *)roi_count->data, s.boxes, s.keep, s.kept, n, k, post, k < post ? k : post);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_rpn_proposals(tb_backend *be, tb_tensor *rois, tb_tensor *roi_count, const tb_tensor *logits,
                          const tb_tensor *deltas, const tb_tensor *anchors, const tb_tensor *im_size,
                          const tb_proposal_params *p)
{
    TB_CUDA_OP_RETURN(rpn_proposals(be, rois, roi_count, logits, deltas, anchors, im_size, p), "rpn_proposals",
                      "rois", rois, "logits", logits, "deltas", deltas, "anchors", anchors);
}
