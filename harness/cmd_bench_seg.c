/* trickbench bench --task segmentation: FCN training throughput (images/s,
 * median over repeats after a warm-up) of the step the segmentation trainer
 * runs, on synthetic batches.
 *
 * Decisions:
 *  - The network is set up as harness/train/segmentation.c does, from a run
 *    config: defaults (tb_config_defaults: auxiliary head on, weight 0.5,
 *    head dropout 0.1, BN trained; SGD momentum 0.9, Nesterov, weight decay
 *    1e-4) and the model options. The step is the trainer's own
 *    (harness/train/seg_step.h): upload images and labels, forward, pixel-
 *    wise softmax CE on the main and the auxiliary logits, backward of
 *    main + aux_weight * aux, SGD, one download of the two losses.
 *  - "auto" defaults follow the image size: below 256 px the fashion-scenes
 *    setting (matrices/fashion/segmentation.json: small stem, 11 classes,
 *    1 channel), from 256 px the ADE20K one (the paper's Table 9: ImageNet
 *    stem, 150 classes, 3 channels).
 *  - Batches are random and deterministic (fixed seed), one batch reused by
 *    every step: images N(0, 1) (already normalised; timing on zeros would
 *    flatter some kernels), labels uniform over the classes with 5 % of the
 *    pixels ignored (-1), as unlabelled ADE20K pixels are.
 *  - lr 0.001, a fixed small rate (the timing does not depend on it; a
 *    diverging loss would only make the run look broken). fp32 only, as
 *    the segmentation trainer.
 */
#include "harness/cmd_bench_seg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cmd_bench_common.h"
#include "harness/config.h"
#include "harness/train/seg_step.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "kernels/rng.h"
#include "models/fcn.h"
#include "models/models.h"
#include "tricks/decay_mask.h"

#define BENCH_LR 0.001
#define IGNORED_PERCENT 5
#define ADE20K_FROM_PX 256

static const char usage[] =
    "usage: trickbench bench --task segmentation --model resnet18|34|50|101|152 [--variant A|B|C|D]\n"
    "                        [--width W] [--stem auto|small|imagenet] [--batch B] [--image S]\n"
    "                        [--classes K] [--channels C] [--device auto|cpu|cuda]\n"
    "                        [--steps N] [--warmup N] [--repeats R] [--threads T]\n"
    "                        [--precision fp32] [--json]\n\n"
    "Measures FCN training throughput (models/fcn.h: dilated ResNet, output stride\n"
    "8 with the ImageNet stem, FCN head + auxiliary head on layer3, bilinear\n"
    "upsampling): upload, forward, pixel-wise softmax CE on both heads (auxiliary\n"
    "weight 0.5, 5 % of the pixels ignored), backward, SGD, the segmentation\n"
    "trainer's step, on random S x S images. Prints the median images/s over\n"
    "--repeats runs of --steps steps each, after --warmup steps.\n\n"
    "defaults: --variant B --width 1 --batch 8 --image 96 --device auto --steps 5\n"
    "          --warmup 2 --repeats 3; below 256 px (fashion-scenes) --stem small\n"
    "          --classes 11 --channels 1, from 256 px (ADE20K) --stem imagenet\n"
    "          --classes 150 --channels 3\n\n"
    "With --json, prints one object: task, model, variant, stem, width, batch, image,\n"
    "channels, classes, aux_weight, head_dropout, feature map, device, threads,\n"
    "images_per_sec, images_per_sec_all (every repeat), step_ms, loss (of the last\n"
    "step), graph_bytes, peak_rss_bytes, device_used_bytes (CUDA), params.\n";

/* The command's state: options, config, figures, and the trainer's state for
 * one step (seg_run of harness/train/segmentation.c). */
typedef struct seg_bench {
    tb_bench_args a;
    tb_run_config cfg;
    tb_bench_result r;
    tb_backend *be;
    tb_fcn_spec spec;
    tb_fcn net;
    tb_graph *g;
    int classes;
    tb_seg_step step;
    bool step_ready;
    float *host_images;
    int32_t *host_labels;
} seg_bench;

/* ------------------------------------------------------------------ options */

/* The "auto" defaults (see the header comment). */
static void fill_defaults(tb_bench_args *a)
{
    bool ade = a->image >= ADE20K_FROM_PX;
    if (!strcmp(a->stem, "auto"))
        a->stem = ade ? "imagenet" : "small";
    if (!a->classes)
        a->classes = ade ? 150 : 11;
    if (!a->channels)
        a->channels = ade ? 3 : 1;
}

static int parse_args(int argc, char **argv, tb_bench_args *a)
{
    static const tb_bench_parse_spec spec = {.task = "segmentation", .task_expected = "segmentation here",
                                             .fp32_only = true, .batch = {1, 4096}, .image = {8, 4096},
                                             .classes = {2, 10000}};
    *a = (tb_bench_args){.device = "auto", .stem = "auto", .precision = "fp32", .variant = 'B', .batch = 8,
                         .image = 96, .steps = 5, .warmup = 2, .repeats = 3, .width = 1.0};
    TB_TRY(tb_bench_parse(argc, argv, &spec, a));
    fill_defaults(a);
    return TB_OK;
}

/* ------------------------------------------------------------------ config */

/* The run config the trainer would get for this benchmark (the crop is the image). */
static int make_config(const tb_bench_args *a, tb_run_config *cfg)
{
    tb_config_defaults(cfg);
    cfg->task = TB_TASK_SEGMENTATION;
    snprintf(cfg->data.dataset, sizeof cfg->data.dataset, "%s",
             a->image >= ADE20K_FROM_PX ? "ade20k" : "fashion-scenes");
    tb_model_config *m = &cfg->model;
    snprintf(m->name, sizeof m->name, "%s", a->model);
    snprintf(m->stem, sizeof m->stem, "%s", a->stem);
    m->variant = a->variant;
    m->width = (float)a->width;
    cfg->optim.batch = (int)a->batch;
    cfg->segmentation.crop_size = (int)a->image;
    cfg->segmentation.base_size = (int)a->image;
    snprintf(cfg->device, sizeof cfg->device, "%s", a->device);
    return tb_config_validate(cfg, "the options");
}

static int parse(void *state, int argc, char **argv)
{
    seg_bench *s = state;
    TB_TRY(parse_args(argc, argv, &s->a));
    return make_config(&s->a, &s->cfg);
}

/* ------------------------------------------------------------------ network */

/* As build_network and setup_training of harness/train/segmentation.c. */
static int build_network(seg_bench *s)
{
    const tb_bench_args *a = &s->a;
    const tb_run_config *cfg = &s->cfg;
    tb_fcn_spec *sp = &s->spec;
    memset(sp, 0, sizeof *sp);
    s->classes = (int)a->classes;
    TB_TRY(tb_model_spec_from_config(&sp->backbone, &cfg->model, (int)a->image, (int)a->channels, s->classes));
    sp->aux = cfg->segmentation.aux;
    sp->head_dropout = cfg->segmentation.head_dropout;
    sp->freeze_bn = cfg->segmentation.freeze_bn;
    TB_TRY(tb_graph_create(&s->g, s->be, TB_F32, cfg->optim.batch));
    tb_graph_set_seed(s->g, cfg->seed);
    TB_TRY(tb_fcn_build(s->g, sp, &s->net));
    TB_TRY(tb_graph_finalize(s->g, true));
    TB_TRY(tb_fcn_init(s->g, sp, cfg->seed));
    TB_TRY(tb_trick_decay_mask(s->g, cfg->tricks.no_bias_decay));

    TB_TRY(tb_seg_step_init(&s->step, s->g, &s->net, sp, cfg));
    s->step_ready = true;
    return TB_OK;
}

/* -------------------------------------------------------------------- data */

/* Random normalised images and labels with IGNORED_PERCENT % ignored pixels. */
static int batch_make(seg_bench *s)
{
    const tb_bench_args *a = &s->a;
    size_t pixels = (size_t)a->batch * (size_t)a->image * (size_t)a->image;
    s->host_images = malloc(pixels * (size_t)a->channels * sizeof(float));
    s->host_labels = malloc(pixels * sizeof(int32_t));
    TB_CHECK(s->host_images && s->host_labels, TB_ERR_NOMEM, "bench: out of memory for a %ld x %ld x %ld x %ld batch",
             a->batch, a->image, a->image, a->channels);
    tb_rng rng;
    tb_rng_seed(&rng, 12345, 0);
    for (size_t i = 0; i < pixels * (size_t)a->channels; i++)
        s->host_images[i] = (float)tb_rng_normal(&rng);
    for (size_t i = 0; i < pixels; i++)
        s->host_labels[i] = tb_rng_below(&rng, 100) < IGNORED_PERCENT
                                ? -1
                                : (int32_t)tb_rng_below(&rng, (uint64_t)a->classes);
    return TB_OK;
}

/* ------------------------------------------------------------------- timing */

static int run_steps(void *state, long first, long count)
{
    (void)first;
    seg_bench *s = state;
    for (long i = 0; i < count; i++)
        TB_TRY(tb_seg_step_run(&s->step, s->host_images, s->host_labels, BENCH_LR, &s->r.loss));
    return TB_OK;
}

static int run(void *state)
{
    seg_bench *s = state;
    tb_bench_result *r = &s->r;
    s->be = NULL;
    s->g = NULL;
    s->step_ready = false;
    s->host_images = NULL;
    s->host_labels = NULL;
    TB_TRY(tb_bench_backend(&s->a, &s->be, r));
    int rc = build_network(s);
    if (rc == TB_OK)
        rc = batch_make(s);
    if (rc == TB_OK) {
        r->feat_h = s->net.feat_h;
        r->feat_w = s->net.feat_w;
        r->params = tb_graph_param_elements(s->g);
        r->graph_bytes = tb_graph_memory_bytes(s->g);
        rc = tb_bench_measure(&s->a, s->be, run_steps, s, &r->loss, r);
    }
    free(s->host_images);
    free(s->host_labels);
    if (s->step_ready)
        tb_seg_step_destroy(&s->step);
    tb_graph_destroy(s->g);
    tb_backend_destroy(s->be);
    return rc;
}

/* ------------------------------------------------------------------ output */

static void print_json(const tb_bench_args *a, const tb_run_config *cfg, const tb_bench_result *r)
{
    const tb_segmentation_config *sg = &cfg->segmentation;
    printf("{\"task\": \"segmentation\", \"model\": \"%s\", \"variant\": \"%c\", \"stem\": \"%s\", \"width\": %g, "
           "\"batch\": %ld, \"image\": %ld, \"channels\": %ld, \"classes\": %ld, \"precision\": \"fp32\", "
           "\"aux_weight\": %g, \"head_dropout\": %g, \"ignored_percent\": %d, \"feature_map\": [%d, %d], ",
           a->model, a->variant, a->stem, a->width, a->batch, a->image, a->channels, a->classes,
           sg->aux ? (double)sg->aux_weight : 0.0, (double)sg->head_dropout, IGNORED_PERCENT, r->feat_h, r->feat_w);
    tb_bench_print_json_timing(a, r, true);
    printf("}\n");
}

static void print_table(const tb_bench_args *a, const tb_bench_result *r)
{
    printf("| model | stem | width | batch | image | classes | feature map | device | images/s | ms/step | "
           "graph memory | peak RSS |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|\n");
    printf("| %s-%c FCN | %s | %g | %ld | %ldx%ldx%ld | %ld | %dx%d |", a->model, a->variant, a->stem, a->width,
           a->batch, a->image, a->image, a->channels, a->classes, r->feat_h, r->feat_w);
    tb_bench_print_row_timing(r, 2);
}

static void print(const void *state)
{
    const seg_bench *s = state;
    const tb_bench_args *a = &s->a;
    fprintf(stderr, "FCN: dilated %s-%c (%s stem, width %g), feature map %dx%d, main + auxiliary head (weight %g), "
                    "head dropout %g, %ld classes, %d %% of the pixels ignored\n",
            a->model, a->variant, a->stem, a->width, s->r.feat_h, s->r.feat_w, (double)s->cfg.segmentation.aux_weight,
            (double)s->cfg.segmentation.head_dropout, a->classes, IGNORED_PERCENT);
    if (a->json)
        print_json(a, &s->cfg, &s->r);
    else
        print_table(a, &s->r);
}

int tb_bench_segmentation(int argc, char **argv)
{
    static const tb_bench_command cmd = {.usage = usage, .parse = parse, .run = run, .print = print};
    static seg_bench state;
    return tb_bench_main(argc, argv, &cmd, &state);
}
