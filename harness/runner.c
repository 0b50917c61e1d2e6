#include "harness/runner.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/fs.h"
#include "harness/stats.h"
#include "harness/train/resume.h"
#include "kernels/error.h"

/* ---- signals --------------------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int signo) { stop_signal = signo; }

typedef struct saved_handlers {
    struct sigaction sigint, sigterm;
} saved_handlers;

static void install_handlers(saved_handlers *saved)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* one-shot: a second Ctrl-C gets the default action and ends the process */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, &saved->sigint);
    sigaction(SIGTERM, &sa, &saved->sigterm);
}

static void restore_handlers(const saved_handlers *saved)
{
    sigaction(SIGINT, &saved->sigint, NULL);
    sigaction(SIGTERM, &saved->sigterm, NULL);
}

/* ---- one run --------------------------------------------------------------- */

typedef struct run_ctx {
    tb_store *st;
    int64_t run_id;
    tb_progress *progress;
    int store_rc;           /* first store error during the run */
    double *seconds, *ips;  /* per-epoch, for the medians */
    int n_epochs, cap;
} run_ctx;

static int cb_epoch(void *user, const tb_epoch_record *rec)
{
    run_ctx *c = user;
    if (c->n_epochs < c->cap) {
        c->seconds[c->n_epochs] = rec->seconds;
        c->ips[c->n_epochs] = rec->images_per_sec;
        c->n_epochs++;
    }
    tb_progress_epoch(c->progress, rec);
    int rc = tb_store_add_epoch(c->st, c->run_id, rec);
    if (rc != TB_OK && c->store_rc == TB_OK)
        c->store_rc = rc;
    return rc;
}

static bool cb_should_stop(void *user)
{
    (void)user;
    return stop_signal != 0;
}

static void cb_progress(void *user, int epoch, int64_t step, int64_t steps, double loss, double ips)
{
    run_ctx *c = user;
    tb_progress_step(c->progress, epoch, step, steps, loss, ips);
}

static bool has_metric(const tb_train_result *res, const char *name)
{
    for (int i = 0; i < res->n_metrics; i++)
        if (!strcmp(res->metrics[i].name, name))
            return true;
    return false;
}

static void add_metric(tb_train_result *res, const char *name, double value)
{
    if (has_metric(res, name) || res->n_metrics >= TB_MAX_METRICS || !isfinite(value))
        return;
    snprintf(res->metrics[res->n_metrics].name, sizeof res->metrics[0].name, "%s", name);
    res->metrics[res->n_metrics].value = value;
    res->n_metrics++;
}

static double metric(const tb_train_result *res, const char *name)
{
    for (int i = 0; i < res->n_metrics; i++)
        if (!strcmp(res->metrics[i].name, name))
            return res->metrics[i].value;
    return NAN;
}

void tb_runner_checkpoint_path(const tb_runner_options *opt, const char *hash, char *buf, size_t size)
{
    if (opt->checkpoint_dir) {
        snprintf(buf, size, "%s/%s.safetensors", opt->checkpoint_dir, hash);
        return;
    }
    char *copy = strdup(opt->db_path ? opt->db_path : TB_STORE_DEFAULT_PATH);
    snprintf(buf, size, "%s/checkpoints/%s.safetensors", copy ? dirname(copy) : ".", hash);
    free(copy);
}

void tb_runner_state_path(const tb_runner_options *opt, const char *hash, char *buf, size_t size)
{
    char ckpt[TB_PATH_MAX * 2];
    tb_runner_checkpoint_path(opt, hash, ckpt, sizeof ckpt);
    if (!tb_resume_path_for(ckpt, buf, size) && size)
        buf[0] = '\0';
}

/* The epoch a run resumes after: its state file's, when the database holds
 * the rows of all those epochs (a state file beside another database, or a
 * database edited since, cannot be resumed consistently: it is deleted).
 * With `rerun` the state is deleted: the run starts from its first epoch. */
static int resume_point(tb_store *st, int64_t run_id, const char *state, const tb_runner_options *opt,
                        const char *hash, tb_progress *progress, int *epoch)
{
    *epoch = 0;
    if (!state[0])
        return TB_OK;
    if (opt->rerun)
        return tb_resume_remove(state);
    int e = tb_resume_peek(state, hash), rows = 0;
    if (e > 0)
        TB_TRY(tb_store_count_epochs(st, run_id, e, &rows));
    if (e > 0 && rows != e) {
        tb_progress_note(progress, "warning: %s resumes after epoch %d but %s holds %d of those epochs: the run "
                         "starts from epoch 1", state, e, tb_store_path(st), rows);
        TB_TRY(tb_resume_remove(state));
        e = 0;
    }
    *epoch = e;
    return TB_OK;
}

/* model.backbone_from names a classification run as "MATRIX/LABEL" (a
 * label may hold '/' itself, "w/o": the matrix name ends at the first one). */
static bool backbone_is_run_label(const tb_run_config *cfg)
{
    const char *b = cfg->model.backbone_from;
    return cfg->task != TB_TASK_CLASSIFICATION && b[0] && !strstr(b, ".safetensors") && strchr(b, '/');
}

/* The checkpoint and config of the backbone run with this run's seed. */
static int backbone_checkpoint(tb_store *st, const tb_run_config *cfg, char *path, size_t size, tb_run_config *bcfg)
{
    const char *from = cfg->model.backbone_from, *slash = strchr(from, '/');
    char matrix[TB_PATH_MAX];
    snprintf(matrix, sizeof matrix, "%.*s", (int)(slash - from), from);
    const char *label = slash + 1;
    tb_run_status status;
    char *json = NULL;
    TB_TRY(tb_store_find_matrix_run(st, matrix, label, cfg->seed, &status, path, size, &json));
    int rc = TB_OK;
    if (status != TB_STATUS_FINISHED)
        rc = tb_fail(TB_ERR_MISSING,
                     "model.backbone_from '%s': matrix '%s' has %s run '%s' with seed %llu in this database "
                     "(run that classification matrix into it first)",
                     from, matrix, status == TB_STATUS_ABSENT ? "no" : tb_run_status_name(status), label,
                     (unsigned long long)cfg->seed);
    else if (!path[0])
        rc = tb_fail(TB_ERR_MISSING, "model.backbone_from '%s' (seed %llu) finished without a checkpoint", from,
                     (unsigned long long)cfg->seed);
    cJSON *tree = rc == TB_OK ? cJSON_Parse(json) : NULL;
    if (rc == TB_OK)
        rc = tree ? tb_config_from_json(tree, from, bcfg)
                  : tb_fail(TB_ERR_DATA, "model.backbone_from '%s': the stored config is not JSON", from);
    cJSON_Delete(tree);
    free(json);
    return rc;
}

/* The teacher's checkpoint for a student that names it by label. */
static int teacher_checkpoint(tb_store *st, const tb_matrix *m, int i, char *path, size_t size)
{
    const tb_matrix_run *t = &m->runs[m->runs[i].teacher];
    tb_run_status status;
    TB_TRY(tb_store_run_status(st, t->hash, &status, path, size));
    if (status != TB_STATUS_FINISHED)
        return tb_fail(TB_ERR_MISSING, "teacher run '%s' (seed %llu) is %s, not finished", m->rows[t->row].label,
                       (unsigned long long)t->seed, tb_run_status_name(status));
    if (!path[0])
        return tb_fail(TB_ERR_MISSING, "teacher run '%s' (seed %llu) finished without a checkpoint",
                       m->rows[t->row].label, (unsigned long long)t->seed);
    return TB_OK;
}

typedef struct run_outcome {
    tb_run_status status;
    int error;              /* tb_status of a failure */
    char message[1024];
} run_outcome;

static int train_one(tb_store *st, const tb_matrix *m, int i, int64_t run_id, const tb_runner_options *opt,
                     tb_progress *progress, run_outcome *out)
{
    const tb_matrix_run *run = &m->runs[i];
    char ckpt[TB_PATH_MAX * 2], teacher[TB_PATH_MAX * 2], state[TB_PATH_MAX * 2 + 16];
    tb_runner_checkpoint_path(opt, run->hash, ckpt, sizeof ckpt);
    tb_runner_state_path(opt, run->hash, state, sizeof state);
    tb_train_options to = {.device = opt->device, .threads = opt->threads, .checkpoint_path = ckpt,
                           .quiet = opt->progress == TB_PROGRESS_QUIET, .state_path = state[0] ? state : NULL};
    tb_train_result *res = calloc(1, sizeof *res);
    int cap = run->cfg.optim.epochs;
    run_ctx ctx = {.st = st, .run_id = run_id, .progress = progress, .cap = cap,
                   .seconds = calloc((size_t)cap, sizeof(double)), .ips = calloc((size_t)cap, sizeof(double))};
    int rc = res && ctx.seconds && ctx.ips ? TB_OK : tb_fail(TB_ERR_NOMEM, "out of memory starting a run");
    if (rc == TB_OK)
        rc = tb_make_parent_dirs(ckpt);
    int resume_after = 0;
    if (rc == TB_OK)
        rc = resume_point(st, run_id, state, opt, run->hash, progress, &resume_after);
    /* the rows of the epochs it resumes after stay, later ones go */
    if (rc == TB_OK)
        rc = tb_store_keep_epochs(st, run_id, resume_after);
    if (rc == TB_OK && run->teacher >= 0) {
        rc = teacher_checkpoint(st, m, i, teacher, sizeof teacher);
        to.teacher_checkpoint = teacher;
        to.teacher_model = &m->runs[run->teacher].cfg.model;
    }
    tb_train_callbacks cb = {.user = &ctx, .on_epoch = cb_epoch, .should_stop = cb_should_stop,
                             .on_progress = cb_progress};
    char backbone[TB_PATH_MAX * 2];
    tb_run_config backbone_cfg;
    if (rc == TB_OK && backbone_is_run_label(&run->cfg)) {
        rc = backbone_checkpoint(st, &run->cfg, backbone, sizeof backbone, &backbone_cfg);
        to.backbone_checkpoint = backbone;
        to.backbone_model = &backbone_cfg.model;
    }
    tb_trainer_fn trainer = opt->trainer;
    if (rc == TB_OK && !trainer) {
        trainer = tb_trainer_for_task(run->cfg.task);
        rc = trainer ? TB_OK : TB_ERR_NOT_IMPLEMENTED;
    }
    if (rc == TB_OK) {
        tb_err_clear();
        rc = trainer(&run->cfg, &to, &cb, res);
    }
    if (ctx.store_rc != TB_OK) {
        /* the database refused an epoch: record what we can, stop the matrix */
        char msg[1024];
        snprintf(msg, sizeof msg, "could not record an epoch: %s", tb_errmsg());
        tb_store_finish_run(st, run_id, TB_STATUS_FAILED, NULL, msg);
        free(ctx.seconds);
        free(ctx.ips);
        free(res);
        return tb_fail(ctx.store_rc, "%s", msg + strlen("could not record an epoch: "));
    }
    memset(out, 0, sizeof *out);
    if (rc != TB_OK) {
        out->status = stop_signal ? TB_STATUS_INTERRUPTED : TB_STATUS_FAILED;
        out->error = rc;
        snprintf(out->message, sizeof out->message, "%s", tb_errmsg());
    } else if (res->outcome == TB_RUN_FINISHED) {
        out->status = TB_STATUS_FINISHED;
        add_metric(res, "epoch_seconds_median", tb_stats_median(ctx.seconds, ctx.n_epochs));
        add_metric(res, "images_per_sec_median", tb_stats_median(ctx.ips, ctx.n_epochs));
        double top1 = metric(res, "top1");
        if (isfinite(top1))
            snprintf(out->message, sizeof out->message, "top1 %.2f%%", top1);
    } else if (res->outcome == TB_RUN_DIVERGED) {
        out->status = TB_STATUS_DIVERGED;
        out->error = TB_ERR_DIVERGED;
        snprintf(out->message, sizeof out->message, "non-finite loss in epoch %d", res->diverged_epoch);
    } else if (res->outcome == TB_RUN_INTERRUPTED) {
        out->status = TB_STATUS_INTERRUPTED;
        out->error = TB_ERR_INTERRUPTED;
        snprintf(out->message, sizeof out->message, "interrupted after %d epoch%s", res->epochs_done,
                 res->epochs_done == 1 ? "" : "s");
    } else {
        out->status = TB_STATUS_FAILED;
        out->error = TB_ERR_INTERNAL;
        snprintf(out->message, sizeof out->message, "%s", tb_errmsg());
    }
    /* metrics and checkpoint only from a run that produced a result */
    bool with_result = rc == TB_OK && (out->status == TB_STATUS_FINISHED || out->status == TB_STATUS_DIVERGED ||
                                       out->status == TB_STATUS_INTERRUPTED);
    rc = tb_store_finish_run(st, run_id, out->status, with_result ? res : NULL,
                             out->status == TB_STATUS_FINISHED ? NULL : out->message);
    free(ctx.seconds);
    free(ctx.ips);
    free(res);
    return rc;
}

/* ---- the matrix ------------------------------------------------------------ */

static void note_failure(tb_runner_summary *sum, const tb_matrix *m, int i, const run_outcome *o)
{
    if (sum->first_error != TB_OK)
        return;
    sum->first_error = o->error ? o->error : TB_ERR_INTERNAL;
    snprintf(sum->first_error_msg, sizeof sum->first_error_msg, "%s", o->message);
    snprintf(sum->first_error_label, sizeof sum->first_error_label, "%s", tb_matrix_run_label(m, i));
}

static int run_matrix(tb_store *st, const tb_matrix *m, const tb_runner_options *opt, tb_runner_summary *sum)
{
    double total_epochs = 0;
    for (int i = 0; i < m->n_runs; i++) {
        if (!tb_matrix_in_shard(m, i, opt->shard, opt->shard_count))
            continue;
        sum->selected++;
        tb_run_status s;
        TB_TRY(tb_store_run_status(st, m->runs[i].hash, &s, NULL, 0));
        if (opt->rerun || !tb_run_status_done(s))
            total_epochs += m->runs[i].cfg.optim.epochs;
        if (!opt->rerun && !tb_run_status_done(s)) {
            /* a resumed run has fewer epochs to go: a closer ETA */
            char state[TB_PATH_MAX * 2 + 16];
            tb_runner_state_path(opt, m->runs[i].hash, state, sizeof state);
            total_epochs -= tb_resume_peek(state, m->runs[i].hash);
        }
    }
    tb_progress progress;
    tb_progress_init(&progress, opt->progress_out, opt->progress, sum->selected, total_epochs);
    int index = 0;
    for (int i = 0; i < m->n_runs; i++) {
        if (!tb_matrix_in_shard(m, i, opt->shard, opt->shard_count))
            continue;
        index++;
        if (stop_signal)
            return tb_fail(TB_ERR_INTERRUPTED, "interrupted by signal %d", (int)stop_signal);
        const tb_matrix_run *run = &m->runs[i];
        const char *label = tb_matrix_run_label(m, i);
        tb_progress_run_begin(&progress, index, label, run->seed, run->cfg.optim.epochs);
        tb_run_claim claim;
        const char *device = opt->device ? opt->device : run->cfg.device;
        TB_TRY(tb_store_claim_run(st, run->hash, label, device, opt->rerun, &claim));
        if (!claim.claimed) {
            if (tb_run_status_done(claim.previous))
                sum->done_before++;
            else
                sum->busy++;
            tb_progress_run_end(&progress, "skipped", claim.reason);
            continue;
        }
        run_outcome o;
        TB_TRY(train_one(st, m, i, claim.run_id, opt, &progress, &o));
        tb_progress_run_end(&progress, tb_run_status_name(o.status), o.message);
        switch (o.status) {
        case TB_STATUS_FINISHED: sum->finished++; break;
        case TB_STATUS_DIVERGED: sum->diverged++; break;
        case TB_STATUS_INTERRUPTED:
            sum->interrupted++;
            return tb_fail(TB_ERR_INTERRUPTED, "interrupted: run '%s' (seed %llu) is recorded as interrupted and "
                                               "goes on from its last finished epoch on the next 'trickbench run'",
                           label, (unsigned long long)run->seed);
        default:
            sum->failed++;
            note_failure(sum, m, i, &o);
            break;
        }
        if (opt->fail_fast && (o.status == TB_STATUS_FAILED || o.status == TB_STATUS_DIVERGED)) {
            if (o.status == TB_STATUS_DIVERGED)
                note_failure(sum, m, i, &o);
            return tb_fail(o.error ? o.error : TB_ERR_INTERNAL, "run '%s' (seed %llu) %s: %s (--fail-fast)", label,
                           (unsigned long long)run->seed, tb_run_status_name(o.status), o.message);
        }
    }
    return TB_OK;
}

int tb_runner_run(const tb_matrix *m, const tb_runner_options *opt, tb_runner_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    TB_CHECK(opt->shard_count <= 1 || (opt->shard >= 1 && opt->shard <= opt->shard_count), TB_ERR_USAGE,
             "--shard %d/%d: the shard must be between 1 and %d", opt->shard, opt->shard_count, opt->shard_count);
    tb_store *st = NULL;
    tb_store_options so = {.busy_ms = opt->busy_ms};
    TB_TRY(tb_store_open(opt->db_path, &so, &st));
    int rc = tb_store_register_matrix(st, m);
    saved_handlers saved;
    stop_signal = 0;
    if (opt->handle_signals)
        install_handlers(&saved);
    if (rc == TB_OK)
        rc = run_matrix(st, m, opt, sum);
    if (opt->handle_signals)
        restore_handlers(&saved);
    tb_store_close(st);
    return rc;
}
