/* Zero gamma (the paper, section 3.1): the BatchNorm that ends each residual
 * block (flag TB_BN_LAST_IN_RESIDUAL_BLOCK, set by the model builders) starts
 * with gamma = 0, so every block starts as the identity. Beta stays 0 and all
 * other BatchNorms keep gamma = 1. As timm's zero_init_last and torchvision's
 * zero_init_residual. Run after initialisation (or a checkpoint load that
 * should be overridden) and before training.
 */
#ifndef TB_ZERO_GAMMA_H
#define TB_ZERO_GAMMA_H

#include "models/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sets the master of every flagged BN gamma to 0 and syncs the compute
 * copies. *zeroed (optional) receives how many parameters were zeroed, so the
 * caller can say when a model has no residual blocks. */
int tb_trick_zero_gamma(tb_graph *g, int *zeroed);

#ifdef __cplusplus
}
#endif
#endif
