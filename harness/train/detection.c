/* The detection trainer: Faster R-CNN (models/faster_rcnn.h) on the shared
 * loop of DESIGN.md: epochs of data -> forward -> losses -> backward -> SGD
 * -> schedule, per-epoch wall time of the training pass alone, evaluation
 * (VOC mAP, harness/eval/voc_map.h) every optim.eval_every epochs and after
 * the last.
 *
 * Decisions:
 *  - Epoch records carry the training loss (the sum of the four losses), lr,
 *    seconds and images/s; mAP is not a top-1, so the val_* columns stay
 *    NULL and the mAP of the last evaluation goes into the final metrics:
 *    mAP (VOC07 11-point, %, the paper's Table 8), mAP_area (VOC2010+ area,
 *    %), and AP_<class> (11-point, %) for every class with ground truth.
 *  - Evaluation is on the whole validation set list (VOC: VOC2007 test, as
 *    the paper; fashion-scenes: its test scenes), in canvas coordinates
 *    (IoU does not change under the resize), no flip.
 *  - VOC's difficult objects are ordinary targets in training (the RPN and
 *    box head learn them); only the evaluation treats them specially.
 *  - Only what the detection task implements is accepted: fp32, SGD, the
 *    lr schedules; label smoothing, mixup/cutmix, distillation, EMA and
 *    fp16/bf16 are classification tricks here and are errors, never ignored.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/data/det_dataset.h"
#include "harness/data/det_loader.h"
#include "harness/eval/voc_map.h"
#include "harness/train/det_step.h"
#include "harness/train/trainer.h"
#include "harness/train/trainer_common.h"
#include "kernels/error.h"
#include "kernels/rng.h"
#include "models/faster_rcnn.h"
#include "tricks/decay_mask.h"
#include "tricks/schedule.h"
#include "tricks/zero_gamma.h"

typedef struct det_run {
    tb_trainer_frame f;       /* first: the run as tb_trainer_main sees it */
    tb_det_dataset *train_ds, *val_ds;
    tb_det_loader *train_ld, *val_ld;
    int n, h, w, c, max_objects;
    tb_frcnn_spec spec;
    tb_frcnn net;
    tb_det_step step;
    bool step_ready;
    tb_schedule sched;
    int64_t steps_per_epoch;
    float *det_boxes, *det_scores;
    int32_t *det_classes, *det_count;
    tb_voc_eval *eval;
} det_run;

/* -------------------------------------------------------------------- data */

static int open_loader(det_run *r, tb_det_dataset *ds, bool train, tb_det_loader **out)
{
    const tb_detection_config *d = &r->f.cfg->detection;
    tb_det_loader_options lo = {.batch = r->f.cfg->optim.batch, .shuffle = train, .flip = train, .drop_last = train,
                                .min_side = d->min_side, .max_side = d->max_side, .max_objects = d->max_objects,
                                .seed = r->f.cfg->seed, .workers = r->f.cfg->data.workers,
                                .alloc = tb_trainer_loader_alloc, .free = tb_trainer_loader_free,
                                .alloc_user = r->f.be};
    if (d->max_side > 0) /* a fixed canvas for every image (static shapes, one for both splits) */
        lo.canvas_h = lo.canvas_w = (d->max_side + TB_DET_CANVAS_ALIGN - 1) / TB_DET_CANVAS_ALIGN * TB_DET_CANVAS_ALIGN;
    return tb_det_loader_create(out, ds, &lo);
}

static int open_data(void *run)
{
    det_run *r = run;
    const tb_run_config *cfg = r->f.cfg;
    const tb_det_format *fmt = tb_det_format_find(cfg->data.dataset);
    TB_CHECK(fmt != NULL, TB_ERR_INVALID, "data.dataset: '%s' is not a detection dataset", cfg->data.dataset);
    char root[TB_PATH_MAX];
    TB_TRY(tb_trainer_scenes_root(cfg, root, sizeof root));
    const char *tr = cfg->data.train_sets[0] ? cfg->data.train_sets : tb_trainer_default_sets(cfg->data.dataset, true);
    const char *va = cfg->data.val_sets[0] ? cfg->data.val_sets : tb_trainer_default_sets(cfg->data.dataset, false);
    TB_TRY(tb_det_dataset_open(&r->train_ds, root, tr, fmt));
    TB_TRY(tb_det_dataset_open(&r->val_ds, root, va, fmt));
    TB_CHECK(tb_det_dataset_count(r->train_ds) >= cfg->optim.batch, TB_ERR_INVALID,
             "optim.batch %d is larger than the training set (%lld images)", cfg->optim.batch,
             (long long)tb_det_dataset_count(r->train_ds));
    TB_TRY(open_loader(r, r->train_ds, true, &r->train_ld));
    TB_TRY(open_loader(r, r->val_ds, false, &r->val_ld));
    int vh, vw, vc, vg;
    tb_det_loader_shape(r->train_ld, &r->n, &r->h, &r->w, &r->c, &r->max_objects);
    tb_det_loader_shape(r->val_ld, &vc, &vh, &vw, &vc, &vg);
    TB_CHECK(vh == r->h && vw == r->w && vg == r->max_objects, TB_ERR_INVALID,
             "data: the validation canvas %dx%d (%d objects) differs from the training one %dx%d (%d); set "
             "detection.max_side (and detection.max_objects) so both use one canvas",
             vh, vw, vg, r->h, r->w, r->max_objects);
    r->steps_per_epoch = tb_det_loader_steps_per_epoch(r->train_ld);
    if (!r->f.opt->quiet)
        fprintf(stderr, "data: %s (%s), %lld training / %lld validation images, canvas %dx%dx%d, %d workers\n",
                cfg->data.dataset, root, (long long)tb_det_dataset_count(r->train_ds),
                (long long)tb_det_dataset_count(r->val_ds), r->h, r->w, r->c, tb_det_loader_workers(r->train_ld));
    return TB_OK;
}

/* ------------------------------------------------------------------- model */

static int build_network(void *run)
{
    det_run *r = run;
    const tb_run_config *cfg = r->f.cfg;
    const tb_detection_config *d = &cfg->detection;
    tb_frcnn_spec *s = &r->spec;
    memset(s, 0, sizeof *s);
    TB_CHECK(r->h == r->w, TB_ERR_INVALID, "data: canvas %dx%d; the backbone takes square inputs", r->h, r->w);
    TB_TRY(tb_model_spec_from_config(&s->backbone, &cfg->model, r->h, r->c, tb_det_dataset_classes(r->train_ds) + 1));
    s->images = cfg->optim.batch;
    s->height = r->h;
    s->width = r->w;
    s->anchors = d->anchor_sizes.n * d->anchor_ratios.n;
    s->rois = cfg->optim.batch * d->roi_batch;
    s->roi = (tb_roi_align_params){.pooled_h = d->roi_size, .pooled_w = d->roi_size,
                                   .sampling_ratio = d->roi_sampling, .aligned = d->roi_aligned};
    s->freeze_bn = d->freeze_bn;
    s->frozen_stages = d->frozen_stages;
    TB_TRY(tb_graph_create(&r->f.g, r->f.be, TB_F32, cfg->optim.batch));
    tb_graph_set_seed(r->f.g, cfg->seed);
    TB_TRY(tb_frcnn_build(r->f.g, s, &r->net));
    TB_TRY(tb_graph_finalize(r->f.g, true));
    TB_TRY(tb_frcnn_init(r->f.g, s, cfg->seed));
    bool pretrained = tb_trainer_pretrained(cfg, r->f.opt);
    if (cfg->tricks.zero_gamma) {
        TB_CHECK(!pretrained, TB_ERR_INVALID,
                 "tricks.zero_gamma initialises a backbone from scratch; this run loads its weights");
        int zeroed = 0;
        TB_TRY(tb_trick_zero_gamma(r->f.g, &zeroed));
    }
    TB_TRY(tb_trainer_load_weights(r->f.g, cfg, r->f.opt, tb_frcnn_backbone_prefixes, tb_frcnn_n_backbone_prefixes));
    if (!r->f.opt->quiet)
        fprintf(stderr, "model: Faster R-CNN, %s-%c backbone (width %g), feature map %dx%d (stride %g), %d anchors, %s\n",
                s->backbone.name, s->backbone.variant, (double)s->backbone.width, r->net.feat_h, r->net.feat_w,
                (double)r->net.stride, s->anchors, pretrained ? "pretrained backbone" : "backbone from scratch");
    return TB_OK;
}

static int setup_training(void *run)
{
    det_run *r = run;
    const tb_run_config *cfg = r->f.cfg;
    TB_TRY(tb_trick_decay_mask(r->f.g, cfg->tricks.no_bias_decay));
    TB_TRY(tb_schedule_init(&r->sched, &cfg->optim, &cfg->schedule, r->steps_per_epoch));
    tb_det_step_options so = {.images = cfg->optim.batch, .classes = r->spec.backbone.classes,
                              .max_objects = r->max_objects, .det = &cfg->detection,
                              .momentum = cfg->optim.momentum, .weight_decay = cfg->optim.weight_decay,
                              .nesterov = cfg->optim.nesterov};
    TB_TRY(tb_det_step_init(&r->step, r->f.g, &r->net, &so));
    r->step_ready = true;
    size_t nd = (size_t)cfg->optim.batch * (size_t)cfg->detection.test_max_detections;
    r->det_boxes = malloc(nd * 4 * sizeof(float));
    r->det_scores = malloc(nd * sizeof(float));
    r->det_classes = malloc(nd * sizeof(int32_t));
    r->det_count = malloc((size_t)cfg->optim.batch * sizeof(int32_t));
    TB_CHECK(r->det_boxes && r->det_scores && r->det_classes && r->det_count,
             TB_ERR_NOMEM, "detection trainer: out of memory");
    return tb_voc_eval_create(&r->eval, tb_det_dataset_classes(r->train_ds));
}

/* ------------------------------------------------------------- evaluation */

static tb_det_host_batch host_batch(const tb_det_batch *b)
{
    return (tb_det_host_batch){.images = b->images, .gt_boxes = b->boxes, .gt_labels = b->labels,
                               .gt_count = b->count, .im_size = b->im_size};
}

static int add_detections(det_run *r, const tb_det_batch *b)
{
    int dmax = r->f.cfg->detection.test_max_detections, g = b->max_objects;
    for (int i = 0; i < b->valid; i++)
        TB_TRY(tb_voc_eval_add_image(r->eval, b->boxes + (size_t)i * g * 4, b->labels + (size_t)i * g,
                                     b->difficult + (size_t)i * g, b->count[i], r->det_boxes + (size_t)i * dmax * 4,
                                     r->det_scores + (size_t)i * dmax, r->det_classes + (size_t)i * dmax,
                                     r->det_count[i]));
    return TB_OK;
}

static int evaluate(det_run *r)
{
    tb_voc_eval_reset(r->eval);
    TB_TRY(tb_det_loader_start_epoch(r->val_ld, 0));
    for (;;) {
        tb_det_batch *b = NULL;
        TB_TRY(tb_det_loader_next(r->val_ld, &b));
        if (!b)
            break;
        tb_det_host_batch hb = host_batch(b);
        int rc = tb_det_step_detect(&r->step, &hb, r->det_boxes, r->det_scores, r->det_classes, r->det_count);
        if (rc == TB_OK)
            rc = add_detections(r, b);
        tb_trainer_settle(r->f.be, rc);
        tb_det_loader_release(r->val_ld, b);
        TB_TRY(rc);
    }
    return TB_OK;
}

static void record_map(det_run *r)
{
    tb_train_result *res = r->f.res;
    double map = NAN, area = NAN;
    tb_voc_eval_map(r->eval, TB_VOC_AP_11POINT, &map, NULL);
    tb_voc_eval_map(r->eval, TB_VOC_AP_AREA, &area, NULL);
    tb_result_set_metric(res, "mAP", 100.0 * map);
    tb_result_set_metric(res, "mAP_area", 100.0 * area);
    for (int c = 0; c < tb_voc_eval_classes(r->eval); c++) {
        tb_voc_class_result cr;
        if (tb_voc_eval_class(r->eval, c, &cr) != TB_OK || cr.gt == 0)
            continue;
        char name[48];
        snprintf(name, sizeof name, "AP_%s", tb_det_dataset_class_name(r->train_ds, c));
        tb_result_set_metric(res, name, 100.0 * cr.ap_11point);
    }
}

/* --------------------------------------------------------------- training */

static int loop_start(void *user, int epoch) { return tb_det_loader_start_epoch(((det_run *)user)->train_ld, epoch); }

static int loop_next(void *user, void **batch)
{
    tb_det_batch *b = NULL;
    int rc = tb_det_loader_next(((det_run *)user)->train_ld, &b);
    *batch = b;
    return rc;
}

static void loop_release(void *user, void *batch) { tb_det_loader_release(((det_run *)user)->train_ld, batch); }

static int loop_step(void *user, void *batch, int64_t iter, double lr, float *loss)
{
    det_run *r = user;
    tb_det_host_batch hb = host_batch(batch);
    tb_det_step_result sr;
    /* each step samples anchors and RoIs from its own stream */
    TB_TRY(tb_det_step_run(&r->step, &hb, lr, tb_splitmix64(r->f.cfg->seed ^ tb_splitmix64((uint64_t)iter)), &sr));
    *loss = sr.loss;
    return TB_OK;
}

static int loop_evaluate(void *user, int epoch)
{
    det_run *r = user;
    TB_TRY(evaluate(r));
    if (!r->f.opt->quiet) {
        double map = NAN;
        tb_voc_eval_map(r->eval, TB_VOC_AP_11POINT, &map, NULL);
        fprintf(stderr, "epoch %d: mAP (VOC07 11-point) %.2f%%\n", epoch, 100.0 * map);
    }
    return TB_OK;
}

static int run_epochs(void *run)
{
    det_run *r = run;
    tb_epoch_loop loop = {.cfg = r->f.cfg, .opt = r->f.opt, .cb = r->f.cb, .res = r->f.res, .be = r->f.be, .sched = &r->sched,
                          .steps_per_epoch = r->steps_per_epoch, .user = r, .start_epoch = loop_start,
                          .next = loop_next, .release = loop_release, .step = loop_step, .evaluate = loop_evaluate};
    TB_TRY(tb_trainer_epoch_loop(&loop));
    if (r->f.res->outcome == TB_RUN_FINISHED) {
        record_map(r);
        tb_result_set_metric(r->f.res, "params", (double)tb_graph_param_elements(r->f.g));
    }
    return TB_OK;
}


static void cleanup(void *run)
{
    det_run *r = run;
    if (r->step_ready)
        tb_det_step_destroy(&r->step);
    tb_det_loader_destroy(r->train_ld);
    tb_det_loader_destroy(r->val_ld);
    tb_det_dataset_close(r->train_ds);
    tb_det_dataset_close(r->val_ds);
    tb_voc_eval_destroy(r->eval);
    free(r->det_boxes);
    free(r->det_scores);
    free(r->det_classes);
    free(r->det_count);
}

int tb_train_detection(const tb_run_config *cfg, const tb_train_options *opt, const tb_train_callbacks *cb,
                        tb_train_result *res)
{
    static const tb_trainer_stages stages = {.open_data = open_data, .build = build_network, .setup = setup_training,
                                             .train = run_epochs, .cleanup = cleanup};
    det_run r;
    memset(&r, 0, sizeof r);
    return tb_trainer_main(&r.f, TB_TASK_DETECTION, cfg, opt, cb, res, &stages);
}
