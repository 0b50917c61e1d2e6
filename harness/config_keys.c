#include "harness/config_keys.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "harness/config.h"
#include "harness/json_util.h"

#define DET(kind, path, m, lo, hi) {path, kind, OFF(m), SZ(m), lo, hi, TB_KEY_DETECTION, NULL}
#define SEG(kind, path, m, lo, hi) {path, kind, OFF(m), SZ(m), lo, hi, TB_KEY_SEGMENTATION, NULL}
#define XFER(kind, path, m, lo, hi) {path, kind, OFF(m), SZ(m), lo, hi, TB_KEY_TRANSFER, NULL}

static const char *const task_names[] = {"classification", "detection", "segmentation", NULL};
static const char *const dataset_names[] = {"fashion-mnist", "idx", "cifar10", "cifar100", "imagefolder",
                                            "synthetic", "voc", "fashion-scenes", "ade20k", NULL};
static const char *const augment_names[] = {"auto", "none", "small", "imagenet", NULL};
static const char *const model_names[] = {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                          "mobilenet_v1", "inception_v3", NULL};
static const char *const stem_names[] = {"auto", "imagenet", "small", NULL};
static const char *const init_names[] = {"kaiming", "xavier", NULL};
static const char *const optimizer_names[] = {"sgd", NULL};
static const char *const schedule_names[] = {"step", "cosine", "poly", "linear", "constant", NULL};
static const char *const precision_names[] = {"fp32", "fp16", "bf16", NULL};
static const char *const device_names[] = {"auto", "cpu", "cuda", NULL};

#define OFF(member) offsetof(tb_run_config, member)
#define SZ(member) sizeof(((tb_run_config *)0)->member)
#define INF HUGE_VAL

#define SECTION(path, flags) {path, TB_KEY_SECTION, 0, 0, 0, 0, flags, NULL}
#define STRING(path, m) {path, TB_KEY_STRING, OFF(m), SZ(m), 0, 0, 0, NULL}
#define CHOICE(path, m, names) {path, TB_KEY_CHOICE, OFF(m), SZ(m), 0, 0, 0, names}
#define ENUMK(path, m, names) {path, TB_KEY_ENUM, OFF(m), SZ(m), 0, 0, 0, names}
#define NUM(kind, path, m, lo, hi, flags) {path, kind, OFF(m), SZ(m), lo, hi, flags, NULL}
#define BOOLK(path, m) {path, TB_KEY_BOOL, OFF(m), SZ(m), 0, 0, 0, NULL}

/* The model keys appear twice: for the trained model and for a
 * distillation teacher given as a checkpoint. */
#define MODEL_KEYS(prefix, m)                                                            \
    CHOICE(prefix ".name", m.name, model_names),                                         \
    {prefix ".variant", TB_KEY_VARIANT, OFF(m.variant), SZ(m.variant), 0, 0, 0, NULL},   \
    CHOICE(prefix ".stem", m.stem, stem_names),                                          \
    NUM(TB_KEY_FLOAT, prefix ".width", m.width, 0, 16, TB_KEY_MIN_OPEN),                 \
    NUM(TB_KEY_INT, prefix ".classes", m.classes, 0, 1000000, 0),                        \
    CHOICE(prefix ".init", m.init, init_names),                                          \
    NUM(TB_KEY_FLOAT, prefix ".dropout", m.dropout, 0, 1, TB_KEY_MAX_OPEN),              \
    STRING(prefix ".checkpoint", m.checkpoint)

const tb_config_key tb_config_keys[] = {
    ENUMK("task", task, task_names),

    SECTION("data", 0),
    CHOICE("data.dataset", data.dataset, dataset_names),
    STRING("data.root", data.root),
    NUM(TB_KEY_INT64, "data.train_limit", data.train_limit, 0, 1e12, 0),
    NUM(TB_KEY_INT64, "data.val_limit", data.val_limit, 0, 1e12, 0),
    NUM(TB_KEY_INT64, "data.holdout", data.holdout, 0, 1e12, 0),
    CHOICE("data.augment", data.augment, augment_names),
    NUM(TB_KEY_INT, "data.image_size", data.image_size, 0, 4096, 0),
    NUM(TB_KEY_FLOAT, "data.random_erasing", data.random_erasing, 0, 1, 0),
    NUM(TB_KEY_INT, "data.workers", data.workers, 0, 256, 0),
    BOOLK("data.skip_bad", data.skip_bad),
    NUM(TB_KEY_INT64, "data.synthetic_train", data.synthetic_train, 1, 1e9, 0),
    NUM(TB_KEY_INT64, "data.synthetic_val", data.synthetic_val, 1, 1e9, 0),
    NUM(TB_KEY_INT, "data.synthetic_classes", data.synthetic_classes, 2, 100000, 0),
    NUM(TB_KEY_INT, "data.synthetic_size", data.synthetic_size, 1, 4096, 0),
    NUM(TB_KEY_INT, "data.synthetic_channels", data.synthetic_channels, 1, 64, 0),
    XFER(TB_KEY_STRING, "data.train_sets", data.train_sets, 0, 0),
    XFER(TB_KEY_STRING, "data.val_sets", data.val_sets, 0, 0),
    XFER(TB_KEY_INT, "data.scenes_train", data.scenes_train, 1, 10000000),
    XFER(TB_KEY_INT, "data.scenes_val", data.scenes_val, 1, 10000000),
    XFER(TB_KEY_INT, "data.scene_size", data.scene_size, 32, 4096),

    SECTION("model", 0),
    MODEL_KEYS("model", model),
    {"model.backbone_from", TB_KEY_STRING, OFF(model.backbone_from), SZ(model.backbone_from), 0, 0,
     TB_KEY_TRANSFER, NULL},

    SECTION("optim", 0),
    CHOICE("optim.optimizer", optim.optimizer, optimizer_names),
    NUM(TB_KEY_DOUBLE, "optim.lr", optim.lr, 0, 100, TB_KEY_MIN_OPEN),
    NUM(TB_KEY_INT, "optim.batch", optim.batch, 1, 1 << 20, 0),
    NUM(TB_KEY_INT, "optim.base_batch", optim.base_batch, 1, 1 << 20, 0),
    BOOLK("optim.linear_scaling", optim.linear_scaling),
    NUM(TB_KEY_INT, "optim.epochs", optim.epochs, 1, 100000, 0),
    NUM(TB_KEY_DOUBLE, "optim.momentum", optim.momentum, 0, 1, TB_KEY_MAX_OPEN),
    BOOLK("optim.nesterov", optim.nesterov),
    NUM(TB_KEY_DOUBLE, "optim.weight_decay", optim.weight_decay, 0, 1, 0),
    NUM(TB_KEY_DOUBLE, "optim.grad_clip", optim.grad_clip, 0, INF, 0),
    NUM(TB_KEY_INT, "optim.eval_every", optim.eval_every, 1, 100000, 0),

    SECTION("schedule", 0),
    ENUMK("schedule.type", schedule.type, schedule_names),
    {"schedule.step_epochs", TB_KEY_STEP_LIST, OFF(schedule.step_epochs), SZ(schedule.step_epochs),
     1, 100000, 0, NULL},
    NUM(TB_KEY_DOUBLE, "schedule.step_gamma", schedule.step_gamma, 0, 1, TB_KEY_MIN_OPEN),
    NUM(TB_KEY_DOUBLE, "schedule.poly_power", schedule.poly_power, 0, 100, TB_KEY_MIN_OPEN),
    NUM(TB_KEY_DOUBLE, "schedule.warmup_epochs", schedule.warmup_epochs, 0, 100000, 0),
    NUM(TB_KEY_DOUBLE, "schedule.final_lr", schedule.final_lr, 0, INF, 0),

    SECTION("tricks", 0),
    BOOLK("tricks.zero_gamma", tricks.zero_gamma),
    BOOLK("tricks.no_bias_decay", tricks.no_bias_decay),
    ENUMK("tricks.precision", tricks.precision, precision_names),
    {"tricks.loss_scale", TB_KEY_LOSS_SCALE, OFF(tricks.loss_scale), SZ(tricks.loss_scale), 0, 16777216.0,
     TB_KEY_MIN_OPEN, NULL},
    NUM(TB_KEY_DOUBLE, "tricks.label_smoothing", tricks.label_smoothing, 0, 1, TB_KEY_MAX_OPEN),
    NUM(TB_KEY_DOUBLE, "tricks.mixup_alpha", tricks.mixup_alpha, 0, 100, 0),
    NUM(TB_KEY_INT, "tricks.mixup_off_epochs", tricks.mixup_off_epochs, 0, 100000, 0),
    NUM(TB_KEY_DOUBLE, "tricks.cutmix_alpha", tricks.cutmix_alpha, 0, 100, 0),
    NUM(TB_KEY_DOUBLE, "tricks.ema", tricks.ema, 0, 1, TB_KEY_MAX_OPEN),
    SECTION("tricks.distill", TB_KEY_NULLABLE),
    STRING("tricks.distill.teacher", tricks.distill.teacher),
    STRING("tricks.distill.teacher_checkpoint", tricks.distill.teacher_checkpoint),
    SECTION("tricks.distill.teacher_model", 0),
    MODEL_KEYS("tricks.distill.teacher_model", tricks.distill.teacher_model),
    NUM(TB_KEY_DOUBLE, "tricks.distill.temperature", tricks.distill.temperature, 0, 1000, TB_KEY_MIN_OPEN),
    NUM(TB_KEY_DOUBLE, "tricks.distill.hard_weight", tricks.distill.hard_weight, 0, 1000, 0),

    {"detection", TB_KEY_SECTION, 0, 0, 0, 0, TB_KEY_DETECTION, NULL},
    DET(TB_KEY_INT, "detection.min_side", detection.min_side, 0, 4096),
    DET(TB_KEY_INT, "detection.max_side", detection.max_side, 0, 8192),
    DET(TB_KEY_INT, "detection.max_objects", detection.max_objects, 1, 4096),
    DET(TB_KEY_FLOAT_LIST, "detection.anchor_sizes", detection.anchor_sizes, 1, 4096),
    DET(TB_KEY_FLOAT_LIST, "detection.anchor_ratios", detection.anchor_ratios, 0.05, 20),
    DET(TB_KEY_INT, "detection.rpn_pre_nms_train", detection.rpn_pre_nms_train, 1, 1000000),
    DET(TB_KEY_INT, "detection.rpn_post_nms_train", detection.rpn_post_nms_train, 1, 100000),
    DET(TB_KEY_INT, "detection.rpn_pre_nms_test", detection.rpn_pre_nms_test, 1, 1000000),
    DET(TB_KEY_INT, "detection.rpn_post_nms_test", detection.rpn_post_nms_test, 1, 100000),
    DET(TB_KEY_FLOAT, "detection.rpn_nms", detection.rpn_nms, 0, 1),
    DET(TB_KEY_FLOAT, "detection.rpn_min_size", detection.rpn_min_size, 0, 4096),
    DET(TB_KEY_INT, "detection.rpn_batch", detection.rpn_batch, 1, 1000000),
    DET(TB_KEY_FLOAT, "detection.rpn_pos_fraction", detection.rpn_pos_fraction, 0, 1),
    DET(TB_KEY_FLOAT, "detection.rpn_pos_iou", detection.rpn_pos_iou, 0, 1),
    DET(TB_KEY_FLOAT, "detection.rpn_neg_iou", detection.rpn_neg_iou, 0, 1),
    DET(TB_KEY_INT, "detection.roi_batch", detection.roi_batch, 1, 100000),
    DET(TB_KEY_FLOAT, "detection.roi_pos_fraction", detection.roi_pos_fraction, 0, 1),
    DET(TB_KEY_FLOAT, "detection.roi_fg_iou", detection.roi_fg_iou, 0, 1),
    DET(TB_KEY_FLOAT, "detection.roi_bg_iou_lo", detection.roi_bg_iou_lo, 0, 1),
    DET(TB_KEY_INT, "detection.roi_size", detection.roi_size, 1, 64),
    DET(TB_KEY_INT, "detection.roi_sampling", detection.roi_sampling, 0, 16),
    DET(TB_KEY_BOOL, "detection.roi_aligned", detection.roi_aligned, 0, 0),
    DET(TB_KEY_FLOAT, "detection.test_score", detection.test_score, 0, 1),
    DET(TB_KEY_FLOAT, "detection.test_nms", detection.test_nms, 0, 1),
    DET(TB_KEY_INT, "detection.test_max_detections", detection.test_max_detections, 1, 100000),
    DET(TB_KEY_BOOL, "detection.freeze_bn", detection.freeze_bn, 0, 0),
    DET(TB_KEY_INT, "detection.frozen_stages", detection.frozen_stages, 0, 4),

    {"segmentation", TB_KEY_SECTION, 0, 0, 0, 0, TB_KEY_SEGMENTATION, NULL},
    SEG(TB_KEY_INT, "segmentation.base_size", segmentation.base_size, 8, 16384),
    SEG(TB_KEY_INT, "segmentation.crop_size", segmentation.crop_size, 8, 16384),
    SEG(TB_KEY_BOOL, "segmentation.aux", segmentation.aux, 0, 0),
    SEG(TB_KEY_FLOAT, "segmentation.aux_weight", segmentation.aux_weight, 0, 100),
    SEG(TB_KEY_FLOAT, "segmentation.head_dropout", segmentation.head_dropout, 0, 0.99),
    SEG(TB_KEY_BOOL, "segmentation.freeze_bn", segmentation.freeze_bn, 0, 0),

    NUM(TB_KEY_UINT64, "seed", seed, 0, 9007199254740992.0, 0),
    CHOICE("device", device, device_names),
};

const size_t tb_config_n_keys = sizeof tb_config_keys / sizeof tb_config_keys[0];

bool tb_config_key_applies(const tb_run_config *cfg, const tb_config_key *k)
{
    if (k->flags & TB_KEY_DETECTION)
        return cfg->task == TB_TASK_DETECTION;
    if (k->flags & TB_KEY_SEGMENTATION)
        return cfg->task == TB_TASK_SEGMENTATION;
    if (k->flags & TB_KEY_TRANSFER)
        return cfg->task != TB_TASK_CLASSIFICATION;
    return true;
}

const tb_config_key *tb_config_find_key(const char *path)
{
    for (size_t i = 0; i < tb_config_n_keys; i++)
        if (!strcmp(tb_config_keys[i].path, path))
            return &tb_config_keys[i];
    return NULL;
}

/* Splits "a.b.c" into parent "a.b" and leaf "c" ("" and "a" for "a"). */
static void split_path(const char *path, char *parent, size_t psize, const char **leaf)
{
    const char *dot = strrchr(path, '.');
    int plen = dot ? (int)(dot - path) : 0;
    snprintf(parent, psize, "%.*s", plen, path);
    *leaf = dot ? dot + 1 : path;
}

/* Collects the leaf names of the keys directly inside `parent`. */
static size_t children_of(const char *parent, const char **leaves, const char **full, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < tb_config_n_keys && n < max; i++) {
        char p[128];
        const char *leaf;
        split_path(tb_config_keys[i].path, p, sizeof p, &leaf);
        if (!strcmp(p, parent)) {
            leaves[n] = leaf;
            full[n] = tb_config_keys[i].path;
            n++;
        }
    }
    return n;
}

static const char *nearest_child(const char *parent, const char *leaf)
{
    const char *leaves[64], *full[64];
    size_t n = children_of(parent, leaves, full, 64);
    const char *best = tb_nearest_name(leaf, leaves, n);
    for (size_t i = 0; best && i < n; i++)
        if (leaves[i] == best)
            return full[i];
    return NULL;
}

void tb_config_suggest(const char *path, char *buf, size_t size)
{
    char parent[128];
    const char *leaf;
    split_path(path, parent, sizeof parent, &leaf);
    buf[0] = '\0';
    /* 1. the same key name in another section: "optim.label_smoothing" */
    for (size_t i = 0; i < tb_config_n_keys; i++) {
        char p[128];
        const char *l;
        split_path(tb_config_keys[i].path, p, sizeof p, &l);
        if (!strcmp(l, leaf) && strcmp(p, parent) && strncmp(tb_config_keys[i].path, "tricks.distill.teacher_model.", 29)) {
            snprintf(buf, size, " (did you mean '%s'?)", tb_config_keys[i].path);
            return;
        }
    }
    /* 2. a near name in the same section: "tricks.mixup_alpah" */
    const char *near = nearest_child(parent, leaf);
    if (near) {
        snprintf(buf, size, " (did you mean '%s'?)", near);
        return;
    }
    /* 3. a misspelt section: "trick.ema" */
    const tb_config_key *sec = parent[0] ? tb_config_find_key(parent) : NULL;
    if (parent[0] && !sec) {
        char gp[128];
        const char *pleaf;
        split_path(parent, gp, sizeof gp, &pleaf);
        const char *near_sec = nearest_child(gp, pleaf);
        if (near_sec) {
            char fixed[256];
            snprintf(fixed, sizeof fixed, "%s.%s", near_sec, leaf);
            const char *inner = tb_config_find_key(fixed) ? fixed : NULL;
            if (inner) {
                snprintf(buf, size, " (did you mean '%s'?)", inner);
                return;
            }
            snprintf(buf, size, " (did you mean section '%s'?)", near_sec);
        }
        return;
    }
    /* 4. nothing close: list what the section holds */
    const char *leaves[64], *full[64];
    size_t n = children_of(parent, leaves, full, 64);
    size_t used = (size_t)snprintf(buf, size, "; valid keys%s%s: ", parent[0] ? " in " : "", parent);
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", leaves[i]);
}
