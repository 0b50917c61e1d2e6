/* `trickbench bench --loader`: data-loader throughput (read, decode,
 * augment, normalise into batches) for a dataset, without training. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/bench_loader.h"
#include "harness/cli.h"
#include "harness/clock.h"
#include "harness/config.h"
#include "harness/data/dataset.h"
#include "harness/data/loader.h"
#include "kernels/error.h"

typedef struct loader_args {
    tb_data_config data;
    long batch, epochs;
    bool eval, json;
} loader_args;

static int parse_loader_args(int argc, char **argv, loader_args *a)
{
    static const struct option opts[] = {
        {"loader", no_argument, 0, 'L'},        {"dataset", required_argument, 0, 'd'},
        {"root", required_argument, 0, 'r'},    {"batch", required_argument, 0, 'b'},
        {"workers", required_argument, 0, 'w'}, {"augment", required_argument, 0, 'a'},
        {"image", required_argument, 0, 'i'},   {"epochs", required_argument, 0, 'e'},
        {"limit", required_argument, 0, 'l'},   {"eval", no_argument, 0, 'v'},
        {"json", no_argument, 0, 'j'},          {0, 0, 0, 0}};
    tb_run_config defaults;
    tb_config_defaults(&defaults);
    memset(a, 0, sizeof *a);
    a->data = defaults.data;
    a->batch = 128;
    a->epochs = 2;
    int ch;
    long v;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'L': break;
        case 'd': snprintf(a->data.dataset, sizeof a->data.dataset, "%s", optarg); break;
        case 'r': snprintf(a->data.root, sizeof a->data.root, "%s", optarg); break;
        case 'a': snprintf(a->data.augment, sizeof a->data.augment, "%s", optarg); break;
        case 'b': TB_TRY(tb_cli_parse_int("--batch", optarg, 1, 1 << 20, &a->batch)); break;
        case 'e': TB_TRY(tb_cli_parse_int("--epochs", optarg, 1, 1000, &a->epochs)); break;
        case 'w': TB_TRY(tb_cli_parse_int("--workers", optarg, 0, 256, &v)); a->data.workers = (int)v; break;
        case 'i': TB_TRY(tb_cli_parse_int("--image", optarg, 0, 4096, &v)); a->data.image_size = (int)v; break;
        case 'l': TB_TRY(tb_cli_parse_int("--limit", optarg, 0, 1L << 40, &v)); a->data.train_limit = v;
                  a->data.val_limit = v; break;
        case 'v': a->eval = true; break;
        case 'j': a->json = true; break;
        default: return tb_fail(TB_ERR_USAGE, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return tb_fail(TB_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
    return TB_OK;
}

/* Runs the epochs; the first is a warm-up (page cache, thread start). */
static int time_epochs(tb_loader *ld, long epochs, double *best_ips, int64_t *images)
{
    *best_ips = 0.0;
    for (long e = 0; e <= epochs; e++) {
        int64_t n = 0;
        double t0 = tb_seconds_now();
        TB_TRY(tb_loader_start_epoch(ld, (int)e));
        for (;;) {
            tb_batch *b = NULL;
            TB_TRY(tb_loader_next(ld, &b));
            if (!b)
                break;
            n += b->count;
            tb_loader_release(ld, b);
        }
        double ips = (double)n / (tb_seconds_now() - t0);
        *images = n;
        if (e > 0 && ips > *best_ips)
            *best_ips = ips;
    }
    return TB_OK;
}

int tb_bench_loader(int argc, char **argv)
{
    loader_args a;
    int rc = parse_loader_args(argc, argv, &a);
    if (rc != TB_OK)
        return tb_cli_usage_error("bench", "%s", tb_errmsg());
    tb_dataset *ds = NULL;
    tb_loader *ld = NULL;
    double ips = 0.0;
    int64_t images = 0;
    rc = tb_dataset_open(&ds, &a.data, !a.eval);
    if (rc == TB_OK) {
        tb_loader_options lo;
        tb_loader_options_from_config(&lo, &a.data, (int)a.batch, !a.eval, 1);
        rc = tb_loader_create(&ld, ds, &lo);
    }
    if (rc == TB_OK)
        rc = time_epochs(ld, a.epochs, &ips, &images);
    if (rc == TB_OK) {
        int n, h, w, c;
        tb_loader_shape(ld, &n, &h, &w, &c);
        if (a.json)
            printf("{\"dataset\": \"%s\", \"split\": \"%s\", \"images\": %lld, \"batch\": %d, \"image\": [%d, %d, %d], "
                   "\"augment\": \"%s\", \"workers\": %d, \"images_per_sec\": %.1f, \"batches_per_sec\": %.2f}\n",
                   tb_dataset_name(ds), a.eval ? "val" : "train", (long long)images, n, h, w, c,
                   tb_loader_augment_name(ld), tb_loader_workers(ld), ips, ips / (double)n);
        else
            printf("| dataset | split | images | batch | image | augment | workers | images/s | batches/s |\n"
                   "|---|---|---:|---:|---|---|---:|---:|---:|\n"
                   "| %s | %s | %lld | %d | %dx%dx%d | %s | %d | %.0f | %.1f |\n",
                   tb_dataset_name(ds), a.eval ? "val" : "train", (long long)images, n, h, w, c,
                   tb_loader_augment_name(ld), tb_loader_workers(ld), ips, ips / (double)n);
    }
    tb_loader_destroy(ld);
    tb_dataset_close(ds);
    return rc == TB_OK ? TB_EXIT_OK : tb_cli_report_error("bench", rc);
}
