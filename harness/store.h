/* The results database (SQLite): matrices, runs, epochs, metrics and views.
 *
 * Opened with WAL, a busy timeout, foreign keys on; every write is one
 * BEGIN IMMEDIATE transaction (one per epoch while training), so a crash
 * loses at most the epoch in progress and two processes can share a file.
 * The schema version lives in PRAGMA user_version; migrations run inside a
 * transaction; PRAGMA application_id marks the file as ours. The schema is
 * documented in docs/results.md and results/schema.sql.
 *
 * Errors: a locked database is TB_ERR_BUSY (exit 75), a read-only file or a
 * full disk TB_ERR_IO, a file that is not a trickbench database TB_ERR_DATA;
 * each message names the file.
 */
#ifndef TB_STORE_H
#define TB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "harness/matrix.h"
#include "harness/train/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_STORE_DEFAULT_PATH "results/results.db"
#define TB_STORE_APPLICATION_ID 0x54724b42 /* "TrKB" */
#define TB_STORE_SCHEMA_VERSION 1
#define TB_STORE_BUSY_MS 5000

typedef enum tb_run_status {
    TB_STATUS_PENDING = 0,
    TB_STATUS_RUNNING,
    TB_STATUS_FINISHED,
    TB_STATUS_FAILED,
    TB_STATUS_DIVERGED,
    TB_STATUS_INTERRUPTED,
    TB_STATUS_ABSENT /* not in the database */
} tb_run_status;

const char *tb_run_status_name(tb_run_status s);
int tb_run_status_parse(const char *name, tb_run_status *out);
/* Finished and diverged runs are results; everything else is still to do. */
bool tb_run_status_done(tb_run_status s);

typedef struct tb_store tb_store;

typedef struct tb_store_options {
    bool read_only;   /* open without writing; the file must exist */
    bool must_exist;  /* when writing: do not create a missing file (TB_ERR_MISSING) */
    int busy_ms;      /* how long to wait for a lock; 0 = TB_STORE_BUSY_MS */
} tb_store_options;

/* Opens (creating the file and its directory when writing) and migrates. */
int tb_store_open(const char *path, const tb_store_options *opt, tb_store **out);
void tb_store_close(tb_store *st);
sqlite3 *tb_store_db(tb_store *st);
const char *tb_store_path(const tb_store *st);

/* Maps an SQLite result to a tb_status with a message naming the file and
 * `what` (BUSY -> TB_ERR_BUSY, READONLY/FULL/IOERR -> TB_ERR_IO, ...). */
int tb_store_error(tb_store *st, int sqlite_rc, const char *what);

/* Runs `sql` (no rows) / a transaction bracket, mapping errors. */
int tb_store_exec(tb_store *st, const char *sql, const char *what);
int tb_store_begin(tb_store *st, const char *what);  /* BEGIN IMMEDIATE */
int tb_store_commit(tb_store *st, const char *what);
void tb_store_rollback(tb_store *st);

/* Records the matrix, its runs (pending unless already known by hash) and
 * their labels, rows and positions in the matrix, in one transaction. */
int tb_store_register_matrix(tb_store *st, const tb_matrix *m);

/* Status of a run by hash (TB_STATUS_ABSENT when unknown); `checkpoint` may be NULL. */
int tb_store_run_status(tb_store *st, const char *hash, tb_run_status *status, char *checkpoint, size_t size);
/* The run that matrix `matrix` holds under (label, seed): its status
 * (TB_STATUS_ABSENT when there is none), checkpoint path and, when
 * config_json is given, its canonical config (malloc'd; the caller frees). */
int tb_store_find_matrix_run(tb_store *st, const char *matrix, const char *label, uint64_t seed,
                             tb_run_status *status, char *checkpoint, size_t size, char **config_json);

typedef struct tb_run_claim {
    bool claimed;      /* true: this process now runs it */
    int64_t run_id;
    tb_run_status previous;
    char reason[256];  /* why it was not claimed ("finished", "running in process 123 on host") */
} tb_run_claim;

/* Atomically takes a run for this process: a done run only with `rerun`; a
 * run marked running by a live process on this host never (by another host
 * only with `rerun`); everything else is reset (its metrics deleted, and its
 * epochs with `rerun`) and marked running. Without `rerun` the epoch rows
 * stay for a run that resumes from its training state: the runner then
 * calls tb_store_keep_epochs with the epoch it resumes after. */
int tb_store_claim_run(tb_store *st, const char *hash, const char *label, const char *device, bool rerun,
                       tb_run_claim *claim);

/* Keeps epoch rows 1..keep of a run and deletes the later ones; epochs_done
 * becomes the number of rows kept. */
int tb_store_keep_epochs(tb_store *st, int64_t run_id, int keep);

/* The number of a run's epoch rows numbered <= up_to. */
int tb_store_count_epochs(tb_store *st, int64_t run_id, int up_to, int *count);

/* One epoch, in its own transaction; it replaces any row of this epoch or a
 * later one (an epoch trained again). */
int tb_store_add_epoch(tb_store *st, int64_t run_id, const tb_epoch_record *rec);

/* The end of a run: status, error text (or NULL), device, checkpoint and
 * final metrics (res may be NULL for a run that failed before starting).
 * With res, epoch rows after res->epochs_done are deleted (left by an earlier
 * attempt that got further than this one resumed from). */
int tb_store_finish_run(tb_store *st, int64_t run_id, tb_run_status status, const tb_train_result *res,
                        const char *error);

/* A finished run as tb_store_finished_runs lists it. */
typedef struct tb_finished_run {
    int64_t id;
    char label[256];
    uint64_t seed;
    char hash[65];
    char checkpoint[1024]; /* "" when the run saved none */
    char *config;          /* canonical config JSON (malloc'd) */
    double top1;           /* the recorded final top1, NaN when absent */
} tb_finished_run;
/* The finished runs of matrix `matrix` (only row `label` when it is not
 * NULL), in report order; *count 0 when there are none. Free with
 * tb_store_finished_runs_free. */
int tb_store_finished_runs(tb_store *st, const char *matrix, const char *label, tb_finished_run **out, int *count);
void tb_store_finished_runs_free(tb_finished_run *runs, int count);
/* Inserts or replaces one final metric of a run. */
int tb_store_set_metric(tb_store *st, int64_t run_id, const char *name, double value);

/* Merges another results database into this one (see store_merge.c). */
typedef struct tb_merge_stats {
    int runs_added;     /* not present before */
    int runs_replaced;  /* present with a worse status (e.g. pending vs finished) */
    int runs_kept;      /* present with an equal or better status */
    int matrices_added;
} tb_merge_stats;
int tb_store_merge(tb_store *st, const char *in_path, tb_merge_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
