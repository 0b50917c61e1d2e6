/* The segmentation trainer: FCN on a dilated ResNet (models/fcn.h) on the
 * shared loop of DESIGN.md: epochs of data -> forward -> pixel-wise softmax
 * CE (ignored pixels skipped; the auxiliary head's loss weighted by
 * segmentation.aux_weight) -> backward -> SGD -> schedule (the paper's FCN
 * uses poly), evaluation every optim.eval_every epochs and after the last.
 *
 * Decisions:
 *  - Metrics are accumulated as one confusion histogram over the whole
 *    evaluation set (harness/eval/seg_metrics.h): pixacc (%), miou (%) as
 *    the mean IoU over ALL classes (GluonCV's and the paper's convention: a
 *    class absent from both prediction and ground truth counts 0),
 *    miou_present (%) over the classes present (mmsegmentation's), and
 *    IoU_<class> (%) for every class present.
 *  - Epoch records carry the training loss (main + aux_weight * aux), lr,
 *    seconds and images/s; the val_* columns stay NULL (pixel accuracy is
 *    not a top-1) and the last evaluation goes into the final metrics.
 *  - Evaluation is GluonCV's "val" mode: shorter side to crop_size, centre
 *    crop (harness/data/seg_loader.h); predictions are the argmax of the
 *    main head's upsampled logits.
 *  - fp32 only; classification tricks (label smoothing, mixup, distillation,
 *    EMA, fp16/bf16) are errors here, never ignored.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/data/seg_dataset.h"
#include "harness/data/seg_loader.h"
#include "harness/eval/seg_metrics.h"
#include "harness/train/seg_step.h"
#include "harness/train/trainer.h"
#include "harness/train/trainer_common.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "models/fcn.h"
#include "tricks/decay_mask.h"
#include "tricks/schedule.h"
#include "tricks/zero_gamma.h"

typedef struct seg_run {
    tb_trainer_frame f;       /* first: the run as tb_trainer_main sees it */
    tb_seg_dataset *train_ds, *val_ds;
    tb_seg_loader *train_ld, *val_ld;
    int n, h, w, c, classes;
    tb_fcn_spec spec;
    tb_fcn net;
    tb_schedule sched;
    int64_t steps_per_epoch;
    tb_seg_step step;
    bool step_ready;
    tb_tensor pred;           /* i32 {n*h*w}: one evaluation batch's class per pixel, on the device */
    void *pred_mem;
    int32_t *host_pred;
    tb_seg_metrics *metrics;
} seg_run;


/* -------------------------------------------------------------------- data */

static int open_split(seg_run *r, const char *root, bool train, tb_seg_dataset **out)
{
    const tb_data_config *d = &r->f.cfg->data;
    const char *sets = train ? d->train_sets : d->val_sets;
    if (!strcmp(d->dataset, "fashion-scenes")) {
        const tb_det_format *fmt = tb_det_format_find(d->dataset);
        return tb_seg_dataset_open_det(out, root, sets[0] ? sets : tb_trainer_default_sets(d->dataset, train), fmt);
    }
    TB_CHECK(!sets[0], TB_ERR_INVALID, "data.%s: ade20k reads its training and validation folders, no sets",
             train ? "train_sets" : "val_sets");
    return tb_seg_dataset_open(out, d->dataset, root, train);
}

static int open_data(void *run)
{
    seg_run *r = run;
    const tb_run_config *cfg = r->f.cfg;
    const tb_segmentation_config *s = &cfg->segmentation;
    char root[TB_PATH_MAX];
    TB_TRY(tb_trainer_scenes_root(cfg, root, sizeof root));
    TB_TRY(open_split(r, root, true, &r->train_ds));
    TB_TRY(open_split(r, root, false, &r->val_ds));
    tb_seg_loader_options lo = {.batch = cfg->optim.batch, .train = true, .base_size = s->base_size,
                                .crop_size = s->crop_size, .seed = cfg->seed, .workers = cfg->data.workers,
                                .alloc = tb_trainer_loader_alloc, .free = tb_trainer_loader_free, .alloc_user = r->f.be};
    TB_TRY(tb_seg_loader_create(&r->train_ld, r->train_ds, &lo));
    lo.train = false;
    TB_TRY(tb_seg_loader_create(&r->val_ld, r->val_ds, &lo));
    tb_seg_loader_shape(r->train_ld, &r->n, &r->h, &r->w, &r->c);
    r->classes = tb_seg_dataset_classes(r->train_ds);
    r->steps_per_epoch = tb_seg_loader_steps_per_epoch(r->train_ld);
    if (!r->f.opt->quiet)
        fprintf(stderr, "data: %s (%s), %lld training / %lld validation images, %d classes, crop %dx%dx%d, %d workers\n",
                cfg->data.dataset, root, (long long)tb_seg_dataset_count(r->train_ds),
                (long long)tb_seg_dataset_count(r->val_ds), r->classes, r->h, r->w, r->c,
                tb_seg_loader_workers(r->train_ld));
    return TB_OK;
}

/* ------------------------------------------------------------------- model */

static int build_network(void *run)
{
    seg_run *r = run;
    const tb_run_config *cfg = r->f.cfg;
    tb_fcn_spec *s = &r->spec;
    memset(s, 0, sizeof *s);
    TB_TRY(tb_model_spec_from_config(&s->backbone, &cfg->model, r->h, r->c, r->classes));
    s->aux = cfg->segmentation.aux;
    s->head_dropout = cfg->segmentation.head_dropout;
    s->freeze_bn = cfg->segmentation.freeze_bn;
    TB_TRY(tb_graph_create(&r->f.g, r->f.be, TB_F32, cfg->optim.batch));
    tb_graph_set_seed(r->f.g, cfg->seed);
    TB_TRY(tb_fcn_build(r->f.g, s, &r->net));
    TB_TRY(tb_graph_finalize(r->f.g, true));
    TB_TRY(tb_fcn_init(r->f.g, s, cfg->seed));
    bool pretrained = tb_trainer_pretrained(cfg, r->f.opt);
    if (cfg->tricks.zero_gamma) {
        TB_CHECK(!pretrained, TB_ERR_INVALID,
                 "tricks.zero_gamma initialises a backbone from scratch; this run loads its weights");
        int zeroed = 0;
        TB_TRY(tb_trick_zero_gamma(r->f.g, &zeroed));
    }
    TB_TRY(tb_trainer_load_weights(r->f.g, cfg, r->f.opt, tb_fcn_backbone_prefixes, tb_fcn_n_backbone_prefixes));
    if (!r->f.opt->quiet)
        fprintf(stderr, "model: FCN, dilated %s-%c backbone (width %g), feature map %dx%d, %s head, %s\n",
                s->backbone.name, s->backbone.variant, (double)s->backbone.width, r->net.feat_h, r->net.feat_w,
                s->aux ? "main + auxiliary" : "main", pretrained ? "pretrained backbone" : "backbone from scratch");
    return TB_OK;
}

static int setup_training(void *run)
{
    seg_run *r = run;
    const tb_run_config *cfg = r->f.cfg;
    TB_TRY(tb_trick_decay_mask(r->f.g, cfg->tricks.no_bias_decay));
    TB_TRY(tb_schedule_init(&r->sched, &cfg->optim, &cfg->schedule, r->steps_per_epoch));
    TB_TRY(tb_seg_step_init(&r->step, r->f.g, &r->net, &r->spec, cfg));
    r->step_ready = true;
    int64_t pixels = (int64_t)r->n * r->h * r->w;
    r->pred = tb_tensor_1d(NULL, TB_I32, pixels);
    tb_tensor *pred[] = {&r->pred};
    TB_TRY(tb_trainer_alloc_tensors(r->f.be, &r->pred_mem, pred, 1));
    r->host_pred = malloc((size_t)pixels * sizeof(int32_t));
    TB_CHECK(r->host_pred, TB_ERR_NOMEM, "segmentation trainer: out of memory");
    return tb_seg_metrics_create(&r->metrics, r->classes, -1);
}

/* ------------------------------------------------------------- evaluation */

static int evaluate(seg_run *r)
{
    tb_seg_metrics_reset(r->metrics);
    tb_tensor *logits = tb_graph_output_at(r->f.g, r->net.out_main);
    int64_t per_image = (int64_t)r->h * r->w;
    TB_TRY(tb_seg_loader_start_epoch(r->val_ld, 0));
    for (;;) {
        tb_seg_batch *b = NULL;
        TB_TRY(tb_seg_loader_next(r->val_ld, &b));
        if (!b)
            break;
        int rc = tb_upload(r->f.be, tb_graph_input(r->f.g), b->images);
        if (rc == TB_OK)
            rc = tb_graph_forward(r->f.g, false);
        /* the class of each pixel where the logits are: one int per pixel
         * crosses to the host, not the classes' logits */
        if (rc == TB_OK)
            rc = tb_argmax(r->f.be, &r->pred, logits);
        if (rc == TB_OK)
            rc = tb_download(r->f.be, r->host_pred, &r->pred);
        if (rc == TB_OK)
            rc = tb_seg_metrics_add(r->metrics, r->host_pred, TB_I32, b->labels, TB_I32, per_image * b->valid);
        tb_trainer_settle(r->f.be, rc);
        tb_seg_loader_release(r->val_ld, b);
        TB_TRY(rc);
    }
    return TB_OK;
}

static void record_metrics(seg_run *r)
{
    tb_train_result *res = r->f.res;
    tb_result_set_metric(res, "pixacc", 100.0 * tb_seg_pixel_accuracy(r->metrics));
    tb_result_set_metric(res, "miou", 100.0 * tb_seg_miou(r->metrics, TB_SEG_MIOU_ALL));
    tb_result_set_metric(res, "miou_present", 100.0 * tb_seg_miou(r->metrics, TB_SEG_MIOU_PRESENT));
    for (int c = 0; c < r->classes; c++) {
        double iou = tb_seg_class_iou(r->metrics, c);
        if (isnan(iou))
            continue;
        char name[48];
        snprintf(name, sizeof name, "IoU_%s", tb_seg_dataset_class_name(r->train_ds, c));
        tb_result_set_metric(res, name, 100.0 * iou);
    }
}

/* --------------------------------------------------------------- training */

static int loop_start(void *user, int epoch) { return tb_seg_loader_start_epoch(((seg_run *)user)->train_ld, epoch); }

static int loop_next(void *user, void **batch)
{
    tb_seg_batch *b = NULL;
    int rc = tb_seg_loader_next(((seg_run *)user)->train_ld, &b);
    *batch = b;
    return rc;
}

static void loop_release(void *user, void *batch) { tb_seg_loader_release(((seg_run *)user)->train_ld, batch); }

static int loop_step(void *user, void *batch, int64_t iter, double lr, float *loss)
{
    (void)iter;
    const tb_seg_batch *b = batch;
    return tb_seg_step_run(&((seg_run *)user)->step, b->images, b->labels, lr, loss);
}

static int loop_evaluate(void *user, int epoch)
{
    seg_run *r = user;
    TB_TRY(evaluate(r));
    if (!r->f.opt->quiet)
        fprintf(stderr, "epoch %d: pixacc %.2f%%, mIoU %.2f%% (all classes)\n", epoch,
                100.0 * tb_seg_pixel_accuracy(r->metrics), 100.0 * tb_seg_miou(r->metrics, TB_SEG_MIOU_ALL));
    return TB_OK;
}

static int run_epochs(void *run)
{
    seg_run *r = run;
    tb_epoch_loop loop = {.cfg = r->f.cfg, .opt = r->f.opt, .cb = r->f.cb, .res = r->f.res, .be = r->f.be, .sched = &r->sched,
                          .steps_per_epoch = r->steps_per_epoch, .user = r, .start_epoch = loop_start,
                          .next = loop_next, .release = loop_release, .step = loop_step, .evaluate = loop_evaluate};
    TB_TRY(tb_trainer_epoch_loop(&loop));
    if (r->f.res->outcome == TB_RUN_FINISHED) {
        record_metrics(r);
        tb_result_set_metric(r->f.res, "params", (double)tb_graph_param_elements(r->f.g));
    }
    return TB_OK;
}


static void cleanup(void *run)
{
    seg_run *r = run;
    tb_seg_loader_destroy(r->train_ld);
    tb_seg_loader_destroy(r->val_ld);
    tb_seg_dataset_close(r->train_ds);
    tb_seg_dataset_close(r->val_ds);
    if (r->step_ready)
        tb_seg_step_destroy(&r->step);
    tb_seg_metrics_destroy(r->metrics);
    if (r->pred_mem)
        tb_free(r->f.be, r->pred_mem);
    free(r->host_pred);
}

int tb_train_segmentation(const tb_run_config *cfg, const tb_train_options *opt, const tb_train_callbacks *cb,
                           tb_train_result *res)
{
    static const tb_trainer_stages stages = {.open_data = open_data, .build = build_network, .setup = setup_training,
                                             .train = run_epochs, .cleanup = cleanup};
    seg_run r;
    memset(&r, 0, sizeof r);
    return tb_trainer_main(&r.f, TB_TASK_SEGMENTATION, cfg, opt, cb, res, &stages);
}
