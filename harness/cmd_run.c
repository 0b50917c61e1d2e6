#include <stdio.h>
#include <string.h>

#include "harness/cli.h"
#include "harness/cmd_args.h"
#include "harness/commands.h"
#include "harness/matrix.h"
#include "harness/plan.h"
#include "harness/report.h"
#include "harness/runner.h"
#include "harness/store.h"
#include "harness/train/trainer.h"
#include "kernels/backend.h"
#include "kernels/error.h"

static const char usage[] =
    "usage: trickbench run MATRIX.json [--db PATH] [--device auto|cpu|cuda] [--threads N]\n"
    "                      [--rerun] [--fail-fast] [--shard I/N] [--dry-run] [--quiet]\n"
    "\n"
    "Trains every run of the matrix that is not finished in the database, then\n"
    "prints the matrix's report. Safe to interrupt and run again: finished runs\n"
    "are kept, and the run in progress goes on from its last finished epoch (its\n"
    "training state is saved after every epoch beside the checkpoints).\n"
    "\n"
    "  --db PATH      results database (default " TB_STORE_DEFAULT_PATH "; created if missing)\n"
    "  --device D     auto (default: the config's), cpu or cuda\n"
    "  --threads N    CPU threads (default: all cores)\n"
    "  --rerun        run finished runs again too, and every run from its first epoch\n"
    "  --fail-fast    stop at the first failed or diverged run\n"
    "  --shard I/N    run only shard I of N (for job arrays; merge the databases after)\n"
    "  --dry-run      list the runs and their status, train nothing\n"
    "  --quiet        no progress on stderr\n"
    "\n"
    "Exit status: 0 all selected runs done (diverged runs are results), 130 interrupted,\n"
    "75 database locked, 65 bad matrix, otherwise that of the first failed run.\n";

typedef struct run_args {
    const char *matrix, *db, *device, *shard;
    long threads;
    bool rerun, fail_fast, dry_run, quiet;
} run_args;

static int parse_args(int argc, char **argv, run_args *a)
{
    memset(a, 0, sizeof *a);
    a->db = TB_STORE_DEFAULT_PATH;
    for (int i = 1; i < argc; i++) {
        const char *threads = NULL;
        int r;
        if ((r = tb_arg_value(argc, argv, &i, "--db", &a->db)) ||
            (r = tb_arg_value(argc, argv, &i, "--device", &a->device)) ||
            (r = tb_arg_value(argc, argv, &i, "--shard", &a->shard)) ||
            (r = tb_arg_value(argc, argv, &i, "--threads", &threads))) {
            if (r < 0)
                return TB_ERR_USAGE;
            if (threads)
                TB_TRY(tb_cli_parse_int("--threads", threads, 0, 4096, &a->threads));
        } else if (!strcmp(argv[i], "--rerun")) {
            a->rerun = true;
        } else if (!strcmp(argv[i], "--fail-fast")) {
            a->fail_fast = true;
        } else if (!strcmp(argv[i], "--dry-run")) {
            a->dry_run = true;
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            a->quiet = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return tb_fail(TB_ERR_USAGE, "unknown option '%s'", argv[i]);
        } else if (a->matrix) {
            return tb_fail(TB_ERR_USAGE, "one matrix at a time ('%s' and '%s')", a->matrix, argv[i]);
        } else {
            a->matrix = argv[i];
        }
    }
    if (!a->matrix)
        return tb_fail(TB_ERR_USAGE, "missing the matrix file");
    if (a->device) {
        tb_device_kind kind;
        TB_TRY(tb_err_context(tb_device_parse(a->device, &kind), "--device"));
    }
    return TB_OK;
}

static int dry_run(const tb_matrix *m, const run_args *a, int shard, int count)
{
    tb_store *st = NULL;
    tb_store_options ro = {.read_only = true};
    int rc = tb_store_open(a->db, &ro, &st);
    if (rc == TB_ERR_MISSING) {
        st = NULL;
        rc = TB_OK;
    }
    tb_plan_counts counts;
    if (rc == TB_OK)
        rc = tb_plan_print(m, st, a->db, shard, count, stdout, &counts);
    tb_store_close(st);
    return rc;
}

/* --device cuda (or a config's "device": "cuda") on a machine without a
 * usable GPU is an error before any run starts, not a failed run per row. */
static int check_devices(const tb_matrix *m, const char *device_opt)
{
    char why[256];
    for (int i = 0; i < m->n_runs; i++) {
        const char *dev = device_opt ? device_opt : m->runs[i].cfg.device;
        tb_device_kind kind;
        TB_TRY(tb_device_parse(dev[0] ? dev : "auto", &kind));
        if (kind == TB_DEVICE_CUDA && !tb_cuda_available(why, sizeof why))
            return tb_fail(TB_ERR_UNSUPPORTED, "%s asks for the GPU but none is usable: %s",
                           device_opt ? "--device cuda" : "a run's config (device: \"cuda\")", why);
        if (device_opt)
            break;
    }
    return TB_OK;
}

/* The matrix's report on stdout after the runs. */
static int print_report(const tb_matrix *m, const char *db)
{
    tb_store *st = NULL;
    tb_store_options ro = {.read_only = true};
    TB_TRY(tb_store_open(db, &ro, &st));
    tb_report_options ro2 = {.matrix = m->name, .format = TB_FORMAT_MD};
    fputc('\n', stdout);
    int rc = tb_report_print(st, &ro2, stdout);
    tb_store_close(st);
    return rc;
}

int tb_cmd_run(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    run_args a;
    if (parse_args(argc, argv, &a) != TB_OK)
        return tb_cli_usage_error("run", "%s", tb_errmsg());
    int shard = 0, count = 0;
    if (a.shard && tb_parse_shard(a.shard, &shard, &count) != TB_OK)
        return tb_cli_usage_error("run", "%s", tb_errmsg());
    tb_matrix m;
    int rc = tb_matrix_load(a.matrix, &m); /* a bad matrix stops before any run starts */
    if (rc != TB_OK)
        return tb_cli_report_error("run", rc);
    if (a.dry_run) {
        rc = dry_run(&m, &a, shard, count);
        tb_matrix_free(&m);
        return rc == TB_OK ? TB_EXIT_OK : tb_cli_report_error("run", rc);
    }
    rc = check_devices(&m, a.device);
    if (rc != TB_OK) {
        tb_matrix_free(&m);
        return tb_cli_report_error("run", rc);
    }
    tb_runner_options opt = {.db_path = a.db, .device = a.device, .threads = (int)a.threads, .rerun = a.rerun,
                             .fail_fast = a.fail_fast, .shard = shard, .shard_count = count,
                             .trainer = NULL, /* the run's task picks its trainer */
                             .progress = a.quiet ? TB_PROGRESS_QUIET : TB_PROGRESS_AUTO, .handle_signals = true};
    tb_runner_summary sum;
    rc = tb_runner_run(&m, &opt, &sum);
    bool stopped_fast = rc != TB_OK && a.fail_fast && (sum.failed > 0 || sum.diverged > 0);
    if (rc != TB_OK && !stopped_fast) { /* interrupted, database locked or unwritable, ... */
        tb_matrix_free(&m);
        return tb_cli_report_error("run", rc);
    }
    char first[2048];
    snprintf(first, sizeof first, "%s", tb_errmsg());
    int report_rc = print_report(&m, a.db);
    tb_matrix_free(&m);
    if (report_rc != TB_OK)
        tb_cli_report_error("run", report_rc);
    fprintf(stderr, "trickbench run: %d run%s: %d finished now, %d already done, %d diverged, %d failed%s\n",
            sum.selected, sum.selected == 1 ? "" : "s", sum.finished, sum.done_before, sum.diverged, sum.failed,
            sum.busy ? ", some running in other processes" : "");
    if (rc != TB_OK) /* --fail-fast */
        return tb_cli_report_error("run", tb_fail(rc, "%s", first));
    if (sum.failed > 0)
        return tb_cli_report_error("run", tb_fail(sum.first_error, "%d run%s failed; first: '%s': %s", sum.failed,
                                                  sum.failed == 1 ? "" : "s", sum.first_error_label,
                                                  sum.first_error_msg));
    return report_rc == TB_OK ? TB_EXIT_OK : tb_status_exit_code(report_rc);
}
