/* trickbench eval: scores the weights finished classification runs saved,
 * on each run's own validation split, optionally with flip test-time
 * augmentation, and can record the TTA scores as final metrics (top1_flip,
 * top5_flip) that report and query then show beside the run's own. */
#include <math.h>
#include <stdio.h>
#include <string.h>

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
    "\n"
    "  --matrix NAME  the matrix (its name in the database)\n"
    "  --label LABEL  only the runs of this row\n"
    "  --db PATH      results database (default " TB_STORE_DEFAULT_PATH ")\n"
    "  --tta T        none (default) or flip: the mean of the softmax of each image and\n"
    "                 of its mirror image (test-time augmentation)\n"
    "  --record       store the flip scores as the runs' metrics top1_flip and top5_flip\n"
    "                 (report --metrics top1,top1_flip shows them); needs --tta flip\n"
    "  --device D     auto (default: the run's config), cpu or cuda\n"
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
    TB_CHECK(root, TB_ERR_DATA, "run %.12s: its config in the database is not valid JSON", f->hash);
    int rc = tb_config_from_json(root, "the database", cfg);
    cJSON_Delete(root);
    return rc;
}

/* Scores one run and adds its row (and, with --record, its metrics). */
static int eval_run(const eval_args *a, tb_store *st, const tb_finished_run *f, tb_table *t)
{
    tb_run_config cfg;
    TB_TRY(config_of(f, &cfg));
    tb_train_options opt = {.device = a->device, .threads = (int)a->threads, .quiet = true};
    tb_eval_result e;
    int rc = tb_eval_classification(&cfg, &opt, f->checkpoint, a->flip, &e);
    if (rc != TB_OK)
        return tb_err_context(rc, "run '%s' seed %llu (%.12s)", f->label, (unsigned long long)f->seed, f->hash);
    if (a->record) {
        TB_TRY(tb_store_set_metric(st, f->id, "top1_flip", e.top1));
        TB_TRY(tb_store_set_metric(st, f->id, "top5_flip", e.top5));
    }
    char seed[24], hash[16], rec[32], top1[32], top5[32], n[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)f->seed);
    snprintf(hash, sizeof hash, "%.12s", f->hash);
    snprintf(rec, sizeof rec, isnan(f->top1) ? "—" : "%.2f", f->top1);
    snprintf(top1, sizeof top1, "%.2f", e.top1);
    snprintf(top5, sizeof top5, isnan(e.top5) ? "—" : "%.2f", e.top5);
    snprintf(n, sizeof n, "%lld", (long long)e.images);
    const char *cells[] = {f->label, seed, hash, n, rec, top1, top5};
    tb_table_add_row(t, cells);
    return TB_OK;
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
    char h1[48], h5[48];
    snprintf(h1, sizeof h1, "top1%s", tta);
    snprintf(h5, sizeof h5, "top5%s", tta);
    tb_table_add_column(&t, "label", false);
    tb_table_add_column(&t, "seed", true);
    tb_table_add_column(&t, "run", false);
    tb_table_add_column(&t, "images", true);
    tb_table_add_column(&t, "recorded top1", true);
    tb_table_add_column(&t, h1, true);
    tb_table_add_column(&t, h5, true);
    for (int i = 0; rc == TB_OK && i < count; i++) {
        fprintf(stderr, "eval: %s (seed %llu) %d/%d\n", runs[i].label, (unsigned long long)runs[i].seed, i + 1,
                count);
        rc = eval_run(a, st, &runs[i], &t);
    }
    if (rc == TB_OK) {
        printf("## %s: evaluation of the saved weights%s\n\n", a->matrix, tta);
        rc = tb_table_print_md(&t, stdout);
    }
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
