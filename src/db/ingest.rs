//! Ingestion's domain: topics, feed sources, keyword groups and their alerts, the auto-ingest
//! configuration, and the stored articles as people browse them.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Database, DbError, execute, on_pool, tasks::contains_pattern};
use crate::api::ingest::{
    Article, ArticleDetail, ArticleFilter, AutoIngestConfig, IngestStats, KeywordAlert,
    KeywordGroup, Source, Topic,
};

/// A topic, source or keyword group as a person enters it, ready to store.
#[derive(Clone, Copy, Debug)]
pub struct TopicFields<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub keywords: &'a [String],
}

#[derive(Clone, Copy, Debug)]
pub struct SourceFields<'a> {
    pub name: &'a str,
    pub feed_url: &'a str,
    pub topic_id: Option<i64>,
}

#[derive(Clone, Copy, Debug)]
pub struct KeywordGroupFields<'a> {
    pub name: &'a str,
    pub topic: Option<&'a str>,
    pub keywords: &'a [String],
}

/// A keyword group as the keyword check reads it: how far it has checked.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct KeywordWatch {
    pub id: i64,
    pub name: String,
    pub topic: Option<String>,
    #[sqlx(json)]
    pub keywords: Vec<String>,
    /// Approved articles last changed before this have been checked against the group.
    pub checked_through: Option<DateTime<Utc>>,
}

/// The words of an approved article that a keyword check reads.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct CheckedArticle {
    pub id: i64,
    pub updated_at: DateTime<Utc>,
    pub title: String,
    pub summary: String,
    pub text: String,
}

#[derive(sqlx::FromRow)]
struct TopicRow {
    id: i64,
    name: String,
    description: String,
    keywords: Json<Vec<String>>,
    created_at: DateTime<Utc>,
}

impl From<TopicRow> for Topic {
    fn from(row: TopicRow) -> Self {
        Topic {
            id: row.id,
            name: row.name,
            description: row.description,
            keywords: row.keywords.0,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    id: i64,
    name: String,
    feed_url: String,
    topic_id: Option<i64>,
    topic_name: Option<String>,
    enabled: bool,
    last_fetched_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<SourceRow> for Source {
    fn from(row: SourceRow) -> Self {
        Source {
            id: row.id,
            name: row.name,
            feed_url: row.feed_url,
            topic_id: row.topic_id,
            topic_name: row.topic_name,
            enabled: row.enabled,
            last_fetched_at: row.last_fetched_at,
            last_error: row.last_error,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct KeywordGroupRow {
    id: i64,
    name: String,
    topic: Option<String>,
    keywords: Json<Vec<String>>,
    unread_alerts: i64,
    created_at: DateTime<Utc>,
}

impl From<KeywordGroupRow> for KeywordGroup {
    fn from(row: KeywordGroupRow) -> Self {
        KeywordGroup {
            id: row.id,
            name: row.name,
            topic: row.topic,
            keywords: row.keywords.0,
            unread_alerts: row.unread_alerts,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ArticleRow {
    id: i64,
    url: String,
    title: String,
    source: Option<String>,
    published_at: Option<DateTime<Utc>>,
    summary: String,
    topic: Option<String>,
    relevance_score: Option<f64>,
    quality_score: Option<f64>,
    status: String,
    status_reason: Option<String>,
    matched_keywords: Json<Vec<String>>,
    ingested_at: DateTime<Utc>,
}

impl From<ArticleRow> for Article {
    fn from(row: ArticleRow) -> Self {
        Article {
            id: row.id,
            url: row.url,
            title: row.title,
            source: row.source,
            published_at: row.published_at,
            summary: row.summary,
            topic: row.topic,
            relevance_score: row.relevance_score,
            quality_score: row.quality_score,
            status: row.status,
            status_reason: row.status_reason,
            matched_keywords: row.matched_keywords.0,
            ingested_at: row.ingested_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: i64,
    article_id: i64,
    article_title: String,
    article_url: String,
    group_id: i64,
    group_name: String,
    matched_keywords: Json<Vec<String>>,
    read: bool,
    created_at: DateTime<Utc>,
}

impl From<AlertRow> for KeywordAlert {
    fn from(row: AlertRow) -> Self {
        KeywordAlert {
            id: row.id,
            article_id: row.article_id,
            article_title: row.article_title,
            article_url: row.article_url,
            group_id: row.group_id,
            group_name: row.group_name,
            matched_keywords: row.matched_keywords.0,
            read: row.read,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ConfigRow {
    enabled: bool,
    quality_control_enabled: bool,
    min_relevance_threshold: f64,
    batch_size: i32,
    max_concurrent_batches: i32,
}

impl TryFrom<ConfigRow> for AutoIngestConfig {
    type Error = DbError;

    fn try_from(row: ConfigRow) -> Result<Self, DbError> {
        let count = |value: i32| {
            u32::try_from(value)
                .map_err(|_| DbError::Corrupt(format!("auto-ingest count {value} is negative")))
        };
        Ok(AutoIngestConfig {
            enabled: row.enabled,
            quality_control_enabled: row.quality_control_enabled,
            min_relevance_threshold: row.min_relevance_threshold,
            batch_size: count(row.batch_size)?,
            max_concurrent_batches: count(row.max_concurrent_batches)?,
        })
    }
}

const TOPIC_COLUMNS: &str = "id, name, description, keywords, created_at";
const SOURCE_SELECT: &str = "SELECT s.id, s.name, s.feed_url, s.topic_id, t.name AS topic_name, \
     s.enabled, s.last_fetched_at, s.last_error, s.created_at \
     FROM sources AS s LEFT JOIN topics AS t ON t.id = s.topic_id";
const GROUP_SELECT: &str = "SELECT g.id, g.name, g.topic, g.keywords, g.created_at, \
     (SELECT COUNT(*) FROM keyword_alerts AS a WHERE a.group_id = g.id AND a.read_at IS NULL) \
     AS unread_alerts FROM keyword_groups AS g";
const ARTICLE_COLUMNS: &str = "id, url, title, source, published_at, summary, topic, \
     relevance_score, quality_score, status, status_reason, matched_keywords, ingested_at";
const ALERT_SELECT: &str = "SELECT a.id, a.article_id, r.title AS article_title, \
     r.url AS article_url, a.group_id, g.name AS group_name, a.matched_keywords, \
     a.read_at IS NOT NULL AS read, a.created_at \
     FROM keyword_alerts AS a JOIN articles AS r ON r.id = a.article_id \
     JOIN keyword_groups AS g ON g.id = a.group_id";

impl Database {
    pub async fn topics(&self) -> Result<Vec<Topic>, DbError> {
        let sql = format!("SELECT {TOPIC_COLUMNS} FROM topics ORDER BY name");
        let rows: Vec<TopicRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Topic::from).collect())
    }

    pub async fn topic(&self, id: i64) -> Result<Option<Topic>, DbError> {
        let sql = format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE id = $1");
        let row: Option<TopicRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
        })?;
        Ok(row.map(Topic::from))
    }

    pub async fn topic_by_name(&self, name: &str) -> Result<Option<Topic>, DbError> {
        let sql = format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE LOWER(name) = LOWER($1)");
        let row: Option<TopicRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(name).fetch_optional(pool).await
        })?;
        Ok(row.map(Topic::from))
    }

    /// Creates a topic; [`DbError::Duplicate`] when the name is taken.
    pub async fn insert_topic(
        &self,
        topic: TopicFields<'_>,
        now: DateTime<Utc>,
    ) -> Result<Topic, DbError> {
        let sql = format!(
            "INSERT INTO topics (name, description, keywords, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING {TOPIC_COLUMNS}"
        );
        let row: TopicRow = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(topic.name)
                .bind(topic.description)
                .bind(Json(topic.keywords))
                .bind(now)
                .fetch_one(pool)
                .await
        })
        .map_err(DbError::from_insert)?;
        Ok(row.into())
    }

    /// Changes topic `id`; `None` when there is none.
    pub async fn update_topic(
        &self,
        id: i64,
        topic: TopicFields<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Topic>, DbError> {
        let sql = format!(
            "UPDATE topics SET name = $2, description = $3, keywords = $4, updated_at = $5 \
             WHERE id = $1 RETURNING {TOPIC_COLUMNS}"
        );
        let row: Option<TopicRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(topic.name)
                .bind(topic.description)
                .bind(Json(topic.keywords))
                .bind(now)
                .fetch_optional(pool)
                .await
        })
        .map_err(DbError::from_insert)?;
        Ok(row.map(Topic::from))
    }

    /// Deletes topic `id`; its sources keep going without a topic.
    pub async fn delete_topic(&self, id: i64) -> Result<bool, DbError> {
        Ok(execute!(self, "DELETE FROM topics WHERE id = $1", id)? > 0)
    }

    pub async fn sources(&self) -> Result<Vec<Source>, DbError> {
        let sql = format!("{SOURCE_SELECT} ORDER BY s.name, s.id");
        let rows: Vec<SourceRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Source::from).collect())
    }

    pub async fn source(&self, id: i64) -> Result<Option<Source>, DbError> {
        let sql = format!("{SOURCE_SELECT} WHERE s.id = $1");
        let row: Option<SourceRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
        })?;
        Ok(row.map(Source::from))
    }

    /// Creates an enabled source; [`DbError::Duplicate`] when its feed is already a source.
    pub async fn insert_source(
        &self,
        source: SourceFields<'_>,
        now: DateTime<Utc>,
    ) -> Result<i64, DbError> {
        on_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO sources (name, feed_url, topic_id, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(source.name)
            .bind(source.feed_url)
            .bind(source.topic_id)
            .bind(now)
            .fetch_one(pool)
            .await
        })
        .map_err(DbError::from_insert)
    }

    /// Changes source `id`; `false` when there is none.
    pub async fn update_source(&self, id: i64, source: SourceFields<'_>) -> Result<bool, DbError> {
        let changed = on_pool!(self, |pool| {
            sqlx::query("UPDATE sources SET name = $2, feed_url = $3, topic_id = $4 WHERE id = $1")
                .bind(id)
                .bind(source.name)
                .bind(source.feed_url)
                .bind(source.topic_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(DbError::from_insert)?;
        Ok(changed > 0)
    }

    pub async fn set_source_enabled(&self, id: i64, enabled: bool) -> Result<bool, DbError> {
        let sql = "UPDATE sources SET enabled = $2 WHERE id = $1";
        Ok(execute!(self, sql, id, enabled)? > 0)
    }

    pub async fn delete_source(&self, id: i64) -> Result<bool, DbError> {
        Ok(execute!(self, "DELETE FROM sources WHERE id = $1", id)? > 0)
    }

    /// Records a fetch of the source's feed at `at`, and why it failed if it did.
    pub async fn record_source_fetch(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        let sql = "UPDATE sources SET last_fetched_at = $2, last_error = $3 WHERE id = $1";
        execute!(self, sql, id, at, error)?;
        Ok(())
    }

    pub async fn keyword_groups(&self) -> Result<Vec<KeywordGroup>, DbError> {
        let sql = format!("{GROUP_SELECT} ORDER BY g.name");
        let rows: Vec<KeywordGroupRow> =
            on_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(KeywordGroup::from).collect())
    }

    pub async fn keyword_group(&self, id: i64) -> Result<Option<KeywordGroup>, DbError> {
        let sql = format!("{GROUP_SELECT} WHERE g.id = $1");
        let row: Option<KeywordGroupRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
        })?;
        Ok(row.map(KeywordGroup::from))
    }

    /// Creates a keyword group; [`DbError::Duplicate`] when the name is taken.
    pub async fn insert_keyword_group(
        &self,
        group: KeywordGroupFields<'_>,
        now: DateTime<Utc>,
    ) -> Result<i64, DbError> {
        on_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO keyword_groups (name, topic, keywords, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(group.name)
            .bind(group.topic)
            .bind(Json(group.keywords))
            .bind(now)
            .fetch_one(pool)
            .await
        })
        .map_err(DbError::from_insert)
    }

    /// Changes keyword group `id`; `false` when there is none. New keywords are checked
    /// against every article again, so the group starts over.
    pub async fn update_keyword_group(
        &self,
        id: i64,
        group: KeywordGroupFields<'_>,
    ) -> Result<bool, DbError> {
        let changed = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE keyword_groups SET name = $2, topic = $3, keywords = $4, \
                 checked_through = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(group.name)
            .bind(group.topic)
            .bind(Json(group.keywords))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(DbError::from_insert)?;
        Ok(changed > 0)
    }

    pub async fn delete_keyword_group(&self, id: i64) -> Result<bool, DbError> {
        Ok(execute!(self, "DELETE FROM keyword_groups WHERE id = $1", id)? > 0)
    }

    /// The keyword groups a check reads: group `id`, or all of them.
    pub async fn keyword_watches(&self, id: Option<i64>) -> Result<Vec<KeywordWatch>, DbError> {
        on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, topic, keywords, checked_through FROM keyword_groups \
                 WHERE $1 IS NULL OR id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })
        .map_err(DbError::from)
    }

    /// Up to `limit` approved articles last changed at `since` or later (all, for `None`), of
    /// `topic` when given, in the order they changed.
    pub async fn articles_to_check(
        &self,
        since: Option<DateTime<Utc>>,
        topic: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CheckedArticle>, DbError> {
        on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, updated_at, title, summary, text FROM articles \
                 WHERE status = 'approved' AND ($1 IS NULL OR updated_at >= $1) \
                 AND ($2 IS NULL OR LOWER(topic) = LOWER($2)) ORDER BY updated_at, id LIMIT $3",
            )
            .bind(since)
            .bind(topic)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
        .map_err(DbError::from)
    }

    /// Raises an alert of `group` about `article`; `false` when it had one already.
    pub async fn insert_keyword_alert(
        &self,
        article: i64,
        group: i64,
        matched: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "INSERT INTO keyword_alerts (article_id, group_id, matched_keywords, \
                   created_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (article_id, group_id) DO NOTHING";
        Ok(execute!(self, sql, article, group, Json(matched), now)? > 0)
    }

    /// Records that `group` has been checked against the articles changed up to `through`.
    pub async fn set_group_checked_through(
        &self,
        group: i64,
        through: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let sql = "UPDATE keyword_groups SET checked_through = $2 \
                   WHERE id = $1 AND (checked_through IS NULL OR checked_through < $2)";
        execute!(self, sql, group, through)?;
        Ok(())
    }

    /// The newest `limit` alerts, or only the unread ones.
    pub async fn keyword_alerts(
        &self,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<KeywordAlert>, DbError> {
        let sql = format!(
            "{ALERT_SELECT} WHERE ($1 = FALSE OR a.read_at IS NULL) ORDER BY a.id DESC LIMIT $2"
        );
        let rows: Vec<AlertRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(unread_only)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(KeywordAlert::from).collect())
    }

    /// Marks alert `id` read, or every unread alert when `id` is `None`; answers how many
    /// changed.
    pub async fn mark_keyword_alerts_read(
        &self,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64, DbError> {
        let sql = "UPDATE keyword_alerts SET read_at = $2 \
                   WHERE read_at IS NULL AND ($1 IS NULL OR id = $1)";
        Ok(execute!(self, sql, id, now)?)
    }

    /// Whether alert `id` exists.
    pub async fn keyword_alert_exists(&self, id: i64) -> Result<bool, DbError> {
        let found: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM keyword_alerts WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(found.is_some())
    }

    pub async fn auto_ingest_config(&self) -> Result<AutoIngestConfig, DbError> {
        let row: ConfigRow = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT enabled, quality_control_enabled, min_relevance_threshold, batch_size, \
                 max_concurrent_batches FROM auto_ingest_config WHERE id = 1",
            )
            .fetch_one(pool)
            .await
        })?;
        row.try_into()
    }

    pub async fn save_auto_ingest_config(
        &self,
        config: &AutoIngestConfig,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let sql = "UPDATE auto_ingest_config SET enabled = $1, quality_control_enabled = $2, \
                   min_relevance_threshold = $3, batch_size = $4, max_concurrent_batches = $5, \
                   updated_at = $6 WHERE id = 1";
        execute!(
            self,
            sql,
            config.enabled,
            config.quality_control_enabled,
            config.min_relevance_threshold,
            config.batch_size as i32,
            config.max_concurrent_batches as i32,
            now,
        )?;
        Ok(())
    }

    /// Which of `urls` are stored articles already; articles stored as errors are not, so
    /// that the next run tries them again.
    pub async fn known_article_urls(&self, urls: &[String]) -> Result<HashSet<String>, DbError> {
        let mut known = HashSet::new();
        // Bounded statements: SQLite allows 32766 parameters, PostgreSQL 65535.
        for chunk in urls.chunks(500) {
            let list = (1..=chunk.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql =
                format!("SELECT url FROM articles WHERE url IN ({list}) AND status <> 'error'");
            let found: Vec<String> = on_pool!(self, |pool| {
                let mut query = sqlx::query_scalar(&sql);
                for url in chunk {
                    query = query.bind(url);
                }
                query.fetch_all(pool).await
            })?;
            known.extend(found);
        }
        Ok(known)
    }

    /// Whether an article under another URL than `url` has the content `fingerprint`.
    pub async fn fingerprint_taken(&self, fingerprint: &str, url: &str) -> Result<bool, DbError> {
        let found: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM articles WHERE content_fingerprint = $1 AND url <> $2 LIMIT 1",
            )
            .bind(fingerprint)
            .bind(url)
            .fetch_optional(pool)
            .await
        })?;
        Ok(found.is_some())
    }

    /// A page of stored articles matching `filter`, newest first; `limit` is already checked.
    pub async fn articles(
        &self,
        filter: &ArticleFilter,
        limit: i64,
    ) -> Result<Vec<Article>, DbError> {
        let sql = format!(
            "SELECT {ARTICLE_COLUMNS} FROM articles WHERE ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR LOWER(topic) = LOWER($2)) \
             AND ($3 IS NULL OR LOWER(title) LIKE $3 ESCAPE '\\' \
                  OR LOWER(url) LIKE $3 ESCAPE '\\') \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let pattern = filter.query.as_deref().map(contains_pattern);
        let rows: Vec<ArticleRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(&filter.status)
                .bind(&filter.topic)
                .bind(&pattern)
                .bind(filter.before)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(Article::from).collect())
    }

    pub async fn article(&self, id: i64) -> Result<Option<ArticleDetail>, DbError> {
        #[derive(sqlx::FromRow)]
        struct DetailRow {
            #[sqlx(flatten)]
            article: ArticleRow,
            text: String,
        }
        let sql = format!("SELECT {ARTICLE_COLUMNS}, text FROM articles WHERE id = $1");
        let row: Option<DetailRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
        })?;
        Ok(row.map(|row| ArticleDetail {
            article: row.article.into(),
            text: row.text,
        }))
    }

    pub async fn ingest_stats(&self) -> Result<IngestStats, DbError> {
        #[derive(sqlx::FromRow)]
        struct StatsRow {
            articles: i64,
            approved: i64,
            filtered_relevance: i64,
            filtered_quality: i64,
            errors: i64,
            sources: i64,
            enabled_sources: i64,
            topics: i64,
            keyword_groups: i64,
            unread_alerts: i64,
            last_ingested_at: Option<DateTime<Utc>>,
        }
        let row: StatsRow = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM articles) AS articles, \
                 (SELECT COUNT(*) FROM articles WHERE status = 'approved') AS approved, \
                 (SELECT COUNT(*) FROM articles WHERE status = 'filtered_relevance') \
                   AS filtered_relevance, \
                 (SELECT COUNT(*) FROM articles WHERE status = 'filtered_quality') \
                   AS filtered_quality, \
                 (SELECT COUNT(*) FROM articles WHERE status = 'error') AS errors, \
                 (SELECT COUNT(*) FROM sources) AS sources, \
                 (SELECT COUNT(*) FROM sources WHERE enabled) AS enabled_sources, \
                 (SELECT COUNT(*) FROM topics) AS topics, \
                 (SELECT COUNT(*) FROM keyword_groups) AS keyword_groups, \
                 (SELECT COUNT(*) FROM keyword_alerts WHERE read_at IS NULL) AS unread_alerts, \
                 (SELECT MAX(ingested_at) FROM articles) AS last_ingested_at",
            )
            .fetch_one(pool)
            .await
        })?;
        Ok(IngestStats {
            articles: row.articles,
            approved: row.approved,
            filtered_relevance: row.filtered_relevance,
            filtered_quality: row.filtered_quality,
            errors: row.errors,
            sources: row.sources,
            enabled_sources: row.enabled_sources,
            topics: row.topics,
            keyword_groups: row.keyword_groups,
            unread_alerts: row.unread_alerts,
            last_ingested_at: row.last_ingested_at,
        })
    }

    /// Makes `task` the one run of `kind` in the whole cluster, unless another running task
    /// holds that place; answers whether it does now. A holder that is no longer running
    /// (finished, or taken over after a crash) gives the place up by itself.
    pub async fn claim_exclusive_run(
        &self,
        kind: &str,
        task: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "INSERT INTO exclusive_runs (kind, task_id, claimed_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (kind) DO UPDATE SET task_id = excluded.task_id, \
                   claimed_at = excluded.claimed_at \
                   WHERE exclusive_runs.task_id = excluded.task_id OR NOT EXISTS \
                   (SELECT 1 FROM tasks WHERE tasks.id = exclusive_runs.task_id \
                    AND tasks.status = 'running')";
        Ok(execute!(self, sql, kind, task, now)? > 0)
    }

    /// Takes the scheduled run of `kind` that is due at `now`, moving the next one to `next`;
    /// answers whether this caller took it (one node of a cluster does). The first call for
    /// a kind takes a run.
    pub async fn take_scheduled_run(
        &self,
        kind: &str,
        now: DateTime<Utc>,
        next: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "INSERT INTO schedules (kind, next_run_at) VALUES ($1, $3) \
                   ON CONFLICT (kind) DO UPDATE SET next_run_at = excluded.next_run_at \
                   WHERE schedules.next_run_at <= $2";
        Ok(execute!(self, sql, kind, now, next)? > 0)
    }
}
