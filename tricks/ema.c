#include "tricks/ema.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/error.h"

#define EMA_ALIGN 64 /* floats: 256-byte aligned slices */

static int64_t aligned(int64_t n) { return (n + EMA_ALIGN - 1) / EMA_ALIGN * EMA_ALIGN; }

double tb_ema_decay_at(double decay, bool warmup, int64_t k)
{
    if (!warmup)
        return decay;
    if (k <= 1)
        return 0.0;
    return fmin(decay, 1.0 - pow((double)k, -2.0 / 3.0));
}

/* Points count tensors shaped like `live` into one allocation. */
static int alloc_slices(tb_backend *be, void **mem, tb_tensor *out, const tb_tensor *live, int count)
{
    int64_t total = 0;
    for (int i = 0; i < count; i++)
        total += aligned(tb_numel(&live[i]));
    TB_TRY(tb_alloc(be, mem, (size_t)total * sizeof(float)));
    int64_t at = 0;
    for (int i = 0; i < count; i++) {
        out[i] = live[i];
        out[i].data = (float *)*mem + at;
        at += aligned(tb_numel(&live[i]));
    }
    return TB_OK;
}

static int check_args(tb_backend *be, const tb_tensor *live, int count, double decay)
{
    TB_CHECK(isfinite(decay) && decay > 0 && decay < 1, TB_ERR_INVALID,
             "tricks.ema = %g: the decay must be in (0, 1)", decay);
    TB_CHECK(be && count >= 1, TB_ERR_INVALID, "ema: nothing to track (%d tensors)", count);
    for (int i = 0; i < count; i++)
        TB_CHECK(live[i].dtype == TB_F32 && live[i].data, TB_ERR_INVALID,
                 "ema: tracked tensor %d is %s, must be an allocated f32 tensor", i,
                 tb_dtype_name(live[i].dtype));
    return TB_OK;
}

int tb_ema_init_tensors(tb_ema *e, tb_backend *be, const tb_tensor *live, int count, double decay, bool warmup)
{
    *e = (tb_ema){0};
    TB_TRY(check_args(be, live, count, decay));
    e->be = be;
    e->decay = decay;
    e->warmup = warmup;
    e->count = count;
    e->live = malloc((size_t)count * sizeof *e->live);
    e->shadow = malloc((size_t)count * sizeof *e->shadow);
    e->backup = malloc((size_t)count * sizeof *e->backup);
    int rc = (e->live && e->shadow && e->backup) ? TB_OK : tb_fail(TB_ERR_NOMEM, "ema: %d descriptors", count);
    if (rc == TB_OK) {
        for (int i = 0; i < count; i++)
            e->live[i] = live[i];
        rc = alloc_slices(be, &e->shadow_mem, e->shadow, live, count);
    }
    if (rc == TB_OK)
        rc = alloc_slices(be, &e->backup_mem, e->backup, live, count);
    for (int i = 0; i < count && rc == TB_OK; i++)
        rc = tb_copy(be, &e->shadow[i], &live[i]);
    if (rc != TB_OK)
        tb_ema_destroy(e);
    return rc;
}

int tb_ema_init(tb_ema *e, tb_graph *g, double decay, bool warmup)
{
    int n_buffers = tb_graph_n_buffers(g);
    tb_tensor *live = malloc((size_t)(n_buffers + 2) * sizeof *live);
    if (!live)
        return tb_fail(TB_ERR_NOMEM, "ema: %d descriptors", n_buffers + 2);
    int count = 0;
    for (int gi = TB_GROUP_F32; gi <= TB_GROUP_LOWP; gi++) {
        tb_param_group *grp = tb_graph_group(g, gi);
        if (grp)
            live[count++] = grp->master;
    }
    for (int i = 0; i < n_buffers; i++)
        live[count++] = tb_graph_buffer(g, i)->t;
    int rc = tb_ema_init_tensors(e, tb_graph_backend(g), live, count, decay, warmup);
    free(live);
    return rc;
}

void tb_ema_destroy(tb_ema *e)
{
    if (e->be) {
        tb_free(e->be, e->shadow_mem);
        tb_free(e->be, e->backup_mem);
    }
    free(e->live);
    free(e->shadow);
    free(e->backup);
    *e = (tb_ema){0};
}

int tb_ema_update(tb_ema *e)
{
    TB_CHECK(!e->swapped, TB_ERR_INTERNAL, "ema: update while the averages are swapped in");
    e->updates++;
    float d = (float)tb_ema_decay_at(e->decay, e->warmup, e->updates);
    for (int i = 0; i < e->count; i++)
        TB_TRY(tb_axpby(e->be, &e->shadow[i], 1.0f - d, &e->live[i], d));
    return TB_OK;
}

int tb_ema_swap_in(tb_ema *e, tb_graph *g)
{
    TB_CHECK(!e->swapped, TB_ERR_INTERNAL, "ema: swap_in twice without swap_out");
    for (int i = 0; i < e->count; i++) {
        TB_TRY(tb_copy(e->be, &e->backup[i], &e->live[i]));
        TB_TRY(tb_copy(e->be, &e->live[i], &e->shadow[i]));
    }
    e->swapped = true;
    return g ? tb_graph_sync_params(g) : TB_OK;
}

int tb_ema_swap_out(tb_ema *e, tb_graph *g)
{
    TB_CHECK(e->swapped, TB_ERR_INTERNAL, "ema: swap_out without swap_in");
    for (int i = 0; i < e->count; i++)
        TB_TRY(tb_copy(e->be, &e->live[i], &e->backup[i]));
    e->swapped = false;
    return g ? tb_graph_sync_params(g) : TB_OK;
}
