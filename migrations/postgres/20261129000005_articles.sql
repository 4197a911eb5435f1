-- The domain of the shipped jobs: topics, feed sources, analysed articles, keyword groups and
-- their alerts, and the auto-ingest configuration. Keyword lists are JSON arrays of strings.
CREATE TABLE topics (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    keywords    JSONB NOT NULL DEFAULT '[]',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE sources (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT NOT NULL,
    feed_url        TEXT NOT NULL UNIQUE,
    topic_id        BIGINT REFERENCES topics (id) ON DELETE SET NULL,
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    last_fetched_at TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE articles (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                 TEXT NOT NULL UNIQUE,
    title               TEXT NOT NULL,
    source              TEXT,
    published_at        TIMESTAMPTZ,
    summary             TEXT NOT NULL DEFAULT '',
    text                TEXT NOT NULL DEFAULT '',
    topic               TEXT,
    relevance_score     DOUBLE PRECISION CHECK (relevance_score BETWEEN 0 AND 1),
    quality_score       DOUBLE PRECISION CHECK (quality_score BETWEEN 0 AND 1),
    status              TEXT NOT NULL
                        CHECK (status IN ('approved', 'filtered_relevance', 'filtered_quality', 'error')),
    status_reason       TEXT,
    matched_keywords    JSONB NOT NULL DEFAULT '[]',
    -- Hash of the normalised text: quality control refuses duplicate content under another URL.
    content_fingerprint TEXT,
    -- The task that stored or last updated it.
    task_id             UUID,
    ingested_at         TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX articles_newest ON articles (ingested_at, id);
CREATE INDEX articles_by_status ON articles (status, id);
CREATE INDEX articles_by_topic ON articles (topic, id);
CREATE INDEX articles_by_fingerprint ON articles (content_fingerprint)
    WHERE content_fingerprint IS NOT NULL;

CREATE TABLE keyword_groups (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    topic              TEXT,
    keywords           JSONB NOT NULL DEFAULT '[]',
    -- Articles up to this id have been checked against the group.
    checked_through_id BIGINT NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ NOT NULL
);

CREATE TABLE keyword_alerts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    article_id       BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    group_id         BIGINT NOT NULL REFERENCES keyword_groups (id) ON DELETE CASCADE,
    matched_keywords JSONB NOT NULL DEFAULT '[]',
    read_at          TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (article_id, group_id)
);
CREATE INDEX keyword_alerts_unread ON keyword_alerts (id) WHERE read_at IS NULL;

-- One row: the settings of the auto-ingest pipeline, with safe defaults (the original's
-- threshold of 0 let everything through).
CREATE TABLE auto_ingest_config (
    id                      INTEGER PRIMARY KEY CHECK (id = 1),
    enabled                 BOOLEAN NOT NULL DEFAULT FALSE,
    quality_control_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    min_relevance_threshold DOUBLE PRECISION NOT NULL DEFAULT 0.3
                            CHECK (min_relevance_threshold BETWEEN 0 AND 1),
    batch_size              INTEGER NOT NULL DEFAULT 10 CHECK (batch_size BETWEEN 1 AND 100),
    max_concurrent_batches  INTEGER NOT NULL DEFAULT 2
                            CHECK (max_concurrent_batches BETWEEN 1 AND 16),
    updated_at              TIMESTAMPTZ
);
INSERT INTO auto_ingest_config (id) VALUES (1);
