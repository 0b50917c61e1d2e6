/* The stable segmented sort of the detection ops (box.cuh): the random
 * subsets of rpn_targets and roi_targets, the score orders of rpn_proposals
 * and detect_boxes.
 *
 * Two ways, both CUB LSD radix sorts (stable in both directions, so equal
 * keys keep their input, index-ascending, order: the CPU's tie rule) that
 * only queue kernels (cub::DeviceSegmentedSort would copy its partition
 * sizes to the host and wait, which a training step must not do):
 *  - long segments (the anchors of an image, 17k-200k): one
 *    cub::DeviceRadixSort over the whole GPU on composite 64-bit keys,
 *    segment above the key (inverted for a descending order), carrying each
 *    item's index; a gather then writes the keys and values in that order.
 *    cub::DeviceSegmentedRadixSort gives each segment one thread block, so
 *    a few long segments would leave the GPU nearly idle.
 *  - short segments (or, in principle, keys and segment numbers together
 *    wider than 64 bits, which the item count bounds out):
 *    cub::DeviceSegmentedRadixSort, with the segment offsets
 *    {segments + 1} written by a kernel (they must be in device memory).
 * The scratch (composite keys and indices, or offsets, and CUB's temp
 * storage) comes from the caller's, which the ops carve out of the
 * workspace; the size query runs the same carving with CUB's size queries. */
#include <limits.h>
#include <string.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

/* Segments at least this long take the global sort. */
#define TB_SEG_SORT_GLOBAL_LEN 2048

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

/* Bits that number `segments` segments (0 for one). */
static int segment_bits(int64_t segments)
{
    int b = 0;
    while (b < 63 && ((int64_t)1 << b) < segments)
        b++;
    return b;
}

static bool use_global(const tb_cuda_seg_sort *s)
{
    return s->len >= TB_SEG_SORT_GLOBAL_LEN && s->end_bit + segment_bits(s->segments) <= 64;
}

/* composite[i] = segment << end_bit | key's low end_bit bits (inverted when
 * descending), index[i] = i. */
static __global__ void compose_keys_kernel(uint64_t *composite, int32_t *index, const uint32_t *keys, int64_t items,
                                           int64_t len, int end_bit, bool descending)
{
    uint64_t mask = (((uint64_t)1) << end_bit) - 1;
    TB_GRID_STRIDE_LOOP(i, items)
    {
        uint64_t k = (uint64_t)keys[i] & mask;
        composite[i] = ((uint64_t)(i / len) << end_bit) | (descending ? mask - k : k);
        index[i] = (int32_t)i;
    }
}

static __global__ void gather_sorted_kernel(uint32_t *keys_out, int32_t *vals_out, const uint32_t *keys_in,
                                            const int32_t *vals_in, const int32_t *index, int64_t items)
{
    TB_GRID_STRIDE_LOOP(i, items)
    {
        int32_t from = index[i];
        keys_out[i] = keys_in[from];
        vals_out[i] = vals_in[from];
    }
}

/* Scratch regions of either way (NULL base: sizes only). */
typedef struct sort_scratch {
    int *offsets;                  /* segmented */
    uint64_t *composite, *composite_sorted; /* global */
    int32_t *index, *index_sorted;
    void *temp;
    size_t temp_bytes, total;
} sort_scratch;

static int carve_scratch(const tb_cuda_seg_sort *s, char *base, sort_scratch *out)
{
    int64_t items = s->segments * s->len;
    memset(out, 0, sizeof *out);
    tb_cuda_carver c = {base, 0};
    size_t temp_bytes = 0;
    if (use_global(s)) {
        int bits = s->end_bit + segment_bits(s->segments);
        cub::DoubleBuffer<uint64_t> k(NULL, NULL);
        cub::DoubleBuffer<int32_t> v(NULL, NULL);
        CUDA_CHECK(cub::DeviceRadixSort::SortPairs(NULL, temp_bytes, k, v, (int)items, 0, bits, 0));
        out->composite = (uint64_t *)tb_cuda_carve(&c, (size_t)items * sizeof(uint64_t));
        out->composite_sorted = (uint64_t *)tb_cuda_carve(&c, (size_t)items * sizeof(uint64_t));
        out->index = (int32_t *)tb_cuda_carve(&c, (size_t)items * sizeof(int32_t));
        out->index_sorted = (int32_t *)tb_cuda_carve(&c, (size_t)items * sizeof(int32_t));
    } else {
        CUDA_CHECK(seg_sort_cub(NULL, temp_bytes, s, NULL, NULL, NULL, NULL, NULL, 0));
        out->offsets = (int *)tb_cuda_carve(&c, (size_t)(s->segments + 1) * sizeof(int));
    }
    out->temp = tb_cuda_carve(&c, temp_bytes);
    out->temp_bytes = temp_bytes;
    out->total = c.used;
    return TB_OK;
}

int tb_cuda_seg_sort_bytes(const tb_cuda_seg_sort *s, size_t *bytes)
{
    *bytes = 0;
    TB_TRY(seg_sort_valid(s));
    if (s->segments * s->len == 0)
        return TB_OK; /* nothing to sort */
    sort_scratch sc;
    TB_TRY(carve_scratch(s, NULL, &sc));
    *bytes = sc.total;
    return TB_OK;
}

static int global_sort(tb_cuda_ctx *ctx, const tb_cuda_seg_sort *s, const sort_scratch *sc, const uint32_t *keys_in,
                       uint32_t *keys_out, const int32_t *vals_in, int32_t *vals_out)
{
    int64_t items = s->segments * s->len;
    unsigned blocks = tb_cuda_blocks(ctx, items);
    compose_keys_kernel<<<blocks, TB_CUDA_THREADS, 0, ctx->stream>>>(sc->composite, sc->index, keys_in, items, s->len,
                                                                      s->end_bit, s->descending);
    CUDA_CHECK_LAUNCH();
    size_t temp_bytes = sc->temp_bytes;
    int bits = s->end_bit + segment_bits(s->segments);
    /* double buffers: CUB ping-pongs between our two arrays instead of
     * taking a third copy of each in its temp storage; which one ends
     * current it decides on the host, without waiting */
    cub::DoubleBuffer<uint64_t> k(sc->composite, sc->composite_sorted);
    cub::DoubleBuffer<int32_t> v(sc->index, sc->index_sorted);
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sc->temp, temp_bytes, k, v, (int)items, 0, bits, ctx->stream));
    gather_sorted_kernel<<<blocks, TB_CUDA_THREADS, 0, ctx->stream>>>(keys_out, vals_out, keys_in, vals_in,
                                                                       v.Current(), items);
    CUDA_CHECK_LAUNCH();
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
    sort_scratch sc;
    TB_TRY(carve_scratch(s, (char *)scratch, &sc));
    if (use_global(s))
        return global_sort(ctx, s, &sc, keys_in, keys_out, vals_in, vals_out);
    seg_offsets_kernel<<<tb_cuda_blocks(ctx, s->segments + 1), TB_CUDA_THREADS, 0, ctx->stream>>>(
        sc.offsets, s->segments, s->len);
    CUDA_CHECK_LAUNCH();
    size_t temp_bytes = sc.temp_bytes;
    CUDA_CHECK(seg_sort_cub(sc.temp, temp_bytes, s, keys_in, keys_out, vals_in, vals_out, sc.offsets, ctx->stream));
    return TB_OK;
}
