/* Box encode/decode/clip and the random subset draw of the detection ops
 * (see box.h for the rules). */
#include "kernels/cpu/box.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/rng.h"

#define BOX_MIN_SIZE 1e-6f

static float at_least(float v, float lo) { return v > lo ? v : lo; }

void tb_cpu_box_encode(float *delta, const float *box, const float *ref, const float *std)
{
    float aw = at_least(ref[2] - ref[0], BOX_MIN_SIZE), ah = at_least(ref[3] - ref[1], BOX_MIN_SIZE);
    float gw = at_least(box[2] - box[0], BOX_MIN_SIZE), gh = at_least(box[3] - box[1], BOX_MIN_SIZE);
    float acx = ref[0] + 0.5f * aw, acy = ref[1] + 0.5f * ah;
    float gcx = box[0] + 0.5f * gw, gcy = box[1] + 0.5f * gh;
    delta[0] = (gcx - acx) / aw / std[0];
    delta[1] = (gcy - acy) / ah / std[1];
    delta[2] = logf(gw / aw) / std[2];
    delta[3] = logf(gh / ah) / std[3];
}

void tb_cpu_box_decode(float *box, const float *delta, const float *ref, const float *std)
{
    float aw = ref[2] - ref[0], ah = ref[3] - ref[1];
    float acx = ref[0] + 0.5f * aw, acy = ref[1] + 0.5f * ah;
    float dw = delta[2] * std[2], dh = delta[3] * std[3];
    /* clamp from above only, as torchvision: a shrinking delta cannot overflow */
    dw = dw < TB_BOX_DWH_CLIP ? dw : TB_BOX_DWH_CLIP;
    dh = dh < TB_BOX_DWH_CLIP ? dh : TB_BOX_DWH_CLIP;
    float cx = delta[0] * std[0] * aw + acx, cy = delta[1] * std[1] * ah + acy;
    float w = expf(dw) * aw, h = expf(dh) * ah;
    box[0] = cx - 0.5f * w;
    box[1] = cy - 0.5f * h;
    box[2] = cx + 0.5f * w;
    box[3] = cy + 0.5f * h;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

void tb_cpu_box_clip(float *box, float height, float width)
{
    box[0] = clampf(box[0], 0.0f, width);
    box[1] = clampf(box[1], 0.0f, height);
    box[2] = clampf(box[2], 0.0f, width);
    box[3] = clampf(box[3], 0.0f, height);
}

/* ascending key, then ascending index */
static int cmp_key_asc(const void *pa, const void *pb)
{
    const tb_cpu_keyed *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static int cmp_i32(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return (a > b) - (a < b);
}

int64_t tb_cpu_sample_subset(int32_t *cand, int64_t m, int64_t k, uint64_t seed, uint64_t key_base,
                             tb_cpu_keyed *scratch)
{
    if (k >= m)
        return m;
    if (k <= 0)
        return 0;
    for (int64_t i = 0; i < m; i++) {
        scratch[i].key = tb_hash_uniform(seed, key_base + (uint64_t)cand[i]);
        scratch[i].index = cand[i];
    }
    qsort(scratch, (size_t)m, sizeof *scratch, cmp_key_asc);
    for (int64_t i = 0; i < k; i++)
        cand[i] = scratch[i].index;
    qsort(cand, (size_t)k, sizeof *cand, cmp_i32);
    return k;
}

/* descending key (NaN last), then ascending index */
static int cmp_key_desc(const void *pa, const void *pb)
{
    const tb_cpu_keyed *a = pa, *b = pb;
    int an = isnan(a->key), bn = isnan(b->key);
    if (an != bn)
        return an - bn;
    if (!an && a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

void tb_cpu_sort_desc(tb_cpu_keyed *v, int64_t m)
{
    if (m > 1)
        qsort(v, (size_t)m, sizeof *v, cmp_key_desc);
}
