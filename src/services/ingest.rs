//! Ingestion: topics, sources, keyword groups, the auto-ingest configuration and its runs,
//! keyword checks, stored articles and keyword alerts.
//!
//! Everybody signed in reads all of it, starts runs and marks alerts read; changing the
//! topics, sources, groups and configuration is for administrators.

use chrono::Utc;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::{
    api::{
        ingest::{
            ArticleDetail, ArticleFilter, ArticlePage, AutoIngestConfig, DEFAULT_ARTICLE_PAGE,
            IngestStats, IngestStatus, KeywordAlert, KeywordGroup, KeywordGroupInput,
            MAX_ARTICLE_PAGE, Source, SourceInput, Topic, TopicInput, parse_keywords,
        },
        tasks::{Task, TaskFilter, TaskStatus},
    },
    auth::CurrentUser,
    db::{ArticleStatus, DbError, KeywordGroupFields, SourceFields, TopicFields},
    engine::Job,
    error::AppError,
    jobs::{
        auto_ingest::AutoIngest,
        keyword_check::{KeywordCheck, KeywordCheckInput},
    },
    server::AppState,
    services::tasks,
};

/// Keyword alerts listed at most.
const ALERTS_LISTED: i64 = 100;
/// The longest text search of articles.
const QUERY_MAX_CHARS: usize = 200;

/// Serialises "is a run in progress? then start one" on this node, so that two requests at
/// once cannot both start a run. Across nodes, the job itself claims the one place
/// ([`crate::db::Database::claim_exclusive_run`]).
static STARTING_EXCLUSIVE_RUN: Mutex<()> = Mutex::const_new(());

pub async fn status(state: &AppState, _caller: &CurrentUser) -> Result<IngestStatus, AppError> {
    let config = state.db.auto_ingest_config().await?;
    let sources = state.db.sources().await?;
    Ok(IngestStatus {
        enabled: config.enabled,
        running: active_run(state, AutoIngest::KIND).await?,
        config,
        pending_sources: sources.iter().filter(|source| source.enabled).count() as i64,
        schedule_interval_secs: state.schedules.auto_ingest.map(|every| every.as_secs()),
    })
}

pub async fn stats(state: &AppState, _caller: &CurrentUser) -> Result<IngestStats, AppError> {
    Ok(state.db.ingest_stats().await?)
}

pub async fn config(state: &AppState, _caller: &CurrentUser) -> Result<AutoIngestConfig, AppError> {
    Ok(state.db.auto_ingest_config().await?)
}

/// Replaces the configuration; 400 names the first value out of range.
pub async fn save_config(
    state: &AppState,
    caller: &CurrentUser,
    config: AutoIngestConfig,
) -> Result<AutoIngestConfig, AppError> {
    caller.require_admin()?;
    config.validate()?;
    state
        .db
        .save_auto_ingest_config(&config, Utc::now())
        .await?;
    Ok(config)
}

/// Changes the keys of `changes` (the original's clients send some of them); an unknown key,
/// a value of the wrong type or out of range is refused with 400 naming the key, and then
/// nothing changes.
pub async fn update_config(
    state: &AppState,
    caller: &CurrentUser,
    changes: &Map<String, Value>,
) -> Result<AutoIngestConfig, AppError> {
    caller.require_admin()?;
    let mut config = state.db.auto_ingest_config().await?;
    for (key, value) in changes {
        apply_config_change(&mut config, key, value)?;
    }
    save_config(state, caller, config).await
}

fn apply_config_change(
    config: &mut AutoIngestConfig,
    key: &str,
    value: &Value,
) -> Result<(), AppError> {
    let wrong = |expected: &str| AppError::BadRequest(format!("{key}: must be {expected}"));
    let count = || {
        value
            .as_u64()
            .and_then(|count| u32::try_from(count).ok())
            .ok_or_else(|| wrong("a whole number"))
    };
    match key {
        "enabled" => config.enabled = value.as_bool().ok_or_else(|| wrong("true or false"))?,
        "quality_control_enabled" => {
            config.quality_control_enabled =
                value.as_bool().ok_or_else(|| wrong("true or false"))?;
        }
        "min_relevance_threshold" => {
            config.min_relevance_threshold = value.as_f64().ok_or_else(|| wrong("a number"))?;
        }
        "batch_size" => config.batch_size = count()?,
        "max_concurrent_batches" => config.max_concurrent_batches = count()?,
        _ => return Err(AppError::BadRequest(format!("{key}: unknown setting"))),
    }
    Ok(())
}

/// Turns scheduled runs on or off.
pub async fn set_enabled(
    state: &AppState,
    caller: &CurrentUser,
    enabled: bool,
) -> Result<AutoIngestConfig, AppError> {
    let config = AutoIngestConfig {
        enabled,
        ..state.db.auto_ingest_config().await?
    };
    save_config(state, caller, config).await
}

/// Starts an auto-ingest run owned by the caller; 409 while one is pending or running.
pub async fn run_now(state: &AppState, caller: &CurrentUser) -> Result<Task, AppError> {
    let _starting = STARTING_EXCLUSIVE_RUN.lock().await;
    if let Some(running) = active_run(state, AutoIngest::KIND).await? {
        return Err(AppError::Conflict(format!(
            "an auto-ingest run is already in progress (task {})",
            running.id
        )));
    }
    tasks::start_job(
        state,
        caller,
        AutoIngest::KIND,
        "Auto-ingest",
        serde_json::json!({}),
    )
    .await
}

/// The pending or running task of `kind`, whoever owns it.
pub async fn active_run(state: &AppState, kind: &str) -> Result<Option<Task>, AppError> {
    for status in [TaskStatus::Running, TaskStatus::Pending] {
        let filter = TaskFilter {
            status: Some(status),
            kind: Some(kind.to_owned()),
            ..TaskFilter::default()
        };
        if let Some(task) = state.db.tasks(None, &filter, 1).await?.pop() {
            return Ok(Some(task));
        }
    }
    Ok(None)
}

/// Starts a keyword check of group `group_id`, or of every group, owned by the caller.
pub async fn run_keyword_check(
    state: &AppState,
    caller: &CurrentUser,
    group_id: Option<i64>,
) -> Result<Task, AppError> {
    let name = match group_id {
        Some(id) => {
            let group =
                state.db.keyword_group(id).await?.ok_or_else(|| {
                    AppError::BadRequest(format!("group_id: no keyword group {id}"))
                })?;
            format!("Keyword check: {}", group.name)
        }
        None => "Keyword check of every group".to_owned(),
    };
    let input = KeywordCheckInput { group_id };
    let input = serde_json::to_value(input).map_err(|_| AppError::Internal)?;
    tasks::start_job(state, caller, KeywordCheck::KIND, &name, input).await
}

pub async fn topics(state: &AppState, _caller: &CurrentUser) -> Result<Vec<Topic>, AppError> {
    Ok(state.db.topics().await?)
}

/// Creates a topic (`id` `None`) or changes one; 409 when the name is taken.
pub async fn save_topic(
    state: &AppState,
    caller: &CurrentUser,
    id: Option<i64>,
    input: TopicInput,
) -> Result<Topic, AppError> {
    caller.require_admin()?;
    input.validate()?;
    let keywords = parse_keywords(&input.keywords);
    let fields = TopicFields {
        name: input.name.trim(),
        description: input.description.trim(),
        keywords: &keywords,
    };
    let now = Utc::now();
    let saved = match id {
        None => state.db.insert_topic(fields, now).await.map(Some),
        Some(id) => state.db.update_topic(id, fields, now).await,
    };
    saved
        .map_err(|error| name_taken(error, "topic", fields.name))?
        .ok_or(AppError::NotFound)
}

pub async fn delete_topic(state: &AppState, caller: &CurrentUser, id: i64) -> Result<(), AppError> {
    caller.require_admin()?;
    found(state.db.delete_topic(id).await?)
}

pub async fn sources(state: &AppState, _caller: &CurrentUser) -> Result<Vec<Source>, AppError> {
    Ok(state.db.sources().await?)
}

/// Creates a source (`id` `None`) or changes one; 409 when its feed is a source already.
pub async fn save_source(
    state: &AppState,
    caller: &CurrentUser,
    id: Option<i64>,
    input: SourceInput,
) -> Result<Source, AppError> {
    caller.require_admin()?;
    input.validate()?;
    if let Some(topic) = input.topic_id
        && state.db.topic(topic).await?.is_none()
    {
        return Err(AppError::BadRequest(format!("topic_id: no topic {topic}")));
    }
    let fields = SourceFields {
        name: input.name.trim(),
        feed_url: input.feed_url.trim(),
        topic_id: input.topic_id,
    };
    let taken = |error| name_taken(error, "source with the feed", fields.feed_url);
    let id = match id {
        None => state
            .db
            .insert_source(fields, Utc::now())
            .await
            .map_err(taken)?,
        Some(id) => {
            found(state.db.update_source(id, fields).await.map_err(taken)?)?;
            id
        }
    };
    state.db.source(id).await?.ok_or(AppError::NotFound)
}

pub async fn set_source_enabled(
    state: &AppState,
    caller: &CurrentUser,
    id: i64,
    enabled: bool,
) -> Result<Source, AppError> {
    caller.require_admin()?;
    found(state.db.set_source_enabled(id, enabled).await?)?;
    state.db.source(id).await?.ok_or(AppError::NotFound)
}

pub async fn delete_source(
    state: &AppState,
    caller: &CurrentUser,
    id: i64,
) -> Result<(), AppError> {
    caller.require_admin()?;
    found(state.db.delete_source(id).await?)
}

pub async fn keyword_groups(
    state: &AppState,
    _caller: &CurrentUser,
) -> Result<Vec<KeywordGroup>, AppError> {
    Ok(state.db.keyword_groups().await?)
}

/// Creates a keyword group (`id` `None`) or changes one; 409 when the name is taken.
pub async fn save_keyword_group(
    state: &AppState,
    caller: &CurrentUser,
    id: Option<i64>,
    input: KeywordGroupInput,
) -> Result<KeywordGroup, AppError> {
    caller.require_admin()?;
    input.validate()?;
    let keywords = parse_keywords(&input.keywords);
    let fields = KeywordGroupFields {
        name: input.name.trim(),
        topic: input
            .topic
            .as_deref()
            .map(str::trim)
            .filter(|topic| !topic.is_empty()),
        keywords: &keywords,
    };
    let taken = |error| name_taken(error, "keyword group", fields.name);
    let id = match id {
        None => state
            .db
            .insert_keyword_group(fields, Utc::now())
            .await
            .map_err(taken)?,
        Some(id) => {
            found(
                state
                    .db
                    .update_keyword_group(id, fields)
                    .await
                    .map_err(taken)?,
            )?;
            id
        }
    };
    state.db.keyword_group(id).await?.ok_or(AppError::NotFound)
}

pub async fn delete_keyword_group(
    state: &AppState,
    caller: &CurrentUser,
    id: i64,
) -> Result<(), AppError> {
    caller.require_admin()?;
    found(state.db.delete_keyword_group(id).await?)
}

/// A page of stored articles; 400 for an unknown status, a limit out of range or an
/// overlong search.
pub async fn articles(
    state: &AppState,
    _caller: &CurrentUser,
    filter: &ArticleFilter,
) -> Result<ArticlePage, AppError> {
    let filter = ArticleFilter {
        status: blank_to_none(&filter.status),
        topic: blank_to_none(&filter.topic),
        query: blank_to_none(&filter.query),
        ..filter.clone()
    };
    if let Some(status) = &filter.status
        && ArticleStatus::parse(status).is_none()
    {
        return Err(AppError::BadRequest(format!(
            "status: unknown status {status:?}; use approved, filtered_relevance, \
             filtered_quality or error"
        )));
    }
    if filter
        .query
        .as_ref()
        .is_some_and(|query| query.chars().count() > QUERY_MAX_CHARS)
    {
        return Err(AppError::BadRequest(format!(
            "query: at most {QUERY_MAX_CHARS} characters"
        )));
    }
    let limit = filter.limit.unwrap_or(DEFAULT_ARTICLE_PAGE);
    if !(1..=MAX_ARTICLE_PAGE).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit: must be 1–{MAX_ARTICLE_PAGE}"
        )));
    }
    let articles = state.db.articles(&filter, i64::from(limit)).await?;
    let next_cursor = (articles.len() == limit as usize)
        .then(|| articles.last().map(|article| article.id))
        .flatten();
    Ok(ArticlePage {
        articles,
        next_cursor,
    })
}

pub async fn article(
    state: &AppState,
    _caller: &CurrentUser,
    id: i64,
) -> Result<ArticleDetail, AppError> {
    state.db.article(id).await?.ok_or(AppError::NotFound)
}

pub async fn alerts(
    state: &AppState,
    _caller: &CurrentUser,
    unread_only: bool,
) -> Result<Vec<KeywordAlert>, AppError> {
    Ok(state.db.keyword_alerts(unread_only, ALERTS_LISTED).await?)
}

/// Marks alert `id` read (404 when there is none), or every alert; answers how many changed.
pub async fn mark_alerts_read(
    state: &AppState,
    _caller: &CurrentUser,
    id: Option<i64>,
) -> Result<i64, AppError> {
    if let Some(id) = id
        && !state.db.keyword_alert_exists(id).await?
    {
        return Err(AppError::NotFound);
    }
    let changed = state.db.mark_keyword_alerts_read(id, Utc::now()).await?;
    Ok(changed as i64)
}

fn blank_to_none(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

fn found(changed: bool) -> Result<(), AppError> {
    changed.then_some(()).ok_or(AppError::NotFound)
}

fn name_taken(error: DbError, what: &str, name: &str) -> AppError {
    match error {
        DbError::Duplicate => AppError::Conflict(format!("a {what} {name:?} exists already")),
        error => error.into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn defaults() -> AutoIngestConfig {
        AutoIngestConfig {
            enabled: false,
            quality_control_enabled: true,
            min_relevance_threshold: 0.3,
            batch_size: 10,
            max_concurrent_batches: 2,
        }
    }

    #[test]
    fn a_config_change_names_an_unknown_key_or_a_value_of_the_wrong_type() {
        let mut config = defaults();
        let error = apply_config_change(&mut config, "batchsize", &json!(3)).unwrap_err();
        assert_eq!(error.to_string(), "batchsize: unknown setting");
        let error = apply_config_change(&mut config, "batch_size", &json!(-3)).unwrap_err();
        assert_eq!(error.to_string(), "batch_size: must be a whole number");
        let error = apply_config_change(&mut config, "enabled", &json!("yes")).unwrap_err();
        assert_eq!(error.to_string(), "enabled: must be true or false");
        assert_eq!(config, defaults());
    }

    #[test]
    fn a_config_change_sets_its_key() {
        let mut config = defaults();
        apply_config_change(&mut config, "min_relevance_threshold", &json!(0.5)).unwrap();
        apply_config_change(&mut config, "enabled", &json!(true)).unwrap();
        assert_eq!(config.min_relevance_threshold, 0.5);
        assert!(config.enabled);
    }
}
