#include "harness/train/step.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

static size_t align_up(size_t n) { return (n + 255) & ~(size_t)255; }

/* TRICKBENCH_NO_CAPTURE=1 (any value but "" and "0") runs every step op by
 * op: for comparing the two, and a way around a capture that fails. */
static bool capture_disabled_by_env(void)
{
    const char *v = getenv("TRICKBENCH_NO_CAPTURE");
    return v && *v && strcmp(v, "0") != 0;
}

int tb_step_init(tb_step *s, tb_graph *g, const tb_step_options *opt)
{
    memset(s, 0, sizeof *s);
    s->be = tb_graph_backend(g);
    s->g = g;
    s->opt = *opt;
    const tb_tensor *in = tb_graph_input(g), *out = tb_graph_output(g);
    s->n = (int)in->shape[0];
    s->h = (int)in->shape[1];
    s->w = (int)in->shape[2];
    s->c = (int)in->shape[3];
    s->k = (int)out->shape[1];
    s->images = tb_tensor_4d(NULL, TB_F32, s->n, s->h, s->w, s->c);
    s->mixed = s->images;
    s->labels = tb_tensor_1d(NULL, TB_I32, s->n);
    s->labels_b = s->labels;
    s->targets = tb_tensor_2d(NULL, TB_F32, s->n, s->k);
    s->probs = s->targets;
    s->pred = tb_tensor_1d(NULL, TB_I32, s->n);
    /* the loss, the overflow flag and the top-1 hits sit side by side: one host read per step */
    s->readback = tb_tensor_1d(NULL, TB_U8, 12);
    s->scalars = tb_tensor_1d(NULL, TB_U8, (int64_t)sizeof(tb_step_scalars));
    tb_tensor *parts[] = {&s->images, &s->mixed, &s->labels, &s->labels_b, &s->targets,
                          &s->probs, &s->pred, &s->readback, &s->scalars};
    size_t total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        total += align_up(tb_nbytes(parts[i]));
    TB_TRY(tb_alloc(s->be, &s->mem, total));
    /* pinned: a copy from pageable memory would wait for the stream first */
    TB_TRY(s->be->iface.alloc_host(s->be, (void **)&s->host_scalars, sizeof *s->host_scalars));
    size_t off = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        parts[i]->data = (char *)s->mem + off;
        off += align_up(tb_nbytes(parts[i]));
    }
    s->loss = tb_tensor_1d(s->readback.data, TB_F32, 1);
    s->flag = tb_tensor_1d((char *)s->readback.data + 4, TB_I32, 1);
    s->correct = tb_tensor_1d((char *)s->readback.data + 8, TB_I32, 1);
    char *sc = s->scalars.data;
    s->lr = tb_tensor_1d(sc + offsetof(tb_step_scalars, lr), TB_F32, 1);
    s->lam = tb_tensor_1d(sc + offsetof(tb_step_scalars, lam), TB_F32, 1);
    s->box = tb_tensor_1d(sc + offsetof(tb_step_scalars, box), TB_I32, 4);
    s->graph_step = tb_tensor_1d(sc + offsetof(tb_step_scalars, graph_step), TB_I32, 1);
    s->loss_scale = tb_tensor_1d(sc + offsetof(tb_step_scalars, loss_scale), TB_F32, 1);
    TB_TRY(tb_fill(s->be, &s->flag, 0.0f));
    if (opt->teacher) {
        TB_TRY(tb_distill_buffers_alloc(&s->distill, s->be, s->n, s->k));
        s->have_distill = true;
    }
    /* Dynamic only with fp16's overflow check: without it (fp32, bf16) nothing
     * would ever back the scale off, and doubling it every 2000 steps would
     * overflow the gradients of an ImageNet-length run (~600k steps). */
    TB_TRY(tb_loss_scaler_init(&s->scaler, opt->fp16_scaling && opt->dynamic_scale,
                               opt->fp16_scaling ? opt->loss_scale : 1.0));
    if (opt->grad_clip > 0) {
        TB_TRY(tb_grad_clip_init(&s->clip, s->be, opt->grad_clip));
        s->have_clip = true;
    }
    if (opt->ema_decay > 0) {
        TB_TRY(tb_ema_init(&s->ema, g, opt->ema_decay, true));
        s->have_ema = true;
    }
    /* dropout seeds from the uploaded step: the same masks, and replayable
     * (set last: nothing after it fails, so the graph never keeps a pointer
     * into a step that was not made) */
    tb_graph_set_step_source(g, &s->graph_step);
    s->can_capture = opt->capture && !capture_disabled_by_env() && tb_can_capture(s->be) &&
                     tb_graph_replayable(g) && (!opt->teacher || tb_graph_replayable(opt->teacher));
    return TB_OK;
}

static void drop_captures(tb_step *s)
{
    for (int k = 0; k < TB_STEP_MIX_KINDS; k++) {
        tb_capture_free(s->be, s->captures[k]);
        s->captures[k] = NULL;
    }
}

void tb_step_destroy(tb_step *s)
{
    if (!s->be)
        return;
    if (tb_graph_step_source(s->g) == &s->graph_step) /* not another step's */
        tb_graph_set_step_source(s->g, NULL);
    if (s->have_distill)
        tb_distill_buffers_free(&s->distill, s->be);
    if (s->have_ema)
        tb_ema_destroy(&s->ema);
    if (s->have_clip)
        tb_grad_clip_destroy(&s->clip, s->be);
    drop_captures(s);
    tb_free(s->be, s->mem);
    if (s->host_scalars)
        s->be->iface.free_host(s->be, s->host_scalars);
    memset(s, 0, sizeof *s);
}

/* images (f32, device) -> the graph input in its dtype */
static int feed(tb_backend *be, tb_graph *g, const tb_tensor *src)
{
    tb_tensor *in = tb_graph_input(g);
    if (in->dtype == TB_F32)
        return tb_copy(be, in, src);
    return tb_convert(be, in, src);
}

static int feed_graph(tb_step *s, const tb_tensor *src) { return feed(s->be, s->g, src); }

int tb_step_set_input(tb_step *s, const float *images)
{
    /* after a staged upload into the same buffer, not racing it */
    TB_TRY(tb_wait_uploaded(s->be));
    s->staged = NULL;
    TB_TRY(tb_upload(s->be, &s->images, images));
    TB_TRY(feed_graph(s, &s->images));
    /* like a step, it has read images once fed: a later upload_next waits for this */
    return tb_mark_consumed(s->be);
}

int tb_step_drop_staged(tb_step *s)
{
    s->staged = NULL;
    /* the host must know the copy is done before the memory goes back to a
     * loader thread: a stream wait (tb_wait_uploaded) would not tell it */
    return tb_synchronize(s->be);
}

static int mix_kind(const tb_mix *mix) { return mix ? (int)mix->kind : TB_MIX_NONE; }

/* Uploads what changes from step to step: the batch, the labels and the
 * per-step scalars (one small copy beside the batch). */
static int upload_step_inputs(tb_step *s, const float *images, const int32_t *labels, const tb_mix *mix,
                              double lr, double loss_scale)
{
    int kind = mix_kind(mix);
    TB_CHECK(kind == TB_MIX_NONE || s->opt.mixing, TB_ERR_INTERNAL,
             "step: a mix was drawn but mixing was not enabled");
    /* free to rewrite: the last step's read-back waited for its upload */
    tb_step_scalars *h = s->host_scalars;
    memset(h, 0, sizeof *h);
    /* the CPU checks these values where it reads them; CUDA kernels cannot
     * fail, and clamp instead: they must be valid here */
    h->lr = (float)lr;
    h->loss_scale = (float)loss_scale;
    uint64_t at = tb_graph_step(s->g);
    TB_CHECK(at <= INT32_MAX, TB_ERR_UNSUPPORTED, "step: training step %llu: more than 2^31 - 1 steps",
             (unsigned long long)at);
    h->graph_step = (int32_t)at;
    h->lam = kind == TB_MIX_NONE ? 1.0f : mix->lam;
    if (kind == TB_MIX_CUTMIX) {
        h->box[0] = mix->y0, h->box[1] = mix->y1, h->box[2] = mix->x0, h->box[3] = mix->x1;
    }
    /* the images by the overlapped path (already there when the last run
     * staged them), the small rest on the stream itself */
    if (images != s->staged)
        TB_TRY(tb_upload_next(s->be, &s->images, images));
    s->staged = NULL;
    TB_TRY(tb_wait_uploaded(s->be));
    TB_TRY(tb_upload(s->be, &s->labels, labels));
    return tb_upload(s->be, &s->scalars, h);
}

/* Applies mixup/cutmix on the device and builds the loss targets. Sets
 * *soft to the soft-target tensor or NULL for hard labels. */
static int prepare_batch(tb_step *s, int kind, const tb_tensor **soft)
{
    bool mixing = kind != TB_MIX_NONE;
    const tb_tensor *batch = &s->images;
    if (mixing) {
        if (kind == TB_MIX_MIXUP)
            TB_TRY(tb_mixup_batch(s->be, &s->mixed, &s->images, &s->lam));
        else
            TB_TRY(tb_cutmix_batch(s->be, &s->mixed, &s->images, &s->box));
        TB_TRY(tb_reverse_labels(s->be, &s->labels_b, &s->labels));
        batch = &s->mixed;
    }
    TB_TRY(feed_graph(s, batch));
    /* the teacher sees exactly the student's (mixed) batch */
    if (s->have_distill)
        TB_TRY(feed(s->be, s->opt.teacher, batch));
    /* images is read: the next step's may be uploaded into it from here on */
    TB_TRY(tb_mark_consumed(s->be));
    *soft = NULL;
    if (mixing || s->opt.label_smoothing > 0.0f) {
        TB_TRY(tb_soft_targets(s->be, &s->targets, &s->labels, mixing ? &s->labels_b : NULL,
                               mixing ? &s->lam : NULL, s->opt.label_smoothing));
        *soft = &s->targets;
    }
    return TB_OK;
}

/* Loss forward and its gradient into the output gradient (already zeroed),
 * times the loss scale read from the uploaded scalars (a replayed step
 * uses each step's scale). */
static int loss_and_gradient(tb_step *s, const tb_tensor *soft, const tb_tensor **loss)
{
    tb_tensor *logits = tb_graph_output(s->g), *dlogits = tb_graph_output_grad(s->g);
    const tb_tensor *hard = soft ? NULL : &s->labels;
    if (s->have_distill) {
        TB_TRY(tb_graph_forward(s->opt.teacher, false));
        TB_TRY(tb_distill_loss(s->be, dlogits, &s->distill, logits, tb_graph_output(s->opt.teacher), hard, soft,
                               s->opt.temperature, s->opt.hard_weight, 1.0f, &s->loss_scale));
        *loss = &s->distill.loss;
        return TB_OK;
    }
    TB_TRY(tb_softmax_ce_forward(s->be, &s->loss, &s->probs, logits, hard, soft, 1.0f));
    TB_TRY(tb_softmax_ce_backward_scaled(s->be, dlogits, &s->probs, hard, soft, 1.0f, 1.0f, &s->loss_scale));
    *loss = &s->loss;
    return TB_OK;
}

/* The rate and the loss scale (gradients are divided by it) are read from
 * the uploaded scalars (lr_tensor, grad_scale_tensor), so a replayed step
 * uses each step's; .lr and .grad_scale only pass the front-end's check.
 * With clipping, the global norm's sum of squares is accumulated on the
 * device and the SGD kernels read it. */
static int optimizer_step(tb_step *s)
{
    tb_sgd_params sp = {.lr = s->host_scalars->lr,
                        .momentum = (float)s->opt.momentum,
                        .weight_decay = (float)s->opt.weight_decay,
                        .grad_scale = s->host_scalars->loss_scale,
                        .nesterov = s->opt.nesterov,
                        .lr_tensor = &s->lr,
                        .grad_scale_tensor = &s->loss_scale};
    if (s->have_clip)
        TB_TRY(tb_grad_clip_prepare(&s->clip, s->g, &sp));
    const tb_tensor *skip = s->opt.fp16_scaling ? &s->flag : NULL;
    for (int gi = 0; gi < 2; gi++) {
        tb_param_group *grp = tb_graph_group(s->g, gi);
        if (!grp)
            continue;
        tb_tensor *model = gi == TB_GROUP_LOWP ? &grp->value : NULL;
        TB_TRY(tb_sgd_step(s->be, &grp->master, model, &grp->momentum, &grp->grad, &grp->decay_mask, skip, &sp));
    }
    return TB_OK;
}

/* Training top-1 with hard labels (no smoothing, mixing or distillation):
 * the probabilities' argmax against the labels, counted on the device into
 * the read-back. */
static bool counts_hits(const tb_step *s, bool soft) { return !soft && !s->have_distill; }

static int count_hits(tb_step *s)
{
    TB_TRY(tb_argmax(s->be, &s->pred, &s->probs));
    return tb_count_equal(s->be, &s->correct, &s->pred, &s->labels);
}

/* Everything between the upload and the read-back: what a capture records.
 * *soft_out: whether the loss used soft targets. */
static int step_body(tb_step *s, int kind, bool *soft_out)
{
    const tb_tensor *soft = NULL, *loss = NULL;
    TB_TRY(prepare_batch(s, kind, &soft));
    TB_TRY(tb_graph_forward(s->g, true));
    TB_TRY(tb_graph_zero_grads(s->g));
    TB_TRY(loss_and_gradient(s, soft, &loss));
    if (counts_hits(s, soft != NULL))
        TB_TRY(count_hits(s));
    TB_TRY(tb_graph_backward(s->g));
    if (s->opt.fp16_scaling) {
        TB_TRY(tb_fill(s->be, &s->flag, 0.0f));
        for (int gi = 0; gi < 2; gi++) {
            tb_param_group *grp = tb_graph_group(s->g, gi);
            if (grp)
                TB_TRY(tb_nonfinite_check(s->be, &s->flag, &grp->grad));
        }
    }
    TB_TRY(optimizer_step(s));
    if (loss != &s->loss)
        TB_TRY(tb_copy(s->be, &s->loss, loss));
    *soft_out = soft != NULL;
    return TB_OK;
}

/* Records the body as the capture of this mix kind. */
static int capture_body(tb_step *s, int kind)
{
    bool soft;
    TB_TRY(tb_capture_begin(s->be));
    int rc = step_body(s, kind, &soft);
    int end_rc = tb_capture_end(s->be, rc != TB_OK, &s->captures[kind]);
    if (rc == TB_OK)
        rc = end_rc;
    if (rc != TB_OK)
        return tb_err_context(rc, "capturing the training step (mix kind %d) for replay; "
                                  "TRICKBENCH_NO_CAPTURE=1 runs it op by op", kind);
    return TB_OK;
}

/* Runs the body: op by op, or (capturing on the kind's second step) by
 * replaying its capture. Recording runs the host side of the body once (the
 * forward's counters among it) and no kernel; a replay runs the kernels and
 * none of the host side, so the counters advance here only for a replay
 * that was not just recorded. */
static int run_body(tb_step *s, int kind, bool *soft)
{
    if (!s->can_capture)
        return step_body(s, kind, soft);
    if (s->be->workspace != s->captured_workspace) {
        drop_captures(s);
        s->captured_workspace = s->be->workspace;
    }
    if (!s->captures[kind] && !s->ran_eagerly[kind]) {
        s->ran_eagerly[kind] = true;
        return step_body(s, kind, soft);
    }
    bool recorded = false;
    if (!s->captures[kind]) {
        TB_TRY(capture_body(s, kind));
        s->recordings++;
        recorded = true;
    }
    TB_TRY(tb_capture_replay(s->be, s->captures[kind]));
    if (!recorded)
        tb_graph_count_train_forward(s->g);
    s->captured_steps++;
    *soft = kind != TB_MIX_NONE || s->opt.label_smoothing > 0.0f;
    return TB_OK;
}

int tb_step_run(tb_step *s, const float *images, const int32_t *labels, const tb_mix *mix, double lr,
                const float *next_images, tb_step_result *out)
{
    int kind = mix_kind(mix);
    bool soft;
    TB_TRY(upload_step_inputs(s, images, labels, mix, lr, tb_loss_scaler_scale(&s->scaler)));
    TB_TRY(run_body(s, kind, &soft));
    if (next_images) {
        TB_TRY(tb_upload_next(s->be, &s->images, next_images));
        s->staged = next_images;
    }
    /* the step's one host read: the loss, the overflow flag (0 without fp16
     * scaling) and the top-1 hits */
    unsigned char host[12];
    TB_TRY(tb_download(s->be, host, &s->readback));
    int32_t overflow, hits;
    memcpy(&out->loss, host, sizeof out->loss);
    memcpy(&overflow, host + 4, sizeof overflow);
    memcpy(&hits, host + 8, sizeof hits);
    bool applied = tb_loss_scaler_update(&s->scaler, overflow != 0);
    if (s->have_ema && applied)
        TB_TRY(tb_ema_update(&s->ema));
    out->skipped = !applied;
    out->correct = counts_hits(s, soft) ? hits : -1;
    return TB_OK;
}
