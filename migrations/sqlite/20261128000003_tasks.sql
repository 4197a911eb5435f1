-- Background tasks and their append-only event log.
--
-- Ids are UUIDv7 (16-byte blobs): they sort by creation time, so "priority, then id" is the
-- queue's FIFO order and the id alone is a stable cursor for paging newest-first.
CREATE TABLE tasks (
    id               BLOB PRIMARY KEY CHECK (length(id) = 16),
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    owner_id         INTEGER REFERENCES users (id),
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    progress         REAL NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    total_items      INTEGER,
    processed_items  INTEGER NOT NULL DEFAULT 0,
    current_item     TEXT,
    stage            TEXT,
    message          TEXT,
    input            TEXT NOT NULL,
    result           TEXT,
    error            TEXT,
    detail           TEXT,
    metadata         TEXT NOT NULL DEFAULT '{}',
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    priority         INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    retry_of         BLOB,
    -- Set by each claim; identifies the run that holds the task (a lease token in a cluster).
    claim_token      BLOB,
    last_event_seq   INTEGER NOT NULL DEFAULT 0,
    run_after        TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    completed_at     TEXT,
    heartbeat_at     TEXT
) STRICT;
-- The queue: pending tasks in the order they start.
CREATE INDEX tasks_queue ON tasks (priority DESC, id) WHERE status = 'pending';
-- Per-user limits count a user's running tasks; listings page through a user's tasks.
CREATE INDEX tasks_by_owner ON tasks (owner_id, status);
CREATE INDEX tasks_running ON tasks (status) WHERE status = 'running';
-- Retention deletes by completion time.
CREATE INDEX tasks_by_completion ON tasks (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE task_events (
    task_id    BLOB NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
) STRICT, WITHOUT ROWID;
