/* The stable segmented sort of the detection ops (box.cuh): the random
 * subsets of rpn_targets and roi_targets, the score orders of rpn_proposals
 * and detect_boxes.
 *
 * cub::DeviceSegmentedRadixSort, not cub::DeviceSegmentedSort: the latter
 * copies its segment partition sizes to the host and waits for them, which a
 * training step must not do; the radix sort only queues kernels. It is an
 * LSD radix sort, stable in both directions, so equal keys keep their input
 * (index-ascending) order: the CPU's tie rule. Its temp storage and the
 * segment offsets {segments + 1} (written by a kernel, since they must be in
 * device memory) come from the caller's scratch, which the ops carve out of
 * the workspace; the size query asks CUB with the same arguments. */
#include <limits.h>

#include <cub/device/device_segmented_radix_sort.cuh>

#include "kernels/cuda/box.cuh"

static __global__ void seg_offsets_kernel(int *offsets, int64_t segments, int64_t len)
{
    TB_GRID_STRIDE_LOOP(i, segments + 1)
    {
        offsets[i] = (int)(i * len);
    }
}

/* The sort itself, or CUB's size query when temp is NULL. */
static cudaError_t seg_sort_cub(void *temp, size_t &temp_bytes, const tb_cuda_seg_sort *s, const uint32_t *keys_in,
                                uint32_t *keys_out, const int32_t *vals_in, int32_t *vals_out, const int *offsets,
                                cudaStream_t stream)
{
    int items = (int)(s->segments * s->len), segments = (int)s->segments;
    if (s->descending)
        return cub::DeviceSegmentedRadixSort::SortPairsDescending(temp, temp_bytes, keys_in, keys_out, vals_in,
                                                                  vals_out, items, segments, offsets, offsets + 1, 0,
                                                                  s->end_bit, stream);
    return cub::DeviceSegmentedRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, vals_in, vals_out, items,
                                                    segments, offsets, offsets + 1, 0, s->end_bit, stream);
}

static int seg_sort_valid(const tb_cuda_seg_sort *s)
{
    TB_CHECK(s->segments >= 0 && s->len >= 0 && s->end_bit >= 1 && s->end_bit <= 32, TB_ERR_INVALID,
             "segmented sort of %lld x %lld items by %d key bits", (long long)s->segments, (long long)s->len,
             s->end_bit);
    TB_CHECK(s->segments * s->len <= INT_MAX, TB_ERR_UNSUPPORTED,
             "segmented sort: %lld x %lld items exceed CUB's 32-bit item count", (long long)s->segments,
             (long long)s->len);
    return TB_OK;
}

int tb_cuda_seg_sort_bytes(const tb_cuda_seg_sort *s, size_t *bytes)
{
    *bytes = 0;
    TB_TRY(seg_sort_valid(s));
    if (s->segments * s->len == 0)
        return TB_OK; /* nothing to sort */
    size_t temp_bytes = 0;
    CUDA_CHECK(seg_sort_cub(NULL, temp_bytes, s, NULL, NULL, NULL, NULL, NULL, 0));
    tb_cuda_carver c = {NULL, 0};
    tb_cuda_carve(&c, (size_t)(s->segments + 1) * sizeof(int));
    tb_cuda_carve(&c, temp_bytes);
    *bytes = c.used;
    return TB_OK;
}

int tb_cuda_seg_sort_run(tb_cuda_ctx *ctx, const tb_cuda_seg_sort *s, void *scratch, size_t scratch_bytes,
                         const uint32_t *keys_in, uint32_t *keys_out, const int32_t *vals_in, int32_t *vals_out)
{
    size_t need = 0;
    TB_TRY(tb_cuda_seg_sort_bytes(s, &need));
    TB_CHECK(scratch_bytes >= need, TB_ERR_INVALID, "segmented sort: %zu bytes of scratch given, %zu needed",
             scratch_bytes, need);
    if (s->segments * s->len == 0)
        return TB_OK;
    tb_cuda_carver c = {(char *)scratch, 0};
    int *offsets = (int *)tb_cuda_carve(&c, (size_t)(s->segments + 1) * sizeof(int));
    void *temp = (char *)scratch + c.used;
    size_t temp_bytes = scratch_bytes - c.used;
    seg_offsets_kernel<<<tb_cuda_blocks(ctx, s->segments + 1), TB_CUDA_THREADS, 0, ctx->stream>>>(
        offsets, s->segments, s->len);
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(seg_sort_cub(temp, temp_bytes, s, keys_in, keys_out, vals_in, vals_out, offsets, ctx->stream));
    return TB_OK;
}
