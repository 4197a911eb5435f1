-- The domain of the shipped jobs: topics, feed sources, analysed articles, keyword groups and
-- their alerts, and the auto-ingest configuration. Keyword lists are JSON arrays of strings.
CREATE TABLE topics (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    keywords    TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE sources (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    feed_url        TEXT NOT NULL UNIQUE,
    topic_id        INTEGER REFERENCES topics (id) ON DELETE SET NULL,
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    last_fetched_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL
) STRICT;

CREATE TABLE articles (
    id                  INTEGER PRIMARY KEY,
    url                 TEXT NOT NULL UNIQUE,
    title               TEXT NOT NULL,
    source              TEXT,
    published_at        TEXT,
    summary             TEXT NOT NULL DEFAULT '',
    text                TEXT NOT NULL DEFAULT '',
    topic               TEXT,
    relevance_score     REAL CHECK (relevance_score BETWEEN 0 AND 1),
    quality_score       REAL CHECK (quality_score BETWEEN 0 AND 1),
    status              TEXT NOT NULL
                        CHECK (status IN ('approved', 'filtered_relevance', 'filtered_quality', 'error')),
    status_reason       TEXT,
    matched_keywords    TEXT NOT NULL DEFAULT '[]',
    -- Hash of the normalised text: quality control refuses duplicate content under another URL.
    content_fingerprint TEXT,
    -- The task that stored or last updated it.
    task_id             BLOB CHECK (task_id IS NULL OR length(task_id) = 16),
    ingested_at         TEXT NOT NULL,
    updated_at          TEXT NOT NULL
) STRICT;
CREATE INDEX articles_newest ON articles (ingested_at, id);
CREATE INDEX articles_by_status ON articles (status, id);
CREATE INDEX articles_by_topic ON articles (topic, id);
CREATE INDEX articles_by_fingerprint ON articles (content_fingerprint)
    WHERE content_fingerprint IS NOT NULL;

CREATE TABLE keyword_groups (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    topic              TEXT,
    keywords           TEXT NOT NULL DEFAULT '[]',
    -- Articles up to this id have been checked against the group.
    checked_through_id INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL
) STRICT;

CREATE TABLE keyword_alerts (
    id               INTEGER PRIMARY KEY,
    article_id       INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    group_id         INTEGER NOT NULL REFERENCES keyword_groups (id) ON DELETE CASCADE,
    matched_keywords TEXT NOT NULL DEFAULT '[]',
    read_at          TEXT,
    created_at       TEXT NOT NULL,
    UNIQUE (article_id, group_id)
) STRICT;
CREATE INDEX keyword_alerts_unread ON keyword_alerts (id) WHERE read_at IS NULL;

-- One row: the settings of the auto-ingest pipeline, with safe defaults (the original's
-- threshold of 0 let everything through).
CREATE TABLE auto_ingest_config (
    id                      INTEGER PRIMARY KEY CHECK (id = 1),
    enabled                 INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    quality_control_enabled INTEGER NOT NULL DEFAULT 1 CHECK (quality_control_enabled IN (0, 1)),
    min_relevance_threshold REAL NOT NULL DEFAULT 0.3
                            CHECK (min_relevance_threshold BETWEEN 0 AND 1),
    batch_size              INTEGER NOT NULL DEFAULT 10 CHECK (batch_size BETWEEN 1 AND 100),
    max_concurrent_batches  INTEGER NOT NULL DEFAULT 2
                            CHECK (max_concurrent_batches BETWEEN 1 AND 16),
    updated_at              TEXT
) STRICT;
INSERT INTO auto_ingest_config (id) VALUES (1);
