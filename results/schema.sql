-- trickbench results database, schema version 1
CREATE TABLE matrices (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    file        TEXT NOT NULL DEFAULT '',
    definition  TEXT NOT NULL CHECK (json_valid(definition)),  -- the matrix file, canonical JSON
    baseline    TEXT NOT NULL DEFAULT '',                     -- label of the baseline row
    dims        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(dims)),       -- [{name, levels}]
    reference   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(reference)),  -- {label: {metric: value}}
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE runs (
    id             INTEGER PRIMARY KEY,
    hash           TEXT NOT NULL UNIQUE CHECK (length(hash) = 64),  -- SHA-256 of the canonical config
    label          TEXT NOT NULL,         -- the label it was last run (or registered) under
    seed           INTEGER NOT NULL,
    task           TEXT NOT NULL,
    config         TEXT NOT NULL CHECK (json_valid(config)),  -- fully resolved, canonical JSON
    status         TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'finished', 'failed', 'diverged', 'interrupted')),
    device         TEXT NOT NULL DEFAULT '',
    host           TEXT NOT NULL DEFAULT '',
    pid            INTEGER NOT NULL DEFAULT 0,
    tb_version     TEXT NOT NULL DEFAULT '',
    git_commit     TEXT NOT NULL DEFAULT '',
    attempts       INTEGER NOT NULL DEFAULT 0,
    epochs_done    INTEGER NOT NULL DEFAULT 0,
    diverged_epoch INTEGER,
    error          TEXT,
    checkpoint     TEXT,
    created_at     TEXT NOT NULL,
    started_at     TEXT,
    finished_at    TEXT,
    updated_at     TEXT NOT NULL
) STRICT;
CREATE INDEX runs_status ON runs (status);

CREATE TABLE matrix_runs (
    matrix_id INTEGER NOT NULL REFERENCES matrices (id) ON DELETE CASCADE,
    label     TEXT NOT NULL,
    seed      INTEGER NOT NULL,
    run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    row       INTEGER NOT NULL,   -- position of the label in the matrix (report order)
    position  INTEGER NOT NULL,   -- execution order (teachers first)
    parts     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(parts)),  -- {dimension: level label}
    PRIMARY KEY (matrix_id, label, seed)
) STRICT;
CREATE INDEX matrix_runs_run ON matrix_runs (run_id);

CREATE TABLE epochs (
    run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch          INTEGER NOT NULL CHECK (epoch >= 1),
    lr             REAL,
    train_loss     REAL,
    train_top1     REAL,     -- NULL with mixup/cutmix
    evaluated      INTEGER NOT NULL,
    val_loss       REAL,     -- NULL when not evaluated
    val_top1       REAL,
    val_top5       REAL,
    seconds        REAL,     -- training pass only
    images_per_sec REAL,
    skipped_steps  INTEGER NOT NULL DEFAULT 0,
    loss_scale     REAL,
    recorded_at    TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
) STRICT;

CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name   TEXT NOT NULL,   -- top1, top5, loss, params, macs, epoch_seconds_median, ...
    value  REAL,
    PRIMARY KEY (run_id, name)
) STRICT;

-- One row per run of each matrix, with its main metrics.
CREATE VIEW run_summary AS
SELECT m.name AS matrix, mr.label, mr.seed, r.status, r.epochs_done,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'top1') AS top1,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'top5') AS top5,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'loss') AS loss,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'epoch_seconds_median') AS epoch_seconds,
       (SELECT value FROM metrics WHERE run_id = r.id AND name = 'images_per_sec_median') AS images_per_sec,
       r.device, r.host, r.started_at, r.finished_at, r.error, substr(r.hash, 1, 12) AS hash,
       r.id AS run_id, mr.row, mr.position
FROM matrix_runs mr JOIN matrices m ON m.id = mr.matrix_id JOIN runs r ON r.id = mr.run_id;

-- Every final metric of every run, one per row (long format).
CREATE VIEW run_metrics AS
SELECT m.name AS matrix, mr.label, mr.seed, r.status, x.name AS metric, x.value, r.id AS run_id
FROM matrix_runs mr JOIN matrices m ON m.id = mr.matrix_id JOIN runs r ON r.id = mr.run_id
JOIN metrics x ON x.run_id = r.id;

-- Mean, sample standard deviation and count over seeds of finished runs.
CREATE VIEW label_summary AS
SELECT m.name AS matrix, mr.label, x.name AS metric, count(x.value) AS n, avg(x.value) AS mean,
       CASE WHEN count(x.value) > 1 THEN
            sqrt(max(0.0, (sum(x.value * x.value) - sum(x.value) * sum(x.value) / count(x.value))
                          / (count(x.value) - 1)))
       END AS std,
       min(x.value) AS min, max(x.value) AS max, mr.row
FROM matrix_runs mr JOIN matrices m ON m.id = mr.matrix_id
JOIN runs r ON r.id = mr.run_id AND r.status = 'finished' JOIN metrics x ON x.run_id = r.id
GROUP BY m.id, mr.label, x.name;

-- The per-epoch log of every run, with its matrix and label.
CREATE VIEW epoch_log AS
SELECT m.name AS matrix, mr.label, mr.seed, e.*
FROM epochs e JOIN matrix_runs mr ON mr.run_id = e.run_id JOIN matrices m ON m.id = mr.matrix_id;
