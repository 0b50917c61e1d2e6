/* The shared part of trickbench bench's training-throughput commands (see
 * cmd_bench_common.h). */
#include "harness/cmd_bench_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "harness/cli.h"
#include "harness/clock.h"
#include "harness/commands.h"
#include "harness/stats.h"
#include "kernels/cpu/gemm.h"
#include "kernels/error.h"

/* The shared flags and the room for a command's own in one getopt table. */
#define MAX_OPTIONS 32

static const struct option shared_options[] = {
    {"model", required_argument, 0, 'm'},   {"variant", required_argument, 0, 'V'},
    {"batch", required_argument, 0, 'b'},   {"image", required_argument, 0, 'i'},
    {"precision", required_argument, 0, 'p'}, {"device", required_argument, 0, 'd'},
    {"steps", required_argument, 0, 's'},   {"warmup", required_argument, 0, 'w'},
    {"repeats", required_argument, 0, 'r'}, {"threads", required_argument, 0, 't'},
    {"stem", required_argument, 0, 'S'},    {"width", required_argument, 0, 'W'},
    {"classes", required_argument, 0, 'k'}, {"channels", required_argument, 0, 'c'},
    {"json", no_argument, 0, 'j'},          {"task", required_argument, 0, 'T'},
    {0, 0, 0, 0}};

/* The table getopt_long reads: the shared flags, then the command's. */
static int join_options(const struct option *extra, struct option *out)
{
    int n = 0;
    for (const struct option *o = shared_options; o->name; o++)
        out[n++] = *o;
    for (const struct option *o = extra; o && o->name; o++) {
        TB_CHECK(n < MAX_OPTIONS - 1, TB_ERR_INTERNAL, "bench: more than %d options", MAX_OPTIONS - 1);
        out[n++] = *o;
    }
    out[n] = (struct option){0, 0, 0, 0};
    return TB_OK;
}

/* The long name of the option `val` in opts, NULL when none has it. */
static const char *option_name(const struct option *opts, int val)
{
    for (const struct option *o = opts; o->name; o++)
        if (o->val == val)
            return o->name;
    return NULL;
}

/* One shared flag (or a command's, through spec->option); sets *target for an integer one. */
static int take_option(const tb_bench_parse_spec *spec, int ch, const char *arg, tb_bench_args *a, long **target,
                       long *lo, long *hi)
{
    switch (ch) {
    case 'm': a->model = arg; return TB_OK;
    case 'T':
        if (strcmp(arg, spec->task))
            return tb_fail(TB_ERR_USAGE, "--task: expected %s, got '%s'", spec->task_expected, arg);
        return TB_OK;
    case 'p':
        if (spec->fp32_only && strcmp(arg, "fp32"))
            return tb_fail(TB_ERR_USAGE, "--precision: the %s task trains in fp32 only, got '%s'", spec->task, arg);
        a->precision = arg;
        return TB_OK;
    case 'V':
        if (strlen(arg) != 1 || arg[0] < 'A' || arg[0] > 'D')
            return tb_fail(TB_ERR_USAGE, "--variant: expected A, B, C or D, got '%s'", arg);
        a->variant = arg[0];
        return TB_OK;
    case 'W': {
        char *end;
        a->width = strtod(arg, &end);
        if (*end || !(a->width > 0.0 && a->width <= 16.0))
            return tb_fail(TB_ERR_USAGE, "--width: expected a number in (0, 16], got '%s'", arg);
        return TB_OK;
    }
    case 'S': a->stem = arg; return TB_OK;
    case 'd': a->device = arg; return TB_OK;
    case 'j': a->json = true; return TB_OK;
    case 'b': *target = &a->batch; *lo = spec->batch.lo; *hi = spec->batch.hi; return TB_OK;
    case 'i': *target = &a->image; *lo = spec->image.lo; *hi = spec->image.hi; return TB_OK;
    case 'k': *target = &a->classes; *lo = spec->classes.lo; *hi = spec->classes.hi; return TB_OK;
    case 'c': *target = &a->channels; *hi = 4; return TB_OK;
    case 's': *target = &a->steps; return TB_OK;
    case 'w': *target = &a->warmup; *lo = 0; return TB_OK;
    case 'r': *target = &a->repeats; *hi = TB_BENCH_MAX_REPEATS; return TB_OK;
    case 't': *target = &a->threads; *lo = 0; *hi = 1024; return TB_OK;
    default: return spec->option(spec->user, ch, arg, target, lo, hi);
    }
}

int tb_bench_parse(int argc, char **argv, const tb_bench_parse_spec *spec, tb_bench_args *a)
{
    struct option opts[MAX_OPTIONS];
    TB_TRY(join_options(spec->extra, opts));
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long *target = NULL;
        long lo = 1, hi = 1L << 30;
        if (!option_name(opts, ch)) /* '?': unknown, ambiguous or missing its value */
            return tb_fail(TB_ERR_USAGE, "unknown or incomplete option '%s'", argv[optind - 1]);
        TB_TRY(take_option(spec, ch, optarg, a, &target, &lo, &hi));
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
    return TB_OK;
}

int tb_bench_backend(const tb_bench_args *a, tb_backend **be, tb_bench_result *r)
{
    tb_device_kind kind;
    TB_TRY(tb_device_parse(a->device, &kind));
    char note[256];
    TB_TRY(tb_backend_create(be, kind, (int)a->threads, note, sizeof note));
    fprintf(stderr, "%s\n", note);
    snprintf(r->device, sizeof r->device, "%s", (*be)->name);
    r->threads = (*be)->threads;
    return TB_OK;
}

int tb_bench_measure(const tb_bench_args *a, tb_backend *be, tb_bench_steps_fn run, void *user, const float *loss,
                     tb_bench_result *r)
{
    long iter = 0;
    TB_TRY(run(user, iter, a->warmup));
    iter += a->warmup;
    for (long rep = 0; rep < a->repeats; rep++) {
        TB_TRY(tb_synchronize(be));
        double t0 = tb_seconds_now();
        TB_TRY(run(user, iter, a->steps));
        TB_TRY(tb_synchronize(be));
        iter += a->steps;
        r->ips[rep] = (double)a->batch * (double)a->steps / (tb_seconds_now() - t0);
    }
    r->ips_median = tb_stats_median(r->ips, (int)a->repeats);
    r->step_ms = 1000.0 * (double)a->batch / r->ips_median;
    if (loss && !isfinite(*loss))
        fprintf(stderr, "bench: warning: the loss is %g after %ld steps (timings may not be representative)\n",
                (double)*loss, iter);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->peak_rss = ru.ru_maxrss * 1024L;
    /* nothing is allocated inside a step, so what is in use now is the peak */
    r->device_used = -1; /* the CPU backend has no device memory of its own */
    if (be->iface.device_memory) {
        size_t used, total;
        TB_TRY(tb_device_memory(be, &used, &total));
        r->device_used = (long long)used;
    }
    return TB_OK;
}

void tb_bench_print_json_timing(const tb_bench_args *a, const tb_bench_result *r, bool with_loss)
{
    printf("\"device\": \"%s\", \"threads\": %d, \"images_per_sec\": %.3f, \"images_per_sec_all\": [", r->device,
           r->threads, r->ips_median);
    for (long i = 0; i < a->repeats; i++)
        printf("%s%.3f", i ? ", " : "", r->ips[i]);
    printf("], \"step_ms\": %.3f, ", r->step_ms);
    if (with_loss) /* a non-finite loss would not be JSON */
        printf("\"loss\": %.6g, ", isfinite(r->loss) ? (double)r->loss : -1.0);
    printf("\"graph_bytes\": %zu, \"peak_rss_bytes\": %ld, ", r->graph_bytes, r->peak_rss);
    if (r->device_used >= 0)
        printf("\"device_used_bytes\": %lld, ", r->device_used);
    if (!strncmp(r->device, "cpu", 3))
        printf("\"cpu_gemm\": \"%s\", ", tb_cpu_gemm_library());
    printf("\"params\": %lld", (long long)r->params);
}

void tb_bench_print_row_timing(const tb_bench_result *r, int ips_decimals)
{
    printf(" %s | %.*f | %.1f | %.1f MiB | %.1f MiB |\n", r->device, ips_decimals, r->ips_median, r->step_ms,
           (double)r->graph_bytes / 1048576.0, (double)r->peak_rss / 1048576.0);
}

int tb_bench_main(int argc, char **argv, const tb_bench_command *cmd, void *state)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(cmd->usage, stdout);
        return TB_EXIT_OK;
    }
    int rc = cmd->parse(state, argc, argv);
    if (rc != TB_OK)
        return tb_cli_usage_error("bench", "%s", tb_errmsg());
    rc = cmd->run(state);
    if (rc != TB_OK)
        return tb_cli_report_error("bench", rc);
    cmd->print(state);
    return TB_EXIT_OK;
}
