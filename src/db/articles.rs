//! Articles: what the analysis jobs store, one row per URL.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Database, DbError, on_pool};

/// Where an article stands after analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArticleStatus {
    Approved,
    /// Below the relevance threshold.
    FilteredRelevance,
    /// Refused by quality control (too short, boilerplate, duplicate content).
    FilteredQuality,
    /// Could not be fetched or analysed.
    Error,
}

impl ArticleStatus {
    pub const ALL: [ArticleStatus; 4] = [
        ArticleStatus::Approved,
        ArticleStatus::FilteredRelevance,
        ArticleStatus::FilteredQuality,
        ArticleStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ArticleStatus::Approved => "approved",
            ArticleStatus::FilteredRelevance => "filtered_relevance",
            ArticleStatus::FilteredQuality => "filtered_quality",
            ArticleStatus::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<ArticleStatus> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// An article to store; its URL identifies it.
#[derive(Clone, Debug, PartialEq)]
pub struct ArticleRecord {
    pub url: String,
    pub title: String,
    pub source: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub summary: String,
    pub text: String,
    pub topic: Option<String>,
    pub relevance_score: Option<f64>,
    pub quality_score: Option<f64>,
    pub status: ArticleStatus,
    pub status_reason: Option<String>,
    pub matched_keywords: Vec<String>,
    pub content_fingerprint: Option<String>,
}

/// Whether [`Database::upsert_article`] added the article or replaced the stored one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upserted {
    Saved,
    Updated,
}

impl Database {
    /// Stores `article`, replacing the article stored under the same URL, on behalf of `task`.
    pub async fn upsert_article(
        &self,
        article: &ArticleRecord,
        task: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Upserted, DbError> {
        // One statement: two concurrent tasks saving the same URL cannot both insert it.
        // `ingested_at` keeps the first time; the answer tells an insert from an update.
        let inserted: bool = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO articles (url, title, source, published_at, summary, text, topic, \
                 relevance_score, quality_score, status, status_reason, matched_keywords, \
                 content_fingerprint, task_id, ingested_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) \
                 ON CONFLICT (url) DO UPDATE SET title = excluded.title, \
                 source = excluded.source, published_at = excluded.published_at, \
                 summary = excluded.summary, text = excluded.text, topic = excluded.topic, \
                 relevance_score = excluded.relevance_score, \
                 quality_score = excluded.quality_score, status = excluded.status, \
                 status_reason = excluded.status_reason, \
                 matched_keywords = excluded.matched_keywords, \
                 content_fingerprint = excluded.content_fingerprint, task_id = excluded.task_id, \
                 updated_at = excluded.updated_at \
                 RETURNING ingested_at = updated_at",
            )
            .bind(&article.url)
            .bind(&article.title)
            .bind(&article.source)
            .bind(article.published_at)
            .bind(&article.summary)
            .bind(&article.text)
            .bind(&article.topic)
            .bind(article.relevance_score)
            .bind(article.quality_score)
            .bind(article.status.as_str())
            .bind(&article.status_reason)
            .bind(Json(&article.matched_keywords))
            .bind(&article.content_fingerprint)
            .bind(task)
            .bind(now)
            .fetch_one(pool)
            .await
        })?;
        Ok(if inserted {
            Upserted::Saved
        } else {
            Upserted::Updated
        })
    }
}
