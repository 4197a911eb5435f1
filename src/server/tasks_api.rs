//! REST endpoints of background tasks (`/api/background-tasks`), compatible with the original
//! system's clients. The browser UI uses the server functions of `api::tasks` instead.

use axum::{
    Json, Router,
    extract::State,
    routing::{delete, get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    AppState,
    extract::{ApiJson, ApiPath, ApiQuery},
};
use crate::{
    api::tasks::{TaskFilter, TaskStatus},
    auth::CurrentUser,
    error::AppError,
    jobs::bulk_analysis::BulkAnalysisInput,
    services::{articles, tasks},
};

/// Default age of `POST /cleanup`, as in the original.
const DEFAULT_CLEANUP_AGE_HOURS: u32 = 24;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/task/{id}", get(get_task).delete(cancel_task))
        .route("/task/{id}/events", get(task_events))
        .route("/tasks", get(list_tasks))
        .route("/summary", get(summary))
        .route("/cleanup", post(cleanup))
        .route("/task/{id}/retry", post(retry_task))
        .route("/bulk-save", post(bulk_save))
        .route("/bulk-analysis", post(bulk_analysis))
        .fallback(delete(not_found).get(not_found).post(not_found))
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn get_task(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, AppError> {
    let task = tasks::get(&state, &caller, id).await?;
    Ok(Json(json!({ "success": true, "task": task })))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    limit: Option<u32>,
    cursor: Option<Uuid>,
}

async fn list_tasks(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, AppError> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(TaskStatus::parse(text).ok_or_else(|| {
            AppError::BadRequest(format!(
                "unknown status {text:?}: use pending, running, completed, failed or cancelled"
            ))
        })?),
    };
    let filter = TaskFilter {
        status,
        kind: query.kind.filter(|kind| !kind.is_empty()),
        owner: None,
        text: None,
        cursor: query.cursor,
        limit: query.limit,
    };
    let page = tasks::list(&state, &caller, &filter).await?;
    Ok(Json(json!({
        "success": true,
        "tasks": page.tasks,
        "summary": page.summary,
        "next_cursor": page.next_cursor,
    })))
}

async fn cancel_task(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, AppError> {
    let task = tasks::cancel(&state, &caller, id).await?;
    let message = if task.status == TaskStatus::Cancelled {
        "task cancelled"
    } else {
        "cancellation requested; the task stops at its next checkpoint"
    };
    Ok(Json(
        json!({ "success": true, "message": message, "task": task }),
    ))
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: i64,
}

async fn task_events(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<Value>, AppError> {
    let events = tasks::events(&state, &caller, id, query.after).await?;
    Ok(Json(json!({ "success": true, "events": events })))
}

async fn retry_task(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, AppError> {
    let task = tasks::retry(&state, &caller, id).await?;
    Ok(Json(
        json!({ "success": true, "task_id": task.id, "task": task }),
    ))
}

async fn summary(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<Value>, AppError> {
    let summary = tasks::summary(&state, &caller).await?;
    Ok(Json(json!({ "success": true, "summary": summary })))
}

#[derive(Deserialize)]
struct CleanupQuery {
    max_age_hours: Option<u32>,
}

async fn cleanup(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiQuery(query): ApiQuery<CleanupQuery>,
) -> Result<Json<Value>, AppError> {
    let hours = query.max_age_hours.unwrap_or(DEFAULT_CLEANUP_AGE_HOURS);
    let removed = tasks::cleanup(&state, &caller, hours).await?;
    Ok(Json(json!({
        "success": true,
        "removed": removed,
        "message": format!("removed {removed} finished tasks older than {hours} hours"),
    })))
}

#[derive(Deserialize)]
struct BulkSaveBody {
    articles: Vec<Value>,
}

async fn bulk_save(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(body): ApiJson<BulkSaveBody>,
) -> Result<Json<Value>, AppError> {
    let count = body.articles.len();
    let task = articles::bulk_save(&state, &caller, body.articles).await?;
    Ok(Json(json!({
        "success": true,
        "task_id": task.id,
        "message": format!("saving {count} articles in the background"),
    })))
}

async fn bulk_analysis(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(request): ApiJson<BulkAnalysisInput>,
) -> Result<Json<Value>, AppError> {
    let count = request.urls.len();
    let task = articles::bulk_analysis(&state, &caller, request).await?;
    Ok(Json(json!({
        "success": true,
        "task_id": task.id,
        "message": format!("analysing {count} URLs in the background"),
    })))
}
