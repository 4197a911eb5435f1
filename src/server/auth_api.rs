//! REST endpoints of accounts for scripts and existing clients: `/api/auth/login`, `logout`
//! and `me`. The browser UI uses the server functions of `api::accounts` instead.

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::header,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, extract::ApiJson};
use crate::{auth::CurrentUser, error::AppError, services::accounts};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

/// Checks the credentials and answers with the user and a session cookie.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, AppError> {
    let (user, session) = accounts::login(
        &state,
        &request.username,
        &request.password,
        Some(client.ip()),
    )
    .await?;
    let cookie = state.auth.session_cookie(&session);
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "success": true, "user": user })),
    )
        .into_response())
}

/// Ends the session of the cookie (if any) and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    caller: Option<CurrentUser>,
) -> Result<Response, AppError> {
    if let Some(caller) = caller {
        accounts::logout(&state, &caller).await?;
    }
    let cookie = state.auth.clearing_cookie();
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "success": true })),
    )
        .into_response())
}

/// The caller, or 401.
pub async fn me(caller: CurrentUser) -> Json<serde_json::Value> {
    Json(json!({ "user": caller.user }))
}
