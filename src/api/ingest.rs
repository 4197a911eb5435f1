//! Ingestion: topics, feed sources, keyword groups, the auto-ingest configuration, stored
//! articles and keyword alerts — the shared types, the validation both sides run, and the
//! server functions behind `/ingest` and `/articles`.
//!
//! The server functions live under `/api/ingest/…`; `/api/auto-ingest/…` is the REST API of
//! the original system's clients. Everybody signed in can read all of it, run auto-ingest and
//! keyword checks, and mark alerts read; changing topics, sources, keyword groups and the
//! configuration is for administrators.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{api::tasks::Task, error::AppError};

pub const NAME_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 2_000;
pub const KEYWORD_MAX_CHARS: usize = 100;
pub const KEYWORDS_MAX: usize = 100;
pub const URL_MAX_CHARS: usize = 2_000;
pub const DEFAULT_ARTICLE_PAGE: u32 = 50;
pub const MAX_ARTICLE_PAGE: u32 = 200;

/// What an article is judged against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A topic to create or change. `keywords` is the text a person typed: keywords separated by
/// commas or new lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub keywords: String,
}

impl TopicInput {
    /// Checks every field; the error names the first field that is wrong.
    pub fn validate(&self) -> Result<(), AppError> {
        validate_name("name", &self.name)?;
        if self.description.chars().count() > DESCRIPTION_MAX_CHARS {
            return Err(field_error(
                "description",
                format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
            ));
        }
        validate_keywords(&self.keywords, false)
    }
}

/// An RSS or Atom feed that auto-ingest reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub id: i64,
    pub name: String,
    pub feed_url: String,
    /// The topic its articles are judged against; without one, the feed's articles are judged
    /// against every topic and take the best.
    pub topic_id: Option<i64>,
    pub topic_name: Option<String>,
    pub enabled: bool,
    pub last_fetched_at: Option<DateTime<Utc>>,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A source to create or change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInput {
    pub name: String,
    pub feed_url: String,
    #[serde(default)]
    pub topic_id: Option<i64>,
}

impl SourceInput {
    /// Checks every field; the error names the first field that is wrong.
    pub fn validate(&self) -> Result<(), AppError> {
        validate_name("name", &self.name)?;
        validate_http_url("feed_url", &self.feed_url)
    }
}

/// Keywords watched in every stored article; a match raises a keyword alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeywordGroup {
    pub id: i64,
    pub name: String,
    /// Only articles of this topic are checked, when set.
    pub topic: Option<String>,
    pub keywords: Vec<String>,
    pub unread_alerts: i64,
    pub created_at: DateTime<Utc>,
}

/// A keyword group to create or change; `keywords` as in [`TopicInput`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordGroupInput {
    pub name: String,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub keywords: String,
}

impl KeywordGroupInput {
    /// Checks every field; the error names the first field that is wrong.
    pub fn validate(&self) -> Result<(), AppError> {
        validate_name("name", &self.name)?;
        if let Some(topic) = &self.topic
            && topic.chars().count() > NAME_MAX_CHARS
        {
            return Err(field_error(
                "topic",
                format!("must be at most {NAME_MAX_CHARS} characters"),
            ));
        }
        validate_keywords(&self.keywords, true)
    }
}

/// The keywords of a typed list: split at commas and new lines, trimmed, without empty ones
/// and repeats (case-insensitive), in the order given.
pub fn parse_keywords(text: &str) -> Vec<String> {
    let mut keywords: Vec<String> = Vec::new();
    for keyword in text.split([',', '\n']).map(str::trim) {
        let repeated = keywords
            .iter()
            .any(|known| known.to_lowercase() == keyword.to_lowercase());
        if !keyword.is_empty() && !repeated {
            keywords.push(keyword.to_owned());
        }
    }
    keywords
}

/// The settings of the auto-ingest pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoIngestConfig {
    /// Whether the scheduler runs it (when a schedule is configured).
    pub enabled: bool,
    pub quality_control_enabled: bool,
    /// Articles less relevant than this (0–1) are recorded as `filtered_relevance`.
    pub min_relevance_threshold: f64,
    /// Articles per batch, 1–100.
    pub batch_size: u32,
    /// Batches analysed at once, 1–16.
    pub max_concurrent_batches: u32,
}

impl AutoIngestConfig {
    pub const BATCH_SIZE: std::ops::RangeInclusive<u32> = 1..=100;
    pub const CONCURRENT_BATCHES: std::ops::RangeInclusive<u32> = 1..=16;

    /// Checks every value; the error names the first key that is out of range.
    pub fn validate(&self) -> Result<(), AppError> {
        if !(0.0..=1.0).contains(&self.min_relevance_threshold) {
            return Err(field_error(
                "min_relevance_threshold",
                "must be between 0 and 1",
            ));
        }
        if !Self::BATCH_SIZE.contains(&self.batch_size) {
            return Err(field_error("batch_size", "must be between 1 and 100"));
        }
        if !Self::CONCURRENT_BATCHES.contains(&self.max_concurrent_batches) {
            return Err(field_error(
                "max_concurrent_batches",
                "must be between 1 and 16",
            ));
        }
        Ok(())
    }
}

/// Where auto-ingest stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IngestStatus {
    pub enabled: bool,
    /// The run in progress (pending or running), if any.
    pub running: Option<Task>,
    pub config: AutoIngestConfig,
    /// Enabled sources, which the next run reads.
    pub pending_sources: i64,
    /// Seconds between scheduled runs; `None` when no schedule is configured.
    pub schedule_interval_secs: Option<u64>,
}

/// Counts of what ingestion stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestStats {
    pub articles: i64,
    pub approved: i64,
    pub filtered_relevance: i64,
    pub filtered_quality: i64,
    pub errors: i64,
    pub sources: i64,
    pub enabled_sources: i64,
    pub topics: i64,
    pub keyword_groups: i64,
    pub unread_alerts: i64,
    pub last_ingested_at: Option<DateTime<Utc>>,
}

/// A stored article, without its text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Article {
    pub id: i64,
    pub url: String,
    pub title: String,
    pub source: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub summary: String,
    pub topic: Option<String>,
    pub relevance_score: Option<f64>,
    pub quality_score: Option<f64>,
    /// `approved`, `filtered_relevance`, `filtered_quality` or `error`.
    pub status: String,
    /// Why it was filtered or failed.
    pub status_reason: Option<String>,
    pub matched_keywords: Vec<String>,
    pub ingested_at: DateTime<Utc>,
}

/// A stored article with its text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArticleDetail {
    pub article: Article,
    pub text: String,
}

/// Which articles a page lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleFilter {
    /// One status, as in [`Article::status`].
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    /// Words in the title or the URL.
    #[serde(default)]
    pub query: Option<String>,
    /// Only articles older than this id: the `next_cursor` of the previous page.
    #[serde(default)]
    pub before: Option<i64>,
    /// 1–200; 50 when absent.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A page of articles, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArticlePage {
    pub articles: Vec<Article>,
    pub next_cursor: Option<i64>,
}

/// An article that matched a keyword group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeywordAlert {
    pub id: i64,
    pub article_id: i64,
    pub article_title: String,
    pub article_url: String,
    pub group_id: i64,
    pub group_name: String,
    pub matched_keywords: Vec<String>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

fn field_error(field: &str, problem: impl std::fmt::Display) -> AppError {
    AppError::BadRequest(format!("{field}: {problem}"))
}

fn validate_name(field: &str, name: &str) -> Result<(), AppError> {
    let length = name.trim().chars().count();
    if length == 0 || name.chars().count() > NAME_MAX_CHARS {
        return Err(field_error(
            field,
            format!("must be 1–{NAME_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Checks a bulk analysis's topic, the name of a topic (stored or not).
pub fn validate_analysis_topic(topic: &str) -> Result<(), AppError> {
    validate_name("topic", topic)
}

fn validate_keywords(text: &str, required: bool) -> Result<(), AppError> {
    let keywords = parse_keywords(text);
    if required && keywords.is_empty() {
        return Err(field_error("keywords", "name at least one keyword"));
    }
    if keywords.len() > KEYWORDS_MAX {
        return Err(field_error(
            "keywords",
            format!("at most {KEYWORDS_MAX} keywords"),
        ));
    }
    if let Some(long) = keywords
        .iter()
        .find(|keyword| keyword.chars().count() > KEYWORD_MAX_CHARS)
    {
        return Err(field_error(
            "keywords",
            format!("“{long}” is longer than {KEYWORD_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Checks that `url` is an absolute http(s) URL.
pub fn validate_http_url(field: &str, url: &str) -> Result<(), AppError> {
    let url = url.trim();
    let lowercase = url.to_ascii_lowercase();
    let well_formed = url.chars().count() <= URL_MAX_CHARS
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && ["http://", "https://"]
            .iter()
            .find_map(|scheme| lowercase.strip_prefix(scheme))
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_alphanumeric() || c == '['))
        && parses_with_a_host(url);
    if !well_formed {
        return Err(field_error(
            field,
            "must be an http:// or https:// URL of at most 2000 characters",
        ));
    }
    Ok(())
}

/// The server parses the URL fully; the browser's check (without the URL parser, which would
/// weigh on the WASM bundle) is the prefix check above.
#[cfg(feature = "ssr")]
fn parses_with_a_host(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|parsed| parsed.host_str().is_some())
}

#[cfg(not(feature = "ssr"))]
fn parses_with_a_host(_url: &str) -> bool {
    true
}

#[cfg(feature = "ssr")]
use crate::{auth::CurrentUser, server::AppState, services::ingest};

#[cfg(feature = "ssr")]
fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or(AppError::Internal)
}

/// Auto-ingest's configuration, run in progress and schedule.
#[server(endpoint = "ingest/status")]
pub async fn get_ingest_status() -> Result<IngestStatus, AppError> {
    ingest::status(&state()?, &CurrentUser::from_leptos_context()?).await
}

/// Counts of stored articles by status, sources, topics, groups and unread alerts.
#[server(endpoint = "ingest/stats")]
pub async fn get_ingest_stats() -> Result<IngestStats, AppError> {
    ingest::stats(&state()?, &CurrentUser::from_leptos_context()?).await
}

/// Saves the auto-ingest configuration (administrators).
#[server(endpoint = "ingest/config")]
pub async fn save_auto_ingest_config(
    config: AutoIngestConfig,
) -> Result<AutoIngestConfig, AppError> {
    ingest::save_config(&state()?, &CurrentUser::from_leptos_context()?, config).await
}

/// Starts an auto-ingest run now; 409 while one is in progress.
#[server(endpoint = "ingest/run")]
pub async fn run_auto_ingest() -> Result<Task, AppError> {
    ingest::run_now(&state()?, &CurrentUser::from_leptos_context()?).await
}

/// Starts a keyword check of one group, or of all groups when `group_id` is `None`.
#[server(endpoint = "ingest/keyword-check")]
pub async fn run_keyword_check(group_id: Option<i64>) -> Result<Task, AppError> {
    ingest::run_keyword_check(&state()?, &CurrentUser::from_leptos_context()?, group_id).await
}

#[server(endpoint = "ingest/topics")]
pub async fn list_topics() -> Result<Vec<Topic>, AppError> {
    ingest::topics(&state()?, &CurrentUser::from_leptos_context()?).await
}

/// Creates a topic, or changes topic `id` (administrators).
#[server(endpoint = "ingest/save-topic")]
pub async fn save_topic(id: Option<i64>, topic: TopicInput) -> Result<Topic, AppError> {
    ingest::save_topic(&state()?, &CurrentUser::from_leptos_context()?, id, topic).await
}

#[server(endpoint = "ingest/delete-topic")]
pub async fn delete_topic(id: i64) -> Result<(), AppError> {
    ingest::delete_topic(&state()?, &CurrentUser::from_leptos_context()?, id).await
}

#[server(endpoint = "ingest/sources")]
pub async fn list_sources() -> Result<Vec<Source>, AppError> {
    ingest::sources(&state()?, &CurrentUser::from_leptos_context()?).await
}

/// Creates a source, or changes source `id` (administrators).
#[server(endpoint = "ingest/save-source")]
pub async fn save_source(id: Option<i64>, source: SourceInput) -> Result<Source, AppError> {
    ingest::save_source(&state()?, &CurrentUser::from_leptos_context()?, id, source).await
}

/// Turns a source on or off (administrators).
#[server(endpoint = "ingest/enable-source")]
pub async fn set_source_enabled(id: i64, enabled: bool) -> Result<Source, AppError> {
    ingest::set_source_enabled(&state()?, &CurrentUser::from_leptos_context()?, id, enabled).await
}

#[server(endpoint = "ingest/delete-source")]
pub async fn delete_source(id: i64) -> Result<(), AppError> {
    ingest::delete_source(&state()?, &CurrentUser::from_leptos_context()?, id).await
}

#[server(endpoint = "ingest/keyword-groups")]
pub async fn list_keyword_groups() -> Result<Vec<KeywordGroup>, AppError> {
    ingest::keyword_groups(&state()?, &CurrentUser::from_leptos_context()?).await
}

/// Creates a keyword group, or changes group `id` (administrators).
#[server(endpoint = "ingest/save-keyword-group")]
pub async fn save_keyword_group(
    id: Option<i64>,
    group: KeywordGroupInput,
) -> Result<KeywordGroup, AppError> {
    ingest::save_keyword_group(&state()?, &CurrentUser::from_leptos_context()?, id, group).await
}

#[server(endpoint = "ingest/delete-keyword-group")]
pub async fn delete_keyword_group(id: i64) -> Result<(), AppError> {
    ingest::delete_keyword_group(&state()?, &CurrentUser::from_leptos_context()?, id).await
}

/// Stored articles, newest first.
#[server(endpoint = "ingest/articles")]
pub async fn list_articles(filter: ArticleFilter) -> Result<ArticlePage, AppError> {
    ingest::articles(&state()?, &CurrentUser::from_leptos_context()?, &filter).await
}

/// One stored article with its text; 404 when there is none.
#[server(endpoint = "ingest/article")]
pub async fn get_article(id: i64) -> Result<ArticleDetail, AppError> {
    ingest::article(&state()?, &CurrentUser::from_leptos_context()?, id).await
}

/// Keyword alerts, newest first (at most 100).
#[server(endpoint = "ingest/alerts")]
pub async fn list_keyword_alerts(unread_only: bool) -> Result<Vec<KeywordAlert>, AppError> {
    ingest::alerts(&state()?, &CurrentUser::from_leptos_context()?, unread_only).await
}

/// Marks one alert read, or every alert when `id` is `None`; answers how many changed.
#[server(endpoint = "ingest/mark-alerts-read")]
pub async fn mark_keyword_alerts_read(id: Option<i64>) -> Result<i64, AppError> {
    ingest::mark_alerts_read(&state()?, &CurrentUser::from_leptos_context()?, id).await
}

/// Starts a `bulk_analysis` of the URLs in `urls` (one per line) for `topic`; 400 names the
/// wrong field, 503 when the analysis queue has no room.
#[server(endpoint = "ingest/bulk-analysis")]
pub async fn start_bulk_analysis(urls: String, topic: String) -> Result<Task, AppError> {
    let request = crate::jobs::bulk_analysis::BulkAnalysisInput::new(parse_lines(&urls), topic);
    crate::services::articles::bulk_analysis(
        &state()?,
        &CurrentUser::from_leptos_context()?,
        request,
    )
    .await
}

/// Starts a `bulk_save` of `articles`, a JSON array of article objects.
#[server(endpoint = "ingest/bulk-save")]
pub async fn start_bulk_save(articles: String) -> Result<Task, AppError> {
    let articles = parse_articles(&articles)?;
    crate::services::articles::bulk_save(&state()?, &CurrentUser::from_leptos_context()?, articles)
        .await
}

/// Most articles one bulk save takes.
pub const BULK_SAVE_MAX_ARTICLES: usize = 1000;

/// Checks a bulk save request: not empty, not too large, and every article has a URL and a
/// title (the task checks the rest article by article).
pub fn validate_bulk_save(articles: &[serde_json::Value]) -> Result<(), AppError> {
    if articles.is_empty() {
        return Err(field_error("articles", "must not be empty"));
    }
    if articles.len() > BULK_SAVE_MAX_ARTICLES {
        return Err(field_error(
            "articles",
            format!("at most {BULK_SAVE_MAX_ARTICLES} per request"),
        ));
    }
    for (index, article) in articles.iter().enumerate() {
        for field in ["url", "title"] {
            let present = article
                .get(field)
                .and_then(serde_json::Value::as_str)
                .is_some_and(|value| !value.trim().is_empty());
            if !present {
                return Err(field_error(
                    &format!("articles[{index}].{field}"),
                    "missing",
                ));
            }
        }
    }
    Ok(())
}

/// The articles of a bulk save typed as JSON: an array of objects.
pub fn parse_articles(text: &str) -> Result<Vec<serde_json::Value>, AppError> {
    serde_json::from_str(text)
        .map_err(|error| field_error("articles", format!("not a JSON array of objects: {error}")))
}

/// The non-blank lines of `text`, trimmed.
pub fn parse_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_split_at_commas_and_lines_without_blanks_or_repeats() {
        assert_eq!(
            parse_keywords(" Rust, tokio\n\n rust ,WASM,"),
            vec!["Rust", "tokio", "WASM"]
        );
    }

    #[test]
    fn each_config_key_out_of_range_is_named() {
        let good = AutoIngestConfig {
            enabled: false,
            quality_control_enabled: true,
            min_relevance_threshold: 0.3,
            batch_size: 10,
            max_concurrent_batches: 2,
        };
        assert!(good.validate().is_ok());
        let cases = [
            (
                AutoIngestConfig {
                    min_relevance_threshold: 1.5,
                    ..good.clone()
                },
                "min_relevance_threshold",
            ),
            (
                AutoIngestConfig {
                    batch_size: 0,
                    ..good.clone()
                },
                "batch_size",
            ),
            (
                AutoIngestConfig {
                    max_concurrent_batches: 17,
                    ..good.clone()
                },
                "max_concurrent_batches",
            ),
        ];
        for (config, key) in cases {
            let error = config.validate().unwrap_err().to_string();
            assert!(error.starts_with(key), "{error}");
        }
    }

    #[test]
    fn a_source_needs_an_http_feed_url_and_a_group_a_keyword() {
        let source = SourceInput {
            name: "Blog".into(),
            feed_url: "ftp://example.com/feed".into(),
            topic_id: None,
        };
        assert!(
            source
                .validate()
                .unwrap_err()
                .to_string()
                .starts_with("feed_url")
        );
        let group = KeywordGroupInput {
            name: "Watch".into(),
            topic: None,
            keywords: " , ".into(),
        };
        assert!(
            group
                .validate()
                .unwrap_err()
                .to_string()
                .starts_with("keywords")
        );
    }
}
