/* Parameter initialisation.
 *
 * kaiming (torchvision's ResNet and MobileNet): conv weights normal(0,
 *   sqrt(2 / fan_out)) (kaiming_normal_, mode fan_out, ReLU gain); the
 *   classifier keeps PyTorch's nn.Linear default, uniform(-1/sqrt(fan_in),
 *   1/sqrt(fan_in)) (torchvision's ResNet never re-initialises fc: a Kaiming
 *   normal over 10 classes would start with logits of std ~10).
 * xavier (the paper, section 2.1): conv and linear weights uniform(-a, a),
 *   a = sqrt(6 / (fan_in + fan_out)).
 * Both: biases 0 (the paper), BN gamma 1 and beta 0, running mean 0 and
 * variance 1, num_batches_tracked 0. fan_in / fan_out are the graph's (conv:
 * c/groups*kh*kw and k/groups*kh*kw, as timm's init; linear: c and k).
 * Parameter i draws from stream i of the seed, so a parameter's values do not
 * depend on the others' sizes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"
#include "kernels/rng.h"
#include "models/models.h"

static void fill_param(float *v, int64_t n, const tb_param *p, tb_init_kind init, tb_rng *r)
{
    double a = sqrt(6.0 / (double)(p->fan_in + p->fan_out));
    switch (p->role) {
    case TB_ROLE_CONV_WEIGHT:
        if (init == TB_INIT_XAVIER) {
            for (int64_t i = 0; i < n; i++)
                v[i] = tb_rng_uniform_f(r, (float)-a, (float)a);
        } else {
            double std = sqrt(2.0 / (double)p->fan_out);
            for (int64_t i = 0; i < n; i++)
                v[i] = (float)(std * tb_rng_normal(r));
        }
        break;
    case TB_ROLE_LINEAR_WEIGHT:
        if (init == TB_INIT_KAIMING)
            a = 1.0 / sqrt((double)p->fan_in);
        for (int64_t i = 0; i < n; i++)
            v[i] = tb_rng_uniform_f(r, (float)-a, (float)a);
        break;
    case TB_ROLE_BN_GAMMA:
        for (int64_t i = 0; i < n; i++)
            v[i] = 1.0f;
        break;
    case TB_ROLE_BIAS:
    case TB_ROLE_BN_BETA:
        memset(v, 0, (size_t)n * sizeof *v);
        break;
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lf = strlen(suffix);
    return ls >= lf && !strcmp(s + ls - lf, suffix);
}

int tb_model_init(tb_graph *g, tb_init_kind init, uint64_t seed)
{
    int64_t most = 1;
    for (int i = 0; i < tb_graph_n_params(g); i++) {
        int64_t n = tb_numel(&tb_graph_param(g, i)->master);
        most = n > most ? n : most;
    }
    for (int i = 0; i < tb_graph_n_buffers(g); i++) {
        int64_t n = tb_numel(&tb_graph_buffer(g, i)->t);
        most = n > most ? n : most;
    }
    float *host = malloc((size_t)most * sizeof *host);
    TB_CHECK(host != NULL, TB_ERR_NOMEM, "model init: out of memory (%lld floats)", (long long)most);
    int rc = TB_OK;
    for (int i = 0; rc == TB_OK && i < tb_graph_n_params(g); i++) {
        const tb_param *p = tb_graph_param(g, i);
        tb_rng r;
        tb_rng_seed(&r, seed, (uint64_t)i);
        fill_param(host, tb_numel(&p->master), p, init, &r);
        rc = tb_graph_param_upload(g, i, host);
    }
    for (int i = 0; rc == TB_OK && i < tb_graph_n_buffers(g); i++) {
        tb_buffer *b = tb_graph_buffer(g, i);
        int64_t n = tb_numel(&b->t);
        float v = ends_with(b->name, "running_var") ? 1.0f : 0.0f;
        for (int64_t k = 0; k < n; k++)
            host[k] = v;
        rc = tb_upload(tb_graph_backend(g), &b->t, host);
    }
    free(host);
    TB_TRY(rc);
    tb_graph_set_bn_batches_tracked(g, 0);
    return tb_graph_sync_params(g);
}
