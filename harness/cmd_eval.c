/* trickbench eval: scores the weights finished classification runs saved,
 * on each run's own validation split, optionally with flip test-time
 * augmentation, and can record the TTA scores as final metrics (top1_flip,
 * top5_flip) that report and query then show beside the run's own. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness/cli.h"
#include "harness/cmd_args.h"
#include "harness/commands.h"
#include "harness/config.h"
#include "harness/store.h"
#include "harness/table.h"
#include "harness/train/trainer.h"
#include "kernels/backend.h"
#include "kernels/error.h"

static const char usage[] =
    "usage: trickbench eval --matrix NAME [--label LABEL] [--db PATH] [--tta none|flip]\n"
    "                       [--record] [--device auto|cpu|cuda] [--threads N]\n"
    "\n"
    "Scores the weights that the finished classification runs of a matrix saved\n"
    "(their checkpoint) on each run's validation split, the split the run was\n"
    "scored on (the test split when data.holdout is 0), and prints one row per\n"
    "run beside the top1 it recorded. Without TTA the scores repeat the run's own.\n"
    "A run that cannot be scored (not classification, no checkpoint file) gets a\n"
    "row of dashes and a line on stderr, the others are still scored; the exit\n"
    "status is then that error's. A relative checkpoint path is tried as stored,\n"
    "then in the checkpoints folder beside the database.\n"
    "\n"
    "  --matrix NAME  the matrix (its name in the database)\n"
    "  --label LABEL  only the runs of this row\n"
    "  --db PATH      results database (default " TB_STORE_DEFAULT_PATH ")\n"
    "  --tta T        none (default) or flip: the mean of the softmax of each image and\n"
    "                 of its mirror image (test-time augmentation)\n"
    "  --record       store the flip scores as the runs' metrics top1_flip and top5_flip\n"
    "                 (report --metrics top1,top1_flip shows them); needs --tta flip\n"
    "  --device D     auto, cpu or cuda (default: each run's config)\n"
    "  --threads N    CPU threads (default: all cores)\n";

typedef struct eval_args {
    const char *matrix, *label, *db, *device;
    bool flip, record;
    long threads;
} eval_args;

static int parse_args(int argc, char **argv, eval_args *a)
{
    *a = (eval_args){.db = TB_STORE_DEFAULT_PATH};
    const char *tta = "none", *threads = NULL;
    for (int i = 1; i < argc; i++) {
        int r;
        if ((r = tb_arg_value(argc, argv, &i, "--matrix", &a->matrix)) ||
            (r = tb_arg_value(argc, argv, &i, "--label", &a->label)) ||
            (r = tb_arg_value(argc, argv, &i, "--db", &a->db)) || (r = tb_arg_value(argc, argv, &i, "--tta", &tta)) ||
            (r = tb_arg_value(argc, argv, &i, "--device", &a->device)) ||
            (r = tb_arg_value(argc, argv, &i, "--threads", &threads))) {
            if (r < 0)
                return TB_ERR_INVALID;
        } else if (!strcmp(argv[i], "--record")) {
            a->record = true;
        } else {
            return tb_fail(TB_ERR_INVALID, "unknown argument '%s'", argv[i]);
        }
    }
    TB_CHECK(a->matrix, TB_ERR_INVALID, "missing --matrix NAME");
    TB_CHECK(!strcmp(tta, "none") || !strcmp(tta, "flip"), TB_ERR_INVALID, "--tta '%s': expected none or flip", tta);
    a->flip = !strcmp(tta, "flip");
    TB_CHECK(!a->record || a->flip, TB_ERR_INVALID, "--record stores flip scores: give --tta flip");
    if (threads)
        TB_TRY(tb_cli_parse_int("--threads", threads, 0, 4096, &a->threads));
    if (a->device) {
        tb_device_kind kind;
        TB_TRY(tb_err_context(tb_device_parse(a->device, &kind), "--device"));
    }
    return TB_OK;
}

static int config_of(const tb_finished_run *f, tb_run_config *cfg)
{
    cJSON *root = cJSON_Parse(f->config);
    TB_CHECK(root, TB_ERR_DATA, "its config in the database is not valid JSON");
    int rc = tb_config_from_json(root, "the database", cfg);
    cJSON_Delete(root);
    return rc;
}

/* The run's checkpoint: as stored (relative paths are relative to where the
 * run was started), else where the runner puts it beside the database. */
static void checkpoint_of(const eval_args *a, const tb_finished_run *f, char *path, size_t size)
{
    snprintf(path, size, "%s", f->checkpoint);
    if (!f->checkpoint[0] || f->checkpoint[0] == '/' || access(f->checkpoint, R_OK) == 0)
        return;
    const char *slash = strrchr(a->db, '/');
    int dir = slash ? (int)(slash - a->db) : 1;
    snprintf(path, size, "%.*s/checkpoints/%s.safetensors", dir, slash ? a->db : ".", f->hash);
    if (access(path, R_OK) != 0)
        snprintf(path, size, "%s", f->checkpoint); /* the error names the stored path */
}

/* Both flip metrics of a run, in one transaction. */
static int record(tb_store *st, const tb_finished_run *f, const tb_eval_result *e)
{
    TB_TRY(tb_store_begin(st, "recording flip scores"));
    int rc = tb_store_set_metric(st, f->id, "top1_flip", e->top1);
    if (rc == TB_OK && !isnan(e->top5)) /* as the trainer: no top5 with 5 classes or fewer */
        rc = tb_store_set_metric(st, f->id, "top5_flip", e->top5);
    if (rc == TB_OK)
        return tb_store_commit(st, "recording flip scores");
    tb_store_rollback(st);
    return rc;
}

static int score_run(const eval_args *a, tb_store *st, const tb_finished_run *f, tb_eval_result *e)
{
    tb_run_config cfg;
    TB_TRY(config_of(f, &cfg));
    tb_train_options opt = {.device = a->device, .threads = (int)a->threads, .quiet = true};
    char path[1200];
    checkpoint_of(a, f, path, sizeof path);
    TB_TRY(tb_eval_classification(&cfg, &opt, path, a->flip, e));
    /* an older trickbench saved an EMA run's raw weights, not the scored average */
    if (!a->flip && isfinite(f->top1) && fabs(e->top1 - f->top1) > 0.005)
        fprintf(stderr, "eval: warning: run '%s' seed %llu scores %.2f, not its recorded %.2f (weights saved by "
                        "another version?)\n",
                f->label, (unsigned long long)f->seed, e->top1, f->top1);
    return a->record ? record(st, f, e) : TB_OK;
}

/* Scores one run and adds its row (and, with --record, its metrics); a run
 * that cannot be scored gets dashes and its error on stderr. */
static int eval_run(const eval_args *a, tb_store *st, const tb_finished_run *f, tb_table *t)
{
    tb_eval_result e;
    int rc = score_run(a, st, f, &e);
    if (rc != TB_OK) {
        rc = tb_err_context(rc, "run '%s' seed %llu (%.12s)", f->label, (unsigned long long)f->seed, f->hash);
        fprintf(stderr, "trickbench eval: error: %s\n", tb_errmsg());
        e = (tb_eval_result){NAN, NAN, NAN, 0};
    }
    char seed[24], hash[16], rec[32], n[24], loss[32], top1[32], top5[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)f->seed);
    snprintf(hash, sizeof hash, "%.12s", f->hash);
    snprintf(rec, sizeof rec, isnan(f->top1) ? "—" : "%.2f", f->top1);
    snprintf(n, sizeof n, rc == TB_OK ? "%lld" : "—", (long long)e.images);
    snprintf(loss, sizeof loss, isnan(e.loss) ? "—" : "%.4f", e.loss);
    snprintf(top1, sizeof top1, isnan(e.top1) ? "—" : "%.2f", e.top1);
    snprintf(top5, sizeof top5, isnan(e.top5) ? "—" : "%.2f", e.top5);
    const char *cells[] = {f->label, seed, hash, n, rec, loss, top1, top5};
    tb_table_add_row(t, cells);
    return rc;
}

static int eval_matrix(const eval_args *a)
{
    tb_store *st = NULL;
    tb_store_options so = {.read_only = !a->record, .must_exist = true};
    TB_TRY(tb_store_open(a->db, &so, &st));
    tb_finished_run *runs = NULL;
    int count = 0, rc = tb_store_finished_runs(st, a->matrix, a->label, &runs, &count);
    if (rc == TB_OK && count == 0)
        rc = tb_fail(TB_ERR_MISSING, "%s: no finished run of matrix '%s'%s%s%s", a->db, a->matrix,
                     a->label ? " under label '" : "", a->label ? a->label : "", a->label ? "'" : "");
    tb_table t;
    tb_table_init(&t);
    const char *tta = a->flip ? " (flip TTA)" : "";
    char hl[48], h1[48], h5[48];
    snprintf(hl, sizeof hl, "loss%s", tta);
    snprintf(h1, sizeof h1, "top1%s", tta);
    snprintf(h5, sizeof h5, "top5%s", tta);
    tb_table_add_column(&t, "label", false);
    tb_table_add_column(&t, "seed", true);
    tb_table_add_column(&t, "run", false);
    tb_table_add_column(&t, "images", true);
    tb_table_add_column(&t, "recorded top1", true);
    tb_table_add_column(&t, hl, true);
    tb_table_add_column(&t, h1, true);
    tb_table_add_column(&t, h5, true);
    int first_error = TB_OK;
    for (int i = 0; rc == TB_OK && i < count; i++) {
        fprintf(stderr, "eval: %s (seed %llu) %d/%d\n", runs[i].label, (unsigned long long)runs[i].seed, i + 1,
                count);
        int run_rc = eval_run(a, st, &runs[i], &t);
        if (first_error == TB_OK)
            first_error = run_rc;
    }
    if (rc == TB_OK && count > 0) {
        printf("## %s: evaluation of the saved weights%s\n\n", a->matrix, tta);
        rc = tb_table_print_md(&t, stdout);
    }
    if (rc == TB_OK && first_error != TB_OK)
        rc = tb_fail(first_error, "%s: some runs could not be scored (see above)", a->matrix);
    tb_table_free(&t);
    tb_store_finished_runs_free(runs, count);
    tb_store_close(st);
    return rc;
}

int tb_cmd_eval(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    eval_args a;
    if (parse_args(argc, argv, &a) != TB_OK)
        return tb_cli_usage_error("eval", "%s", tb_errmsg());
    int rc = eval_matrix(&a);
    return rc == TB_OK ? TB_EXIT_OK : tb_cli_report_error("eval", rc);
}
