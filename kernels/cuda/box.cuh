/* Shared pieces of the CUDA box-level detection ops (rpn_targets.cu,
 * rpn_proposals.cu, roi_targets.cu, detect_boxes.cu): device twins of the
 * CPU's box helpers (kernels/cpu/box.{h,c}), the keys of the random subsets
 * and of the score orders, the scratch carver, and the host launchers of
 * box_sort.cu (stable segmented sort) and nms.cu (bitmask NMS).
 *
 * Agreement with the CPU reference. The ops decide things by comparing IoUs
 * with thresholds and, in rpn_targets' low-quality step, for equality. The
 * CPU computes in plain IEEE f32 (gcc -std=c11 does not contract a * b + c
 * into an FMA, and x86-64's baseline has none), so every helper here spells
 * its arithmetic with __fadd_rn / __fsub_rn / __fmul_rn / __fdiv_rn, in the
 * CPU's order: nvcc never contracts those into FMAs, and the results are
 * bitwise those of the CPU. The comparisons are the CPU's ternaries, NaN
 * behaviour included. Only expf and logf differ: glibc's are within 0.502 ulp
 * and CUDA's within 2, so the decodes and encodes here use the double
 * functions rounded to f32 (the correctly rounded value, which glibc also
 * returns but in rare near-midpoint cases): decoded boxes and targets agree
 * bitwise nearly always and within an ulp otherwise.
 *
 * Random subsets: candidate i of a draw keeps the key
 * tb_hash_uniform(seed, key_base + i) = u * 2^-24 with u = the hash's top 24
 * bits (rng.h), so ordering by the integer u is ordering by the float key.
 * The ops sort (class << 24 | u) with the candidate index as the value in a
 * stable radix sort over index-ascending input: smallest keys first, ties to
 * the lower index, exactly tb_cpu_sample_subset's rule.
 *
 * Score orders (descending, ties to the lower index, NaN last): a stable
 * descending sort of tb_box_desc_key(score), which maps NaN below every
 * number and -0 onto +0 (the CPU's comparison treats them as equal).
 *
 * Scratch: like the CPU ops, each op carves its scratch out of be->workspace
 * with a tb_cuda_carver and its *_workspace_size query runs the same carving
 * over a NULL base. The ops never allocate and never wait for the device.
 */
#ifndef TB_CUDA_BOX_CUH
#define TB_CUDA_BOX_CUH

#include <math.h>
#include <stdint.h>

#include "kernels/cuda/cuda_common.cuh"

/* log(1000 / 16): the CPU's TB_BOX_DWH_CLIP (kernels/cpu/box.h), the same literal. */
#define TB_CUDA_BOX_DWH_CLIP 4.135166556742356f
/* Widths and heights an encode floors at (kernels/cpu/box.c's BOX_MIN_SIZE). */
#define TB_CUDA_BOX_MIN_SIZE 1e-6f

/* ------------------------------------------------------------ box arithmetic */

__device__ __forceinline__ float tb_box_area(const float *b)
{
    return __fmul_rn(__fsub_rn(b[2], b[0]), __fsub_rn(b[3], b[1]));
}

/* tb_cpu_box_iou_areas: 0 without overlap or without a positive union. */
__device__ __forceinline__ float tb_box_iou_areas(const float *a, float area_a, const float *b, float area_b)
{
    float iw = __fsub_rn(a[2] < b[2] ? a[2] : b[2], a[0] > b[0] ? a[0] : b[0]);
    float ih = __fsub_rn(a[3] < b[3] ? a[3] : b[3], a[1] > b[1] ? a[1] : b[1]);
    if (!(iw > 0.0f) || !(ih > 0.0f))
        return 0.0f;
    float inter = __fmul_rn(iw, ih);
    float uni = __fsub_rn(__fadd_rn(area_a, area_b), inter);
    return uni > 0.0f ? __fdiv_rn(inter, uni) : 0.0f;
}

__device__ __forceinline__ float tb_box_iou(const float *a, const float *b)
{
    return tb_box_iou_areas(a, tb_box_area(a), b, tb_box_area(b));
}

/* f32 exp and log as glibc rounds them nearly always (see the header comment). */
__device__ __forceinline__ float tb_box_expf(float x) { return (float)exp((double)x); }
__device__ __forceinline__ float tb_box_logf(float x) { return (float)log((double)x); }

__device__ __forceinline__ float tb_box_at_least(float v, float lo) { return v > lo ? v : lo; }

/* tb_cpu_box_encode: delta = encode(box against ref) with std[4]. */
__device__ __forceinline__ void tb_box_encode(float *delta, const float *box, const float *ref, const float *std)
{
    float aw = tb_box_at_least(__fsub_rn(ref[2], ref[0]), TB_CUDA_BOX_MIN_SIZE);
    float ah = tb_box_at_least(__fsub_rn(ref[3], ref[1]), TB_CUDA_BOX_MIN_SIZE);
    float gw = tb_box_at_least(__fsub_rn(box[2], box[0]), TB_CUDA_BOX_MIN_SIZE);
    float gh = tb_box_at_least(__fsub_rn(box[3], box[1]), TB_CUDA_BOX_MIN_SIZE);
    float acx = __fadd_rn(ref[0], __fmul_rn(0.5f, aw)), acy = __fadd_rn(ref[1], __fmul_rn(0.5f, ah));
    float gcx = __fadd_rn(box[0], __fmul_rn(0.5f, gw)), gcy = __fadd_rn(box[1], __fmul_rn(0.5f, gh));
    delta[0] = __fdiv_rn(__fdiv_rn(__fsub_rn(gcx, acx), aw), std[0]);
    delta[1] = __fdiv_rn(__fdiv_rn(__fsub_rn(gcy, acy), ah), std[1]);
    delta[2] = __fdiv_rn(tb_box_logf(__fdiv_rn(gw, aw)), std[2]);
    delta[3] = __fdiv_rn(tb_box_logf(__fdiv_rn(gh, ah)), std[3]);
}

/* tb_cpu_box_decode: box = decode(delta on ref), dw and dh clamped from above. */
__device__ __forceinline__ void tb_box_decode(float *box, const float *delta, const float *ref, const float *std)
{
    float aw = __fsub_rn(ref[2], ref[0]), ah = __fsub_rn(ref[3], ref[1]);
    float acx = __fadd_rn(ref[0], __fmul_rn(0.5f, aw)), acy = __fadd_rn(ref[1], __fmul_rn(0.5f, ah));
    float dw = __fmul_rn(delta[2], std[2]), dh = __fmul_rn(delta[3], std[3]);
    dw = dw < TB_CUDA_BOX_DWH_CLIP ? dw : TB_CUDA_BOX_DWH_CLIP;
    dh = dh < TB_CUDA_BOX_DWH_CLIP ? dh : TB_CUDA_BOX_DWH_CLIP;
    float cx = __fadd_rn(__fmul_rn(__fmul_rn(delta[0], std[0]), aw), acx);
    float cy = __fadd_rn(__fmul_rn(__fmul_rn(delta[1], std[1]), ah), acy);
    float w = __fmul_rn(tb_box_expf(dw), aw), h = __fmul_rn(tb_box_expf(dh), ah);
    box[0] = __fsub_rn(cx, __fmul_rn(0.5f, w));
    box[1] = __fsub_rn(cy, __fmul_rn(0.5f, h));
    box[2] = __fadd_rn(cx, __fmul_rn(0.5f, w));
    box[3] = __fadd_rn(cy, __fmul_rn(0.5f, h));
}

__device__ __forceinline__ float tb_box_clamp(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* tb_cpu_box_clip: x into [0, width], y into [0, height]. */
__device__ __forceinline__ void tb_box_clip(float *box, float height, float width)
{
    box[0] = tb_box_clamp(box[0], 0.0f, width);
    box[1] = tb_box_clamp(box[1], 0.0f, height);
    box[2] = tb_box_clamp(box[2], 0.0f, width);
    box[3] = tb_box_clamp(box[3], 0.0f, height);
}

/* ----------------------------------------------------------------- sort keys */

/* Top 24 bits of the hash behind tb_hash_uniform(seed, i) (rng.h): the float
 * key times 2^24, so its order is the float key's. */
__device__ __forceinline__ uint32_t tb_box_key24(uint64_t seed, uint64_t i)
{
    return (uint32_t)(tb_splitmix64_dev(seed ^ tb_splitmix64_dev(i)) >> 40);
}

/* Key bits of a draw: a class (0, 1, or 2 = not a candidate) above the 24 hash bits. */
#define TB_BOX_DRAW_BITS 26

/* Unsigned key whose descending order is the CPU's score order: numbers by
 * value (-0 = +0), NaN last (0, below -inf's key 0x007fffff). */
__device__ __forceinline__ uint32_t tb_box_desc_key(float f)
{
    if (isnan(f))
        return 0u;
    uint32_t u = __float_as_uint(f == 0.0f ? 0.0f : f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* An i32 count read on the device, clamped into [0, hi]. */
__device__ __forceinline__ int64_t tb_box_count(const int32_t *count, int64_t b, int64_t hi)
{
    int64_t c = count[b];
    return c < 0 ? 0 : (c > hi ? hi : c);
}

/* counts[slot] += 1 for slot >= 0 (slot < 0: nothing), with one atomic per
 * distinct slot among the warp's active lanes (candidate counts per image and
 * class: thousands of lanes would otherwise hit a few addresses). */
__device__ __forceinline__ void tb_box_count_add(int32_t *counts, int slot)
{
    unsigned active = __activemask();
    unsigned peers = __match_any_sync(active, slot);
    if (slot >= 0 && (int)(threadIdx.x & 31) == __ffs(peers) - 1)
        atomicAdd(counts + slot, __popc(peers));
}

/* ------------------------------------------------------------------ scratch */

/* Consecutive scratch regions of the workspace, each 256-byte aligned (CUB's
 * temp storage and coalesced loads); base NULL only counts the bytes. */
typedef struct tb_cuda_carver {
    char *base;
    size_t used;
} tb_cuda_carver;

static inline void *tb_cuda_carve(tb_cuda_carver *c, size_t bytes)
{
    void *p = c->base ? c->base + c->used : NULL;
    c->used += (bytes + 255) & ~(size_t)255;
    return p;
}

/* TB_ERR_INVALID naming the op and query when be's workspace is below need. */
static inline int tb_cuda_workspace_check(const tb_backend *be, const char *op, size_t need)
{
    if (be->workspace_size < need || (need > 0 && !be->workspace))
        return tb_fail(TB_ERR_INVALID,
                       "cuda %s: needs %zu bytes of workspace, %zu reserved; reserve tb_%s_workspace_size() at "
                       "graph build",
                       op, need, be->workspace_size, op);
    return TB_OK;
}

/* --------------------------------------------------- box_sort.cu: segmented sort */

/* A stable sort of (u32 key, i32 value) pairs in `segments` runs of `len`
 * consecutive items, by key bits [0, end_bit), ascending or descending
 * (CUB's LSD radix sorts, so equal keys keep their input order: one sort
 * over all items for long segments, a segmented one for short, see
 * box_sort.cu). segments * len must fit an int (CUB's item count); no items
 * is a sort that does nothing. */
typedef struct tb_cuda_seg_sort {
    int64_t segments, len;
    int end_bit;
    bool descending;
} tb_cuda_seg_sort;

/* Bytes of scratch a sort needs (segment offsets, or composite keys and
 * item indices, + CUB's temp storage). */
int tb_cuda_seg_sort_bytes(const tb_cuda_seg_sort *s, size_t *bytes);
/* Sorts on ctx's stream; keys_out / vals_out must not overlap the inputs.
 * scratch holds tb_cuda_seg_sort_bytes(). */
int tb_cuda_seg_sort_run(tb_cuda_ctx *ctx, const tb_cuda_seg_sort *s, void *scratch, size_t scratch_bytes,
                         const uint32_t *keys_in, uint32_t *keys_out, const int32_t *vals_in, int32_t *vals_out);

/* ------------------------------------------------------------ nms.cu: NMS */

/* Greedy NMS (tb_cpu_nms) of `segments` independent lists of `len` boxes
 * each, already in score order: position t of list s is boxes[(s * len + t)
 * * 4 ..], taking part when valid[s * len + t] != 0 (an invalid box is never
 * kept and suppresses nothing: the CPU's compacted list). A box is kept
 * unless an earlier kept box has IoU > iou with it; at most max_keep per list.
 *   keep {segments, min(len, max_keep)}: kept positions in order; kept {segments}: their number. */
typedef struct tb_cuda_nms {
    int64_t segments, len, max_keep;
    float iou;
} tb_cuda_nms;

/* Bytes of the suppression masks (one u64 per box and 64-box column). */
size_t tb_cuda_nms_mask_bytes(const tb_cuda_nms *p);
/* TB_ERR_UNSUPPORTED when a list is longer than the reduction's shared memory holds. */
int tb_cuda_nms_check(const tb_cuda_nms *p);
int tb_cuda_nms_run(tb_cuda_ctx *ctx, const tb_cuda_nms *p, uint64_t *mask, const float *boxes,
                    const uint8_t *valid, int32_t *keep, int32_t *kept);

#endif
