//! Articles: starting the jobs that analyse and store them.

use serde_json::{Value, json};

use crate::{
    api::{
        ingest::{validate_analysis_topic, validate_bulk_save, validate_http_url},
        tasks::Task,
    },
    auth::CurrentUser,
    engine::Job,
    error::AppError,
    jobs::{
        bulk_analysis::{BulkAnalysis, BulkAnalysisInput},
        bulk_save::BulkSave,
    },
    server::AppState,
    services::tasks,
};

/// Starts a `bulk_save` task of `articles`. The request is refused (400) when it is empty, too
/// large, or an article lacks its URL or title; the task checks the rest article by article.
pub async fn bulk_save(
    state: &AppState,
    caller: &CurrentUser,
    articles: Vec<Value>,
) -> Result<Task, AppError> {
    validate_bulk_save(&articles)?;
    let name = format!("Save {} articles", articles.len());
    let input = json!({ "articles": articles });
    tasks::start_job(state, caller, BulkSave::KIND, &name, input).await
}

/// Starts a `bulk_analysis` task. Refused with 400 for no URLs, too many, a URL that is not
/// http(s) or an empty topic, and with 503 when the analysis queue has no room for them now.
pub async fn bulk_analysis(
    state: &AppState,
    caller: &CurrentUser,
    request: BulkAnalysisInput,
) -> Result<Task, AppError> {
    let max = state.analysis.max_urls;
    if request.urls.is_empty() {
        return Err(AppError::BadRequest("urls: must not be empty".into()));
    }
    if request.urls.len() > max {
        return Err(AppError::BadRequest(format!(
            "urls: at most {max} per request, {} given",
            request.urls.len()
        )));
    }
    for (index, url) in request.urls.iter().enumerate() {
        validate_http_url(&format!("urls[{index}]"), url)?;
    }
    validate_analysis_topic(&request.topic)?;
    let topic = request.topic.trim();
    state
        .analysis
        .queue
        .check_room(request.urls.len())
        .map_err(|full| AppError::Unavailable(full.to_string()))?;
    let name = format!("Analyse {} URLs for “{topic}”", request.urls.len());
    let input = serde_json::to_value(&request).map_err(|_| AppError::Internal)?;
    tasks::start_job(state, caller, BulkAnalysis::KIND, &name, input).await
}
