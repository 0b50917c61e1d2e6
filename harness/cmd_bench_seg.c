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

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "harness/cli.h"
#include "harness/clock.h"
#include "harness/commands.h"
#include "harness/config.h"
#include "harness/stats.h"
#include "harness/train/seg_step.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "kernels/rng.h"
#include "models/fcn.h"
#include "models/models.h"
#include "tricks/decay_mask.h"

#define MAX_REPEATS 1000
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
    "step), graph_bytes, peak_rss_bytes, params.\n";

typedef struct seg_args {
    const char *model, *device, *stem;
    char variant;
    long batch, image, steps, warmup, repeats, threads, classes, channels;
    double width;
    bool json;
} seg_args;

typedef struct seg_result {
    double ips_median, ips[MAX_REPEATS], step_ms;
    float loss;
    size_t graph_bytes;
    long peak_rss;
    int64_t params;
    int feat_h, feat_w, threads;
    char device[128];
} seg_result;

/* The trainer's state for one step (seg_run of harness/train/segmentation.c). */
typedef struct seg_bench {
    const tb_run_config *cfg;
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

static int parse_width(const char *value, double *out)
{
    char *end;
    *out = strtod(value, &end);
    if (*end || !(*out > 0.0 && *out <= 16.0))
        return tb_fail(TB_ERR_USAGE, "--width: expected a number in (0, 16], got '%s'", value);
    return TB_OK;
}

static const char *option_name(const struct option *opts, int ch)
{
    for (const struct option *o = opts; o->name; o++)
        if (o->val == ch)
            return o->name;
    return "?";
}

/* The "auto" defaults (see the header comment). */
static void fill_defaults(seg_args *a)
{
    bool ade = a->image >= ADE20K_FROM_PX;
    if (!strcmp(a->stem, "auto"))
        a->stem = ade ? "imagenet" : "small";
    if (!a->classes)
        a->classes = ade ? 150 : 11;
    if (!a->channels)
        a->channels = ade ? 3 : 1;
}

static int parse_args(int argc, char **argv, seg_args *a)
{
    static const struct option opts[] = {
        {"task", required_argument, 0, 'T'},      {"model", required_argument, 0, 'm'},
        {"variant", required_argument, 0, 'V'},   {"width", required_argument, 0, 'W'},
        {"stem", required_argument, 0, 'S'},      {"batch", required_argument, 0, 'b'},
        {"image", required_argument, 0, 'i'},     {"classes", required_argument, 0, 'k'},
        {"channels", required_argument, 0, 'c'},  {"device", required_argument, 0, 'd'},
        {"steps", required_argument, 0, 's'},     {"warmup", required_argument, 0, 'w'},
        {"repeats", required_argument, 0, 'r'},   {"threads", required_argument, 0, 't'},
        {"precision", required_argument, 0, 'p'}, {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0}};
    *a = (seg_args){.device = "auto", .stem = "auto", .variant = 'B', .batch = 8, .image = 96, .steps = 5,
                    .warmup = 2, .repeats = 3, .width = 1.0};
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long *target = NULL;
        long lo = 1, hi = 1L << 30;
        switch (ch) {
        case 'T':
            if (strcmp(optarg, "segmentation"))
                return tb_fail(TB_ERR_USAGE, "--task: expected segmentation here, got '%s'", optarg);
            break;
        case 'm': a->model = optarg; break;
        case 'p':
            if (strcmp(optarg, "fp32"))
                return tb_fail(TB_ERR_USAGE, "--precision: the segmentation task trains in fp32 only, got '%s'",
                               optarg);
            break;
        case 'V':
            if (strlen(optarg) != 1 || optarg[0] < 'A' || optarg[0] > 'D')
                return tb_fail(TB_ERR_USAGE, "--variant: expected A, B, C or D, got '%s'", optarg);
            a->variant = optarg[0];
            break;
        case 'W': TB_TRY(parse_width(optarg, &a->width)); break;
        case 'S': a->stem = optarg; break;
        case 'd': a->device = optarg; break;
        case 'j': a->json = true; break;
        case 'b': target = &a->batch; hi = 4096; break;
        case 'i': target = &a->image; lo = 8; hi = 4096; break;
        case 'k': target = &a->classes; lo = 2; hi = 10000; break;
        case 'c': target = &a->channels; hi = 4; break;
        case 's': target = &a->steps; break;
        case 'w': target = &a->warmup; lo = 0; break;
        case 'r': target = &a->repeats; hi = MAX_REPEATS; break;
        case 't': target = &a->threads; lo = 0; hi = 1024; break;
        default:
            return tb_fail(TB_ERR_USAGE, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (target) {
            char name[32];
            snprintf(name, sizeof name, "--%s", option_name(opts, ch));
            TB_TRY(tb_cli_parse_int(name, optarg, lo, hi, target));
        }
    }
    if (optind < argc)
        return tb_fail(TB_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!a->model)
        return tb_fail(TB_ERR_USAGE, "--model is required (e.g. --model resnet50)");
    fill_defaults(a);
    return TB_OK;
}

/* ------------------------------------------------------------------ config */

/* The run config the trainer would get for this benchmark (the crop is the image). */
static int make_config(const seg_args *a, tb_run_config *cfg)
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

/* ------------------------------------------------------------------ network */

/* As build_network and setup_training of harness/train/segmentation.c. */
static int build_network(const seg_args *a, seg_bench *s)
{
    const tb_run_config *cfg = s->cfg;
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
static int batch_make(const seg_args *a, seg_bench *s)
{
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

static int timed_steps(seg_bench *s, long count, float *loss)
{
    for (long i = 0; i < count; i++)
        TB_TRY(tb_seg_step_run(&s->step, s->host_images, s->host_labels, BENCH_LR, loss));
    return TB_OK;
}

static int measure(const seg_args *a, seg_bench *s, seg_result *r)
{
    TB_TRY(timed_steps(s, a->warmup, &r->loss));
    for (long rep = 0; rep < a->repeats; rep++) {
        TB_TRY(tb_synchronize(s->be));
        double t0 = tb_seconds_now();
        TB_TRY(timed_steps(s, a->steps, &r->loss));
        TB_TRY(tb_synchronize(s->be));
        r->ips[rep] = (double)a->batch * (double)a->steps / (tb_seconds_now() - t0);
    }
    r->ips_median = tb_stats_median(r->ips, (int)a->repeats);
    r->step_ms = 1000.0 * (double)a->batch / r->ips_median;
    if (!isfinite(r->loss))
        fprintf(stderr, "bench: warning: the loss is %g after %ld steps (timings may not be representative)\n",
                (double)r->loss, a->warmup + a->repeats * a->steps);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->peak_rss = ru.ru_maxrss * 1024L;
    return TB_OK;
}

static int run_bench(const seg_args *a, const tb_run_config *cfg, seg_result *r)
{
    tb_device_kind kind;
    TB_TRY(tb_device_parse(a->device, &kind));
    seg_bench s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    char note[256];
    TB_TRY(tb_backend_create(&s.be, kind, (int)a->threads, note, sizeof note));
    fprintf(stderr, "%s\n", note);
    snprintf(r->device, sizeof r->device, "%s", s.be->name);
    r->threads = s.be->threads;
    int rc = build_network(a, &s);
    if (rc == TB_OK)
        rc = batch_make(a, &s);
    if (rc == TB_OK) {
        r->feat_h = s.net.feat_h;
        r->feat_w = s.net.feat_w;
        r->params = tb_graph_param_elements(s.g);
        r->graph_bytes = tb_graph_memory_bytes(s.g);
        rc = measure(a, &s, r);
    }
    free(s.host_images);
    free(s.host_labels);
    if (s.step_ready)
        tb_seg_step_destroy(&s.step);
    tb_graph_destroy(s.g);
    tb_backend_destroy(s.be);
    return rc;
}

/* ------------------------------------------------------------------ output */

static void print_json(const seg_args *a, const tb_run_config *cfg, const seg_result *r)
{
    const tb_segmentation_config *sg = &cfg->segmentation;
    printf("{\"task\": \"segmentation\", \"model\": \"%s\", \"variant\": \"%c\", \"stem\": \"%s\", \"width\": %g, "
           "\"batch\": %ld, \"image\": %ld, \"channels\": %ld, \"classes\": %ld, \"precision\": \"fp32\", "
           "\"aux_weight\": %g, \"head_dropout\": %g, \"ignored_percent\": %d, \"feature_map\": [%d, %d], "
           "\"device\": \"%s\", \"threads\": %d, \"images_per_sec\": %.3f, \"images_per_sec_all\": [",
           a->model, a->variant, a->stem, a->width, a->batch, a->image, a->channels, a->classes,
           sg->aux ? (double)sg->aux_weight : 0.0, (double)sg->head_dropout, IGNORED_PERCENT, r->feat_h, r->feat_w,
           r->device, r->threads, r->ips_median);
    for (long i = 0; i < a->repeats; i++)
        printf("%s%.3f", i ? ", " : "", r->ips[i]);
    printf("], \"step_ms\": %.3f, \"loss\": %.6g, \"graph_bytes\": %zu, \"peak_rss_bytes\": %ld, \"params\": %lld}\n",
           r->step_ms, isfinite(r->loss) ? (double)r->loss : -1.0, r->graph_bytes, r->peak_rss,
           (long long)r->params);
}

static void print_table(const seg_args *a, const seg_result *r)
{
    printf("| model | stem | width | batch | image | classes | feature map | device | images/s | ms/step | "
           "graph memory | peak RSS |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|\n");
    printf("| %s-%c FCN | %s | %g | %ld | %ldx%ldx%ld | %ld | %dx%d | %s | %.2f | %.1f | %.1f MiB | %.1f MiB |\n",
           a->model, a->variant, a->stem, a->width, a->batch, a->image, a->image, a->channels, a->classes,
           r->feat_h, r->feat_w, r->device, r->ips_median, r->step_ms, (double)r->graph_bytes / 1048576.0,
           (double)r->peak_rss / 1048576.0);
}

int tb_bench_segmentation(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    seg_args a;
    static tb_run_config cfg;
    int rc = parse_args(argc, argv, &a);
    if (rc == TB_OK)
        rc = make_config(&a, &cfg);
    if (rc != TB_OK)
        return tb_cli_usage_error("bench", "%s", tb_errmsg());
    static seg_result r;
    rc = run_bench(&a, &cfg, &r);
    if (rc != TB_OK)
        return tb_cli_report_error("bench", rc);
    fprintf(stderr, "FCN: dilated %s-%c (%s stem, width %g), feature map %dx%d, main + auxiliary head (weight %g), "
                    "head dropout %g, %ld classes, %d %% of the pixels ignored\n",
            a.model, a.variant, a.stem, a.width, r.feat_h, r.feat_w, (double)cfg.segmentation.aux_weight,
            (double)cfg.segmentation.head_dropout, a.classes, IGNORED_PERCENT);
    if (a.json)
        print_json(&a, &cfg, &r);
    else
        print_table(&a, &r);
    return TB_EXIT_OK;
}
