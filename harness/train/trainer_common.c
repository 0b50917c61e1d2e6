/* Shared by the trainers: see trainer_common.h. */
#include "harness/train/trainer_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/clock.h"
#include "harness/data/fashion_scenes.h"
#include "harness/stats.h"
#include "kernels/error.h"
#include "models/safetensors.h"

int tb_trainer_open_backend(const tb_run_config *cfg, const tb_train_options *opt, tb_train_result *res,
                            tb_backend **out)
{
    tb_device_kind kind;
    const char *dev = opt->device ? opt->device : cfg->device;
    TB_TRY(tb_device_parse(dev[0] ? dev : "auto", &kind));
    char note[256];
    TB_TRY(tb_backend_create(out, kind, opt->threads, note, sizeof note));
    if (!opt->quiet)
        fprintf(stderr, "%s\n", note);
    snprintf(res->device, sizeof res->device, "%s", (*out)->name);
    return TB_OK;
}

int tb_trainer_loader_alloc(void *user, void **p, size_t bytes)
{
    tb_backend *be = user;
    return be->iface.alloc_host(be, p, bytes);
}

void tb_trainer_loader_free(void *user, void *p)
{
    tb_backend *be = user;
    be->iface.free_host(be, p);
}

void tb_trainer_settle(tb_backend *be, int rc)
{
    if (rc == TB_OK)
        return;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", tb_errmsg());
    if (tb_synchronize(be) != TB_OK) /* the step's error stays the one reported */
        tb_fail(rc, "%s", msg);
}

tb_trainer_fn tb_trainer_for_task(tb_task task)
{
    switch (task) {
    case TB_TASK_CLASSIFICATION: return tb_train_classification;
    case TB_TASK_DETECTION: return tb_train_detection;
    case TB_TASK_SEGMENTATION: return tb_train_segmentation;
    }
    tb_fail(TB_ERR_NOT_IMPLEMENTED, "task %d has no trainer", (int)task);
    return NULL;
}

const char *tb_trainer_default_sets(const char *dataset, bool train)
{
    if (!strcmp(dataset, "voc"))
        return train ? "VOC2007:trainval,VOC2012:trainval" : "VOC2007:test";
    return train ? TB_FASHION_SCENES_FOLDER ":train" : TB_FASHION_SCENES_FOLDER ":test";
}

int tb_trainer_scenes_root(const tb_run_config *cfg, char *root, size_t size)
{
    const tb_data_config *d = &cfg->data;
    bool scenes = !strcmp(d->dataset, "fashion-scenes");
    if (d->root[0])
        snprintf(root, size, "%s", d->root);
    else if (scenes)
        snprintf(root, size, "data/fashion-scenes-%d-%d-%d", d->scene_size, d->scenes_train, d->scenes_val);
    else
        return tb_fail(TB_ERR_INVALID, "data.root: give the %s directory",
                       !strcmp(d->dataset, "voc") ? "VOCdevkit (the one holding VOC2007/ and VOC2012/)"
                                                  : "ADEChallengeData2016");
    if (!scenes)
        return TB_OK;
    tb_fashion_scenes_options fo;
    tb_fashion_scenes_defaults(&fo);
    fo.train_count = d->scenes_train;
    fo.test_count = d->scenes_val;
    fo.size = d->scene_size;
    return tb_fashion_scenes_ensure(&fo, root);
}

static bool same_backbone(const tb_model_config *a, const tb_model_config *b)
{
    return !strcmp(a->name, b->name) && a->variant == b->variant && !strcmp(a->stem, b->stem) &&
           a->width == b->width;
}

static const char *backbone_path(const tb_run_config *cfg, const tb_train_options *opt)
{
    return opt->backbone_checkpoint ? opt->backbone_checkpoint : cfg->model.backbone_from;
}

bool tb_trainer_pretrained(const tb_run_config *cfg, const tb_train_options *opt)
{
    const char *bb = backbone_path(cfg, opt);
    return (bb && bb[0]) || cfg->model.checkpoint[0];
}

int tb_trainer_load_weights(tb_graph *g, const tb_run_config *cfg, const tb_train_options *opt,
                            const char *const *prefixes, int n_prefixes)
{
    const tb_model_config *mc = &cfg->model, *bm = opt->backbone_model;
    const char *bb = backbone_path(cfg, opt);
    if (bm)
        TB_CHECK(same_backbone(mc, bm), TB_ERR_INVALID,
                 "model: %s %c stem %s width %g differs from the backbone run's %s %c stem %s width %g "
                 "(model.backbone_from %s)",
                 mc->name, mc->variant, mc->stem, (double)mc->width, bm->name, bm->variant, bm->stem,
                 (double)bm->width, mc->backbone_from);
    if (bb && bb[0]) {
        TB_CHECK(strstr(bb, ".safetensors") != NULL, TB_ERR_INVALID,
                 "model.backbone_from '%s': not a .safetensors file, and no run resolved it (a run label "
                 "\"MATRIX/LABEL\" needs `trickbench run` and the database holding that run)",
                 bb);
        TB_TRY(tb_safetensors_load_prefixes(g, bb, prefixes, n_prefixes));
    }
    if (mc->checkpoint[0])
        TB_TRY(tb_safetensors_load(g, mc->checkpoint));
    return TB_OK;
}

static bool stop_requested(const tb_epoch_loop *l) { return l->cb && l->cb->should_stop && l->cb->should_stop(l->cb->user); }

static int train_epoch(const tb_epoch_loop *l, int epoch, tb_epoch_record *rec, bool *diverged, bool *stopped)
{
    int batch = l->cfg->optim.batch;
    double loss_sum = 0.0, lr = 0.0;
    int64_t steps = 0;
    TB_TRY(l->start_epoch(l->user, epoch));
    TB_TRY(tb_synchronize(l->be));
    double t0 = tb_seconds_now();
    for (;;) {
        void *b = NULL;
        TB_TRY(l->next(l->user, &b));
        if (!b)
            break;
        int64_t iter = (int64_t)epoch * l->steps_per_epoch + steps;
        lr = tb_schedule_lr(l->sched, iter);
        float loss = NAN;
        int rc = l->step(l->user, b, iter, lr, &loss);
        tb_trainer_settle(l->be, rc);
        l->release(l->user, b);
        TB_TRY(rc);
        steps++;
        if (!isfinite(loss)) {
            *diverged = true;
            break;
        }
        loss_sum += loss;
        if (l->cb && l->cb->on_progress) {
            double el = tb_seconds_now() - t0;
            l->cb->on_progress(l->cb->user, epoch + 1, steps, l->steps_per_epoch, loss,
                               el > 0 ? (double)steps * batch / el : 0.0);
        }
        if (stop_requested(l)) {
            *stopped = true;
            break;
        }
    }
    TB_TRY(tb_synchronize(l->be));
    double seconds = tb_seconds_now() - t0;
    rec->epoch = epoch + 1;
    rec->lr = lr;
    rec->train_loss = steps ? loss_sum / (double)steps : NAN;
    rec->train_top1 = NAN;
    rec->seconds = seconds;
    rec->images_per_sec = seconds > 0 ? (double)steps * batch / seconds : 0.0;
    rec->loss_scale = 1.0;
    return TB_OK;
}

static int run_epochs(const tb_epoch_loop *l, double *seconds, double *ips)
{
    const tb_run_config *cfg = l->cfg;
    tb_train_result *res = l->res;
    int every = cfg->optim.eval_every > 0 ? cfg->optim.eval_every : 1;
    for (int e = 0; e < cfg->optim.epochs; e++) {
        tb_epoch_record rec;
        memset(&rec, 0, sizeof rec);
        rec.val_loss = rec.val_top1 = rec.val_top5 = NAN;
        bool diverged = false, stopped = false;
        TB_TRY(train_epoch(l, e, &rec, &diverged, &stopped));
        if (diverged) {
            res->outcome = TB_RUN_DIVERGED;
            res->diverged_epoch = e + 1;
            return TB_OK;
        }
        if (stopped) {
            res->outcome = TB_RUN_INTERRUPTED;
            return TB_OK;
        }
        seconds[e] = rec.seconds;
        ips[e] = rec.images_per_sec;
        if ((e + 1) % every == 0 || e + 1 == cfg->optim.epochs) {
            TB_TRY(l->evaluate(l->user, e + 1));
            rec.evaluated = true;
        }
        res->epochs_done = e + 1;
        if (l->cb && l->cb->on_epoch)
            TB_TRY(l->cb->on_epoch(l->cb->user, &rec));
    }
    int n = cfg->optim.epochs;
    tb_result_set_metric(res, "epoch_seconds_median", tb_stats_median(seconds, n));
    tb_result_set_metric(res, "images_per_sec_median", tb_stats_median(ips, n));
    res->outcome = TB_RUN_FINISHED;
    return TB_OK;
}

int tb_trainer_epoch_loop(const tb_epoch_loop *l)
{
    size_t n = (size_t)l->cfg->optim.epochs + 1;
    double *seconds = calloc(n, sizeof *seconds), *ips = calloc(n, sizeof *ips);
    int rc = seconds && ips ? run_epochs(l, seconds, ips) : tb_fail(TB_ERR_NOMEM, "trainer: out of memory");
    free(seconds);
    free(ips);
    return rc;
}

int tb_trainer_save_checkpoint(tb_graph *g, const tb_train_options *opt, tb_train_result *res)
{
    const char *path = opt->checkpoint_path;
    if (!path || !path[0] || res->outcome != TB_RUN_FINISHED)
        return TB_OK;
    TB_TRY(tb_safetensors_save(g, path));
    snprintf(res->checkpoint, sizeof res->checkpoint, "%s", path);
    return TB_OK;
}

int tb_trainer_check_transfer_config(const tb_run_config *cfg)
{
    const tb_tricks_config *t = &cfg->tricks;
    const char *bad = t->precision != TB_PREC_FP32  ? "tricks.precision (only fp32)"
                      : t->label_smoothing > 0      ? "tricks.label_smoothing"
                      : t->mixup_alpha > 0          ? "tricks.mixup_alpha"
                      : t->cutmix_alpha > 0         ? "tricks.cutmix_alpha"
                      : t->distill.enabled          ? "tricks.distill"
                      : t->ema > 0                  ? "tricks.ema"
                      : cfg->optim.grad_clip > 0    ? "optim.grad_clip"
                      : cfg->data.holdout > 0       ? "data.holdout"
                      : cfg->data.train_limit > 0   ? "data.train_limit"
                      : cfg->data.val_limit > 0     ? "data.val_limit"
                      : cfg->data.random_erasing > 0 ? "data.random_erasing"
                      : cfg->model.dropout > 0      ? "model.dropout"
                                                    : NULL;
    if (bad)
        return tb_fail(TB_ERR_UNSUPPORTED,
                       "%s: not implemented for the %s task (it trains in fp32 with the lr schedules, zero_gamma "
                       "and no_bias_decay)",
                       bad, tb_task_name(cfg->task));
    return TB_OK;
}

int tb_trainer_sgd(tb_graph *g, const tb_sgd_params *p)
{
    tb_backend *be = tb_graph_backend(g);
    for (int gi = 0; gi < 2; gi++) {
        tb_param_group *grp = tb_graph_group(g, gi);
        if (grp)
            TB_TRY(tb_sgd_step(be, &grp->master, gi == TB_GROUP_LOWP ? &grp->value : NULL, &grp->momentum,
                               &grp->grad, &grp->decay_mask, NULL, p));
    }
    return TB_OK;
}

int tb_trainer_alloc_tensors(tb_backend *be, void **mem, tb_tensor *const *ts, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (tb_nbytes(ts[i]) + 255) & ~(size_t)255;
    TB_TRY(tb_alloc(be, mem, total));
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        ts[i]->data = (char *)*mem + off;
        off += (tb_nbytes(ts[i]) + 255) & ~(size_t)255;
    }
    return TB_OK;
}

int tb_trainer_main(tb_trainer_frame *f, tb_task task, const tb_run_config *cfg, const tb_train_options *opt,
                    const tb_train_callbacks *cb, tb_train_result *res, const tb_trainer_stages *stages)
{
    static const tb_train_options default_opt = {0};
    memset(res, 0, sizeof *res);
    res->outcome = TB_RUN_FAILED;
    TB_CHECK(cfg->task == task, TB_ERR_INVALID, "%s trainer: the run's task is %s", tb_task_name(task),
             tb_task_name(cfg->task));
    TB_TRY(tb_trainer_check_transfer_config(cfg));
    void *run = f; /* the frame is the run struct's first member */
    *f = (tb_trainer_frame){.cfg = cfg, .opt = opt ? opt : &default_opt, .cb = cb, .res = res};
    int rc = tb_trainer_open_backend(cfg, f->opt, res, &f->be);
    if (rc == TB_OK)
        rc = stages->open_data(run);
    if (rc == TB_OK)
        rc = stages->build(run);
    if (rc == TB_OK)
        rc = stages->setup(run);
    if (rc == TB_OK)
        rc = stages->train(run);
    if (rc == TB_OK)
        rc = tb_trainer_save_checkpoint(f->g, f->opt, res);
    if (rc != TB_OK)
        res->outcome = TB_RUN_FAILED;
    stages->cleanup(run);
    tb_graph_destroy(f->g);
    if (f->be)
        tb_backend_destroy(f->be);
    return rc;
}
