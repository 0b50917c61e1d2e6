/* Weight-decay masks (the paper's "no bias decay", section 3.1).
 *
 * tb_sgd_step applies weight decay where a group's u8 decay_mask is 1. With
 * no_bias_decay only convolution and fully-connected weights decay; biases
 * and BatchNorm gamma/beta do not. Without it every parameter decays, which
 * is PyTorch's default (one param group with weight_decay). Frozen
 * parameters (TB_PARAM_FROZEN) never decay.
 */
#ifndef TB_DECAY_MASK_H
#define TB_DECAY_MASK_H

#include <stdbool.h>

#include "models/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether a parameter of this role gets weight decay. */
bool tb_role_decays(tb_param_role role, bool no_bias_decay);
/* Builds each group's mask on the host from the parameters' roles and uploads
 * it into tb_graph_group(g, gi)->decay_mask (once, after tb_graph_finalize). */
int tb_trick_decay_mask(tb_graph *g, bool no_bias_decay);

#ifdef __cplusplus
}
#endif
#endif
