#include "tricks/mix.h"

#include <math.h>

#include "kernels/error.h"
#include "kernels/rng.h"

/* separates the mix stream from every other stream derived from the run seed */
#define TB_MIX_SALT 0x6d69787570637574ull

bool tb_mix_active(int epoch, int epochs, int off_epochs)
{
    if (off_epochs <= 0)
        return true;
    return epoch < epochs - off_epochs;
}

int tb_mix_validate(const tb_mix_config *c)
{
    TB_CHECK(isfinite(c->mixup_alpha) && c->mixup_alpha >= 0, TB_ERR_INVALID,
             "tricks.mixup_alpha = %g: must be a number >= 0", c->mixup_alpha);
    TB_CHECK(isfinite(c->cutmix_alpha) && c->cutmix_alpha >= 0, TB_ERR_INVALID,
             "tricks.cutmix_alpha = %g: must be a number >= 0", c->cutmix_alpha);
    TB_CHECK(c->off_epochs >= 0, TB_ERR_INVALID, "tricks.mixup_off_epochs = %d: must be >= 0", c->off_epochs);
    return TB_OK;
}

static int64_t clip(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* timm's rand_bbox (margin 0) with correct_lam. */
tb_mix tb_mix_cutmix_box(double lam, int cy, int cx, int h, int w)
{
    tb_mix m = {.kind = TB_MIX_CUTMIX};
    double ratio = sqrt(1.0 - lam);
    int64_t cut_h = (int64_t)(h * ratio), cut_w = (int64_t)(w * ratio);
    m.y0 = (int)clip(cy - cut_h / 2, 0, h);
    m.y1 = (int)clip(cy + cut_h / 2, 0, h);
    m.x0 = (int)clip(cx - cut_w / 2, 0, w);
    m.x1 = (int)clip(cx + cut_w / 2, 0, w);
    double area = (double)(m.y1 - m.y0) * (double)(m.x1 - m.x0);
    m.lam = (float)(1.0 - area / ((double)h * (double)w));
    return m;
}

tb_mix tb_mix_draw(const tb_mix_config *c, uint64_t seed, int epoch, int64_t step, int h, int w)
{
    tb_mix m = {.kind = TB_MIX_NONE, .lam = 1.0f};
    bool mixup = c->mixup_alpha > 0, cutmix = c->cutmix_alpha > 0 && h > 0 && w > 0;
    if ((!mixup && !cutmix) || !tb_mix_active(epoch, c->epochs, c->off_epochs))
        return m;
    tb_rng r;
    tb_rng_seed(&r, tb_splitmix64(seed ^ TB_MIX_SALT), ((uint64_t)(uint32_t)epoch << 40) ^ (uint64_t)step);
    if (mixup && cutmix)
        cutmix = tb_rng_uniform(&r) < 0.5;
    double alpha = cutmix ? c->cutmix_alpha : c->mixup_alpha;
    double lam = tb_rng_beta(&r, alpha, alpha);
    if (cutmix) {
        int cy = (int)tb_rng_below(&r, (uint64_t)h);
        int cx = (int)tb_rng_below(&r, (uint64_t)w);
        return tb_mix_cutmix_box(lam, cy, cx, h, w);
    }
    m.kind = TB_MIX_MIXUP;
    m.lam = (float)lam;
    return m;
}
