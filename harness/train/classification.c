/* The classification trainer: the shared loop of DESIGN.md.
 *   epochs of: data -> forward -> loss -> backward -> SGD step -> schedule,
 *   evaluation every optim.eval_every epochs (and after the last),
 *   per-epoch wall time of the training pass alone (after a device sync).
 * With opt->state_path the full training state is written after every
 * finished epoch and a run resumes from it (harness/train/resume.h).
 * The harness owns the store; this file reports through callbacks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/clock.h"
#include "harness/data/augment.h"
#include "harness/data/dataset.h"
#include "harness/data/loader.h"
#include "models/safetensors.h"
#include "harness/stats.h"
#include "harness/train/resume.h"
#include "harness/train/step.h"
#include "harness/train/trainer.h"
#include "harness/train/trainer_common.h"
#include "kernels/error.h"
#include "models/models.h"
#include "tricks/decay_mask.h"
#include "tricks/mix.h"
#include "tricks/schedule.h"
#include "tricks/zero_gamma.h"

typedef struct cls_run {
    const tb_run_config *cfg;
    const tb_train_options *opt;
    const tb_train_callbacks *cb;
    tb_train_result *res;
    tb_backend *be;
    tb_dataset *train_ds, *val_ds;
    tb_loader *train_ld, *val_ld;
    tb_model_spec spec;
    tb_graph *g, *teacher;
    tb_step step;
    bool step_ready;
    tb_schedule sched;
    tb_mix_config mix;
    int image, channels, classes; /* the input side and channels, the dataset's classes */
    int64_t steps_per_epoch;
    double *epoch_seconds, *epoch_ips;
    tb_eval_result last;      /* the latest evaluation */
    int start_epoch;          /* epochs finished before this process (a resumed run) */
    char hash[65];            /* the run's config hash, for the state file */
    bool state_failed;        /* a state write failed: warned once, not tried again */
    float *logits;            /* host copy of one evaluation batch's logits, f32 */
    void *logits_raw;         /* the same in the graph dtype */
} cls_run;

void tb_result_set_metric(tb_train_result *res, const char *name, double value)
{
    for (int i = 0; i < res->n_metrics; i++)
        if (!strcmp(res->metrics[i].name, name)) {
            res->metrics[i].value = value;
            return;
        }
    if (res->n_metrics >= TB_MAX_METRICS)
        return;
    tb_metric *m = &res->metrics[res->n_metrics++];
    snprintf(m->name, sizeof m->name, "%s", name);
    m->value = value;
}

static tb_dtype precision_dtype(tb_precision p)
{
    return p == TB_PREC_FP16 ? TB_F16 : p == TB_PREC_BF16 ? TB_BF16 : TB_F32;
}

/* ------------------------------------------------------------------ setup */



/* The loader of one split, its batches in memory the backend uploads from. */
static int open_loader(cls_run *r, bool train, tb_dataset *ds, tb_loader **ld)
{
    tb_loader_options lo;
    tb_loader_options_from_config(&lo, &r->cfg->data, r->cfg->optim.batch, train, r->cfg->seed);
    lo.alloc = tb_trainer_loader_alloc;
    lo.free = tb_trainer_loader_free;
    lo.alloc_user = r->be;
    return tb_loader_create(ld, ds, &lo);
}

/* The image side the network is built for: the loader's square output. */
static int image_side(cls_run *r, const tb_loader *ld)
{
    int n, h, w, c;
    tb_loader_shape(ld, &n, &h, &w, &c);
    TB_CHECK(h == w, TB_ERR_INVALID, "data: the loader produces %dx%d images; models need square inputs", h, w);
    r->image = h;
    r->channels = tb_dataset_channels(r->val_ds);
    r->classes = tb_dataset_classes(r->val_ds);
    return TB_OK;
}

/* Both splits for training; only the validation split for scoring saved
 * weights (a training loader would decode and augment for nothing). */
static int open_data(cls_run *r, bool train)
{
    int batch = r->cfg->optim.batch;
    if (!train) {
        TB_TRY(tb_dataset_open(&r->val_ds, &r->cfg->data, false));
        TB_TRY(open_loader(r, false, r->val_ds, &r->val_ld));
        return image_side(r, r->val_ld);
    }
    TB_TRY(tb_dataset_open(&r->train_ds, &r->cfg->data, true));
    TB_TRY(tb_dataset_open(&r->val_ds, &r->cfg->data, false));
    TB_CHECK(tb_dataset_count(r->train_ds) >= batch, TB_ERR_INVALID,
             "optim.batch %d is larger than the training split (%lld images)", batch,
             (long long)tb_dataset_count(r->train_ds));
    TB_TRY(open_loader(r, true, r->train_ds, &r->train_ld));
    TB_TRY(open_loader(r, false, r->val_ds, &r->val_ld));
    TB_TRY(image_side(r, r->train_ld));
    int n, h, w, c, vn, vh, vw, vc;
    tb_loader_shape(r->train_ld, &n, &h, &w, &c);
    tb_loader_shape(r->val_ld, &vn, &vh, &vw, &vc);
    TB_CHECK(vh == h && vw == w && vc == c, TB_ERR_INVALID,
             "data: validation images are %dx%dx%d, training images %dx%dx%d; the network takes one shape", vh, vw,
             vc, h, w, c);
    r->steps_per_epoch = tb_loader_steps_per_epoch(r->train_ld);
    if (!r->opt->quiet)
        fprintf(stderr, "data: %s, %lld training / %lld validation images, %dx%dx%d, augment %s, %d workers\n",
                tb_dataset_name(r->train_ds), (long long)tb_dataset_count(r->train_ds),
                (long long)tb_dataset_count(r->val_ds), h, w, c, tb_loader_augment_name(r->train_ld),
                tb_loader_workers(r->train_ld));
    return TB_OK;
}

/* The network of a model config; an inference one (a teacher, saved weights
 * scored) holds no gradients and shares its activation memory. */
static int build_network(cls_run *r, const tb_model_config *mc, const char *checkpoint, bool inference,
                         tb_graph **out, tb_model_spec *spec)
{
    TB_TRY(tb_model_spec_from_config(spec, mc, r->image, r->channels, r->classes));
    TB_TRY(tb_graph_create(out, r->be, precision_dtype(r->cfg->tricks.precision), r->cfg->optim.batch));
    tb_graph_set_seed(*out, r->cfg->seed);
    tb_g_set_inference(*out, inference);
    TB_TRY(tb_model_build(*out, spec));
    TB_TRY(tb_graph_finalize(*out, true));
    TB_TRY(tb_model_init(*out, spec->init, r->cfg->seed));
    if (checkpoint && checkpoint[0])
        TB_TRY(tb_safetensors_load(*out, checkpoint));
    return TB_OK;
}

static bool same_model(const tb_model_config *a, const tb_model_config *b)
{
    return !strcmp(a->name, b->name) && a->variant == b->variant && !strcmp(a->stem, b->stem) &&
           a->width == b->width && a->classes == b->classes && !strcmp(a->init, b->init) &&
           a->dropout == b->dropout && !strcmp(a->checkpoint, b->checkpoint);
}

static int setup_teacher(cls_run *r)
{
    const tb_distill_config *dc = &r->cfg->tricks.distill;
    if (!dc->enabled)
        return TB_OK;
    const char *path = r->opt->teacher_checkpoint ? r->opt->teacher_checkpoint : dc->teacher_checkpoint;
    TB_CHECK(path && path[0], TB_ERR_INVALID,
             "tricks.distill: no teacher checkpoint (give tricks.distill.teacher_checkpoint, or "
             "tricks.distill.teacher as the label of a run of the same matrix)");
    const tb_model_config *tm = &dc->teacher_model;
    if (r->opt->teacher_model) {
        /* a teacher named by run label brings its own architecture */
        tb_run_config defaults;
        tb_config_defaults(&defaults);
        TB_CHECK(same_model(&dc->teacher_model, &defaults.tricks.distill.teacher_model) ||
                     same_model(&dc->teacher_model, r->opt->teacher_model),
                 TB_ERR_INVALID,
                 "tricks.distill.teacher_model (%s %c width %g) contradicts the model of teacher run '%s' "
                 "(%s %c width %g): leave teacher_model out when the teacher is a run label",
                 dc->teacher_model.name, dc->teacher_model.variant, (double)dc->teacher_model.width, dc->teacher,
                 r->opt->teacher_model->name, r->opt->teacher_model->variant, (double)r->opt->teacher_model->width);
        tm = r->opt->teacher_model;
    }
    tb_model_spec spec;
    return build_network(r, tm, path, true, &r->teacher, &spec);
}

static int setup_training(cls_run *r)
{
    const tb_run_config *cfg = r->cfg;
    if (cfg->tricks.zero_gamma) {
        int zeroed = 0;
        TB_TRY(tb_trick_zero_gamma(r->g, &zeroed));
        TB_CHECK(zeroed > 0, TB_ERR_INVALID, "tricks.zero_gamma: model %s has no residual blocks",
                 cfg->model.name);
    }
    TB_TRY(tb_trick_decay_mask(r->g, cfg->tricks.no_bias_decay));
    TB_TRY(tb_schedule_init(&r->sched, &cfg->optim, &cfg->schedule, r->steps_per_epoch));
    r->mix = (tb_mix_config){.mixup_alpha = cfg->tricks.mixup_alpha, .cutmix_alpha = cfg->tricks.cutmix_alpha,
                             .off_epochs = cfg->tricks.mixup_off_epochs, .epochs = cfg->optim.epochs};
    TB_TRY(tb_mix_validate(&r->mix));
    tb_step_options so = {
        .label_smoothing = (float)cfg->tricks.label_smoothing,
        .mixing = cfg->tricks.mixup_alpha > 0 || cfg->tricks.cutmix_alpha > 0,
        .teacher = r->teacher,
        .temperature = (float)cfg->tricks.distill.temperature,
        .hard_weight = (float)cfg->tricks.distill.hard_weight,
        .fp16_scaling = cfg->tricks.precision == TB_PREC_FP16,
        .dynamic_scale = cfg->tricks.loss_scale_dynamic,
        .loss_scale = cfg->tricks.loss_scale,
        .momentum = cfg->optim.momentum,
        .weight_decay = cfg->optim.weight_decay,
        .nesterov = cfg->optim.nesterov,
        .grad_clip = cfg->optim.grad_clip,
        .ema_decay = cfg->tricks.ema,
        .capture = true,
    };
    TB_TRY(tb_step_init(&r->step, r->g, &so));
    r->step_ready = true;
    int k = r->spec.classes, n = cfg->optim.batch;
    r->logits = malloc(sizeof(float) * (size_t)n * (size_t)k);
    r->logits_raw = malloc(sizeof(float) * (size_t)n * (size_t)k);
    r->epoch_seconds = calloc((size_t)cfg->optim.epochs + 1, sizeof(double));
    r->epoch_ips = calloc((size_t)cfg->optim.epochs + 1, sizeof(double));
    TB_CHECK(r->logits && r->logits_raw && r->epoch_seconds && r->epoch_ips, TB_ERR_NOMEM,
             "trainer: out of memory");
    return TB_OK;
}

/* ------------------------------------------------------------- evaluation */

/* Adds one batch's loss and hits (rows < count) computed from f32 logits. */
static void score_batch(const float *logits, const int32_t *labels, int count, int k, double *loss_sum,
                        int64_t *hit1, int64_t *hit5)
{
    for (int i = 0; i < count; i++) {
        const float *z = logits + (size_t)i * k;
        float zmax = z[0];
        for (int j = 1; j < k; j++)
            zmax = z[j] > zmax ? z[j] : zmax;
        double se = 0.0;
        for (int j = 0; j < k; j++)
            se += exp((double)(z[j] - zmax));
        *loss_sum += log(se) - (double)(z[labels[i]] - zmax);
        int above = 0; /* classes scoring strictly higher than the true one */
        for (int j = 0; j < k; j++)
            above += z[j] > z[labels[i]];
        *hit1 += above == 0;
        *hit5 += above < 5;
    }
}

/* Where one validation batch's logits come from: the graph's input set from
 * host images, the forward run, the logits copied to r->logits (f32). */
typedef int (*logits_fn)(cls_run *r, void *ctx, const float *images);

/* The evaluation forward of the input already set, its logits into r->logits (f32). */
static int forward_logits(cls_run *r)
{
    tb_tensor *logits = tb_graph_output(r->g);
    TB_TRY(tb_graph_forward(r->g, false));
    TB_TRY(tb_download(r->be, r->logits_raw, logits));
    tb_convert_to_f32(r->logits, r->logits_raw, logits->dtype, tb_numel(logits));
    return TB_OK;
}

/* The training path: the step uploads (and converts) the batch. */
static int step_logits(cls_run *r, void *ctx, const float *images)
{
    (void)ctx;
    TB_TRY(tb_step_set_input(&r->step, images));
    return forward_logits(r);
}

/* Host scratch for flip test-time augmentation (NULL members: no TTA). */
typedef struct tta_scratch {
    float *flipped; /* the batch, mirrored */
    float *z2;      /* the unflipped pass's logits */
} tta_scratch;

/* log-sum-exp of one row of k logits. */
static double row_lse(const float *z, int k)
{
    double m = z[0], s = 0.0;
    for (int j = 1; j < k; j++)
        m = z[j] > m ? z[j] : m;
    for (int j = 0; j < k; j++)
        s += exp(z[j] - m);
    return m + log(s);
}

/* z[j] = log of the mean of softmax(z) and softmax(z2), row by row: the
 * log-probabilities of flip test-time augmentation, which score_batch then
 * scores like logits (their log-sum-exp is 0). In log space throughout, so
 * that two tiny probabilities never round to log(0). */
static void average_softmax(float *z, const float *z2, int rows, int k)
{
    for (int i = 0; i < rows; i++) {
        float *a = z + (size_t)i * k;
        const float *b = z2 + (size_t)i * k;
        double la0 = row_lse(a, k), lb0 = row_lse(b, k);
        for (int j = 0; j < k; j++) {
            double la = a[j] - la0, lb = b[j] - lb0, m = la > lb ? la : lb;
            a[j] = (float)(m + log(0.5 * (exp(la - m) + exp(lb - m))));
        }
    }
}

/* r->logits for one batch: one pass, or with TTA the log of the mean of the
 * softmax of the batch and of its mirror. */
static int batch_logits(cls_run *r, logits_fn fn, void *ctx, const tta_scratch *tta, const tb_batch *b)
{
    TB_TRY(fn(r, ctx, b->images));
    if (!tta->flipped)
        return TB_OK;
    size_t image = (size_t)b->h * (size_t)b->w * (size_t)b->c, n = (size_t)r->cfg->optim.batch;
    memcpy(tta->z2, r->logits, sizeof(float) * n * (size_t)r->spec.classes);
    memcpy(tta->flipped, b->images, sizeof(float) * image * n);
    for (int i = 0; i < b->count; i++)
        tb_hflip(tta->flipped + image * (size_t)i, b->h, b->w, b->c);
    TB_TRY(fn(r, ctx, tta->flipped));
    average_softmax(r->logits, tta->z2, b->count, r->spec.classes);
    return TB_OK;
}

/* One pass over the validation split: mean loss, top-1 and top-5 (NaN with
 * 5 classes or fewer), the number of images. */
static int validation_pass(cls_run *r, logits_fn fn, void *ctx, const tta_scratch *tta, tb_eval_result *out)
{
    int k = r->spec.classes;
    double loss_sum = 0.0;
    int64_t hit1 = 0, hit5 = 0, seen = 0;
    TB_TRY(tb_loader_start_epoch(r->val_ld, 0));
    for (;;) {
        tb_batch *b = NULL;
        TB_TRY(tb_loader_next(r->val_ld, &b));
        if (!b)
            break;
        int rc = batch_logits(r, fn, ctx, tta, b);
        if (rc == TB_OK) {
            score_batch(r->logits, b->labels, b->count, k, &loss_sum, &hit1, &hit5);
            seen += b->count;
        }
        tb_trainer_settle(r->be, rc);
        tb_loader_release(r->val_ld, b);
        TB_TRY(rc);
    }
    TB_CHECK(seen > 0, TB_ERR_DATA, "evaluation: the validation split is empty");
    out->images = seen;
    out->loss = loss_sum / (double)seen;
    out->top1 = 100.0 * (double)hit1 / (double)seen;
    out->top5 = k > 5 ? 100.0 * (double)hit5 / (double)seen : NAN;
    return TB_OK;
}

/* The end-of-epoch evaluation, of the EMA weights when the run keeps them. */
static int evaluate(cls_run *r, tb_eval_result *out)
{
    static const tta_scratch no_tta = {NULL, NULL};
    if (r->step.have_ema)
        TB_TRY(tb_ema_swap_in(&r->step.ema, r->g));
    int rc = validation_pass(r, step_logits, NULL, &no_tta, out);
    if (r->step.have_ema) {
        int swapped = tb_ema_swap_out(&r->step.ema, r->g);
        rc = rc == TB_OK ? swapped : rc;
    }
    return rc;
}

/* --------------------------------------------------------------- training */

static bool stop_requested(const cls_run *r) { return r->cb && r->cb->should_stop && r->cb->should_stop(r->cb->user); }

/* One epoch; sets *diverged when the loss stops being finite. */
static int train_epoch(cls_run *r, int epoch, tb_epoch_record *rec, bool *diverged, bool *stopped)
{
    const tb_run_config *cfg = r->cfg;
    bool mix_on = tb_mix_active(epoch, cfg->optim.epochs, cfg->tricks.mixup_off_epochs);
    double loss_sum = 0.0, lr = 0.0;
    int64_t steps = 0, correct = 0, counted = 0, skipped = 0;
    TB_TRY(tb_loader_start_epoch(r->train_ld, epoch));
    TB_TRY(tb_synchronize(r->be));
    double t0 = tb_seconds_now();
    /* one batch ahead when the ring can hold two: the next images upload
     * while this step computes (harness/train/step.h) */
    bool ahead = tb_loader_slots(r->train_ld) >= 2;
    tb_batch *b = NULL, *next = NULL;
    TB_TRY(tb_loader_next(r->train_ld, &b));
    while (b) {
        int64_t iter = (int64_t)epoch * r->steps_per_epoch + steps;
        lr = tb_schedule_lr(&r->sched, iter);
        tb_mix m = {.kind = TB_MIX_NONE, .lam = 1.0f};
        if (mix_on && r->step.opt.mixing)
            m = tb_mix_draw(&r->mix, cfg->seed, epoch, steps, r->image, r->image);
        tb_step_result sr;
        int rc = ahead ? tb_loader_next(r->train_ld, &next) : TB_OK;
        if (rc == TB_OK)
            rc = tb_step_run(&r->step, b->images, b->labels, &m, lr, next ? next->images : NULL, &sr);
        tb_trainer_settle(r->be, rc);
        tb_loader_release(r->train_ld, b);
        if (rc != TB_OK) {
            if (next)
                tb_loader_release(r->train_ld, next);
            return rc;
        }
        steps++;
        if (!isfinite(sr.loss)) {
            *diverged = true;
            break;
        }
        loss_sum += sr.loss;
        skipped += sr.skipped;
        if (sr.correct >= 0) {
            correct += sr.correct;
            counted += cfg->optim.batch;
        }
        if (r->cb && r->cb->on_progress) {
            double el = tb_seconds_now() - t0;
            r->cb->on_progress(r->cb->user, epoch + 1, steps, r->steps_per_epoch, sr.loss,
                               el > 0 ? (double)steps * cfg->optim.batch / el : 0.0);
        }
        if (stop_requested(r)) {
            *stopped = true;
            break;
        }
        b = next;
        next = NULL;
        if (!ahead)
            TB_TRY(tb_loader_next(r->train_ld, &b));
    }
    if (next) { /* taken ahead of a step that will not run (diverged or stopped) */
        int dropped = tb_step_drop_staged(&r->step);
        tb_loader_release(r->train_ld, next);
        TB_TRY(dropped);
    }
    TB_TRY(tb_synchronize(r->be));
    double seconds = tb_seconds_now() - t0;
    rec->epoch = epoch + 1;
    rec->lr = lr;
    rec->train_loss = steps ? loss_sum / (double)steps : NAN;
    rec->train_top1 = counted ? 100.0 * (double)correct / (double)counted : NAN;
    rec->seconds = seconds;
    rec->images_per_sec = seconds > 0 ? (double)steps * cfg->optim.batch / seconds : 0.0;
    rec->skipped_steps = skipped;
    rec->loss_scale = tb_loss_scaler_scale(&r->step.scaler);
    return TB_OK;
}

/* ------------------------------------------------------------ training state */

static bool state_wanted(const cls_run *r) { return r->opt->state_path && r->opt->state_path[0]; }

static tb_resume_progress progress_of(cls_run *r, int epoch)
{
    tb_resume_progress p = {.epoch = epoch, .epochs = r->cfg->optim.epochs, .steps_per_epoch = r->steps_per_epoch,
                            .epoch_seconds = r->epoch_seconds, .epoch_ips = r->epoch_ips,
                            .last_eval = {r->last.loss, r->last.top1, r->last.top5}};
    return p;
}

/* Goes on from the state file when there is a usable one. */
static int resume(cls_run *r)
{
    const char *path = r->opt->state_path;
    if (!state_wanted(r))
        return TB_OK;
    TB_TRY(tb_config_hash(r->cfg, r->hash));
    tb_resume_progress p = progress_of(r, 0);
    tb_resume_outcome outcome;
    char device[TB_RESUME_DEVICE_LEN];
    TB_TRY(tb_resume_load(path, r->hash, r->g, &r->step, &p, device, sizeof device, &outcome));
    if (outcome == TB_RESUME_REJECTED) {
        /* never silently: the user learns that the saved epochs are lost */
        fprintf(stderr, "warning: training state not used, starting from epoch 1: %s\n", tb_errmsg());
        tb_err_clear();
    }
    if (outcome != TB_RESUME_LOADED)
        return TB_OK;
    r->start_epoch = r->res->resumed_epoch = r->res->epochs_done = p.epoch;
    r->last = (tb_eval_result){.loss = p.last_eval[0], .top1 = p.last_eval[1], .top5 = p.last_eval[2]};
    if (!r->opt->quiet)
        fprintf(stderr, "resuming from epoch %d of %d (training goes on with epoch %d): %s\n", p.epoch,
                r->cfg->optim.epochs, p.epoch + 1, path);
    if (strcmp(device, r->be->name))
        fprintf(stderr, "warning: %s was written on %s and the run goes on on %s: the result will not be "
                        "bitwise that of an uninterrupted run\n", path, device, r->be->name);
    return TB_OK;
}

/* After a finished (and recorded) epoch. A failed write costs only the
 * ability to resume from this epoch: warn once and train on. */
static void save_state(cls_run *r, int epoch)
{
    if (!state_wanted(r) || r->state_failed)
        return;
    tb_resume_progress p = progress_of(r, epoch);
    if (tb_resume_save(r->opt->state_path, r->hash, r->be->name, r->g, &r->step, &p) == TB_OK)
        return;
    fprintf(stderr, "warning: cannot write the training state (an interruption will resume from an earlier epoch): "
                    "%s\n", tb_errmsg());
    tb_err_clear();
    r->state_failed = true;
}

/* A finished or diverged run is a result: its state has served. */
static void drop_state(cls_run *r)
{
    if (!state_wanted(r) || (r->res->outcome != TB_RUN_FINISHED && r->res->outcome != TB_RUN_DIVERGED))
        return;
    if (tb_resume_remove(r->opt->state_path) != TB_OK) {
        fprintf(stderr, "warning: %s\n", tb_errmsg());
        tb_err_clear();
    }
}

/* --------------------------------------------------------------- the loop */

static int run_epochs(cls_run *r)
{
    const tb_run_config *cfg = r->cfg;
    tb_train_result *res = r->res;
    tb_eval_result *last = &r->last;
    int every = cfg->optim.eval_every > 0 ? cfg->optim.eval_every : 1;
    for (int e = r->start_epoch; e < cfg->optim.epochs; e++) {
        tb_epoch_record rec;
        memset(&rec, 0, sizeof rec);
        rec.val_loss = rec.val_top1 = rec.val_top5 = NAN;
        bool diverged = false, stopped = false;
        TB_TRY(train_epoch(r, e, &rec, &diverged, &stopped));
        if (diverged) {
            res->outcome = TB_RUN_DIVERGED;
            res->diverged_epoch = e + 1;
            return TB_OK;
        }
        if (stopped) {
            res->outcome = TB_RUN_INTERRUPTED;
            return TB_OK;
        }
        r->epoch_seconds[e] = rec.seconds;
        r->epoch_ips[e] = rec.images_per_sec;
        if ((e + 1) % every == 0 || e + 1 == cfg->optim.epochs) {
            TB_TRY(evaluate(r, last));
            rec.evaluated = true;
            rec.val_loss = last->loss;
            rec.val_top1 = last->top1;
            rec.val_top5 = last->top5;
        }
        res->epochs_done = e + 1;
        if (r->cb && r->cb->on_epoch)
            TB_TRY(r->cb->on_epoch(r->cb->user, &rec));
        save_state(r, e + 1); /* after the epoch's row: a state file for epoch E implies rows 1..E */
    }
    int n = cfg->optim.epochs;
    tb_result_set_metric(res, "top1", last->top1);
    if (!isnan(last->top5))
        tb_result_set_metric(res, "top5", last->top5);
    tb_result_set_metric(res, "loss", last->loss);
    tb_result_set_metric(res, "params", (double)tb_graph_param_elements(r->g));
    tb_result_set_metric(res, "macs", (double)tb_graph_macs(r->g));
    tb_result_set_metric(res, "epoch_seconds_median", tb_stats_median(r->epoch_seconds, n));
    tb_result_set_metric(res, "images_per_sec_median", tb_stats_median(r->epoch_ips, n));
    tb_result_set_metric(res, "skipped_steps", (double)tb_loss_scaler_skipped(&r->step.scaler));
    res->outcome = TB_RUN_FINISHED;
    return TB_OK;
}

/* The weights the run was scored with: with tricks.ema its averaged
 * weights (as timm keeps the EMA model), which a teacher loaded from the
 * checkpoint and trickbench eval then get too. */
static int save_checkpoint(cls_run *r)
{
    const char *path = r->opt->checkpoint_path;
    if (!path || !path[0] || r->res->outcome != TB_RUN_FINISHED)
        return TB_OK;
    if (r->step.have_ema)
        TB_TRY(tb_ema_swap_in(&r->step.ema, r->g));
    int rc = tb_safetensors_save(r->g, path);
    if (r->step.have_ema) {
        int rc_out = tb_ema_swap_out(&r->step.ema, r->g);
        rc = rc == TB_OK ? rc_out : rc;
    }
    TB_TRY(rc);
    snprintf(r->res->checkpoint, sizeof r->res->checkpoint, "%s", path);
    return TB_OK;
}

static void cleanup(cls_run *r)
{
    if (r->step_ready)
        tb_step_destroy(&r->step);
    tb_loader_destroy(r->train_ld);
    tb_loader_destroy(r->val_ld);
    tb_dataset_close(r->train_ds);
    tb_dataset_close(r->val_ds);
    tb_graph_destroy(r->teacher);
    tb_graph_destroy(r->g);
    if (r->be)
        tb_backend_destroy(r->be);
    free(r->logits);
    free(r->logits_raw);
    free(r->epoch_seconds);
    free(r->epoch_ips);
}

/* ------------------------------------------------- evaluating saved weights */

/* The eval path (no step): a host batch of f32 images uploaded straight into
 * an f32 input, or through the f32 staging tensor `ctx` and a conversion
 * into a low-precision one. */
static int staged_logits(cls_run *r, void *ctx, const float *images)
{
    tb_tensor *staging = ctx, *in = tb_graph_input(r->g);
    if (in->dtype == TB_F32) {
        TB_TRY(tb_upload(r->be, in, images));
    } else {
        TB_TRY(tb_upload(r->be, staging, images));
        TB_TRY(tb_convert(r->be, in, staging));
    }
    return forward_logits(r);
}

/* The validation pass of saved weights, with host-side flips for TTA. */
static int evaluate_saved(cls_run *r, bool flip, tb_eval_result *out)
{
    size_t n = (size_t)r->cfg->optim.batch;
    const tb_tensor *in = tb_graph_input(r->g);
    tb_tensor staging = tb_tensor_make(NULL, TB_F32, in->ndim, in->shape);
    tta_scratch tta = {NULL, NULL};
    if (flip) {
        tta.flipped = malloc(tb_nbytes(&staging));
        tta.z2 = malloc(sizeof(float) * n * (size_t)r->spec.classes);
    }
    int rc = !flip || (tta.flipped && tta.z2) ? tb_alloc(r->be, &staging.data, tb_nbytes(&staging))
                                              : tb_fail(TB_ERR_NOMEM, "eval: out of memory");
    if (rc == TB_OK)
        rc = validation_pass(r, staged_logits, &staging, &tta, out);
    tb_free(r->be, staging.data);
    free(tta.flipped);
    free(tta.z2);
    return rc;
}

int tb_eval_classification(const tb_run_config *cfg, const tb_train_options *opt, const char *weights, bool flip,
                           tb_eval_result *out)
{
    static const tb_train_options default_opt = {0};
    TB_CHECK(cfg->task == TB_TASK_CLASSIFICATION, TB_ERR_INVALID,
             "eval: a %s run; eval evaluates classification runs", tb_task_name(cfg->task));
    TB_CHECK(weights && weights[0], TB_ERR_INVALID, "eval: the run saved no weights (no checkpoint)");
    cls_run r;
    memset(&r, 0, sizeof r);
    tb_train_result res;
    memset(&res, 0, sizeof res);
    r.cfg = cfg;
    r.opt = opt ? opt : &default_opt;
    r.res = &res;
    int rc = tb_trainer_open_backend(cfg, r.opt, &res, &r.be);
    if (rc == TB_OK)
        rc = open_data(&r, false);
    if (rc == TB_OK)
        rc = build_network(&r, &cfg->model, weights, true, &r.g, &r.spec);
    if (rc == TB_OK) {
        size_t bytes = sizeof(float) * (size_t)cfg->optim.batch * (size_t)r.spec.classes;
        r.logits = malloc(bytes);
        r.logits_raw = malloc(bytes);
        rc = r.logits && r.logits_raw ? TB_OK : tb_fail(TB_ERR_NOMEM, "eval: out of memory");
    }
    if (rc == TB_OK)
        rc = evaluate_saved(&r, flip, out);
    cleanup(&r);
    return rc;
}

int tb_train_classification(const tb_run_config *cfg, const tb_train_options *opt,
                            const tb_train_callbacks *cb, tb_train_result *res)
{
    static const tb_train_options default_opt = {0};
    memset(res, 0, sizeof *res);
    res->outcome = TB_RUN_FAILED;
    if (cfg->task != TB_TASK_CLASSIFICATION)
        return tb_fail(TB_ERR_NOT_IMPLEMENTED, "task: the classification trainer got a %s run", tb_task_name(cfg->task));
    TB_CHECK(cfg->optim.epochs >= 1, TB_ERR_INVALID, "optim.epochs must be >= 1");
    cls_run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.opt = opt ? opt : &default_opt;
    r.cb = cb;
    r.res = res;
    r.last = (tb_eval_result){.loss = NAN, .top1 = NAN, .top5 = NAN};
    int rc = tb_trainer_open_backend(cfg, r.opt, res, &r.be);
    if (rc == TB_OK)
        rc = open_data(&r, true);
    if (rc == TB_OK)
        rc = build_network(&r, &cfg->model, cfg->model.checkpoint, false, &r.g, &r.spec);
    if (rc == TB_OK)
        rc = setup_teacher(&r);
    if (rc == TB_OK)
        rc = setup_training(&r);
    if (rc == TB_OK)
        rc = resume(&r);
    if (rc == TB_OK)
        rc = run_epochs(&r);
    if (rc == TB_OK)
        rc = save_checkpoint(&r);
    if (rc == TB_OK)
        drop_state(&r);
    if (rc != TB_OK)
        res->outcome = TB_RUN_FAILED;
    cleanup(&r);
    return rc;
}
