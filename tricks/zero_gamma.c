#include "tricks/zero_gamma.h"

#include <stdlib.h>

#include "kernels/error.h"

static bool is_last_gamma(const tb_param *p)
{
    return p->role == TB_ROLE_BN_GAMMA && (p->flags & TB_BN_LAST_IN_RESIDUAL_BLOCK);
}

int tb_trick_zero_gamma(tb_graph *g, int *zeroed)
{
    int64_t widest = 0;
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        const tb_param *p = tb_graph_param(g, i);
        if (is_last_gamma(p) && tb_numel(&p->master) > widest)
            widest = tb_numel(&p->master);
    }
    int count = 0;
    if (widest > 0) {
        float *zeros = calloc((size_t)widest, sizeof *zeros);
        if (!zeros)
            return tb_fail(TB_ERR_NOMEM, "zero_gamma: %lld floats", (long long)widest);
        int rc = TB_OK;
        for (int i = 0; i < tb_graph_n_params(g) && rc == TB_OK; i++) {
            if (!is_last_gamma(tb_graph_param(g, i)))
                continue;
            rc = tb_graph_param_upload(g, i, zeros);
            count++;
        }
        free(zeros);
        TB_TRY(rc);
        TB_TRY(tb_graph_sync_params(g));
    }
    if (zeroed)
        *zeroed = count;
    return TB_OK;
}
