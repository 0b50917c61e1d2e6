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
#include "harness/train/det_step.h"
#include "kernels/error.h"
#include "kernels/rng.h"
#include "models/faster_rcnn.h"
#include "models/models.h"
#include "tricks/decay_mask.h"

#define MAX_REPEATS 1000
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
    "(of the last step), graph_bytes, peak_rss_bytes, params.\n";

/* The detection section of matrices/fashion/detection.json (its run-time
 * values; the scene counts and sizes only matter to the data). */
static const char fashion_settings[] =
    "{\"detection\": {\"anchor_sizes\": [16, 32, 64], \"anchor_ratios\": [0.5, 1, 2],"
    " \"rpn_pre_nms_train\": 2000, \"rpn_post_nms_train\": 300, \"rpn_pre_nms_test\": 1000,"
    " \"rpn_post_nms_test\": 100, \"rpn_min_size\": 4, \"rpn_batch\": 128, \"roi_batch\": 32,"
    " \"roi_size\": 7, \"freeze_bn\": true, \"frozen_stages\": 1}}";

typedef struct det_args {
    const char *model, *device, *stem, *settings;
    char variant;
    long batch, image, steps, warmup, repeats, threads, classes, channels, objects;
    double width;
    bool json;
} det_args;

typedef struct det_result {
    double ips_median, ips[MAX_REPEATS], step_ms;
    float loss;
    size_t graph_bytes;
    long peak_rss;
    int64_t params;
    int feat_h, feat_w, threads;
    char device[128];
} det_result;

/* ------------------------------------------------------------------ options */

static int parse_double_arg(const char *name, const char *value, double lo, double hi, double *out)
{
    char *end;
    *out = strtod(value, &end);
    if (*end || !(*out > lo && *out <= hi))
        return tb_fail(TB_ERR_USAGE, "%s: expected a number in (%g, %g], got '%s'", name, lo, hi, value);
    return TB_OK;
}

static const char *option_name(const struct option *opts, int ch)
{
    for (const struct option *o = opts; o->name; o++)
        if (o->val == ch)
            return o->name;
    return "?";
}

static int parse_args(int argc, char **argv, det_args *a)
{
    static const struct option opts[] = {
        {"task", required_argument, 0, 'T'},      {"model", required_argument, 0, 'm'},
        {"variant", required_argument, 0, 'V'},   {"width", required_argument, 0, 'W'},
        {"stem", required_argument, 0, 'S'},      {"batch", required_argument, 0, 'b'},
        {"image", required_argument, 0, 'i'},     {"classes", required_argument, 0, 'k'},
        {"channels", required_argument, 0, 'c'},  {"objects", required_argument, 0, 'o'},
        {"settings", required_argument, 0, 'E'},  {"device", required_argument, 0, 'd'},
        {"steps", required_argument, 0, 's'},     {"warmup", required_argument, 0, 'w'},
        {"repeats", required_argument, 0, 'r'},   {"threads", required_argument, 0, 't'},
        {"precision", required_argument, 0, 'p'}, {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0}};
    *a = (det_args){.device = "auto", .stem = "auto", .settings = "auto", .variant = 'B', .batch = 4,
                    .image = 128, .steps = 5, .warmup = 2, .repeats = 3, .objects = 3, .width = 1.0};
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long *target = NULL;
        long lo = 1, hi = 1L << 30;
        switch (ch) {
        case 'T':
            if (strcmp(optarg, "detection"))
                return tb_fail(TB_ERR_USAGE, "--task: expected detection here, got '%s'", optarg);
            break;
        case 'm': a->model = optarg; break;
        case 'p':
            if (strcmp(optarg, "fp32"))
                return tb_fail(TB_ERR_USAGE, "--precision: the detection task trains in fp32 only, got '%s'", optarg);
            break;
        case 'V':
            if (strlen(optarg) != 1 || optarg[0] < 'A' || optarg[0] > 'D')
                return tb_fail(TB_ERR_USAGE, "--variant: expected A, B, C or D, got '%s'", optarg);
            a->variant = optarg[0];
            break;
        case 'W': TB_TRY(parse_double_arg("--width", optarg, 0.0, 16.0, &a->width)); break;
        case 'S': a->stem = optarg; break;
        case 'E':
            if (strcmp(optarg, "auto") && strcmp(optarg, "voc") && strcmp(optarg, "fashion-scenes"))
                return tb_fail(TB_ERR_USAGE, "--settings: expected auto, voc or fashion-scenes, got '%s'", optarg);
            a->settings = optarg;
            break;
        case 'd': a->device = optarg; break;
        case 'j': a->json = true; break;
        case 'b': target = &a->batch; hi = 4096; break;
        case 'i': target = &a->image; lo = 32; hi = 4096; break;
        case 'k': target = &a->classes; hi = 10000; break;
        case 'c': target = &a->channels; hi = 4; break;
        case 'o': target = &a->objects; hi = 64; break;
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
    if (!strcmp(a->settings, "auto"))
        a->settings = a->image >= 512 ? "voc" : "fashion-scenes";
    bool voc = !strcmp(a->settings, "voc");
    if (!strcmp(a->stem, "auto"))
        a->stem = voc ? "imagenet" : "small";
    if (!a->classes)
        a->classes = voc ? 20 : 10;
    if (!a->channels)
        a->channels = voc ? 3 : 1;
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
    snprintf(m->name, sizeof m->name, "%s", a->model);
    snprintf(m->stem, sizeof m->stem, "%s", a->stem);
    m->variant = a->variant;
    m->width = (float)a->width;
    cfg->optim.batch = (int)a->batch;
    snprintf(cfg->device, sizeof cfg->device, "%s", a->device);
    if (!voc) {
        cJSON *obj = cJSON_Parse(fashion_settings);
        TB_CHECK(obj != NULL, TB_ERR_NOMEM, "bench: out of memory for the fashion-scenes settings");
        int rc = tb_config_apply_json(cfg, obj, "bench (matrices/fashion/detection.json settings)");
        cJSON_Delete(obj);
        TB_TRY(rc);
    }
    return tb_config_validate(cfg, "bench");
}

/* ------------------------------------------------------------------ network */

/* As build_network and setup_training of harness/train/detection.c. */
static int build_network(const det_args *a, const tb_run_config *cfg, tb_backend *be, tb_graph **g,
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

typedef struct det_batch {
    float *images, *boxes, *im_size;
    int32_t *labels, *count;
} det_batch;

static void batch_free(det_batch *b)
{
    free(b->images);
    free(b->boxes);
    free(b->im_size);
    free(b->labels);
    free(b->count);
}

/* Random normalised images and `objects` random boxes per image (see the header comment). */
static int batch_make(const det_args *a, int max_objects, det_batch *b)
{
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
        b->count[i] = (int32_t)a->objects;
        for (long j = 0; j < a->objects; j++) {
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

static int timed_steps(tb_det_step *step, const tb_det_host_batch *hb, long first, long count, float *loss)
{
    for (long i = first; i < first + count; i++) {
        tb_det_step_result sr;
        TB_TRY(tb_det_step_run(step, hb, BENCH_LR, tb_splitmix64(BENCH_SEED ^ tb_splitmix64((uint64_t)i)), &sr));
        *loss = sr.loss;
    }
    return TB_OK;
}

static int measure(const det_args *a, tb_backend *be, tb_det_step *step, const det_batch *b, det_result *r)
{
    tb_det_host_batch hb = {.images = b->images, .gt_boxes = b->boxes, .gt_labels = b->labels,
                            .gt_count = b->count, .im_size = b->im_size};
    long iter = 0;
    TB_TRY(timed_steps(step, &hb, iter, a->warmup, &r->loss));
    iter += a->warmup;
    for (long rep = 0; rep < a->repeats; rep++) {
        TB_TRY(tb_synchronize(be));
        double t0 = tb_seconds_now();
        TB_TRY(timed_steps(step, &hb, iter, a->steps, &r->loss));
        TB_TRY(tb_synchronize(be));
        iter += a->steps;
        r->ips[rep] = (double)a->batch * (double)a->steps / (tb_seconds_now() - t0);
    }
    r->ips_median = tb_stats_median(r->ips, (int)a->repeats);
    r->step_ms = 1000.0 * (double)a->batch / r->ips_median;
    if (!isfinite(r->loss))
        fprintf(stderr, "bench: warning: the loss is %g after %ld steps (timings may not be representative)\n",
                (double)r->loss, iter);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->peak_rss = ru.ru_maxrss * 1024L;
    return TB_OK;
}

static int run_bench(const det_args *a, const tb_run_config *cfg, det_result *r)
{
    tb_device_kind kind;
    TB_TRY(tb_device_parse(a->device, &kind));
    tb_backend *be = NULL;
    char note[256];
    TB_TRY(tb_backend_create(&be, kind, (int)a->threads, note, sizeof note));
    fprintf(stderr, "%s\n", note);
    snprintf(r->device, sizeof r->device, "%s", be->name);
    r->threads = be->threads;
    tb_graph *g = NULL;
    tb_frcnn net;
    tb_det_step step;
    bool step_ready = false;
    det_batch batch = {0};
    int rc = build_network(a, cfg, be, &g, &net, &step, &step_ready);
    if (rc == TB_OK)
        rc = batch_make(a, cfg->detection.max_objects, &batch);
    if (rc == TB_OK) {
        r->feat_h = net.feat_h;
        r->feat_w = net.feat_w;
        r->params = tb_graph_param_elements(g);
        r->graph_bytes = tb_graph_memory_bytes(g);
        rc = measure(a, be, &step, &batch, r);
    }
    batch_free(&batch);
    if (step_ready)
        tb_det_step_destroy(&step);
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
static void describe_settings(const det_args *a, const tb_detection_config *d, const det_result *r)
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

static void print_json(const det_args *a, const tb_detection_config *d, const det_result *r)
{
    printf("{\"task\": \"detection\", \"model\": \"%s\", \"variant\": \"%c\", \"stem\": \"%s\", \"width\": %g, "
           "\"batch\": %ld, \"image\": %ld, \"channels\": %ld, \"classes\": %ld, \"objects\": %ld, "
           "\"precision\": \"fp32\", \"settings\": \"%s\", \"anchor_sizes\": [",
           a->model, a->variant, a->stem, a->width, a->batch, a->image, a->channels, a->classes, a->objects,
           a->settings);
    print_list(&d->anchor_sizes, ", ");
    printf("], \"anchor_ratios\": [");
    print_list(&d->anchor_ratios, ", ");
    printf("], \"rpn_batch\": %d, \"rpn_pre_nms_train\": %d, \"rpn_post_nms_train\": %d, \"roi_batch\": %d, "
           "\"roi_size\": %d, \"roi_sampling\": %d, \"feature_map\": [%d, %d], \"device\": \"%s\", "
           "\"threads\": %d, \"images_per_sec\": %.3f, \"images_per_sec_all\": [",
           d->rpn_batch, d->rpn_pre_nms_train, d->rpn_post_nms_train, d->roi_batch, d->roi_size, d->roi_sampling,
           r->feat_h, r->feat_w, r->device, r->threads, r->ips_median);
    for (long i = 0; i < a->repeats; i++)
        printf("%s%.3f", i ? ", " : "", r->ips[i]);
    printf("], \"step_ms\": %.3f, \"loss\": %.6g, \"graph_bytes\": %zu, \"peak_rss_bytes\": %ld, \"params\": %lld}\n",
           r->step_ms, isfinite(r->loss) ? (double)r->loss : -1.0, r->graph_bytes, r->peak_rss,
           (long long)r->params);
}

static void print_table(const det_args *a, const det_result *r)
{
    printf("| model | stem | width | batch | image | settings | device | images/s | ms/step | graph memory | "
           "peak RSS |\n");
    printf("|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|\n");
    printf("| %s-%c Faster R-CNN | %s | %g | %ld | %ldx%ldx%ld | %s | %s | %.2f | %.1f | %.1f MiB | %.1f MiB |\n",
           a->model, a->variant, a->stem, a->width, a->batch, a->image, a->image, a->channels, a->settings,
           r->device, r->ips_median, r->step_ms, (double)r->graph_bytes / 1048576.0,
           (double)r->peak_rss / 1048576.0);
}

int tb_bench_detection(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    det_args a;
    static tb_run_config cfg;
    int rc = parse_args(argc, argv, &a);
    if (rc == TB_OK)
        rc = make_config(&a, &cfg);
    if (rc != TB_OK)
        return tb_cli_usage_error("bench", "%s", tb_errmsg());
    static det_result r;
    rc = run_bench(&a, &cfg, &r);
    if (rc != TB_OK)
        return tb_cli_report_error("bench", rc);
    describe_settings(&a, &cfg.detection, &r);
    if (a.json)
        print_json(&a, &cfg.detection, &r);
    else
        print_table(&a, &r);
    return TB_EXIT_OK;
}
