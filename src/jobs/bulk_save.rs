//! `bulk_save`: validates articles sent by a client and stores them by URL, reporting which were
//! saved, which replaced a stored article and which were rejected, with the reason. (The
//! original's bulk save always failed.)

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    api::ingest::BULK_SAVE_MAX_ARTICLES,
    db::{ArticleRecord, ArticleStatus, Upserted},
    engine::{Job, JobContext, JobError},
};

const URL_MAX_CHARS: usize = 2000;
const TITLE_MAX_CHARS: usize = 500;
const TEXT_MAX_CHARS: usize = 1_000_000;
const KEYWORDS_MAX: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkSaveInput {
    /// Each article is checked on its own: one that does not fit is rejected, the others are
    /// saved.
    pub articles: Vec<Value>,
}

/// An article as clients send it; fields other than these are ignored (the original's clients
/// send back whole stored articles).
#[derive(Debug, Deserialize)]
struct SentArticle {
    url: Option<String>,
    title: Option<String>,
    source: Option<String>,
    published_at: Option<String>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    text: String,
    topic: Option<String>,
    relevance_score: Option<f64>,
    quality_score: Option<f64>,
    status: Option<String>,
    #[serde(default)]
    matched_keywords: Vec<String>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct Rejected {
    /// Position in the request, from 0.
    pub index: usize,
    pub url: Option<String>,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct BulkSaveOutput {
    pub summary: String,
    pub saved: usize,
    pub updated: usize,
    pub rejected: Vec<Rejected>,
}

pub struct BulkSave;

impl Job for BulkSave {
    const KIND: &'static str = "bulk_save";
    type Input = BulkSaveInput;
    type Output = BulkSaveOutput;

    async fn run(&self, ctx: JobContext, input: BulkSaveInput) -> Result<BulkSaveOutput, JobError> {
        if input.articles.len() > BULK_SAVE_MAX_ARTICLES {
            return Err(JobError::permanent(format!(
                "at most {BULK_SAVE_MAX_ARTICLES} articles per task"
            )));
        }
        ctx.set_total(input.articles.len() as u64);
        ctx.set_stage("saving", None).await;
        let mut output = BulkSaveOutput::default();
        for (index, sent) in input.articles.into_iter().enumerate() {
            if ctx.is_cancelled() {
                return Err(JobError::cancelled());
            }
            let url = sent.get("url").and_then(Value::as_str).map(str::to_owned);
            match validate(sent) {
                Ok(article) => {
                    let stored = ctx
                        .guard(
                            ctx.db()
                                .upsert_article(&article, Some(ctx.task().id), Utc::now()),
                        )
                        .await??;
                    match stored {
                        Upserted::Saved => output.saved += 1,
                        Upserted::Updated => output.updated += 1,
                    }
                }
                Err(reason) => {
                    ctx.record_error(url.as_deref(), &reason).await;
                    output.rejected.push(Rejected {
                        index,
                        url: url.clone(),
                        reason,
                    });
                }
            }
            ctx.advance(1, url.as_deref());
        }
        output.summary = format!(
            "{} saved, {} updated, {} rejected",
            output.saved,
            output.updated,
            output.rejected.len()
        );
        Ok(output)
    }
}

/// The article to store, or why not (naming the field).
fn validate(sent: Value) -> Result<ArticleRecord, String> {
    if !sent.is_object() {
        return Err("an article must be a JSON object".into());
    }
    let sent: SentArticle = serde_json::from_value(sent).map_err(|error| error.to_string())?;
    let url = required("url", sent.url, URL_MAX_CHARS)?;
    if !is_web_url(&url) {
        return Err("url: must be an http:// or https:// URL".into());
    }
    let title = required("title", sent.title, TITLE_MAX_CHARS)?;
    if sent.text.chars().count() > TEXT_MAX_CHARS || sent.summary.chars().count() > TEXT_MAX_CHARS {
        return Err(format!(
            "text and summary must be at most {TEXT_MAX_CHARS} characters"
        ));
    }
    for (field, score) in [
        ("relevance_score", sent.relevance_score),
        ("quality_score", sent.quality_score),
    ] {
        if score.is_some_and(|score| !(0.0..=1.0).contains(&score)) {
            return Err(format!("{field}: must be between 0 and 1"));
        }
    }
    if sent.matched_keywords.len() > KEYWORDS_MAX {
        return Err(format!("matched_keywords: at most {KEYWORDS_MAX} keywords"));
    }
    let published_at = sent
        .published_at
        .map(|text| {
            DateTime::parse_from_rfc3339(&text)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|_| "published_at: must be an RFC 3339 date and time".to_owned())
        })
        .transpose()?;
    let status = match sent.status.as_deref() {
        None => ArticleStatus::Approved,
        Some(text) => ArticleStatus::parse(text).ok_or_else(|| {
            "status: must be approved, filtered_relevance, filtered_quality or error".to_owned()
        })?,
    };
    Ok(ArticleRecord {
        content_fingerprint: None,
        url,
        title,
        source: sent.source,
        published_at,
        summary: sent.summary,
        text: sent.text,
        topic: sent.topic,
        relevance_score: sent.relevance_score,
        quality_score: sent.quality_score,
        status,
        status_reason: None,
        matched_keywords: sent.matched_keywords,
    })
}

fn required(field: &str, value: Option<String>, max_chars: usize) -> Result<String, String> {
    let value = value
        .map(|value| value.trim().to_owned())
        .unwrap_or_default();
    if value.is_empty() {
        return Err(format!("{field}: missing"));
    }
    if value.chars().count() > max_chars {
        return Err(format!("{field}: must be at most {max_chars} characters"));
    }
    Ok(value)
}

fn is_web_url(url: &str) -> bool {
    let lowercase = url.to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .find_map(|scheme| lowercase.strip_prefix(scheme))
        .is_some_and(|rest| rest.chars().next().is_some_and(char::is_alphanumeric))
        && !url.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reason(article: Value) -> String {
        validate(article).unwrap_err()
    }

    #[test]
    fn a_complete_article_is_accepted_with_its_fields() {
        let article = validate(json!({
            "url": "https://example.com/a",
            "title": " Rust 2026 ",
            "published_at": "2026-11-01T10:00:00Z",
            "relevance_score": 0.7,
            "status": "filtered_relevance",
            "matched_keywords": ["rust"],
            "id": 41, "created_at": "ignored"
        }))
        .unwrap();
        assert_eq!(article.title, "Rust 2026");
        assert_eq!(article.status, ArticleStatus::FilteredRelevance);
        assert_eq!(article.matched_keywords, ["rust"]);
        assert!(article.published_at.is_some());
    }

    #[test]
    fn each_problem_is_named() {
        assert_eq!(reason(json!({ "title": "t" })), "url: missing");
        assert_eq!(
            reason(json!({ "url": "javascript:alert(1)", "title": "t" })),
            "url: must be an http:// or https:// URL"
        );
        assert_eq!(reason(json!({ "url": "https://a.b" })), "title: missing");
        assert_eq!(
            reason(json!({ "url": "https://a.b", "title": "t", "quality_score": 1.5 })),
            "quality_score: must be between 0 and 1"
        );
        assert!(
            reason(json!({ "url": "https://a.b", "title": "t", "status": "maybe" }))
                .starts_with("status:")
        );
        assert_eq!(
            reason(json!({ "url": "https://a.b", "title": "t", "published_at": "yesterday" })),
            "published_at: must be an RFC 3339 date and time"
        );
        assert_eq!(
            reason(json!(["not", "an", "object"])),
            "an article must be a JSON object"
        );
    }
}
