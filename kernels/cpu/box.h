/* Box helpers shared by the CPU detection ops (private to kernels/cpu).
 *
 * Boxes are float[4] (x1, y1, x2, y2) with continuous coordinates and no "+1"
 * (kernels/ops.h): width x2 - x1. Deltas follow torchvision's BoxCoder with
 * std = 1 / its weights:
 *   encode: d = ((gcx - acx) / aw / std0, (gcy - acy) / ah / std1,
 *                log(gw / aw) / std2, log(gh / ah) / std3)
 *   decode: the inverse, with dw, dh (after the std) clamped from above at
 *           log(1000 / 16) so that exp() cannot overflow.
 *
 * The random subsets of the target ops (which anchors and RoIs are sampled)
 * are drawn here too, by one rule every backend can reproduce exactly:
 * candidate i gets the key tb_hash_uniform(seed, key_base + i) and the k
 * candidates with the smallest keys are kept (equal keys: the lower index
 * first). Choosing the k smallest of i.i.d. uniform keys is a uniformly random
 * k-subset; the keys depend only on (seed, index), not on threads.
 *
 * Scratch: the detection ops never allocate. Each carves its scratch out of
 * the backend's workspace (reserved at graph build from the op's
 * *_workspace_size query) with a tb_cpu_carver, and its query runs the same
 * carving code over a NULL base, so the size asked for and the size used
 * cannot drift apart. The sorts here are in place for the same reason
 * (glibc's qsort mallocs a merge buffer for arrays above 1 KiB).
 */
#ifndef TB_CPU_BOX_H
#define TB_CPU_BOX_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

/* log(1000 / 16): the largest dw, dh a decode applies (torchvision's bbox_xform_clip). */
#define TB_BOX_DWH_CLIP 4.135166556742356f

static inline float tb_cpu_box_area(const float *b) { return (b[2] - b[0]) * (b[3] - b[1]); }

/* IoU of a and b given their areas (tb_cpu_box_area). A pair with no
 * positive union (degenerate boxes) has IoU 0. Every caller that compares
 * IoUs for equality computes them through this one function, so equal inputs
 * give bitwise equal IoUs. */
static inline float tb_cpu_box_iou_areas(const float *a, float area_a, const float *b, float area_b)
{
    float iw = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
    float ih = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
    if (!(iw > 0.0f) || !(ih > 0.0f))
        return 0.0f;
    float inter = iw * ih;
    float uni = area_a + area_b - inter;
    return uni > 0.0f ? inter / uni : 0.0f;
}

static inline float tb_cpu_box_iou(const float *a, const float *b)
{
    return tb_cpu_box_iou_areas(a, tb_cpu_box_area(a), b, tb_cpu_box_area(b));
}

/* delta = encode(box against ref); std has 4 entries. Widths and heights
 * below 1e-6 count as 1e-6 so that a degenerate box gives large finite
 * deltas instead of inf/NaN. */
void tb_cpu_box_encode(float *delta, const float *box, const float *ref, const float *std);
/* box = decode(delta on ref). */
void tb_cpu_box_decode(float *box, const float *delta, const float *ref, const float *std);
/* Clamps x into [0, width] and y into [0, height]. */
void tb_cpu_box_clip(float *box, float height, float width);

/* One candidate of a random subset draw. */
typedef struct tb_cpu_keyed {
    float key;
    int32_t index;
} tb_cpu_keyed;

/* cand[0..m) holds candidate indices in ascending order. Keeps the k with the
 * smallest keys tb_hash_uniform(seed, key_base + cand[i]) (ties: lower index)
 * and writes them back to cand[0..min(k, m)) in ascending order; returns
 * min(k, m). scratch holds m entries. k >= m keeps every candidate. */
int64_t tb_cpu_sample_subset(int32_t *cand, int64_t m, int64_t k, uint64_t seed, uint64_t key_base,
                             tb_cpu_keyed *scratch);

/* Sorts v[0..m) by descending key, ties by ascending index: the score order
 * of the detection ops. A NaN key sorts last. */
void tb_cpu_sort_desc(tb_cpu_keyed *v, int64_t m);
/* The same order, but only the first k: afterwards v[0..min(k, m)) holds the
 * k first entries of that order, in order; the rest of v is permuted.
 * O(m + k log m) (a partial heap sort). */
void tb_cpu_top_desc(tb_cpu_keyed *v, int64_t m, int64_t k);

/* Consecutive scratch regions, each starting 64-byte aligned, taken from
 * base (the workspace). With base NULL nothing is handed out (NULL
 * pointers) and only the bytes are counted: that is the workspace query. */
typedef struct tb_cpu_carver {
    char *base;
    size_t used; /* bytes taken so far, a multiple of 64 */
} tb_cpu_carver;

static inline void *tb_cpu_carve(tb_cpu_carver *c, size_t bytes)
{
    void *p = c->base ? c->base + c->used : NULL;
    c->used += (bytes + 63) & ~(size_t)63;
    return p;
}

/* TB_OK when be's workspace holds `need` bytes, else TB_ERR_INVALID naming
 * the op, the bytes needed and reserved, and the query to reserve from
 * ("cpu <op>: needs N bytes of workspace, M reserved; reserve
 * tb_<query>_workspace_size() at graph build"). */
int tb_cpu_workspace_check(const tb_backend *be, const char *op, const char *query, size_t need);

#endif
