/* trickbench bench --task detection: Faster R-CNN training throughput
 * (images/s, median over repeats after a warm-up) of tb_det_step_run, the
 * step the detection trainer runs, on synthetic batches.
 *
 * Decisions:
 *  - The network and step are set up as harness/train/detection.c does, from
 *    a run config: defaults (tb_config_defaults), the model options, and for
 *    the "fashion-scenes" settings the detection section of
 *    matrices/fashion/detection.json on top. "auto" picks the VOC settings
 *    (the config defaults: the original paper's and GluonCV's) for images
 *    >= 512 px and the fashion-scenes ones below.
 *  - Batches are random: images N(0, 1) (already normalised; timing on
 *    zeros would flatter some kernels) and per image --objects gt boxes,
 *    sides uniform in [S/8, S/2], aspect (h/w) in [1/2, 2], random classes;
 *    deterministic (fixed seeds), one batch reused by every step. Each step
 *    draws its own anchor and RoI sampling seed, as the trainer does.
 *  - lr 0.001 (a fixed, small rate: the heads start from random weights and
 *    a diverging loss would change what NMS and sampling see); momentum 0.9,
 *    Nesterov, weight decay 1e-4 (the config defaults). fp32 only, as the
 *    detection trainer.
 */
#include "harness/cmd_bench_det.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cmd_bench_common.h"
#include "harness/config.h"
#include "harness/train/det_step.h"
#include "kernels/error.h"
#include "kernels/rng.h"
#include "models/faster_rcnn.h"
#include "models/models.h"
#include "tricks/decay_mask.h"

#define BENCH_LR 0.001
#define BENCH_SEED 1

static const char usage[] =
    "usage: trickbench bench --task detection --model resnet18|34|50|101|152 [--variant A|B|C|D]\n"
    "                        [--width W] [--stem auto|small|imagenet] [--batch B] [--image S]\n"
    "                        [--classes K] [--channels C] [--objects G]\n"
    "                        [--settings auto|voc|fashion-scenes] [--device auto|cpu|cuda]\n"
    "                        [--steps N] [--warmup N] [--repeats R] [--threads T]\n"
    "                        [--precision fp32] [--json]\n\n"
    "Measures Faster R-CNN (C4) training throughput: one tb_det_step_run per step\n"
    "(backbone + RPN forward, RPN targets and losses, proposals, RoI sampling,\n"
    "RoIAlign + stage 5 box head, losses, backward, SGD) on random S x S images\n"
    "with G random gt boxes each. Prints the median images/s over --repeats runs\n"
    "of --steps steps each, after --warmup steps.\n\n"
    "Settings (anchors, RPN and RoI sampling, proposal counts, RoIAlign size):\n"
    "  voc             the config defaults (anchors 128/256/512, RPN batch 256,\n"
    "                  12000 -> 2000 proposals, 128 RoIs per image, RoIAlign 14)\n"
    "  fashion-scenes  matrices/fashion/detection.json (anchors 16/32/64, RPN batch\n"
    "                  128, 2000 -> 300 proposals, 32 RoIs per image, RoIAlign 7)\n"
    "  auto            voc for S >= 512, fashion-scenes below\n\n"
    "defaults: --variant B --width 1 --stem auto (small with fashion-scenes, imagenet\n"
    "          with voc) --batch 4 --image 128 --classes 10 (fashion-scenes) / 20 (voc)\n"
    "          foreground classes --channels 1 (fashion-scenes) / 3 (voc) --objects 3\n"
    "          --device auto --steps 5 --warmup 2 --repeats 3\n\n"
    "With --json, prints one object: task, model, variant, stem, width, batch, image,\n"
    "channels, classes, settings, the settings' values, feature map, device,\n"
    "threads, images_per_sec, images_per_sec_all (every repeat), step_ms, loss\n"
    "(of the last step), graph_bytes, peak_rss_bytes, device_used_bytes (CUDA),\n"
    "params.\n";

/* The detection section of matrices/fashion/detection.json (its run-time
 * values; the scene counts and sizes only matter to the data). */
static const char fashion_settings[] =
    "{\"detection\": {\"anchor_sizes\": [16, 32, 64], \"anchor_ratios\": [0.5, 1, 2],"
    " \"rpn_pre_nms_train\": 2000, \"rpn_post_nms_train\": 300, \"rpn_pre_nms_test\": 1000,"
    " \"rpn_post_nms_test\": 100, \"rpn_min_size\": 4, \"rpn_batch\": 128, \"roi_batch\": 32,"
    " \"roi_size\": 7, \"freeze_bn\": true, \"frozen_stages\": 1}}";

/* The detection flags beside the shared ones. */
typedef struct det_args {
    tb_bench_args b;
    const char *settings;
    long objects;
} det_args;

/* ------------------------------------------------------------------- state */

typedef struct det_batch {
    float *images, *boxes, *im_size;
    int32_t *labels, *count;
} det_batch;

/* The command's state: options, config, figures, and what a step needs. */
typedef struct det_bench {
    det_args a;
    tb_run_config cfg;
    tb_bench_result r;
    tb_frcnn net;
    tb_det_step step;
    bool step_ready;
    det_batch batch;
    tb_det_host_batch hb;
} det_bench;

/* ------------------------------------------------------------------ options */

static int take_option(void *user, int val, const char *arg, long **target, long *lo, long *hi)
{
    (void)lo;
    det_args *a = user;
    if (val == 'o') {
        *target = &a->objects;
        *hi = 64;
        return TB_OK;
    }
    if (strcmp(arg, "auto") && strcmp(arg, "voc") && strcmp(arg, "fashion-scenes")) /* 'E' */
        return tb_fail(TB_ERR_USAGE, "--settings: expected auto, voc or fashion-scenes, got '%s'", arg);
    a->settings = arg;
    return TB_OK;
}

static int parse_args(int argc, char **argv, det_args *a)
{
    static const struct option extra[] = {
        {"objects", required_argument, 0, 'o'}, {"settings", required_argument, 0, 'E'}, {0, 0, 0, 0}};
    *a = (det_args){.b = {.device = "auto", .stem = "auto", .precision = "fp32", .variant = 'B', .batch = 4,
                          .image = 128, .steps = 5, .warmup = 2, .repeats = 3, .width = 1.0},
                    .settings = "auto", .objects = 3};
    tb_bench_parse_spec spec = {.task = "detection", .task_expected = "detection here", .fp32_only = true,
                                .batch = {1, 4096}, .image = {32, 4096}, .classes = {1, 10000}, .extra = extra,
                                .option = take_option, .user = a};
    TB_TRY(tb_bench_parse(argc, argv, &spec, &a->b));
    if (!strcmp(a->settings, "auto"))
        a->settings = a->b.image >= 512 ? "voc" : "fashion-scenes";
    bool voc = !strcmp(a->settings, "voc");
    if (!strcmp(a->b.stem, "auto"))
        a->b.stem = voc ? "imagenet" : "small";
    if (!a->b.classes)
        a->b.classes = voc ? 20 : 10;
    if (!a->b.channels)
        a->b.channels = voc ? 3 : 1;
    return TB_OK;
}

/* ------------------------------------------------------------------ config */

/* The run config the trainer would get for this benchmark. */
static int make_config(const det_args *a, tb_run_config *cfg)
{
    tb_config_defaults(cfg);
    cfg->task = TB_TASK_DETECTION;
    bool voc = !strcmp(a->settings, "voc");
    snprintf(cfg->data.dataset, sizeof cfg->data.dataset, "%s", voc ? "voc" : "fashion-scenes");
    tb_model_config *m = &cfg->model;
    snprintf(m->name, sizeof m->name, "%s", a->b.model);
    snprintf(m->stem, sizeof m->stem, "%s", a->b.stem);
    m->variant = a->b.variant;
    m->width = (float)a->b.width;
    cfg->optim.batch = (int)a->b.batch;
    snprintf(cfg->device, sizeof cfg->device, "%s", a->b.device);
    if (!voc) {
        cJSON *obj = cJSON_Parse(fashion_settings);
        TB_CHECK(obj != NULL, TB_ERR_NOMEM, "bench: out of memory for the fashion-scenes settings");
        int rc = tb_config_apply_json(cfg, obj, "bench (matrices/fashion/detection.json settings)");
        cJSON_Delete(obj);
        TB_TRY(rc);
    }
    return tb_config_validate(cfg, "bench");
}

static int parse(void *state, int argc, char **argv)
{
    det_bench *s = state;
    TB_TRY(parse_args(argc, argv, &s->a));
    return make_config(&s->a, &s->cfg);
}

/* ------------------------------------------------------------------ network */

/* As build_network and setup_training of harness/train/detection.c. */
static int build_network(const tb_bench_args *a, const tb_run_config *cfg, tb_backend *be, tb_graph **g,
                         tb_frcnn *net, tb_det_step *step, bool *step_ready)
{
    const tb_detection_config *d = &cfg->detection;
    tb_frcnn_spec s;
    memset(&s, 0, sizeof s);
    TB_TRY(tb_model_spec_from_config(&s.backbone, &cfg->model, (int)a->image, (int)a->channels,
                                     (int)a->classes + 1));
    s.images = cfg->optim.batch;
    s.height = s.width = (int)a->image;
    s.anchors = d->anchor_sizes.n * d->anchor_ratios.n;
    s.rois = cfg->optim.batch * d->roi_batch;
    s.roi = (tb_roi_align_params){.pooled_h = d->roi_size, .pooled_w = d->roi_size,
                                  .sampling_ratio = d->roi_sampling, .aligned = d->roi_aligned};
    s.freeze_bn = d->freeze_bn;
    s.frozen_stages = d->frozen_stages;
    TB_TRY(tb_graph_create(g, be, TB_F32, cfg->optim.batch));
    tb_graph_set_seed(*g, cfg->seed);
    TB_TRY(tb_frcnn_build(*g, &s, net));
    TB_TRY(tb_graph_finalize(*g, true));
    TB_TRY(tb_frcnn_init(*g, &s, cfg->seed));
    TB_TRY(tb_trick_decay_mask(*g, cfg->tricks.no_bias_decay));
    tb_det_step_options so = {.images = cfg->optim.batch, .classes = s.backbone.classes,
                              .max_objects = d->max_objects, .det = d, .momentum = cfg->optim.momentum,
                              .weight_decay = cfg->optim.weight_decay, .nesterov = cfg->optim.nesterov};
    TB_TRY(tb_det_step_init(step, *g, net, &so));
    *step_ready = true;
    return TB_OK;
}

/* -------------------------------------------------------------------- data */

static void batch_free(det_batch *b)
{
    free(b->images);
    free(b->boxes);
    free(b->im_size);
    free(b->labels);
    free(b->count);
}

/* Random normalised images and `objects` random boxes per image (see the header comment). */
static int batch_make(const det_args *da, int max_objects, det_batch *b)
{
    const tb_bench_args *a = &da->b;
    size_t n = (size_t)a->batch, g = (size_t)max_objects, px = (size_t)a->image * (size_t)a->image;
    b->images = malloc(n * px * (size_t)a->channels * sizeof(float));
    b->boxes = calloc(n * g * 4, sizeof(float));
    b->im_size = malloc(n * 2 * sizeof(float));
    b->labels = calloc(n * g, sizeof(int32_t));
    b->count = malloc(n * sizeof(int32_t));
    TB_CHECK(b->images && b->boxes && b->im_size && b->labels && b->count, TB_ERR_NOMEM,
             "bench: out of memory for a %ld x %ld x %ld x %ld batch", a->batch, a->image, a->image, a->channels);
    tb_rng rng;
    tb_rng_seed(&rng, 12345, 0);
    for (size_t i = 0; i < n * px * (size_t)a->channels; i++)
        b->images[i] = (float)tb_rng_normal(&rng);
    float side = (float)a->image;
    for (size_t i = 0; i < n; i++) {
        b->im_size[2 * i] = b->im_size[2 * i + 1] = side;
        b->count[i] = (int32_t)da->objects;
        for (long j = 0; j < da->objects; j++) {
            float size = tb_rng_uniform_f(&rng, side / 8.0f, side / 2.0f);
            float aspect = expf(tb_rng_uniform_f(&rng, logf(0.5f), logf(2.0f))); /* h / w */
            float w = size / sqrtf(aspect), h = size * sqrtf(aspect);
            float x0 = tb_rng_uniform_f(&rng, 0.0f, side - w), y0 = tb_rng_uniform_f(&rng, 0.0f, side - h);
            float *box = b->boxes + (i * g + (size_t)j) * 4;
            box[0] = x0;
            box[1] = y0;
            box[2] = x0 + w;
            box[3] = y0 + h;
            b->labels[i * g + (size_t)j] = (int32_t)tb_rng_below(&rng, (uint64_t)a->classes);
        }
    }
    return TB_OK;
}

/* ------------------------------------------------------------------- timing */

/* Steps first .. first + count - 1, each with its own sampling seed. */
static int run_steps(void *state, long first, long count)
{
    det_bench *s = state;
    for (long i = first; i < first + count; i++) {
        tb_det_step_result sr;
        TB_TRY(tb_det_step_run(&s->step, &s->hb, BENCH_LR, tb_splitmix64(BENCH_SEED ^ tb_splitmix64((uint64_t)i)),
                               &sr));
        s->r.loss = sr.loss;
    }
    return TB_OK;
}

static int run(void *state)
{
    det_bench *s = state;
    tb_bench_result *r = &s->r;
    tb_backend *be = NULL;
    TB_TRY(tb_bench_backend(&s->a.b, &be, r));
    tb_graph *g = NULL;
    s->step_ready = false;
    s->batch = (det_batch){0};
    int rc = build_network(&s->a.b, &s->cfg, be, &g, &s->net, &s->step, &s->step_ready);
    if (rc == TB_OK)
        rc = batch_make(&s->a, s->cfg.detection.max_objects, &s->batch);
    if (rc == TB_OK) {
        r->feat_h = s->net.feat_h;
        r->feat_w = s->net.feat_w;
        r->params = tb_graph_param_elements(g);
        r->graph_bytes = tb_graph_memory_bytes(g);
        s->hb = (tb_det_host_batch){.images = s->batch.images, .gt_boxes = s->batch.boxes,
                                    .gt_labels = s->batch.labels, .gt_count = s->batch.count,
                                    .im_size = s->batch.im_size};
        rc = tb_bench_measure(&s->a.b, be, run_steps, s, &r->loss, r);
    }
    batch_free(&s->batch);
    if (s->step_ready)
        tb_det_step_destroy(&s->step);
    tb_graph_destroy(g);
    tb_backend_destroy(be);
    return rc;
}

/* ------------------------------------------------------------------ output */

static void print_list(const tb_float_list *l, const char *sep)
{
    for (int i = 0; i < l->n; i++)
        printf("%s%g", i ? sep : "", (double)l->v[i]);
}

/* One line naming the settings and their values (stderr keeps --json's stdout one object). */
static void describe_settings(const det_args *a, const tb_detection_config *d, const tb_bench_result *r)
{
    fprintf(stderr, "settings: %s (%s): anchors", a->settings,
            strcmp(a->settings, "voc") ? "matrices/fashion/detection.json" : "the config defaults, VOC scale");
    for (int i = 0; i < d->anchor_sizes.n; i++)
        fprintf(stderr, "%s%g", i ? "/" : " ", (double)d->anchor_sizes.v[i]);
    fprintf(stderr, " x ratios");
    for (int i = 0; i < d->anchor_ratios.n; i++)
        fprintf(stderr, "%s%g", i ? "/" : " ", (double)d->anchor_ratios.v[i]);
    fprintf(stderr,
            ", RPN batch %d, proposals %d -> %d, %d RoIs per image, RoIAlign %dx%d (sampling %d), feature map "
            "%dx%d, %ld gt boxes per image\n",
            d->rpn_batch, d->rpn_pre_nms_train, d->rpn_post_nms_train, d->roi_batch, d->roi_size, d->roi_size,
            d->roi_sampling, r->feat_h, r->feat_w, a->objects);
}

static void print_json(const det_args *da, const tb_detection_config *d, const tb_bench_result *r)
{
    const tb_bench_args *a = &da->b;
    printf("{\"task\": \"detection\", \"model\": \"%s\", \"variant\": \"%c\", \"stem\": \"%s\", \"width\": %g, "
           "\"batch\": %ld, \"image\": %ld, \"channels\": %ld, \"classes\": %ld, \"objects\": %ld, "
           "\"precision\": \"fp32\", \"settings\": \"%s\", \"anchor_sizes\": [",
           a->model, a->variant, a->stem, a->width, a->batch, a->image, a->channels, a->classes, da->objects,
           da->settings);
    print_list(&d->anchor_sizes, ", ");
    printf("], \"anchor_ratios\": [");
    print_list(&d->anchor_ratios, ", ");
    printf("], \"rpn_batch\": %d, \"rpn_pre_nms_train\": %d, \"rpn_post_nms_train\": %d, \"roi_batch\": %d, "
           "\"roi_size\": %d, \"roi_sampling\": %d, \"feature_map\": [%d, %d], ",
           d->rpn_batch, d->rpn_pre_nms_train, d->rpn_post_nms_train, d->roi_batch, d->roi_size, d->roi_sampling,
           r->feat_h, r->feat_w);
    tb_bench_print_json_timing(a, r, true);
    printf("}\n");
}

static void print_table(const det_args *da, const tb_bench_result *r)
{
    const tb_bench_args *a = &da->b;
    printf("| model | stem | width | batch | image | settings | device | images/s | ms/step | graph memory | "
           "peak RSS |\n");
    printf("|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|\n");
    printf("| %s-%c Faster R-CNN | %s | %g | %ld | %ldx%ldx%ld | %s |", a->model, a->variant, a->stem, a->width,
           a->batch, a->image, a->image, a->channels, da->settings);
    tb_bench_print_row_timing(r, 2);
}

static void print(const void *state)
{
    const det_bench *s = state;
    describe_settings(&s->a, &s->cfg.detection, &s->r);
    if (s->a.b.json)
        print_json(&s->a, &s->cfg.detection, &s->r);
    else
        print_table(&s->a, &s->r);
}

int tb_bench_detection(int argc, char **argv)
{
    static const tb_bench_command cmd = {.usage = usage, .parse = parse, .run = run, .print = print};
    static det_bench state;
    return tb_bench_main(argc, argv, &cmd, &state);
}
