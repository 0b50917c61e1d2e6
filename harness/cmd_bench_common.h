/* What trickbench bench's three training-throughput commands share
 * (cmd_bench.c: classification, cmd_bench_det.c: Faster R-CNN,
 * cmd_bench_seg.c: FCN): the flags every one takes, the backend, the
 * warm-up + timed repeats + median measurement with the peak RSS, the timing
 * part of the JSON object and of the table row, and the command's flow
 * (help, parse, run, print, exit codes).
 *
 * A command keeps its own usage text, defaults, limits, extra flags, set-up
 * and output columns; everything here prints and fails exactly as the three
 * did on their own.
 */
#ifndef TB_CMD_BENCH_COMMON_H
#define TB_CMD_BENCH_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

/* Highest --repeats (the size of tb_bench_result.ips). */
#define TB_BENCH_MAX_REPEATS 1000

/* The shared flags' values; a command sets its defaults before parsing. */
typedef struct tb_bench_args {
    const char *model, *device, *stem, *precision;
    char variant;
    long batch, image, steps, warmup, repeats, threads, classes, channels;
    double width;
    bool json;
} tb_bench_args;

/* Accepted values [lo, hi] of an integer flag. */
typedef struct tb_bench_range {
    long lo, hi;
} tb_bench_range;

/* Handles one of a command's own flags (`val` of its option, `arg` its
 * value): returns a tb_status, or points *target at a long to parse `arg`
 * into within [*lo, *hi] (preset to [1, 2^30]). */
typedef int (*tb_bench_option_fn)(void *user, int val, const char *arg, long **target, long *lo, long *hi);

/* How one command parses: its --task, its limits and its own flags. */
typedef struct tb_bench_parse_spec {
    const char *task;          /* the --task value it accepts */
    const char *task_expected; /* "--task: expected <this>, got '...'" */
    bool fp32_only;            /* --precision other than fp32 is a usage error */
    tb_bench_range batch, image, classes;
    const struct option *extra; /* the command's own flags ({0} ends; vals not among the shared ones) or NULL */
    tb_bench_option_fn option;  /* handles them */
    void *user;
} tb_bench_parse_spec;

/* Parses argv into `a` (its defaults already set): the shared flags, --task,
 * --precision and the spec's own; then no positional argument is left and
 * --model is given. Messages are the usage error's text. */
int tb_bench_parse(int argc, char **argv, const tb_bench_parse_spec *spec, tb_bench_args *a);

/* One benchmark's figures. */
typedef struct tb_bench_result {
    double ips_median, ips[TB_BENCH_MAX_REPEATS], step_ms; /* images/s: median, every repeat */
    float loss;          /* of the last step (detection and segmentation) */
    size_t graph_bytes;
    long peak_rss;       /* bytes */
    long long device_used; /* bytes in use on the device after the timed steps; -1: none (CPU) */
    int64_t params, macs;
    int feat_h, feat_w;  /* the backbone's feature map (detection and segmentation) */
    int threads;
    char device[128];
} tb_bench_result;

/* The backend of --device and --threads; prints its note on stderr and
 * records its name and threads in r. */
int tb_bench_backend(const tb_bench_args *a, tb_backend **be, tb_bench_result *r);

/* Runs `count` training steps, numbered from `first` (the command's state in user). */
typedef int (*tb_bench_steps_fn)(void *user, long first, long count);

/* --warmup steps, then --repeats timed runs of --steps steps (synchronised
 * before and after), their median, ms per step and the peak RSS. With
 * `loss` (the last step's, kept by run) a non-finite one is warned about. */
int tb_bench_measure(const tb_bench_args *a, tb_backend *be, tb_bench_steps_fn run, void *user, const float *loss,
                     tb_bench_result *r);

/* The JSON members from "device" to "params" (no braces around them; "loss"
 * only with_loss). */
void tb_bench_print_json_timing(const tb_bench_args *a, const tb_bench_result *r, bool with_loss);
/* The table row's last cells, "device | images/s | ms/step | graph memory |
 * peak RSS |", images/s with `ips_decimals` decimals. */
void tb_bench_print_row_timing(const tb_bench_result *r, int ips_decimals);

/* A command's steps after its help: parse (and set up) from argv, run,
 * print; each gets the command's state. */
typedef struct tb_bench_command {
    const char *usage;
    int (*parse)(void *state, int argc, char **argv);
    int (*run)(void *state);
    void (*print)(const void *state);
} tb_bench_command;

/* --help prints the usage; a parse failure is a usage error (64), a run
 * failure its status's exit code; returns the exit code. */
int tb_bench_main(int argc, char **argv, const tb_bench_command *cmd, void *state);

#endif
