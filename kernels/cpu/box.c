/* Box encode/decode/clip, the random subset draw, the in-place sorts and the
 * workspace check of the detection ops (see box.h for the rules). */
#include "kernels/cpu/box.h"

#include <math.h>
#include <stdbool.h>

#include "kernels/error.h"
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

/* The orders of the sorts, strict and total on distinct indices, so every
 * correct sort gives the one same result. */
typedef bool (*keyed_before)(const tb_cpu_keyed *a, const tb_cpu_keyed *b);

/* ascending key, then ascending index (keys of tb_hash_uniform are never NaN) */
static bool key_asc(const tb_cpu_keyed *a, const tb_cpu_keyed *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    return a->index < b->index;
}

/* descending key (NaN last), then ascending index */
static bool key_desc(const tb_cpu_keyed *a, const tb_cpu_keyed *b)
{
    bool an = isnan(a->key), bn = isnan(b->key);
    if (an != bn)
        return bn;
    if (!an && a->key != b->key)
        return a->key > b->key;
    return a->index < b->index;
}

static bool index_asc(const tb_cpu_keyed *a, const tb_cpu_keyed *b) { return a->index < b->index; }

/* Restores the heap below i in v[0..m): a parent comes before its children. */
static void sift_down(tb_cpu_keyed *v, int64_t i, int64_t m, keyed_before before)
{
    tb_cpu_keyed x = v[i];
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && before(&v[c + 1], &v[c]))
            c++;
        if (!before(&v[c], &x))
            break;
        v[i] = v[c];
        i = c;
    }
    v[i] = x;
}

/* Partial heap sort, in place: the first k of the order end up in v[0..k),
 * in order. Each pop parks the heap's first at the back (v[m-1] first), and
 * a final reversal brings them to the front. */
static void keyed_select(tb_cpu_keyed *v, int64_t m, int64_t k, keyed_before before)
{
    if (m < 2 || k <= 0)
        return;
    k = k < m ? k : m;
    for (int64_t i = m / 2; i-- > 0;)
        sift_down(v, i, m, before);
    for (int64_t end = m - 1; end >= m - k && end > 0; end--) {
        tb_cpu_keyed t = v[0];
        v[0] = v[end];
        v[end] = t;
        sift_down(v, 0, end, before);
    }
    for (int64_t i = 0, j = m - 1; i < j; i++, j--) {
        tb_cpu_keyed t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
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
    keyed_select(scratch, m, k, key_asc);
    keyed_select(scratch, k, k, index_asc); /* the kept ones back in candidate order */
    for (int64_t i = 0; i < k; i++)
        cand[i] = scratch[i].index;
    return k;
}

void tb_cpu_sort_desc(tb_cpu_keyed *v, int64_t m) { keyed_select(v, m, m, key_desc); }

void tb_cpu_top_desc(tb_cpu_keyed *v, int64_t m, int64_t k) { keyed_select(v, m, k, key_desc); }

int tb_cpu_workspace_check(const tb_backend *be, const char *op, const char *query, size_t need)
{
    if (be->workspace_size < need || (need > 0 && !be->workspace))
        return tb_fail(TB_ERR_INVALID,
                       "cpu %s: needs %zu bytes of workspace, %zu reserved; reserve tb_%s_workspace_size() at "
                       "graph build",
                       op, need, be->workspace_size, query);
    return TB_OK;
}
