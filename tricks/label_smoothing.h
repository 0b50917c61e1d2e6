/* Label smoothing (the paper, section 5.2): the target for a sample of class
 * y over K classes is 1 - eps on y and eps / (K - 1) on every other class.
 *
 * Training computes these rows on the device with tb_soft_targets (which also
 * mixes two rows for mixup/CutMix); this host helper computes one row for
 * tests, reports and documentation. Note that timm (and PyTorch's
 * CrossEntropyLoss(label_smoothing=eps)) use another convention:
 * eps / K everywhere plus 1 - eps on the true class, i.e. 1 - eps + eps / K on
 * y. For the same eps the paper's true-class target is slightly lower.
 */
#ifndef TB_LABEL_SMOOTHING_H
#define TB_LABEL_SMOOTHING_H

#ifdef __cplusplus
extern "C" {
#endif

/* Target on the true class and on each other class for K = k classes. */
double tb_label_smoothing_on(int k, double eps);
double tb_label_smoothing_off(int k, double eps);
/* Writes the smoothed target row (k floats) of `label`. Errors (TB_ERR_INVALID)
 * for k < 2, a label outside [0, k) or eps outside [0, 1) (tricks.label_smoothing). */
int tb_label_smoothing_row(float *row, int k, int label, double eps);

#ifdef __cplusplus
}
#endif
#endif
