-- Background tasks and their append-only event log.
--
-- Ids are UUIDv7: they sort by creation time, so "priority, then id" is the queue's FIFO order
-- and the id alone is a stable cursor for paging newest-first.
CREATE TABLE tasks (
    id               UUID PRIMARY KEY,
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    owner_id         BIGINT REFERENCES users (id),
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    progress         DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    total_items      BIGINT,
    processed_items  BIGINT NOT NULL DEFAULT 0,
    current_item     TEXT,
    stage            TEXT,
    message          TEXT,
    input            JSONB NOT NULL,
    result           JSONB,
    error            TEXT,
    detail           JSONB,
    metadata         JSONB NOT NULL DEFAULT '{}',
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    priority         INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    retry_of         UUID,
    -- Set by each claim; identifies the run that holds the task (a lease token in a cluster).
    claim_token      UUID,
    last_event_seq   BIGINT NOT NULL DEFAULT 0,
    run_after        TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    heartbeat_at     TIMESTAMPTZ
);
-- The queue: pending tasks in the order they start.
CREATE INDEX tasks_queue ON tasks (priority DESC, id) WHERE status = 'pending';
-- Per-user limits count a user's running tasks; listings page through a user's tasks.
CREATE INDEX tasks_by_owner ON tasks (owner_id, status);
CREATE INDEX tasks_running ON tasks (status) WHERE status = 'running';
-- Retention deletes by completion time.
CREATE INDEX tasks_by_completion ON tasks (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE task_events (
    task_id    UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    data       JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (task_id, seq)
);
