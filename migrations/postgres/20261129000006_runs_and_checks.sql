-- The one run of a job kind that may run at a time in the whole cluster (auto-ingest): the
-- task holding the place. A holder that is no longer running gives it up by itself.
CREATE TABLE exclusive_runs (
    kind       TEXT PRIMARY KEY,
    task_id    UUID NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL
);

-- When each scheduled job kind runs next: the node that moves it starts the run, so a cluster
-- starts each scheduled run once.
CREATE TABLE schedules (
    kind        TEXT PRIMARY KEY,
    next_run_at TIMESTAMPTZ NOT NULL
);

-- A keyword group remembers how far it has checked by the articles' last change, not by id:
-- an article stored again (an error retried, a bulk save) is checked again.
ALTER TABLE keyword_groups DROP COLUMN checked_through_id;
ALTER TABLE keyword_groups ADD COLUMN checked_through TIMESTAMPTZ;
CREATE INDEX articles_by_change ON articles (updated_at, id) WHERE status = 'approved';
