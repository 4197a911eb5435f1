//! REST endpoints of auto-ingest (`/api/auto-ingest`), compatible with the original system's
//! clients. The browser UI uses the server functions of `api::ingest` instead.

use axum::{
    Json, Router,
    extract::State,
    routing::{delete, get, post},
};
use serde_json::{Map, Value, json};

use super::{AppState, extract::ApiJson};
use crate::{auth::CurrentUser, error::AppError, services::ingest};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/config", get(get_config).post(update_config))
        .route("/enable", post(enable))
        .route("/disable", post(disable))
        .route("/status", get(status))
        .route("/run", post(run))
        .route("/stats", get(stats))
        .fallback(delete(not_found).get(not_found).post(not_found))
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn get_config(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<Value>, AppError> {
    let config = ingest::config(&state, &caller).await?;
    Ok(Json(json!({ "success": true, "config": config })))
}

/// Changes the keys sent; the others keep their values.
async fn update_config(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(changes): ApiJson<Map<String, Value>>,
) -> Result<Json<Value>, AppError> {
    let config = ingest::update_config(&state, &caller, &changes).await?;
    Ok(Json(json!({
        "success": true,
        "message": "Configuration saved",
        "config": config,
    })))
}

async fn enable(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<Value>, AppError> {
    set_enabled(state, caller, true).await
}

async fn disable(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<Value>, AppError> {
    set_enabled(state, caller, false).await
}

async fn set_enabled(
    state: AppState,
    caller: CurrentUser,
    enabled: bool,
) -> Result<Json<Value>, AppError> {
    let config = ingest::set_enabled(&state, &caller, enabled).await?;
    let message = if enabled {
        "Auto-ingest enabled"
    } else {
        "Auto-ingest disabled"
    };
    Ok(Json(
        json!({ "success": true, "message": message, "config": config }),
    ))
}

async fn status(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<Value>, AppError> {
    let status = ingest::status(&state, &caller).await?;
    Ok(Json(json!({
        "success": true,
        "enabled": status.enabled,
        "running": status.running.is_some(),
        "task_id": status.running.as_ref().map(|task| task.id),
        "config": status.config,
        "pending_count": status.pending_sources,
        "schedule_interval_secs": status.schedule_interval_secs,
    })))
}

/// Starts a run; 409 while one is in progress. The number of articles is known once the
/// feeds are read: `total_articles` is the task's total so far, and the task's progress
/// carries it from then on.
async fn run(State(state): State<AppState>, caller: CurrentUser) -> Result<Json<Value>, AppError> {
    let task = ingest::run_now(&state, &caller).await?;
    Ok(Json(json!({
        "success": true,
        "task_id": task.id,
        "total_articles": task.progress.total_items,
        "status_url": format!("/api/background-tasks/task/{}", task.id),
        "message": "Auto-ingest started",
    })))
}

async fn stats(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<Value>, AppError> {
    let stats = ingest::stats(&state, &caller).await?;
    Ok(Json(json!({ "success": true, "stats": stats })))
}
