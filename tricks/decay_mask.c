#include "tricks/decay_mask.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

bool tb_role_decays(tb_param_role role, bool no_bias_decay)
{
    if (!no_bias_decay)
        return true;
    return role == TB_ROLE_CONV_WEIGHT || role == TB_ROLE_LINEAR_WEIGHT;
}

/* Fills the host mask of group `gi` from the parameters that live in it; the
 * alignment padding between parameters stays 0 (calloc). */
static int fill_group_mask(tb_graph *g, int gi, const tb_param_group *grp, uint8_t *mask, bool no_bias_decay)
{
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        const tb_param *p = tb_graph_param(g, i);
        if (p->group != gi)
            continue;
        int64_t n = tb_numel(&p->master);
        TB_CHECK(p->offset >= 0 && p->offset + n <= grp->count, TB_ERR_INTERNAL,
                 "decay mask: parameter %s [%lld, %lld) lies outside group %d of %lld elements", p->name,
                 (long long)p->offset, (long long)(p->offset + n), gi, (long long)grp->count);
        /* a frozen parameter must not shrink either: the SGD step leaves it alone */
        bool decays = !(p->flags & TB_PARAM_FROZEN) && tb_role_decays(p->role, no_bias_decay);
        memset(mask + p->offset, decays ? 1 : 0, (size_t)n);
    }
    return TB_OK;
}

int tb_trick_decay_mask(tb_graph *g, bool no_bias_decay)
{
    for (int gi = TB_GROUP_F32; gi <= TB_GROUP_LOWP; gi++) {
        tb_param_group *grp = tb_graph_group(g, gi);
        if (!grp)
            continue;
        TB_CHECK(grp->decay_mask.dtype == TB_U8 && tb_numel(&grp->decay_mask) == grp->count, TB_ERR_INTERNAL,
                 "decay mask: group %d's mask is not u8 {%lld}", gi, (long long)grp->count);
        uint8_t *mask = calloc((size_t)grp->count + 1, 1);
        if (!mask)
            return tb_fail(TB_ERR_NOMEM, "decay mask: %lld bytes for group %d", (long long)grp->count, gi);
        int rc = fill_group_mask(g, gi, grp, mask, no_bias_decay);
        if (rc == TB_OK)
            rc = tb_upload(tb_graph_backend(g), &grp->decay_mask, mask);
        free(mask);
        TB_TRY(rc);
    }
    return TB_OK;
}
