/* Run config: defaults, parsing and overrides from JSON, validation.
 * The key table (harness/config_keys.c) says what each key is; this file
 * turns JSON values into struct fields and back (config_json.c). */
#include "harness/config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/config_keys.h"
#include "harness/json_util.h"
#include "kernels/error.h"

static void model_defaults(tb_model_config *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "resnet18");
    m->variant = 'B';
    snprintf(m->stem, sizeof m->stem, "auto");
    m->width = 1.0f;
    m->classes = 0;
    snprintf(m->init, sizeof m->init, "kaiming");
    m->dropout = 0.0f;
}

static void float_list(tb_float_list *l, int n, const float *v)
{
    l->n = n;
    memcpy(l->v, v, (size_t)n * sizeof *v);
}

/* The original Faster R-CNN (Ren et al. 2015) and GluonCV's VOC model. */
static void detection_defaults(tb_detection_config *d)
{
    memset(d, 0, sizeof *d);
    d->max_objects = 64;
    float_list(&d->anchor_sizes, 3, (const float[]){128, 256, 512});
    float_list(&d->anchor_ratios, 3, (const float[]){0.5f, 1, 2});
    d->rpn_pre_nms_train = 12000;
    d->rpn_post_nms_train = 2000;
    d->rpn_pre_nms_test = 6000;
    d->rpn_post_nms_test = 300;
    d->rpn_nms = 0.7f;
    d->rpn_min_size = 16;
    d->rpn_batch = 256;
    d->rpn_pos_fraction = 0.5f;
    d->rpn_pos_iou = 0.7f;
    d->rpn_neg_iou = 0.3f;
    d->roi_batch = 128;
    d->roi_pos_fraction = 0.25f;
    d->roi_fg_iou = 0.5f;
    d->roi_bg_iou_lo = 0.0f;
    d->roi_size = 14;
    d->roi_sampling = 2;
    d->roi_aligned = false;
    d->test_score = 0.05f;
    d->test_nms = 0.3f;
    d->test_max_detections = 100;
    d->freeze_bn = true;
    d->frozen_stages = 1;
}

static void distill_defaults(tb_distill_config *d)
{
    memset(d, 0, sizeof *d);
    model_defaults(&d->teacher_model);
    d->temperature = 20.0;
    d->hard_weight = 1.0;
}

void tb_config_defaults(tb_run_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->task = TB_TASK_CLASSIFICATION;

    tb_data_config *d = &cfg->data;
    snprintf(d->dataset, sizeof d->dataset, "fashion-mnist");
    snprintf(d->augment, sizeof d->augment, "auto");
    d->synthetic_train = 512;
    d->synthetic_val = 128;
    d->synthetic_classes = 10;
    d->synthetic_size = 28;
    d->synthetic_channels = 1;
    d->scenes_train = 10000;
    d->scenes_val = 2000;
    d->scene_size = 128;

    model_defaults(&cfg->model);

    tb_optim_config *o = &cfg->optim;
    snprintf(o->optimizer, sizeof o->optimizer, "sgd");
    o->lr = 0.1;
    o->batch = 256;
    o->base_batch = 256;
    o->linear_scaling = false;
    o->epochs = 1;
    o->momentum = 0.9;
    o->nesterov = true;
    o->weight_decay = 1e-4;
    o->grad_clip = 0.0;
    o->eval_every = 1;

    tb_schedule_config *s = &cfg->schedule;
    s->type = TB_SCHED_STEP;
    s->step_epochs[0] = 30;
    s->step_epochs[1] = 60;
    s->step_epochs[2] = 90;
    s->n_step_epochs = 3;
    s->step_gamma = 0.1;
    s->poly_power = 0.9;
    s->warmup_epochs = 0.0;
    s->final_lr = 0.0;

    tb_tricks_config *t = &cfg->tricks;
    t->precision = TB_PREC_FP32;
    t->loss_scale_dynamic = true;
    t->loss_scale = 65536.0;
    distill_defaults(&t->distill);
    detection_defaults(&cfg->detection);
    tb_segmentation_config *sg = &cfg->segmentation;
    sg->base_size = 520;
    sg->crop_size = 480;
    sg->aux = true;
    sg->aux_weight = 0.5f;
    sg->head_dropout = 0.1f;
    sg->freeze_bn = false;

    cfg->seed = 0;
    snprintf(cfg->device, sizeof cfg->device, "auto");
}

/* ---- error messages ------------------------------------------------------ */

#define FAIL(origin, ...) fail_at((origin), __VA_ARGS__)

static int fail_at(const char *origin, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int fail_at(const char *origin, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (origin && *origin) /* "ORIGIN: message" */
        return tb_fail(TB_ERR_INVALID, "%s: %s", origin, msg);
    return tb_fail(TB_ERR_INVALID, "%s", msg);
}

static int type_error(const char *origin, const char *path, const char *expected, const cJSON *v)
{
    char shown[80];
    tb_json_preview(v, shown, sizeof shown);
    return FAIL(origin, "%s: expected %s, got %s (%s)", path, expected, shown, tb_json_type_name(v));
}

static void format_bound(double v, char *buf, size_t size)
{
    if (isinf(v))
        snprintf(buf, size, "inf");
    else
        tb_json_format_number(v, buf, size);
}

static int range_error(const char *origin, const tb_config_key *k, double v)
{
    char val[40], lo[40], hi[40];
    tb_json_format_number(v, val, sizeof val);
    format_bound(k->min, lo, sizeof lo);
    format_bound(k->max, hi, sizeof hi);
    if (isinf(k->max))
        return FAIL(origin, "%s: %s is out of range (must be %s %s)", k->path, val,
                    k->flags & TB_KEY_MIN_OPEN ? ">" : ">=", lo);
    return FAIL(origin, "%s: %s is out of range %c%s, %s%c", k->path, val, k->flags & TB_KEY_MIN_OPEN ? '(' : '[',
                lo, hi, k->flags & TB_KEY_MAX_OPEN ? ')' : ']');
}

static int choice_error(const char *origin, const tb_config_key *k, const char *got)
{
    char list[512] = "";
    size_t n = 0, used = 0;
    while (k->choices[n]) {
        used += (size_t)snprintf(list + used, used < sizeof list ? sizeof list - used : 0, "%s%s",
                                 n ? ", " : "", k->choices[n]);
        n++;
    }
    const char *near = tb_nearest_name(got, k->choices, n);
    char hint[96] = "";
    if (near)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
    return FAIL(origin, "%s: '%s' is not one of %s%s", k->path, got, list, hint);
}

static int unknown_key(const char *origin, const char *path)
{
    char hint[768];
    tb_config_suggest(path, hint, sizeof hint);
    return FAIL(origin, "unknown key '%s'%s", path, hint);
}

/* ---- applying values ----------------------------------------------------- */

static bool in_range(const tb_config_key *k, double v)
{
    if (k->flags & TB_KEY_MIN_OPEN ? !(v > k->min) : !(v >= k->min))
        return false;
    if (k->flags & TB_KEY_MAX_OPEN ? !(v < k->max) : !(v <= k->max))
        return false;
    return true;
}

static int read_number(const char *origin, const tb_config_key *k, const cJSON *v, bool integral, double *out)
{
    if (!cJSON_IsNumber(v))
        return type_error(origin, k->path, integral ? "an integer" : "a number", v);
    double d = v->valuedouble;
    if (!isfinite(d))
        return FAIL(origin, "%s: the number is too large", k->path);
    if (integral && d != floor(d))
        return type_error(origin, k->path, "an integer", v);
    if (!in_range(k, d))
        return range_error(origin, k, d);
    *out = d;
    return TB_OK;
}

static int set_string(const char *origin, const tb_config_key *k, char *dst, const cJSON *v)
{
    if (!cJSON_IsString(v))
        return type_error(origin, k->path, "a string", v);
    if (strlen(v->valuestring) >= k->size)
        return FAIL(origin, "%s: '%.40s...' is too long (at most %zu characters)", k->path, v->valuestring,
                    k->size - 1);
    if (k->kind == TB_KEY_CHOICE) {
        bool ok = false;
        for (size_t i = 0; k->choices[i]; i++)
            ok = ok || !strcmp(k->choices[i], v->valuestring);
        if (!ok)
            return choice_error(origin, k, v->valuestring);
    }
    snprintf(dst, k->size, "%s", v->valuestring);
    return TB_OK;
}

static int set_steps(const char *origin, const tb_config_key *k, tb_run_config *cfg, const cJSON *v)
{
    if (!cJSON_IsArray(v))
        return type_error(origin, k->path, "an array of epochs", v);
    int n = cJSON_GetArraySize(v);
    if (n > TB_MAX_STEP_EPOCHS)
        return FAIL(origin, "%s: %d epochs given, at most %d", k->path, n, TB_MAX_STEP_EPOCHS);
    int vals[TB_MAX_STEP_EPOCHS];
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        char path[96];
        snprintf(path, sizeof path, "%s[%d]", k->path, i);
        tb_config_key item = *k;
        item.path = path;
        double d;
        TB_TRY(read_number(origin, &item, e, true, &d));
        if (i > 0 && (int)d <= vals[i - 1])
            return FAIL(origin, "%s: epochs must increase (%d after %d)", k->path, (int)d, vals[i - 1]);
        vals[i] = (int)d;
    }
    memcpy(cfg->schedule.step_epochs, vals, (size_t)n * sizeof vals[0]);
    cfg->schedule.n_step_epochs = n;
    return TB_OK;
}

static int set_float_list(const char *origin, const tb_config_key *k, tb_float_list *out, const cJSON *v)
{
    if (!cJSON_IsArray(v))
        return type_error(origin, k->path, "an array of numbers", v);
    int n = cJSON_GetArraySize(v);
    if (n < 1 || n > TB_MAX_LIST)
        return FAIL(origin, "%s: %d numbers given, 1 to %d allowed", k->path, n, TB_MAX_LIST);
    tb_float_list l = {.n = n};
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        char path[96];
        snprintf(path, sizeof path, "%s[%d]", k->path, i);
        tb_config_key item = *k;
        item.path = path;
        double d;
        TB_TRY(read_number(origin, &item, e, false, &d));
        l.v[i] = (float)d;
    }
    *out = l;
    return TB_OK;
}

static int set_value(tb_run_config *cfg, const tb_config_key *k, const cJSON *v, const char *origin)
{
    char *field = (char *)cfg + k->offset;
    double d;
    switch (k->kind) {
    case TB_KEY_STRING:
    case TB_KEY_CHOICE:
        return set_string(origin, k, field, v);
    case TB_KEY_ENUM: {
        if (!cJSON_IsString(v))
            return type_error(origin, k->path, "a string", v);
        for (int i = 0; k->choices[i]; i++) {
            if (!strcmp(k->choices[i], v->valuestring)) {
                memcpy(field, &i, sizeof i); /* enums here are int-sized */
                return TB_OK;
            }
        }
        return choice_error(origin, k, v->valuestring);
    }
    case TB_KEY_INT:
        TB_TRY(read_number(origin, k, v, true, &d));
        *(int *)(void *)field = (int)d;
        return TB_OK;
    case TB_KEY_INT64:
        TB_TRY(read_number(origin, k, v, true, &d));
        *(int64_t *)(void *)field = (int64_t)d;
        return TB_OK;
    case TB_KEY_UINT64:
        TB_TRY(read_number(origin, k, v, true, &d));
        *(uint64_t *)(void *)field = (uint64_t)d;
        return TB_OK;
    case TB_KEY_DOUBLE:
        TB_TRY(read_number(origin, k, v, false, &d));
        *(double *)(void *)field = d;
        return TB_OK;
    case TB_KEY_FLOAT:
        TB_TRY(read_number(origin, k, v, false, &d));
        *(float *)(void *)field = (float)d;
        return TB_OK;
    case TB_KEY_BOOL:
        if (!cJSON_IsBool(v))
            return type_error(origin, k->path, "true or false", v);
        *(bool *)(void *)field = cJSON_IsTrue(v);
        return TB_OK;
    case TB_KEY_VARIANT:
        if (!cJSON_IsString(v))
            return type_error(origin, k->path, "a string (\"A\" to \"D\")", v);
        if (strlen(v->valuestring) != 1 || v->valuestring[0] < 'A' || v->valuestring[0] > 'D')
            return FAIL(origin, "%s: '%s' is not one of A, B, C, D", k->path, v->valuestring);
        *field = v->valuestring[0];
        return TB_OK;
    case TB_KEY_STEP_LIST:
        return set_steps(origin, k, cfg, v);
    case TB_KEY_FLOAT_LIST:
        return set_float_list(origin, k, (tb_float_list *)(void *)field, v);
    case TB_KEY_LOSS_SCALE:
        if (cJSON_IsString(v)) {
            if (strcmp(v->valuestring, "dynamic"))
                return FAIL(origin, "%s: '%s' is neither a number nor \"dynamic\"", k->path, v->valuestring);
            cfg->tricks.loss_scale_dynamic = true;
            cfg->tricks.loss_scale = 65536.0; /* initial dynamic scale */
            return TB_OK;
        }
        if (!cJSON_IsNumber(v))
            return type_error(origin, k->path, "a number or \"dynamic\"", v);
        TB_TRY(read_number(origin, k, v, false, &d));
        cfg->tricks.loss_scale_dynamic = false;
        cfg->tricks.loss_scale = d;
        return TB_OK;
    case TB_KEY_SECTION:
        break;
    }
    return tb_fail(TB_ERR_INTERNAL, "config key %s: unexpected kind %d", k->path, (int)k->kind);
}

static bool under_distill(const char *path) { return !strncmp(path, "tricks.distill", 14); }

/* Any key under tricks.distill switches distillation on: the matrix can set
 * "tricks.distill.teacher" alone on a base without a distill section. */
static void enable_distill(tb_run_config *cfg)
{
    if (!cfg->tricks.distill.enabled) {
        distill_defaults(&cfg->tricks.distill);
        cfg->tricks.distill.enabled = true;
    }
}

static int apply_object(tb_run_config *cfg, const char *prefix, const cJSON *obj, const char *origin);

static int apply_key(tb_run_config *cfg, const char *path, const cJSON *v, const char *origin)
{
    const tb_config_key *k = tb_config_find_key(path);
    if (!k)
        return unknown_key(origin, path);
    if (k->kind == TB_KEY_SECTION) {
        if (cJSON_IsNull(v) && (k->flags & TB_KEY_NULLABLE)) {
            distill_defaults(&cfg->tricks.distill); /* only tricks.distill is nullable */
            return TB_OK;
        }
        if (!cJSON_IsObject(v))
            return type_error(origin, path, k->flags & TB_KEY_NULLABLE ? "an object or null" : "an object", v);
        if (under_distill(path))
            enable_distill(cfg);
        return apply_object(cfg, path, v, origin);
    }
    if (under_distill(path))
        enable_distill(cfg);
    return set_value(cfg, k, v, origin);
}

static int apply_object(tb_run_config *cfg, const char *prefix, const cJSON *obj, const char *origin)
{
    const char *dup = tb_json_duplicate_key(obj);
    if (dup)
        return FAIL(origin, "key '%s%s%s' is given twice", prefix, *prefix ? "." : "", dup);
    for (const cJSON *m = obj->child; m; m = m->next) {
        char path[256];
        int n = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", m->string ? m->string : "");
        if (n < 0 || (size_t)n >= sizeof path)
            return FAIL(origin, "key '%s.%.40s...' is too long", prefix, m->string);
        TB_TRY(apply_key(cfg, path, m, origin));
    }
    return TB_OK;
}

int tb_config_apply_json(tb_run_config *cfg, const cJSON *obj, const char *origin)
{
    if (!cJSON_IsObject(obj))
        return FAIL(origin, "expected a JSON object (the run config), got %s", tb_json_type_name(obj));
    return apply_object(cfg, "", obj, origin);
}

int tb_config_set(tb_run_config *cfg, const char *key, const cJSON *value, const char *origin)
{
    if (!key || !*key)
        return FAIL(origin, "empty key path");
    return apply_key(cfg, key, value, origin);
}

/* A key of another task set to anything but its default is a mistake worth
 * an error: it would be dropped from the run's JSON and do nothing. */
static int check_task_keys(const tb_run_config *cfg, const char *origin)
{
    tb_run_config d;
    tb_config_defaults(&d);
    for (size_t i = 0; i < tb_config_n_keys; i++) {
        const tb_config_key *k = &tb_config_keys[i];
        if (k->kind == TB_KEY_SECTION || tb_config_key_applies(cfg, k))
            continue;
        cJSON *a = tb_config_key_json(cfg, k), *b = tb_config_key_json(&d, k);
        bool same = a && b && cJSON_Compare(a, b, true);
        cJSON_Delete(a);
        cJSON_Delete(b);
        if (!same)
            return FAIL(origin, "%s: applies to the %s task only (task is %s)", k->path,
                        (k->flags & TB_KEY_DETECTION)      ? "detection"
                        : (k->flags & TB_KEY_SEGMENTATION) ? "segmentation"
                                                           : "detection and segmentation",
                        tb_task_name(cfg->task));
    }
    return TB_OK;
}

/* Which task can read which dataset. */
static bool dataset_serves(const char *name, tb_task task)
{
    bool boxes = !strcmp(name, "voc"), masks = !strcmp(name, "ade20k"), both = !strcmp(name, "fashion-scenes");
    switch (task) {
    case TB_TASK_DETECTION: return boxes || both;
    case TB_TASK_SEGMENTATION: return masks || both;
    case TB_TASK_CLASSIFICATION: break;
    }
    return !boxes && !masks && !both;
}

static int validate_datasets(const tb_run_config *cfg, const char *origin)
{
    if (dataset_serves(cfg->data.dataset, cfg->task))
        return TB_OK;
    return FAIL(origin, "data.dataset: the %s task cannot read '%s' (classification: fashion-mnist, idx, cifar10, "
                        "cifar100, imagefolder, synthetic; detection: voc, fashion-scenes; segmentation: ade20k, "
                        "fashion-scenes)",
                tb_task_name(cfg->task), cfg->data.dataset);
}

static int validate_detection(const tb_run_config *cfg, const char *origin)
{
    const tb_detection_config *d = &cfg->detection;
    if (cfg->task != TB_TASK_DETECTION)
        return TB_OK;
    if (d->rpn_neg_iou > d->rpn_pos_iou)
        return FAIL(origin, "detection.rpn_neg_iou %g is above detection.rpn_pos_iou %g", (double)d->rpn_neg_iou,
                    (double)d->rpn_pos_iou);
    if (d->roi_bg_iou_lo >= d->roi_fg_iou)
        return FAIL(origin, "detection.roi_bg_iou_lo %g must be below detection.roi_fg_iou %g",
                    (double)d->roi_bg_iou_lo, (double)d->roi_fg_iou);
    if (d->rpn_post_nms_train > d->rpn_pre_nms_train || d->rpn_post_nms_test > d->rpn_pre_nms_test)
        return FAIL(origin, "detection.rpn_post_nms_*: more proposals after NMS than before (%d > %d or %d > %d)",
                    d->rpn_post_nms_train, d->rpn_pre_nms_train, d->rpn_post_nms_test, d->rpn_pre_nms_test);
    if (d->max_side > 0 && d->min_side > d->max_side)
        return FAIL(origin, "detection.min_side %d exceeds detection.max_side %d", d->min_side, d->max_side);
    if (strncmp(cfg->model.name, "resnet", 6))
        return FAIL(origin, "model.name: the detection backbone must be a ResNet (got %s)", cfg->model.name);
    return TB_OK;
}

int tb_config_validate(const tb_run_config *cfg, const char *origin)
{
    TB_TRY(check_task_keys(cfg, origin));
    TB_TRY(validate_datasets(cfg, origin));
    TB_TRY(validate_detection(cfg, origin));
    if (cfg->task == TB_TASK_SEGMENTATION && strncmp(cfg->model.name, "resnet", 6))
        return FAIL(origin, "model.name: the segmentation backbone must be a ResNet (got %s)", cfg->model.name);
    const tb_tricks_config *t = &cfg->tricks;
    if (t->distill.enabled) {
        bool by_label = t->distill.teacher[0] != '\0';
        bool by_file = t->distill.teacher_checkpoint[0] != '\0';
        if (by_label == by_file)
            return FAIL(origin, "tricks.distill: give exactly one of teacher (a run label of the matrix) "
                                "or teacher_checkpoint (a safetensors file)");
    }
    if ((t->mixup_alpha > 0 || t->cutmix_alpha > 0) && t->mixup_off_epochs >= cfg->optim.epochs)
        return FAIL(origin,
                    "tricks.mixup_off_epochs: %d leaves no epoch with mixup/cutmix (optim.epochs is %d)",
                    t->mixup_off_epochs, cfg->optim.epochs);
    if (cfg->schedule.warmup_epochs > cfg->optim.epochs)
        return FAIL(origin, "schedule.warmup_epochs: %g is longer than the run (optim.epochs is %d)",
                    cfg->schedule.warmup_epochs, cfg->optim.epochs);
    if (cfg->data.holdout > 0 && cfg->data.train_limit > 0 && cfg->data.holdout >= cfg->data.train_limit)
        return FAIL(origin, "data.holdout: %lld leaves no training images (data.train_limit is %lld)",
                    (long long)cfg->data.holdout, (long long)cfg->data.train_limit);
    return TB_OK;
}

int tb_config_from_json(const cJSON *obj, const char *origin, tb_run_config *cfg)
{
    tb_config_defaults(cfg);
    TB_TRY(tb_config_apply_json(cfg, obj, origin));
    return tb_config_validate(cfg, origin);
}

int tb_config_load_file(const char *path, tb_run_config *cfg)
{
    cJSON *root = NULL;
    TB_TRY(tb_json_load_file(path, &root));
    int rc = tb_config_from_json(root, path, cfg);
    cJSON_Delete(root);
    return rc;
}

bool tb_config_key_exists(const char *key) { return tb_config_find_key(key) != NULL; }

size_t tb_config_key_count(void)
{
    size_t n = 0;
    for (size_t i = 0; i < tb_config_n_keys; i++)
        n += tb_config_keys[i].kind != TB_KEY_SECTION;
    return n;
}

const char *tb_config_key_path(size_t i)
{
    for (size_t j = 0; j < tb_config_n_keys; j++) {
        if (tb_config_keys[j].kind == TB_KEY_SECTION)
            continue;
        if (i-- == 0)
            return tb_config_keys[j].path;
    }
    return NULL;
}
