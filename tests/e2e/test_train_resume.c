/* Resuming a classification run from its training state (harness/train/
 * resume.h), on the synthetic dataset with a tiny ResNet-18:
 * - a run stopped in epoch 3 and resumed gives, epoch for epoch, bitwise the
 *   records, final metrics and checkpoint of an uninterrupted run (mixup, EMA
 *   and label smoothing; and fp16 with dynamic loss scaling, CutMix, gradient
 *   clipping);
 * - a damaged, truncated, foreign or other run's state file is reported and
 *   ignored: the run starts from epoch 1 and ends as a clean run does;
 * - through the runner: an interrupted run keeps its recorded epochs, drops a
 *   row recorded after its state, finishes like an uninterrupted run, and
 *   deletes its state; a state file the database has no rows for, and
 *   --rerun, start from epoch 1. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "harness/config.h"
#include "harness/json_util.h"
#include "harness/matrix.h"
#include "harness/runner.h"
#include "harness/train/resume.h"
#include "harness/train/trainer.h"
#include "kernels/backend.h"
#include "kernels/error.h"
#include "models/models.h"

#define EPOCHS 4
#define STEPS 8 /* 256 training images / batch 32 */

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tb_test_resume_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- the trainer directly ------------------------------------------------ */

typedef struct recorder {
    tb_epoch_record recs[EPOCHS];
    int n;
    long stop_at; /* should_stop says yes at this poll (1-based; 0 = never) */
    long polls;
} recorder;

static int on_epoch(void *user, const tb_epoch_record *rec)
{
    recorder *r = user;
    assert_true(r->n < EPOCHS);
    r->recs[r->n++] = *rec;
    return TB_OK;
}

static bool should_stop(void *user)
{
    recorder *r = user;
    return r->stop_at > 0 && ++r->polls >= r->stop_at;
}

/* mixup (off for the last epoch), EMA and label smoothing; or fp16 with
 * dynamic loss scaling, CutMix, clipping and zero gamma */
static void config(tb_run_config *cfg, bool fp16)
{
    tb_config_defaults(cfg);
    snprintf(cfg->data.dataset, sizeof cfg->data.dataset, "synthetic");
    cfg->data.synthetic_train = 256;
    cfg->data.synthetic_val = 64;
    cfg->data.synthetic_classes = 6;
    cfg->data.synthetic_size = 12;
    cfg->data.workers = 1;
    snprintf(cfg->data.augment, sizeof cfg->data.augment, "small");
    snprintf(cfg->model.name, sizeof cfg->model.name, "resnet18");
    snprintf(cfg->model.stem, sizeof cfg->model.stem, "small");
    cfg->model.width = 0.125f;
    cfg->optim.batch = 32;
    cfg->optim.lr = 0.05;
    cfg->optim.epochs = EPOCHS;
    cfg->schedule.type = TB_SCHED_COSINE;
    cfg->seed = 5;
    snprintf(cfg->device, sizeof cfg->device, "cpu");
    if (!fp16) {
        cfg->tricks.mixup_alpha = 0.2;
        cfg->tricks.mixup_off_epochs = 1;
        cfg->tricks.ema = 0.9;
        cfg->tricks.label_smoothing = 0.1;
        cfg->model.dropout = 0.2f; /* the dropout mask stream must go on where it stopped */
    } else {
        cfg->tricks.precision = TB_PREC_FP16;
        cfg->tricks.loss_scale_dynamic = true;
        cfg->tricks.cutmix_alpha = 1.0;
        cfg->optim.grad_clip = 2.0;
        cfg->tricks.zero_gamma = true;
        cfg->tricks.ema = 0.99;
    }
}

typedef struct outcome {
    recorder rec;
    tb_train_result res;
} outcome;

/* One trainer call with a state file (NULL: none) and a checkpoint. */
static int train_rc(const tb_run_config *cfg, const char *state, const char *ckpt, long stop_at, outcome *out)
{
    tb_train_options opt = {.threads = 2, .quiet = true, .state_path = state, .checkpoint_path = ckpt};
    memset(out, 0, sizeof *out);
    out->rec.stop_at = stop_at;
    tb_train_callbacks cb = {.user = &out->rec, .on_epoch = on_epoch, .should_stop = should_stop};
    return tb_train_classification(cfg, &opt, &cb, &out->res);
}

static void train(const tb_run_config *cfg, const char *state, const char *ckpt, long stop_at, outcome *out)
{
    if (train_rc(cfg, state, ckpt, stop_at, out) != TB_OK)
        fail_msg("training failed: %s", tb_errmsg());
}

static double metric(const tb_train_result *res, const char *name)
{
    for (int i = 0; i < res->n_metrics; i++)
        if (!strcmp(res->metrics[i].name, name))
            return res->metrics[i].value;
    return NAN;
}

static bool same_bits(double a, double b) { return !memcmp(&a, &b, sizeof a); }

/* Bitwise: everything but the wall-clock fields. */
static void assert_same_epoch(const tb_epoch_record *a, const tb_epoch_record *b)
{
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->evaluated, b->evaluated);
    assert_int_equal(a->skipped_steps, b->skipped_steps);
    const double *fa[] = {&a->lr, &a->train_loss, &a->train_top1, &a->val_loss, &a->val_top1, &a->val_top5,
                          &a->loss_scale};
    const double *fb[] = {&b->lr, &b->train_loss, &b->train_top1, &b->val_loss, &b->val_top1, &b->val_top5,
                          &b->loss_scale};
    for (size_t i = 0; i < sizeof fa / sizeof fa[0]; i++)
        if (!same_bits(*fa[i], *fb[i]))
            fail_msg("epoch %d: field %zu differs: %.17g vs %.17g", a->epoch, i, *fa[i], *fb[i]);
}

static void assert_same_results(const tb_train_result *a, const tb_train_result *b)
{
    static const char *const names[] = {"top1", "top5", "loss", "params", "macs", "skipped_steps"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!same_bits(metric(a, names[i]), metric(b, names[i])))
            fail_msg("metric %s differs: %.17g vs %.17g", names[i], metric(a, names[i]), metric(b, names[i]));
}

static void assert_same_files(const char *a, const char *b)
{
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    if (system(cmd) != 0)
        fail_msg("%s and %s differ", a, b);
}

/* Straight through; then stopped in epoch 3, resumed, failing at the very
 * end (the checkpoint cannot be written) and resumed after its last epoch:
 * the same run. */
static void check_resume(bool fp16)
{
    tb_run_config cfg;
    config(&cfg, fp16);
    char straight_ckpt[300], ckpt[300], state[300], bad_ckpt[300];
    snprintf(bad_ckpt, sizeof bad_ckpt, "%s/no/such/dir/run.safetensors", dir);
    snprintf(straight_ckpt, sizeof straight_ckpt, "%s/straight.safetensors", dir);
    snprintf(ckpt, sizeof ckpt, "%s/run.safetensors", dir);
    snprintf(state, sizeof state, "%s/run.state.safetensors", dir);
    outcome *straight = calloc(1, sizeof *straight), *first = calloc(1, sizeof *first),
            *second = calloc(1, sizeof *second), *third = calloc(1, sizeof *third);
    train(&cfg, NULL, straight_ckpt, 0, straight);
    assert_int_equal(straight->res.outcome, TB_RUN_FINISHED);
    assert_int_equal(straight->rec.n, EPOCHS);

    train(&cfg, state, ckpt, 2 * STEPS + 3, first);
    assert_int_equal(first->res.outcome, TB_RUN_INTERRUPTED);
    assert_int_equal(first->res.epochs_done, 2);
    assert_int_equal(first->rec.n, 2);
    assert_true(exists(state));
    assert_false(exists(ckpt));

    assert_int_not_equal(train_rc(&cfg, state, bad_ckpt, 0, second), TB_OK);
    assert_int_equal(second->res.resumed_epoch, 2);
    assert_int_equal(second->rec.n, EPOCHS - 2);
    assert_true(exists(state)); /* a failed run keeps it */

    train(&cfg, state, ckpt, 0, third);
    assert_int_equal(third->res.outcome, TB_RUN_FINISHED);
    assert_int_equal(third->res.resumed_epoch, EPOCHS);
    assert_int_equal(third->res.epochs_done, EPOCHS);
    assert_int_equal(third->rec.n, 0);
    assert_false(exists(state)); /* a finished run deletes it */

    for (int e = 0; e < 2; e++)
        assert_same_epoch(&first->rec.recs[e], &straight->rec.recs[e]);
    for (int e = 2; e < EPOCHS; e++)
        assert_same_epoch(&second->rec.recs[e - 2], &straight->rec.recs[e]);
    assert_same_results(&third->res, &straight->res);
    assert_true(isfinite(metric(&third->res, "epoch_seconds_median")));
    assert_same_files(ckpt, straight_ckpt);
    if (fp16)
        print_message("fp16 loss scale after the run: %g\n", straight->rec.recs[EPOCHS - 1].loss_scale);
    free(straight);
    free(first);
    free(second);
    free(third);
}

static void test_resume_is_bitwise_uninterrupted(void **state)
{
    (void)state;
    check_resume(false);
}

static void test_resume_fp16_dynamic_scaling(void **state)
{
    (void)state;
    check_resume(true);
}

static void corrupt_byte(const char *path, long from_end)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, -from_end, SEEK_END), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, -from_end, SEEK_END), 0);
    fputc(c ^ 0x10, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to, long bytes)
{
    char cmd[1600];
    if (bytes >= 0)
        snprintf(cmd, sizeof cmd, "head -c %ld '%s' > '%s'", bytes, from, to);
    else
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

/* A rejected state: a warning, epoch 1, and (stopped at the first step) nothing done. */
static void expect_fresh_start(const tb_run_config *cfg, const char *state, const char *what)
{
    outcome *o = calloc(1, sizeof *o);
    print_message("state file %s:\n", what);
    train(cfg, state, NULL, 1, o);
    assert_int_equal(o->res.outcome, TB_RUN_INTERRUPTED);
    assert_int_equal(o->res.resumed_epoch, 0);
    assert_int_equal(o->res.epochs_done, 0);
    free(o);
}

static void test_bad_state_starts_fresh(void **state)
{
    (void)state;
    tb_run_config cfg, other;
    config(&cfg, false);
    config(&other, false);
    other.seed = 6;
    char good[300], path[300], foreign[300];
    snprintf(good, sizeof good, "%s/good.state.safetensors", dir);
    snprintf(path, sizeof path, "%s/run.state.safetensors", dir);
    snprintf(foreign, sizeof foreign, "%s/other.state.safetensors", dir);
    outcome *o = calloc(1, sizeof *o), *clean = calloc(1, sizeof *clean);
    train(&cfg, good, NULL, STEPS + 2, o); /* a valid state after epoch 1 */
    assert_int_equal(o->res.epochs_done, 1);
    train(&other, foreign, NULL, STEPS + 2, o);
    assert_int_equal(o->res.epochs_done, 1);
    assert_int_equal(tb_resume_peek(good, "0000000000000000000000000000000000000000000000000000000000000000"), 0);

    /* valid: it resumes (stopped at once: epoch 1 stays done) */
    copy_file(good, path, -1);
    train(&cfg, path, NULL, 1, o);
    assert_int_equal(o->res.resumed_epoch, 1);
    assert_int_equal(o->res.epochs_done, 1);

    copy_file(good, path, file_size(good) / 2);
    expect_fresh_start(&cfg, path, "truncated");
    copy_file(foreign, path, -1);
    expect_fresh_start(&cfg, path, "of another run");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("not a safetensors file", f);
    fclose(f);
    expect_fresh_start(&cfg, path, "not safetensors");
    copy_file(good, path, -1);
    corrupt_byte(path, 9); /* inside the last device tensor: only the checksum sees it */
    expect_fresh_start(&cfg, path, "one flipped bit");

    /* and trained through from the damaged file: exactly a clean run */
    train(&cfg, NULL, NULL, 0, clean);
    train(&cfg, path, NULL, 0, o);
    assert_int_equal(o->res.outcome, TB_RUN_FINISHED);
    assert_int_equal(o->res.resumed_epoch, 0);
    assert_int_equal(o->rec.n, EPOCHS);
    for (int e = 0; e < EPOCHS; e++)
        assert_same_epoch(&o->rec.recs[e], &clean->rec.recs[e]);
    assert_same_results(&o->res, &clean->res);
    assert_false(exists(path));
    free(o);
    free(clean);
}

/* ---- the file itself: every field round-trips --------------------------- */

typedef struct net {
    tb_graph *g;
    tb_step s;
} net;

static void net_build_as(net *n, tb_backend *be, uint64_t seed, bool fp16)
{
    tb_run_config cfg;
    config(&cfg, fp16);
    tb_model_spec spec;
    assert_int_equal(tb_model_spec_from_config(&spec, &cfg.model, 12, 1, 6), TB_OK);
    assert_int_equal(tb_graph_create(&n->g, be, fp16 ? TB_F16 : TB_F32, 4), TB_OK);
    assert_int_equal(tb_model_build(n->g, &spec), TB_OK);
    assert_int_equal(tb_graph_finalize(n->g, true), TB_OK);
    assert_int_equal(tb_model_init(n->g, spec.init, seed), TB_OK);
    tb_step_options so = {.fp16_scaling = fp16, .dynamic_scale = true, .momentum = 0.9, .ema_decay = 0.99};
    assert_int_equal(tb_step_init(&n->s, n->g, &so), TB_OK);
}

static void net_build(net *n, tb_backend *be, uint64_t seed) { net_build_as(n, be, seed, true); }

static void net_free(net *n)
{
    tb_step_destroy(&n->s);
    tb_graph_destroy(n->g);
}

/* Every f32 tensor the state holds (group masters and momenta, BN buffers,
 * EMA shadows), and the low-precision weight copy. */
static int state_tensors(net *n, tb_tensor **out)
{
    int k = 0;
    for (int gi = 0; gi < 2; gi++) {
        tb_param_group *grp = tb_graph_group(n->g, gi);
        if (grp) {
            out[k++] = &grp->master;
            out[k++] = &grp->momentum;
        }
    }
    for (int b = 0; b < tb_graph_n_buffers(n->g); b++)
        out[k++] = &tb_graph_buffer(n->g, b)->t;
    for (int i = 0; i < n->s.ema.count; i++)
        out[k++] = &n->s.ema.shadow[i];
    assert_non_null(tb_graph_group(n->g, TB_GROUP_LOWP));
    out[k++] = &tb_graph_group(n->g, TB_GROUP_LOWP)->value;
    return k;
}

static void test_state_round_trip(void **state)
{
    (void)state;
    tb_backend *be;
    char note[256];
    assert_int_equal(tb_backend_create(&be, TB_DEVICE_CPU, 1, note, sizeof note), TB_OK);
    net a, b;
    net_build(&a, be, 1);
    net_build(&b, be, 2);
    /* arbitrary values everywhere, unlike anything b holds */
    tb_tensor *ta[512], *tb[512];
    int n = state_tensors(&a, ta);
    assert_int_equal(state_tensors(&b, tb), n);
    assert_true(n < 512);
    uint32_t x = 12345;
    for (int i = 0; i < n - 1; i++) {
        int64_t count = tb_numel(ta[i]);
        float *v = malloc(sizeof(float) * (size_t)count);
        for (int64_t j = 0; j < count; j++) {
            x = x * 1664525u + 1013904223u;
            v[j] = (float)(x >> 8) / 16777216.0f - 0.5f;
        }
        assert_int_equal(tb_upload(be, ta[i], v), TB_OK);
        free(v);
    }
    assert_int_equal(tb_graph_sync_params(a.g), TB_OK);
    a.s.scaler.scale = 1024.0;
    a.s.scaler.good_steps = 1234;
    a.s.scaler.steps = 5555;
    a.s.scaler.skipped = 7;
    a.s.ema.updates = 4321;
    tb_graph_set_bn_batches_tracked(a.g, 777);
    double sec[5] = {1.5, 2.5, 3.5, 0, 0}, ips[5] = {10, 20, 30, 0, 0};
    tb_resume_progress pa = {.epoch = 3, .epochs = 5, .steps_per_epoch = 10, .epoch_seconds = sec, .epoch_ips = ips,
                             .last_eval = {0.25, 91.5, NAN}};
    char path[300], hash[65];
    snprintf(path, sizeof path, "%s/x.state.safetensors", dir);
    memset(hash, 'a', 64);
    hash[64] = '\0';
    assert_int_equal(tb_resume_save(path, hash, "cpu (test)", a.g, &a.s, &pa), TB_OK);
    assert_int_equal(tb_resume_peek(path, hash), 3);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_false(exists(tmp));

    double sec_b[5] = {0}, ips_b[5] = {0};
    tb_resume_progress pb = {.epochs = 5, .steps_per_epoch = 10, .epoch_seconds = sec_b, .epoch_ips = ips_b};
    tb_resume_outcome out;
    char device[TB_RESUME_DEVICE_LEN];
    /* a run of another length does not take it, and nothing changes */
    pb.steps_per_epoch = 11;
    assert_int_equal(tb_resume_load(path, hash, b.g, &b.s, &pb, device, sizeof device, &out), TB_OK);
    assert_int_equal(out, TB_RESUME_REJECTED);
    assert_non_null(strstr(tb_errmsg(), "10 steps"));
    assert_int_equal(pb.epoch, 0);
    assert_int_equal(b.s.ema.updates, 0);
    pb.steps_per_epoch = 10;
    assert_int_equal(tb_resume_load(path, hash, b.g, &b.s, &pb, device, sizeof device, &out), TB_OK);
    assert_int_equal(out, TB_RESUME_LOADED);
    assert_string_equal(device, "cpu (test)");
    assert_int_equal(pb.epoch, 3);
    assert_memory_equal(sec_b, sec, sizeof sec);
    assert_memory_equal(ips_b, ips, sizeof ips);
    assert_memory_equal(pb.last_eval, pa.last_eval, sizeof pa.last_eval);
    assert_true(b.s.scaler.scale == 1024.0);
    assert_int_equal(b.s.scaler.good_steps, 1234);
    assert_int_equal(b.s.scaler.steps, 5555);
    assert_int_equal(b.s.scaler.skipped, 7);
    assert_int_equal(b.s.ema.updates, 4321);
    assert_int_equal(tb_graph_bn_batches_tracked(b.g), 777);
    for (int i = 0; i < n; i++) {
        size_t bytes = tb_nbytes(ta[i]);
        void *ha = malloc(bytes), *hb = malloc(bytes);
        assert_int_equal(tb_download(be, ha, ta[i]), TB_OK);
        assert_int_equal(tb_download(be, hb, tb[i]), TB_OK);
        assert_memory_equal(ha, hb, bytes);
        free(ha);
        free(hb);
    }
    /* gone, with its temporary file */
    FILE *f = fopen(tmp, "w");
    fclose(f);
    assert_int_equal(tb_resume_remove(path), TB_OK);
    assert_false(exists(path));
    assert_false(exists(tmp));
    assert_int_equal(tb_resume_load(path, hash, b.g, &b.s, &pb, NULL, 0, &out), TB_OK);
    assert_int_equal(out, TB_RESUME_NONE);
    net_free(&a);
    net_free(&b);
    tb_backend_destroy(be);

    char p2[64];
    assert_true(tb_resume_path_for("d/abc.safetensors", p2, sizeof p2));
    assert_string_equal(p2, "d/abc.state.safetensors");
    assert_true(tb_resume_path_for("d/abc", p2, sizeof p2));
    assert_string_equal(p2, "d/abc.state.safetensors");
    assert_false(tb_resume_path_for("d/abc.safetensors", p2, 8));
}

/* ---- through the runner ---------------------------------------------------- */

static const char matrix_json[] =
    "{\"name\": \"resume\", \"seeds\": [5], \"base\": {\"device\": \"cpu\","
    " \"data\": {\"dataset\": \"synthetic\", \"synthetic_train\": 256, \"synthetic_val\": 64,"
    "  \"synthetic_classes\": 6, \"synthetic_size\": 12, \"workers\": 1, \"augment\": \"small\"},"
    " \"model\": {\"name\": \"resnet18\", \"stem\": \"small\", \"width\": 0.125},"
    " \"optim\": {\"batch\": 32, \"lr\": 0.05, \"epochs\": 4},"
    " \"schedule\": {\"type\": \"cosine\"},"
    " \"tricks\": {\"mixup_alpha\": 0.2, \"mixup_off_epochs\": 1, \"ema\": 0.9, \"label_smoothing\": 0.1}},"
    " \"rows\": [{\"label\": \"all\"}]}";

static void load_matrix(tb_matrix *m)
{
    cJSON *root = NULL;
    assert_int_equal(tb_json_parse_text(matrix_json, strlen(matrix_json), "resume.json", &root), TB_OK);
    if (tb_matrix_from_json(root, "resume.json", NULL, m) != TB_OK)
        fail_msg("%s", tb_errmsg());
    cJSON_Delete(root);
    assert_int_equal(m->n_runs, 1);
}

/* The real trainer, stopped at the stop_at-th step poll when > 0. */
static long runner_stop_at;

typedef struct wrapped {
    const tb_train_callbacks *inner;
    long polls;
} wrapped;

static int wrapped_epoch(void *user, const tb_epoch_record *rec)
{
    wrapped *w = user;
    return w->inner->on_epoch(w->inner->user, rec);
}

static bool wrapped_stop(void *user)
{
    wrapped *w = user;
    if (runner_stop_at > 0 && ++w->polls >= runner_stop_at)
        return true;
    return w->inner->should_stop(w->inner->user);
}

static int stopping_trainer(const tb_run_config *cfg, const tb_train_options *opt, const tb_train_callbacks *cb,
                            tb_train_result *res)
{
    wrapped w = {.inner = cb};
    tb_train_callbacks mine = {.user = &w, .on_epoch = wrapped_epoch, .should_stop = wrapped_stop};
    return tb_train_classification(cfg, opt, &mine, res);
}

static tb_runner_options runner_options(const char *db, const char *ckpt_dir, bool rerun)
{
    tb_runner_options o = {.db_path = db, .checkpoint_dir = ckpt_dir, .threads = 2, .rerun = rerun,
                           .trainer = stopping_trainer, .progress = TB_PROGRESS_QUIET, .busy_ms = 2000};
    return o;
}

static long long sql_int(const char *db, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    long long v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    sqlite3_close(h);
    return v;
}

static void sql_exec(const char *db, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    char *err = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(h);
}

static int run_matrix(const tb_matrix *m, const tb_runner_options *o)
{
    tb_runner_summary s;
    return tb_runner_run(m, o, &s);
}

static void test_runner_resumes(void **state)
{
    (void)state;
    tb_matrix m;
    load_matrix(&m);
    char db[300], db2[300], db3[300], ckpts[300], state_path[700], ckpt[700], moved[300], sql[1200];
    snprintf(db, sizeof db, "%s/a/results.db", dir);
    snprintf(db2, sizeof db2, "%s/b/results.db", dir);
    snprintf(db3, sizeof db3, "%s/c/results.db", dir);
    snprintf(ckpts, sizeof ckpts, "%s/a/checkpoints", dir);
    snprintf(moved, sizeof moved, "%s/moved", dir);
    tb_runner_options o = runner_options(db, NULL, false);
    tb_runner_state_path(&o, m.runs[0].hash, state_path, sizeof state_path);
    tb_runner_checkpoint_path(&o, m.runs[0].hash, ckpt, sizeof ckpt);
    char expect[700];
    snprintf(expect, sizeof expect, "%s/%s.state.safetensors", ckpts, m.runs[0].hash);
    assert_string_equal(state_path, expect);

    /* interrupted in epoch 3 */
    runner_stop_at = 2 * STEPS + 3;
    assert_int_equal(run_matrix(&m, &o), TB_ERR_INTERRUPTED);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM runs WHERE status = 'interrupted' AND epochs_done = 2"), 1);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM epochs"), 2);
    assert_true(exists(state_path));
    assert_int_equal(tb_resume_peek(state_path, m.runs[0].hash), 2);

    /* a state file the database has no rows for is not resumed (and deleted) */
    assert_int_equal(mkdir(moved, 0755), 0);
    char moved_state[700];
    tb_runner_options o3 = runner_options(db3, moved, false);
    tb_runner_state_path(&o3, m.runs[0].hash, moved_state, sizeof moved_state);
    copy_file(state_path, moved_state, -1);
    runner_stop_at = 1;
    assert_int_equal(run_matrix(&m, &o3), TB_ERR_INTERRUPTED);
    assert_false(exists(moved_state));
    assert_int_equal(sql_int(db3, "SELECT epochs_done FROM runs"), 0);

    /* the same rows with a damaged state: the trainer starts from epoch 1 over
     * the kept rows, which go (stopped in epoch 1) or are replaced (after it) */
    char db4[300], state4[700];
    for (int k = 0; k < 2; k++) {
        snprintf(db4, sizeof db4, "%s/d%d/results.db", dir, k);
        snprintf(sql, sizeof sql, "%s/d%d", dir, k);
        assert_int_equal(mkdir(sql, 0755), 0);
        snprintf(sql, sizeof sql, "VACUUM INTO '%s'", db4);
        sql_exec(db, sql);
        tb_runner_options o4 = runner_options(db4, NULL, false);
        tb_runner_state_path(&o4, m.runs[0].hash, state4, sizeof state4);
        snprintf(sql, sizeof sql, "%s/d%d/checkpoints", dir, k);
        assert_int_equal(mkdir(sql, 0755), 0);
        copy_file(state_path, state4, -1);
        corrupt_byte(state4, 9);
        assert_int_equal(tb_resume_peek(state4, m.runs[0].hash), 2); /* the runner cannot tell */
        sql_exec(db4, "UPDATE epochs SET train_loss = 999.0");
        /* stopped in its first epoch: the run has no epoch done, and no rows */
        runner_stop_at = k == 0 ? 1 : STEPS + 2;
        assert_int_equal(run_matrix(&m, &o4), TB_ERR_INTERRUPTED);
        assert_int_equal(sql_int(db4, "SELECT count(*) FROM epochs"), k);
        assert_int_equal(sql_int(db4, "SELECT count(*) FROM epochs WHERE train_loss < 100"), k);
        assert_int_equal(sql_int(db4, "SELECT epochs_done FROM runs"), k);
    }
    assert_int_equal(tb_resume_peek(state4, m.runs[0].hash), 1);

    /* as if the process died after recording epoch 3 but before its state */
    sql_exec(db, "INSERT INTO epochs (run_id, epoch, train_loss, evaluated, recorded_at) "
                 "SELECT id, 3, 999.0, 0, 'stale' FROM runs");
    sql_exec(db, "UPDATE epochs SET recorded_at = 'kept' WHERE epoch <= 2");
    runner_stop_at = 0;
    assert_int_equal(run_matrix(&m, &o), TB_OK);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM runs WHERE status = 'finished' AND epochs_done = 4 "
                                 "AND attempts = 2"), 1);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM epochs"), 4);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM epochs WHERE recorded_at = 'kept'"), 2);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM epochs WHERE train_loss = 999.0 OR recorded_at = 'stale'"),
                     0);
    assert_false(exists(state_path));
    assert_true(exists(ckpt));

    /* the same run uninterrupted, in another database: the same rows and metrics */
    tb_runner_options o2 = runner_options(db2, NULL, false);
    assert_int_equal(run_matrix(&m, &o2), TB_OK);
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM epochs a JOIN other.epochs b USING (epoch) WHERE a.lr IS b.lr AND "
             "a.train_loss IS b.train_loss AND a.train_top1 IS b.train_top1 AND a.val_loss IS b.val_loss AND "
             "a.val_top1 IS b.val_top1 AND a.val_top5 IS b.val_top5 AND a.skipped_steps = b.skipped_steps) * 100 + "
             "(SELECT count(*) FROM metrics a JOIN other.metrics b USING (name) WHERE a.value IS b.value AND "
             "a.name IN ('top1', 'top5', 'loss', 'params', 'macs', 'skipped_steps'))");
    char attach[1600];
    snprintf(attach, sizeof attach, "ATTACH '%s' AS other", db2);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, attach, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 4 * 100 + 6);
    sqlite3_finalize(s);
    sqlite3_close(h);
    char ckpt2[700];
    tb_runner_checkpoint_path(&o2, m.runs[0].hash, ckpt2, sizeof ckpt2);
    assert_same_files(ckpt, ckpt2);

    /* --rerun: from epoch 1, the rows and the state of the last attempt gone */
    tb_runner_options r2 = runner_options(db2, NULL, true);
    char state2[700];
    tb_runner_state_path(&r2, m.runs[0].hash, state2, sizeof state2);
    runner_stop_at = STEPS + 2;
    assert_int_equal(run_matrix(&m, &r2), TB_ERR_INTERRUPTED);
    assert_int_equal(sql_int(db2, "SELECT count(*) FROM epochs"), 1);
    assert_int_equal(tb_resume_peek(state2, m.runs[0].hash), 1);
    runner_stop_at = 1;
    assert_int_equal(run_matrix(&m, &r2), TB_ERR_INTERRUPTED);
    assert_false(exists(state2));
    assert_int_equal(sql_int(db2, "SELECT count(*) FROM epochs"), 0);
    runner_stop_at = 0;
    tb_matrix_free(&m);
}

/* tricks.loss_scale "dynamic" (the default) scales only fp16: without the
 * overflow check (fp32, bf16) the scale stays 1, where growth every 2000
 * steps with nothing to back it off would overflow a long run's gradients. */
static void test_dynamic_scale_only_with_fp16(void **state)
{
    (void)state;
    tb_backend *be;
    char note[256];
    assert_int_equal(tb_backend_create(&be, TB_DEVICE_CPU, 1, note, sizeof note), TB_OK);
    net a, b;
    net_build_as(&a, be, 1, false);
    assert_false(a.s.scaler.dynamic);
    for (int i = 0; i < 3 * TB_LOSS_SCALE_INTERVAL; i++)
        assert_true(tb_loss_scaler_update(&a.s.scaler, false));
    assert_true(tb_loss_scaler_scale(&a.s.scaler) == 1.0f);
    net_build_as(&b, be, 1, true);
    assert_true(b.s.scaler.dynamic);
    assert_true(tb_loss_scaler_scale(&b.s.scaler) == (float)TB_LOSS_SCALE_DYNAMIC_INIT);
    net_free(&a);
    net_free(&b);
    tb_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resume_is_bitwise_uninterrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_fp16_dynamic_scaling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_state_starts_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dynamic_scale_only_with_fp16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runner_resumes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
