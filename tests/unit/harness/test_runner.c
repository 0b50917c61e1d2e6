/* The runner and the store with a fake trainer: resume after a crash (in
 * process and with SIGKILL), failed/diverged runs recorded while the matrix
 * goes on, --fail-fast, SIGINT, two processes on one database, a locked and
 * a read-only database, teachers first, shards and merge, the schema. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fake_trainer.h"
#include "harness/json_util.h"
#include "harness/matrix.h"
#include "harness/plan.h"
#include "harness/runner.h"
#include "harness/store.h"
#include "harness/store_internal.h"
#include "kernels/error.h"
#include "tb_build_config.h"
#include "tb_git.h"

static char dir[256];
static char db_path[300];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tb_test_runner_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(db_path, sizeof db_path, "%s/results/results.db", dir);
    fake_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", dir, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void load_matrix(const char *json, tb_matrix *m)
{
    cJSON *root = NULL;
    assert_int_equal(tb_json_parse_text(json, strlen(json), "test.json", &root), TB_OK);
    int rc = tb_matrix_from_json(root, "test.json", NULL, m);
    if (rc != TB_OK)
        fail_msg("%s", tb_errmsg());
    cJSON_Delete(root);
}

static tb_runner_options options(const char *db)
{
    tb_runner_options o = {.db_path = db, .trainer = fake_trainer, .progress = TB_PROGRESS_QUIET, .busy_ms = 2000};
    return o;
}

/* An integer from one SQL query on a database file. */
static long long sql_int(const char *db, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    long long v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    sqlite3_close(h);
    return v;
}

static void sql_text(const char *db, const char *sql, char *out, size_t size)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    out[0] = '\0';
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        snprintf(out, size, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(h);
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

static const char grid_json[] =
    "{\"name\": \"grid\", \"base\": {\"optim\": {\"epochs\": 3}, \"data\": {\"dataset\": \"synthetic\"}},"
    " \"axes\": [{\"key\": \"model.variant\", \"values\": [\"A\", \"D\"]}], \"seeds\": [1, 2]}";

static void test_run_skip_and_rerun(void **state)
{
    (void)state;
    tb_matrix m;
    load_matrix(grid_json, &m);
    tb_runner_options o = options(db_path);
    tb_runner_summary s;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(s.selected, 4);
    assert_int_equal(s.finished, 4);
    assert_int_equal(fake.calls, 4);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE status = 'finished'"), 4);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM epochs"), 12);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM metrics WHERE name = 'epoch_seconds_median'"), 4);
    char text[256];
    sql_text(db_path, "SELECT value FROM metrics WHERE name = 'epoch_seconds_median' LIMIT 1", text, sizeof text);
    assert_string_equal(text, "3.0"); /* median of 2.5, 3.0, 3.5 */
    sql_text(db_path, "SELECT tb_version || ' ' || git_commit FROM runs LIMIT 1", text, sizeof text);
    assert_string_equal(text, TB_VERSION " " TB_GIT_COMMIT);
    sql_text(db_path, "SELECT checkpoint FROM runs WHERE id = 1", text, sizeof text);
    assert_non_null(strstr(text, "/results/checkpoints/"));
    assert_int_equal(access(text, F_OK), 0);
    /* again: nothing to do */
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(fake.calls, 4);
    assert_int_equal(s.done_before, 4);
    /* --rerun: everything again, nothing duplicated */
    o.rerun = true;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(fake.calls, 8);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs"), 4);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM epochs"), 12);
    assert_int_equal(sql_int(db_path, "SELECT min(attempts) FROM runs"), 2);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM matrix_runs"), 4);
    tb_matrix_free(&m);
}

/* A pid that certainly belongs to no process: a child that has been reaped. */
static int dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return (int)p;
}

static void test_resume_after_crash(void **state)
{
    (void)state;
    tb_matrix m;
    load_matrix(grid_json, &m);
    tb_runner_options o = options(db_path);
    tb_runner_summary s;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    char before[64];
    sql_text(db_path, "SELECT finished_at FROM runs WHERE id = 1", before, sizeof before);
    /* as if the process running run 2 died after its first epoch, and run 3 was interrupted */
    char sql[512], host[256];
    gethostname(host, sizeof host);
    snprintf(sql, sizeof sql,
             "UPDATE runs SET status = 'running', pid = %d, host = '%s', epochs_done = 1 WHERE id = 2;"
             "DELETE FROM epochs WHERE run_id = 2 AND epoch > 1; DELETE FROM metrics WHERE run_id = 2;"
             "UPDATE runs SET status = 'interrupted' WHERE id = 3;",
             dead_pid(), host);
    sql_exec(db_path, sql);
    fake.calls = 0;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(fake.calls, 2);
    assert_int_equal(s.done_before, 2);
    assert_int_equal(s.finished, 2);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE status = 'finished'"), 4);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM epochs WHERE run_id = 2"), 3);
    assert_int_equal(sql_int(db_path, "SELECT attempts FROM runs WHERE id = 2"), 2);
    assert_int_equal(sql_int(db_path, "SELECT attempts FROM runs WHERE id = 1"), 1);
    char after[64];
    sql_text(db_path, "SELECT finished_at FROM runs WHERE id = 1", after, sizeof after);
    assert_string_equal(before, after);
    /* a run held by a live process of this host is left alone */
    snprintf(sql, sizeof sql, "UPDATE runs SET status = 'running', pid = %d, host = '%s' WHERE id = 4", (int)getppid(),
             host);
    sql_exec(db_path, sql);
    fake.calls = 0;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(fake.calls, 0);
    assert_int_equal(s.busy, 1);
    tb_matrix_free(&m);
}

static const char mixed_json[] =
    "{\"name\": \"mixed\", \"base\": {\"optim\": {\"epochs\": 2}},"
    " \"rows\": [{\"label\": \"ok\"}, {\"label\": \"broken\", \"set\": {\"optim.lr\": 0.7}},"
    "            {\"label\": \"nan\", \"set\": {\"tricks.label_smoothing\": 0.3}}, {\"label\": \"last\", \"set\": {\"optim.lr\": 0.2}}]}";

static void test_failures_recorded_matrix_goes_on(void **state)
{
    (void)state;
    tb_matrix m;
    load_matrix(mixed_json, &m);
    fake.fail_lr = 0.7;
    fake.diverge_ls = 0.3;
    tb_runner_options o = options(db_path);
    tb_runner_summary s;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(s.finished, 2);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.diverged, 1);
    assert_int_equal(s.first_error, TB_ERR_DATA);
    assert_string_equal(s.first_error_label, "broken");
    assert_string_equal(s.first_error_msg, "fake failure at lr 0.7");
    char text[256];
    sql_text(db_path, "SELECT status || ': ' || error FROM runs WHERE label = 'broken'", text, sizeof text);
    assert_string_equal(text, "failed: fake failure at lr 0.7");
    sql_text(db_path, "SELECT status || ' ' || diverged_epoch || ': ' || error FROM runs WHERE label = 'nan'", text,
             sizeof text);
    assert_string_equal(text, "diverged 1: non-finite loss in epoch 1");
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE label = 'last' AND status = 'finished'"), 1);
    /* plan: finished and diverged runs are done, the failed one is pending */
    tb_store *st;
    tb_store_options ro = {.read_only = true};
    assert_int_equal(tb_store_open(db_path, &ro, &st), TB_OK);
    char *plan = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&plan, &len);
    tb_plan_counts counts;
    assert_int_equal(tb_plan_print(&m, st, db_path, 0, 0, f, &counts), TB_OK);
    fclose(f);
    tb_store_close(st);
    assert_int_equal(counts.total, 4);
    assert_int_equal(counts.done, 3);
    assert_int_equal(counts.pending, 1);
    assert_non_null(strstr(plan, "|   2 | broken |    0 | "));
    assert_non_null(strstr(plan, " | failed   |\n"));
    assert_non_null(strstr(plan, " | diverged |\n"));
    const char *last = "\n4 runs: 3 done, 1 pending\n";
    assert_string_equal(plan + strlen(plan) - strlen(last), last);
    free(plan);
    /* the next run retries the failed run, not the diverged one (a diverged run is a result) */
    fake.fail_lr = -1;
    fake.calls = 0;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(fake.calls, 1);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE status = 'finished'"), 3);
    tb_matrix_free(&m);
}

static void test_fail_fast(void **state)
{
    (void)state;
    tb_matrix m;
    load_matrix(mixed_json, &m);
    fake.fail_lr = 0.7;
    tb_runner_options o = options(db_path);
    o.fail_fast = true;
    tb_runner_summary s;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_ERR_DATA);
    assert_non_null(strstr(tb_errmsg(), "run 'broken' (seed 0) failed: fake failure at lr 0.7 (--fail-fast)"));
    assert_int_equal(fake.calls, 2);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE status = 'pending'"), 2);
    tb_matrix_free(&m);
}

/* Waits until `sql` returns at least `want` (polling), at most 10 s. */
static void wait_for(const char *db, const char *sql, long long want)
{
    for (int i = 0; i < 1000; i++) {
        struct stat sb;
        if (stat(db, &sb) == 0 && sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'runs'") == 1 &&
            sql_int(db, sql) >= want)
            return;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    fail_msg("timed out waiting for: %s", sql);
}

static pid_t spawn_runner(const char *json, int sleep_ms, bool signals)
{
    fflush(NULL);
    pid_t p = fork();
    if (p == 0) {
        tb_matrix m;
        cJSON *root = cJSON_Parse(json);
        if (!root || tb_matrix_from_json(root, "child.json", NULL, &m) != TB_OK)
            _exit(99);
        fake.sleep_ms = sleep_ms;
        tb_runner_options o = options(db_path);
        o.handle_signals = signals;
        o.busy_ms = 10000;
        tb_runner_summary s;
        int rc = tb_runner_run(&m, &o, &s);
        if (rc != TB_OK && rc != TB_ERR_INTERRUPTED)
            fprintf(stderr, "child %d: %s\n", (int)getpid(), tb_errmsg());
        _exit(rc == TB_OK ? 0 : tb_status_exit_code(rc));
    }
    return p;
}

static const char slow_json[] =
    "{\"name\": \"slow\", \"base\": {\"optim\": {\"epochs\": 3}},"
    " \"axes\": [{\"key\": \"optim.lr\", \"values\": [0.1, 0.2, 0.3, 0.4]}]}";

static void test_sigkill_then_rerun(void **state)
{
    (void)state;
    pid_t child = spawn_runner(slow_json, 40, false);
    wait_for(db_path, "SELECT count(*) FROM runs r JOIN matrix_runs mr ON mr.run_id = r.id "
                      "WHERE mr.position = 1 AND r.status = 'running' AND r.epochs_done >= 1", 1);
    kill(child, SIGKILL);
    int st;
    waitpid(child, &st, 0);
    assert_true(WIFSIGNALED(st));
    char before[64];
    sql_text(db_path, "SELECT finished_at FROM runs r JOIN matrix_runs mr ON mr.run_id = r.id WHERE mr.position = 0",
             before, sizeof before);
    assert_true(before[0] != '\0');
    /* rerun in this process */
    tb_matrix m;
    load_matrix(slow_json, &m);
    tb_runner_options o = options(db_path);
    tb_runner_summary s;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(s.done_before, 1);
    assert_int_equal(fake.calls, 3); /* the killed run and the two after it */
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs"), 4);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE status = 'finished'"), 4);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM epochs"), 12);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM matrix_runs"), 4);
    assert_int_equal(sql_int(db_path, "SELECT r.attempts FROM runs r JOIN matrix_runs mr ON mr.run_id = r.id "
                                      "WHERE mr.position = 1"), 2);
    char after[64];
    sql_text(db_path, "SELECT finished_at FROM runs r JOIN matrix_runs mr ON mr.run_id = r.id WHERE mr.position = 0",
             after, sizeof after);
    assert_string_equal(before, after);
    tb_matrix_free(&m);
}

static void test_sigint_records_interrupted(void **state)
{
    (void)state;
    pid_t child = spawn_runner(slow_json, 60, true);
    wait_for(db_path, "SELECT count(*) FROM runs WHERE status = 'running' AND epochs_done >= 1", 1);
    kill(child, SIGINT);
    int st;
    waitpid(child, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 130);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE status = 'interrupted'"), 1);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE status = 'running'"), 0);
}

static void test_two_processes_one_database(void **state)
{
    (void)state;
    static const char json[] = "{\"name\": \"pair\", \"base\": {\"optim\": {\"epochs\": 2}},"
                               " \"axes\": [{\"key\": \"optim.lr\", \"values\": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}]}";
    pid_t a = spawn_runner(json, 20, false);
    pid_t b = spawn_runner(json, 20, false);
    int sa, sb;
    waitpid(a, &sa, 0);
    waitpid(b, &sb, 0);
    assert_true(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
    assert_true(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE status = 'finished'"), 6);
    assert_int_equal(sql_int(db_path, "SELECT max(attempts) FROM runs"), 1); /* nobody ran a run twice */
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM epochs"), 12);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM matrix_runs"), 6);
    assert_true(sql_int(db_path, "SELECT count(DISTINCT pid) FROM runs") >= 1);
}

static void test_locked_database_is_busy(void **state)
{
    (void)state;
    tb_matrix m;
    load_matrix(grid_json, &m);
    tb_runner_options o = options(db_path);
    tb_runner_summary s;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    /* another process holds the write lock */
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db_path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    o.busy_ms = 100;
    o.rerun = true;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_ERR_BUSY);
    assert_int_equal(tb_status_exit_code(TB_ERR_BUSY), 75);
    assert_non_null(strstr(tb_errmsg(), "the results database is locked by another process (waited 0.1 s)"));
    assert_non_null(strstr(tb_errmsg(), db_path));
    sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(h);
    /* nothing lost */
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE status = 'finished'"), 4);
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM epochs"), 12);
    tb_matrix_free(&m);
}

static void test_read_only_database(void **state)
{
    (void)state;
    tb_matrix m;
    load_matrix(grid_json, &m);
    tb_runner_options o = options(db_path);
    tb_runner_summary s;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    o.rerun = true;
    /* a read-only connection (what a read-only file gives when root can't be stopped by chmod) */
    char uri[400];
    snprintf(uri, sizeof uri, "file:%s?mode=ro", db_path);
    o.db_path = uri;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_ERR_IO);
    assert_non_null(strstr(tb_errmsg(), "the results database is read-only"));
    if (geteuid() != 0) { /* a real read-only file */
        assert_int_equal(chmod(db_path, 0444), 0);
        o.db_path = db_path;
        assert_int_equal(tb_runner_run(&m, &o, &s), TB_ERR_IO);
        assert_non_null(strstr(tb_errmsg(), "read-only"));
        assert_int_equal(chmod(db_path, 0644), 0);
    }
    assert_int_equal(sql_int(db_path, "SELECT count(*) FROM runs WHERE status = 'finished'"), 4);
    tb_matrix_free(&m);
}

static void test_teacher_checkpoint_passed(void **state)
{
    (void)state;
    tb_matrix m;
    load_matrix("{\"name\": \"kd\", \"rows\": [{\"label\": \"student\", \"set\": {\"tricks.distill.teacher\": \"big\"}},"
                " {\"label\": \"big\", \"set\": {\"model.name\": \"resnet50\"}}]}", &m);
    tb_runner_options o = options(db_path);
    char ckdir[320];
    snprintf(ckdir, sizeof ckdir, "%s/ck", dir);
    o.checkpoint_dir = ckdir;
    tb_runner_summary s;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(s.finished, 2);
    char expect[512];
    tb_runner_checkpoint_path(&o, m.runs[0].hash, expect, sizeof expect); /* runs[0] is the teacher */
    assert_string_equal(fake.last_teacher, expect);
    assert_int_equal(access(expect, F_OK), 0);
    tb_matrix_free(&m);
}

static void test_shards_and_merge(void **state)
{
    (void)state;
    tb_matrix m;
    load_matrix(grid_json, &m);
    char a[320], b[320], out[320];
    snprintf(a, sizeof a, "%s/a.db", dir);
    snprintf(b, sizeof b, "%s/b.db", dir);
    snprintf(out, sizeof out, "%s/merged.db", dir);
    tb_runner_summary s;
    tb_runner_options o = options(a);
    o.shard = 1;
    o.shard_count = 2;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(s.selected, 2);
    o = options(b);
    o.shard = 2;
    o.shard_count = 2;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    assert_int_equal(fake.calls, 4);
    assert_int_equal(sql_int(a, "SELECT count(*) FROM runs WHERE status = 'finished'"), 2);
    assert_int_equal(sql_int(a, "SELECT count(*) FROM runs WHERE status = 'pending'"), 2);
    tb_store *st;
    assert_int_equal(tb_store_open(out, NULL, &st), TB_OK);
    tb_merge_stats ms = {0};
    assert_int_equal(tb_store_merge(st, a, &ms), TB_OK);
    assert_int_equal(ms.runs_added, 4);
    assert_int_equal(ms.matrices_added, 1);
    memset(&ms, 0, sizeof ms);
    assert_int_equal(tb_store_merge(st, b, &ms), TB_OK);
    assert_int_equal(ms.runs_added, 0);
    assert_int_equal(ms.runs_replaced, 2); /* pending copies replaced by b's finished ones */
    assert_int_equal(ms.runs_kept, 2);
    memset(&ms, 0, sizeof ms);
    assert_int_equal(tb_store_merge(st, b, &ms), TB_OK); /* again: no change */
    assert_int_equal(ms.runs_kept, 4);
    assert_int_equal(tb_store_merge(st, out, &ms), TB_ERR_USAGE);
    tb_store_close(st);
    assert_int_equal(sql_int(out, "SELECT count(*) FROM runs"), 4);
    assert_int_equal(sql_int(out, "SELECT count(*) FROM runs WHERE status = 'finished'"), 4);
    assert_int_equal(sql_int(out, "SELECT count(*) FROM epochs"), 12);
    assert_int_equal(sql_int(out, "SELECT count(*) FROM metrics"), sql_int(a, "SELECT count(*) FROM metrics") +
                                                                        sql_int(b, "SELECT count(*) FROM metrics"));
    assert_int_equal(sql_int(out, "SELECT count(*) FROM matrix_runs"), 4);
    assert_int_equal(sql_int(out, "SELECT count(*) FROM matrices"), 1);
    tb_matrix_free(&m);
}

static void test_progress_output(void **state)
{
    (void)state;
    tb_matrix m;
    load_matrix(grid_json, &m);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tb_runner_options o = options(db_path);
    o.progress = TB_PROGRESS_LINES;
    o.progress_out = f;
    tb_runner_summary s;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    /* again: every run is skipped, and says why */
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    fclose(f);
    assert_non_null(strstr(text, "[1/4] variant=A (seed 1): started, 3 epochs\n"));
    assert_non_null(strstr(text, "[1/4] variant=A (seed 1) epoch 2/3: loss 0.5000, val top1 80.00% top5 95.00%, "
                                 "lr 0.1, 3.0 s, 1200 img/s\n"));
    assert_non_null(strstr(text, "[4/4] variant=D (seed 2): finished in 0:00: top1 82.40%\n"));
    assert_non_null(strstr(text, "[2/4] variant=A (seed 2): skipped: finished\n"));
    assert_null(strchr(text, '\033')); /* not a terminal: no colour, no cursor control */
    free(text);
    /* the live line (forced): redrawn in place with a bar and ETAs */
    f = open_memstream(&text, &len);
    o.progress_out = f;
    o.progress = TB_PROGRESS_LIVE;
    o.rerun = true;
    fake.sleep_ms = 1;
    assert_int_equal(tb_runner_run(&m, &o, &s), TB_OK);
    fclose(f);
    assert_non_null(strstr(text, "\r\033[K[1/4] variant=A s1  epoch 1/3 [###---------]  25%  1000 img/s  "
                                 "loss 1.0000  ETA "));
    assert_non_null(strstr(text, " (all "));
    assert_non_null(strstr(text, "\r\033[K[4/4] variant=D (seed 2): finished in"));
    free(text);
    tb_matrix_free(&m);
}

static void test_schema_and_pragmas(void **state)
{
    (void)state;
    tb_store *st;
    assert_int_equal(tb_store_open(db_path, NULL, &st), TB_OK);
    sqlite3 *h = tb_store_db(st);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    /* STRICT: a text in an INTEGER column is refused; foreign keys are enforced */
    assert_int_not_equal(sqlite3_exec(h, "INSERT INTO epochs (run_id, epoch, evaluated, recorded_at) "
                                         "VALUES (1, 'one', 0, 'now')", NULL, NULL, NULL), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(h, "INSERT INTO epochs (run_id, epoch, evaluated, recorded_at) "
                                         "VALUES (12345, 1, 0, 'now')", NULL, NULL, NULL), SQLITE_OK);
    tb_store_close(st);
    assert_int_equal(sql_int(db_path, "PRAGMA user_version"), TB_STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(db_path, "PRAGMA application_id"), TB_STORE_APPLICATION_ID);
    /* a foreign SQLite file is refused, and so is a newer schema */
    char other[320];
    snprintf(other, sizeof other, "%s/other.db", dir);
    sql_exec(other, "CREATE TABLE t (x)");
    assert_int_equal(tb_store_open(other, NULL, &st), TB_ERR_DATA);
    assert_non_null(strstr(tb_errmsg(), "not a trickbench results database"));
    sql_exec(db_path, "PRAGMA user_version = 99");
    assert_int_equal(tb_store_open(db_path, NULL, &st), TB_ERR_DATA);
    assert_non_null(strstr(tb_errmsg(), "schema version 99 is newer"));
    snprintf(other, sizeof other, "%s/none.db", dir);
    tb_store_options ro = {.read_only = true};
    assert_int_equal(tb_store_open(other, &ro, &st), TB_ERR_MISSING);
    /* results/schema.sql documents exactly the migrations */
    FILE *f = fopen(TB_SOURCE_ROOT "/results/schema.sql", "r");
    assert_non_null(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_string_equal(text, tb_store_migrations[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_run_skip_and_rerun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_recorded_matrix_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_then_rerun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigint_records_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes_one_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_database_is_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_teacher_checkpoint_passed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shards_and_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_and_pragmas, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
