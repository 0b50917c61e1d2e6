/* The run config: one JSON object with sections task, data, model, optim,
 * schedule, tricks, seed, device. Parsed with cJSON into this typed struct;
 * every key has a default (tb_config_defaults) documented in docs/config.md.
 * A run's identity is the SHA-256 of its canonical JSON (defaults filled,
 * keys sorted): see tb_config_canonical_json / tb_config_hash.
 */
#ifndef TB_CONFIG_H
#define TB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_NAME_MAX 64
#define TB_PATH_MAX 1024
#define TB_MAX_STEP_EPOCHS 16
#define TB_MAX_LIST 8

typedef enum tb_task { TB_TASK_CLASSIFICATION = 0, TB_TASK_DETECTION, TB_TASK_SEGMENTATION } tb_task;

typedef enum tb_schedule_type {
    TB_SCHED_STEP = 0,
    TB_SCHED_COSINE,
    TB_SCHED_POLY,
    TB_SCHED_LINEAR,
    TB_SCHED_CONSTANT
} tb_schedule_type;

typedef enum tb_precision { TB_PREC_FP32 = 0, TB_PREC_FP16, TB_PREC_BF16 } tb_precision;

typedef struct tb_data_config {
    char dataset[TB_NAME_MAX];  /* fashion-mnist | idx | cifar10 | cifar100 | imagefolder | synthetic */
    char root[TB_PATH_MAX];     /* "" = the dataset's default (fashion-mnist: /usr/share/datasets/fashion-mnist) */
    int64_t train_limit;        /* 0 = all; else a deterministic subset of this size */
    int64_t val_limit;          /* 0 = all */
    int64_t holdout;            /* > 0: validate on this many images held out of the training split
                                   (deterministic) instead of the test split, for tuning */
    char augment[TB_NAME_MAX];  /* auto | none | small | imagenet */
    int image_size;             /* 0 = the dataset's native size (small) / 224 (imagenet) */
    float random_erasing;       /* probability, 0 = off (beyond the paper) */
    int workers;                /* loader threads; 0 = automatic */
    bool skip_bad;              /* skip undecodable images (counted) instead of failing */
    /* synthetic dataset */
    int64_t synthetic_train;    /* default 512 */
    int64_t synthetic_val;      /* default 128 */
    int synthetic_classes;      /* default 10 */
    int synthetic_size;         /* default 28 (height = width) */
    int synthetic_channels;     /* default 1 */
    /* detection and segmentation only (absent from other runs' JSON) */
    char train_sets[256];       /* "" = the dataset's: voc "VOC2007:trainval,VOC2012:trainval",
                                   fashion-scenes "FashionScenes:train" */
    char val_sets[256];         /* "" = voc "VOC2007:test", fashion-scenes "FashionScenes:test" */
    int scenes_train;           /* fashion-scenes: training canvases (default 10000) */
    int scenes_val;             /* test canvases (default 2000) */
    int scene_size;             /* canvas side in pixels (default 128) */
} tb_data_config;

typedef struct tb_model_config {
    char name[TB_NAME_MAX];     /* resnet18|34|50|101|152, mobilenet_v1, inception_v3 */
    char variant;               /* 'A'..'D' (ResNet); default 'B' */
    char stem[TB_NAME_MAX];     /* auto | imagenet | small (auto: small when image <= 64 px) */
    float width;                /* width multiplier, default 1.0 */
    int classes;                /* 0 = from the dataset */
    char init[TB_NAME_MAX];     /* kaiming | xavier (the paper) */
    float dropout;              /* before the classifier; 0 = none */
    char checkpoint[TB_PATH_MAX]; /* "" or a safetensors file to start from */
    /* detection and segmentation only (absent from other runs' JSON): the
     * backbone's weights: "" (initialised by `init`), a .safetensors file, or
     * "MATRIX/LABEL", the finished run of that classification matrix with
     * this run's seed in the same database */
    char backbone_from[TB_PATH_MAX];
} tb_model_config;

typedef struct tb_optim_config {
    char optimizer[TB_NAME_MAX]; /* sgd */
    double lr;                  /* base learning rate, default 0.1 */
    int batch;                  /* default 256 */
    int base_batch;             /* default 256 */
    bool linear_scaling;        /* lr = lr * batch / base_batch */
    int epochs;                 /* default 1 */
    double momentum;            /* default 0.9 */
    bool nesterov;              /* default true */
    double weight_decay;        /* default 1e-4 */
    double grad_clip;           /* global-norm clip; 0 = off (beyond the paper) */
    int eval_every;             /* evaluate every N epochs (and always after the last); default 1 */
} tb_optim_config;

typedef struct tb_schedule_config {
    tb_schedule_type type;      /* default step */
    int step_epochs[TB_MAX_STEP_EPOCHS]; /* default {30, 60, 90} */
    int n_step_epochs;
    double step_gamma;          /* default 0.1 */
    double poly_power;          /* default 0.9 */
    double warmup_epochs;       /* default 0 (linear from 0, per iteration) */
    double final_lr;            /* lr the cosine/poly/linear decay ends at; default 0 */
} tb_schedule_config;

typedef struct tb_distill_config {
    bool enabled;
    char teacher[TB_NAME_MAX * 2];   /* run label of the same matrix, or "" */
    char teacher_checkpoint[TB_PATH_MAX]; /* safetensors file, or "" */
    tb_model_config teacher_model;  /* architecture of a checkpoint teacher */
    double temperature;         /* default 20 (the paper) */
    double hard_weight;         /* weight of the hard-label CE; default 1 */
} tb_distill_config;

typedef struct tb_tricks_config {
    bool zero_gamma;
    bool no_bias_decay;
    tb_precision precision;     /* default fp32 */
    bool loss_scale_dynamic;    /* loss_scale: "dynamic" */
    double loss_scale;          /* static value, or the initial dynamic scale (default 65536 dynamic, 1 static) */
    double label_smoothing;     /* epsilon; default 0 */
    double mixup_alpha;         /* default 0 (off) */
    int mixup_off_epochs;       /* no mixup/cutmix for the last N epochs */
    double cutmix_alpha;        /* default 0 (off) */
    tb_distill_config distill;
    double ema;                 /* weight EMA decay; 0 = off */
} tb_tricks_config;

/* A short list of numbers (anchor sizes and ratios). */
typedef struct tb_float_list {
    float v[TB_MAX_LIST];
    int n;
} tb_float_list;

/* The detection task (Faster R-CNN, harness/train/detection.c). These keys
 * exist only in detection configs: a classification run's canonical JSON has
 * no "detection" section, so adding them changed no classification run's
 * identity. Defaults are the original paper's and GluonCV's VOC model
 * (docs/config.md). */
typedef struct tb_detection_config {
    int min_side;               /* shorter side resized to this; 0 = native size (VOC: 600) */
    int max_side;               /* unless the longer side would exceed this; 0 = no cap (VOC: 1000) */
    int max_objects;            /* gt boxes per image (capacity), default 64 */
    tb_float_list anchor_sizes; /* anchor side lengths in input pixels: 128, 256, 512 */
    tb_float_list anchor_ratios;/* height / width: 0.5, 1, 2 */
    int rpn_pre_nms_train, rpn_post_nms_train; /* 12000, 2000 */
    int rpn_pre_nms_test, rpn_post_nms_test;   /* 6000, 300 */
    float rpn_nms;              /* 0.7 */
    float rpn_min_size;         /* 16 px */
    int rpn_batch;              /* anchors sampled per image: 256 */
    float rpn_pos_fraction;     /* 0.5 */
    float rpn_pos_iou, rpn_neg_iou; /* 0.7, 0.3 */
    int roi_batch;              /* RoIs sampled per image: 128 */
    float roi_pos_fraction;     /* 0.25 */
    float roi_fg_iou;           /* 0.5 */
    float roi_bg_iou_lo;        /* 0.0 */
    int roi_size;               /* RoIAlign output: 14 (stage 5 halves it to 7) */
    int roi_sampling;           /* RoIAlign samples per bin per axis: 2 */
    bool roi_aligned;           /* half-pixel RoIAlign (Detectron2); false = torchvision/GluonCV legacy */
    float test_score;           /* detections scoring below are dropped: 0.05 */
    float test_nms;             /* per-class NMS: 0.3 */
    int test_max_detections;    /* per image: 100 */
    bool freeze_bn;             /* backbone BN frozen (running statistics, no update): true */
    int frozen_stages;          /* stem and stages 1..N not trained: 1 */
} tb_detection_config;

/* The segmentation task (FCN, harness/train/segmentation.c); like the
 * detection section, present only in segmentation configs. Defaults are
 * GluonCV's FCN on ADE20K. */
typedef struct tb_segmentation_config {
    int base_size;              /* training: shorter side scaled to base_size x U(0.5, 2) (520) */
    int crop_size;              /* training crop and evaluation size (480) */
    bool aux;                   /* auxiliary FCN head on stage 3 (true) */
    float aux_weight;           /* its loss weight (0.5) */
    float head_dropout;         /* dropout in the heads (0.1) */
    bool freeze_bn;             /* BN frozen (running statistics): false, GluonCV trains it */
} tb_segmentation_config;

typedef struct tb_run_config {
    tb_task task;
    tb_data_config data;
    tb_model_config model;
    tb_optim_config optim;
    tb_schedule_config schedule;
    tb_tricks_config tricks;
    tb_detection_config detection;
    tb_segmentation_config segmentation;
    uint64_t seed;
    char device[TB_NAME_MAX];   /* auto | cpu | cuda */
} tb_run_config;


/* ---- parsing, canonical form, identity (harness/config*.c) --------------
 * Messages name the origin (a file, or "matrix.json: steps[2].set"), the key
 * path (tricks.mixup_alpha), the value, and for unknown keys the nearest
 * valid key. All functions return a tb_status (kernels/error.h). */

struct cJSON;

/* Fills every key with its documented default (docs/config.md). */
void tb_config_defaults(tb_run_config *cfg);

/* Reads a run config file: defaults, then the file's keys, then validation. */
int tb_config_load_file(const char *path, tb_run_config *cfg);

/* Same from a parsed JSON object; `origin` names it in messages (may be NULL). */
int tb_config_from_json(const struct cJSON *obj, const char *origin, tb_run_config *cfg);

/* Applies the keys of a (possibly partial, nested) config object on top of
 * `cfg`, without the cross-key validation of tb_config_validate. */
int tb_config_apply_json(tb_run_config *cfg, const struct cJSON *obj, const char *origin);

/* Sets one dotted key path ("tricks.label_smoothing", or a section such as
 * "tricks.distill" with an object or null) to a JSON value. Unknown paths,
 * wrong types and out-of-range values are errors. */
int tb_config_set(tb_run_config *cfg, const char *key, const struct cJSON *value, const char *origin);

/* Checks the rules that involve several keys (increasing step epochs, a
 * distillation teacher, mixup off-epochs < epochs, ...). */
int tb_config_validate(const tb_run_config *cfg, const char *origin);

/* The fully resolved config as a cJSON tree (caller deletes), NULL when out of memory. */
struct cJSON *tb_config_to_json(const tb_run_config *cfg);

/* The canonical JSON (every key, keys sorted, stable numbers; malloc'd, NULL
 * when out of memory) and its SHA-256 in lowercase hex: the run's identity. */
char *tb_config_canonical_json(const tb_run_config *cfg);
int tb_config_hash(const tb_run_config *cfg, char hex[65]);

/* The resolved value at a key path (a leaf or a section) as JSON (caller
 * deletes); TB_ERR_INVALID naming the nearest key for an unknown path. */
int tb_config_get(const tb_run_config *cfg, const char *key, struct cJSON **out);

/* True when `key` is a valid key path (leaf or section). */
bool tb_config_key_exists(const char *key);

/* Every leaf key path, in documentation order (for docs and tests). */
size_t tb_config_key_count(void);
const char *tb_config_key_path(size_t i);

const char *tb_task_name(tb_task task);
const char *tb_schedule_name(tb_schedule_type type);
const char *tb_precision_name(tb_precision prec);

#ifdef __cplusplus
}
#endif
#endif
