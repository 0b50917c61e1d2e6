/* trickbench bench: training throughput of a model on synthetic data
 * (forward + backward + SGD step, images/s), median over repeats after a
 * warm-up, through the same step code the trainer runs. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "harness/bench_loader.h"
#include "harness/cli.h"
#include "harness/cmd_bench_det.h"
#include "harness/cmd_bench_seg.h"
#include "harness/clock.h"
#include "harness/commands.h"
#include "harness/stats.h"
#include "harness/train/step.h"
#include "kernels/error.h"
#include "kernels/rng.h"
#include "models/models.h"

static const char usage[] =
    "usage: trickbench bench [--task classification] --model M [--variant A|B|C|D]\n"
    "                        [--batch B] [--image S] [--precision fp32|fp16|bf16] [--device auto|cpu|cuda]\n"
    "                        [--steps N] [--warmup N] [--repeats R] [--threads T]\n"
    "                        [--stem imagenet|small] [--width W] [--classes K]\n"
    "                        [--channels C] [--json]\n\n"
    "Measures training throughput: forward + backward + SGD step (momentum,\n"
    "Nesterov, weight decay; dynamic loss scaling for fp16) on random data, the\n"
    "same step the trainer runs. Prints the median images/s over --repeats runs\n"
    "of --steps steps each, after --warmup steps, and the peak memory.\n\n"
    "defaults: --variant B --batch 32 --image 224 --precision fp32 --device auto\n"
    "          --steps 5 --warmup 2 --repeats 3 --classes 1000 --channels 3\n"
    "          --stem auto (small for images <= 64 px)\n\n"
    "Faster R-CNN and FCN training throughput: trickbench bench --task detection --help,\n"
    "  trickbench bench --task segmentation --help.\n\n"
    "Data-loader throughput instead (read, decode, augment, batch; no training):\n"
    "  trickbench bench --loader [--dataset D] [--root DIR] [--batch B] [--workers W]\n"
    "                   [--augment A] [--image S] [--limit N] [--epochs E] [--eval] [--json]\n"
    "  defaults: --dataset fashion-mnist --batch 128 --workers 0 (automatic) --augment auto\n"
    "  --epochs 2 (after one warm-up epoch; the best is reported); --eval times the\n"
    "  validation split. --json prints one object with \"images_per_sec\".\n\n"
    "With --json, prints one object: model, variant, batch, image, precision,\n"
    "device, threads, images_per_sec, images_per_sec_all (every repeat),\n"
    "step_ms, graph_bytes, peak_rss_bytes, params, macs.\n";

typedef struct bench_args {
    const char *model, *device, *stem, *precision;
    char variant;
    long batch, image, steps, warmup, repeats, threads, classes, channels;
    double width;
    bool json;
} bench_args;

static int parse_args(int argc, char **argv, bench_args *a)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"variant", required_argument, 0, 'V'},
        {"batch", required_argument, 0, 'b'},   {"image", required_argument, 0, 'i'},
        {"precision", required_argument, 0, 'p'}, {"device", required_argument, 0, 'd'},
        {"steps", required_argument, 0, 's'},   {"warmup", required_argument, 0, 'w'},
        {"repeats", required_argument, 0, 'r'}, {"threads", required_argument, 0, 't'},
        {"stem", required_argument, 0, 'S'},    {"width", required_argument, 0, 'W'},
        {"classes", required_argument, 0, 'k'}, {"channels", required_argument, 0, 'c'},
        {"json", no_argument, 0, 'j'},          {"task", required_argument, 0, 'T'},
        {0, 0, 0, 0}};
    *a = (bench_args){.device = "auto", .stem = "auto", .precision = "fp32", .variant = 'B', .batch = 32,
                      .image = 224, .steps = 5, .warmup = 2, .repeats = 3, .classes = 1000, .channels = 3,
                      .width = 1.0};
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long *target = NULL;
        long lo = 1, hi = 1L << 30;
        switch (ch) {
        case 'm': a->model = optarg; break;
        case 'T': /* detection and segmentation were dispatched before parsing */
            if (strcmp(optarg, "classification"))
                return tb_fail(TB_ERR_USAGE,
                               "--task: expected classification, detection or segmentation, got '%s'", optarg);
            break;
        case 'V':
            if (strlen(optarg) != 1 || optarg[0] < 'A' || optarg[0] > 'D')
                return tb_fail(TB_ERR_USAGE, "--variant: expected A, B, C or D, got '%s'", optarg);
            a->variant = optarg[0];
            break;
        case 'p': a->precision = optarg; break;
        case 'd': a->device = optarg; break;
        case 'S': a->stem = optarg; break;
        case 'W': {
            char *end;
            a->width = strtod(optarg, &end);
            if (*end || !(a->width > 0.0 && a->width <= 16.0))
                return tb_fail(TB_ERR_USAGE, "--width: expected a number in (0, 16], got '%s'", optarg);
            break;
        }
        case 'j': a->json = true; break;
        case 'b': target = &a->batch; break;
        case 'i': target = &a->image; hi = 4096; break;
        case 's': target = &a->steps; break;
        case 'w': target = &a->warmup; lo = 0; break;
        case 'r': target = &a->repeats; hi = 1000; break;
        case 't': target = &a->threads; lo = 0; hi = 1024; break;
        case 'k': target = &a->classes; break;
        case 'c': target = &a->channels; hi = 4; break;
        default:
            return tb_fail(TB_ERR_USAGE, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (target) {
            char name[32];
            snprintf(name, sizeof name, "--%s", opts[0].name);
            for (const struct option *o = opts; o->name; o++)
                if (o->val == ch)
                    snprintf(name, sizeof name, "--%s", o->name);
            TB_TRY(tb_cli_parse_int(name, optarg, lo, hi, target));
        }
    }
    if (optind < argc)
        return tb_fail(TB_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
    if (!a->model)
        return tb_fail(TB_ERR_USAGE, "--model is required (e.g. --model resnet50)");
    return TB_OK;
}

typedef struct bench_result {
    double ips_median;
    double ips[1000];
    double step_ms;
    size_t graph_bytes;
    long peak_rss;
    int64_t params, macs;
    char device[128];
    int threads;
} bench_result;

static int build_model(const bench_args *a, tb_backend *be, tb_dtype dt, tb_graph **g, tb_model_spec *spec)
{
    TB_TRY(tb_model_spec_default(spec, a->model));
    spec->variant = a->variant;
    spec->image = (int)a->image;
    spec->classes = (int)a->classes;
    spec->channels = (int)a->channels;
    spec->width = (float)a->width;
    if (!strcmp(a->stem, "auto"))
        spec->stem = (a->image <= 64 && strcmp(a->model, "inception_v3")) ? TB_STEM_SMALL : TB_STEM_IMAGENET;
    else
        TB_TRY(tb_stem_parse(a->stem, &spec->stem));
    TB_TRY(tb_model_spec_validate(spec));
    TB_TRY(tb_graph_create(g, be, dt, (int)a->batch));
    TB_TRY(tb_model_build(*g, spec));
    TB_TRY(tb_graph_finalize(*g, true));
    return tb_model_init(*g, spec->init, 1);
}

static int run_bench(const bench_args *a, bench_result *r)
{
    tb_dtype dt;
    tb_device_kind kind;
    TB_TRY(tb_dtype_parse(a->precision, &dt));
    TB_TRY(tb_device_parse(a->device, &kind));
    tb_backend *be = NULL;
    char note[256];
    TB_TRY(tb_backend_create(&be, kind, (int)a->threads, note, sizeof note));
    fprintf(stderr, "%s\n", note);
    snprintf(r->device, sizeof r->device, "%s", be->name);
    r->threads = be->threads;
    tb_graph *g = NULL;
    tb_model_spec spec;
    tb_step step = {0};
    float *images = NULL;
    int32_t *labels = NULL;
    int rc = build_model(a, be, dt, &g, &spec);
    if (rc == TB_OK) {
        tb_step_options so = {.momentum = 0.9, .weight_decay = 1e-4, .nesterov = true,
                              .fp16_scaling = dt == TB_F16, .dynamic_scale = true, .loss_scale = 0};
        rc = tb_step_init(&step, g, &so);
    }
    size_t n_img = (size_t)a->batch * (size_t)a->image * (size_t)a->image * (size_t)a->channels;
    if (rc == TB_OK) {
        images = malloc(n_img * sizeof(float));
        labels = malloc((size_t)a->batch * sizeof(int32_t));
        if (!images || !labels)
            rc = tb_fail(TB_ERR_NOMEM, "bench: out of memory for the synthetic batch");
    }
    if (rc == TB_OK) {
        /* random data: timing on zeros would flatter some kernels */
        tb_rng rng;
        tb_rng_seed(&rng, 12345, 0);
        for (size_t i = 0; i < n_img; i++)
            images[i] = (float)tb_rng_normal(&rng);
        for (long i = 0; i < a->batch; i++)
            labels[i] = (int32_t)tb_rng_below(&rng, (uint64_t)a->classes);
        r->params = tb_graph_param_elements(g);
        r->macs = tb_graph_macs(g);
        r->graph_bytes = tb_graph_memory_bytes(g);
    }
    tb_step_result sr;
    for (long i = 0; rc == TB_OK && i < a->warmup; i++)
        rc = tb_step_run(&step, images, labels, NULL, 0.01, &sr);
    for (long rep = 0; rc == TB_OK && rep < a->repeats; rep++) {
        rc = tb_synchronize(be);
        double t0 = tb_seconds_now();
        for (long i = 0; rc == TB_OK && i < a->steps; i++)
            rc = tb_step_run(&step, images, labels, NULL, 0.01, &sr);
        if (rc == TB_OK)
            rc = tb_synchronize(be);
        double dt_s = tb_seconds_now() - t0;
        r->ips[rep] = (double)a->batch * (double)a->steps / dt_s;
    }
    if (rc == TB_OK) {
        r->ips_median = tb_stats_median(r->ips, (int)a->repeats);
        r->step_ms = 1000.0 * (double)a->batch / r->ips_median;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        r->peak_rss = ru.ru_maxrss * 1024L;
    }
    free(images);
    free(labels);
    tb_step_destroy(&step);
    tb_graph_destroy(g);
    tb_backend_destroy(be);
    return rc;
}

static void print_result(const bench_args *a, const bench_result *r)
{
    if (a->json) {
        printf("{\"model\": \"%s\", \"variant\": \"%c\", \"batch\": %ld, \"image\": %ld, \"precision\": \"%s\", "
               "\"device\": \"%s\", \"threads\": %d, \"images_per_sec\": %.3f, \"images_per_sec_all\": [",
               a->model, a->variant, a->batch, a->image, a->precision, r->device, r->threads, r->ips_median);
        for (long i = 0; i < a->repeats; i++)
            printf("%s%.3f", i ? ", " : "", r->ips[i]);
        printf("], \"step_ms\": %.3f, \"graph_bytes\": %zu, \"peak_rss_bytes\": %ld, \"params\": %lld, "
               "\"macs\": %lld}\n",
               r->step_ms, r->graph_bytes, r->peak_rss, (long long)r->params, (long long)r->macs);
        return;
    }
    printf("| model | variant | batch | image | precision | device | images/s | ms/step | graph memory | peak RSS |\n");
    printf("|---|---|---:|---:|---|---|---:|---:|---:|---:|\n");
    printf("| %s | %c | %ld | %ld | %s | %s | %.1f | %.1f | %.1f MiB | %.1f MiB |\n", a->model, a->variant,
           a->batch, a->image, a->precision, r->device, r->ips_median, r->step_ms,
           (double)r->graph_bytes / 1048576.0, (double)r->peak_rss / 1048576.0);
}

/* True for `--task TASK` or `--task=TASK` anywhere in argv. */
static bool wants_task(int argc, char **argv, const char *task)
{
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--task=", 7) && !strcmp(argv[i] + 7, task))
            return true;
        if (!strcmp(argv[i], "--task") && i + 1 < argc && !strcmp(argv[i + 1], task))
            return true;
    }
    return false;
}

int tb_cmd_bench(int argc, char **argv)
{
    if (wants_task(argc, argv, "detection"))
        return tb_bench_detection(argc, argv);
    if (wants_task(argc, argv, "segmentation"))
        return tb_bench_segmentation(argc, argv);
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--loader"))
            return tb_bench_loader(argc, argv);
    bench_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != TB_OK)
        return tb_cli_usage_error("bench", "%s", tb_errmsg());
    static bench_result r;
    rc = run_bench(&a, &r);
    if (rc != TB_OK)
        return tb_cli_report_error("bench", rc);
    print_result(&a, &r);
    return TB_EXIT_OK;
}
