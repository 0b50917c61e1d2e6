/* Mixup and CutMix draws: which mix a batch gets and with which lambda.
 *
 * The pixel and label work is done by the ops tb_mixup_batch /
 * tb_cutmix_batch / tb_reverse_labels / tb_soft_targets (sample i is paired
 * with sample n-1-i); this unit only decides, on the host, per batch:
 *  - off for the last tricks.mixup_off_epochs epochs (the paper turns mixup
 *    off at the end of training; the same switch covers CutMix);
 *  - lam ~ Beta(alpha, alpha) (tb_rng_beta);
 *  - with both tricks.mixup_alpha and tricks.cutmix_alpha set, CutMix is
 *    chosen with probability 0.5 per batch, else mixup (timm's switch_prob);
 *  - the CutMix box is timm's rand_bbox: cut ratio sqrt(1 - lam), a box of
 *    2 * (int(h * ratio) // 2) x 2 * (int(w * ratio) // 2) pixels centred on a
 *    uniform pixel, clipped to the image, and lam corrected to the actual box
 *    area (timm's correct_lam): lam = 1 - box_area / (h * w).
 * lam is the weight of the batch's own sample: targets are
 * lam * y + (1 - lam) * y[reversed].
 * Each draw is a pure function of (seed, epoch, step), so a resumed or
 * repeated run draws the same lambdas whatever the thread count.
 */
#ifndef TB_MIX_H
#define TB_MIX_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tb_mix_kind { TB_MIX_NONE = 0, TB_MIX_MIXUP, TB_MIX_CUTMIX } tb_mix_kind;

typedef struct tb_mix {
    tb_mix_kind kind;
    float lam;            /* 1 for TB_MIX_NONE */
    int y0, y1, x0, x1;   /* CutMix box [y0,y1) x [x0,x1), taken from the reversed batch */
} tb_mix;

typedef struct tb_mix_config {
    double mixup_alpha;   /* 0 = off */
    double cutmix_alpha;  /* 0 = off */
    int off_epochs;       /* no mixing in the last off_epochs epochs */
    int epochs;           /* total training epochs */
} tb_mix_config;

/* Whether mixing is on in `epoch` (0-based) of `epochs`. */
bool tb_mix_active(int epoch, int epochs, int off_epochs);
/* Validates alphas (>= 0, finite) and off_epochs (>= 0); names tricks.* keys. */
int tb_mix_validate(const tb_mix_config *c);
/* timm's box for a drawn lam and a box centre (cy, cx): kind TB_MIX_CUTMIX
 * with the clipped box and the area-corrected lam. */
tb_mix tb_mix_cutmix_box(double lam, int cy, int cx, int h, int w);
/* The draw for batch `step` of `epoch` for images of h x w pixels. */
tb_mix tb_mix_draw(const tb_mix_config *c, uint64_t seed, int epoch, int64_t step, int h, int w);

#ifdef __cplusplus
}
#endif
#endif
