/* One FCN training step: see seg_step.h. */
#include "harness/train/seg_step.h"

#include <string.h>

#include "harness/train/trainer_common.h"
#include "kernels/error.h"
#include "kernels/ops.h"

int tb_seg_step_init(tb_seg_step *s, tb_graph *g, const tb_fcn *net, const tb_fcn_spec *spec,
                     const tb_run_config *cfg)
{
    memset(s, 0, sizeof *s);
    /* the loaders' images are f32 and go into the input as they are */
    TB_CHECK(tb_graph_dtype(g) == TB_F32, TB_ERR_UNSUPPORTED, "segmentation: only fp32 graphs are supported");
    s->be = tb_graph_backend(g);
    s->g = g;
    s->net = *net;
    s->classes = spec->backbone.classes;
    s->aux = spec->aux;
    s->aux_weight = cfg->segmentation.aux_weight;
    s->sgd = (tb_sgd_params){.momentum = (float)cfg->optim.momentum, .weight_decay = (float)cfg->optim.weight_decay,
                             .grad_scale = 1.0f, .nesterov = cfg->optim.nesterov};
    const tb_tensor *out = tb_graph_output_at(g, net->out_main);
    int64_t pixels = tb_numel(out) / s->classes;
    s->labels = tb_tensor_1d(NULL, TB_I32, pixels);
    s->probs_main = tb_tensor_2d(NULL, TB_F32, pixels, s->classes);
    s->probs_aux = tb_tensor_2d(NULL, TB_F32, s->aux ? pixels : 1, s->classes);
    s->losses = tb_tensor_1d(NULL, TB_F32, 2);
    tb_tensor *all[] = {&s->labels, &s->probs_main, &s->probs_aux, &s->losses};
    return tb_trainer_alloc_tensors(s->be, &s->mem, all, 4);
}

void tb_seg_step_destroy(tb_seg_step *s)
{
    if (s->be)
        tb_free(s->be, s->mem);
    s->mem = NULL;
}

static tb_tensor per_pixel(const tb_tensor *t, int classes)
{
    return tb_tensor_2d(t->data, t->dtype, tb_numel(t) / classes, classes);
}

static tb_tensor loss_slot(tb_seg_step *s, int i) { return tb_tensor_1d((float *)s->losses.data + i, TB_F32, 1); }

int tb_seg_step_run(tb_seg_step *s, const float *images, const int32_t *labels, double lr, float *loss)
{
    tb_graph *g = s->g;
    TB_TRY(tb_upload(s->be, tb_graph_input(g), images));
    TB_TRY(tb_upload(s->be, &s->labels, labels));
    TB_TRY(tb_graph_forward(g, true));
    tb_tensor main = per_pixel(tb_graph_output_at(g, s->net.out_main), s->classes);
    tb_tensor l0 = loss_slot(s, 0), l1 = loss_slot(s, 1);
    TB_TRY(tb_softmax_ce_forward(s->be, &l0, &s->probs_main, &main, &s->labels, NULL, 1.0f));
    TB_TRY(tb_fill(s->be, &l1, 0.0f));
    if (s->aux) {
        tb_tensor aux = per_pixel(tb_graph_output_at(g, s->net.out_aux), s->classes);
        TB_TRY(tb_softmax_ce_forward(s->be, &l1, &s->probs_aux, &aux, &s->labels, NULL, 1.0f));
    }
    TB_TRY(tb_graph_zero_grads(g));
    tb_tensor dmain = per_pixel(tb_graph_output_grad_at(g, s->net.out_main), s->classes);
    TB_TRY(tb_softmax_ce_backward(s->be, &dmain, &s->probs_main, &s->labels, NULL, 1.0f, 1.0f));
    if (s->aux) {
        tb_tensor daux = per_pixel(tb_graph_output_grad_at(g, s->net.out_aux), s->classes);
        TB_TRY(tb_softmax_ce_backward(s->be, &daux, &s->probs_aux, &s->labels, NULL, 1.0f, s->aux_weight));
    }
    TB_TRY(tb_graph_backward(g));
    tb_sgd_params p = s->sgd;
    p.lr = (float)lr;
    TB_TRY(tb_trainer_sgd(g, &p));
    float host[2];
    TB_TRY(tb_download(s->be, host, &s->losses));
    *loss = host[0] + s->aux_weight * host[1];
    return TB_OK;
}
