//! `/healthz` (the process answers) and `/readyz` (the database answers too), for load
//! balancers and orchestrators.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use super::AppState;
use crate::{api::system::SystemStatus, error::AppError, services};

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<AppState>) -> Result<Json<SystemStatus>, AppError> {
    services::system::status(&state).await.map(Json)
}
