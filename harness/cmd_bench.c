/* trickbench bench: training throughput of a model on synthetic data
 * (forward + backward + SGD step, images/s), median over repeats after a
 * warm-up, through the same step code the trainer runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/bench_loader.h"
#include "harness/cli.h"
#include "harness/cmd_bench_common.h"
#include "harness/cmd_bench_det.h"
#include "harness/cmd_bench_seg.h"
#include "harness/commands.h"
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
    "step_ms, graph_bytes, peak_rss_bytes, device_used_bytes (CUDA: memory in\n"
    "use on the GPU after the timed steps, the context's included), cpu_gemm\n"
    "(CPU: the GEMM library and its kernels, e.g. oneDNN 2.6.3, avx2), params, macs,\n"
    "steps_run (warm-up included) and steps_replayed (how many of them replayed\n"
    "a captured CUDA graph; 0 on the CPU or with TRICKBENCH_NO_CAPTURE=1) and\n"
    "steps_skipped (fp16 steps skipped for a gradient overflow).\n";

/* The classification bench's limits and defaults beside the shared ones. */
static const tb_bench_parse_spec parse_spec = {
    .task = "classification", .task_expected = "classification, detection or segmentation",
    .batch = {1, 1L << 30}, .image = {1, 4096}, .classes = {1, 1L << 30}};

/* The command's state: options, the run's figures, and the step's inputs. */
typedef struct bench_state {
    tb_bench_args a;
    tb_bench_result r;
    tb_step step;
    tb_backend *be;
    float *images; /* host memory of the backend (pinned on CUDA), as the trainer's batches */
    int32_t *labels;
    int replayed;      /* steps run from a captured CUDA graph (harness/train/step.h) */
    int total_steps;
    long long skipped; /* fp16 steps skipped for overflow */
} bench_state;

static int parse(void *state, int argc, char **argv)
{
    tb_bench_args *a = &((bench_state *)state)->a;
    *a = (tb_bench_args){.device = "auto", .stem = "auto", .precision = "fp32", .variant = 'B', .batch = 32,
                         .image = 224, .steps = 5, .warmup = 2, .repeats = 3, .classes = 1000, .channels = 3,
                         .width = 1.0};
    return tb_bench_parse(argc, argv, &parse_spec, a);
}

static int build_model(const tb_bench_args *a, tb_backend *be, tb_dtype dt, tb_graph **g, tb_model_spec *spec)
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

/* Random data (timing on zeros would flatter some kernels). */
static int make_batch(bench_state *s)
{
    const tb_bench_args *a = &s->a;
    size_t n_img = (size_t)a->batch * (size_t)a->image * (size_t)a->image * (size_t)a->channels;
    TB_TRY(s->be->iface.alloc_host(s->be, (void **)&s->images, n_img * sizeof(float)));
    TB_TRY(s->be->iface.alloc_host(s->be, (void **)&s->labels, (size_t)a->batch * sizeof(int32_t)));
    tb_rng rng;
    tb_rng_seed(&rng, 12345, 0);
    for (size_t i = 0; i < n_img; i++)
        s->images[i] = (float)tb_rng_normal(&rng);
    for (long i = 0; i < a->batch; i++)
        s->labels[i] = (int32_t)tb_rng_below(&rng, (uint64_t)a->classes);
    return TB_OK;
}

static int run_steps(void *state, long first, long count)
{
    (void)first;
    bench_state *s = state;
    tb_step_result sr;
    for (long i = 0; i < count; i++)
        /* as the trainer does: the next batch uploads while a step runs */
        TB_TRY(tb_step_run(&s->step, s->images, s->labels, NULL, 0.01, s->images, &sr));
    s->replayed = s->step.captured_steps;
    s->total_steps += (int)count;
    s->skipped = tb_loss_scaler_skipped(&s->step.scaler);
    return TB_OK;
}

static int run(void *state)
{
    bench_state *s = state;
    const tb_bench_args *a = &s->a;
    s->step = (tb_step){0};
    s->images = NULL;
    s->labels = NULL;
    s->replayed = s->total_steps = 0;
    s->skipped = 0;
    tb_dtype dt;
    TB_TRY(tb_dtype_parse(a->precision, &dt));
    tb_backend *be = NULL;
    TB_TRY(tb_bench_backend(a, &be, &s->r));
    s->be = be;
    tb_graph *g = NULL;
    tb_model_spec spec;
    int rc = build_model(a, be, dt, &g, &spec);
    if (rc == TB_OK) {
        tb_step_options so = {.momentum = 0.9, .weight_decay = 1e-4, .nesterov = true,
                              .fp16_scaling = dt == TB_F16, .dynamic_scale = true, .loss_scale = 0,
                              .capture = true};
        rc = tb_step_init(&s->step, g, &so);
    }
    if (rc == TB_OK)
        rc = make_batch(s);
    if (rc == TB_OK) {
        s->r.params = tb_graph_param_elements(g);
        s->r.macs = tb_graph_macs(g);
        s->r.graph_bytes = tb_graph_memory_bytes(g);
        rc = tb_bench_measure(a, be, run_steps, s, NULL, &s->r);
    }
    if (s->images)
        be->iface.free_host(be, s->images);
    if (s->labels)
        be->iface.free_host(be, s->labels);
    tb_step_destroy(&s->step);
    tb_graph_destroy(g);
    tb_backend_destroy(be);
    return rc;
}

static void print(const void *state)
{
    const tb_bench_args *a = &((const bench_state *)state)->a;
    const tb_bench_result *r = &((const bench_state *)state)->r;
    if (a->json) {
        printf("{\"model\": \"%s\", \"variant\": \"%c\", \"batch\": %ld, \"image\": %ld, \"precision\": \"%s\", ",
               a->model, a->variant, a->batch, a->image, a->precision);
        tb_bench_print_json_timing(a, r, false);
        const bench_state *s = state;
        printf(", \"macs\": %lld, \"steps_run\": %d, \"steps_replayed\": %d, \"steps_skipped\": %lld}\n",
               (long long)r->macs, s->total_steps, s->replayed, s->skipped);
        return;
    }
    printf("| model | variant | batch | image | precision | device | images/s | ms/step | graph memory | peak RSS |\n");
    printf("|---|---|---:|---:|---|---|---:|---:|---:|---:|\n");
    printf("| %s | %c | %ld | %ld | %s |", a->model, a->variant, a->batch, a->image, a->precision);
    tb_bench_print_row_timing(r, 1);
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

static bool wants_loader(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--loader"))
            return true;
    return false;
}

int tb_cmd_bench(int argc, char **argv)
{
    if (wants_task(argc, argv, "detection"))
        return tb_bench_detection(argc, argv);
    if (wants_task(argc, argv, "segmentation"))
        return tb_bench_segmentation(argc, argv);
    if (!tb_cli_wants_help(argc, argv) && wants_loader(argc, argv)) /* --help shows this usage */
        return tb_bench_loader(argc, argv);
    static const tb_bench_command cmd = {.usage = usage, .parse = parse, .run = run, .print = print};
    static bench_state state;
    return tb_bench_main(argc, argv, &cmd, &state);
}
