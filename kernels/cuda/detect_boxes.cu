/* Final detections on the device: the CPU's kernels/cpu/detect_boxes.c
 * (torchvision's postprocess_detections) with the same results. Per image b,
 * P RoI rows, C classes (0 = background), D = max_per_image; one list per
 * (image, foreground class): S = n * (C - 1) lists of P positions.
 *
 *  1. score keys, one thread per (list, RoI r): RoIs below roi_count[b] whose
 *     score probs[r, c] > score_thresh (never NaN) get tb_box_desc_key(score),
 *     the others 0; a stable descending segmented sort per list (box_sort.cu)
 *     gives the CPU's class order (score, then lower RoI), non-candidates last.
 *  2. decode, one thread per sorted position: a candidate's class deltas
 *     (box_std) decoded on its RoI and clipped to im_size[b] (box.cuh: the
 *     CPU's arithmetic); non-candidates are zero boxes taking no part.
 *  3. NMS per list at nms_iou (nms.cu), at most min(P, D) kept per class.
 *  4. merge: each list's kept boxes go to a fixed slot range of image b's
 *     (C - 1) * min(P, D) slots (empty slots key 0), value c * P + r; a
 *     stable descending sort per image orders them by score, then lower
 *     class, then lower RoI: the class-major input order is the CPU's index
 *     c * P + r.
 *  5. output, one thread per (image, t < D): the t-th merged box (decoded
 *     again from its RoI, as the CPU does), its score and class c - 1, or a
 *     zero box, score 0 and class -1 past the count; count[b] = the merged
 *     boxes among the first D (they form a prefix, so the thread at its end
 *     writes it).
 * roi_count is read on the device and clamped into [0, P] (rpn_proposals
 * guarantees the range; the CPU's TB_ERR_INVALID would need a host read).
 * Scratch (db_layout) comes from the workspace, reserved from
 * tb_detect_boxes_workspace_size; the NMS masks take P * ceil(P / 64) * 8
 * bytes per list. */
#include "kernels/cuda/box.cuh"

typedef struct db_scratch {
    tb_cuda_seg_sort by_class, merged; /* steps 1 and 4 */
    size_t sort_bytes;                 /* the larger of the two */
    void *sort_scratch;
    tb_cuda_nms nms;
    uint32_t *keys, *keys_sorted; /* {S, P} */
    int32_t *vals, *vals_sorted;  /* {S, P} RoI of each key */
    float *boxes;                 /* {S, P, 4} in score order */
    uint8_t *valid;               /* {S, P} */
    uint64_t *mask;
    int32_t *keep;                /* {S, min(P, D)} */
    int32_t *kept;                /* {S} */
    uint32_t *mkeys, *mkeys_sorted; /* {n, (C - 1) * min(P, D)} */
    int32_t *mvals, *mvals_sorted;
} db_scratch;

/* Carves the scratch for n images of np RoIs out of base (NULL: only counts)
 * into *bytes. */
static int db_layout(db_scratch *s, void *base, int64_t n, int64_t np, int64_t classes, const tb_detect_params *p,
                     size_t *bytes)
{
    int64_t lists = n * (classes - 1), d = p->max_per_image, kcap = np < d ? np : d;
    int64_t slots = (classes - 1) * kcap;
    s->by_class = tb_cuda_seg_sort{lists, np, 32, true};
    s->merged = tb_cuda_seg_sort{n, slots, 32, true};
    s->nms = tb_cuda_nms{lists, np, d, p->nms_iou};
    size_t class_bytes = 0, merged_bytes = 0;
    TB_TRY(tb_cuda_seg_sort_bytes(&s->by_class, &class_bytes));
    TB_TRY(tb_cuda_seg_sort_bytes(&s->merged, &merged_bytes));
    TB_TRY(tb_cuda_nms_check(&s->nms));
    s->sort_bytes = class_bytes > merged_bytes ? class_bytes : merged_bytes;
    size_t rows = (size_t)(lists * np), mrows = (size_t)(n * slots);
    tb_cuda_carver c = {(char *)base, 0};
    s->keys = (uint32_t *)tb_cuda_carve(&c, rows * sizeof(uint32_t));
    s->keys_sorted = (uint32_t *)tb_cuda_carve(&c, rows * sizeof(uint32_t));
    s->vals = (int32_t *)tb_cuda_carve(&c, rows * sizeof(int32_t));
    s->vals_sorted = (int32_t *)tb_cuda_carve(&c, rows * sizeof(int32_t));
    s->boxes = (float *)tb_cuda_carve(&c, rows * 4 * sizeof(float));
    s->valid = (uint8_t *)tb_cuda_carve(&c, rows);
    s->mask = (uint64_t *)tb_cuda_carve(&c, tb_cuda_nms_mask_bytes(&s->nms));
    s->keep = (int32_t *)tb_cuda_carve(&c, (size_t)(lists * kcap) * sizeof(int32_t));
    s->kept = (int32_t *)tb_cuda_carve(&c, (size_t)lists * sizeof(int32_t));
    s->mkeys = (uint32_t *)tb_cuda_carve(&c, mrows * sizeof(uint32_t));
    s->mkeys_sorted = (uint32_t *)tb_cuda_carve(&c, mrows * sizeof(uint32_t));
    s->mvals = (int32_t *)tb_cuda_carve(&c, mrows * sizeof(int32_t));
    s->mvals_sorted = (int32_t *)tb_cuda_carve(&c, mrows * sizeof(int32_t));
    s->sort_scratch = tb_cuda_carve(&c, s->sort_bytes);
    *bytes = c.used;
    return TB_OK;
}

/* 0 when the size cannot be known (CUB's query failed, or lists too long for
 * the NMS); the op then reports why. */
size_t tb_cuda_detect_boxes_workspace_size(tb_backend *be, const tb_tensor *probs, const tb_tensor *roi_count,
                                           const tb_detect_params *p)
{
    (void)be;
    int64_t n = roi_count->shape[0];
    db_scratch s;
    size_t bytes = 0;
    return db_layout(&s, NULL, n, probs->shape[0] / n, probs->shape[1], p, &bytes) == TB_OK ? bytes : 0;
}

/* The sizes and parameters of one call. */
typedef struct db_dims {
    int64_t n, np, classes, d, kcap;
    float score_thresh;
    float std[4];
} db_dims;

/* The box of class c for RoI r of image b: decoded and clipped (the CPU's db_box). */
template <typename T>
__device__ __forceinline__ void db_box(float *box, const T *deltas, const float *rois, const float *im_size,
                                       const db_dims &d, int64_t b, int64_t r, int64_t c)
{
    int64_t row = b * d.np + r;
    float delta[4];
    for (int q = 0; q < 4; q++)
        delta[q] = tb_f32(deltas[row * 4 * d.classes + 4 * c + q]);
    tb_box_decode(box, delta, rois + 5 * row + 1, d.std);
    tb_box_clip(box, im_size[2 * b], im_size[2 * b + 1]);
}

/* ---------------------------------------------------------------- kernels */

/* Step 1: e = list * P + r, list = b * (C - 1) + c - 1. */
static __global__ void db_score_kernel(uint32_t *keys, int32_t *vals, const float *probs, const int32_t *roi_count,
                                       db_dims d)
{
    TB_GRID_STRIDE_LOOP(e, d.n * (d.classes - 1) * d.np)
    {
        int64_t list = e / d.np, r = e % d.np;
        int64_t b = list / (d.classes - 1), c = list % (d.classes - 1) + 1;
        float score = probs[(b * d.np + r) * d.classes + c];
        bool candidate = r < tb_box_count(roi_count, b, d.np) && score > d.score_thresh;
        keys[e] = candidate ? tb_box_desc_key(score) : 0u;
        vals[e] = (int32_t)r;
    }
}

/* Step 2: e = list * P + t, t the position in the class's score order. */
template <typename T>
static __global__ void db_decode_kernel(float *boxes, uint8_t *valid, const uint32_t *keys_sorted,
                                        const int32_t *vals_sorted, const T *deltas, const float *rois,
                                        const float *im_size, db_dims d)
{
    TB_GRID_STRIDE_LOOP(e, d.n * (d.classes - 1) * d.np)
    {
        int64_t list = e / d.np;
        int64_t b = list / (d.classes - 1), c = list % (d.classes - 1) + 1;
        float box[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        bool candidate = keys_sorted[e] != 0u;
        if (candidate)
            db_box(box, deltas, rois, im_size, d, b, vals_sorted[e], c);
        for (int q = 0; q < 4; q++)
            boxes[4 * e + q] = box[q];
        valid[e] = candidate;
    }
}

/* Step 4: e = b * (C - 1) * kcap + (c - 1) * kcap + q. */
static __global__ void db_merge_kernel(uint32_t *mkeys, int32_t *mvals, const uint32_t *keys_sorted,
                                       const int32_t *vals_sorted, const int32_t *keep, const int32_t *kept,
                                       db_dims d)
{
    TB_GRID_STRIDE_LOOP(e, d.n * (d.classes - 1) * d.kcap)
    {
        int64_t list = e / d.kcap, q = e % d.kcap, c = list % (d.classes - 1) + 1;
        if (q < kept[list]) {
            int64_t pos = list * d.np + keep[list * d.kcap + q];
            mkeys[e] = keys_sorted[pos];
            mvals[e] = (int32_t)(c * d.np + vals_sorted[pos]);
        } else {
            mkeys[e] = 0u;
            mvals[e] = -1;
        }
    }
}

/* Step 5: e = b * D + t. */
template <typename T>
static __global__ void db_output_kernel(float *boxes, float *scores, int32_t *classes, int32_t *count,
                                        const uint32_t *mkeys_sorted, const int32_t *mvals_sorted,
                                        const float *probs, const T *deltas, const float *rois,
                                        const float *im_size, db_dims d)
{
    int64_t slots = (d.classes - 1) * d.kcap;
    TB_GRID_STRIDE_LOOP(e, d.n * d.d)
    {
        int64_t b = e / d.d, t = e % d.d;
        const uint32_t *mk = mkeys_sorted + b * slots;
        bool here = t < slots && mk[t] != 0u;
        bool next = t + 1 < d.d && t + 1 < slots && mk[t + 1] != 0u;
        float box[4] = {0.0f, 0.0f, 0.0f, 0.0f}, score = 0.0f;
        int32_t cls = -1;
        if (here) {
            int64_t idx = mvals_sorted[b * slots + t], c = idx / d.np, r = idx % d.np;
            db_box(box, deltas, rois, im_size, d, b, r, c);
            score = probs[(b * d.np + r) * d.classes + c];
            cls = (int32_t)(c - 1);
        }
        for (int q = 0; q < 4; q++)
            boxes[4 * e + q] = box[q];
        scores[e] = score;
        classes[e] = cls;
        if (here && !next)
            count[b] = (int32_t)(t + 1);
        else if (t == 0 && !here)
            count[b] = 0;
    }
}

/* ---------------------------------------------------------------- launcher */

static int detect_boxes(tb_backend *be, tb_tensor *boxes, tb_tensor *scores, tb_tensor *classes, tb_tensor *count,
                        const tb_tensor *probs, const tb_tensor *deltas, const tb_tensor *rois,
                        const tb_tensor *roi_count, const tb_tensor *im_size, const tb_detect_params *p)
{
    tb_cuda_ctx *ctx = tb_cuda_ctx_of(be);
    db_dims d;
    d.n = roi_count->shape[0];
    if (d.n == 0)
        return TB_OK;
    d.np = rois->shape[0] / d.n;
    d.classes = probs->shape[1];
    d.d = p->max_per_image;
    d.kcap = d.np < d.d ? d.np : d.d;
    d.score_thresh = p->score_thresh;
    for (int q = 0; q < 4; q++)
        d.std[q] = p->box_std[q];
    db_scratch s;
    size_t need = 0;
    TB_TRY(db_layout(&s, NULL, d.n, d.np, d.classes, p, &need));
    TB_TRY(tb_cuda_workspace_check(be, "detect_boxes", need));
    TB_TRY(db_layout(&s, be->workspace, d.n, d.np, d.classes, p, &need));
    int64_t rows = d.n * (d.classes - 1) * d.np;
    const float *pr = (const float *)probs->data, *ro = (const float *)rois->data, *im = (const float *)im_size->data;
    db_score_kernel<<<tb_cuda_blocks(ctx, rows), TB_CUDA_THREADS, 0, ctx->stream>>>(
        s.keys, s.vals, pr, (const int32_t *)roi_count->data, d);
    CUDA_CHECK_LAUNCH();
    TB_TRY(tb_cuda_seg_sort_run(ctx, &s.by_class, s.sort_scratch, s.sort_bytes, s.keys, s.keys_sorted, s.vals,
                                s.vals_sorted));
    TB_TRY(tb_dispatch_float(deltas->dtype, "detect_boxes deltas", [&](auto tag) {
        using T = typename decltype(tag)::type;
        db_decode_kernel<T><<<tb_cuda_blocks(ctx, rows), TB_CUDA_THREADS, 0, ctx->stream>>>(
            s.boxes, s.valid, s.keys_sorted, s.vals_sorted, (const T *)deltas->data, ro, im, d);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    TB_TRY(tb_cuda_nms_run(ctx, &s.nms, s.mask, s.boxes, s.valid, s.keep, s.kept));
    int64_t mrows = d.n * (d.classes - 1) * d.kcap;
    db_merge_kernel<<<tb_cuda_blocks(ctx, mrows), TB_CUDA_THREADS, 0, ctx->stream>>>(
        s.mkeys, s.mvals, s.keys_sorted, s.vals_sorted, s.keep, s.kept, d);
    CUDA_CHECK_LAUNCH();
    TB_TRY(tb_cuda_seg_sort_run(ctx, &s.merged, s.sort_scratch, s.sort_bytes, s.mkeys, s.mkeys_sorted, s.mvals,
                                s.mvals_sorted));
    TB_TRY(tb_dispatch_float(deltas->dtype, "detect_boxes deltas", [&](auto tag) {
        using T = typename decltype(tag)::type;
        db_output_kernel<T><<<tb_cuda_blocks(ctx, d.n * d.d), TB_CUDA_THREADS, 0, ctx->stream>>>(
            (float *)boxes->data, (float *)scores->data, (int32_t *)classes->data, (int32_t *)count->data,
            s.mkeys_sorted, s.mvals_sorted, pr, (const T *)deltas->data, ro, im, d);
        return TB_OK;
    }));
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}

int tb_cuda_detect_boxes(tb_backend *be, tb_tensor *boxes, tb_tensor *scores, tb_tensor *classes, tb_tensor *count,
                         const tb_tensor *probs, const tb_tensor *deltas, const tb_tensor *rois,
                         const tb_tensor *roi_count, const tb_tensor *im_size, const tb_detect_params *p)
{
    TB_CUDA_OP_RETURN(detect_boxes(be, boxes, scores, classes, count, probs, deltas, rois, roi_count, im_size, p),
                      "detect_boxes", "boxes", boxes, "probs", probs, "deltas", deltas, "rois", rois);
}
